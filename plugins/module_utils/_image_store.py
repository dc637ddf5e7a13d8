# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local image store: an OCI image layout (oci-layout, index.json, blobs/sha256/<hex>),
content-addressed and deduplicated, that skopeo and other OCI tools read as
`oci:<store>:<ref>`. Writers take an exclusive lock, so two runs at once cannot corrupt it;
every blob read is checked against its digest."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile

from ansible_collections.seal.cluster.plugins.module_utils import _digest
from ansible_collections.seal.cluster.plugins.module_utils._files import sha256_stream
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference

ENV_STORE = "SEAL_IMAGE_STORE"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TYPES = (LAYER_GZIP, "application/vnd.oci.image.layer.v1.tar", "application/vnd.docker.image.rootfs.diff.tar.gzip")


class StoreError(Exception):
    """Something wrong in the store; the message names the blob or reference."""


def default_root():
    return os.environ.get(ENV_STORE) or os.path.join(os.path.expanduser("~"), ".cache", "seal", "images")


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha256_file(path):
    with open_regular(path) as f:
        return _sha256_of(f)


def _sha256_of(f):
    """The store's form: ("sha256:<hex>", size)."""
    hexdigest, size = sha256_stream(f)
    return "sha256:" + hexdigest, size


def open_regular(path):
    """Open path for reading only if it is a regular file (not a symlink, device or FIFO, so a
    blob named /dev/zero or a link out of the store can neither hang a read nor escape)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError("%s is a symlink; refused" % path) from exc
        raise
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise StoreError("%s is not a regular file; refused" % path)
    return f


def checked_digest(digest, where):
    """The digest, checked by the one validator (_digest), as a StoreError naming where."""
    try:
        return _digest.check(digest, where)
    except _digest.DigestError as exc:
        raise StoreError(str(exc)) from exc


def checked_descriptor(desc, where):
    try:
        return _digest.descriptor(desc, where)
    except _digest.DigestError as exc:
        raise StoreError(str(exc)) from exc


def rootfs_archive(rootfs, digest):
    """The tar of an extracted rootfs made for shipping to hosts: <rootfs>.sha256-<hex>.tar."""
    return "%s.sha256-%s.tar" % (rootfs.rstrip("/"), _hex(digest, "rootfs digest"))


def _hex(digest, where):
    return checked_digest(digest, where)[len("sha256:"):]


class Store:
    def __init__(self, root=None):
        self.root = os.path.abspath(os.path.expanduser(root or default_root()))

    # -- layout --------------------------------------------------------------------------
    def ensure(self):
        os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)
        layout = os.path.join(self.root, "oci-layout")
        if not os.path.exists(layout):
            self._write(layout, canonical_json({"imageLayoutVersion": "1.0.0"}))
        if not os.path.exists(self.index_path):
            self._write(self.index_path, canonical_json({"schemaVersion": 2, "manifests": []}))

    @property
    def index_path(self):
        return os.path.join(self.root, "index.json")

    @contextlib.contextmanager
    def lock(self):
        self.ensure()
        with open(os.path.join(self.root, ".lock"), "w", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _write(path, data):
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def index(self):
        try:
            with open(self.index_path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {"schemaVersion": 2, "manifests": []}

    # -- blobs ---------------------------------------------------------------------------
    def blob_path(self, digest, where="blob"):
        """The only place a digest becomes a path: it is checked first (sha256:<64 hex>)."""
        return os.path.join(self.root, "blobs", "sha256", _hex(digest, where))

    def rootfs_path(self, digest):
        """Directory of the extracted rootfs of the image whose manifest has this digest."""
        return os.path.join(self.root, "rootfs", _hex(digest, "image"))

    def has_blob(self, digest):
        return os.path.lexists(self.blob_path(digest))

    def put_bytes(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not os.path.exists(path):
            self._write(path, data)
        return digest, len(data)

    def put_file(self, src):
        """Move a finished temporary file into the store under its digest."""
        digest, size = sha256_file(src)
        path = self.blob_path(digest)
        if os.path.exists(path):
            os.unlink(src)
        else:
            os.replace(src, path)
        return digest, size

    def tempfile(self):
        self.ensure()
        fd, tmp = tempfile.mkstemp(dir=os.path.join(self.root, "blobs"), prefix=".incoming-")
        os.close(fd)
        return tmp

    def verify_blob(self, digest, size=None):
        path = self.blob_path(digest)
        if not os.path.lexists(path):
            raise StoreError("blob %s is missing from the store %s" % (digest, self.root))
        try:
            with open_regular(path) as f:
                actual, actual_size = _sha256_of(f)
        except StoreError as exc:
            raise StoreError("blob %s: %s" % (digest, exc)) from exc
        if actual != digest or (size is not None and actual_size != size):
            raise StoreError("blob %s is corrupt: its content hashes to %s (%d bytes%s)"
                             % (digest, actual, actual_size, "" if size is None else ", expected %d" % size))
        return path

    def read_json(self, digest, size=None):
        with open_regular(self.verify_blob(digest, size)) as f:
            try:
                return json.loads(f.read())
            except ValueError as exc:
                raise StoreError("blob %s is not JSON: %s" % (digest, exc)) from exc

    # -- references ----------------------------------------------------------------------
    def resolve(self, ref):
        """The manifest descriptor of ref (a Reference or text), or None."""
        ref = Reference.parse(ref) if isinstance(ref, str) else ref
        for desc in self.index().get("manifests", []):
            if ref.digest and desc["digest"] == ref.digest:
                return desc
            if not ref.digest and desc.get("annotations", {}).get(REF_ANNOTATION) == str(ref):
                return desc
        return None

    def tag(self, ref, digest, size, media_type=MANIFEST):
        ref = Reference.parse(ref) if isinstance(ref, str) else ref
        index = self.index()
        manifests = [d for d in index.get("manifests", []) if d.get("annotations", {}).get(REF_ANNOTATION) != str(ref)]
        manifests.append({"mediaType": media_type, "digest": digest, "size": size, "annotations": {REF_ANNOTATION: str(ref)}})
        index["manifests"] = sorted(manifests, key=lambda d: d["annotations"][REF_ANNOTATION])
        self._write(self.index_path, canonical_json(index))

    def untag(self, ref):
        ref = Reference.parse(ref) if isinstance(ref, str) else ref
        index = self.index()
        before = len(index.get("manifests", []))
        index["manifests"] = [d for d in index.get("manifests", []) if d.get("annotations", {}).get(REF_ANNOTATION) != str(ref)]
        self._write(self.index_path, canonical_json(index))
        return len(index["manifests"]) != before

    def images(self):
        return [(d["annotations"][REF_ANNOTATION], d) for d in self.index().get("manifests", []) if d.get("annotations", {}).get(REF_ANNOTATION)]

    def manifest(self, desc):
        """The image manifest of desc, with every descriptor it holds checked."""
        checked_descriptor(desc, "image manifest descriptor")
        manifest = self.read_json(desc["digest"], desc.get("size"))
        if (not isinstance(manifest, dict) or manifest.get("mediaType", MANIFEST) not in (MANIFEST, DOCKER_MANIFEST)
                or "config" not in manifest or not isinstance(manifest.get("layers", []), list)):
            raise StoreError("%s is not an OCI image manifest" % desc["digest"])
        checked_descriptor(manifest["config"], "config of manifest %s" % desc["digest"])
        for n, layer in enumerate(manifest.get("layers", [])):
            checked_descriptor(layer, "layer %d of manifest %s" % (n, desc["digest"]))
        return manifest

    def gc(self):
        """Remove blobs that no tagged manifest references; return how many."""
        keep = set()
        for _name, desc in self.images():
            keep.add(desc["digest"])
            try:
                manifest = self.manifest(desc)
            except StoreError:
                continue
            keep.add(manifest["config"]["digest"])
            keep.update(layer["digest"] for layer in manifest.get("layers", []))
        removed = 0
        blob_dir = os.path.join(self.root, "blobs", "sha256")
        for name in os.listdir(blob_dir) if os.path.isdir(blob_dir) else []:
            if "sha256:" + name not in keep:
                os.unlink(os.path.join(blob_dir, name))
                removed += 1
        rootfs_dir = os.path.join(self.root, "rootfs")
        for name in os.listdir(rootfs_dir) if os.path.isdir(rootfs_dir) else []:
            if "sha256:" + name.split(".")[0] not in keep:
                path = os.path.join(rootfs_dir, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        return removed
