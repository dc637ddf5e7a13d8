"""The collection's runtime dependencies by Ansible's conventions: requirements.txt pins exactly
what plugins/ import on the controller (and what those need), requirements-dev.txt adds the
tooling on top of it, bindep.txt names the programs the controller-side code runs, and
meta/execution-environment.yml points ansible-builder at both."""
import ast
import glob
import importlib.metadata
import os
import re
import sys

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# module_utils that only the controller runs (cluster_image on localhost) and controller plugins
CONTROLLER_CODE = (glob.glob(os.path.join(ROOT, "plugins", "module_utils", "_image_*.py"))
                   + glob.glob(os.path.join(ROOT, "plugins", "plugin_utils", "*.py"))
                   + glob.glob(os.path.join(ROOT, "plugins", "action", "*.py")))


def pins(name):
    """{canonical name: version} of a requirements file, and its -r includes."""
    out, includes = {}, []
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("-r"):
                includes.append(line.split(None, 1)[1])
                continue
            req = Requirement(line)
            spec = str(req.specifier)
            assert spec.startswith("==") and "," not in spec, "%s: %s is not pinned" % (name, line)
            assert canonicalize_name(req.name) not in out, "%s pins %s twice" % (name, req.name)
            out[canonicalize_name(req.name)] = spec[2:]
    return out, includes


def third_party_imports():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("ansible", "ansible_collections")}


def closure(dists):
    """The distributions dists need, with their markers evaluated for this Python."""
    seen, todo = set(), [canonicalize_name(d) for d in dists]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in importlib.metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def test_runtime_requirements_are_exactly_what_plugins_import():
    runtime, includes = pins("requirements.txt")
    assert includes == []
    providers = importlib.metadata.packages_distributions()
    imported = {canonicalize_name(providers[name][0]) for name in third_party_imports()}
    assert {"oras", "cryptography", "bcrypt", "requests", "pyyaml"} <= imported
    assert "ansible-core" not in runtime
    assert set(runtime) == closure(imported)
    for name, version in runtime.items():
        assert importlib.metadata.version(name) == version, "the venv does not have %s==%s" % (name, version)


def test_dev_requirements_include_the_runtime_ones_and_pin_nothing_of_them_again():
    runtime = pins("requirements.txt")[0]
    dev, includes = pins("requirements-dev.txt")
    assert includes == ["requirements.txt"]
    assert set(dev) & set(runtime) == set()
    assert {"ansible-core", "ansible-builder", "ansible-lint", "molecule", "pytest"} <= set(dev)


def test_pyproject_names_the_direct_runtime_dependencies():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        listed = re.search(r"^dependencies = \[(.*)\]$", f.read(), re.M).group(1)
    names = {canonicalize_name(n) for n in re.findall(r'"([^"]+)"', listed)}
    providers = importlib.metadata.packages_distributions()
    assert names == {canonicalize_name(providers[n][0]) for n in third_party_imports()} | {"ansible-core"}


def test_bindep_names_every_program_the_controller_code_looks_up():
    with open(os.path.join(ROOT, "bindep.txt"), encoding="utf-8") as f:
        packages = {line.split()[0] for line in f if line.strip() and not line.startswith("#")}
    programs = set()
    for path in CONTROLLER_CODE:
        with open(path, encoding="utf-8") as f:
            programs |= set(re.findall(r"""shutil\.which\(["']([^"']+)["']""", f.read()))
    assert {"skopeo", "docker-registry"} <= programs
    assert programs <= packages
    assert {"sshpass", "openssh-client", "openssh-clients"} <= packages


def test_execution_environment_file_points_at_both_and_they_ship():
    with open(os.path.join(ROOT, "meta", "execution-environment.yml"), encoding="utf-8") as f:
        ee = yaml.safe_load(f)
    assert ee == {"version": 1, "dependencies": {"python": "requirements.txt", "system": "bindep.txt"}}
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        ignored = yaml.safe_load(f)["build_ignore"]
    assert not {"requirements.txt", "bindep.txt", "meta", "meta/execution-environment.yml"} & set(ignored)
    assert "requirements-dev.txt" in ignored
