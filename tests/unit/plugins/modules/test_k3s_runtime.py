"""k3s_runtime refuses bad input before it touches anything."""
import json

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules import k3s_runtime

REAL = k3s_runtime.K3sRuntime


@pytest.fixture
def rootfs(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "k3s").write_text("#!/bin/sh\n")
    return str(tmp_path)


@pytest.mark.parametrize("config, message", [
    ({"server": "https://10.0.0.1:6443", "cluster-init": True}, "server-only keys cluster-init"),
    ({"server": "https://10.0.0.1:6443", "write-kubeconfig-mode": "0644", "tls-san+": ["x"]},
     "server-only keys tls-san+, write-kubeconfig-mode"),
    ({}, "needs 'server'"),
    ({"server": "https://10.0.0.1:6443", "token": "abc"}, "put the token in the token option"),
])
def test_bad_agent_config_fails_before_any_change(run_main, monkeypatch, fake_runner, tmp_path, rootfs, config, message):
    root, runner = tmp_path / "root", fake_runner()
    monkeypatch.setattr(k3s_runtime, "K3sRuntime", lambda module: REAL(module, Layout(str(root)), runner))
    out = run_main(k3s_runtime, dict(role="agent", rootfs=rootfs, token="s3cret-token", config=config,
                                     token_file=str(root / "etc/rancher/k3s/token"), data_dir=str(root / "data")))
    assert out["failed"] is True
    assert message in out["msg"]
    assert "s3cret-token" not in str(out)
    assert not root.exists() and runner.calls == []


def test_missing_rootfs_binary_is_named(run_module, tmp_path):
    out = run_module("k3s_runtime", role="server", rootfs=str(tmp_path), token="0123456789abcdef0123456789abcdef")
    assert out["failed"] is True and str(tmp_path) in out["msg"] and "bin/k3s" in out["msg"]


def test_present_needs_token_and_rootfs(run_module):
    out = run_module("k3s_runtime", role="server")
    assert out["failed"] is True and "rootfs" in out["msg"] and "token" in out["msg"]


HASH = "a" * 64
HELD = "K10%s::server:%s" % (HASH, "1" * 32)


@pytest.fixture
def server_data(tmp_path):
    (tmp_path / "data" / "server").mkdir(parents=True)
    (tmp_path / "data" / "server" / "token").write_text(HELD + "\n")
    return tmp_path


@pytest.mark.parametrize("token, message", [
    ("2" * 32, "differs from the cluster token this server holds"),
    ("K10%s::server:%s" % ("2" * 64, "2" * 32), "differs from the cluster token this server holds"),
    ("K10%s::server:%s" % ("b" * 64, "1" * 32), "names CA hash " + "b" * 64),
    ("K10abc::server:x", "invalid token CA hash length"),
    ("K10%s::nocolon" % HASH, "invalid token format"),
])
def test_server_refuses_a_token_that_is_not_the_clusters(run_module, rootfs, server_data, token, message):
    token_file = server_data / "token-file"
    out = run_module("k3s_runtime", role="server", rootfs=rootfs, token=token, token_file=str(token_file),
                     data_dir=str(server_data / "data"), config={"node-ip": "10.0.0.1"})
    assert out["failed"] is True and message in out["msg"], out
    assert not token_file.exists()
    assert "1" * 32 not in json.dumps(out) and token.split(":")[-1] not in out["msg"]


class _Module:
    check_mode = False

    def __init__(self, **params):
        self.params = dict(role="agent", token="", agent_token=None, token_file=None)
        self.params.update(params)


@pytest.mark.parametrize("before, after, restarts", [
    ("1" * 32, HELD, False),                                  # short -> secure, same password
    (HELD, "K10%s::server:%s" % ("b" * 64, "1" * 32), False),  # another CA hash, same password
    ("1" * 32, "2" * 32, True),                               # another password
    (None, HELD, True),                                       # first install
    (HELD, HELD, False),                                      # unchanged
])
def test_token_file_change_restarts_only_for_another_password(tmp_path, before, after, restarts):
    from ansible_collections.seal.cluster.plugins.modules.k3s_runtime import K3sRuntime

    path = tmp_path / "token"
    if before is not None:
        path.write_text(before + "\n")
        path.chmod(0o600)
    runtime = K3sRuntime(_Module(token=after, token_file=str(path)))
    runtime.add_token_file("token", str(path), after + "\n")
    assert ("token" in runtime.changed_items) == (before != after)
    assert bool(runtime.token_restarts) == restarts
