"""k3s_runtime writes only what the k3s release accepts (issue 22 items 5 and 6): node-ip names are
resolved on the host or refused before any change, release-dependent and server-only keys are
refused for the releases that lack them, and a service that never becomes ready (an agent whose
token the server refuses: k3s retries forever, systemctl start of a Type=notify unit with
TimeoutStartSec=0 would never return) fails within wait_timeout with the cause."""
import json
import os
import socket
import time

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_config as k3s_config
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_releases as releases
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules import k3s_runtime

REAL = k3s_runtime.K3sRuntime
TOKEN = "K10%s::node:%s" % ("c" * 64, "a" * 32)
AGENT = {"server": "https://10.0.0.2:6443", "node-name": "n1"}


def fake_resolver(table):
    def resolve(name, _port, _family=0, _type=0):
        if name not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in table[name]]
    return resolve


@pytest.mark.parametrize("value, table, expect", [
    ("10.0.0.7", {}, "10.0.0.7"),
    ("fd00::0:7", {}, "fd00::7"),
    ("n1.lan", {"n1.lan": ["fd00::7", "10.0.0.7"]}, "10.0.0.7"),    # IPv4 first
    ("n1", {"n1": ["127.0.1.1", "fd00::7"]}, "fd00::7"),           # loopback skipped
    ("10.0.0.7,n1.lan", {"n1.lan": ["10.0.0.8"]}, "10.0.0.7,10.0.0.8"),
])
def test_node_ip_names_resolve_to_one_address(value, table, expect):
    assert k3s_config.resolve_ips({"node-ip": value}, fake_resolver(table))["node-ip"] == expect
    assert k3s_config.resolve_ips({"node-ip": [value]}, fake_resolver(table))["node-ip"] == expect.split(",")


@pytest.mark.parametrize("value, table, message", [
    ("n1.lan", {}, "'n1.lan' is not an IP address and does not resolve on this host"),
    ("n1", {"n1": ["127.0.1.1"]}, "'n1' resolves on this host only to loopback addresses (127.0.1.1)"),
    ("n_1!", {}, "'n_1!' is neither an IP address nor a host name"),
])
def test_node_ip_names_that_do_not_resolve_are_refused(value, table, message):
    with pytest.raises(ModuleFailure) as exc:
        k3s_config.resolve_ips({"node-ip": value}, fake_resolver(table))
    assert message in exc.value.msg and "set ansible_host (or node-ip) to the node's IP address" in exc.value.msg


@pytest.mark.parametrize("version, known", [("v1.25.3+k3s1", False), ("v1.26.12+k3s1", False), ("v1.26.13+k3s1", True),
                                            ("v1.28.5+k3s1", False), ("v1.28.6+k3s1", True), ("v1.31.4+k3s1", True)])
def test_release_table(version, known):
    assert releases.has("disable-default-registry-endpoint", version) is known
    assert bool(k3s_config.unknown_to_release({"disable-default-registry-endpoint": True}, version)) is not known


class Host:
    """systemd and the rootfs binary as k3s_runtime sees them; the agent's service stays
    "activating" after start when stuck (k3s retrying a refused token)."""

    def __init__(self, tmp_path, fake_runner, version="v1.25.3+k3s1", stuck=False):
        self.layout = Layout(str(tmp_path / "root"))
        self.version, self.stuck, self.active = version, stuck, "inactive"
        self.runner = fake_runner({"*": self.answer}, programs=("systemctl", "journalctl"))

    def answer(self, argv):
        if argv[0] == "systemctl":
            if argv[1] == "is-active":
                return (0 if self.active == "active" else 3), self.active + "\n", ""
            if argv[1] == "is-enabled":
                return 0, "enabled\n", ""
            if argv[1] in ("start", "restart"):
                self.active = "activating" if self.stuck else "active"
            return 0, "", ""
        if argv[0] == "journalctl":
            return 0, ('level=error msg="Failed to validate connection to cluster at https://10.0.0.2:6443: token is '
                       'not valid: https://10.0.0.2:6443/v1-k3s/client-kubelet.crt: 401 Unauthorized"\n'), ""
        if argv[1:] == ["--version"]:
            return 0, "k3s version %s (f2585c16)\ngo version go1.19.2\n" % self.version, ""
        return 1, "", "unexpected %s" % argv


