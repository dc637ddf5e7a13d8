"""k3s_reset against a host laid out under a temporary root, with the host's programs recorded:
check mode predicts and touches nothing, apply removes and issues the commands, a second run
finds nothing."""
import os
import subprocess
import time

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules import k3s_reset

REAL_RESETTER = k3s_reset.Resetter
IPTABLES = "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A INPUT -j KUBE-SERVICES\n-A INPUT -p tcp -j ACCEPT\nCOMMIT\n"


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "root"
    layout = Layout(str(root))
    for path in (layout.unit_path("server"), layout.env_path("server"), layout.k3s_bin, layout.config,
                 layout.path("/var/lib/kubelet/pods/x"), layout.path("/etc/seal/c1/registry/config.yml"),
                 layout.path("/etc/containers/certs.d/sea.hub:5000/ca.crt"), layout.path("/etc/containers/keep")):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("x\n")
    os.symlink("k3s", os.path.join(layout.bin_dir, "kubectl"))
    with open(os.path.join(layout.bin_dir, "ctr"), "w", encoding="utf-8") as f:
        f.write("a real ctr, not k3s's link\n")
    data = tmp_path / "data"
    (data / "agent").mkdir(parents=True)
    seal = tmp_path / "seal" / "c1"
    seal.mkdir(parents=True)
    for name in ("cni0", "flannel.1", "eth0", "veth1"):
        (root / "sys/class/net" / name).mkdir(parents=True)
    os.symlink("../cni0", root / "sys/class/net/veth1/master")
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/mounts").write_text(
        "overlay / overlay rw 0 0\n"
        "tmpfs /run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/shm tmpfs rw 0 0\n"
        "tmpfs %s/agent/x tmpfs rw 0 0\n" % data)
    return {"root": root, "layout": layout, "data": data, "seal": seal}


def runner_for(host, fake_runner):
    """systemctl answers from the state of the fake host: active while its unit file exists."""
    def is_active(argv):
        unit = os.path.join(host["layout"].unit_dir, argv[2])
        return (0, "active\n", "") if os.path.exists(unit) else (3, "inactive\n", "")

    def iptables_save(argv):
        return 0, IPTABLES if os.path.exists(host["layout"].unit_path("server")) else "*filter\nCOMMIT\n", ""

    return fake_runner({("systemctl", "is-active", "k3s.service"): is_active,
                       "iptables-save": iptables_save, "ip6tables-save": (1, "", "no ip6tables")})


def run(run_main, monkeypatch, host, runner, check=False):
    def resetter(module, _seal_paths):
        paths = k3s_reset.cluster_paths(module.params, host["layout"])
        return REAL_RESETTER(module, paths, host["layout"], runner)

    monkeypatch.setattr(k3s_reset, "Resetter", resetter)
    return run_main(k3s_reset, {"data_dir": str(host["data"]), "cluster": "c1", "data_root": str(host["seal"].parent),
                                "registry_host": "sea.hub:5000"}, check=check)


def test_check_apply_idempotent(run_main, monkeypatch, host, fake_runner):
    layout = host["layout"]
    runner = runner_for(host, fake_runner)
    predicted = run(run_main, monkeypatch, host, runner, check=True)
    assert predicted["changed"] is True
    assert "service k3s.service stopped" in predicted["removed"]
    assert "interface cni0 deleted" in predicted["removed"] and "interface veth1 deleted" in predicted["removed"]
    assert not any("eth0" in r for r in predicted["removed"])
    assert "iptables rules of KUBE-/CNI-/flannel removed" in predicted["removed"]
    # check mode asks, never acts
    assert all(c[:2] in (["systemctl", "is-active"], ["iptables-save"], ["ip6tables-save"]) for c in runner.calls)
    assert os.path.exists(layout.k3s_bin) and os.path.exists(host["seal"])

    runner = runner_for(host, fake_runner)
    applied = run(run_main, monkeypatch, host, runner)
    assert applied["changed"] is True and sorted(applied["removed"]) == sorted(predicted["removed"])
    assert runner.called("systemctl", "stop", "k3s.service") and runner.called("systemctl", "disable", "k3s.service")
    assert runner.called("systemctl", "daemon-reload")
    assert [c for c in runner.calls if c[0] == "ip"] == [["ip", "link", "delete", n] for n in ("cni0", "flannel.1", "veth1")]
    unmounted = [c[-1] for c in runner.called("umount")]
    assert unmounted[0].endswith("/agent/x") or unmounted[0].startswith("/run/k3s/")
    assert len(unmounted) == 2
    restored = runner.inputs[runner.calls.index(runner.called("iptables-restore")[0])]
    assert "KUBE-" not in restored and "-A INPUT -p tcp -j ACCEPT" in restored
    for gone in (layout.k3s_bin, layout.unit_path("server"), layout.env_path("server"), layout.path("/etc/rancher"),
                 layout.path("/var/lib/kubelet"), os.path.join(layout.bin_dir, "kubectl"), str(host["data"]),
                 str(host["seal"]), layout.path("/etc/seal/c1"), layout.path("/etc/containers/certs.d/sea.hub:5000")):
        assert not os.path.lexists(gone), gone
    # what k3s did not make stays
    assert os.path.exists(os.path.join(layout.bin_dir, "ctr")) and os.path.exists(layout.path("/etc/containers/keep"))

    (host["root"] / "proc/self/mounts").write_text("overlay / overlay rw 0 0\n")
    for name in ("cni0", "flannel.1", "veth1"):
        os.unlink(host["root"] / "sys/class/net" / name / "master") if name == "veth1" else None
        os.rmdir(host["root"] / "sys/class/net" / name)
    runner = runner_for(host, fake_runner)
    again = run(run_main, monkeypatch, host, runner)
    assert again == {"changed": False, "removed": [], "invocation": again["invocation"]}
    assert not runner.called("systemctl", "stop") and not runner.called("iptables-restore")

    # something k3s makes is back (a half-finished install): only that is removed
    os.makedirs(os.path.dirname(layout.config))
    with open(layout.config, "w", encoding="utf-8") as f:
        f.write("token: x\n")
    (host["root"] / "sys/class/net/flannel.1").mkdir()
    runner = runner_for(host, fake_runner)
    changed = run(run_main, monkeypatch, host, runner)
    assert changed["changed"] is True and sorted(changed["removed"]) == sorted(
        ["interface flannel.1 deleted", "removed " + layout.path("/etc/rancher")]), changed["removed"]
    assert runner.called("ip", "link", "delete", "flannel.1") and not runner.called("systemctl", "stop")
    assert not os.path.lexists(layout.path("/etc/rancher"))


