"""Config strictness of k3s v1.25.3 on the fleet, and the collection coping with it (issue 22 items
5 and 6). One fleet (2 masters + 1 node) is shared by both halves to keep CI time down:

- the stand-in (run by hand, as k3s would be): a node-ip that is a name is fatal; `k3s agent`
  defines neither system-default-registry nor (before v1.26.13) disable-default-registry-endpoint;
  a server joining with another cluster-cidr is refused (critical configuration), one with another
  `disable: [traefik]` is not (left to the unit tests);
- the collection, with an inventory whose ansible_host is the host NAME (SSH reaches the address
  through -o HostName): k3s_runtime writes the address the name resolves to on the host; an agent
  given the cluster token while the cluster has an agent token is refused by the server (401) and
  the role fails within runtime_wait_timeout with that cause instead of hanging in `systemctl
  start`; a joining server with another cluster-cidr (k3s exits, systemd restarts it) fails the
  module early with that cause; with seal_agent_token the agent joins, and a second run changes nothing; a node-ip name
  that does not resolve is refused before anything changes.
Tests run in order and share the fleet."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import Node, VERSION, fleet, wait_for

pytestmark = pytest.mark.fleet
NAME = fleet.name_from_env("SEAL_STANDIN_CONFIG_FLEET", "stcfg")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
ROOTFS = "/opt/seal-test/rootfs"
K3S = ROOTFS + "/bin/k3s"
PASSWORD = "c0ffee" * 5 + "00"
AGENT_PASSWORD = "a9e47" * 6 + "00"
TIMEOUT = 20  # runtime_wait_timeout of the refused agent

PLAYBOOK_SERVER = """
- hosts: master1
  gather_facts: false
  tasks:
    - seal.cluster.k3s_runtime:
        role: server
        rootfs: {rootfs}
        token: "{{{{ cluster_password }}}}"
        agent_token: "{{{{ agent_password }}}}"
        config: {{cluster-init: true, node-ip: "{{{{ ansible_host }}}}", write-kubeconfig-mode: "0600"}}
        wait_timeout: 240
"""
PLAYBOOK_JOINER = """
- hosts: master2
  gather_facts: false
  tasks:
    - seal.cluster.k3s_runtime:
        role: server
        rootfs: {rootfs}
        token: "{{{{ cluster_token }}}}"
        config: {{server: "{{{{ server_url }}}}", node-ip: "{{{{ ansible_host }}}}", cluster-cidr: 10.52.0.0/16}}
        wait_timeout: 240
"""
PLAYBOOK_AGENT = """
- hosts: node1
  gather_facts: false
  tasks:
    - ansible.builtin.include_role: {{name: seal.cluster.runtime}}
      vars:
        controller_cluster: {{rootfs: {rootfs}, token: "{{{{ cluster_token }}}}", registry: {{registries: {{}}, auth: {{}}}}}}
        runtime_role: agent
        runtime_server_url: "{{{{ server_url }}}}"
