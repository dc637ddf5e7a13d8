"""A Clusterfile is the inventory: `ansible -i Clusterfile all -m ping` reaches fleet nodes with
the Clusterfile's own credentials, by key and by password; ansible-inventory shows the groups."""
import json
import os
import subprocess
import sys

import pytest

import fleet

BIN = os.path.dirname(sys.executable)
NAME = fleet.name_from_env("SEAL_INVENTORY_FLEET", "itinv")


@pytest.fixture(scope="module")
def state():
    st = fleet.up(NAME, masters=1, nodes=2, host_extra={"node": {"labels": {"zone": "a"}}})
    yield st
    fleet.down(NAME)


def plain(value):
    """ansible-inventory --list shows a value that is data, never a template, as {"__ansible_unsafe": value}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def run(*argv):
    return subprocess.run(list(argv), cwd=fleet.ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg")))


@pytest.mark.parametrize("clusterfile", ["Clusterfile", "Clusterfile.passwd"])
def test_ping_with_the_clusterfiles_credentials(state, clusterfile):
    out = run(os.path.join(BIN, "ansible"), "-i", os.path.join(state["dir"], clusterfile), "all", "-m", "ping", "-o")
    assert out.returncode == 0, out.stdout + out.stderr
    assert sorted(line.split()[0] for line in out.stdout.splitlines() if "SUCCESS" in line) == sorted(n["ip"] for n in state["nodes"])
    assert state["password"] not in out.stdout + out.stderr


def test_inventory_groups_and_vars(state):
    out = run(os.path.join(BIN, "ansible-inventory"), "-i", os.path.join(state["dir"], "Clusterfile"), "--list")
    assert out.returncode == 0, out.stderr
    inv = json.loads(out.stdout)
    masters = [n["ip"] for n in state["nodes"] if n["role"] == "master"]
    workers = [n["ip"] for n in state["nodes"] if n["role"] == "node"]
    assert inv["master"]["hosts"] == masters and sorted(inv["node"]["hosts"]) == sorted(workers)
    assert inv["master0"]["hosts"] == masters[:1]
    assert "master" in inv["server"]["children"] and "node" in inv["agent"]["children"]
    assert sorted(inv["cluster_" + NAME.replace("-", "_")]["hosts"]) == sorted(masters + workers)
    raw = inv["_meta"]["hostvars"][workers[0]]
    assert raw["seal_labels"] == {"zone": {"__ansible_unsafe": "a"}}  # a Clusterfile is data: every value is unsafe
    hv = plain(raw)
    assert hv["ansible_host"] == workers[0] and hv["ansible_port"] == 22 and hv["seal_labels"] == {"zone": "a"}


@pytest.mark.parametrize("change, error", [
    ("roles: [node]\n      taints: [\"oops\"]",
     "spec.hosts[1].taints[0] (line %d): 'oops' is not a taint (key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"),
    ("roles: [node]\n      taints: [\"-k=v:NoSchedule\"]",
     "spec.hosts[1].taints[0] (line %d): '-k=v:NoSchedule' is not a taint: '-k' is not a label key"),
])
def test_bad_clusterfile_fails_before_any_host_is_touched(state, tmp_path, change, error):
    bad = tmp_path / "Clusterfile"
    with open(os.path.join(state["dir"], "Clusterfile"), encoding="utf-8") as f:
        text = f.read().replace("roles: [node]", change)
    bad.write_text(text)
    line = text.splitlines().index(change.splitlines()[1]) + 1
    out = run(os.path.join(BIN, "ansible-playbook"), "-i", str(bad), "playbooks/run.yml")
    assert out.returncode != 0
    assert error % line in out.stdout + out.stderr
    assert not subprocess.run(fleet.ssh_argv(state["nodes"][1]["ip"], state["key"]) + ["test", "-e", "/var/lib/seal"],
                              check=False).returncode == 0
