"""Verify of the Molecule scenario `lifecycle`: the cluster lifecycle on a fleet of 3 masters +
2 nodes, driven by editing the Clusterfile as a user does, each step followed by a re-run that
must report changed=0.

Molecule's converge installed what the Clusterfile lists (m1, m2, n1) and its idempotence step
re-ran it; from there: apply adds a master and a node -> every node's token file holds the secure
K10<CA hash> form, the hash that of the CA the server serves -> a controller that lost its token
file recovers it from a live server and changes nothing -> a joiner whose token names another CA
is refused (agent retries, server exits) -> unsafe deletions refused -> delete a node (gone from
the Clusterfile) -> a Node registered by hand with a foreign --node-ip is removed at the API level
and nothing connects to that address -> upgrade v1.25.3 -> v1.26.10 while the API is probed every
0.5 s (through k3s's etcd port move: v1.26.10 serves etcd's HTTP gateway on 127.0.0.1:2382 and
gRPC only on 2379, k3s PR #8402) -> a rebuilt master (reset, then run.yml) rejoins: its stale Node
goes first, k3s removes its etcd member, it joins as a learner and is promoted -> a downgrade and
a skipped minor are refused -> an unreachable node is removed at the API level -> reset. The
fleet's n3 is never in the Clusterfile: the tests run stand-ins on it by hand.

etcd is judged by Debian's etcdctl (gRPC, run on this machine with k3s's etcd client certificate
fetched from m1): the member count and a single cluster ID after every step that changes etcd.
The release matrix is split across tests to keep CI short: embedded etcd on v1.25.3 (before the
move) and v1.26.10 (after) here; sqlite and external etcd on a current release in
tests/integration/test_install_external_etcd.py.

The steps depend on each other and run in file order. ansible-playbook runs as a user would run
it, on the scenario's image store (SEAL_IMAGE_STORE, where prepare built both versions) and
state directory (~/.seal/mlc under the scenario's HOME).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(HERE))))  # the project: HERE is tests/fleet/molecule/lifecycle
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
import etcd_judge  # noqa: E402  pylint: disable=wrong-import-position
import fleet  # noqa: E402  pylint: disable=wrong-import-position

NAME = fleet.prefixed("mlc")
OLD, NEW, SKIP = "v1.25.3+k3s1", "v1.26.10+k3s1", "v1.28.0+k3s1"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
PROBE_INTERVAL = 0.5
# What reset must leave: no k3s process, unit, file under /etc/rancher, /var/lib/rancher,
# /var/lib/seal, binary, marked hosts entry, interface or iptables rule (prints "0 0" when clean).
LEFTOVERS = ("pgrep -af 'k3s (server|agent)'; systemctl list-unit-files 'k3s*' --no-legend; "
             "find /etc/rancher /var/lib/rancher /var/lib/seal -mindepth 1 2>/dev/null; ls /usr/local/bin/k3s 2>/dev/null; "
             "grep -c seal.cluster /etc/hosts; ip -o link show | grep -E 'cni0|flannel'; "
             "iptables-save | grep -ciE 'KUBE-|CNI-|flannel'")
PROBE_MAX_FAILED_PCT = 5.0
SECURE_TOKEN = re.compile(r"^K10([0-9a-f]{64})::server:([0-9a-f]{32})$")
ROGUE = NAME + "-rogue"


class Lifecycle:
    def __init__(self, state, work):
        self.state = state
        self.work = work
        self.masters = [n for n in state["nodes"] if n["role"] == "master"]
        # n3 stays out of every Clusterfile: the tests start stand-ins on it by hand
        self.agents = [n for n in state["nodes"] if n["role"] == "node" and n["name"] != NAME + "-n3"]
        self.store = os.environ["SEAL_IMAGE_STORE"]
        self.images = {version: "k3s:" + version.split("+")[0] for version in (OLD, NEW)}
        self.state_dir = os.path.expanduser("~/.seal/" + NAME)
        self.clusterfile = os.path.join(state["dir"], "Clusterfile.listed")

    def inventory(self, masters, agents):
        """Rewrite the Clusterfile to list the fleet's first `masters` masters and `agents` nodes."""
        fleet.write_private(self.clusterfile, fleet.clusterfile(self.state, masters, agents))
        return self.clusterfile

    def build(self, version):
        """Build the test cluster image k3s:<version> into the store with cluster_image."""
        context = os.path.join(self.work, "context-" + version)
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "standin", "make_rootfs.py"), "--version", version,
                        "--out", context], check=True, capture_output=True)
        self.images[version] = "k3s:" + version.split("+")[0]
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-m", "seal.cluster.cluster_image",
                               "-a", "name=%s state=built path=%s" % (self.images[version], context)],
                              cwd=ROOT, env=self.env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def env(self, **extra):
        # the test suite's ansible.cfg: the project's, with host key checking off for the fleet
        return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                    **extra)

    def play(self, playbook, inventory, version=OLD, *extra, expect_rc=0, env=None):
        # the ansible-playbook beside the interpreter running the tests (the project's .venv, also
        # when the tree was copied elsewhere without it, as /work/wt/molecule-as.sh does)
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", playbook),
                "-e", "image=" + self.images[version], *extra]
        env = self.env(**(env or {}))
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        out = proc.stdout + proc.stderr
        print("%s %s: rc=%d in %.1fs" % (playbook, " ".join(extra), proc.returncode, time.monotonic() - started))
        if expect_rc is not None:
            assert proc.returncode == expect_rc, out[-6000:]
        recap = {m.group(1): {"changed": int(m.group(3)), "unreachable": int(m.group(4)), "failed": int(m.group(5))}
                 for m in RECAP.finditer(out)}
        return out, recap

    def converge(self, playbook, inventory, version=OLD, *extra):
        """Run, then run again: the second run must change nothing."""
        out, _recap = self.play(playbook, inventory, version, *extra)
        again, recap = self.play(playbook, inventory, version, *extra)
        changed = {h: r["changed"] for h, r in recap.items() if r["changed"]}
        if changed:
            services = {m["name"]: self.ssh(m, "systemctl show -p NRestarts -p ActiveEnterTimestamp k3s; "
                                               "journalctl -u k3s -o cat --no-pager | grep -iE 'fatal|exited|Starting k3s' | tail -5",
                                            check=False) for m in self.masters}
            raise AssertionError("second run of %s changed %s:\n%s\nservers: %s" % (playbook, changed, again[-6000:], services))
        return out

    def ssh(self, node, command, check=True):
        proc = subprocess.run(fleet.ssh_argv(node["ip"], self.state["key"]) + [command], capture_output=True, text=True,
                              timeout=120, check=False)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def podman(self, *args, check=True):
        proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=False,
                              env=dict(os.environ, CONTAINERS_CONF=fleet.containers_conf()))
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def by_name(self, suffix):
        return next(n for n in self.state["nodes"] if n["name"] == NAME + suffix)

    def put(self, node, path, content):
        """A 0600 file on a node, its content through stdin (never in argv)."""
        subprocess.run(fleet.ssh_argv(node["ip"], self.state["key"]) + ["umask 077; cat > " + path], input=content,
                       text=True, capture_output=True, timeout=60, check=True)

    def install_standin(self, node):
        """Copy the cluster's k3s (the stand-in) from m1 to a node the inventory does not list."""
        binary = subprocess.run(fleet.ssh_argv(self.masters[0]["ip"], self.state["key"]) + ["cat /usr/local/bin/k3s"],
                                capture_output=True, timeout=120, check=True).stdout
        subprocess.run(fleet.ssh_argv(node["ip"], self.state["key"]) + ["cat > /usr/local/bin/k3s && chmod 755 /usr/local/bin/k3s"],
                       input=binary, capture_output=True, timeout=120, check=True)

    def nodes(self):
        return {n["metadata"]["name"]: n for n in
                json.loads(self.ssh(self.masters[0], "k3s kubectl get nodes -o json"))["items"]}

    def members(self, via=None):
        """Names of the etcd members as Debian's etcdctl lists them over gRPC on m1's (or via's)
        2379; asserts that every started member reports the same cluster ID."""
        return etcd_judge.members(self.state, via or self.masters[0], [m["ip"] for m in self.masters])


