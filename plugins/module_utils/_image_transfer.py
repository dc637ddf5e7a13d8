# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving images in and out of the store as OCI archives (save/load: a tar of an OCI image
layout, as `skopeo copy ... oci-archive:` and `podman save --format oci-archive` write them).
Whatever comes in is verified blob by blob before it is tagged. Registries: _image_registry."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile

from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference


def _descs(store, desc):
    manifest = store.manifest(desc)
    return [desc, manifest["config"]] + list(manifest.get("layers", []))


def save(store, ref, desc, archive):
    """Write an oci-archive (a tar of an OCI layout holding this image) to archive."""
    for d in _descs(store, desc):
        store.verify_blob(d["digest"], d.get("size"))
    tmp = archive + ".tmp"
    index = {"schemaVersion": 2, "manifests": [dict(desc, annotations={store_mod.REF_ANNOTATION: str(ref)})]}
    with tarfile.open(tmp, "w") as tar:
        for name, data in (("oci-layout", store_mod.canonical_json({"imageLayoutVersion": "1.0.0"})),
                           ("index.json", store_mod.canonical_json(index))):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, fileobj=_BytesReader(data))
        for d in sorted({d["digest"]: d for d in _descs(store, desc)}.values(), key=lambda d: d["digest"]):
            tar.add(store.blob_path(d["digest"]), arcname="blobs/sha256/" + d["digest"].split(":", 1)[1], recursive=False,
                    filter=_reset_owner)
    os.replace(tmp, archive)


def _reset_owner(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


class _BytesReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, size=-1):
        end = len(self.data) if size < 0 else self.pos + size
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk


def import_layout(store, layout, wanted=None):
    """Copy the images of an OCI layout directory into the store, verifying every blob.
    Returns [(ref, descriptor)] of what was tagged."""
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    source = store_mod.Store(layout)
    tagged = []
    for desc in index.get("manifests", []):
        name = desc.get("annotations", {}).get(store_mod.REF_ANNOTATION) or wanted
        if not name:
            continue
        for d in _descs(source, desc):
            source.verify_blob(d["digest"], d.get("size"))
            if not store.has_blob(d["digest"]):
                tmp = store.tempfile()
                shutil.copyfile(source.blob_path(d["digest"]), tmp)
                store.put_file(tmp)
        ref = Reference.parse(wanted or name)
        store.tag(ref, desc["digest"], desc["size"], desc.get("mediaType") or store_mod.MANIFEST)
        tagged.append((ref, desc))
    return tagged


def archive_refs(archive):
    """{reference: manifest digest} of the images an OCI archive holds (reads only its index.json)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise store_mod.StoreError("%s is not an OCI archive: %s" % (archive, exc)) from exc
    if not isinstance(index, dict):
        raise store_mod.StoreError("%s is not an OCI archive (no index.json)" % archive)
    refs = {}
    for desc in index.get("manifests", []):
        name = (desc.get("annotations") or {}).get(store_mod.REF_ANNOTATION)
        if name:
            try:
                refs[str(Reference.parse(name))] = desc["digest"]
            except ValueError:
                continue
    return refs


def load(store, archive):
    if not tarfile.is_tarfile(archive):
        raise store_mod.StoreError("%s is not an OCI archive (not a tar file)" % archive)
    tmp = tempfile.mkdtemp(prefix=".load-", dir=store.root)
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if os.path.isabs(member.name) or os.path.normpath(member.name).startswith(".."):
                    raise store_mod.StoreError("%s: unsafe path %r" % (archive, member.name))
            tar.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        if not os.path.exists(os.path.join(tmp, "index.json")):
            raise store_mod.StoreError("%s is not an OCI archive (no index.json)" % archive)
        return import_layout(store, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
