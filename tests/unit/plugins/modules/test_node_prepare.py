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


@pytest.fixture
def kernel(tmp_path):
    """A host root for node_prepare's kernel views: /sys/module/overlay (a loaded module) and
    /proc/sys/net/ipv4/ip_forward = 0, /proc/sys/net/bridge (br_netfilter built in)."""
    root = tmp_path / "root"
    (root / "sys" / "module" / "overlay").mkdir(parents=True)
    (root / "proc" / "sys" / "net" / "ipv4").mkdir(parents=True)
    (root / "proc" / "sys" / "net" / "bridge").mkdir(parents=True)
    (root / "proc" / "sys" / "net" / "ipv4" / "ip_forward").write_text("0\n")
    return root


@pytest.fixture
def prepare(tmp_path, kernel, run_main, monkeypatch):
    """node_prepare's main() in this process, every path under tmp_path, the kernel's /sys/module
    and /proc/sys under the `kernel` root (Layout(root)), modprobe a recording fake that knows no
    module; the result carries the warn() calls as "warned"."""
    from ansible.module_utils import basic
    from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
    from ansible_collections.seal.cluster.plugins.modules import node_prepare

    calls, warned = [], []
    real = node_prepare.NodePrepare

    def run_command(_self, argv, **_kwargs):
        calls.append(list(argv))
        return 1, "", "modprobe: FATAL: Module %s not found" % argv[-1]

    monkeypatch.setattr(node_prepare, "NodePrepare", lambda module: real(module, Layout(str(kernel))))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda _self, name, *a, **k: "/fake/bin/" + name if name == "modprobe" else None)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    # recorded here: in one process ansible-core 2.19 reports a warning text only once
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))

    def call(params, check=False, diff=True):
        del calls[:], warned[:]
        args = {"cluster": "c1", "hosts_path": str(tmp_path / "hosts"),
                "modules_load_path": str(tmp_path / "modules-load.d" / "seal-k3s.conf"),
                "sysctl_path": str(tmp_path / "sysctl.d" / "90-seal-k3s.conf")}
        args.update(params)
        result = run_main(node_prepare, args, check=check, diff=diff)
        result["warned"] = list(warned)
        return result, list(calls)
    return call


def _mode(path):
    return os.stat(path).st_mode & 0o7777


