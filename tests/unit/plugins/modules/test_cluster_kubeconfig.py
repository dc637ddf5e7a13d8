"""seal.cluster.cluster_kubeconfig: the admin kubeconfig on the controller, its loopback server
replaced, 0600, written only when it differs, never shown."""
import os

KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://127.0.0.1:6443
  name: default
users:
- name: default
  user:
    client-key-data: U0VDUkVULUtFWQ==
"""
SERVER = "https://10.0.0.2:6443"


def test_written_0600_with_the_server_replaced_then_unchanged(tmp_path, run_module):
    dest = tmp_path / "kubeconfig"
    result = run_module("cluster_kubeconfig", diff=True, dest=str(dest), content=KUBECONFIG, server=SERVER)
    assert result["changed"] is True and result["server"] == [SERVER]
    assert dest.read_text() == KUBECONFIG.replace("https://127.0.0.1:6443", SERVER)
    assert os.stat(dest).st_mode & 0o777 == 0o600
    assert "U0VDUkVULUtFWQ" not in repr(result) and "server: %s" % SERVER in result["diff"]["after"]
    assert run_module("cluster_kubeconfig", dest=str(dest), content=KUBECONFIG, server=SERVER)["changed"] is False


def test_a_wider_mode_or_other_content_is_a_change_and_check_mode_writes_nothing(tmp_path, run_module):
    dest = tmp_path / "kubeconfig"
    run_module("cluster_kubeconfig", dest=str(dest), content=KUBECONFIG, server=SERVER)
    os.chmod(dest, 0o644)
    assert run_module("cluster_kubeconfig", check=True, dest=str(dest), content=KUBECONFIG, server=SERVER)["changed"] is True
    assert os.stat(dest).st_mode & 0o777 == 0o644
    assert run_module("cluster_kubeconfig", dest=str(dest), content=KUBECONFIG, server=SERVER)["changed"] is True
    assert os.stat(dest).st_mode & 0o777 == 0o600
    other = "https://10.0.0.3:6443"
    result = run_module("cluster_kubeconfig", diff=True, dest=str(dest), content=KUBECONFIG, server=other)
    assert result["changed"] is True and SERVER in result["diff"]["before"] and other in result["diff"]["after"]


def test_not_a_kubeconfig_or_not_https_is_refused(tmp_path, run_module):
    dest = tmp_path / "kubeconfig"
    assert "names no server" in run_module("cluster_kubeconfig", dest=str(dest), content="a: b\n", server=SERVER)["msg"]
    assert "https:// URL" in run_module("cluster_kubeconfig", dest=str(dest), content=KUBECONFIG, server="http://x")["msg"]
    assert not dest.exists()
