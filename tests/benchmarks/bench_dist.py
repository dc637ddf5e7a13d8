#!/usr/bin/env python3
"""Distribution benchmark (issue 21): bytes leaving the controller and wall times of install,
no-op re-run and upgrade (an image whose binary layer changed), for this tree and for a baseline
tree (a git worktree of an earlier commit), with the controller's link shaped to 100 Mbit/s
(`tc` on the host side of the fleet's bridge: only what leaves the controller is shaped, the
fleet's own traffic is not) and unshaped, plus the `ansible -m ping` floor of the same hosts.

    .venv/bin/python tests/benchmarks/bench_dist.py --baseline /work/wt/dist-base \\
        [--sizes 1+9,3+27] [--links shaped,unshaped] [--name di-bench]

The test image is the k3s stand-in padded with incompressible bytes to a real release's sizes:
bin/ to the k3s binary (73,666,712 bytes: k3s v1.32.5+k3s1, k3s-io/k3s pull request #12361,
"k3s binary dist/artifacts/k3s size 73666712") and images/ to the air-gap images archive
(k3s-airgap-images-amd64.tar.zst, 86.3 MB: k3s-io/k3s issue #2941, release artifacts of
v1.21.0-rc1+k3s1). The baseline tree needs .venv and .cache/collections like a checkout
(this script links them). A benchmark, not a test: it prints figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
sys.path.insert(0, os.path.join(ROOT, "tests", "standin"))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
import fleet  # noqa: E402  pylint: disable=wrong-import-position
import make_rootfs  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder  # noqa: E402
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store  # noqa: E402

VERSION = "v1.25.3+k3s1"
BINARY_BYTES = 73_666_712
AIRGAP_BYTES = 86_300_000
RATE = "100mbit"


def pad(path: str, size: int, seed_file: str) -> None:
    """size incompressible bytes at path, the same bytes for the same seed_file."""
    if not os.path.exists(seed_file) or os.path.getsize(seed_file) != size:
        with open(seed_file + ".tmp", "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                f.write(chunk)
                left -= len(chunk)
        os.replace(seed_file + ".tmp", seed_file)
    shutil.copyfile(seed_file, path)


def build_images(store: str, work: str) -> tuple[int, list[str]]:
    """Two images: k3s:bench1 and k3s:bench2 (only bin/'s padding differs). Returns the size of
    bench1's blobs and the names."""
    ctx = os.path.join(work, "ctx")
    make_rootfs.make(VERSION, ctx)
    standin = os.path.getsize(os.path.join(ctx, "bin", "k3s"))
    pad(os.path.join(ctx, "images", "padding-airgap.bin"), AIRGAP_BYTES, os.path.join(work, "airgap.seed"))
    names = []
    for n in (1, 2):
        pad(os.path.join(ctx, "bin", "padding-k3s.bin"), BINARY_BYTES - standin, os.path.join(work, f"bin{n}.seed"))
        desc, _ = Builder(Store(store), ctx).build(f"k3s:bench{n}")
        names.append(f"k3s:bench{n}")
        if n == 1:
            manifest = Store(store).manifest(desc)
            size = desc["size"] + manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    return size, names


def bridge(state: dict) -> str:
    info = json.loads(fleet.podman("network", "inspect", state["network"]))[0]
    return info["network_interface"]


def tx_bytes(dev: str) -> int:
    with open(f"/sys/class/net/{dev}/statistics/tx_bytes", encoding="utf-8") as f:
        return int(f.read())


def shape(dev: str, on: bool) -> None:
    subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True, check=False)
    if on:
        subprocess.run(["tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", RATE, "burst", "256kb", "latency", "400ms"],
                       check=True)


def tree_env(tree: str, store: str, home: str) -> dict:
    return dict(os.environ, SEAL_IMAGE_STORE=store, HOME=home, ANSIBLE_CONFIG=os.path.join(tree, "tests", "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(tree, ".cache", "collections"))


def link_tree(tree: str) -> None:
    """A baseline worktree gets this tree's .venv and its own collection link."""
    if not os.path.exists(os.path.join(tree, ".venv")):
        os.symlink(os.path.join(ROOT, ".venv"), os.path.join(tree, ".venv"))
    coll = os.path.join(tree, ".cache", "collections", "ansible_collections", "seal")
    os.makedirs(coll, exist_ok=True)
    if not os.path.lexists(os.path.join(coll, "cluster")):
        os.symlink(tree, os.path.join(coll, "cluster"))


def playbook(tree: str, env: dict, inventory: str, book: str, label: str, extra: list[str] | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory, book, *(extra or [])],
                          cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-5000:])
        raise SystemExit(f"bench: {label} failed (rc {proc.returncode})")
    return wall


