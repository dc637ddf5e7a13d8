# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving images in and out of the store: OCI archives (save/load) and registries (pull/push,
through skopeo, a maintained OCI copy tool). Whatever comes in is verified blob by blob before
it is tagged."""

from __future__ import annotations

import base64
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
        store.tag(ref, desc["digest"], desc["size"])
        tagged.append((ref, desc))
    return tagged


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


class Registry:
    """Registry access through skopeo; credentials go through a 0600 auth file, never argv."""

    def __init__(self, run, skopeo, username=None, password=None, ca_file=None, insecure=False):
        self.run = run
        self.skopeo = skopeo
        self.username, self.password = username, password
        self.ca_file = ca_file
        self.insecure = insecure

    def _options(self, ref, tmpdir, direction):
        opts = []
        if self.username:
            auth = {"auths": {ref.registry: {"auth": base64.b64encode(("%s:%s" % (self.username, self.password or "")).encode()).decode()}}}
            path = os.path.join(tmpdir, "auth.json")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(auth, f)
            opts += ["--authfile", path]
        if self.ca_file:
            certs = os.path.join(tmpdir, "certs")
            os.makedirs(certs, exist_ok=True)
            shutil.copyfile(self.ca_file, os.path.join(certs, "ca.crt"))
            opts += ["--%s-cert-dir" % direction, certs]
        host = ref.registry.rsplit(":", 1)[0]
        if self.insecure or host in ("localhost", "127.0.0.1", "::1"):
            opts += ["--%s-tls-verify=false" % direction]
        return opts

    def _copy(self, argv):
        rc, out, err = self.run([self.skopeo, "copy", "--quiet"] + argv)
        if rc != 0:
            raise store_mod.StoreError("skopeo copy failed: %s" % (err or out).strip())

    def pull(self, store, ref):
        tmp = tempfile.mkdtemp(prefix=".pull-", dir=store.root)
        try:
            layout = os.path.join(tmp, "layout")
            self._copy(["--preserve-digests"] + self._options(ref, tmp, "src")
                       + ["docker://%s" % ref, "oci:%s:%s" % (layout, ref)])
            return import_layout(store, layout, wanted=str(ref))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def push(self, store, ref, desc):
        for d in _descs(store, desc):
            store.verify_blob(d["digest"], d.get("size"))
        tmp = tempfile.mkdtemp(prefix=".push-", dir=store.root)
        try:
            self._copy(["--preserve-digests"] + self._options(ref, tmp, "dest")
                       + ["oci:%s:%s" % (store.root, ref), "docker://%s" % ref])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
