"""The judge of a fleet's embedded etcd: Debian's etcdctl (package etcd-client, installed by
scripts/setup.sh), run on this machine over gRPC against the servers' client port 2379 with
k3s's etcd client certificate, fetched from one server into a private temporary directory.

Neither the collection nor the stand-in wrote it, so it judges both: `members()` lists the
member names and checks that every server that answers reports one and the same cluster ID
(two clusters after a botched rejoin would show two)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import fleet

TLS = "/var/lib/rancher/k3s/server/tls/etcd"
FILES = ("server-ca.crt", "client.crt", "client.key")


class Judge:
    def __init__(self, state: dict, via: dict):
        self.state, self.via = state, via
        self.dir = tempfile.mkdtemp(prefix="etcd-judge-")
        for name in FILES:
            data = subprocess.run(fleet.ssh_argv(via["ip"], state["key"]) + [f"cat {TLS}/{name}"], capture_output=True,
                                  timeout=60, check=True).stdout
            fd = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def etcdctl(self, ip: str, *args: str) -> subprocess.CompletedProcess:
        argv = ["etcdctl", "--endpoints", f"https://{ip}:2379", "--cacert", os.path.join(self.dir, "server-ca.crt"),
                "--cert", os.path.join(self.dir, "client.crt"), "--key", os.path.join(self.dir, "client.key"),
                "--dial-timeout", "3s", "--command-timeout", "10s", "-w", "json", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                              env=dict(os.environ, ETCDCTL_API="3"))


def members(state: dict, via: dict, servers: list[str]) -> list[str]:
    """Sorted member names (learners marked "name (learner)") as `via` lists them; asserts that
    all of `servers` that answer share via's cluster ID."""
    judge = Judge(state, via)
    try:
        proc = judge.etcdctl(via["ip"], "member", "list")
        assert proc.returncode == 0, f"etcdctl member list on {via['ip']}: {proc.stderr}"
        listed = json.loads(proc.stdout)
        cluster = listed["header"]["cluster_id"]
        names = sorted(m.get("name", "") + (" (learner)" if m.get("isLearner") else "") for m in listed["members"])
        ids = {}
        for ip in servers:
            status = judge.etcdctl(ip, "endpoint", "status")
            if status.returncode == 0:
                ids[ip] = json.loads(status.stdout)[0]["Status"]["header"]["cluster_id"]
        assert set(ids.values()) == {cluster}, f"etcd cluster IDs differ: {ids} (member list of {via['ip']}: {cluster})"
        return names
    finally:
        judge.close()
