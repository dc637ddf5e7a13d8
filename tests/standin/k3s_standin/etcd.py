"""The embedded etcd member: a real etcd process (Debian's etcd-server build, bundled in the
stand-in and extracted to DATA/data/<hash>/bin like k3s's own helper binaries), managed the
way k3s manages its in-process etcd (k3s pkg/etcd/etcd.go): member name "<node-name>-<8 hex>",
data in DATA/server/db/etcd, TLS from DATA/server/tls/etcd, client 2379, peer 2380, metrics 2381
on loopback; since PR #8402 (releases.etcd_http_moved) 2379 is gRPC only and the HTTP gateway is
on https://127.0.0.1:2382 (etcdport.py).

Joins (etcd.go join()): a member whose name is another "<our node name>-..." refuses the join
("duplicate node name found, please use a unique name for this node", the name file removed);
otherwise the joiner adds itself with MemberAddAsLearner (etcd refuses a second learner: "too many
learner members in cluster"; a taken peer URL: "Peer URLs already exists"); k3s exits fatally on
any of these. The etcd leader promotes one learner every 15 s (manageLearners/
trackLearnerProgress); until then the learner refuses linearizable reads and its server is not
ready. Node deletion (member_controller.go): k3s's managed-etcd-controller is registered with
wrangler's OnRemove, which puts the finalizer "wrangler.cattle.io/managed-etcd-controller" on
every Node of an embedded-etcd cluster; onRemove of a Node labelled etcd removes the member whose
name is the node's etcd.k3s.cattle.io/node-name annotation AND whose peer URL host is its
etcd.k3s.cattle.io/node-address (RemovePeer); while that fails the finalizer stays and the Node
with it."""
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

from . import etcdport, pki, releases, util
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
        self.moved = releases.etcd_http_moved()
        self.relays: list = []
        # several stand-ins on one machine (unit tests) use loopback node IPs: no 127.0.0.1 listeners then
        self.loopback = "127.0.0.1" if not node_ip.startswith("127.") else node_ip

    @property
    def exists(self) -> bool:
        return os.path.isdir(os.path.join(self.db, "member"))

    def client_url(self, ip: str | None = None) -> str:
        return f"https://{ip or self.node_ip}:2379"

    def peer_url(self) -> str:
        return f"https://{self.node_ip}:2380"

    def own_url(self, ip: str) -> str:
        """Where the stand-in's JSON client reaches the member at ip: 2379 while HTTP and gRPC are
        muxed there; after the move the local HTTP gateway, or a peer's stand-in-only port."""
        if not self.moved:
            return f"https://{ip}:2379"
        if ip in ("127.0.0.1", self.loopback):
            return f"https://{self.loopback}:2382"
        return f"https://{ip}:{etcdport.INTERNAL_PORT}"

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
        eps = endpoints or [self.own_url(self.loopback)]
        return EtcdStore(eps, os.path.join(self.tls, "server-ca.crt"), os.path.join(self.tls, "client.crt"),
                         os.path.join(self.tls, "client.key"), timeout)

    def join(self, peer_client_urls: list[str]) -> tuple[str, str]:
        """Add this node as a learner of the cluster reached at peer_client_urls (k3s etcd.go
        join()); returns (member name, initial-cluster). Exits as k3s does when it cannot."""
        name = self.member_name()
        cli = self.client([self.own_url(url_host(u)) for u in peer_client_urls], timeout=10)
        try:
            members = cli.members()
        except StoreUnavailable as exc:
            raise util.Fatal(f"ETCD join failed: {exc}") from None
        add, cluster = True, []
        for m in members:
            mname = m.get("name") or ""
            for u in m.get("peerURLs") or []:
                if not mname and url_host(u) == self.node_ip:
                    mname = name  # an unstarted member with our address is us
                if mname == name and url_host(u) == self.node_ip:
                    add = False
                cluster.append(f"{mname}={(m.get('peerURLs') or [u])[0]}")
            cut = mname.rfind("-")
            if mname != name and (mname[:cut] if cut > 1 else mname) == self.node_name:
                try:
                    os.remove(os.path.join(self.db, "name"))
                except OSError:
                    pass
                raise util.Fatal("ETCD join failed: duplicate node name found, please use a unique name for this node")
        if add:
            util.info(f"Adding member {name}={self.peer_url()} to etcd cluster {cluster}")
            deadline = time.monotonic() + 120
            while True:
                try:
                    cli.member_add([self.peer_url()], learner=True)
                    break
                except StoreUnavailable as exc:
                    # Debian's etcd 3.4 wants every voting member connected for 5 s even before
                    # adding a learner ("unhealthy cluster"); etcd 3.5, k3s's, checks that for
                    # voting members only: wait it out rather than be stricter than k3s
                    if "unhealthy cluster" not in str(exc) or time.monotonic() > deadline:
                        raise util.Fatal(f"ETCD join failed: {exc}") from None
                    time.sleep(1)
            cluster.append(f"{name}={self.peer_url()}")
        util.info(f"Starting etcd for cluster {cluster}")
        return name, ",".join(cluster)

    def start(self, initial_cluster: str | None = None, state: str = "new", name: str | None = None,
              force_new: bool = False) -> None:
        os.makedirs(self.db, mode=0o700, exist_ok=True)
        name = name or self.member_name()
        util.write_file(os.path.join(self.db, "name"), name + "\n")
        client_urls = [self.client_url()]
        if not self.node_ip.startswith("127."):
            client_urls.insert(0, self.client_url("127.0.0.1"))
        if self.moved:  # etcd on the stand-in's port; relays on k3s's (etcdport.py)
            client_urls = [u.replace(":2379", f":{etcdport.INTERNAL_PORT}") for u in client_urls]
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
        if force_new:  # k3s Reset: ForceNewCluster on the member's own data
            conf["force-new-cluster"] = True
        if not conf["listen-metrics-urls"]:
            del conf["listen-metrics-urls"]
        cfg = os.path.join(self.db, "config")
        util.write_file(cfg, yaml.safe_dump(conf, sort_keys=False))
        binary = helper_bin(self.data_dir, "etcd")
        log = open(os.path.join(self.data_dir, "server", "db", "etcd.log"), "ab")
        util.info(f"Starting etcd member {name} ({state}) with {binary}")
        self.proc = subprocess.Popen([binary, "--config-file", cfg], stdout=log, stderr=log,
                                     preexec_fn=_pdeathsig, env={"PATH": "/usr/bin:/bin", "ETCD_UNSUPPORTED_ARCH": ""})
        if self.moved:
            self._relay()

    def _relay(self) -> None:
        upstream = (self.node_ip, etcdport.INTERNAL_PORT)
        hosts = list(dict.fromkeys([self.loopback, self.node_ip]))
        try:
            for host in hosts:
                self.relays.append(etcdport.Relay(host, 2379, upstream, etcdport.grpc_only, "gRPC only"))
            self.relays.append(etcdport.Relay(self.loopback, 2382, upstream, etcdport.http_only, "HTTP only"))
        except OSError as exc:
            raise util.Fatal(f"etcd: listen tcp: {exc}") from None

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
        for relay in self.relays:
            relay.close()
        self.relays = []
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def url_host(url: str) -> str:
    return url.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


