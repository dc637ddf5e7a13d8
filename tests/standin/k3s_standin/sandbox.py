"""What a running pod leaves on a k3s node, so that a reset has real things to clean up: one pod
sandbox per node (k3s runs at least the svclb DaemonSet pod on every node).

- a containerd shim process, DATA/data/<hash>/bin/containerd-shim-runc-v2 (a copy of dash), in
  its own session so that it outlives k3s as real shims do (k3s units have KillMode=process:
  stopping k3s leaves the shims and containers running, hence k3s-killall.sh);
- the pod's process, a child of the shim, running from the container's rootfs, a tmpfs mounted at
  /run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/<id>/rootfs;
- an emptyDir volume, a tmpfs mounted under /var/lib/kubelet/pods/<uid>/volumes/;
- the pod's network: a netns /run/netns/cni-<uuid> (a bind mount), a veth pair whose host end is
  enslaved to the bridge cni0 and whose other end is eth0 in the netns.

k3s-killall.sh (k3s-io/k3s install.sh create_killall) removes exactly these: getshims (processes
whose args match DATA/data/[^/]*/bin/containerd-shim) and their process trees (killtree),
do_unmount_and_remove of /run/k3s, /var/lib/kubelet/pods, /var/lib/kubelet/plugins and
/run/netns/cni-, `ip netns delete` of cni-*, and remove_interfaces (every interface with
`master cni0`, then cni0, flannel.1, flannel-v6.1, kube-ipvs0, flannel-wg, flannel-wg-v6).
A restarted k3s finds its running shim again and starts none (containerd reconnects to shims).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid

from . import util

TASKS = "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io"
PODS = "/var/lib/kubelet/pods"
SHIM = "containerd-shim-runc-v2"


def sandbox_id(node_name: str) -> str:
    return hashlib.sha256(f"svclb-{node_name}".encode()).hexdigest()


def _shim_running(sid: str) -> bool:
    marker = f"-id\0{sid}\0".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read():
                    return True
        except OSError:
            continue
    return False


def _run(*argv: str) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {proc.stderr.strip()}")


def _mounted(path: str) -> bool:
    with open("/proc/self/mounts", encoding="utf-8") as f:
        return any(line.split()[1] == path for line in f if line.strip())


def start(data_dir: str, node_name: str) -> None:
    """Start the node's pod sandbox unless its shim still runs (errors are logged, as a pod that
    fails to start does not stop k3s)."""
    if os.geteuid() != 0 or util.ETC_RANCHER != "/etc/rancher":
        return  # several instances on one machine (K3S_STANDIN_ETC): the host is not a node
    sid = sandbox_id(node_name)
    if _shim_running(sid):
        util.info(f"Found running shim for sandbox {sid[:13]}")
        return
    try:
        _start(data_dir, sid)
    except OSError as exc:
        util.error(f"Failed to start pod sandbox {sid[:13]}: {exc}")


def _start(data_dir: str, sid: str) -> None:
    bindir = os.path.join(data_dir, "data", getattr(util._build, "DATA_HASH", "dev"), "bin")  # pylint: disable=protected-access
    shim = os.path.join(bindir, SHIM)
    if not os.path.exists(shim):
        os.makedirs(bindir, exist_ok=True)
        shutil.copy2("/bin/dash", shim)
    rootfs = os.path.join(TASKS, sid, "rootfs")
    os.makedirs(rootfs, exist_ok=True)
    if not _mounted(rootfs):
        _run("mount", "-t", "tmpfs", "-o", "size=16m", "shm", rootfs)
    shutil.copy2("/bin/sleep", os.path.join(rootfs, "pause"))
    uid = str(uuid.UUID(sid[:32]))
    volume = os.path.join(PODS, uid, "volumes", "kubernetes.io~empty-dir", "tmp")
    os.makedirs(volume, exist_ok=True)
    if not _mounted(volume):
        _run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", volume)
    netns = f"cni-{uuid.UUID(sid[32:])}"
    if not os.path.exists(f"/run/netns/{netns}"):
        _run("ip", "netns", "add", netns)
    if not os.path.exists("/sys/class/net/cni0"):
        _run("ip", "link", "add", "cni0", "type", "bridge")
        _run("ip", "link", "set", "cni0", "up")
    veth = f"veth{sid[:8]}"
    if not os.path.exists(f"/sys/class/net/{veth}"):
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _run("ip", "link", "set", veth, "master", "cni0")
        _run("ip", "link", "set", veth, "up")
    # the shim, in its own session (it outlives k3s), and the pod's process its child
    subprocess.Popen([shim, "-c", f'"{rootfs}/pause" infinity & wait', shim, "-namespace", "k8s.io", "-id", sid,  # pylint: disable=consider-using-with
                      "-address", "/run/k3s/containerd/containerd.sock"],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)
    util.info(f"Started pod sandbox {sid[:13]} (shim, pod process, rootfs and emptyDir mounts, {veth} on cni0)")
