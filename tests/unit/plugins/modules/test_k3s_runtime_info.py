"""k3s_runtime_info on a host laid out under a temporary root: what it reports before k3s is
installed, on a running server that holds etcd data and the token k3s wrote, and on an agent;
in check mode the same; it never calls anything but the read-only systemctl verbs and k3s --version,
and writes nothing."""
import os
import socket

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules import k3s_runtime_info

REAL = k3s_runtime_info.K3sRuntimeInfo
HELD = "K10%s::server:%s" % ("c" * 64, "p" * 32)
READ_ONLY = {("systemctl", "is-active"), ("systemctl", "is-enabled")}


class Host:
    def __init__(self, tmp_path, fake_runner, fake_units):
        self.root = tmp_path / "root"
        self.root.mkdir()
        self.layout = Layout(str(self.root))
        self.data = self.layout.path("/var/lib/rancher/k3s")
        self.units = fake_units()
        self.runner = fake_runner({"*": self.answer}, programs=("systemctl",))

    def answer(self, argv):
        if argv[0] == "systemctl":
            return self.units.systemctl(argv)
        assert argv == [self.layout.k3s_bin, "--version"], argv
        return 0, "k3s version v1.30.1+k3s1 (80978b5b)\ngo version go1.22.2\n", ""

    def write(self, path, text):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def install_server(self):
        self.write(self.layout.k3s_bin, "k3s")
        self.write(self.layout.config, '# Managed by seal.cluster\nnode-name: "m1"\nserver: "https://10.0.0.1:6443"\n')
        self.write(os.path.join(self.data, "server", "token"), HELD + "\n")
        os.makedirs(os.path.join(self.data, "server", "db", "etcd"))
        self.units.active, self.units.enabled = "active", "enabled"

    def files(self):
        return sorted((os.path.relpath(os.path.join(d, f), self.root), os.stat(os.path.join(d, f)).st_mtime_ns)
                      for d, _dirs, names in os.walk(self.root) for f in names)


def info(run_main, monkeypatch, host, check=False, **module_args):
    monkeypatch.setattr(k3s_runtime_info, "K3sRuntimeInfo", lambda module: REAL(module, host.layout, host.runner))
    host.runner.calls.clear()
    before = host.files()
    out = run_main(k3s_runtime_info, dict({"role": "server", "data_dir": host.data}, **module_args), check=check)
    assert host.files() == before, "k3s_runtime_info wrote on the host"
    assert {tuple(c[:2]) for c in host.runner.calls if c[0] == "systemctl"} <= READ_ONLY
    out.pop("invocation", None)
    return out


@pytest.mark.parametrize("check", [False, True])
def test_before_install_then_a_running_server_then_an_agent(run_main, monkeypatch, tmp_path, fake_runner, fake_units, check):
    host = Host(tmp_path, fake_runner, fake_units)
    assert info(run_main, monkeypatch, host, check=check) == {
        "changed": False, "role": "server", "service": "k3s", "installed": False, "version": None, "live": False,
        "enabled": False, "node_name": socket.gethostname().lower(), "config_server": None, "has_data": False,
        "holds_data": False, "has_token": False, "token_ca_hash": None}
    assert [c for c in host.runner.calls if c[0] != "systemctl"] == []  # no binary: not run

    host.install_server()
    assert info(run_main, monkeypatch, host, check=check) == {
        "changed": False, "role": "server", "service": "k3s", "installed": True, "version": "v1.30.1+k3s1", "live": True,
        "enabled": True, "node_name": "m1", "config_server": "https://10.0.0.1:6443", "has_data": True,
        "holds_data": True, "has_token": True, "token_ca_hash": "c" * 64}

    agent = info(run_main, monkeypatch, host, check=check, role="agent")
    assert (agent["service"], agent["has_token"], agent["token_ca_hash"]) == ("k3s-agent", False, None)
    assert [c[2] for c in host.runner.calls if c[0] == "systemctl"] == ["k3s-agent", "k3s-agent"]


def test_a_server_whose_tls_exists_holds_data_without_a_datastore(run_main, monkeypatch, tmp_path, fake_runner, fake_units):
    host = Host(tmp_path, fake_runner, fake_units)
    host.write(os.path.join(host.data, "server", "tls", "server-ca.crt"), "pem")
    out = info(run_main, monkeypatch, host)
    assert (out["holds_data"], out["has_data"], out["live"]) == (True, False, False)


def test_a_malformed_held_token_reports_no_ca_hash(run_main, monkeypatch, tmp_path, fake_runner, fake_units):
    host = Host(tmp_path, fake_runner, fake_units)
    host.write(os.path.join(host.data, "server", "token"), "not-a-k3s-token\n")
    out = info(run_main, monkeypatch, host)
    assert (out["has_token"], out["token_ca_hash"]) == (True, None)
