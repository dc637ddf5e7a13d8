#!/usr/bin/env python3
"""Build a k3s test cluster image (stand-in rootfs + Kubefile) into a store with the collection's
own builder, for Molecule scenarios, benchmarks and the README's demo.

    build_image.py [--version v1.25.3+k3s1] [--name k3s:v1.25.3] [--store DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
sys.path.insert(0, HERE)

from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder  # noqa: E402
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store  # noqa: E402
import make_rootfs  # noqa: E402  pylint: disable=wrong-import-position


def build(version: str, store: str | None = None, name: str | None = None) -> str:
    """Build the image for version into store; return its name."""
    name = name or "k3s:" + version.split("+", 1)[0]
    with tempfile.TemporaryDirectory(prefix="seal-test-image-") as ctx:
        context = os.path.join(ctx, "rootfs")
        make_rootfs.make(version, context)
        desc, _before = Builder(Store(store), context).build(name)
    print(f"{name} {desc['digest']}")
    return name


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--version", default="v1.25.3+k3s1")
    p.add_argument("--name")
    p.add_argument("--store", help="image store (default $SEAL_IMAGE_STORE, else ~/.cache/seal/images)")
    args = p.parse_args()
    build(args.version, args.store, args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
