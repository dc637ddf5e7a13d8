"""The collection as an execution environment sees it: from the built tarball, ansible-builder
finds the Python and system dependencies (meta/execution-environment.yml), and `ansible-builder
create` with a version 3 definition naming the tarball gives a build context whose own galaxy and
introspection steps, run here as the container build would run them, install the collection and
list those dependencies. No container is built."""
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EE = """---
version: 3
images:
  base_image:
    name: quay.io/fedora/python-311:latest
dependencies:
  ansible_core:
    package_pip: ansible-core==%(core)s
  ansible_runner:
    package_pip: ansible-runner==%(runner)s
  galaxy:
    collections:
      - name: collections/%(tarball)s
        type: file
additional_build_files:
  - src: %(tarball)s
    dest: collections
"""


def run(*argv, cwd=None, collections=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    if collections:  # only there, as in a fresh image: not "already installed" anywhere else
        env["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    proc = subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def names(lines):
    return {line.split("#")[0].split()[0].split("==")[0] for line in lines}


def dev_pin(name):
    """The pin of name in requirements.txt or requirements-dev.txt (which includes it)."""
    lines = []
    for path in ("requirements.txt", "requirements-dev.txt"):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            lines += f.readlines()
    return next(line.split("==")[1].split("#")[0].strip() for line in lines if line.lower().startswith(name + "=="))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), ROOT)
    (path,) = out.glob("seal-cluster-*.tar.gz")
    return path


def test_introspect_reports_the_python_and_system_dependencies(tarball, tmp_path):
    run("ansible-galaxy", "collection", "install", str(tarball), "-p", str(tmp_path / "collections"),
        collections=tmp_path / "collections")
    report = yaml.safe_load(run("ansible-builder", "introspect", "--sanitize", str(tmp_path / "collections")).split("---", 1)[1])
    # PyYAML is left out on purpose: ansible-builder counts it as part of every EE (EXCLUDE_REQUIREMENTS)
    assert {"bcrypt", "cryptography", "oras", "requests"} <= names(report["python"])
    assert all(line.endswith("# from collection seal.cluster") for line in report["python"] + report["system"])
    assert {"openssh-client", "openssh-clients", "sshpass", "skopeo", "docker-registry", "zstd"} == names(report["system"])


def test_create_gives_a_build_context_that_installs_the_collection_and_its_dependencies(tarball, tmp_path):
    (tmp_path / tarball.name).write_bytes(tarball.read_bytes())
    definition = tmp_path / "execution-environment.yml"
    definition.write_text(EE % {"core": dev_pin("ansible-core"), "runner": dev_pin("ansible-runner"), "tarball": tarball.name})
    context = tmp_path / "context"
    run("ansible-builder", "create", "-f", str(definition), "-c", str(context))
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==%s ansible-runner==' % dev_pin("ansible-core") in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert (context / "_build" / "collections" / tarball.name).read_bytes() == tarball.read_bytes()
    # the galaxy stage (WORKDIR /build = _build), then the builder stage's introspection
    share = tmp_path / "share"
    run("ansible-galaxy", "collection", "install", "-r", "requirements.yml", "--collections-path", str(share),
        cwd=str(context / "_build"), collections=share)
    assert (share / "ansible_collections" / "seal" / "cluster" / "meta" / "execution-environment.yml").is_file()
    pip, bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    run("python", str(context / "_build" / "scripts" / "introspect.py"), "introspect", str(share),
        "--write-pip", str(pip), "--write-bindep", str(bindep))
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        runtime = {line.split("#")[0].strip() for line in f if line.split("#")[0].strip()}
    assert {line.split("#")[0].strip() for line in pip.read_text().splitlines() if line} == runtime - {"PyYAML==6.0.3"}
    assert "skopeo" in names(bindep.read_text().splitlines())
    # bindep reads the file and finds every package it names for this platform installed
    # (scripts/setup.sh installs them on the test machine)
    assert run("bindep", "--file", str(bindep), "--brief").strip() == ""