def test_check_apply_idempotent_then_a_new_hosts_entry(tmp_path, hosts, kernel, prepare):
    os.chmod(hosts, 0o644)
    ip_forward = kernel / "proc" / "sys" / "net" / "ipv4" / "ip_forward"
    data, ca = str(tmp_path / "var" / "seal" / "c1"), str(tmp_path / "certs.d" / "sea.hub:5000" / "ca.crt")
    modules_load, sysctl_conf = tmp_path / "modules-load.d" / "seal-k3s.conf", tmp_path / "sysctl.d" / "90-seal-k3s.conf"
    params = {"directories": [{"path": data, "mode": "0700"}], "files": [{"path": ca, "content": "PEM\n"}],
              "kernel_modules": ["overlay", "br_netfilter", "seal_no_such_module"],
              "sysctls": {"net.ipv4.ip_forward": "1", "net.seal.missing": "1"},
              "hosts": [{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}]}
    block = "# BEGIN seal.cluster c1\n10.0.0.2 sea.hub\n# END seal.cluster c1\n"
    header = "# Managed by seal.cluster (cluster c1); removed by reset.\n"
    written = [ca, str(modules_load), str(sysctl_conf), str(hosts)]

    check, calls = prepare(params, check=True)
    assert check["changed"] is True and check["directories_created"] == [data] and check["files_changed"] == written
    # a dry run; overlay (in /sys/module) and br_netfilter (its /proc/sys/net/bridge) are not probed
    assert calls == [["/fake/bin/modprobe", "-n", "seal_no_such_module"]]
    assert check["modules_unavailable"] == ["seal_no_such_module"] and check["modules_loaded"] == []
    assert check["sysctls_set"] == {"net.ipv4.ip_forward": "1"} and check["sysctls_unavailable"] == ["net.seal.missing"]
    assert {d["after_header"]: d["after"] for d in check["diff"]}[str(hosts)] == "127.0.0.1 localhost\n" + block
    assert hosts.read_text() == "127.0.0.1 localhost\n" and ip_forward.read_text() == "0\n"
    for path in (data, ca, modules_load, sysctl_conf):
        assert not os.path.exists(path), path

    applied, calls = prepare(params)
    assert calls == [["/fake/bin/modprobe", "seal_no_such_module"]]
    assert applied["changed"] is True and applied["directories_created"] == [data] and applied["files_changed"] == written
    assert applied["modules_unavailable"] == ["seal_no_such_module"]
    assert applied["sysctls_set"] == {"net.ipv4.ip_forward": "1"} and ip_forward.read_text() == "1"
    assert applied["warned"] == ["kernel module seal_no_such_module cannot be loaded: modprobe: FATAL: "
                                 "Module seal_no_such_module not found",
                                 "sysctl net.seal.missing does not exist on this host"]
    assert _mode(data) == 0o700
    assert open(ca, encoding="utf-8").read() == "PEM\n" and _mode(ca) == 0o644
    assert modules_load.read_text() == header + "overlay\nbr_netfilter\nseal_no_such_module\n" and _mode(modules_load) == 0o644
    assert sysctl_conf.read_text() == header + "net.ipv4.ip_forward = 1\nnet.seal.missing = 1\n" and _mode(sysctl_conf) == 0o644
    assert hosts.read_text() == "127.0.0.1 localhost\n" + block and _mode(hosts) == 0o644

    again, _calls = prepare(params)
    assert again["changed"] is False and again["files_changed"] == [] and again["directories_created"] == []
    assert again["sysctls_set"] == {} and again["diff"] == []

    ip_forward.write_text("0\n")  # the running value drifted (a reboot before sysctl.d applied)
    drifted, _calls = prepare(params)
    assert drifted["changed"] is True and drifted["sysctls_set"] == {"net.ipv4.ip_forward": "1"} and drifted["files_changed"] == []
    assert ip_forward.read_text() == "1"

    more = dict(params, hosts=params["hosts"] + [{"ip": "10.0.0.3", "hostnames": ["node-3", "node-3.local"]}])
    changed, _calls = prepare(more)
    assert changed["changed"] is True and changed["files_changed"] == [str(hosts)] and changed["directories_created"] == []
    new_block = "# BEGIN seal.cluster c1\n10.0.0.2 sea.hub\n10.0.0.3 node-3 node-3.local\n# END seal.cluster c1\n"
    assert changed["diff"] == [{"before_header": str(hosts), "after_header": str(hosts),
                                "before": "127.0.0.1 localhost\n" + block, "after": "127.0.0.1 localhost\n" + new_block}]
    assert hosts.read_text() == "127.0.0.1 localhost\n" + new_block and _mode(hosts) == 0o644
    assert prepare(more)[0]["changed"] is False


@pytest.mark.parametrize("params, problem", [
    ({"sysctls": {"net..ipv4": "1"}}, "sysctls: 'net..ipv4' is not a kernel parameter name"),
    ({"sysctls": {"net/../../../etc/passwd": "x"}}, "is not a kernel parameter name"),
    ({"kernel_modules": ["-r"]}, "kernel_modules: '-r' is not a kernel module name"),
    ({"kernel_modules": ["../x"]}, "kernel_modules: '../x' is not a kernel module name"),
])
def test_bad_kernel_names_are_refused_before_any_change(tmp_path, hosts, kernel, prepare, params, problem):
    out, calls = prepare(dict(params, directories=[{"path": str(tmp_path / "d")}]))
    assert out["failed"] is True and problem in out["msg"] and calls == []
    assert not (tmp_path / "d").exists() and (kernel / "proc" / "sys" / "net" / "ipv4" / "ip_forward").read_text() == "0\n"


def test_the_report_reads_rootfs_and_record_in_the_same_call(tmp_path, hosts, run):
    """node_prepare's report (the no-op run's one module call per host): the rootfs as
    rootfs_info reports it, and the converged record (none here: its inputs are null)."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / ".seal-digest").write_text("sha256:" + "a" * 64 + "\n")
    params = {"report": {"rootfs": {"dest": str(rootfs), "role": "agent"}, "record": str(tmp_path / "converged.json")}}
    assert "reports" not in run(tmp_path)
    out = run(tmp_path, **params)
    assert out["changed"] is False and out["reports"]["rootfs"]["digest"] == "sha256:" + "a" * 64
    assert out["reports"]["rootfs"]["intact"] == [] and out["reports"]["rootfs"]["exists"] is True
    assert out["reports"]["record"] == {"inputs": None, "intact": False, "active": False}
