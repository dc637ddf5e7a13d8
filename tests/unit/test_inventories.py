"""inventories/: every example parses and passes run.yml's syntax check; the estate example
documents every variable the roles, playbooks and the Clusterfile plugin use, with the roles'
defaults; the bare command without an inventory says what to create; the demo's inventory never
replaces a user's own."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
import demo_inventory  # noqa: E402  pylint: disable=wrong-import-position

INVENTORIES = os.path.join(ROOT, "inventories")
# the examples as tracked; never the user's own inventories/default/Clusterfile
EXAMPLES = sorted(p for p in glob.glob(os.path.join(INVENTORIES, "*", "Clusterfile")) if "/default/" not in p) + [
    os.path.join(INVENTORIES, "estate", "hosts.yml"),
    os.path.join(INVENTORIES, "default", "Clusterfile.sample"),
]
ESTATE_VARS = sorted(glob.glob(os.path.join(INVENTORIES, "estate", "**", "*.yml"), recursive=True))


def ansible(*argv, cwd=ROOT, config=os.path.join(ROOT, "tests", "ansible.cfg")):
    """Run an Ansible command; config=None: as a user runs it (ansible.cfg from cwd, defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    if config:
        env["ANSIBLE_CONFIG"] = config
        # any inventory that does not parse is an error here, not a warning
        env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
    env["ANSIBLE_NOCOLOR"] = "1"
    return subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_examples_users_copy_are_all_here():
    names = {os.path.relpath(p, INVENTORIES) for p in EXAMPLES}
    assert {"single-master/Clusterfile", "ha/Clusterfile", "external-etcd/Clusterfile", "external-registry/Clusterfile",
            "estate/hosts.yml", "default/Clusterfile.sample"} <= names
    assert not os.path.exists(os.path.join(INVENTORIES, "default", "Clusterfile")) or \
        subprocess.run(["git", "check-ignore", "-q", "inventories/default/Clusterfile"], cwd=ROOT, check=False).returncode == 0


def _unwrap(obj):
    """ansible-inventory --list shows a Clusterfile's values (unsafe: never templated) as {"__ansible_unsafe": v}."""
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


@pytest.mark.parametrize("inventory", EXAMPLES, ids=lambda p: os.path.relpath(p, INVENTORIES))
def test_example_parses_and_passes_the_syntax_check(inventory):
    listed = ansible("ansible-inventory", "-i", inventory, "--list")
    assert listed.returncode == 0, listed.stderr
    inv = json.loads(listed.stdout, object_hook=_unwrap)
    masters = inv["master"]["hosts"]
    assert masters and inv["node"]["hosts"]
    first = inv["_meta"]["hostvars"][masters[0]]
    assert first["seal_image"] == "k3s:v1.25.3" and first["ansible_host"]
    checked = ansible("ansible-playbook", "-i", inventory, "playbooks/run.yml", "--syntax-check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_external_datastore_example_reaches_the_servers_config():
    inv = json.loads(ansible("ansible-inventory", "-i", os.path.join(INVENTORIES, "external-etcd", "Clusterfile"),
                             "--list").stdout, object_hook=_unwrap)
    hv = inv["_meta"]["hostvars"][inv["master"]["hosts"][0]]
    assert hv["seal_k3s_secret_config"]["datastore-endpoint"].startswith("https://")
    assert set(hv["seal_k3s_server_config"]) == {"datastore-cafile", "datastore-certfile", "datastore-keyfile"}


def _variables_in_use():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml")):
        with open(path, encoding="utf-8") as f:
            names |= set(yaml.safe_load(f) or {})
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        with open(path, encoding="utf-8") as f:
            for spec in yaml.safe_load(f)["argument_specs"].values():
                names |= set(spec.get("options") or {})
    registered = set()
    for path in glob.glob(os.path.join(ROOT, "roles", "**", "*.yml"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "playbooks", "**", "*.yml"), recursive=True):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        names |= set(re.findall(r"\bseal_[a-z0-9_]+", text))
        registered |= set(re.findall(r"^\s*register:\s*(seal_[a-z0-9_]+)", text, re.M))
    # in Python, a variable's name reaches Ansible only as a string (Python's own names do not)
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            names |= set(re.findall(r"[\"'](seal_[a-z0-9_]+)[\"']", f.read()))
    # a registered result is the play's own, not a variable for the inventory
    return names - registered


def _clusterfile_hostvars(tmp_path):
    """Every host variable the Clusterfile plugin can set: key, password and key-with-passphrase hosts."""
    key = tmp_path / "key"
    key.write_text("not a real key\n")
    text = ("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  ssh: {user: root, passwd: x}\n"
            "  hosts:\n    - {ips: [192.0.2.1], roles: [master]}\n"
            "    - {ips: [192.0.2.2], roles: [node], ssh: {pk: '%s'}}\n"
            "    - {ips: [192.0.2.3], roles: [node], ssh: {pk: '%s', pkPasswd: y}}\n" % (key, key))
    names = {"seal_clusterfile"}  # added by the inventory plugin itself
    for doc in cf.load(text):
        for _ip, hostvars, _groups in cf.hosts_of(doc):
            names |= set(hostvars)
    return names


def test_estate_example_documents_every_variable(tmp_path):
    text = "".join(open(p, encoding="utf-8").read() for p in ESTATE_VARS)
    documented = set(re.findall(r"\b[a-z][a-z0-9_]+\b", text))
    wanted = _variables_in_use() | _clusterfile_hostvars(tmp_path)
    assert {"prepare_sysctls", "seal_k3s_secret_config", "ansible_password", "controller_image"} <= wanted
    assert sorted(wanted - documented) == []


def _literal(value):
    if isinstance(value, str):
        return "{{" not in value
    if isinstance(value, dict):
        return all(_literal(v) for v in value.values())
    if isinstance(value, list):
        return all(_literal(v) for v in value)
    return True


def test_estate_example_shows_the_roles_literal_defaults():
    with open(os.path.join(INVENTORIES, "estate", "group_vars", "all", "roles.yml"), encoding="utf-8") as f:
        # a value may go on over lines that begin with "#   "
        shown = {name: re.sub(r"\n#   ", " ", value)
                 for name, value in re.findall(r"^# ([a-z][a-z0-9_]+): (.+(?:\n#   .+)*)$", f.read(), re.M)}
    defaults = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "defaults", "main.yml")):
        with open(path, encoding="utf-8") as f:
            defaults.update(yaml.safe_load(f) or {})
    literal = {name: value for name, value in defaults.items() if _literal(value)}
    assert {"prepare_sysctls", "registry_timeout", "runtime_server_url", "delete_hosts"} <= set(literal)
    for name, value in sorted(literal.items()):
        assert name in shown, name
        assert yaml.safe_load(shown[name]) == value, (name, shown[name])


