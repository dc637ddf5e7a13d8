"""Role controller's fact tasks (no host is contacted: set_fact only): every inventory host and the
controller get the same controller_cluster, derived once from the first master's inventory, with
each host's own view of the registry; the fact is never shown."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
HA = os.path.join(ROOT, "inventories", "ha", "Clusterfile")
MASTERS = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]

PLAYBOOK = """
- hosts: master:node
  gather_facts: false
  pre_tasks:
    - ansible.builtin.include_role:
        name: seal.cluster.controller
        tasks_from: fact
- hosts: master:node:localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "%(out)s/{{ inventory_hostname }}.json"
        content: "{{ controller_cluster | to_json }}"
      delegate_to: localhost
"""


def run_fact(tmp_path, *extra):
    out = tmp_path / "out"
    out.mkdir()
    playbook = tmp_path / "fact.yml"
    playbook.write_text(PLAYBOOK % {"out": out})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), HOME=str(tmp_path), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", HA, str(playbook), *extra], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, {p.stem: json.loads(p.read_text()) for p in out.iterdir()}


def test_every_host_gets_the_cluster_once_derived(tmp_path):
    shown, facts = run_fact(tmp_path)
    assert sorted(facts) == sorted(MASTERS + ["192.0.2.21", "192.0.2.22", "localhost"])
    first = facts[MASTERS[0]]
    assert first["name"] == "ha" and first["first_master"] == MASTERS[0]
    assert first["state_dir"] == str(tmp_path / ".seal" / "ha")
    assert (first["dir"], first["rootfs"], first["record"]) == (
        "/var/lib/seal/ha", "/var/lib/seal/ha/rootfs", "/var/lib/seal/ha/applied.json")
    assert first["image"] == {} and first["token"] == ""  # nothing resolved: tasks/main.yml does that
    per_host = ("registry", "distribution")
    for host, fact in facts.items():
        assert {k: v for k, v in fact.items() if k not in per_host} == {k: v for k, v in first.items() if k not in per_host}, host
    # how the image reaches each host: one seed (the first registry host), each host's own role
    assert {fact["distribution"]["seed"] for fact in facts.values()} == {MASTERS[0]}
    assert facts[MASTERS[1]]["distribution"]["role"] == "registry" and facts["192.0.2.21"]["distribution"]["role"] == "agent"
    assert first["converged"] == "/var/lib/seal/ha/converged.json"
    # each host's own registry view: a registry host resolves the domain to itself
    assert facts[MASTERS[1]]["registry"]["is_server"] and not facts["192.0.2.21"]["registry"]["is_server"]
    assert facts[MASTERS[1]]["registry"]["hosts_entries"] == [{"ip": MASTERS[1], "hostnames": ["sea.hub"]}]
    assert [e["ip"] for e in facts["192.0.2.21"]["registry"]["hosts_entries"]] == MASTERS
    assert "censored" in shown and '"registry"' not in shown


def test_inventory_values_and_token_come_from_the_first_master(tmp_path):
    _shown, facts = run_fact(tmp_path, "-e", "seal_data_root=/srv/seal", "-e", "seal_token=abc123")
    fact = facts["192.0.2.22"]
    assert fact["rootfs"] == "/srv/seal/ha/rootfs" and fact["token"] == "abc123"
