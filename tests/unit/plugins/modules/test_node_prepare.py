"""node_prepare run as Ansible runs it (JSON args on stdin), against files in a temp dir."""
import json
import os

import pytest


@pytest.fixture
def run(tmp_path, run_module):
    def call(_tmp, check=False, diff=False, **params):
        args = {
            "cluster": "c1",
            "kernel_modules": [],
            "sysctls": {},
            "hosts_path": str(tmp_path / "hosts"),
            "modules_load_path": str(tmp_path / "modules-load.d" / "seal-k3s.conf"),
            "sysctl_path": str(tmp_path / "sysctl.d" / "90-seal-k3s.conf"),
        }
        args.update(params)
        return run_module("node_prepare", check=check, diff=diff, **args)
    return call


@pytest.fixture
def hosts(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1 localhost\n")
    return path


def test_present_then_idempotent(tmp_path, hosts, run):
    data = str(tmp_path / "data" / "c1")
    params = {"directories": [{"path": data, "mode": "0700"}],
              "hosts": [{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}]}
    first = run(tmp_path, **params)
    assert first["changed"] is True, first
    assert first["directories_created"] == [data]
    assert oct(os.stat(data).st_mode & 0o777) == "0o700"
    assert "10.0.0.2 sea.hub" in hosts.read_text()
    second = run(tmp_path, **params)
    assert second["changed"] is False, second


def test_check_mode_changes_nothing_and_shows_diff(tmp_path, hosts, run):
    out = run(tmp_path, check=True, diff=True, hosts=[{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}],
              directories=[{"path": str(tmp_path / "d")}])
    assert out["changed"] is True
    assert hosts.read_text() == "127.0.0.1 localhost\n"
    assert not (tmp_path / "d").exists()
    assert any("10.0.0.2 sea.hub" in d["after"] for d in out["diff"])


def test_absent_removes_block_and_persisted_files(tmp_path, hosts, run):
    run(tmp_path, hosts=[{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}], kernel_modules=["overlay"])
    assert (tmp_path / "modules-load.d" / "seal-k3s.conf").exists()
    out = run(tmp_path, state="absent")
    assert out["changed"] is True
    assert hosts.read_text() == "127.0.0.1 localhost\n"
    assert not (tmp_path / "modules-load.d" / "seal-k3s.conf").exists()
    assert run(tmp_path, state="absent")["changed"] is False


def test_unknown_sysctl_warns_or_fails_when_strict(tmp_path, hosts, run):
    out = run(tmp_path, sysctls={"net.seal.does_not_exist": "1"})
    assert out["sysctls_unavailable"] == ["net.seal.does_not_exist"]
    assert "net.seal.does_not_exist does not exist" in json.dumps(out["warnings"])
    strict = run(tmp_path, sysctls={"net.seal.does_not_exist": "1"}, strict=True)
    assert strict["failed"] is True and "net.seal.does_not_exist" in strict["msg"]


def test_bad_mode_names_the_path(tmp_path, hosts, run):
    out = run(tmp_path, directories=[{"path": str(tmp_path / "x"), "mode": "rwx"}])
    assert out["failed"] is True and str(tmp_path / "x") in out["msg"]


def test_files_written_with_parents_idempotent_checked_and_removed(tmp_path, hosts, run):
    ca = str(tmp_path / "certs.d" / "sea.hub:5000" / "ca.crt")
    files = [{"path": ca, "content": "PEM\n"}]
    run(tmp_path)
    check = run(tmp_path, check=True, diff=True, files=files)
    assert check["changed"] is True and check["files_changed"] == [ca] and not os.path.exists(ca)
    assert any(d.get("after") == "PEM\n" for d in check["diff"]), check["diff"]
    first = run(tmp_path, files=files)
    assert first["files_changed"] == [ca]
    assert open(ca, encoding="utf-8").read() == "PEM\n" and oct(os.stat(ca).st_mode & 0o777) == "0o644"
    assert run(tmp_path, files=files)["changed"] is False
    os.chmod(ca, 0o600)
    assert run(tmp_path, files=files)["files_changed"] == [ca]
    out = run(tmp_path, state="absent", files=[{"path": ca}])
    assert ca in out["files_changed"] and not os.path.exists(ca)
    missing = run(tmp_path, files=[{"path": ca}])
    assert missing["failed"] is True and ca in missing["msg"]