class Probe(threading.Thread):
    """GET /readyz every 0.5 s from the test machine with the admin client certificate of the
    kubeconfig the collection wrote. A probe succeeds when any master answers `ok` (masters
    tried in order, 1 s timeout each: what a client behind a load balancer or k3s's agent load
    balancer sees); each master's own answers are counted as well."""

    def __init__(self, kubeconfig, masters):
        super().__init__(daemon=True)
        with open(kubeconfig, encoding="utf-8") as f:
            kc = yaml.safe_load(f)
        self.tmp = tempfile.mkdtemp(prefix="probe-")
        files = {}
        for key, data in (("ca", kc["clusters"][0]["cluster"]["certificate-authority-data"]),
                          ("cert", kc["users"][0]["user"]["client-certificate-data"]),
                          ("key", kc["users"][0]["user"]["client-key-data"])):
            files[key] = os.path.join(self.tmp, key)
            with open(os.open(files[key], os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                f.write(base64.b64decode(data))
        self.ctx = ssl.create_default_context(cafile=files["ca"])
        self.ctx.load_cert_chain(files["cert"], files["key"])
        self.masters = masters
        self.stop = threading.Event()
        self.total = self.failed = 0
        self.per_master = {m: 0 for m in masters}

    def ready(self, ip):
        try:
            with urllib.request.urlopen("https://%s:6443/readyz" % ip, context=self.ctx, timeout=1) as resp:
                return resp.status == 200 and resp.read().strip() == b"ok"
        except Exception:  # noqa: BLE001 - any error is a failed probe
            return False

    def run(self):
        tick = time.monotonic()
        while not self.stop.is_set():
            answers = {}
            for ip in self.masters:
                answers[ip] = self.ready(ip)
            self.total += 1
            self.failed += not any(answers.values())
            for ip, ok in answers.items():
                self.per_master[ip] += not ok
            tick += PROBE_INTERVAL
            self.stop.wait(max(0.0, tick - time.monotonic()))

    def report(self):
        pct = 100.0 * self.failed / max(self.total, 1)
        per = ", ".join("%s %.1f%%" % (ip, 100.0 * n / max(self.total, 1)) for ip, n in self.per_master.items())
        return pct, "API probe during upgrade: %d probes every %.1fs, %d failed = %.2f%% (any master); per master: %s" % (
            self.total, PROBE_INTERVAL, self.failed, pct, per)


@pytest.fixture(scope="module")
def lc():
    work = tempfile.mkdtemp(prefix="lifecycle-")
    try:
        yield Lifecycle(fleet.load(NAME), work)
    finally:
        subprocess.run(["podman", "unpause", NAME + "-n1"], capture_output=True, check=False,
                       env=dict(os.environ, CONTAINERS_CONF=fleet.containers_conf()))
        shutil.rmtree(work, ignore_errors=True)


def client_view(lc):
    """Nodes as the Python kubernetes client reads them from the controller with the kubeconfig
    the collection wrote: {name: (labels, taints, kubelet version, Ready)}."""
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    api = config.new_client_from_config(config_file=os.path.join(lc.state_dir, "kubeconfig"))
    try:
        items = client.CoreV1Api(api).list_node().items
    finally:
        api.close()
    return {n.metadata.name: (n.metadata.labels, sorted((t.key, t.value or "", t.effect) for t in n.spec.taints or []),
                              n.status.node_info.kubelet_version,
                              [c.status for c in n.status.conditions if c.type == "Ready"]) for n in items}


def channel_view(lc):
    """The same through `k3s kubectl` on m1, the collection's channel."""
    return {name: (n["metadata"]["labels"], sorted((t["key"], t.get("value", ""), t["effect"]) for t in n["spec"].get("taints", [])),
                   n["status"]["nodeInfo"]["kubeletVersion"], [c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"])
            for name, n in lc.nodes().items()}


def test_1_converge_installed_what_the_clusterfile_lists(lc):
    nodes = lc.nodes()
    assert sorted(nodes) == [NAME + "-m1", NAME + "-m2", NAME + "-n1"]
    assert all(n["status"]["nodeInfo"]["kubeletVersion"] == OLD for n in nodes.values())
    assert len(lc.members()) == 2
    assert client_view(lc) == channel_view(lc)


def test_2_apply_adds_a_master_and_a_node(lc):
    inv = lc.inventory(3, 2)
    plan, recap = lc.play("apply.yml", inv, OLD, "--check", "--diff")
    assert "join %s" % lc.masters[2]["ip"] in plan and "join %s" % lc.agents[1]["ip"] in plan
    assert all(r["changed"] <= 1 for r in recap.values())  # only the plan line
    assert sorted(lc.nodes()) == [NAME + "-m1", NAME + "-m2", NAME + "-n1"]  # check mode changed nothing
    lc.converge("apply.yml", inv)
    nodes = lc.nodes()
    assert sorted(nodes) == [NAME + s for s in ("-m1", "-m2", "-m3", "-n1", "-n2")]
    assert len(lc.members()) == 3


def test_2b_joins_use_the_secure_token_of_the_served_ca(lc):
    """Read from the nodes' own token files, compared with /cacerts as m1 serves it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen("https://%s:6443/cacerts" % lc.masters[0]["ip"], context=ctx, timeout=10) as resp:
        served = hashlib.sha256(resp.read()).hexdigest()
    passwords = set()
    for node in lc.masters + lc.agents[:2]:
        mode, text = lc.ssh(node, "stat -c %a /etc/rancher/k3s/token && cat /etc/rancher/k3s/token").split("\n", 1)
        match = SECURE_TOKEN.match(text.strip())
        assert match, "%s: token file is not K10<64 hex>::server:<password>" % node["name"]
        assert match.group(1) == served, "%s: token names CA %s, the server serves %s" % (node["name"], match.group(1), served)
        assert mode == "600"
        passwords.add(match.group(2))
    with open(os.path.join(lc.state_dir, "token"), encoding="utf-8") as f:
        assert passwords == {f.read().strip()}


def test_2c_lost_controller_token_is_recovered_from_a_live_server(lc):
    inv = lc.inventory(3, 2)
    path = os.path.join(lc.state_dir, "token")
    with open(path, encoding="utf-8") as f:
        before = f.read()
    os.unlink(path)
    out, recap = lc.play("run.yml", inv, OLD)
    assert all(r["changed"] == 0 for r in recap.values()), recap
    assert "Keep the token recovered from a live server in %s" % path in out
    assert before.strip() not in out
    with open(path, encoding="utf-8") as f:
        assert f.read() == before
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_2c_lost_registry_ca_is_not_made_anew_for_a_running_cluster(lc):
    """The CA's key never left the controller: without it the run stops before any host changes."""
    inv = lc.inventory(3, 2)
    registry = os.path.join(lc.state_dir, "registry")
    os.rename(registry, registry + ".away")
    try:
        out, recap = lc.play("run.yml", inv, OLD, expect_rc=2)
        assert not os.path.exists(os.path.join(registry, "ca.crt"))
    finally:
        shutil.rmtree(registry, ignore_errors=True)
        os.rename(registry + ".away", registry)
    assert "the registry CA of cluster %s is not on this controller" % NAME in " ".join(out.split())
    assert "seal_registry_new_ca=true" in out
    assert all(r["changed"] == 0 for r in recap.values()), recap


def test_2d_joiners_refuse_a_server_whose_ca_is_not_the_tokens(lc):
    """A stand-in agent and server started by hand on n3 (not in the inventory) with the cluster's
    token but another CA's hash: the agent keeps retrying, the server exits, no Node appears."""
    n3 = lc.by_name("-n3")
    lc.install_standin(n3)
    token = lc.ssh(lc.masters[0], "cat /etc/rancher/k3s/token").strip()
    other = hashlib.sha256(b"another cluster's CA").hexdigest()
    lc.put(n3, "/root/wrong-ca-token", "K10%s::%s\n" % (other, token.split("::", 1)[1]))
    url = "https://%s:6443" % lc.masters[0]["ip"]
    message = "token CA hash does not match the Cluster CA certificate hash: %s != " % other
    agent = subprocess.run(fleet.ssh_argv(n3["ip"], lc.state["key"]) + [
        "timeout 15 k3s agent --server %s --token-file /root/wrong-ca-token --node-name %s-wrong-ca "
        "--data-dir /var/lib/wrong-ca-agent 2>&1; echo rc=$?" % (url, NAME)], capture_output=True, text=True, timeout=60)
    assert agent.stdout.count(message) >= 2, agent.stdout[-3000:]  # retried
    assert "rc=124" in agent.stdout  # still running when timeout stopped it
    server = subprocess.run(fleet.ssh_argv(n3["ip"], lc.state["key"]) + [
        "timeout 30 k3s server --server %s --token-file /root/wrong-ca-token --node-name %s-wrong-ca "
        "--data-dir /var/lib/wrong-ca-server 2>&1; echo rc=$?" % (url, NAME)], capture_output=True, text=True, timeout=60)
    assert message in server.stdout, server.stdout[-3000:]
    assert "rc=124" not in server.stdout and "rc=0" not in server.stdout  # exited on its own, failing
    assert NAME + "-wrong-ca" not in lc.nodes()
    lc.ssh(n3, "rm -rf /root/wrong-ca-token /var/lib/wrong-ca-agent /var/lib/wrong-ca-server")


def test_3_unsafe_deletions_are_refused_before_any_change(lc):
    inv = lc.inventory(3, 2)
    out, recap = lc.play("delete.yml", inv, OLD, "-e", "delete_hosts=" + lc.masters[2]["ip"], expect_rc=2)
    assert "would leave 2 etcd members" in out
    assert all(r["changed"] == 0 for r in recap.values())
    out, recap = lc.play("delete.yml", inv, OLD, "-e", "delete_hosts=" + ",".join(m["ip"] for m in lc.masters), expect_rc=2)
    assert "no live master of cluster %s outside the hosts to delete" % NAME in out.replace("\n", " ")
    assert all(r["changed"] == 0 for r in recap.values())
    assert len(lc.nodes()) == 5 and len(lc.members()) == 3


def test_4_delete_a_node_gone_from_the_inventory(lc):
    """A host gone from the inventory is removed at the API level only: its host is not touched
    (the collection no longer knows how to reach it); the user resets it by listing it again."""
    inv = lc.inventory(3, 1)
    n2 = lc.agents[1]
    out = lc.converge("delete.yml", inv)
    assert "delete agent %s (%s, node %s-n2): not in the inventory: removed from the API only; the host itself was not " \
           "touched" % (n2["ip"], n2["ip"], NAME) in " ".join(out.split())
    assert NAME + "-n2" not in lc.nodes()
    assert lc.ssh(n2, "systemctl is-active k3s-agent", check=False).strip() == "active"  # not touched
    record = json.loads(lc.ssh(lc.masters[0], "cat /var/lib/seal/%s/applied.json" % NAME))
    assert record["nodes"] == [lc.agents[0]["ip"]]
    lc.converge("reset.yml", lc.inventory(3, 2), OLD, "--limit", n2["ip"])
    assert lc.ssh(n2, LEFTOVERS, check=False).split() == ["0", "0"]
    assert sorted(lc.nodes()) == [NAME + suffix for suffix in ("-m1", "-m2", "-m3", "-n1")]


def test_4b_foreign_node_ip_is_removed_at_the_api_level_without_connecting(lc):
    """Anyone with the agent token can register a Node with any --node-ip: here a stand-in agent
    on n3 claims n2's address (n2 and n3 are not in the inventory). apply.yml removes the Node
    through the API and never connects to n2 (its sshd logs every connection)."""
    inv = lc.inventory(3, 1)
    n2, n3 = lc.agents[1], lc.by_name("-n3")
    assert n2["ip"] not in open(inv, encoding="utf-8").read() and n3["ip"] not in open(inv, encoding="utf-8").read()
    lc.install_standin(n3)
    lc.put(n3, "/root/rogue-token", lc.ssh(lc.agents[0], "cat /etc/rancher/k3s/token"))
    lc.ssh(n3, "systemd-run --unit rogue-agent /usr/local/bin/k3s agent --server https://%s:6443 --token-file /root/rogue-token "
               "--node-ip %s --node-name %s --data-dir /var/lib/rogue" % (lc.masters[0]["ip"], n2["ip"], ROGUE))
    deadline = time.monotonic() + 60
    while ROGUE not in lc.nodes():
        assert time.monotonic() < deadline, "the rogue agent did not register"
        time.sleep(2)
    assert [a["address"] for a in lc.nodes()[ROGUE]["status"]["addresses"] if a["type"] == "InternalIP"] == [n2["ip"]]
    # n2's sshd logs every connection (VERBOSE: "Connection from ..."); read through podman, not SSH
    container = n2["name"]
    lc.podman("exec", container, "sh", "-c", "echo 'LogLevel VERBOSE' > /etc/ssh/sshd_config.d/seal-test.conf && systemctl reload ssh")
    since = lc.podman("exec", container, "date", "+%s").strip()
    time.sleep(1)
    # a fresh SSH control path: a master connection left by an earlier run (ControlPersist)
    # would carry a new session to n2 without a new TCP connection, unseen by sshd's log
    out, recap = lc.play("apply.yml", inv, OLD, env={"ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(dir=lc.work)})
    assert "delete agent %s (%s, node %s): not in the inventory: removed from the API only; the host itself was not " \
           "touched" % (n2["ip"], n2["ip"], ROGUE) in " ".join(out.split())
    assert ROGUE not in lc.nodes()
    assert n2["ip"] not in recap
    log = lc.podman("exec", container, "journalctl", "-u", "ssh", "--since", "@" + since, "--no-pager", "-o", "cat")
    assert "Connection from" not in log and "Accepted" not in log, log
    # the check can fail: a connection does show
    lc.ssh(n2, "true")
    log = lc.podman("exec", container, "journalctl", "-u", "ssh", "--since", "@" + since, "--no-pager", "-o", "cat")
    assert "Connection from" in log, log
    lc.ssh(n3, "systemctl stop rogue-agent; rm -rf /root/rogue-token /var/lib/rogue /etc/rancher/node")
    lc.podman("exec", container, "sh", "-c", "rm /etc/ssh/sshd_config.d/seal-test.conf && systemctl reload ssh")
    _out, recap = lc.play("apply.yml", inv, OLD)
    assert all(r["changed"] == 0 for r in recap.values()), recap


def test_5_upgrade_with_api_probe(lc):
    inv = lc.inventory(3, 1)
    probe = Probe(os.path.join(lc.state_dir, "kubeconfig"), [m["ip"] for m in lc.masters])
    probe.start()
    try:
        lc.play("upgrade.yml", inv, NEW, "-e", "upgrade_drain=true")
    finally:
        probe.stop.set()
        probe.join()
    pct, line = probe.report()
    print(line)
    with open(os.path.join(ROOT, ".cache", "lifecycle-probe.txt"), "w", encoding="utf-8") as f:
        f.write(line + "\n")
    assert probe.total > 10
    assert pct < PROBE_MAX_FAILED_PCT, line
    versions = {name: n["status"]["nodeInfo"]["kubeletVersion"] for name, n in lc.nodes().items()}
    assert versions == {NAME + s: NEW for s in ("-m1", "-m2", "-m3", "-n1")}, versions
    assert client_view(lc) == channel_view(lc)
    for node in lc.masters + lc.agents[:1]:
        assert lc.ssh(node, "k3s --version").split()[2] == NEW
    assert len(lc.members()) == 3  # etcdctl over gRPC on 2379 after the move
    _out, recap = lc.play("upgrade.yml", inv, NEW, "-e", "upgrade_drain=true")
    assert all(r["changed"] == 0 for r in recap.values()), recap
    _out, recap = lc.play("apply.yml", inv, NEW)
    assert all(r["changed"] == 0 for r in recap.values()), recap


def test_5b_a_rebuilt_master_rejoins_through_run(lc):
    """m3 reset (as a re-imaged host would be) while its Node and etcd member remain: k3s would
    refuse its rejoin (duplicate node name). run.yml deletes the stale Node through m1; k3s's
    member controller removes the member before it lets the Node go; m3 joins as a learner and
    is promoted; a second run changes nothing."""
    inv = lc.inventory(3, 1)
    m3 = lc.masters[2]
    before = lc.members()
    assert len(before) == 3
    lc.converge("reset.yml", inv, NEW, "--limit", m3["ip"])
    assert NAME + "-m3" in lc.nodes() and lc.members() == before  # the Node and the member remain
    out = lc.converge("run.yml", inv, NEW)
    assert "Remove the Node this host left before it was reset or rebuilt" in out
    after = lc.members()
    assert len(after) == 3 and set(after) != set(before)  # m3 is a new member
    nodes = lc.nodes()
    assert sorted(nodes) == [NAME + s for s in ("-m1", "-m2", "-m3", "-n1")]
    assert nodes[NAME + "-m3"]["status"]["nodeInfo"]["kubeletVersion"] == NEW


def test_6_downgrade_and_skipped_minor_are_refused(lc):
    inv = lc.inventory(3, 1)
    out, recap = lc.play("upgrade.yml", inv, OLD, expect_rc=2)
    assert "refusing to downgrade to %s" % OLD in out and all(r["changed"] == 0 for r in recap.values())
    lc.build(SKIP)
    out, recap = lc.play("upgrade.yml", inv, SKIP, expect_rc=2)
    assert "upgrade one minor version at a time" in " ".join(out.split()) and all(r["changed"] == 0 for r in recap.values())
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in lc.nodes().values()} == {NEW}


def test_7_unreachable_node_is_removed_at_the_api_level(lc):
    inv = lc.inventory(3, 1)
    subprocess.run(["podman", "pause", NAME + "-n1"], check=True, env=dict(os.environ, CONTAINERS_CONF=fleet.containers_conf()))
    try:
        # no SSH connection sharing: a frozen host must time out, not hang on a shared connection
        out, recap = lc.play("delete.yml", inv, NEW, "-e", "delete_hosts=" + lc.agents[0]["ip"], "-e", "ansible_ssh_timeout=5",
                             env={"ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o UserKnownHostsFile=/dev/null "
                                                      "-o StrictHostKeyChecking=no -o ServerAliveInterval=2"})
        assert NAME + "-n1" not in lc.nodes()
    finally:
        subprocess.run(["podman", "unpause", NAME + "-n1"], check=True, env=dict(os.environ, CONTAINERS_CONF=fleet.containers_conf()))
    assert "is unreachable: its node is removed from the cluster at the API level only" in " ".join(out.split())
    assert recap[lc.agents[0]["ip"]]["failed"] == 0


def test_8_reset(lc):
    inv = lc.inventory(3, 2)
    lc.converge("reset.yml", inv, NEW)
    for node in lc.masters + lc.agents:
        left = lc.ssh(node, LEFTOVERS, check=False)
        assert left.split() == ["0", "0"], "%s: %s" % (node["name"], left)
