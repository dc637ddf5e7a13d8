"""The seal-image console script (installed by `pip install -e .`) as sealer users run it:
build, inspect (runtime from the label, and from Metadata for a legacy image), images, push and
pull through a TLS + bcrypt-auth registry on loopback, save, load, rmi."""
import json
import os
import subprocess
import tempfile

import pytest

import registry_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEAL_IMAGE = os.path.join(ROOT, ".venv", "bin", "seal-image")


def seal_image(*argv, store, stdin=None, env=None):
    return subprocess.run([SEAL_IMAGE, "--store", store] + list(argv), input=stdin, capture_output=True, text=True,
                          timeout=300, check=False, env=dict(os.environ, **(env or {})), cwd="/")


def _context(path, label):
    os.makedirs(os.path.join(path, "bin"))
    with open(os.path.join(path, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n")
    lines = ["FROM scratch", "COPY bin bin"]
    if label:
        lines += ['LABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"',
                  'LABEL cluster.alpha.sealer.io/cluster-runtime-version="v1.25.3+k3s1"']
    else:  # a legacy image: only the Metadata file says what it is
        with open(os.path.join(path, "Metadata"), "w", encoding="utf-8") as f:
            json.dump({"version": "v1.24.8+k3s1", "arch": "arm64", "ClusterRuntime": "k3s"}, f)
        lines.append("COPY Metadata .")
    with open(os.path.join(path, "Kubefile.custom"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def work():
    if not os.access(SEAL_IMAGE, os.X_OK):
        pytest.fail("%s is missing: run scripts/setup.sh (pip install -e .)" % SEAL_IMAGE)
    path = tempfile.mkdtemp(prefix="seal-cli-")
    registry = registry_fixture.Registry(os.path.join(path, "registry"))
    yield path, registry
    registry.stop()


def test_build_inspect_runtime_from_label_and_from_metadata(work):
    path, _registry = work
    store = os.path.join(path, "store")
    for name, label, arch in (("k3s:v1.25.3", True, "amd64"), ("legacy/k3s:v1.24.8", False, "arm64")):
        ctx = _context(os.path.join(path, name.replace("/", "_")), label)
        built = seal_image("build", "-t", name, "-f", os.path.join(ctx, "Kubefile.custom"), "--build-arg", "ARCH=" + arch, ctx,
                           store=store)
        assert built.returncode == 0, built.stderr
        assert built.stdout.strip().startswith("sha256:")
        info = json.loads(seal_image("inspect", name, store=store).stdout)
        assert info["runtime"] == "k3s" and info["digest"] == built.stdout.strip() and info["arch"] == arch
        assert info["runtime_version"] == ("v1.25.3+k3s1" if label else "v1.24.8+k3s1")
        assert "COPY bin bin" in info["kubefile"]
    listing = seal_image("images", store=store).stdout.splitlines()
    assert listing[0].split() == ["IMAGE", "TAG", "DIGEST", "SIZE"]
    assert sorted(line.split()[0] for line in listing[1:]) == ["k3s", "legacy/k3s"]
    bad = seal_image("inspect", "nothing:here", store=store)
    assert bad.returncode == 1 and "seal-image: image docker.io/library/nothing:here is not in the store" in bad.stderr


def test_push_pull_save_load_rmi(work):
    path, registry = work
    store, other = os.path.join(path, "store"), os.path.join(path, "other")
    remote = "%s/seal/k3s:v1.25.3" % registry.host
    assert seal_image("tag", "k3s:v1.25.3", remote, store=store).returncode == 0
    digest = json.loads(seal_image("inspect", remote, store=store).stdout)["digest"]
    denied = seal_image("push", "--ca-file", registry.ca_file, remote, store=store)
    assert denied.returncode == 1 and "asks for basic auth: give username and password" in denied.stderr
    pushed = seal_image("push", "-u", registry_fixture.USER, "--password-stdin", "--ca-file", registry.ca_file, remote,
                        store=store, stdin=registry_fixture.PASSWORD + "\n")
    assert pushed.returncode == 0 and pushed.stdout.strip() == digest, pushed.stderr
    untrusted = seal_image("pull", "-u", registry_fixture.USER, remote, store=other,
                           env={"SEAL_REGISTRY_PASSWORD": registry_fixture.PASSWORD})
    assert untrusted.returncode == 1 and "TLS with %s failed" % registry.host in untrusted.stderr  # no silent downgrade
    pulled = seal_image("pull", "-u", registry_fixture.USER, "--ca-file", registry.ca_file, remote, store=other,
                        env={"SEAL_REGISTRY_PASSWORD": registry_fixture.PASSWORD})
    assert pulled.returncode == 0 and pulled.stdout.strip() == digest, pulled.stderr

    archive = os.path.join(path, "k3s.oci.tar")
    assert seal_image("save", "-o", archive, "k3s:v1.25.3", store=store).returncode == 0
    copy = subprocess.run(["skopeo", "inspect", "oci-archive:%s:docker.io/library/k3s:v1.25.3" % archive],
                          capture_output=True, text=True, timeout=60, check=False)
    assert copy.returncode == 0 and json.loads(copy.stdout)["Digest"] == digest, copy.stderr
    third = os.path.join(path, "third")
    loaded = seal_image("load", "-i", archive, store=third)
    assert loaded.returncode == 0 and loaded.stdout.split() == ["k3s:v1.25.3", digest]

    removed = seal_image("rmi", remote, store=other)
    assert removed.returncode == 0 and "removed 3 unreferenced blobs" in removed.stderr
    assert seal_image("images", store=other).stdout.splitlines()[1:] == []
