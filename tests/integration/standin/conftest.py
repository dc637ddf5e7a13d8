"""Fixtures for testing the k3s stand-in on fleet nodes: the stand-in built once, a fleet of
3 masters + 1 node, the binary installed as /usr/local/bin/k3s with install.sh's symlinks and
units (K3S-REFERENCE.md §7), nodes driven over SSH."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TESTS, "fleet"))
sys.path.insert(0, os.path.join(TESTS, "standin"))
import build as standin_build  # noqa: E402
import fleet  # noqa: E402

FLEET = fleet.name_from_env("SEAL_STANDIN_FLEET", "standin")
VERSION = "v1.25.3+k3s1"
GRACE = 10  # K3S_STANDIN_NODE_GRACE on the nodes, seconds

UNIT = """[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/{name}.service.env
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/k3s \\
    {cmd} \\
"""


class Node:
    def __init__(self, name: str, ip: str, key: str):
        self.name, self.ip, self.key = name, ip, key

    def __repr__(self):
        return f"Node({self.name}, {self.ip})"

    def run(self, cmd: str, check: bool = True, timeout: float = 60, stdin: str | None = None):
        argv = fleet.ssh_argv(self.ip, self.key) + [cmd]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: `{cmd}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def out(self, cmd: str, **kw) -> str:
        return self.run(cmd, **kw).stdout

    def put(self, path: str, content: str, mode: int = 0o600) -> None:
        self.run(f"umask 077; mkdir -p {shlex.quote(os.path.dirname(path))}; cat > {shlex.quote(path)}; "
                 f"chmod {mode:o} {shlex.quote(path)}", stdin=content)

    def install_unit(self, kind: str, env: dict | None = None) -> str:
        """Write k3s.service / k3s-agent.service + env file like install.sh; return the unit name."""
        name = "k3s" if kind == "server" else "k3s-agent"
        self.put(f"/etc/systemd/system/{name}.service", UNIT.format(name=name, cmd=kind), 0o644)
        lines = "".join(f"{k}='{v}'\n" for k, v in (env or {}).items())
        self.put(f"/etc/systemd/system/{name}.service.env", lines, 0o600)
        # test-only knob of the stand-in: a short node-monitor grace period
        self.put(f"/etc/systemd/system/{name}.service.d/standin.conf",
                 f"[Service]\nEnvironment=K3S_STANDIN_NODE_GRACE={GRACE}s\n", 0o644)
        self.run(f"systemctl daemon-reload && systemctl enable {name} >/dev/null 2>&1")
        return name

    def wipe(self) -> None:
        """What k3s-uninstall.sh removes (enough for the stand-in): units, data, config."""
        self.run("systemctl stop k3s k3s-agent 2>/dev/null; systemctl disable k3s k3s-agent >/dev/null 2>&1; "
                 "systemctl reset-failed k3s k3s-agent 2>/dev/null; "
                 "rm -rf /etc/systemd/system/k3s*.service* /etc/rancher/k3s /var/lib/rancher/k3s; "
                 "systemctl daemon-reload", check=False)

    def kubectl(self, args: str, check: bool = True, timeout: float = 60):
        return self.run(f"k3s kubectl {args}", check=check, timeout=timeout)


@pytest.fixture(scope="session")
def standin_bin(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("standin") / "k3s"
    t = time.monotonic()
    standin_build.build(VERSION, str(out))
    print(f"\n[standin] built {out} in {time.monotonic() - t:.1f}s")
    return str(out)


@pytest.fixture(scope="module")
def nodes(standin_bin):
    t = time.monotonic()
    state = fleet.up(FLEET, masters=3, nodes=1)
    print(f"\n[standin] fleet up in {time.monotonic() - t:.1f}s")
    try:
        result = {}
        for n in state["nodes"]:
            node = Node(n["name"], n["ip"], state["key"])
            subprocess.run(["scp", "-q", "-i", state["key"], "-o", "StrictHostKeyChecking=no", "-o",
                            "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", standin_bin,
                            f"root@{n['ip']}:/usr/local/bin/k3s"], check=True, timeout=60)
            node.run("chmod 755 /usr/local/bin/k3s && cd /usr/local/bin && "
                     "for l in kubectl crictl ctr; do ln -sf k3s $l; done")
            result[n["name"].rsplit("-", 1)[1]] = node
        print(f"[standin] installed on {len(result)} nodes at {time.monotonic() - t:.1f}s")
        yield result
    finally:
        t = time.monotonic()
        fleet.down(FLEET)
        print(f"\n[standin] fleet down in {time.monotonic() - t:.1f}s")


def wait_for(fn, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