@pytest.fixture
def rootfs(tmp_path):
    os.makedirs(tmp_path / "rootfs" / "bin")
    (tmp_path / "rootfs" / "bin" / "k3s").write_bytes(b"\x7fELF k3s")
    return str(tmp_path / "rootfs")


def run(run_main, monkeypatch, host, rootfs, **more):
    monkeypatch.setattr(k3s_runtime, "K3sRuntime", lambda module: REAL(module, host.layout, host.runner))
    args = dict(role="agent", rootfs=rootfs, token=TOKEN, config=dict(AGENT), wait_timeout=3,
                token_file=host.layout.path("/etc/rancher/k3s/token"), data_dir=host.layout.path("/var/lib/rancher/k3s"))
    args.update(more)
    return run_main(k3s_runtime, args)


def test_agent_refused_token_fails_within_wait_timeout(run_main, monkeypatch, tmp_path, rootfs, fake_runner):
    host = Host(tmp_path, fake_runner, stuck=True)
    started = time.monotonic()
    out = run(run_main, monkeypatch, host, rootfs)
    took = time.monotonic() - started
    assert out["failed"] is True and took < 3 + 4, took
    assert out["msg"].startswith("k3s agent on n1 not ready after 3s: service k3s-agent is activating; "
                                 "the server refuses this node's token (401 Unauthorized)"), out["msg"]
    assert ["systemctl", "start", "--no-block", "k3s-agent"] in host.runner.calls
    assert "a" * 32 not in json.dumps(out)
    # the right token: the stuck unit is restarted (a start job would wait behind the stuck one)
    host.stuck = False
    fixed = run(run_main, monkeypatch, host, rootfs, token="K10%s::node:%s" % ("c" * 64, "b" * 32))
    assert fixed.get("failed") is not True and fixed["restarted"] is True, fixed
    assert ["systemctl", "restart", "--no-block", "k3s-agent"] in host.runner.calls


def test_node_ip_name_is_written_as_the_address_it_resolves_to(run_main, monkeypatch, tmp_path, rootfs, fake_runner):
    host = Host(tmp_path, fake_runner)
    monkeypatch.setattr(k3s_config.socket, "getaddrinfo", fake_resolver({"n1.lan": ["10.0.0.7"]}))
    out = run(run_main, monkeypatch, host, rootfs, config=dict(AGENT, **{"node-ip": "n1.lan"}))
    assert out.get("failed") is not True, out
    with open(host.layout.config, encoding="utf-8") as f:
        assert 'node-ip: "10.0.0.7"\n' in f.read()
    again = run(run_main, monkeypatch, host, rootfs, config=dict(AGENT, **{"node-ip": "n1.lan"}))
    assert again["changed"] is False


@pytest.mark.parametrize("config, version, message", [
    ({"node-ip": "n1.lan"}, "v1.25.3+k3s1", "node-ip: 'n1.lan' is not an IP address and does not resolve"),
    ({"disable-default-registry-endpoint": True}, "v1.25.3+k3s1",
     "config has keys k3s v1.25.3+k3s1 does not define: disable-default-registry-endpoint (k3s has it from v1.26.13, "
     "v1.27.10, v1.28.6, v1.29.1, every v1.30 and later)"),
    ({"system-default-registry": "sea.hub:5000"}, "v1.31.4+k3s1", "server-only keys system-default-registry"),
])
def test_what_the_release_refuses_is_refused_before_any_change(
        run_main, monkeypatch, tmp_path, rootfs, fake_runner, config, version, message):
    host = Host(tmp_path, fake_runner, version=version)
    monkeypatch.setattr(k3s_config.socket, "getaddrinfo", fake_resolver({}))
    out = run(run_main, monkeypatch, host, rootfs, config=dict(AGENT, **config))
    assert out["failed"] is True and message in out["msg"], out["msg"]
    assert not os.path.exists(host.layout.path("/etc")) and not [c for c in host.runner.calls if c[0] == "systemctl"]


