"""cluster_image against a real registry on loopback with TLS (a CA made here) and bcrypt auth:
push, pull into an empty store with the same digest, skopeo reads and copies the pushed image,
a wrong password and a tampered blob are refused, credentials stay out of the output."""
import json
import os
import subprocess
import tempfile

import pytest

import registry_fixture

OPTIONS = """\
        name: "{{ lookup('env', 'IMG') }}"
        state: "{{ lookup('env', 'STATE') }}"
        path: "{{ lookup('env', 'CTX') or omit }}"
        store: "{{ lookup('env', 'STORE') }}"
        pull: "{{ lookup('env', 'PULL') or 'missing' }}"
        username: "{{ lookup('env', 'REG_USER') or omit }}"
        password: "{{ lookup('env', 'REG_PASS') or omit }}"
        ca_file: "{{ lookup('env', 'CA') or omit }}"
"""


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="seal-reg-")
    registry = registry_fixture.Registry(work)
    ctx = os.path.join(work, "ctx")
    os.makedirs(os.path.join(ctx, "bin"))
    with open(os.path.join(ctx, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n")
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM scratch\nCOPY bin bin\nLABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"\n'
                'LABEL cluster.alpha.sealer.io/cluster-runtime-version="v1.25.3+k3s1"\n')
    play = os.path.join(work, "play.yml")
    registry_fixture.write_cluster_image_play(play, OPTIONS)
    yield {"work": work, "registry": registry, "ctx": ctx, "play": play,
           "image": "%s/seal/k3s:v1.25.3" % registry.host}
    registry.stop()


def image(env, state, store, password=registry_fixture.PASSWORD, **extra):
    variables = dict(IMG=env["image"], STATE=state, STORE=store, REG_USER=registry_fixture.USER,
                     REG_PASS=password, CA=env["registry"].ca_file, CTX="", PULL="")
    variables.update(extra)
    return registry_fixture.run_cluster_image_play(env["work"], env["play"], variables, timeout=300)


def skopeo(env, *argv):
    auth = os.path.join(env["work"], "auth.json")
    with open(auth, "w", encoding="utf-8") as f:
        json.dump({"auths": {env["registry"].host: {"auth": __import__("base64").b64encode(
            ("%s:%s" % (registry_fixture.USER, registry_fixture.PASSWORD)).encode()).decode()}}}, f)
    certs = os.path.join(env["work"], "certs")
    os.makedirs(certs, exist_ok=True)
    with open(env["registry"].ca_file, "rb") as src, open(os.path.join(certs, "ca.crt"), "wb") as dst:
        dst.write(src.read())
    return subprocess.run(["skopeo"] + list(argv[:1]) + ["--authfile", auth] + list(argv[1:]), capture_output=True,
                          text=True, timeout=120, check=False, env=dict(os.environ, SKOPEO_CERTS=certs))


def test_push_then_pull_into_an_empty_store_gives_the_same_digest(env):
    store_a = os.path.join(env["work"], "store-a")
    proc, built = image(env, "built", store_a, CTX=env["ctx"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    proc, pushed = image(env, "pushed", store_a)
    assert proc.returncode == 0, proc.stdout[-3000:]
    store_b = os.path.join(env["work"], "store-b")
    proc, pulled = image(env, "present", store_b)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert pulled["changed"] is True and pulled["digest"] == built["digest"] == pushed["digest"]
    assert pulled["runtime"] == "k3s" and os.path.isfile(os.path.join(pulled["rootfs"], "bin", "k3s"))
    proc, again = image(env, "present", store_b)
    assert again["changed"] is False


def test_skopeo_inspects_and_copies_the_pushed_image(env):
    certs = os.path.join(env["work"], "certs")
    inspect = skopeo(env, "inspect", "--cert-dir", certs, "docker://" + env["image"])
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Labels"]["cluster.alpha.sealer.io/cluster-runtime-type"] == "k3s"
    copy = skopeo(env, "copy", "--src-cert-dir", certs, "docker://" + env["image"], "oci:%s/copy:k3s" % env["work"])
    assert copy.returncode == 0, copy.stderr


def test_wrong_password_is_refused(env):
    proc, _result = image(env, "present", os.path.join(env["work"], "store-c"), password="wrong-password", PULL="always")
    assert proc.returncode != 0
    assert "unauthorized" in (proc.stdout + proc.stderr).lower() or "401" in proc.stdout + proc.stderr


def test_tampered_blob_in_the_registry_is_refused_with_its_digest(env):
    store_b = os.path.join(env["work"], "store-b")
    manifest = json.load(open(os.path.join(store_b, "index.json"), encoding="utf-8"))["manifests"][0]["digest"]
    layer = json.load(open(os.path.join(store_b, "blobs", "sha256", manifest.split(":")[1]), encoding="utf-8"))["layers"][0]["digest"]
    hexd = layer.split(":")[1]
    data = os.path.join(env["registry"].storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")
    with open(data, "r+b") as f:
        f.seek(10)
        f.write(b"\0\0\0\0")
    proc, _result = image(env, "present", os.path.join(env["work"], "store-d"))
    assert proc.returncode != 0
    assert hexd[:12] in proc.stdout + proc.stderr
    assert not os.path.exists(os.path.join(env["work"], "store-d", "rootfs"))


def test_token_auth_registry_push_and_pull(env):
    """A registry behind a token service (Bearer challenge): credentials are exchanged for scoped
    tokens (pull, then pull+push), and the image round-trips with its digest."""
    from ansible_collections.seal.cluster.plugins.module_utils import _image_registry as registry
    from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
    from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference
    from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

    token_registry = registry_fixture.Registry(os.path.join(env["work"], "token-registry"), auth="token")
    try:
        store = Store(os.path.join(env["work"], "store-token-source"))
        Builder(store, env["ctx"]).build("k3s:token-test")
        source = store.resolve("k3s:token-test")
        ref = Reference.parse("%s/team/k3s:v1" % token_registry.host)
        creds = dict(username=registry_fixture.USER, password=registry_fixture.PASSWORD, ca_file=token_registry.ca_file)
        with pytest.raises(registry.RegistryError, match="HTTP 401 .unauthorized: wrong username or password"):
            registry.push(store, ref, source, **dict(creds, password="wrong"))
        assert registry.push(store, ref, source, **creds) == source["digest"]
        pulled = registry.pull(Store(os.path.join(env["work"], "store-token")), ref, **creds)
        assert pulled["digest"] == source["digest"]
        # The registry names the actions in its challenge in Go map order, so compare them as sets.
        granted = [[(kind, name, set(actions)) for kind, name, actions in map(registry_fixture.parse_scope, scopes)]
                   for ok, scopes in token_registry.tokens.requests if ok]
        assert [("repository", "team/k3s", {"pull"})] in granted
        assert [("repository", "team/k3s", {"pull", "push"})] in granted
    finally:
        token_registry.stop()
