"""run.yml with an external datastore (a real etcd on the fleet, datastore-endpoint given as a
secret config value): two servers share it without embedded etcd or `server`, every node is
Ready, a second run changes nothing, and neither the token nor the endpoint shows in the
output of a verbose run. Then deletions where the collection once inferred embedded etcd from
the etcd client certificates every k3s server has (K3S-REFERENCE §10): delete.yml removes a
server of the external-etcd cluster, and, on the same fleet reset and reinstalled with sqlite
(one master, one agent), an agent.

Release matrix: a current release (CURRENT, after k3s's etcd port move) here; embedded etcd
before and after the move is the Molecule lifecycle scenario's (one fleet each, shared by the
steps)."""
import json
import os
import subprocess
import tempfile

import pytest

import build_image
import fleet

NAME = fleet.name_from_env("SEAL_EXTERNAL_ETCD_FLEET", "itext")
CURRENT = "v1.33.5+k3s1"
TLS_ETCD = "/var/lib/rancher/k3s/server/tls/etcd"


def ssh(state, ip, command):
    return subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                          timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def cluster():
    state = fleet.up(NAME, masters=2, nodes=1, cluster_image="k3s:" + CURRENT.split("+", 1)[0])
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    try:
        etcd_host = state["nodes"][-1]["ip"]
        subprocess.run(["scp", "-q", "-i", state["key"], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                        "/usr/bin/etcd", f"root@{etcd_host}:/usr/local/sbin/etcd-ext"], check=True, timeout=60)
        ssh(state, etcd_host, f"systemd-run --unit etcd-ext /usr/local/sbin/etcd-ext --data-dir /var/lib/etcd-ext "
                              f"--listen-client-urls http://0.0.0.0:2379 --advertise-client-urls http://{etcd_host}:2379 "
                              f"--listen-peer-urls http://127.0.0.1:2380")
        endpoint = f"http://{etcd_host}:2379"
        extra = os.path.join(work, "vars.json")
        with open(extra, "w", encoding="utf-8") as f:
            json.dump({"seal_k3s_secret_config": {"datastore-endpoint": endpoint}}, f)
        env = dict(os.environ, SEAL_IMAGE_STORE=os.path.join(work, "store"), HOME=work,
                   ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"))
        build_image.build(CURRENT, env["SEAL_IMAGE_STORE"])
        yield state, env, extra, endpoint, work
    finally:
        fleet.down(NAME)


def run(env, state, extra, playbook="run.yml", inventory=None, *args):
    return subprocess.run([os.path.join(fleet.ROOT, ".venv", "bin", "ansible-playbook"), "-v", "-i",
                           inventory or os.path.join(state["dir"], "Clusterfile"), "playbooks/" + playbook,
                           *(["-e", "@" + extra] if extra else []), *args],
                          cwd=fleet.ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def unchanged(proc):
    assert proc.returncode == 0, proc.stdout[-4000:]
    changed = fleet.changed_by_host(proc.stdout)
    assert changed and all(n == 0 for n in changed.values()), changed


def node_names(state, server):
    return sorted(n["metadata"]["name"] for n in json.loads(ssh(state, server["ip"], "k3s kubectl get nodes -o json"))["items"])


def test_servers_share_the_external_etcd_and_secrets_stay_out_of_output(cluster):
    state, env, extra, endpoint, work = cluster
    first = run(env, state, extra)
    assert first.returncode == 0, first.stdout[-4000:]
    token = open(os.path.join(work, ".seal", NAME, "token"), encoding="utf-8").read().strip()
    assert oct(os.stat(os.path.join(work, ".seal", NAME, "token")).st_mode & 0o777) == "0o600"
    for text in (first.stdout, first.stderr):
        assert token not in text and endpoint not in text
    m1, m2 = [n for n in state["nodes"] if n["role"] == "master"]
    nodes = json.loads(ssh(state, m2["ip"], "k3s kubectl get nodes -o json"))["items"]
    assert len(nodes) == 3
    for node in nodes:
        assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == ["True"]
        assert "node-role.kubernetes.io/etcd" not in node["metadata"]["labels"]
    for server in (m1, m2):
        config = ssh(state, server["ip"], "cat /etc/rancher/k3s/config.yaml")
        assert f'datastore-endpoint: "{endpoint}"' in config and "server:" not in config and "cluster-init" not in config
        assert ssh(state, server["ip"], "stat -c %a /etc/rancher/k3s/config.yaml").strip() == "600"
    keys = ssh(state, state["nodes"][-1]["ip"], "ETCDCTL_API=3 /usr/local/sbin/etcd-ext --version >/dev/null; "
                                                 "ls /var/lib/etcd-ext/member/snap/db && echo present")
    assert "present" in keys
    second = run(env, state, extra)
    assert second.returncode == 0, second.stdout[-4000:]
    changed = fleet.changed_by_host(second.stdout)
    assert changed and all(n == 0 for n in changed.values()), changed


def test_delete_a_server_of_the_external_etcd_cluster(cluster):
    """Every server has etcd client certificates; the cluster has no embedded etcd: delete.yml
    deletes m2's Node and resets m2 without asking etcd anything."""
    state, env, extra, _endpoint, work = cluster
    m1, m2 = [n for n in state["nodes"] if n["role"] == "master"]
    assert ssh(state, m2["ip"], f"ls {TLS_ETCD}/client.crt {TLS_ETCD}/client.key").count("client.") == 2
    before = node_names(state, m1)
    deleted = run(env, state, extra, "delete.yml", None, "-e", "delete_hosts=" + m2["ip"])
    assert deleted.returncode == 0, deleted.stdout[-4000:]
    after = node_names(state, m1)
    assert len(after) == len(before) - 1 and not [n for n in after if n.endswith("-m2")]
    assert ssh(state, m2["ip"], "ls /usr/local/bin/k3s 2>/dev/null; echo done").strip() == "done"  # reset
    unchanged(run(env, state, extra, "delete.yml", None, "-e", "delete_hosts=" + m2["ip"]))


def test_delete_an_agent_of_a_sqlite_cluster(cluster):
    """The same fleet reset and reinstalled without datastore-endpoint: m1 alone on sqlite (which
    has the etcd certificates too) and the agent; delete.yml removes the agent."""
    state, env, extra, _endpoint, work = cluster
    m1 = [n for n in state["nodes"] if n["role"] == "master"][0]
    agent = [n for n in state["nodes"] if n["role"] == "node"][0]
    assert run(env, state, extra, "reset.yml").returncode == 0
    listed = os.path.join(work, "Clusterfile.sqlite")
    fleet.write_private(listed, fleet.clusterfile(state, masters=1, nodes=1))
    installed = run(env, state, None, "run.yml", listed)
    assert installed.returncode == 0, installed.stdout[-4000:]
    assert ssh(state, m1["ip"], "ls /var/lib/rancher/k3s/server/db/state.db /var/lib/rancher/k3s/server/db/etcd "
                                "2>&1; true").count("No such file") == 1  # sqlite, no etcd data
    assert ssh(state, m1["ip"], f"ls {TLS_ETCD}/client.crt").strip() == f"{TLS_ETCD}/client.crt"
    assert len(node_names(state, m1)) == 2
    deleted = run(env, state, None, "delete.yml", listed, "-e", "delete_hosts=" + agent["ip"])
    assert deleted.returncode == 0, deleted.stdout[-4000:]
    assert len(node_names(state, m1)) == 1
    unchanged(run(env, state, None, "delete.yml", listed, "-e", "delete_hosts=" + agent["ip"]))
