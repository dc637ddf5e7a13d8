"""A fresh virtualenv with ansible-core and only the collection's requirements.txt (as the built
tarball ships it) runs the controller-side modules: cluster_image builds a tiny image from a
Kubefile, reads it back and pushes it to a registry with TLS and auth (oras, requests), and
registry_certs makes a CA, a certificate and an htpasswd (cryptography, bcrypt). pip installs
from the configured index (PyPI in CI)."""
import json
import os
import subprocess
import sys
import venv

import pytest

import registry_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CORE = next(line.strip() for line in open(os.path.join(ROOT, "requirements-dev.txt"), encoding="utf-8")
            if line.lower().startswith("ansible-core=="))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    work = tmp_path_factory.mktemp("fresh")
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"), "collection", "build",
                    "--output-path", str(work), ROOT], check=True, capture_output=True, text=True,
                   env={k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")})
    (tarball,) = work.glob("seal-cluster-*.tar.gz")
    venv.EnvBuilder(with_pip=True).create(str(work / "venv"))
    bin_dir = work / "venv" / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTHON", "VIRTUAL_ENV", "SEAL_"))}
    env.update(PATH=str(bin_dir) + os.pathsep + env["PATH"], HOME=str(work / "home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(work / "collections"), ANSIBLE_CONFIG=str(work / "none.cfg"))
    (work / "none.cfg").write_text("[defaults]\n")
    subprocess.run([str(bin_dir / "pip"), "install", "-q", CORE], check=True, env=env, timeout=900)
    subprocess.run([str(bin_dir / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(work / "collections")],
                   check=True, env=env, capture_output=True, timeout=300)
    shipped = work / "collections" / "ansible_collections" / "seal" / "cluster" / "requirements.txt"
    subprocess.run([str(bin_dir / "pip"), "install", "-q", "-r", str(shipped)], check=True, env=env, timeout=900)
    return {"work": work, "bin": bin_dir, "env": env}


def module(fresh, name, args):
    """Run one module on the implicit localhost, with the fresh venv's Python; return its result."""
    proc = subprocess.run([str(fresh["bin"] / "ansible"), "localhost", "-m", name, "-a", json.dumps(args), "-o"],
                          env=fresh["env"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.split("=>", 1)[1])


def test_only_the_runtime_requirements_are_installed(fresh):
    frozen = subprocess.run([str(fresh["bin"] / "pip"), "freeze"], env=fresh["env"], capture_output=True, text=True,
                            check=True).stdout
    names = {line.split("==")[0].lower() for line in frozen.splitlines()}
    assert {"oras", "bcrypt", "cryptography", "ansible-core"} <= names
    assert not names & {"pytest", "molecule", "ansible-lint", "ansible-builder", "seal-cluster"}


def test_cluster_image_builds_inspects_pushes_and_pulls(fresh):
    work = fresh["work"]
    ctx = work / "ctx"
    (ctx / "bin").mkdir(parents=True)
    (ctx / "bin" / "k3s").write_text("#!/bin/sh\n")
    (ctx / "Kubefile").write_text('FROM scratch\nCOPY bin bin\nLABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"\n'
                                  'LABEL cluster.alpha.sealer.io/cluster-runtime-version="v1.25.3+k3s1"\n')
    registry = registry_fixture.Registry(str(work / "registry"))
    try:
        name = "%s/seal/tiny:v1" % registry.host
        auth = {"username": registry_fixture.USER, "password": registry_fixture.PASSWORD, "ca_file": registry.ca_file}
        store_a, store_b = str(work / "store-a"), str(work / "store-b")
        built = module(fresh, "seal.cluster.cluster_image", {"name": name, "state": "built", "path": str(ctx), "store": store_a})
        assert built["changed"] is True
        seen = module(fresh, "seal.cluster.cluster_image", {"name": name, "state": "present", "pull": "never", "store": store_a})
        assert seen["changed"] is False and seen["digest"] == built["digest"]
        assert seen["runtime"] == "k3s" and seen["runtime_version"] == "v1.25.3+k3s1"
        pushed = module(fresh, "seal.cluster.cluster_image", dict(auth, name=name, state="pushed", store=store_a))
        pulled = module(fresh, "seal.cluster.cluster_image", dict(auth, name=name, state="present", store=store_b))
        assert pulled["changed"] is True and pulled["digest"] == pushed["digest"] == built["digest"]
        assert os.path.isfile(os.path.join(pulled["rootfs"], "bin", "k3s"))
    finally:
        registry.stop()


def test_registry_certs_makes_ca_certificate_and_htpasswd(fresh):
    path = fresh["work"] / "certs"
    result = module(fresh, "seal.cluster.registry_certs", {"path": str(path), "cluster": "fresh", "domain": "sea.hub",
                                                          "sans": ["192.0.2.10"], "username": "seal", "password": "pw-1"})
    assert result["changed"] is True
    assert (path / "ca.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (path / "htpasswd").read_text().startswith("seal:$2")
