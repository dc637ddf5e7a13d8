# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one way this collection reads and writes tar archives (stdlib only: it runs on hosts too).

Archives are untrusted (cluster image layers, OCI archives, rootfs archives). Extraction follows
the rules of Python's ``data`` extraction filter, implemented here so that they hold on every
Python, plus what image layers need:

- member names: no absolute names, no ``..`` component (``./`` prefixes are fine);
- symlinks: no absolute target, and the target must resolve inside the target directory, both
  when the link is made and once the whole archive (every layer) is in place;
- hard links: the link target is a member name, checked against the target ROOT (not the
  member's directory), and must be a regular file already extracted;
- no devices, FIFOs or other special files;
- modes: no setuid/setgid/sticky bits and no group/other write; files are always owner
  read/write, and executable for group/other only when executable for the owner; directories
  are owner rwx; owners are not restored;
- nothing is ever written through a symlink: a member whose parent path holds a symlink made by
  an earlier member or layer is refused, and an existing entry is removed, never opened;
- OCI whiteouts (layers only): ``.wh.<name>`` removes <name>, ``.wh..wh..opq`` empties its
  directory; both are resolved without following symlinks and stay inside the target;
  ``.wh.``, ``.wh..``, ``.wh...`` and other ``.wh..wh.*`` names are refused.

Every refusal is an ArchiveError naming the archive, the member and the rule."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive refused or unreadable; the message names the archive, the member and why."""


def _fail(label, name, reason):
    raise ArchiveError("%s: member %r %s; refused" % (label, name, reason))


def member_parts(name, label="archive", what="member"):
    """The components of a member name; refuses absolute names and '..'. () is the root."""
    if not isinstance(name, str) or "\x00" in name:
        _fail(label, name, "has an invalid name")
    if name.startswith("/"):
        raise ArchiveError("%s: %s %r is an absolute path; refused" % (label, what, name))
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError("%s: %s %r leaves the target ('..'); refused" % (label, what, name))
    return parts


def _kind(member, label):
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    what = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
            tarfile.FIFOTYPE: "a FIFO"}.get(member.type, "of unsupported type %r" % member.type)
    return _fail(label, member.name, "is %s" % what)


def _whiteout(parts, label, name):
    """None, ('opaque', dir parts) or ('remove', parts of the removed entry)."""
    base = parts[-1] if parts else ""
    if not base.startswith(WHITEOUT):
        return None
    if base == OPAQUE:
        return "opaque", parts[:-1]
    victim = base[len(WHITEOUT):]
    if victim in ("", ".", ".."):
        _fail(label, name, "is a whiteout of %r, which names no entry of its directory" % victim)
    if victim.startswith(WHITEOUT):
        _fail(label, name, "is an unsupported AUFS whiteout")
    return "remove", parts[:-1] + (victim,)


def file_mode(mode):
    """Mode of an extracted regular file (the data filter's rule)."""
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def dir_mode(mode):
    return (mode & 0o755) | 0o700


