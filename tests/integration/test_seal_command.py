"""The `seal` command end to end on a podman fleet (1 master + 2 nodes), as a sealer/sealos user
drives it, each step checked on the cluster and in the stored Clusterfile (steps in file order):

bad input exits 2 with one line and no SSH connection (sshd journals) -> seal run IMAGE --masters
--nodes with --ask-pass, the password typed on a pseudo-terminal (no secret in any process's argv meanwhile) -> seal add -> seal status
-> seal apply -f with registry auth -> seal upgrade -> seal delete --yes (the last master refused)
-> seal status non-zero with the API down -> seal reset --yes -> neither the ssh password, the
registry password nor the cluster token appears under ~/.seal/<cluster>/runs/.

The fleet's name: $SEAL_COMMAND_FLEET (default sealcmd)."""
import fcntl
import json
import os
import pty
import re
import select
import shlex
import shutil
import stat
import subprocess
import tempfile
import termios
import time

import pytest
import yaml

import fleet

NAME = fleet.name_from_env("SEAL_COMMAND_FLEET", "sealcmd")
CLUSTER = "sc1"
REGISTRY_PASSWORD = "Reg-0nly-pw-7x"
pytestmark = pytest.mark.fleet


class Env:
    def __init__(self, work, state):
        self.work, self.state = work, state
        self.home = os.path.join(work, "home")
        self.store = os.path.join(work, "store")
        self.master = next(n for n in state["nodes"] if n["role"] == "master")
        self.n1, self.n2 = [n for n in state["nodes"] if n["role"] == "node"]
        self.pwfile = os.path.join(work, "ssh-password")
        fleet.write_private(self.pwfile, state["password"] + "\n")
        self.token = None

    @property
    def cluster_dir(self):
        return os.path.join(self.home, ".seal", CLUSTER)

    @property
    def stored(self):
        return os.path.join(self.cluster_dir, "Clusterfile")

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SEAL_"))}
        env.update(PATH=os.path.join(fleet.ROOT, ".venv", "bin") + os.pathsep + env["PATH"], HOME=self.home,
                   ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"), SEAL_IMAGE_STORE=self.store,
                   ANSIBLE_NOCOLOR="1")
        return env

    def seal(self, *argv, timeout=900):
        return subprocess.run([os.path.join(fleet.ROOT, ".venv", "bin", "seal"), *argv], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)

    def ssh(self, node, command, check=True):
        return subprocess.run(fleet.ssh_argv(node["ip"], self.state["key"]) + [command], capture_output=True, text=True,
                              timeout=120, check=check).stdout

    def nodes(self):
        """{node name: (Ready, version)} read on the master."""
        out = self.ssh(self.master, "k3s kubectl get nodes --no-headers")
        return {line.split()[0]: (line.split()[1], line.split()[-1]) for line in out.splitlines()}

    def clusterfile(self):
        with open(self.stored, encoding="utf-8") as f:
            return yaml.safe_load(f)


@pytest.fixture(scope="module")
def env():
    work = tempfile.mkdtemp(prefix="seal-command-")
    os.makedirs(os.path.join(work, "home"))
    python = os.path.join(fleet.ROOT, ".venv", "bin", "python")
    try:
        state = fleet.up(NAME, masters=1, nodes=2)
        e = Env(work, state)
        for version in ("v1.25.3+k3s1", "v1.26.0+k3s1"):
            subprocess.run([python, os.path.join(fleet.ROOT, "tests", "standin", "build_image.py"), "--version", version,
                            "--store", e.store], check=True, timeout=900, capture_output=True)
        yield e
    finally:
        fleet.down(NAME)
        shutil.rmtree(work, ignore_errors=True)


def sshd_since(e):
    """Turn on sshd's connection log on every node (read through podman, not SSH); the time."""
    for node in e.state["nodes"]:
        fleet.podman("exec", node["name"], "sh", "-c",
                     "echo 'LogLevel VERBOSE' > /etc/ssh/sshd_config.d/seal-test.conf && systemctl reload ssh")
    since = fleet.podman("exec", e.master["name"], "date", "+%s").strip()
    time.sleep(1)
    return since


