"""k3s_runtime refuses bad input before it touches anything."""
import os

import pytest


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
def test_bad_agent_config_fails_before_any_change(run_module, rootfs, config, message):
    out = run_module("k3s_runtime", role="agent", rootfs=rootfs, token="s3cret-token", config=config)
    assert out["failed"] is True
    assert message in out["msg"]
    assert "s3cret-token" not in str(out)
    assert not os.path.exists("/etc/rancher/k3s/token") or os.environ.get("SEAL_UNIT_ON_NODE")


def test_missing_rootfs_binary_is_named(run_module, tmp_path):
    out = run_module("k3s_runtime", role="server", rootfs=str(tmp_path), token="0123456789abcdef0123456789abcdef")
    assert out["failed"] is True and str(tmp_path) in out["msg"] and "bin/k3s" in out["msg"]


def test_present_needs_token_and_rootfs(run_module):
    out = run_module("k3s_runtime", role="server")
    assert out["failed"] is True and "rootfs" in out["msg"] and "token" in out["msg"]
