#!/usr/bin/env python3
"""Assemble the rootfs of a k3s *test* cluster image from the stand-in, offline.

    make_rootfs.py --version v1.25.3+k3s1 --out DIR

DIR then holds the sealer/sealos k3s rootfs layout (shared/DESIGN.md §2.2):

    Kubefile                       the recipe (tests/standin/image/Kubefile, version filled in)
    Metadata                       {"version", "arch", "ClusterRuntime": "k3s"}
    bin/k3s                        the stand-in (etcd bundled inside, as k3s bundles its helpers)
    bin/registry                   the distribution registry (Debian's docker-registry)
    images/k3s-airgap-images-amd64.tar   docker-archive of the system images, made here
    registry/                      registry-v2 storage holding the images of manifests/imageList
    manifests/imageList            images the cluster needs (one per line)
    etc/registry.yml               the registry's config template

Every image is built locally from a tiny tar (nothing comes from the internet); registry/ is
filled by running bin/registry on a loopback port with its storage at DIR/registry and pushing
with `skopeo copy` from an OCI layout made here.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build as standin_build  # noqa: E402

MTIME = 1666727978  # fixed timestamps: same inputs, same bytes

# what k3s v1.25's airgap archive carries (k3s-images.txt), tiny local stand-ins for each
SYSTEM_IMAGES = [
    "docker.io/rancher/klipper-helm:v0.7.3-build20220613",
    "docker.io/rancher/klipper-lb:v0.3.5",
    "docker.io/rancher/local-path-provisioner:v0.0.21",
    "docker.io/rancher/mirrored-coredns-coredns:1.9.1",
    "docker.io/rancher/mirrored-library-busybox:1.34.1",
    "docker.io/rancher/mirrored-library-traefik:2.9.1",
    "docker.io/rancher/mirrored-metrics-server:v0.6.1",
    "docker.io/rancher/mirrored-pause:3.6",
]
# images the cluster's workloads need, served by the private registry
REGISTRY_IMAGES = [
    "docker.io/rancher/mirrored-pause:3.6",
    "docker.io/library/busybox:1.36",
]

REGISTRY_CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
"""


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = MTIME
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            info.uname = info.gname = "root"
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _layer(ref: str) -> bytes:
    """A tiny root filesystem: identifies the image it stands for."""
    return _tar_bytes({"etc/standin-image": f"{ref}\n".encode(),
                       "hello.sh": b"#!/bin/sh\necho hello from a k3s stand-in test image\n"})


def _config(ref: str, diff_id: str) -> bytes:
    cfg = {"architecture": "amd64", "os": "linux", "created": "2022-10-25T19:59:38Z",
           "config": {"Cmd": ["/hello.sh"], "Labels": {"io.seal.standin.image": ref}},
           "rootfs": {"type": "layers", "diff_ids": [diff_id]},
           "history": [{"created": "2022-10-25T19:59:38Z", "created_by": "tests/standin/make_rootfs.py"}]}
    return json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def docker_archive(refs: list[str], out: str) -> None:
    """`docker save` format: manifest.json + <config>.json + <layer>/layer.tar."""
    files: dict[str, bytes] = {}
    manifest = []
    for ref in refs:
        layer = _layer(ref)
        lid = hashlib.sha256(layer).hexdigest()
        config = _config(ref, "sha256:" + lid)
        cid = hashlib.sha256(config).hexdigest()
        files[f"{lid}/layer.tar"] = layer
        files[f"{lid}/VERSION"] = b"1.0"
        files[f"{cid}.json"] = config
        manifest.append({"Config": f"{cid}.json", "RepoTags": [ref], "Layers": [f"{lid}/layer.tar"]})
    files["manifest.json"] = json.dumps(manifest, separators=(",", ":")).encode()
    with open(out, "wb") as f:
        f.write(_tar_bytes(files))


