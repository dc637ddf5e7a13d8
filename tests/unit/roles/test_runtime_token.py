"""Role runtime's token step on the controller (no host is contacted): a new cluster token is made
only for a new cluster -- every master read (runtime_reports) and none holding data. With the
controller's copy lost, a master that could not be read (unreachable, not in the play) may hold
the cluster's data: the step refuses, says how to recover, and writes no token."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
EMPTY = {"role": "server", "has_token": False, "live": False, "holds_data": False, "has_data": False}
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: seal.cluster.runtime
        tasks_from: token
      vars:
        runtime_token_path: "%(token)s"
        runtime_reports: %(reports)s
"""


def run_token(tmp_path, reports):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    master:\n      hosts:\n        m1: {}\n        m2: {}\n")
    playbook = tmp_path / "token.yml"
    token = tmp_path / "state" / "token"
    token.parent.mkdir()
    playbook.write_text(PLAYBOOK % {"token": token, "reports": json.dumps(reports)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), HOME=str(tmp_path), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc, token


def test_a_new_cluster_gets_a_new_token(tmp_path):
    proc, token = run_token(tmp_path, {"m1": EMPTY, "m2": EMPTY})
    assert proc.returncode == 0, proc.stdout
    assert len(token.read_text().strip()) == 32 and oct(token.stat().st_mode & 0o777) == "0o600"


def test_no_token_is_made_while_a_master_could_not_be_read(tmp_path):
    for n, reports in enumerate(({"m1": EMPTY, "m2": {"unreachable": True, "changed": False, "msg": "timed out"}},
                                 {"m1": EMPTY})):  # m2 not in the play (--limit)
        (tmp_path / str(n)).mkdir()
        proc, token = run_token(tmp_path / str(n), reports)
        text = " ".join(proc.stdout.split())
        assert proc.returncode != 0
        assert "masters m2 could not be read and may hold the cluster's data" in text, text[-2000:]
        assert "restore %s from a backup" % token.parent in text
        assert not token.exists()


def test_no_token_is_made_for_servers_that_hold_data(tmp_path):
    proc, token = run_token(tmp_path, {"m1": dict(EMPTY, holds_data=True, has_data=True), "m2": EMPTY})
    text = " ".join(proc.stdout.split())
    assert proc.returncode != 0 and "m1 hold data but none has /var/lib/rancher/k3s/server/token" in text, text[-2000:]
    assert not token.exists()