def connections(e, since):
    return {node["name"]: fleet.podman("exec", node["name"], "journalctl", "-u", "ssh", "--since", "@" + since,
                                       "--no-pager", "-o", "cat").count("Connection from")
            for node in e.state["nodes"]}


def test_1_bad_input_exits_2_with_one_line_and_connects_nowhere(env):
    e = env
    since = sshd_since(e)
    m, n1 = e.master["ip"], e.n1["ip"]
    cases = [
        (["run", "k3s:v1.25.3", "--masters", m + ":70000"], "seal: --masters: '%s:70000': port '70000' is not a number" % m),
        (["run", "k3s:v1.25.3", "--masters", m + ".5"], "seal: --masters: '%s.5': '%s.5' is not an IP address" % (m, m)),
        (["run", "k3s:v1.25.3", "--masters", m, "--pk", "/no/key"], "seal: --pk /no/key: no such readable key file"),
        (["run", "k3s:v9.9.9", "--masters", m, "--nodes", n1], "seal: image k3s:v9.9.9 is not in the store"),
        (["run", "k3s:v1.25.3", "--masters", m, "--passwd", "x"], "seal: unrecognized arguments: --passwd x"),
        (["delete", "--nodes", n1, "--yes", "--cluster", CLUSTER], "seal: cluster %s has no Clusterfile" % CLUSTER),
    ]
    for argv, message in cases:
        out = e.seal(*argv)
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert out.stderr.startswith(message) and out.stderr.count("\n") == 1, (argv, out.stderr)
    assert connections(e, since) == {n["name"]: 0 for n in e.state["nodes"]}
    e.ssh(e.n1, "true")  # the check can fail: a connection does show
    assert connections(e, since)[e.n1["name"]] >= 1


def _argv_of_all_processes():
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


def _with_a_terminal(argv, env):
    """Start argv with a pseudo-terminal as its controlling terminal and stdin (where getpass
    prompts and reads), stdout and stderr pipes (so the progress is plain lines); (proc, the
    terminal's master side)."""
    master, slave = pty.openpty()

    def controlling_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=controlling_terminal)  # pylint: disable=subprocess-popen-preexec-fn
    os.close(slave)
    return proc, master


def _read_until(fd, end, timeout=60.0):
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and not (end and data.endswith(end)):
        ready, _w, _x = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            data += chunk
    return data


def test_2_run_installs_the_cluster(env):
    e = env
    argv = [os.path.join(fleet.ROOT, ".venv", "bin", "seal"), "run", "k3s:v1.25.3", "--masters", e.master["ip"], "--nodes",
            e.n1["ip"], "--ask-pass", "--cluster", CLUSTER]
    proc, tty = _with_a_terminal(argv, e.env())
    # --ask-pass: the prompt comes on the terminal, the password is typed there (echo off)
    prompt = _read_until(tty, b"SSH password: ")
    assert prompt.endswith(b"SSH password: "), prompt
    os.write(tty, e.state["password"].encode() + b"\n")
    seen, polls = set(), 0
    while proc.poll() is None:
        for line in _argv_of_all_processes():
            assert e.state["password"] not in line, "the ssh password is in a process's argv: %s" % line[:200]
            if "ansible-playbook" in line or "ssh " in line:
                seen.add(line.split()[0])
        polls += 1
        time.sleep(0.2)
    out, err = proc.communicate()
    echoed = _read_until(tty, b"", timeout=0.5)
    os.close(tty)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert polls > 10 and seen, "the process list was not seen while the run went on"
    assert e.state["password"] not in echoed.decode(errors="replace") + out + err
    # plain lines (stdout is a pipe): each phase with its hosts
    for line in ("image: started (1 hosts)", "prepare: started (2 hosts)", "join agents: 1/1 hosts done",
                 "gates: 1/1 hosts done", "seal: run k3s:v1.25.3 done (log: %s/runs/" % e.cluster_dir):
        assert line in out, out
    assert e.nodes() == {e.master["name"]: ("Ready", "v1.25.3+k3s1"), e.n1["name"]: ("Ready", "v1.25.3+k3s1")}
    value = e.clusterfile()
    assert value["metadata"]["name"] == CLUSTER and value["spec"]["image"] == "k3s:v1.25.3"
    assert value["spec"]["ssh"] == {"user": "root", "port": "22", "passwd": e.state["password"]}
    assert value["spec"]["hosts"] == [{"ips": [e.master["ip"]], "roles": ["master"]}, {"ips": [e.n1["ip"]], "roles": ["node"]}]
    assert stat.S_IMODE(os.stat(e.stored).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(e.cluster_dir).st_mode) == 0o700
    assert not os.path.exists(e.stored + ".next")
    runs = os.listdir(os.path.join(e.cluster_dir, "runs"))
    assert len(runs) == 1
    art = os.path.join(e.cluster_dir, "runs", runs[0], "artifacts", runs[0])
    for name in ("stdout", "rc", "status", "job_events", "command"):
        assert os.path.exists(os.path.join(art, name)), name
    with open(os.path.join(e.cluster_dir, "token"), encoding="utf-8") as f:
        e.token = f.read().strip()
    assert len(e.token) >= 16


