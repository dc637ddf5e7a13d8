"""The embedded etcd member: a real etcd process (Debian's etcd-server build, bundled in the
stand-in and extracted to DATA/data/<hash>/bin like k3s's own helper binaries), managed the
way k3s manages its in-process etcd: member name "<node-name>-<8 hex>", data in
DATA/server/db/etcd, TLS from DATA/server/tls/etcd, client 2379, peer 2380, metrics 2381 on
loopback; joiners add themselves as members through an existing member's client URL."""
from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import yaml

from . import pki, util
from .store import EtcdStore, StoreUnavailable

HERE = os.path.dirname(os.path.abspath(__file__))
ARCHIVE = os.path.dirname(HERE)  # the zipapp file when built


def helper_bin(data_dir: str, name: str) -> str:
    """Path of a bundled helper binary, extracted on first use like k3s's DATA/data/<hash>/bin."""
    if zipfile.is_zipfile(ARCHIVE):
        data_hash = getattr(util._build, "DATA_HASH", "dev")
        bindir = os.path.join(data_dir, "data", data_hash, "bin")
        target = os.path.join(bindir, name)
        if not os.path.exists(target):
            os.makedirs(bindir, exist_ok=True)
            with zipfile.ZipFile(ARCHIVE) as z:
                try:
                    info = z.getinfo(f"payload/{name}")
                except KeyError:
                    raise util.Fatal(f"bundled binary {name} missing from {ARCHIVE}") from None
                tmp = f"{target}.{os.getpid()}.tmp"  # concurrent first uses (k3s kubectl) each write their own
                with z.open(info) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.chmod(tmp, 0o755)
                os.replace(tmp, target)
            cur = os.path.join(data_dir, "data", "current")
            try:
                if os.path.islink(cur):
                    prev = os.path.join(data_dir, "data", "previous")
                    if os.path.lexists(prev):
                        os.unlink(prev)
                    os.rename(cur, prev)
                os.symlink(data_hash, cur)
            except OSError:
                pass
        return target
    found = shutil.which(name) or f"/usr/bin/{name}"
    return found


