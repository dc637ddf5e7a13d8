"""The stand-in's embedded etcd as each release has it, against Debian's real etcd and etcdctl on
loopback addresses of this machine (127.0.0.1xx: no listener on 127.0.0.1 then):

- which releases moved etcd's HTTP gateway to 127.0.0.1:2382 (k3s PR #8402; releases.py);
- after the move 2379 answers gRPC (etcdctl) and drops JSON clients, 2382 the reverse; before
  it 2379 answers both;
- joins add a learner, a second concurrent learner is refused by etcd, the leader promotes one;
- a joiner whose node name another member still carries is refused (k3s: duplicate node name);
- node deletion: the finalizer holds an etcd Node until its member (name AND address) is gone,
  and keeps holding it while the removal fails (not enough started members)."""
from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "standin"))
from k3s_standin import etcdport, pki, releases, util  # noqa: E402
from k3s_standin.etcd import FINALIZER, EmbeddedEtcd, MemberController  # noqa: E402
from k3s_standin.store import StoreUnavailable  # noqa: E402

needs_etcd = pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("etcdctl")),
                                reason="Debian's etcd-server and etcd-client are not installed (scripts/setup.sh)")


@pytest.mark.parametrize("version,moved", [
    ("v1.25.3+k3s1", False), ("v1.25.14+k3s1", False), ("v1.25.15+k3s1", True),
    ("v1.26.0+k3s1", False), ("v1.26.9+k3s1", False), ("v1.26.10+k3s1", True),
    ("v1.27.6+k3s1", False), ("v1.27.7+k3s1", True), ("v1.28.2+k3s1", False), ("v1.28.3+k3s1", True),
    ("v1.29.0+k3s1", True), ("v1.33.5+k3s1", True), ("v1.24.17+k3s1", False)])
def test_release_map_of_the_etcd_http_move(version, moved):
    assert releases.etcd_http_moved(version) is moved


