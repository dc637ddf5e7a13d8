"""Image caching at build time, end to end: two tiny images made here are pushed to a real
registry on loopback (TLS from a CA made here, bcrypt auth); a cluster image whose
manifests/imageList and a manifest's image: field name them is built by the module with source
credentials; its registry/ holds them in registry-v2 form, a distribution registry pointed at
that directory serves them with their original digests, and the build is reproducible."""
import hashlib
import os
import subprocess
import tempfile

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _image_registry as registry
from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import ImageCache
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

import registry_fixture

OPTIONS = """\
        name: k3s-cached:v1
        state: built
        path: "{{ lookup('env', 'CTX') }}"
        store: "{{ lookup('env', 'STORE') }}"
        sources:
          - registry: "{{ lookup('env', 'SRC') }}"
            username: "{{ lookup('env', 'SRC_USER') }}"
            password: "{{ lookup('env', 'SRC_PASS') }}"
            ca_file: "{{ lookup('env', 'CA') }}"
"""


def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="seal-cache-")
    source = registry_fixture.Registry(os.path.join(work, "src"))
    creds = {"username": registry_fixture.USER, "password": registry_fixture.PASSWORD, "ca_file": source.ca_file}
    # two tiny application images, made from small tars by the builder, pushed to the source registry
    store = Store(os.path.join(work, "app-store"))
    digests = {}
    for name, text in (("apps/hello:1.0", "hello\n"), ("apps/web:2.0", "web\n")):
        ctx = os.path.join(work, "app-" + name.split("/")[1].split(":")[0])
        _write(os.path.join(ctx, "hello"), text, 0o755)
        _write(os.path.join(ctx, "Kubefile"), 'FROM scratch\nCOPY hello /hello\nCMD ["/hello"]\n')
        ref = Reference.parse("%s/%s" % (source.host, name))
        desc, _b = Builder(store, ctx, cache_images=False).build(ref)
        registry.push(store, ref, desc, **creds)
        digests[name] = desc["digest"]
    ctx = os.path.join(work, "cluster")
    _write(os.path.join(ctx, "bin", "k3s"), "#!/bin/sh\n", 0o755)
    _write(os.path.join(ctx, "manifests", "imageList"), "# what the workloads need\n%s/apps/hello:1.0\n" % source.host)
    _write(os.path.join(ctx, "manifests", "web.yaml"),
           "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
           "        - name: web\n          image: \"%s/apps/web:2.0\"\n        - name: tpl\n          image: {{ .Values.img }}\n"
           % source.host)
    _write(os.path.join(ctx, "Kubefile"), 'FROM scratch\nCOPY bin bin\nCOPY manifests manifests\n'
           'LABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"\n')
    play = os.path.join(work, "play.yml")
    registry_fixture.write_cluster_image_play(play, OPTIONS)
    yield {"work": work, "source": source, "ctx": ctx, "play": play, "digests": digests}
    source.stop()


def build(env, store):
    proc, result = registry_fixture.run_cluster_image_play(
        env["work"], env["play"], dict(CTX=env["ctx"], STORE=store, SRC=env["source"].host, SRC_USER=registry_fixture.USER,
                                       SRC_PASS=registry_fixture.PASSWORD, CA=env["source"].ca_file), timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return result


def test_images_of_image_list_and_manifests_end_up_in_registry_and_are_served(env):
    first = build(env, os.path.join(env["work"], "store-1"))
    repos = os.path.join(first["rootfs"], "registry", "docker", "registry", "v2", "repositories")
    for name, digest in env["digests"].items():
        repo, tag = name.split(":")
        with open(os.path.join(repos, repo, "_manifests", "tags", tag, "current", "link"), encoding="utf-8") as f:
            assert f.read().strip() == digest
    assert not os.path.exists(os.path.join(repos, "{{"))  # the templated image: field was skipped

    served = registry_fixture.PlainRegistry(os.path.join(env["work"], "served"), os.path.join(first["rootfs"], "registry"))
    try:
        for name, digest in env["digests"].items():
            inspect = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/%s" % (served.host, name)],
                                     capture_output=True, timeout=60, check=False)
            assert inspect.returncode == 0, inspect.stderr
            assert "sha256:" + hashlib.sha256(inspect.stdout).hexdigest() == digest
        # and our own client pulls it from there, verified, into an empty store
        pulled = registry.pull(Store(os.path.join(env["work"], "pulled")), Reference.parse(served.host + "/apps/hello:1.0"))
        assert pulled["digest"] == env["digests"]["apps/hello:1.0"]
    finally:
        served.stop()

    second = build(env, os.path.join(env["work"], "store-2"))
    assert second["digest"] == first["digest"] and second["changed"] is True
    again = build(env, os.path.join(env["work"], "store-2"))
    assert again["changed"] is False


def test_a_missing_source_image_names_it_and_the_line(env):
    ctx = os.path.join(env["work"], "cluster-bad")
    _write(os.path.join(ctx, "manifests", "imageList"), "%s/apps/hello:1.0\n%s/apps/nope:9\n" % ((env["source"].host,) * 2))
    _write(os.path.join(ctx, "Kubefile"), "FROM scratch\nCOPY manifests manifests\n")
    cache = ImageCache.find(sources=[dict(registry=env["source"].host, username=registry_fixture.USER,
                                          password=registry_fixture.PASSWORD, ca_file=env["source"].ca_file)])
    with pytest.raises(BuildError) as err:
        Builder(Store(os.path.join(env["work"], "store-bad")), ctx, image_cache=cache).build("bad:1")
    assert "apps/nope:9 (manifests/imageList:2) failed" in str(err.value)
