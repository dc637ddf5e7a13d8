# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving images in and out of the store as OCI archives (save/load: a tar of an OCI image
layout, as `skopeo copy ... oci-archive:` and `podman save --format oci-archive` write them).
Whatever comes in is verified blob by blob before it is tagged. Registries: _image_registry."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_

INDEX_LIMIT = 4 << 20


def _descs(store, desc):
    manifest = store.manifest(desc)
    return [desc, manifest["config"]] + list(manifest.get("layers", []))


def save(store, ref, desc, archive):
    """Write an oci-archive (a tar of an OCI layout holding this image) to archive."""
    for d in _descs(store, desc):
        store.verify_blob(d["digest"], d.get("size"))
    tmp = archive + ".tmp"
    index = {"schemaVersion": 2, "manifests": [dict(desc, annotations={store_mod.REF_ANNOTATION: str(ref)})]}
    with open(tmp, "wb") as f, safe.Writer(f) as tar:
        tar.add_bytes("oci-layout", store_mod.canonical_json({"imageLayoutVersion": "1.0.0"}))
        tar.add_bytes("index.json", store_mod.canonical_json(index))
        for d in sorted({d["digest"]: d for d in _descs(store, desc)}.values(), key=lambda d: d["digest"]):
            path = store.blob_path(d["digest"])
            tar.add_file("blobs/sha256/" + os.path.basename(path), path, mode=0o644, mtime=0)
    os.replace(tmp, archive)


def _index_refs(index, archive, strict):
    """[(reference or None, descriptor)] of an OCI index; descriptors are checked. strict: an
    invalid reference name is an error instead of being skipped."""
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise store_mod.StoreError("%s is not an OCI archive (index.json is not an OCI index)" % archive)
    found = []
    for n, desc in enumerate(index.get("manifests", [])):
        store_mod.checked_descriptor(desc, "%s: index.json manifests[%d]" % (archive, n))
        if desc.get("size") is None:
            raise store_mod.StoreError("%s: index.json manifests[%d] has no size" % (archive, n))
        name = (desc.get("annotations") or {}).get(store_mod.REF_ANNOTATION)
        ref = None
        if name:
            try:
                ref = Reference.parse(name)
            except (ReferenceError_, ValueError) as exc:
                if strict:
                    raise store_mod.StoreError("%s: index.json manifests[%d] names an invalid reference: %s" % (archive, n, exc)) from exc
        found.append((ref, desc))
    return found


def _read_index(archive):
    try:
        data = safe.read_member(archive, "index.json", INDEX_LIMIT, archive)
    except safe.ArchiveError as exc:
        raise store_mod.StoreError("%s is not an OCI archive: %s" % (archive, exc)) from exc
    if data is None:
        raise store_mod.StoreError("%s is not an OCI archive (no index.json)" % archive)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise store_mod.StoreError("%s is not an OCI archive (index.json is not JSON: %s)" % (archive, exc)) from exc


def archive_refs(archive):
    """{reference: manifest digest} of the images an OCI archive holds (reads only its index.json)."""
    return {str(ref): desc["digest"] for ref, desc in _index_refs(_read_index(archive), archive, strict=False) if ref}


def import_layout(store, layout, selected, label):
    """Copy the images [(ref, descriptor)] of an OCI layout directory into the store, verifying
    every blob (regular files named by checked digests only), then tag them."""
    source = store_mod.Store(layout)
    for _ref, desc in selected:
        for d in _descs(source, desc):
            source.verify_blob(d["digest"], d.get("size"))
            if not store.has_blob(d["digest"]):
                tmp = store.tempfile()
                with store_mod.open_regular(source.blob_path(d["digest"])) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                store.put_file(tmp)
    for ref, desc in selected:
        store.tag(ref, desc["digest"], desc["size"], desc.get("mediaType") or store_mod.MANIFEST)
    return list(selected)


def select(store, archive, refs, wanted=None, overwrite=False):
    """Which images of an archive to tag: with wanted, that one only (it must be declared);
    without, every name the archive declares, refusing to move an existing tag to another
    digest unless overwrite."""
    if wanted is not None:
        matches = [(wanted, desc) for ref, desc in refs if ref is not None and str(ref) == str(wanted)]
        if not matches:
            held = sorted(str(ref) for ref, _d in refs if ref is not None)
            raise store_mod.StoreError("archive %s does not hold %s (it holds %s)" % (archive, wanted, ", ".join(held) or "nothing"))
        return matches[-1:]
    named = {}
    for ref, desc in refs:
        if ref is not None:
            if str(ref) in named and named[str(ref)][1]["digest"] != desc["digest"]:
                raise store_mod.StoreError("archive %s names %s twice, for %s and %s" % (archive, ref, named[str(ref)][1]["digest"], desc["digest"]))
            named[str(ref)] = (ref, desc)
    if not named:
        raise store_mod.StoreError("archive %s names no image (no %s annotation); give the name to load it as" % (archive, store_mod.REF_ANNOTATION))
    if not overwrite:
        for name, (ref, desc) in sorted(named.items()):
            current = store.resolve(ref)
            if current is not None and current["digest"] != desc["digest"]:
                raise store_mod.StoreError("archive %s holds %s as %s, but the store has %s as %s; not replaced (ask to overwrite)"
                                           % (archive, name, desc["digest"], name, current["digest"]))
    return [named[name] for name in sorted(named)]


def load(store, archive, wanted=None, overwrite=False):
    """Load an OCI archive (a tar of an OCI layout; `./` member prefixes are fine): every member
    goes through the safe extraction helper, every blob is verified, and only the selected
    images are tagged (see select). Returns [(ref, descriptor)] of what was tagged."""
    if not safe.is_tar(archive):
        raise store_mod.StoreError("%s is not an OCI archive (not a tar file)" % archive)
    wanted = Reference.parse(wanted) if isinstance(wanted, str) else wanted
    store.ensure()
    tmp = tempfile.mkdtemp(prefix=".load-", dir=store.root)
    try:
        try:
            safe.extract(archive, tmp, label=archive)
        except safe.ArchiveError as exc:
            raise store_mod.StoreError(str(exc)) from exc
        try:
            index = safe.read_regular(tmp, "index.json", INDEX_LIMIT, archive)
        except safe.ArchiveError as exc:
            raise store_mod.StoreError(str(exc)) from exc
        if index is None:
            raise store_mod.StoreError("%s is not an OCI archive (no index.json)" % archive)
        try:
            index = json.loads(index)
        except ValueError as exc:
            raise store_mod.StoreError("%s is not an OCI archive (index.json is not JSON: %s)" % (archive, exc)) from exc
        chosen = select(store, archive, _index_refs(index, archive, strict=wanted is None), wanted, overwrite)
        return import_layout(store, tmp, chosen, archive)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