def _within(path, root):
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _lstat(path):
    """lstat, or None when nothing is there (also when a later layer made a parent a file)."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _remove(path):
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # removes symlinks inside, never follows them
    else:
        os.unlink(path)


class _Opened:
    """A tar opened for one sequential pass, from a path or a file object."""

    def __init__(self, archive, label):
        self.archive, self.label = archive, label
        self.tar = None

    def __enter__(self):
        try:
            if hasattr(self.archive, "read"):
                self.tar = tarfile.open(fileobj=self.archive, mode="r|*")
            else:
                self.tar = tarfile.open(self.archive, mode="r|*")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError("%s: not a readable tar archive: %s" % (self.label, exc)) from exc
        return self

    def __exit__(self, *exc):
        self.tar.close()

    def __iter__(self):
        it = iter(self.tar)
        while True:
            try:
                member = next(it)
            except StopIteration:
                return
            except (tarfile.TarError, EOFError, OSError) as exc:
                raise ArchiveError("%s: not a readable tar archive: %s" % (self.label, exc)) from exc
            yield member

    def read(self, member, limit=None):
        if limit is not None and member.size > limit:
            raise ArchiveError("%s: member %r is larger than %d bytes; refused" % (self.label, member.name, limit))
        try:
            return self.tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError("%s: member %r cannot be read: %s" % (self.label, member.name, exc)) from exc

    def copy(self, member, out):
        try:
            shutil.copyfileobj(self.tar.extractfile(member), out, _CHUNK)
        except (tarfile.TarError, EOFError) as exc:
            raise ArchiveError("%s: member %r cannot be read: %s" % (self.label, member.name, exc)) from exc


def is_tar(path):
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def confined_dir(root, parts, label, name, create):
    """The directory root/parts, made if create; None if absent. Never through a symlink: a
    component that is a symlink (or a file) is refused, naming label and name."""
    path = root
    for i, comp in enumerate(parts):
        path = os.path.join(path, comp)
        st = _lstat(path)
        if st is None:
            if not create:
                return None
            os.mkdir(path, 0o755)
        elif stat.S_ISLNK(st.st_mode):
            _fail(label, name, "would be written through the symlink %r" % "/".join(parts[:i + 1]))
        elif not stat.S_ISDIR(st.st_mode):
            if not create:
                return None
            _fail(label, name, "needs %r to be a directory, but it is a file" % "/".join(parts[:i + 1]))
    return path


class Extractor:
    """Extract one or more archives (the layers of an image, in order) into target.

    Call apply() per archive, then finish(), which checks that every symlink of the finished
    tree still resolves inside target (a later member can change what an earlier link means)."""

    def __init__(self, target):
        self.root = os.path.realpath(target)
        if not os.path.isdir(self.root):
            raise ArchiveError("extraction target %s is not a directory" % target)
        self.links = {}
        self.written = []  # names of the non-directory entries written, in order (apply() after apply())
        self.whiteouts = 0  # whiteouts applied

    def _path(self, parts):
        return os.path.join(self.root, *parts) if parts else self.root

    def _dir(self, parts, label, name, create):
        return confined_dir(self.root, parts, label, name, create)

    def apply(self, archive, label="archive", whiteouts=False, select=None):
        """Extract archive; with select, only the members whose checked name (``a/b``, no
        ``./``) select(name) accepts are written (the others are still read and checked)."""
        with _Opened(archive, label) as tar:
            for member in tar:
                self._member(tar, member, label, whiteouts, select)

    def _member(self, tar, member, label, whiteouts, select=None):
        name = member.name
        parts = member_parts(name, label)
        kind = _kind(member, label)
        if whiteouts:
            wh = _whiteout(parts, label, name)
            if wh:
                if select is None or not wh[1] or select("/".join(wh[1])):
                    self.whiteouts += 1
                    self._apply_whiteout(wh, label, name)
                return
        if select is not None and parts and not select("/".join(parts)):
            return
        if not parts:
            if kind != "dir":
                _fail(label, name, "names the target itself")
            return
        parent = self._dir(parts[:-1], label, name, create=True)
        path = os.path.join(parent, parts[-1])
        if kind != "dir":
            self.written.append("/".join(parts))
        existing = _lstat(path)
        if kind == "dir":
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(path)
                os.mkdir(path, 0o700)
            os.chmod(path, dir_mode(member.mode))
        elif kind == "file":
            _remove(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "wb") as out:
                tar.copy(member, out)
                os.fchmod(out.fileno(), file_mode(member.mode))
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        elif kind == "symlink":
            self._check_symlink(parts, member.linkname, label, name)
            _remove(path)
            os.symlink(member.linkname, path)
            self.links["/".join(parts)] = (label, name, member.linkname)
        else:
            source = self._hardlink_source(member.linkname, label, name)
            if source == path:
                _fail(label, name, "is a hard link to itself")
            _remove(path)
            os.link(source, path, follow_symlinks=False)

    def _check_symlink(self, parts, linkname, label, name):
        if not linkname or "\x00" in linkname:
            _fail(label, name, "is a symlink with an empty or invalid target")
        if linkname.startswith("/"):
            _fail(label, name, "is a symlink to the absolute path %r" % linkname)
        lexical = os.path.normpath(os.path.join(*(parts[:-1] + (linkname,))))
        resolved = os.path.realpath(os.path.join(self._path(parts[:-1]), linkname))
        if lexical == ".." or lexical.startswith("../") or not _within(resolved, self.root):
            _fail(label, name, "is a symlink to %r, outside the target" % linkname)

    def _hardlink_source(self, linkname, label, name):
        if linkname.startswith("/"):
            _fail(label, name, "is a hard link to the absolute path %r" % linkname)
        target = member_parts(linkname, label, "hard link target of %r:" % name)
        parent = self._dir(target[:-1], label, name, create=False) if target else None
        st = _lstat(os.path.join(parent, target[-1])) if parent else None
        if st is None or not stat.S_ISREG(st.st_mode):
            _fail(label, name, "is a hard link to %r, which is not a regular file extracted before it" % linkname)
        return os.path.join(parent, target[-1])

    def _apply_whiteout(self, whiteout, label, name):
        action, parts = whiteout
        if action == "opaque":
            directory = self._dir(parts, label, name, create=False)
            if directory is not None:
                for child in os.listdir(directory):
                    _remove(os.path.join(directory, child))
            return
        parent = self._dir(parts[:-1], label, name, create=False)
        if parent is not None:
            _remove(os.path.join(parent, parts[-1]))

    def finish(self):
        for rel, (label, name, linkname) in sorted(self.links.items()):
            path = self._path(tuple(rel.split("/")))
            st = _lstat(path)
            if st is None or not stat.S_ISLNK(st.st_mode):
                continue
            if not _within(os.path.realpath(path), self.root):
                _fail(label, name, "is a symlink to %r, which resolves outside the target once extracted" % linkname)


def extract(archive, target, label=None, whiteouts=False):
    """Extract one archive (a path or a file object) into the existing directory target."""
    extractor = Extractor(target)
    extractor.apply(archive, label or str(archive), whiteouts)
    extractor.finish()


def top_names(archive, label=None):
    """The first components of the member names of archive (checked as extraction checks them;
    whiteouts count under the name they sit in)."""
    label = label or str(archive)
    tops = set()
    with _Opened(archive, label) as tar:
        for member in tar:
            parts = member_parts(member.name, label)
            if parts:
                tops.add(parts[0])
    return tops


def read_member(archive, name, limit, label=None):
    """Bytes of the regular-file member called name (`./name` matches too; the last one wins),
    or None when the archive has no such member."""
    label = label or str(archive)
    want, found = member_parts(name, label), None
    with _Opened(archive, label) as tar:
        for member in tar:
            if member_parts(member.name, label) == want:
                if not member.isreg():
                    _fail(label, member.name, "is not a regular file")
                found = tar.read(member, limit)
    return found


class LayerEntry:
    """One entry of the merged view of image layers."""

    def __init__(self, kind, data=None):
        self.kind, self.data = kind, data


def layered_view(layers, select, limit):
    """The merged view of image layers without extracting them: {name: LayerEntry} of the
    entries whose name select(name) accepts (later layers win, whiteouts applied, the same
    refusals as extraction for names, whiteouts and links). Regular files up to limit bytes
    carry their data. layers: [(archive, label)]."""
    view, links = {}, set()

    def drop(prefix, keep_self=False):
        def gone(key):
            return (key == prefix and not keep_self) or key.startswith(prefix + "/") or not prefix
        for key in [k for k in view if gone(k)]:
            del view[key]
        for key in [k for k in links if gone(k)]:
            links.discard(key)

    for archive, label in layers:
        with _Opened(archive, label) as tar:
            for member in tar:
                parts = member_parts(member.name, label)
                kind = _kind(member, label)
                for i in range(1, len(parts)):
                    if "/".join(parts[:i]) in links:
                        _fail(label, member.name, "would be written through the symlink %r" % "/".join(parts[:i]))
                wh = _whiteout(parts, label, member.name)
                if wh:
                    drop("/".join(wh[1]), keep_self=wh[0] == "opaque")
                    continue
                if not parts:
                    continue
                name = "/".join(parts)
                if kind != "dir":
                    drop(name)
                elif name in links or (name in view and view[name].kind != "dir"):
                    view.pop(name, None)
                    links.discard(name)
                if kind == "symlink":
                    if member.linkname.startswith("/"):
                        _fail(label, member.name, "is a symlink to the absolute path %r" % member.linkname)
                    lexical = os.path.normpath(os.path.join(*(parts[:-1] + (member.linkname,))))
                    if lexical == ".." or lexical.startswith("../"):
                        _fail(label, member.name, "is a symlink to %r, outside the target" % member.linkname)
                    links.add(name)
                elif kind == "hardlink":
                    if member.linkname.startswith("/"):
                        _fail(label, member.name, "is a hard link to the absolute path %r" % member.linkname)
                    member_parts(member.linkname, label, "hard link target of %r:" % member.name)
                if select(name):
                    data = tar.read(member) if kind == "file" and member.size <= limit else None
                    view[name] = LayerEntry(kind, data)
    return view


def read_regular(root, rel, limit, label):
    """Bytes of the regular file rel under root, or None when it does not exist. Refused when
    any component is a symlink, when it is not a regular file, or when its real path is not
    inside root (files of an image's rootfs are read only this way)."""
    real_root = os.path.realpath(root)
    parts = member_parts(rel, label, "file")
    path = real_root
    for i, comp in enumerate(parts):
        path = os.path.join(path, comp)
        st = _lstat(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise ArchiveError("%s: %s is a symlink (%r); refused" % (label, rel, "/".join(parts[:i + 1])))
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            return None
    if not stat.S_ISREG(st.st_mode):
        raise ArchiveError("%s: %s is not a regular file; refused" % (label, rel))
    if not _within(os.path.realpath(path), real_root):
        raise ArchiveError("%s: %s resolves outside %s; refused" % (label, rel, root))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        fst = os.fstat(f.fileno())
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise ArchiveError("%s: %s changed while it was read; refused" % (label, rel))
        if fst.st_size > limit:
            raise ArchiveError("%s: %s is larger than %d bytes; refused" % (label, rel, limit))
        return f.read(limit + 1)[:limit]


class Writer:
    """A tar written entry by entry (PAX format). reproducible=True sets mtime 0 and owner 0:0."""

    def __init__(self, fileobj, reproducible=True):
        self.tar = tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT)
        self.reproducible = reproducible

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tar.close()

    def _info(self, name, kind, mode, mtime=0):
        info = tarfile.TarInfo(name)
        info.type, info.mode = kind, mode
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0 if self.reproducible else int(mtime)
        return info

    def add_dir(self, name, mode=0o755, mtime=0):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, mtime))

    def add_symlink(self, name, target, mtime=0):
        info = self._info(name, tarfile.SYMTYPE, 0o777, mtime)
        info.linkname = target
        self.tar.addfile(info)

    def add_bytes(self, name, data, mode=0o644, mtime=0):
        info = self._info(name, tarfile.REGTYPE, mode, mtime)
        info.size = len(data)
        self.tar.addfile(info, _BytesReader(data))

    def add_file(self, name, path, mode=None, mtime=None):
        """A regular file from disk (opened without following a symlink)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ArchiveError("%s is not a regular file" % path)
            info = self._info(name, tarfile.REGTYPE, st.st_mode & 0o777 if mode is None else mode,
                              st.st_mtime if mtime is None else mtime)
            info.size = st.st_size
            self.tar.addfile(info, f)

    def add_tree(self, root):
        """Everything under root, sorted, names relative to it: directories, regular files and
        symlinks (kept as symlinks); any other file type is an error."""
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                rel = name if rel_dir == "." else rel_dir + "/" + name
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    self.add_symlink(rel, os.readlink(path), st.st_mtime)
                elif stat.S_ISDIR(st.st_mode):
                    self.add_dir(rel, st.st_mode & 0o777, st.st_mtime)
                elif stat.S_ISREG(st.st_mode):
                    self.add_file(rel, path)
                else:
                    raise ArchiveError("%s is not a directory, regular file or symlink" % path)


class _BytesReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, size=-1):
        end = len(self.data) if size is None or size < 0 else self.pos + size
        chunk, self.pos = self.data[self.pos:end], min(end, len(self.data))
        return chunk