@pytest.mark.parametrize("config, message", [
    ({"etcd-snapshot-schedule-cron": "0 */6 * *"}, "config etcd-snapshot-schedule-cron: '0 */6 * *' has 4 fields"),
    ({"etcd-snapshot-retention": 0}, "config etcd-snapshot-retention: retention is a whole number of snapshots, at least 1"),
])
def test_a_snapshot_schedule_k3s_would_not_parse_is_refused_before_any_change(
        run_main, monkeypatch, tmp_path, rootfs, fake_runner, config, message):
    host = Host(tmp_path, fake_runner)
    out = run(run_main, monkeypatch, host, rootfs, role="server", config=config)
    assert out["failed"] is True and message in out["msg"], out["msg"]
    assert not os.path.exists(host.layout.path("/etc")) and not [c for c in host.runner.calls if c[0] == "systemctl"]


def test_a_newer_release_takes_disable_default_registry_endpoint(run_main, monkeypatch, tmp_path, rootfs, fake_runner):
    host = Host(tmp_path, fake_runner, version="v1.28.6+k3s2")
    out = run(run_main, monkeypatch, host, rootfs, config=dict(AGENT, **{"disable-default-registry-endpoint": True}))
    assert out.get("failed") is not True and "config" in out["changed_items"], out


def test_a_server_that_keeps_exiting_fails_before_wait_timeout(run_main, monkeypatch, tmp_path, rootfs, fake_runner):
    """k3s exits on a fatal start error (here: critical configuration) and Restart=always starts it
    again; after two exits the wait stops with the journal's cause, long before wait_timeout."""
    host = Host(tmp_path, fake_runner, stuck=True)
    answer = host.answer

    def crashing(argv):
        if argv[:4] == ["systemctl", "show", "-p", "NRestarts"]:
            return 0, "2\n", ""
        if argv[0] == "journalctl":
            return 0, ('level=fatal msg="starting kubernetes: preparing server: failed to validate server '
                       'configuration: critical configuration value mismatch"\n'), ""
        return answer(argv)
    host.runner.answers["*"] = crashing
    started = time.monotonic()
    out = run(run_main, monkeypatch, host, rootfs, role="server", wait_timeout=60,
              config={"server": "https://10.0.0.2:6443", "node-name": "m2", "node-ip": "10.0.0.3"})
    assert time.monotonic() - started < 10
    assert out["msg"] == ("k3s server on m2 not ready: k3s exited 2 times since it was started (systemd restarts it); "
                          "this server's critical configuration (cluster-cidr, service-cidr, flannel-backend, disable "
                          "servicelb/coredns, ...) differs from the cluster's"), out["msg"]


def test_a_queued_restart_is_awaited_until_a_new_run_of_the_service(run_main, monkeypatch, tmp_path, rootfs, fake_runner):
    """restart --no-block returns before systemd stops the old process: "active" counts only once
    the unit's InvocationID changed."""
    host = Host(tmp_path, fake_runner)
    run(run_main, monkeypatch, host, rootfs)
    answer, ids = host.answer, iter(["run-1", "run-1", "run-1", "run-2"])

    def show(argv):
        if argv[:4] == ["systemctl", "show", "-p", "InvocationID"]:
            return 0, next(ids, "run-2") + "\n", ""
        return answer(argv)
    host.runner.answers["*"] = show
    host.runner.calls.clear()
    out = run(run_main, monkeypatch, host, rootfs, config=dict(AGENT, **{"node-label": ["a=b"]}))
    assert out.get("failed") is not True and out["restarted"] is True, out
    assert len([c for c in host.runner.calls if c[:4] == ["systemctl", "show", "-p", "InvocationID"]]) == 4