def _pdeathsig():
    """Kill etcd with the stand-in (k3s runs etcd in-process; KillMode=process must not orphan it)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


class EmbeddedEtcd:
    def __init__(self, data_dir: str, node_name: str, node_ip: str):
        self.data_dir = data_dir
        self.db = os.path.join(data_dir, "server", "db", "etcd")
        self.tls = os.path.join(data_dir, "server", "tls", "etcd")
        self.node_name = node_name
        self.node_ip = node_ip
        self.proc: subprocess.Popen | None = None

    @property
    def exists(self) -> bool:
        return os.path.isdir(os.path.join(self.db, "member"))

    def client_url(self, ip: str | None = None) -> str:
        return f"https://{ip or self.node_ip}:2379"

    def peer_url(self) -> str:
        return f"https://{self.node_ip}:2380"

    def member_name(self) -> str:
        p = os.path.join(self.db, "name")
        if os.path.exists(p):
            return open(p, encoding="utf-8").read().strip()
        return f"{self.node_name}-{secrets.token_hex(4)}"

    def write_certs(self, boot: dict) -> None:
        os.makedirs(self.tls, exist_ok=True)
        ca, key = boot["etcd-server-ca.crt"].encode(), boot["etcd-server-ca.key"].encode()
        util.write_file(os.path.join(self.tls, "server-ca.crt"), ca, 0o644)
        util.write_file(os.path.join(self.tls, "server-ca.key"), key)
        util.write_file(os.path.join(self.tls, "peer-ca.crt"), ca, 0o644)
        util.write_file(os.path.join(self.tls, "peer-ca.key"), key)
        ips = list(dict.fromkeys(["127.0.0.1", "::1", self.node_ip]))
        dns = ["localhost", util.hostname()]
        crt, k = pki.issue(ca, key, "etcd-server", None, dns, ips, server=True, client=True)
        util.write_file(os.path.join(self.tls, "server-client.crt"), crt, 0o644)
        util.write_file(os.path.join(self.tls, "server-client.key"), k)
        crt, k = pki.issue(ca, key, "etcd-peer", None, dns, ips, server=True, client=True)
        util.write_file(os.path.join(self.tls, "peer-server-client.crt"), crt, 0o644)
        util.write_file(os.path.join(self.tls, "peer-server-client.key"), k)
        crt, k = pki.issue(ca, key, "etcd-client", None, client=True)
        util.write_file(os.path.join(self.tls, "client.crt"), crt, 0o644)
        util.write_file(os.path.join(self.tls, "client.key"), k)

    def client(self, endpoints: list[str] | None = None, timeout: float = 5.0) -> EtcdStore:
        eps = endpoints or [self.client_url("127.0.0.1") if not self.node_ip.startswith("127.") else self.client_url()]
        return EtcdStore(eps, os.path.join(self.tls, "server-ca.crt"), os.path.join(self.tls, "client.crt"),
                         os.path.join(self.tls, "client.key"), timeout)

    def join(self, peer_client_urls: list[str]) -> tuple[str, str]:
        """Add this node as a member of the cluster reached at peer_client_urls; returns initial-cluster."""
        name = self.member_name()
        cli = self.client(peer_client_urls, timeout=10)
        members = cli.members()
        for m in members:
            if self.peer_url() in (m.get("peerURLs") or []):
                util.info(f"Removing stale etcd member {m.get('name') or m.get('ID')} with our peer URL {self.peer_url()}")
                cli.member_remove(m["ID"])
        util.info(f"Adding member {name}={self.peer_url()} to etcd cluster {members and [m.get('name') for m in members]}")
        deadline = time.monotonic() + 120
        while True:
            try:
                out = cli.member_add([self.peer_url()])
                break
            except StoreUnavailable as exc:
                # etcd refuses new voting members until every member has been active for a while
                if "unhealthy cluster" not in str(exc) or time.monotonic() > deadline:
                    raise
                util.info(f"etcd cluster not ready to add member {name}, retrying: {exc}")
                time.sleep(2)
        cluster = []
        for m in out.get("members") or []:
            mname = m.get("name") or (name if self.peer_url() in (m.get("peerURLs") or []) else "")
            for u in m.get("peerURLs") or []:
                cluster.append(f"{mname}={u}")
        return name, ",".join(cluster)

    def start(self, initial_cluster: str | None = None, state: str = "new", name: str | None = None) -> None:
        os.makedirs(self.db, mode=0o700, exist_ok=True)
        name = name or self.member_name()
        util.write_file(os.path.join(self.db, "name"), name + "\n")
        client_urls = [self.client_url()]
        if not self.node_ip.startswith("127."):
            client_urls.insert(0, self.client_url("127.0.0.1"))
        sec = {
            "cert-file": os.path.join(self.tls, "server-client.crt"),
            "key-file": os.path.join(self.tls, "server-client.key"),
            "trusted-ca-file": os.path.join(self.tls, "server-ca.crt"),
            "client-cert-auth": True,
        }
        peer = {
            "cert-file": os.path.join(self.tls, "peer-server-client.crt"),
            "key-file": os.path.join(self.tls, "peer-server-client.key"),
            "trusted-ca-file": os.path.join(self.tls, "peer-ca.crt"),
            "client-cert-auth": True,
        }
        conf = {
            "name": name,
            "data-dir": self.db,
            "listen-client-urls": ",".join(client_urls),
            "advertise-client-urls": self.client_url(),
            "listen-peer-urls": self.peer_url(),
            "initial-advertise-peer-urls": self.peer_url(),
            "initial-cluster": initial_cluster or f"{name}={self.peer_url()}",
            "initial-cluster-state": state,
            "client-transport-security": sec,
            "peer-transport-security": peer,
            "heartbeat-interval": 500,
            "election-timeout": 5000,
            "enable-grpc-gateway": True,
            "logger": "zap",
            "log-level": "warn",
            "listen-metrics-urls": "http://127.0.0.1:2381" if not self.node_ip.startswith("127.") else "",
        }
        if not conf["listen-metrics-urls"]:
            del conf["listen-metrics-urls"]
        cfg = os.path.join(self.db, "config")
        util.write_file(cfg, yaml.safe_dump(conf, sort_keys=False))
        binary = helper_bin(self.data_dir, "etcd")
        log = open(os.path.join(self.data_dir, "server", "db", "etcd.log"), "ab")
        util.info(f"Starting etcd member {name} ({state}) with {binary}")
        self.proc = subprocess.Popen([binary, "--config-file", cfg], stdout=log, stderr=log,
                                     preexec_fn=_pdeathsig, env={"PATH": "/usr/bin:/bin", "ETCD_UNSUPPORTED_ARCH": ""})

    def wait_ready(self, timeout: float | None = None) -> bool:
        cli = self.client(timeout=3)
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            if self.proc and self.proc.poll() is not None:
                raise util.Fatal(f"etcd exited with code {self.proc.returncode}; see "
                                 f"{os.path.join(self.data_dir, 'server', 'db', 'etcd.log')}")
            try:
                cli.health()
                return True
            except StoreUnavailable as exc:
                util.info(f"Waiting for etcd server to become available: {exc}")
            if deadline and time.monotonic() > deadline:
                return False
            time.sleep(1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def remove_member(cli: EtcdStore, member_name: str) -> bool:
    for m in cli.members():
        if m.get("name") == member_name:
            cli.member_remove(m["ID"])
            return True
    return False


def token_key(password: str) -> str:
    return "/bootstrap/" + hashlib.sha256(password.encode()).hexdigest()[:12]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