def oci_layout(refs: list[str], out_dir: str) -> None:
    """An OCI image layout with one manifest per ref (annotated with its name)."""
    blobs = os.path.join(out_dir, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        d = _sha(data)
        with open(os.path.join(blobs, d.split(":")[1]), "wb") as f:
            f.write(data)
        return d

    index = {"schemaVersion": 2, "manifests": []}
    for ref in refs:
        layer = _layer(ref)
        gz = gzip.compress(layer, mtime=0)
        config = _config(ref, _sha(layer))
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)}]}
        mb = json.dumps(man, separators=(",", ":")).encode()
        index["manifests"].append({"mediaType": man["mediaType"], "digest": put(mb), "size": len(mb),
                                   "annotations": {"org.opencontainers.image.ref.name": _tag_key(ref)}})
    with open(os.path.join(out_dir, "index.json"), "w", encoding="utf-8") as f:
        json.dump(index, f)
    with open(os.path.join(out_dir, "oci-layout"), "w", encoding="utf-8") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def _tag_key(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()[:16]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_registry(registry_bin: str, refs: list[str], root: str, work: str) -> None:
    os.makedirs(root, exist_ok=True)
    port = _free_port()
    cfg = os.path.join(work, "registry.yml")
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(REGISTRY_CONFIG.format(root=root, addr=f"127.0.0.1:{port}"))
    layout = os.path.join(work, "oci")
    oci_layout(refs, layout)
    log = open(os.path.join(work, "registry.log"), "wb")
    proc = subprocess.Popen([registry_bin, "serve", cfg], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"make_rootfs: registry did not start; see {work}/registry.log")
                time.sleep(0.2)
        for ref in refs:
            repo_tag = ref.split("/", 1)[1]  # registry path without the docker.io domain (sealer layout)
            subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{layout}:{_tag_key(ref)}", f"docker://127.0.0.1:{port}/{repo_tag}"],
                           check=True)
    finally:
        proc.terminate()
        proc.wait(10)


def make(version: str, out: str, registry_bin: str = "/usr/bin/docker-registry", etcd: str = "/usr/bin/etcd") -> str:
    out = os.path.abspath(out)
    if os.path.exists(out):
        shutil.rmtree(out)
    for d in ("bin", "images", "registry", "manifests", "etc"):
        os.makedirs(os.path.join(out, d))
    standin_build.build(version, os.path.join(out, "bin", "k3s"), etcd)
    shutil.copy2(registry_bin, os.path.join(out, "bin", "registry"))
    docker_archive(SYSTEM_IMAGES, os.path.join(out, "images", "k3s-airgap-images-amd64.tar"))
    with tempfile.TemporaryDirectory(prefix="make-rootfs-") as work:
        fill_registry(registry_bin, REGISTRY_IMAGES, os.path.join(out, "registry"), work)
    with open(os.path.join(out, "manifests", "imageList"), "w", encoding="utf-8") as f:
        f.write("".join(r + "\n" for r in REGISTRY_IMAGES))
    with open(os.path.join(out, "Metadata"), "w", encoding="utf-8") as f:
        json.dump({"version": version, "arch": "amd64", "ClusterRuntime": "k3s"}, f)
        f.write("\n")
    with open(os.path.join(out, "etc", "registry.yml"), "w", encoding="utf-8") as f:
        f.write(REGISTRY_CONFIG.format(root="/var/lib/registry", addr=":5000"))
    with open(os.path.join(HERE, "image", "Kubefile"), encoding="utf-8") as f:
        kubefile = f.read().replace("@VERSION@", version)
    with open(os.path.join(out, "Kubefile"), "w", encoding="utf-8") as f:
        f.write(kubefile)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--version", required=True, help="k3s version, e.g. v1.25.3+k3s1")
    p.add_argument("--out", required=True, help="rootfs directory to create (replaced if it exists)")
    p.add_argument("--registry-bin", default="/usr/bin/docker-registry")
    p.add_argument("--etcd", default="/usr/bin/etcd")
    a = p.parse_args(argv)
    started = time.monotonic()
    path = make(a.version, a.out, a.registry_bin, a.etcd)
    print(f"{path} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