def measure(dev: str, fn) -> tuple[float, int]:
    before = tx_bytes(dev)
    wall = fn()
    return wall, tx_bytes(dev) - before


def run_variant(name: str, tree: str, size: tuple[int, int], links: list[str], store: str, images: list[str]) -> dict:
    masters, nodes = size
    state = fleet.up(name, masters, nodes, cluster_image=images[0])
    out = {}
    try:
        dev = bridge(state)
        clusterfile = os.path.join(state["dir"], "Clusterfile")
        env = tree_env(tree, store, tempfile.mkdtemp(prefix="seal-bench-home-"))
        inventory = os.path.join(state["dir"], "hosts.yml")
        if os.path.exists(inventory):
            started = time.monotonic()
            subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible"), "-i", inventory, "master:node", "-m", "ping"],
                           cwd=tree, env=env, capture_output=True, check=True)
            out["ping"] = time.monotonic() - started
        for i, link in enumerate(links):
            shape(dev, link == "shaped")
            if i:
                playbook(tree, env, clusterfile, "playbooks/reset.yml", "reset", None)
            fig = {}
            fig["install"] = measure(dev, lambda: playbook(tree, env, clusterfile, "playbooks/run.yml", "install"))
            fig["noop"] = measure(dev, lambda: playbook(tree, env, clusterfile, "playbooks/run.yml", "no-op re-run"))
            fig["upgrade"] = measure(dev, lambda: playbook(tree, env, clusterfile, "playbooks/run.yml", "upgrade",
                                                          ["-e", "image=" + images[1]]))
            out[link] = fig
            print(f"   {name} {link}: " + ", ".join(f"{k} {v[0]:.1f}s {v[1] / 1e6:.1f} MB" for k, v in fig.items()), flush=True)
        shape(dev, False)
    finally:
        fleet.down(name)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--baseline", required=True, help="a git worktree of the baseline commit")
    p.add_argument("--sizes", default="1+9")
    p.add_argument("--links", default="shaped,unshaped")
    p.add_argument("--name", default="di-bench")
    p.add_argument("--variants", default="base,new")
    args = p.parse_args()
    work = os.path.join(ROOT, ".cache", "bench-dist")
    os.makedirs(work, exist_ok=True)
    store = tempfile.mkdtemp(prefix="seal-bench-store-")
    image_size, images = build_images(store, work)
    link_tree(args.baseline)
    trees = {"base": os.path.abspath(args.baseline), "new": ROOT}
    links = args.links.split(",")
    results = {}
    for size_text in args.sizes.split(","):
        size = tuple(int(x) for x in size_text.split("+"))
        for variant in args.variants.split(","):
            print(f"== {variant} {size_text}", flush=True)
            results[(size_text, variant)] = run_variant(f"{args.name}{variant[0]}", trees[variant], size, links, store, images)
    print(f"\nimage {images[0]}: {image_size / 1e6:.1f} MB of blobs (binary {BINARY_BYTES / 1e6:.1f} MB, air-gap {AIRGAP_BYTES / 1e6:.1f} MB)")
    print(f"{'nodes':6} {'link':9} {'variant':8} {'install s':>10} {'MB out':>9} {'no-op s':>8} {'MB out':>7} {'upgrade s':>10} {'MB out':>8} {'ping s':>7}")
    for (size_text, variant), out in results.items():
        for link in links:
            fig = out[link]
            print(f"{size_text:6} {link:9} {variant:8} {fig['install'][0]:10.1f} {fig['install'][1] / 1e6:9.1f} {fig['noop'][0]:8.1f}"
                  f" {fig['noop'][1] / 1e6:7.1f} {fig['upgrade'][0]:10.1f} {fig['upgrade'][1] / 1e6:8.1f} {out.get('ping', 0):7.1f}")
    for size_text in args.sizes.split(","):
        new, base = results.get((size_text, "new")), results.get((size_text, "base"))
        if new and base and "shaped" in links:
            print(f"{size_text}: shaped install new/base = {new['shaped']['install'][0] / base['shaped']['install'][0]:.2f}"
                  f" (target <= 0.25); bytes out / image = {new['shaped']['install'][1] / image_size:.2f} (target <= 1.1);"
                  f" no-op / ping = {new['shaped']['noop'][0] / max(new.get('ping', 1), 0.1):.1f} (target <= 2)")
    sizes = args.sizes.split(",")
    for link in links:
        small, large = results.get((sizes[0], "new")), results.get((sizes[-1], "new"))
        if len(sizes) > 1 and small and large:
            print(f"{link}: install {sizes[-1]} / {sizes[0]} = {large[link]['install'][0] / small[link]['install'][0]:.2f}"
                  f" (target <= 2); bytes out {sizes[-1]} / image = {large[link]['install'][1] / image_size:.2f}")
    shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
