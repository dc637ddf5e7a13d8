# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Extract a cluster image to a rootfs directory cached by digest, and say what the image is.

Every blob is checked against its digest before anything is unpacked; layers are unpacked
into a temporary directory that is renamed to <store>/rootfs/<hex> only when complete, so a
later run never takes a half-extracted rootfs as good."""

from __future__ import annotations

import json
import os
import shutil
import tarfile

from ansible_collections.seal.cluster.plugins.module_utils._image_store import StoreError

RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type"
VERSION_LABEL = "cluster.alpha.sealer.io/cluster-runtime-version"


def _safe_members(tar, layer_digest):
    for member in tar.getmembers():
        name = os.path.normpath(member.name)
        if name.startswith("..") or os.path.isabs(member.name):
            raise StoreError("layer %s has an unsafe path %r" % (layer_digest, member.name))
        if member.islnk() and os.path.normpath(member.linkname).startswith(".."):
            raise StoreError("layer %s has an unsafe hard link %r" % (layer_digest, member.name))
        yield member


def _apply_layer(path, digest, target):
    with tarfile.open(path, "r:*") as tar:
        members = []
        for member in _safe_members(tar, digest):
            base = os.path.basename(member.name)
            if base.startswith(".wh."):  # OCI whiteout: delete from lower layers
                victim = os.path.join(target, os.path.dirname(member.name), base[len(".wh."):])
                if base == ".wh..wh..opq":
                    victim = os.path.join(target, os.path.dirname(member.name))
                    for child in os.listdir(victim) if os.path.isdir(victim) else []:
                        _remove(os.path.join(victim, child))
                else:
                    _remove(victim)
                continue
            members.append(member)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="tar")
        else:
            tar.extractall(target, members=members)  # nosec: members checked above


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def rootfs_path(store, desc):
    return os.path.join(store.root, "rootfs", desc["digest"].split(":", 1)[1])


def extract(store, desc):
    """Return the rootfs directory of the image, extracting it first if needed."""
    target = rootfs_path(store, desc)
    if os.path.isdir(target):
        return target, False
    manifest = store.manifest(desc)
    store.verify_blob(manifest["config"]["digest"], manifest["config"].get("size"))
    paths = [(store.verify_blob(layer["digest"], layer.get("size")), layer["digest"]) for layer in manifest.get("layers", [])]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = "%s.partial-%d" % (target, os.getpid())
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        for path, digest in paths:
            _apply_layer(path, digest, partial)
        os.chmod(partial, 0o755)
        try:
            os.rename(partial, target)
        except OSError:
            if not os.path.isdir(target):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another run finished the same digest first
            return target, False
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target, True


def describe(store, desc, rootfs=None):
    """What the image is: digest, size, labels, runtime, version, arch, Kubefile, cached images."""
    manifest = store.manifest(desc)
    config = store.read_json(manifest["config"]["digest"], manifest["config"].get("size"))
    labels = dict((config.get("config") or {}).get("Labels") or {})
    runtime, version = labels.get(RUNTIME_LABEL), labels.get(VERSION_LABEL)
    metadata = None
    if rootfs and os.path.exists(os.path.join(rootfs, "Metadata")):
        with open(os.path.join(rootfs, "Metadata"), encoding="utf-8") as f:
            try:
                metadata = json.load(f)
            except ValueError as exc:
                raise StoreError("image %s: Metadata is not JSON: %s" % (desc["digest"], exc)) from exc
    if not runtime and metadata:
        runtime, version = metadata.get("ClusterRuntime"), version or metadata.get("version")
    image_list = []
    if rootfs and os.path.exists(os.path.join(rootfs, "manifests", "imageList")):
        with open(os.path.join(rootfs, "manifests", "imageList"), encoding="utf-8") as f:
            image_list = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    size = desc.get("size", 0) + manifest["config"].get("size", 0) + sum(layer.get("size", 0) for layer in manifest.get("layers", []))
    return {
        "digest": desc["digest"], "size": size, "labels": labels, "runtime": runtime,
        "runtime_version": version, "arch": config.get("architecture"),
        "kubefile": labels.get("io.seal.cluster.kubefile"), "image_list": image_list,
    }


def runtime_error(name, desc):
    return ("image %s (%s) names no cluster runtime: neither the label %s nor a Metadata file with ClusterRuntime"
            % (name, desc["digest"], RUNTIME_LABEL))