def test_3_add_joins_a_node(env):
    e = env
    out = e.seal("add", "--nodes", e.n2["ip"], "--output", "json")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["event"] == "end" and events[-1]["rc"] == 0
    joins = [ev for ev in events if ev.get("phase") == "join agents" and ev["event"] == "phase_end"]
    assert [(ev["done"], ev["total"]) for ev in joins] == [(2, 2)]
    assert {ev["host"] for ev in events if ev["event"] == "host" and ev["phase"] == "join agents"} == {e.n1["ip"], e.n2["ip"]}
    assert e.nodes() == {n["name"]: ("Ready", "v1.25.3+k3s1") for n in e.state["nodes"]}
    assert e.clusterfile()["spec"]["hosts"][1:] == [{"ips": [e.n1["ip"]], "roles": ["node"]},
                                                    {"ips": [e.n2["ip"]], "roles": ["node"]}]


def test_4_status_reads_the_cluster(env):
    e = env
    out = e.seal("status")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cluster %s: healthy (API through %s)" % (CLUSTER, e.master["ip"]) in out.stdout
    for node in e.state["nodes"]:
        assert any(line.split()[:3] == [node["name"], "control-plane" if node["role"] == "master" else "agent", "Ready"]
                   for line in out.stdout.splitlines()), out.stdout
    assert "registry on %s answers (HTTP 200)" % e.master["ip"] in out.stdout
    st = json.loads(e.seal("status", "--output", "json").stdout)
    assert st["healthy"] and st["record"]["version"] == "v1.25.3+k3s1"
    assert st["registries"] == [{"host": e.master["ip"], "status": 200}]
    # each host's rootfs marker, read on the host, is the recorded image's digest (and shown, shortened)
    digest = st["record"]["digest"]
    assert digest.startswith("sha256:") and st["images"] == {n["ip"]: digest for n in e.state["nodes"]}
    assert all(e.ssh(n, "cat /var/lib/seal/%s/rootfs/.seal-digest" % CLUSTER).strip() == digest for n in e.state["nodes"])
    rows = [line.split() for line in out.stdout.splitlines() if line.split()[:1] in [[n["name"]] for n in e.state["nodes"]]]
    assert len(rows) == len(e.state["nodes"]) and all(row[-1] == digest[:19] for row in rows), out.stdout
    # a host whose rootfs is not the cluster's image makes the cluster unhealthy
    marker = "/var/lib/seal/%s/rootfs/.seal-digest" % CLUSTER
    e.ssh(e.n2, "cp %s %s.keep && echo sha256:%s > %s" % (marker, marker, "0" * 64, marker))
    try:
        bad = e.seal("status")
        assert bad.returncode == 1 and "problem: %s holds the rootfs of sha256:%s" % (e.n2["ip"], "0" * 64) in bad.stdout, bad.stdout
    finally:
        e.ssh(e.n2, "mv %s.keep %s" % (marker, marker))
    assert sorted(n["name"] for n in st["nodes"]) == sorted(n["name"] for n in e.state["nodes"])


SLOW_HOOK = "/usr/local/bin/python3.11"  # found before /usr/bin/python3.11 by Ansible's interpreter discovery


