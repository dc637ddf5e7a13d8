# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of a cluster image on the controller (which blobs make its rootfs, and which
top-level paths each writes), and whether what a host reported holding is that image intact:
shared by the rootfs action and the filter role distribute skips a converged host with."""

from __future__ import annotations

import fcntl
import json
import os

from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_layers as rl
from ansible_collections.seal.cluster.plugins.module_utils._digest import DigestError, hex_of
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError
from ansible_collections.seal.cluster.plugins.module_utils._safe_archive import ArchiveError, top_names


class LayersError(Exception):
    """The image's blobs in the store cannot be read or verified."""


def image_layers(src, digest):
    """[{digest, size, tops}] of the image whose extracted rootfs is src (<store>/rootfs/<hex>),
    or None when src is not an image's rootfs in a store (then the whole rootfs is shipped).
    Every blob is verified and listed once per image (<src>.layers.json, made under a lock)."""
    try:
        hexd = hex_of(digest, "rootfs digest")
    except DigestError:
        return None
    src = src.rstrip("/")
    if os.path.basename(src) != hexd or os.path.basename(os.path.dirname(src)) != "rootfs":
        return None
    store = Store(os.path.dirname(os.path.dirname(src)))
    if not store.has_blob(digest):
        return None
    cache = src + ".layers.json"
    with open(cache + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(cache, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
        try:
            manifest = store.manifest({"digest": digest})
            layers = []
            for layer in manifest.get("layers", []):
                path = store.verify_blob(layer["digest"], layer.get("size"))
                tops = sorted(top_names(path, "layer %s" % layer["digest"]))
                layers.append({"digest": layer["digest"], "size": os.path.getsize(path), "tops": tops})
        except (StoreError, ArchiveError) as exc:
            raise LayersError("image %s: %s" % (digest, exc)) from exc
        with open(cache + ".tmp", "w", encoding="utf-8") as f:
            json.dump(layers, f)
        os.replace(cache + ".tmp", cache)
    return layers


def held_converged(held, src, digest, storage=None):
    """Whether held (the host's report, as rootfs_info gives it for the host's role and storage)
    shows the image at src/digest intact: then nothing is to be sent or fetched."""
    if not held or not src or not os.path.isdir(src):
        return False
    layers = image_layers(src, digest)
    return layers is not None and rl.converged(held, digest, layers, storage)