@pytest.fixture
def bare_checkout(tmp_path):
    """What a fresh clone holds for the bare command: ansible.cfg, playbooks/, inventories/ as
    tracked (no inventories/default/Clusterfile), the collection where ansible.cfg looks."""
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "ansible.cfg", "playbooks", "inventories"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), tmp_path / rel)
    os.makedirs(tmp_path / ".cache")
    os.symlink(os.path.join(ROOT, ".cache", "collections"), tmp_path / ".cache" / "collections")
    return tmp_path


def test_bare_command_without_an_inventory_says_what_to_create(bare_checkout):
    out = ansible("ansible-playbook", "playbooks/run.yml", "-e", "image=k3s:v1.25.3", cwd=bare_checkout, config=None)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0
    default = os.path.join(str(bare_checkout), "inventories", "default", "Clusterfile")
    assert "no inventory: %s does not exist" % default in text, text[-3000:]
    assert "`cp %s.sample %s`" % (default, default) in text
    assert "localhost : ok=0 changed=0 unreachable=0 failed=1" in text


def test_bare_command_names_an_inventory_without_masters(bare_checkout):
    default = bare_checkout / "inventories" / "default" / "Clusterfile"
    default.write_text("not: [a, Clusterfile]\n")
    out = ansible("ansible-playbook", "playbooks/run.yml", cwd=bare_checkout, config=None)
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0 and "has no host in group 'master'" in text and str(default) in text


def _state(tmp_path):
    fleet_dir = tmp_path / "fleet"
    fleet_dir.mkdir()
    (fleet_dir / "known_hosts").write_text("192.0.2.7 ssh-ed25519 AAAA\n")
    return {"name": "demo", "dir": str(fleet_dir), "key": str(fleet_dir / "id_ed25519"), "password": "pw",
            "cluster_image": "k3s:v1.25.3", "nodes": [{"name": "demo-m1", "ip": "192.0.2.7", "role": "master"}]}


def test_demo_inventory_is_marked_and_points_ssh_at_the_fleets_host_keys(tmp_path, monkeypatch):
    state = _state(tmp_path)
    monkeypatch.setattr(demo_inventory.fleet, "load", lambda name: state)
    root = tmp_path / "repo"
    assert demo_inventory.write("demo", str(root), store="/store") == [demo_inventory.CLUSTERFILE, demo_inventory.GROUP_VARS]
    clusterfile = (root / demo_inventory.CLUSTERFILE).read_text()
    assert clusterfile.splitlines()[0] == demo_inventory.MARKER
    (doc,) = cf.load(clusterfile)
    assert [ip for ip, _hv, _groups in cf.hosts_of(doc)] == ["192.0.2.7"]
    group_vars = yaml.safe_load((root / demo_inventory.GROUP_VARS).read_text())
    assert group_vars == {"ansible_ssh_common_args": "-o UserKnownHostsFile=%s/known_hosts" % state["dir"],
                          "seal_image_store": "/store"}
    assert oct(os.stat(root / demo_inventory.CLUSTERFILE).st_mode & 0o777) == "0o600"
    assert demo_inventory.write("demo", str(root), store="/store")  # its own files: rewritten
    assert demo_inventory.remove(str(root)) == [demo_inventory.CLUSTERFILE, demo_inventory.GROUP_VARS]
    assert not (root / demo_inventory.CLUSTERFILE).exists()
    assert os.listdir(root / "inventories" / "default") == []


@pytest.mark.parametrize("rel", [demo_inventory.CLUSTERFILE, demo_inventory.GROUP_VARS])
def test_demo_never_overwrites_nor_removes_a_users_inventory(tmp_path, monkeypatch, rel):
    monkeypatch.setattr(demo_inventory.fleet, "load", lambda name: _state(tmp_path))
    root = tmp_path / "repo"
    mine = root / rel
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own cluster\napiVersion: sealer.io/v2\n")
    with pytest.raises(demo_inventory.DemoInventoryError, match="exists and is not the demo's"):
        demo_inventory.write("demo", str(root))
    assert mine.read_text() == "# my own cluster\napiVersion: sealer.io/v2\n"
    assert not any((root / other).exists() for other in (demo_inventory.CLUSTERFILE, demo_inventory.GROUP_VARS)
                   if other != rel)
    assert demo_inventory.remove(str(root)) == []
    assert mine.exists()