"""


def ansible_playbook(state, nodes, text, tmp_path, extra):
    """ansible-playbook over an inventory whose ansible_host is each host's name."""
    inventory = {"all": {"vars": {"ansible_user": "root", "ansible_ssh_private_key_file": state["key"]},
                         "children": {}}}
    for group, node in nodes.items():
        inventory["all"]["children"][group] = {"hosts": {group: {
            "ansible_host": node.name, "ansible_ssh_common_args": f"-o HostName={node.ip}"}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(text.format(rootfs=ROOTFS))
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    started = time.monotonic()
    out = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                          str(tmp_path / "play.yml"), "-e", "@" + str(tmp_path / "extra.json")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                         env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg")))
    return out, time.monotonic() - started


@pytest.fixture(scope="module")
def fl(standin_bin):
    state = fleet.up(NAME, masters=2, nodes=1)
    try:
        nodes = {}
        for n in state["nodes"]:
            node = Node(n["name"], n["ip"], state["key"])
            node.run(f"mkdir -p {ROOTFS}/bin")
            subprocess.run(["scp", "-q", "-i", state["key"], "-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", standin_bin,
                            f"root@{n['ip']}:{K3S}"], check=True, timeout=120)
            node.run(f"chmod 755 {K3S}")
            nodes[n["name"].rsplit("-", 1)[1]] = node
        yield state, nodes
    finally:
        fleet.down(NAME)


def test_standin_refuses_what_v1_25_3_refuses(fl):
    _state, nodes = fl
    m2, n1 = nodes["m2"], nodes["n1"]
    named = m2.run(f"timeout 60 {K3S} server --node-ip {m2.name} --token x", check=False, timeout=90)
    assert named.returncode == 1 and f"invalid node-ip: invalid ip format '{m2.name}'" in named.stderr, named
    for flag in ("--system-default-registry=sea.hub:5000", "--disable-default-registry-endpoint"):
        bad = n1.run(f"{K3S} agent --server https://{m2.ip}:6443 --token x {flag}", check=False)
        assert bad.returncode == 1 and "flag provided but not defined: -" + flag[2:].split("=")[0] in bad.stdout, bad
    assert VERSION == "v1.25.3+k3s1"
    m2.run("rm -rf /var/lib/rancher/k3s /etc/rancher")


def test_collection_installs_a_server_with_a_hostname_ansible_host(fl, tmp_path):
    state, nodes = fl
    m1 = nodes["m1"]
    out, _took = ansible_playbook(state, {"master1": m1}, PLAYBOOK_SERVER, tmp_path,
                                  {"cluster_password": PASSWORD, "agent_password": AGENT_PASSWORD})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f'node-ip: "{m1.ip}"' in m1.out("cat /etc/rancher/k3s/config.yaml")
    assert m1.name not in m1.out("cat /etc/rancher/k3s/config.yaml")
    internal = m1.out(f"k3s kubectl get node {m1.name} -o jsonpath='{{.status.addresses[0].address}}'").strip()
    assert internal == m1.ip
    assert PASSWORD not in out.stdout and AGENT_PASSWORD not in out.stdout


def test_standin_refuses_a_joining_server_with_other_critical_config(fl):
    _state, nodes = fl
    m1, m2 = nodes["m1"], nodes["m2"]
    token = m1.out("cat /var/lib/rancher/k3s/server/token").strip()
    joined = m2.run(f"timeout 90 {K3S} server --server https://{m1.ip}:6443 --token-file /dev/stdin --node-ip {m2.ip} "
                    "--cluster-cidr 10.52.0.0/16", check=False, timeout=120, stdin=token)
    assert joined.returncode == 1, joined
    assert ("starting kubernetes: preparing server: failed to validate server configuration: "
            "critical configuration value mismatch\"") in joined.stderr, joined.stderr
    assert m2.name not in m1.out("k3s kubectl get nodes")
    m2.run("rm -rf /var/lib/rancher/k3s /etc/rancher")


def test_collection_stops_waiting_for_a_server_k3s_refuses_to_join(fl, tmp_path):
    state, nodes = fl
    m1, m2 = nodes["m1"], nodes["m2"]
    extra = {"cluster_token": m1.out("cat /var/lib/rancher/k3s/server/token").strip(), "server_url": f"https://{m1.ip}:6443"}
    out, took = ansible_playbook(state, {"master2": m2}, PLAYBOOK_JOINER, tmp_path, extra)
    print(f"[config] joiner with another cluster-cidr failed after {took:.1f}s (wait_timeout 240s)")
    assert out.returncode != 0 and took < 120, (took, out.stdout[-3000:])
    assert "since it was started (systemd restarts it); this server's critical configuration" in out.stdout, out.stdout[-3000:]
    assert m2.name not in m1.out("k3s kubectl get nodes")
    m2.run("systemctl disable --now k3s >/dev/null 2>&1; systemctl reset-failed k3s; rm -rf /var/lib/rancher/k3s /etc/rancher")


def test_agent_given_the_cluster_token_fails_within_wait_timeout(fl, tmp_path):
    state, nodes = fl
    m1, n1 = nodes["m1"], nodes["n1"]
    cluster_token = m1.out("cat /var/lib/rancher/k3s/server/token").strip()
    out, took = ansible_playbook(state, {"node1": n1}, PLAYBOOK_AGENT, tmp_path,
                                 {"cluster_token": cluster_token, "server_url": f"https://{m1.ip}:6443",
                                  "runtime_wait_timeout": TIMEOUT})
    print(f"[config] refused agent failed after {took:.1f}s (wait_timeout {TIMEOUT}s)")
    assert out.returncode != 0 and took < TIMEOUT + 60, (took, out.stdout[-3000:])
    assert f"not ready after {TIMEOUT}s: service k3s-agent is activating" in out.stdout, out.stdout[-3000:]
    assert "the server refuses this node's token (401 Unauthorized)" in out.stdout
    assert PASSWORD not in out.stdout + out.stderr


def test_agent_with_the_agent_token_joins_and_a_second_run_changes_nothing(fl, tmp_path):
    state, nodes = fl
    m1, n1 = nodes["m1"], nodes["n1"]
    extra = {"cluster_token": m1.out("cat /var/lib/rancher/k3s/server/token").strip(),
             "server_url": f"https://{m1.ip}:6443", "seal_agent_token": AGENT_PASSWORD, "runtime_wait_timeout": 120}
    out, took = ansible_playbook(state, {"node1": n1}, PLAYBOOK_AGENT, tmp_path, extra)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    print(f"[config] agent joined with the agent token in {took:.1f}s")
    ca_hash = extra["cluster_token"][3:67]
    assert n1.out("cat /etc/rancher/k3s/token").strip() == f"K10{ca_hash}::node:{AGENT_PASSWORD}"
    assert f'node-ip: "{n1.ip}"' in n1.out("cat /etc/rancher/k3s/config.yaml")
    wait_for(lambda: "True" in m1.out(f"k3s kubectl get node {n1.name} -o "
                                      "jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}'", check=False),
             timeout=60, what="n1 Ready")
    again, _took = ansible_playbook(state, {"node1": n1}, PLAYBOOK_AGENT, tmp_path, extra)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    assert AGENT_PASSWORD not in out.stdout + again.stdout


def test_a_node_ip_name_that_does_not_resolve_is_refused_before_any_change(fl, tmp_path):
    state, nodes = fl
    m1, n1 = nodes["m1"], nodes["n1"]
    before = n1.out("sha256sum /etc/rancher/k3s/config.yaml /etc/rancher/k3s/token")
    extra = {"cluster_token": m1.out("cat /var/lib/rancher/k3s/server/token").strip(),
             "server_url": f"https://{m1.ip}:6443", "seal_agent_token": AGENT_PASSWORD,
             "runtime_node_ip": "no-such-node.invalid"}
    out, _took = ansible_playbook(state, {"node1": n1}, PLAYBOOK_AGENT, tmp_path, extra)
    assert out.returncode != 0
    assert "node-ip: 'no-such-node.invalid' is not an IP address and does not resolve on this host" in out.stdout
    assert n1.out("sha256sum /etc/rancher/k3s/config.yaml /etc/rancher/k3s/token") == before
    assert n1.out("systemctl is-active k3s-agent").strip() == "active"
