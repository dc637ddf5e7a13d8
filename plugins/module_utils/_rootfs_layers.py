# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster image's rootfs on a host, built from the image's layers (stdlib only: runs on hosts).

What a host holds (docs/distribution.md):
- ``<dest>/.seal-digest``: the image digest, written last (module_utils._rootfs_marker);
- ``<dest>/.seal-layers.json``: the layer state: the role's path selection, and per layer the
  files it put into the rootfs (kind, size, sha256 or link target) with their stat fingerprints;
- on the seed (the first registry host) the layer blobs, kept in the registry's own storage
  under the repository ``seal/rootfs-layers``, where the other hosts fetch them (TLS and auth).

The integrity check is by layer: a file a layer put there whose stat fingerprint (size, mtime,
ctime, inode) changed is hashed again and compared with the recorded sha256; a layer with a
missing or different file is damaged and is fetched again. Paths that sealer ``kind: Config``
documents wrote after distribution (``<dest>/.seal/config-applied.json``) are never checked nor
healed. A layer whose blob is not needed (none of its paths in the host's selection) is never
fetched. When the layers of an image write disjoint paths (one COPY per directory, as sealer
builds them) an upgrade reuses the files of unchanged layers (hard links) and fetches only the
layers that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat

from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe
from ansible_collections.seal.cluster.plugins.module_utils._digest import hex_of
from ansible_collections.seal.cluster.plugins.module_utils._files import remove_path
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_marker import marker_path, read_marker

STATE = ".seal-layers.json"
CONFIG_APPLIED = os.path.join(".seal", "config-applied.json")
REPOSITORY = "seal/rootfs-layers"
STORAGE = os.path.join("docker", "registry", "v2")
_CHUNK = 1 << 20

# What each role gets (docs/distribution.md): None is everything.
AGENT_PATHS = ("bin", "Metadata", "Kubefile")
SERVER_EXCLUDES = ("registry",)


class LayerError(RuntimeError):
    """A layer that could not be fetched, verified or applied; the message says which and why."""


def role_paths(role):
    """(include, exclude) top-level names for a host role: agent, server or registry."""
    if role == "agent":
        return list(AGENT_PATHS), []
    if role == "server":
        return None, list(SERVER_EXCLUDES)
    return None, []


def selector(include, exclude):
    """select(name) for safe.Extractor.apply, by the first component of a rootfs-relative name."""
    include = set(include) if include is not None else None
    exclude = set(exclude or ())

    def select(name):
        top = name.split("/", 1)[0]
        return top not in exclude and (include is None or top in include)
    return select


def layer_wanted(tops, include, exclude):
    """Whether a layer whose members start with tops has anything for this host."""
    select = selector(include, exclude)
    return any(select(top) for top in tops) if tops is not None else True


def sha256_path(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def fingerprint(st):
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def read_state(dest):
    try:
        with open(os.path.join(dest, STATE), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and isinstance(state.get("layers"), list) else None


def config_applied(dest):
    """The rootfs-relative paths sealer Config documents wrote (never checked nor healed)."""
    try:
        with open(os.path.join(dest, CONFIG_APPLIED), encoding="utf-8") as f:
            paths = json.load(f)
    except (OSError, ValueError):
        return set()
    return {p.strip("/").lstrip("./") for p in paths if isinstance(p, str)} if isinstance(paths, list) else set()


def blob_data(storage, digest):
    """The data file of a blob in a registry storage root (``<root>/docker/registry/v2/...``)."""
    hexd = hex_of(digest, "layer")
    return os.path.join(storage, STORAGE, "blobs", "sha256", hexd[:2], hexd, "data")


def open_blob(storage, desc):
    """The kept blob of the layer desc, opened for reading."""
    path = blob_data(storage, desc["digest"])
    return open(path, "rb")  # pylint: disable=consider-using-with


def blob_link(storage, digest):
    hexd = hex_of(digest, "layer")
    return os.path.join(storage, STORAGE, "repositories", REPOSITORY, "_layers", "sha256", hexd, "link")


def _file_intact(path, entry, fp):
    """entry: [kind, size, sha256 or link target]; fp: the recorded fingerprint or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind = entry[0]
    if kind == "symlink":
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry[2]
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry[1]:
        return False
    if fp is not None and fingerprint(st) == fp:
        return True
    return sha256_path(path) == entry[2]


def check(dest, want_digest=None, include=None, exclude=None, storage=None):
    """What the host holds: {digest, intact: [layer digests whose files are all as recorded],
    damaged: [...], blobs: [layer digests whose blob in storage is intact], selection_same}."""
    state = read_state(dest) or {"layers": []}
    skip = config_applied(dest)
    fps = state.get("fp") or {}
    intact, damaged = [], []
    for layer in state["layers"]:
        ok = all(rel in skip or _file_intact(os.path.join(dest, rel), entry, fps.get(rel))
                 for rel, entry in (layer.get("files") or {}).items())
        (intact if ok else damaged).append(layer.get("digest"))
    blobs = []
    if storage:
        recorded = state.get("blobs") or {}
        for layer in state["layers"]:
            digest = layer.get("digest")
            path = blob_data(storage, digest)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if recorded.get(digest) == fingerprint(st) or sha256_path(path) == digest:
                blobs.append(digest)
    return {
        "digest": read_marker(dest), "state_digest": state.get("digest"), "intact": intact, "damaged": damaged,
        "blobs": blobs,
        "selection_same": state.get("include") == include and state.get("exclude") == (exclude or []),
        "disjoint": bool(state.get("disjoint")), "want": want_digest,
    }


def converged(report, digest, layers, storage=None):
    """Whether nothing is to be done: same digest and selection, every layer intact, and on the
    seed every blob kept."""
    wanted = [desc["digest"] for desc in layers]
    return (report["digest"] == digest == report["state_digest"] and report["selection_same"]
            and not report["damaged"] and all(d in report["intact"] for d in wanted)
            and (not storage or all(d in report["blobs"] for d in wanted)))


class _Hashing:
    """A read-only stream that hashes what passes through it (and counts it)."""

    def __init__(self, raw):
        self.raw, self.h, self.size = raw, hashlib.sha256(), 0

    def read(self, n=-1):
        data = self.raw.read(n if n is not None and n >= 0 else _CHUNK * 64)
        self.h.update(data)
        self.size += len(data)
        return data

    def drain(self):
        while self.read(_CHUNK):
            pass
        return "sha256:" + self.h.hexdigest()


class LayerBuilder:
    """Build dest from layers.

    layers: [{digest, size, tops}] in order (tops: the first components of its members, or None).
    open_layer(desc) -> a readable stream of the blob (a file, or the registry's answer);
    the digest of every byte read is checked. storage: the seed's registry storage, where each
    fetched blob is kept (verified) for the other hosts."""

    def __init__(self, dest, digest, layers, include=None, exclude=None, storage=None, open_layer=None):
        self.dest, self.digest, self.layers = dest, digest, layers
        self.include, self.exclude = include, list(exclude or [])
        self.storage, self.open_layer = storage, open_layer
        self.select = selector(include, exclude)

    def plan(self, report):
        """[(desc, action)] with action skip (nothing for this host), reuse or fetch."""
        reusable = (report["selection_same"] and report["disjoint"]
                    and report["digest"] is not None and report["digest"] == report["state_digest"])
        out = []
        for desc in self.layers:
            if not layer_wanted(desc.get("tops"), self.include, self.exclude):
                out.append((desc, "skip"))
            elif reusable and desc["digest"] in report["intact"]:
                out.append((desc, "reuse"))
            else:
                out.append((desc, "fetch"))
        return out

    def build(self, report):
        """Build the new rootfs next to dest and swap it in; return the layers fetched."""
        old_state = read_state(self.dest) or {"layers": []}
        old_files = {l.get("digest"): l.get("files") or {} for l in old_state["layers"]}
        staging = self.dest + ".new"
        remove_path(staging)
        os.makedirs(staging, mode=0o755)
        fetched = []
        try:
            extractor = safe.Extractor(staging)
            owners, disjoint, layer_files = {}, True, []
            for desc, action in self.plan(report):
                digest = desc["digest"]
                if action == "skip":
                    layer_files.append((digest, []))
                    continue
                start = len(extractor.written)
                if action == "reuse":
                    for rel in old_files.get(digest, {}):
                        self._link(rel, staging)
                        extractor.written.append(rel)
                else:
                    whiteouts = extractor.whiteouts
                    self._fetch(extractor, desc)
                    fetched.append(digest)
                    disjoint = disjoint and extractor.whiteouts == whiteouts
                names = extractor.written[start:]
                for rel in names:
                    if rel in owners and owners[rel] != digest:
                        disjoint = False
                    owners[rel] = digest
                layer_files.append((digest, names))
            extractor.finish()
            state = self._state(staging, owners, layer_files, old_files, disjoint)
            with open(os.path.join(staging, STATE), "w", encoding="utf-8") as f:
                json.dump(state, f, sort_keys=True)
            with open(marker_path(staging), "w", encoding="utf-8") as f:
                f.write(self.digest + "\n")
            old = self.dest + ".old"
            remove_path(old)
            if os.path.lexists(self.dest):
                os.rename(self.dest, old)
            os.rename(staging, self.dest)
            remove_path(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return fetched

    def _link(self, rel, staging):
        safe.member_parts(rel, "layer state")
        src, dst = os.path.join(self.dest, rel), os.path.join(staging, rel)
        os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        else:
            os.link(src, dst, follow_symlinks=False)

    def _fetch(self, extractor, desc):
        digest = desc["digest"]
        label = "layer %s" % digest
        stream = self.open_layer(desc)
        try:
            reader = _Hashing(stream)
            try:
                extractor.apply(reader, label, whiteouts=True, select=self.select)
            except safe.ArchiveError as exc:
                raise LayerError(str(exc)) from exc
            got = reader.drain()
        finally:
            stream.close()
        if got != digest or (desc.get("size") is not None and reader.size != desc["size"]):
            raise LayerError("%s: the bytes received hash to %s (%d bytes), not to the layer's digest; nothing was changed"
                             % (label, got, reader.size))

    def _state(self, staging, owners, layer_files, old_files, disjoint):
        layers, fps = [], {}
        for digest, names in layer_files:
            files = {}
            for rel in names:
                if owners.get(rel) != digest:
                    continue
                path = os.path.join(staging, rel)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue  # removed by a later layer's whiteout
                if stat.S_ISLNK(st.st_mode):
                    files[rel] = ["symlink", 0, os.readlink(path)]
                elif stat.S_ISREG(st.st_mode):
                    known = old_files.get(digest, {}).get(rel)
                    sha = known[2] if known and known[0] == "file" and known[1] == st.st_size else sha256_path(path)
                    files[rel] = ["file", st.st_size, sha]
                    fps[rel] = fingerprint(os.lstat(path))
            layers.append({"digest": digest, "files": files})
        state = {"digest": self.digest, "include": self.include, "exclude": self.exclude,
                 "disjoint": disjoint, "layers": layers, "fp": fps}
        if self.storage:
            state["blobs"] = {d: fingerprint(os.stat(blob_data(self.storage, d)))
                              for d, _n in layer_files if os.path.exists(blob_data(self.storage, d))}
        return state


def keep_blob(storage, digest, source):
    """Put the verified blob file source into the registry storage (moved, one copy) and link it
    into REPOSITORY, so that the registry serves it. Refuses a file whose bytes differ."""
    got = sha256_path(source)
    if got != digest:
        raise LayerError("layer %s: the copy received hashes to %s; refused" % (digest, got))
    data, link = blob_data(storage, digest), blob_link(storage, digest)
    for path in (data, link):
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    shutil.move(source, data + ".tmp")
    os.chmod(data + ".tmp", 0o644)
    os.replace(data + ".tmp", data)
    with open(link + ".tmp", "w", encoding="utf-8") as f:
        f.write(digest)
    os.replace(link + ".tmp", link)
    return data