def _hello(alpn):
    """The ClientHello Python's ssl sends with these ALPN protocols."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_client_hello_alpn_parsing():
    assert etcdport.client_hello_alpn(_hello(["h2"])) == ["h2"]
    assert etcdport.client_hello_alpn(_hello(["h2", "http/1.1"])) == ["h2", "http/1.1"]
    assert etcdport.client_hello_alpn(_hello(None)) == []
    hello = _hello(["http/1.1"])
    assert etcdport.client_hello_alpn(hello[:40]) is None  # not all there yet
    assert etcdport.client_hello_alpn(b"POST /v3/kv/range HTTP/1.1\r\n") == []
    assert etcdport.grpc_only(["h2"]) and not etcdport.grpc_only(["http/1.1"]) and not etcdport.grpc_only([])
    assert etcdport.http_only([]) and etcdport.http_only(["h2", "http/1.1"]) and not etcdport.http_only(["h2"])


# -- real etcd ------------------------------------------------------------------------------
BOOT = {}


def _boot():
    if not BOOT:
        ca, key = pki.new_ca("etcd-server-ca")
        BOOT.update({"etcd-server-ca.crt": ca.decode(), "etcd-server-ca.key": key.decode()})
    return BOOT


class Member(EmbeddedEtcd):
    def __init__(self, tmp, node, ip, moved):
        super().__init__(str(tmp / node), node, ip)
        self.moved = moved
        self.write_certs(_boot())

    def etcdctl(self, *args, port=2379, check=True):
        tls = self.tls
        proc = subprocess.run(["etcdctl", "--endpoints", f"https://{self.node_ip}:{port}", "--cacert", f"{tls}/server-ca.crt",
                               "--cert", f"{tls}/client.crt", "--key", f"{tls}/client.key", "--dial-timeout", "3s",
                               "--command-timeout", "5s", "-w", "json", *args],
                              capture_output=True, text=True, timeout=30, env=dict(os.environ, ETCDCTL_API="3"), check=False)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def json_post(self, port, path):
        ctx = ssl.create_default_context(cafile=f"{self.tls}/server-ca.crt")
        ctx.load_cert_chain(f"{self.tls}/client.crt", f"{self.tls}/client.key")
        req = urllib.request.Request(f"https://{self.node_ip}:{port}{path}", data=b"{}", method="POST")
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return json.loads(resp.read())


@pytest.fixture
def members(tmp_path):
    started = []

    def make(node, ip, moved=True):
        m = Member(tmp_path, node, ip, moved)
        started.append(m)
        return m
    yield make
    for m in started:
        m.stop()


def _up(member, initial=None, state="new", name=None):
    member.start(initial, state, name)
    assert member.wait_ready(timeout=30), open(os.path.join(member.data_dir, "server", "db", "etcd.log")).read()[-2000:]


@needs_etcd
def test_after_the_move_2379_is_grpc_only_and_2382_http_only(members):
    m = members("alpha", "127.0.0.151", moved=True)
    _up(m)
    assert len(m.etcdctl("member", "list").stdout and json.loads(m.etcdctl("member", "list").stdout)["members"]) == 1
    assert m.json_post(2382, "/v3/cluster/member/list")["members"][0]["name"].startswith("alpha-")
    with pytest.raises(OSError):  # URLError, SSLError, RemoteDisconnected: the connection is dropped
        m.json_post(2379, "/v3/cluster/member/list")
    assert m.etcdctl("member", "list", port=2382, check=False).returncode != 0


@needs_etcd
def test_before_the_move_2379_serves_json_and_grpc(members):
    m = members("beta", "127.0.0.152", moved=False)
    _up(m)
    assert m.json_post(2379, "/v3/cluster/member/list")["members"][0]["name"].startswith("beta-")
    assert json.loads(m.etcdctl("member", "list").stdout)["members"]


def _learners(member):
    return [x for x in json.loads(member.etcdctl("member", "list").stdout)["members"] if x.get("isLearner")]


def _join(leader, member):
    """member joins through leader as a learner; promoted, and ready; returns its member name."""
    name, initial = member.join([leader.client_url()])
    _start_promoted(leader, member, name, initial)
    return name


def _start_promoted(leader, member, name, initial):
    member.start(initial, "existing", name)
    deadline = time.monotonic() + 30
    while _learners(leader) and time.monotonic() < deadline:
        MemberController.promote_one(leader.client())
        time.sleep(1)
    assert not _learners(leader)
    assert member.wait_ready(timeout=30)


@needs_etcd
def test_joins_are_learners_one_at_a_time_promoted_by_the_leader(members):
    a = members("one", "127.0.0.161")
    _up(a)
    b = members("two", "127.0.0.162")
    name, initial = b.join([a.client_url()])
    assert len(_learners(a)) == 1
    c = members("three", "127.0.0.163")
    with pytest.raises(SystemExit):  # k3s: ETCD join failed: ... too many learner members in cluster
        c.join([a.client_url()])
    _start_promoted(a, b, name, initial)


@needs_etcd
def test_a_rebuilt_server_whose_member_remains_is_refused(members, tmp_path, capsys):
    a = members("first", "127.0.0.171")
    _up(a)
    b = members("second", "127.0.0.172")
    _join(a, b)
    b.stop()
    shutil.rmtree(b.data_dir)  # the host rebuilt: same node name and address, new member name
    again = members("second", "127.0.0.172")
    with pytest.raises(SystemExit):
        again.join([a.client_url()])
    assert "duplicate node name found, please use a unique name for this node" in capsys.readouterr().err


class FakeCluster:
    """The Node objects the member controller reads and patches."""

    def __init__(self, nodes):
        self.nodes = {n["metadata"]["name"]: n for n in nodes}

    def list_nodes(self):
        return list(self.nodes.values())

    def patch_node(self, name, patch):
        node = self.nodes[name]
        node["metadata"].update(patch["metadata"])
        if node["metadata"].get("deletionTimestamp") and not node["metadata"].get("finalizers"):
            del self.nodes[name]
        return node


def _node(name, member, address, deleting=False):
    meta = {"name": name, "labels": {"node-role.kubernetes.io/etcd": "true"}, "finalizers": [FINALIZER],
            "annotations": {"etcd.k3s.cattle.io/node-name": member, "etcd.k3s.cattle.io/node-address": address}}
    if deleting:
        meta["deletionTimestamp"] = util.now_rfc3339()
    return {"metadata": meta}


@needs_etcd
def test_deletion_removes_the_member_matching_name_and_address_and_blocks_while_it_cannot(members):
    a = members("ma", "127.0.0.181")
    _up(a)
    others = []
    for node, ip in (("mb", "127.0.0.182"), ("mc", "127.0.0.183")):
        m = members(node, ip)
        others.append((m, _join(a, m)))
    (b, bname), (c, cname) = others
    ctl = MemberController(None, a)
    cli = a.client(timeout=10)
    # a name with another address is not the node's member: nothing removed, the finalizer goes
    wrong = FakeCluster([_node("mb", bname, "127.0.0.199", deleting=True)])
    ctl.cluster = wrong
    ctl.sync(cli, wrong.nodes["mb"])
    assert "mb" not in wrong.nodes and len(cli.members()) == 3
    # c stopped: removing b would leave a and c with one started member -> refused, Node held
    c.stop()
    time.sleep(1)
    held = FakeCluster([_node("mb", bname, "127.0.0.182", deleting=True)])
    ctl.cluster = held
    for _attempt in range(3):
        ctl.sync(cli, held.nodes["mb"])
    assert held.nodes["mb"]["metadata"]["finalizers"] == [FINALIZER]
    assert bname in [m["name"] for m in cli.members()]
    # c back: the removal goes through and the Node with it
    c.start()
    assert c.wait_ready(timeout=30)
    deadline = time.monotonic() + 30
    while "mb" in held.nodes and time.monotonic() < deadline:
        try:
            ctl.sync(cli, held.nodes["mb"])
        except StoreUnavailable:
            pass
        time.sleep(1)
    assert "mb" not in held.nodes
    assert sorted(m["name"] for m in cli.members()) == sorted([a.member_name(), cname])
