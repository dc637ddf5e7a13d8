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

from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext_mod
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import IMAGE_LIST, image_list_entries
from ansible_collections.seal.cluster.plugins.module_utils._image_store import StoreError

RUNTIME_LABEL = "cluster.alpha.sealer.io/cluster-runtime-type"
VERSION_LABEL = "cluster.alpha.sealer.io/cluster-runtime-version"
METADATA = "Metadata"
READ_LIMIT = 8 << 20


def rootfs_path(store, desc):
    return store.rootfs_path(desc["digest"])


def cached_rootfs(store, desc):
    """The extracted rootfs of the image if it is already there (nothing is written), else None."""
    target = rootfs_path(store, desc)
    return target if os.path.isdir(target) and not os.path.islink(target) else None


def extract(store, desc):
    """Return the rootfs directory of the image, extracting it first if needed."""
    target = rootfs_path(store, desc)
    if cached_rootfs(store, desc):
        return target, False
    manifest = store.manifest(desc)
    store.verify_blob(manifest["config"]["digest"], manifest["config"].get("size"))
    paths = [(store.verify_blob(layer["digest"], layer.get("size")), layer["digest"]) for layer in manifest.get("layers", [])]
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = "%s.partial-%d" % (target, os.getpid())
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        extractor = safe.Extractor(partial)
        for path, digest in paths:
            extractor.apply(path, "layer %s" % digest, whiteouts=True)
        extractor.finish()
        os.chmod(partial, 0o755)
        try:
            os.rename(partial, target)
        except OSError:
            if not os.path.isdir(target):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another run finished the same digest first
            return target, False
    except safe.ArchiveError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise StoreError("image %s: %s" % (desc["digest"], exc)) from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target, True


def _image_files(store, desc, manifest, rootfs):
    """{METADATA: bytes or None, IMAGE_LIST: bytes or None}: from the extracted rootfs when given
    (regular files whose real path is inside it), else from the verified layers, unextracted;
    the same refusals either way."""
    where = "image %s" % desc["digest"]
    try:
        if rootfs:
            return {rel: safe.read_regular(rootfs, rel, READ_LIMIT, where) for rel in (METADATA, IMAGE_LIST)}
        layers = [(store.verify_blob(layer["digest"], layer.get("size")), "layer %s" % layer["digest"])
                  for layer in manifest.get("layers", [])]
        view = safe.layered_view(layers, lambda name: name in (METADATA, IMAGE_LIST, "manifests"), READ_LIMIT)
    except safe.ArchiveError as exc:
        raise StoreError(str(exc)) from exc
    files = {}
    for rel in (METADATA, IMAGE_LIST):
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            entry = view.get("/".join(parts[:i]))
            if entry is not None and entry.kind == "symlink":
                raise StoreError("%s: %s is a symlink (%r); refused" % (where, rel, "/".join(parts[:i])))
        entry = view.get(rel)
        if entry is not None and entry.kind != "file":
            raise StoreError("%s: %s is not a regular file; refused" % (where, rel))
        if entry is not None and entry.data is None:
            raise StoreError("%s: %s is larger than %d bytes; refused" % (where, rel, READ_LIMIT))
        files[rel] = entry.data if entry else None
    return files


def describe(store, desc, rootfs=None):
    """What the image is: digest, size, labels, runtime, version, arch, Kubefile, cached images.
    Metadata and manifests/imageList are read from rootfs when given, else from the layers."""
    manifest = store.manifest(desc)
    config = store.read_json(manifest["config"]["digest"], manifest["config"].get("size"))
    if not isinstance(config, dict):
        raise StoreError("image %s: its config is not a JSON object" % desc["digest"])
    labels = dict((config.get("config") or {}).get("Labels") or {})
    runtime, version = labels.get(RUNTIME_LABEL), labels.get(VERSION_LABEL)
    files = _image_files(store, desc, manifest, rootfs)
    metadata = None
    if files[METADATA] is not None:
        try:
            metadata = json.loads(files[METADATA].decode("utf-8"))
        except ValueError as exc:
            raise StoreError("image %s: Metadata is not JSON: %s" % (desc["digest"], exc)) from exc
        if not isinstance(metadata, dict):
            raise StoreError("image %s: Metadata is not a JSON object" % desc["digest"])
    if not runtime and metadata:
        runtime, version = metadata.get("ClusterRuntime"), version or metadata.get("version")
    image_list = []
    if files[IMAGE_LIST] is not None:
        image_list = [value for _n, value in image_list_entries(files[IMAGE_LIST].decode("utf-8", errors="replace"))]
    notes = manifest.get("annotations") or {}
    try:
        extension = ext_mod.parse_extension(notes.get(ext_mod.EXTENSION) or "{}", "image %s: %s" % (desc["digest"], ext_mod.EXTENSION))
        images = ext_mod.parse_container_images(notes.get(ext_mod.CONTAINER_IMAGES),
                                                "image %s: %s" % (desc["digest"], ext_mod.CONTAINER_IMAGES))
    except ext_mod.ExtensionError as exc:
        raise StoreError(str(exc)) from exc
    size = desc.get("size", 0) + manifest["config"].get("size", 0) + sum(layer.get("size", 0) for layer in manifest.get("layers", []))
    return {
        "digest": desc["digest"], "size": size, "labels": labels, "runtime": runtime,
        "runtime_version": version, "arch": config.get("architecture"),
        "kubefile": labels.get("io.seal.cluster.kubefile"), "image_list": image_list,
        "type": extension["type"], "extension": extension, "container_images": images,
    }


def runtime_error(name, desc):
    return ("image %s (%s) names no cluster runtime: neither the label %s nor a Metadata file with ClusterRuntime"
            % (name, desc["digest"], RUNTIME_LABEL))