def test_kills_the_processes_k3s_left(run_main, monkeypatch, host, fake_runner):
    child = subprocess.Popen(["sleep", "60"])  # pylint: disable=consider-using-with
    try:
        proc = host["root"] / "proc" / str(child.pid)
        proc.mkdir(parents=True)
        os.symlink(str(host["data"] / "data/current/bin/containerd-shim-runc-v2"), proc / "exe")
        (proc / "cmdline").write_bytes(b"containerd-shim-runc-v2\0-namespace\0k8s.io\0")
        other = host["root"] / "proc" / "1"
        other.mkdir()
        os.symlink("/usr/sbin/sshd", other / "exe")
        (other / "cmdline").write_bytes(b"/usr/sbin/sshd\0-D\0")
        out = run(run_main, monkeypatch, host, runner_for(host, fake_runner), check=True)
        assert "process %d killed" % child.pid in out["removed"] and "process 1 killed" not in out["removed"]
        assert child.poll() is None
        out = run(run_main, monkeypatch, host, runner_for(host, fake_runner))
        assert "process %d killed" % child.pid in out["removed"]
        deadline = time.monotonic() + 10
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.returncode == -9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_shims_containers_are_killed_with_it(run_main, monkeypatch, host, fake_runner):
    """k3s-killall.sh's killtree: the processes below a shim (its containers, which run from
    their own rootfs, not from the data dir) die too; a process beside them stays."""
    procs = [subprocess.Popen(["sleep", "60"]) for _n in range(3)]  # pylint: disable=consider-using-with
    shim, pod, bystander = procs
    try:
        def fake(pid, ppid, exe, argv):
            proc = host["root"] / "proc" / str(pid)
            proc.mkdir(parents=True)
            os.symlink(exe, proc / "exe")
            (proc / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
            (proc / "stat").write_text("%d (sl ee) p) S %d 1 1 0 -1\n" % (pid, ppid))

        fake(shim.pid, 1, str(host["data"] / "data/abc/bin/containerd-shim-runc-v2"), [b"containerd-shim-runc-v2"])
        fake(pod.pid, shim.pid, "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs/pause", [b"/pause"])
        fake(bystander.pid, 1, "/usr/bin/sleep", [b"sleep", b"60"])
        out = run(run_main, monkeypatch, host, runner_for(host, fake_runner))
        assert "process %d killed" % shim.pid in out["removed"] and "process %d killed" % pod.pid in out["removed"]
        assert "process %d killed" % bystander.pid not in out["removed"]
        for child in (shim, pod):
            assert child.wait(timeout=10) == -9
        assert bystander.poll() is None
    finally:
        for child in procs:
            child.kill()
            child.wait()


def test_cni_network_namespaces_are_unmounted_and_removed(run_main, monkeypatch, host, fake_runner):
    netns = host["layout"].path("/run/netns/cni-1234")
    os.makedirs(os.path.dirname(netns))
    with open(netns, "w", encoding="utf-8"):
        pass
    (host["root"] / "proc/self/mounts").write_text("overlay / overlay rw 0 0\nnsfs /run/netns/cni-1234 nsfs rw 0 0\n")
    runner = runner_for(host, fake_runner)
    out = run(run_main, monkeypatch, host, runner)
    assert "unmounted /run/netns/cni-1234" in out["removed"]
    assert runner.called("umount", "-f", "-l", "/run/netns/cni-1234")
    assert not os.path.lexists(netns) and os.path.isdir(os.path.dirname(netns))