def _frames_in_tmux(e, argv, session, timeout=900):
    """Run argv in a tmux pane (a real terminal); capture the screen every 0.3 s until it ends."""
    rc_file = os.path.join(e.work, session + ".rc")
    script = os.path.join(e.work, session + ".sh")
    exports = "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in e.env().items() if k.isidentifier())
    with open(script, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n%s%s\necho $? > %s\nsleep 600\n" % (exports, " ".join(shlex.quote(a) for a in argv), rc_file))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", "sh", script], check=True)
    frames = []
    try:
        deadline = time.monotonic() + timeout
        while not os.path.exists(rc_file):
            assert time.monotonic() < deadline, "seal did not finish in the tmux pane"
            frames.append(subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                         check=True).stdout)
            time.sleep(0.3)
        frames.append(subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                     check=True).stdout)
        with open(rc_file, encoding="utf-8") as f:
            return int(f.read().strip()), frames
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _rows(frame):
    """{phase: (done, total, note)} of the live view's rows in one frame."""
    rows = {}
    for line in frame.splitlines():
        match = re.match(r"^\s*[-v>x] (\S+(?: \S+)?)\s.*?(\d+)/(\d+) hosts\s+\S+\s*(.*)$", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), int(match.group(3)), match.group(4).strip())
    return rows


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_4b_live_view_in_a_terminal_names_the_slowed_host(env):
    """A seal run on the converged cluster in tmux with n1 slowed on purpose (every module it
    runs starts 3 s late, a second past the view's SLOW_AFTER, so that 0.3 s frames catch it even
    where the module itself is quick): successive frames name n1 as the slow host, the counts
    of prepare (a module call on every host) advance, and the totals match the Clusterfile."""
    e = env
    fleet.podman("exec", "-i", e.n1["name"], "sh", "-c", "cat > %s && chmod 755 %s" % (SLOW_HOOK, SLOW_HOOK),
                 stdin='#!/bin/sh\nsleep 3\nexec /usr/bin/python3.11 "$@"\n')
    try:
        assert e.ssh(e.n1, "head -2 %s" % SLOW_HOOK).splitlines()[1] == "sleep 3"
        rc, frames = _frames_in_tmux(e, [os.path.join(fleet.ROOT, ".venv", "bin", "seal"), "run", "k3s:v1.25.3", "--masters",
                                         e.master["ip"], "--nodes", "%s,%s" % (e.n1["ip"], e.n2["ip"]),
                                         "--passwd-file", e.pwfile, "--cluster", CLUSTER], "seal-live-%s" % NAME)
    finally:
        fleet.podman("exec", e.n1["name"], "rm", "-f", SLOW_HOOK)
    assert rc == 0, frames[-1]
    rows = [_rows(frame) for frame in frames]
    slow = {note.split()[1] for frame in rows for _d, _t, note in frame.values() if note.startswith("slow: ")}
    # the controller (localhost) may be slow in the image phase; among the nodes only n1 ever is
    assert slow - {"localhost", e.master["ip"]} == {e.n1["ip"]}, slow
    # on a converged cluster an agent's one module call is in prepare (node_prepare reports the
    # rootfs and the runtime's record); its join has nothing to run
    prepares = [frame["prepare"] for frame in rows if "prepare" in frame]
    assert any(note.startswith("slow: %s" % e.n1["ip"]) for _d, _t, note in prepares), prepares
    # distribute: every host holds the image and its overlay, so the distribution play selects none
    totals = {"prepare": 3, "distribute": 0, "registry": 1, "init": 1, "join agents": 2, "gates": 1}
    final = rows[-1]
    for phase, total in totals.items():
        assert final[phase][:2] == (total, total), (phase, final)
        assert all(frame[phase][1] == total for frame in rows if phase in frame)
    seen = [frame["prepare"][0] for frame in rows if "prepare" in frame]
    assert any(0 < d < 3 for d in seen), seen  # a frame caught prepare part done: the count advanced
    assert "seal: run k3s:v1.25.3 done" in frames[-1]


