# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the Clusterfile adds to a host's rootfs after the image's content arrived (stdlib only):
the files of its Config documents (content computed on the controller, plugin_utils/sealer_config)
and every ``*.tmpl`` file rendered with the host's env into the file without ``.tmpl`` (sealer
pkg/env/env.go RenderTemplate, through module_utils/_go_template).

Order as sealer's distributor (pkg/imagedistributor/scp_distributor.go Distribute: configs
dumped, then the rootfs rendered), so a Config may write a template.

Files written here are listed, rootfs-relative, in ``<rootfs>/.seal/config-applied.json`` (a
JSON list; the contract with distribution, which leaves them alone). Before a Config first
replaces a file of the image, the image's copy is kept in ``<rootfs>/.seal/config-base/<digest>/``,
so a Config taken out of the Clusterfile gives the image's file back (or removes a file the image
does not have); a new image digest starts afresh.

``<rootfs>/.seal/config-inputs`` holds the sha256 of what the overlay was made from (files, env,
image digest: ``inputs_digest``); rootfs_info reports it, so a run whose inputs are the host's
skips this step without a module call.

Every path stays inside the rootfs: relative, no ``..``, nothing written or read through a
symlink (the safe archive helper's rules)."""

from __future__ import annotations

import hashlib
import json
import os
import stat

from ansible_collections.seal.cluster.plugins.module_utils import _go_template as go_template
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe_archive
from ansible_collections.seal.cluster.plugins.module_utils._digest import DigestError
from ansible_collections.seal.cluster.plugins.module_utils._digest import hex_of as digest_hex
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import write_atomic

STATE_DIR = ".seal"
APPLIED = ".seal/config-applied.json"
BASE_DIR = ".seal/config-base"
INPUTS = ".seal/config-inputs"
SKIP = (".seal", ".seal-digest")
SUFFIX = ".tmpl"
MAX_FILE = 4 << 20


def _parts(rel, what):
    try:
        parts = safe_archive.member_parts(rel, "rootfs", what)
    except safe_archive.ArchiveError as exc:
        raise ModuleFailure(str(exc)) from None
    if not parts:
        raise ModuleFailure("rootfs: %s %r names the rootfs itself" % (what, rel))
    return parts


def _lstat(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class Rootfs:
    """One host's rootfs; every read and write is confined to it."""

    def __init__(self, root):
        self.root = os.path.realpath(root)

    def read(self, rel):
        """Text of rel, or None when absent."""
        try:
            raw = safe_archive.read_regular(self.root, rel, MAX_FILE, "rootfs")
        except safe_archive.ArchiveError as exc:
            raise ModuleFailure(str(exc)) from None
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModuleFailure("rootfs: %s is not UTF-8 text" % rel) from None

    def _parent(self, parts, create):
        try:
            return safe_archive.confined_dir(self.root, parts[:-1], "rootfs", "/".join(parts), create)
        except safe_archive.ArchiveError as exc:
            raise ModuleFailure(str(exc)) from None

    def write(self, rel, content, mode=0o644):
        parts = _parts(rel, "file")
        path = os.path.join(self._parent(parts, True), parts[-1])
        st = _lstat(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise ModuleFailure("rootfs: %s is not a regular file; refused" % rel)
        if st is not None:
            mode = st.st_mode & 0o777
        write_atomic(path, content, mode)

    def remove(self, rel):
        parts = _parts(rel, "file")
        parent = self._parent(parts, False)
        if parent is not None:
            path = os.path.join(parent, parts[-1])
            st = _lstat(path)
            if st is not None and stat.S_ISREG(st.st_mode):
                os.unlink(path)

    def templates(self):
        """Rootfs-relative paths of the regular *.tmpl files (symlinks and seal.cluster's own files skipped)."""
        out = []
        for top, dirs, files in os.walk(self.root):
            rel_top = os.path.relpath(top, self.root)
            if rel_top == ".":
                dirs[:] = [d for d in dirs if d not in SKIP]
            dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(top, d)))
            for name in sorted(files):
                path = os.path.join(top, name)
                if name.endswith(SUFFIX) and len(name) > len(SUFFIX) and stat.S_ISREG(os.lstat(path).st_mode):
                    out.append(os.path.normpath(os.path.join(rel_top, name)))
        return out


def _env_values(env):
    out = {}
    for key, value in (env or {}).items():
        out[str(key)] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return out


def inputs_digest(files, env, digest):
    """sha256 (hex) of what an overlay is made from: the Config files, the env as the templates
    see it, the image digest. The controller computes it too (filter rootfs_overlay_inputs)."""
    doc = {"files": sorted([str(f["path"]), str(f["content"])] for f in files), "env": _env_values(env),
           "digest": str(digest)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()


def held_inputs(root):
    """The inputs digest the overlay in root was made from, or None (none, unreadable)."""
    try:
        text = Rootfs(root).read(INPUTS)
    except ModuleFailure:
        return None
    return text.strip() if text else None


class Overlay:
    """Plan and apply: files {rel: content} (Configs), env (templates), digest (the image's)."""

    def __init__(self, root, files, env, digest):
        self.fs = Rootfs(root)
        self.files = {f["path"]: f["content"] for f in files}
        for rel in self.files:
            _parts(rel, "Config path")
            if rel.split("/", 1)[0] in SKIP:
                raise ModuleFailure("rootfs: Config path %s is seal.cluster's own state; refused" % rel)
        self.env = _env_values(env)
        self.inputs = inputs_digest(files, env, digest)
        try:
            self.digest = digest_hex(digest, "rootfs_config: digest")  # checked sha256:<64 hex>, a safe path part
        except DigestError as exc:
            raise ModuleFailure(str(exc)) from None

    def _previous(self):
        text = self.fs.read(APPLIED)
        try:
            value = json.loads(text) if text else []
        except ValueError:
            value = []
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def plan(self):
        """{rel: content or None (remove)} to write, the applied list, and what changed."""
        previous = set(self._previous())
        base_prefix = "%s/%s/" % (BASE_DIR, self.digest)
        writes, bases = {}, {}
        for rel, content in self.files.items():
            current = self.fs.read(rel)
            base_rel = base_prefix + rel
            if rel not in previous and current is not None and self.fs.read(base_rel) is None:
                bases[base_rel] = current
            if current != content:
                writes[rel] = content
        for rel in sorted(previous - set(self.files)):
            if rel.endswith(SUFFIX) or not rel or rel.split("/", 1)[0] in SKIP:
                continue
            try:
                _parts(rel, "applied path")
            except ModuleFailure:
                continue
            if self.fs.read(rel + SUFFIX) is not None:
                continue  # a rendered template, handled below
            base = self.fs.read(base_prefix + rel)
            if self.fs.read(rel) != base:
                writes[rel] = base
        rendered = {}
        for tmpl in self._templates(set(self.files)):
            source = self.files.get(tmpl)
            if source is None:
                source = self.fs.read(tmpl)
            try:
                text = go_template.render(source, self.env, tmpl)
            except go_template.TemplateError as exc:
                raise ModuleFailure("rootfs template %s" % exc) from None
            out = tmpl[:-len(SUFFIX)]
            rendered[out] = text
            if self.files.get(out, self.fs.read(out)) != text:
                writes[out] = text
        applied = sorted(set(self.files) | set(rendered))
        return writes, bases, applied, sorted(previous) != applied

    def _templates(self, config_paths):
        found = set(self.fs.templates())
        found |= {p for p in config_paths if p.endswith(SUFFIX)}
        return sorted(found)

    def run(self, check_mode):
        if not os.path.isdir(self.fs.root):
            if check_mode:  # the rootfs arrives with the same run
                return {"changed": True, "written": sorted(self.files), "applied": sorted(self.files)}
            raise ModuleFailure("rootfs %s is not on the host: is the cluster image distributed?" % self.fs.root)
        writes, bases, applied, list_changed = self.plan()
        changed = bool(writes) or list_changed
        if changed and not check_mode:
            for rel, content in bases.items():
                self.fs.write(rel, content)
            for rel, content in sorted(writes.items()):
                if content is None:
                    self.fs.remove(rel)
                else:
                    self.fs.write(rel, content)
            self.fs.write(APPLIED, json.dumps(applied) + "\n")
        if not check_mode and self.fs.read(INPUTS) != self.inputs + "\n":
            self.fs.write(INPUTS, self.inputs + "\n")  # seal.cluster's own bookkeeping, not a change
        return {"changed": changed, "written": sorted(writes), "applied": applied}