def remove_peer(cli: EtcdStore, name: str, address: str) -> bool:
    """k3s RemovePeer: remove the member whose name is `name` and one of whose peer URLs is on
    `address`; a member matching only one of them is left alone."""
    for m in cli.members():
        if m.get("name") != name:
            continue
        for u in m.get("peerURLs") or []:
            if url_host(u) == address:
                util.info(f"Removing name={name} id={m['ID']} address={address} from etcd")
                try:
                    cli.member_remove(m["ID"])
                except StoreUnavailable as exc:
                    if "member not found" not in str(exc):
                        raise
                return True
    return False


FINALIZER = "wrangler.cattle.io/managed-etcd-controller"
NAME_NOTE = "etcd.k3s.cattle.io/node-name"
ADDRESS_NOTE = "etcd.k3s.cattle.io/node-address"
ETCD_LABEL = "node-role.kubernetes.io/etcd"
LEARNER_TICK = 15.0  # manageTickerTime


class MemberController:
    """k3s's managed-etcd-controller (member_controller.go) and learner management
    (manageLearners), run by one server: the one whose etcd member leads (k3s elects a leader
    among servers for these controllers)."""

    def __init__(self, cluster, etcd: EmbeddedEtcd):
        self.cluster, self.etcd = cluster, etcd
        self._learners_at = time.monotonic()

    def tick(self) -> None:
        cli = self.etcd.client(timeout=5)
        status = cli.status()
        if str(status.get("header", {}).get("member_id")) != str(status.get("leader")):
            return
        if time.monotonic() - self._learners_at >= LEARNER_TICK:
            self._learners_at = time.monotonic()
            self.promote_one(cli)
        for node in self.cluster.list_nodes():
            self.sync(cli, node)

    @staticmethod
    def promote_one(cli: EtcdStore) -> None:
        for m in cli.members():
            if m.get("isLearner"):
                try:
                    cli.member_promote(m["ID"])
                    util.info(f"Promoted learner {m.get('name')}")
                except StoreUnavailable as exc:
                    util.debug(f"Unable to promote learner {m.get('name')}: {exc}")
                return

    def sync(self, cli: EtcdStore, node: dict) -> None:
        meta = node["metadata"]
        name, fins = meta["name"], list(meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            if FINALIZER not in fins:
                self.cluster.patch_node(name, {"metadata": {"finalizers": fins + [FINALIZER]}})
            return
        if FINALIZER not in fins:
            return
        if (meta.get("labels") or {}).get(ETCD_LABEL) is not None:
            notes = meta.get("annotations") or {}
            try:
                if NAME_NOTE not in notes:
                    raise StoreUnavailable(f"node name annotation for node {name} not found")
                if ADDRESS_NOTE not in notes:
                    raise StoreUnavailable(f"node address annotation for node {name} not found")
                util.info(f"Removing etcd member {name} from cluster")
                remove_peer(cli, notes[NAME_NOTE], notes[ADDRESS_NOTE])
            except StoreUnavailable as exc:
                util.error(f"error syncing '{name}': handler managed-etcd-controller: {exc}, requeuing")
                return
        self.cluster.patch_node(name, {"metadata": {"finalizers": [f for f in fins if f != FINALIZER]}})


def token_key(password: str) -> str:
    return "/bootstrap/" + hashlib.sha256(password.encode()).hexdigest()[:12]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