def test_5_apply_f_with_registry_auth_replaces_the_stored_clusterfile(env):
    e = env
    value = e.clusterfile()
    # a user name that is in no node name: k3s_runtime's registry_auth is no_log, so Ansible masks its
    # values in everything the module returns, the node name among them (reported; not this test's subject)
    value["spec"]["registry"] = {"localRegistry": {"username": "pullbot", "password": REGISTRY_PASSWORD}}
    path = os.path.join(e.work, "Clusterfile.registry")
    fleet.write_private(path, yaml.safe_dump(value, sort_keys=False))
    probe = "curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:5000/v2/"
    assert e.ssh(e.master, probe) == "200"  # no auth yet
    out = e.seal("apply", "-f", path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert e.clusterfile()["spec"]["registry"]["localRegistry"]["password"] == REGISTRY_PASSWORD
    # the registry now wants the password (the nodes' registries.yaml carries it to k3s)
    assert e.ssh(e.master, probe) == "401"
    code = e.ssh(e.master, "curl -sk -o /dev/null -w '%%{http_code}' -u pullbot:%s https://127.0.0.1:5000/v2/" % REGISTRY_PASSWORD)
    assert code == "200"
    assert all(ready == "Ready" for ready, _v in e.nodes().values())


def test_6_upgrade(env):
    e = env
    out = e.seal("upgrade", "k3s:v1.26.0")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "upgrade servers: 1/1 hosts done" in out.stdout and "upgrade agents: 2/2 hosts done" in out.stdout
    assert e.nodes() == {n["name"]: ("Ready", "v1.26.0+k3s1") for n in e.state["nodes"]}
    assert e.clusterfile()["spec"]["image"] == "k3s:v1.26.0"


def test_7_delete(env):
    e = env
    before = open(e.stored, encoding="utf-8").read()
    out = e.seal("delete", "--masters", e.master["ip"], "--yes")
    assert out.returncode == 2 and "would remove the last master of cluster %s" % CLUSTER in out.stderr
    out = e.seal("delete", "--nodes", e.n2["ip"])
    assert out.returncode == 2 and "give --yes" in out.stderr
    assert open(e.stored, encoding="utf-8").read() == before
    out = e.seal("delete", "--nodes", e.n2["ip"], "--yes")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert set(e.nodes()) == {e.master["name"], e.n1["name"]}
    assert e.ssh(e.n2, "test -e /usr/local/bin/k3s && echo present || echo gone").strip() == "gone"
    assert [h["ips"] for h in e.clusterfile()["spec"]["hosts"]] == [[e.master["ip"]], [e.n1["ip"]]]


def test_8_status_is_not_healthy_without_the_api(env):
    e = env
    e.ssh(e.master, "systemctl stop k3s")
    try:
        out = e.seal("status")
        assert out.returncode == 1, out.stdout + out.stderr
        assert "NOT healthy" in out.stdout and "no master's API answers" in out.stdout
    finally:
        e.ssh(e.master, "systemctl start k3s")
    deadline = time.monotonic() + 120
    while e.seal("status").returncode != 0:
        assert time.monotonic() < deadline, "the cluster did not come back"
        time.sleep(3)


def test_9_reset(env):
    e = env
    out = e.seal("reset", "--yes")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for node in (e.master, e.n1):
        assert e.ssh(node, "test -e /usr/local/bin/k3s || test -e /var/lib/rancher/k3s && echo left || echo gone").strip() == "gone"
    assert not os.path.exists(e.stored) and os.path.exists(e.stored + ".reset")
    assert e.seal("status", "--cluster", CLUSTER).returncode == 2


def test_10_no_secret_under_the_runs(env):
    e = env
    runs = os.path.join(e.cluster_dir, "runs")
    assert len(os.listdir(runs)) >= 8
    secrets = {"ssh password": e.state["password"], "registry password": REGISTRY_PASSWORD, "token": e.token}
    for base, _dirs, files in os.walk(runs):
        for name in files:
            with open(os.path.join(base, name), "rb") as f:
                data = f.read()
            for what, secret in secrets.items():
                assert secret.encode() not in data, "the %s is in %s" % (what, os.path.join(base, name))
            assert b"[seal: redacted]" not in data, "a secret was redacted after the run in %s" % os.path.join(base, name)
