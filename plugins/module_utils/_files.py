# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers shared by the modules: hash, compare, then write or copy atomically, with a diff."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

CHUNK = 1 << 20


def sha256_stream(f):
    """(hex sha256, size) of what an open binary file has left to read."""
    h = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: f.read(CHUNK), b""):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def sha256_file(path):
    """Hex sha256 of a file's content, or None when it does not exist."""
    try:
        with open(path, "rb") as f:
            return sha256_stream(f)[0]
    except FileNotFoundError:
        return None


def read_text(path):
    """Return the file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def list_dir(path):
    """The names in a directory; [] when it is missing or unreadable."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def file_mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return None


def write_atomic(path, content, mode=0o644):
    """Write content to path through a temporary file and rename; the file never appears
    half-written and never wider than mode, even for an instant."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".seal-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def copy_atomic(src, dest, mode):
    """Copy src to dest through a temporary file beside dest and rename, with mode set before
    the rename; missing parent directories are made."""
    directory = os.path.dirname(dest) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".seal-", dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_path(path):
    """Remove a file, a symlink or a directory tree; False when there was nothing."""
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return True


def write_in_place(path, content):
    """Rewrite a file's content without replacing the inode (for bind-mounted files such as
    /etc/hosts in containers, where a rename over the mount point fails)."""
    with open(path, "r+", encoding="utf-8") as f:
        f.seek(0)
        f.write(content)
        f.truncate()


class FileState:
    """Desired text content and mode for one file; tells whether it differs and applies it."""

    def __init__(self, path, content, mode=0o644, secret=False):
        self.path = path
        self.content = content
        self.mode = mode
        self.secret = secret
        self.before = read_text(path)
        self.before_mode = file_mode(path)

    @property
    def changed(self):
        return self.before != self.content or self.before_mode != self.mode

    def apply(self):
        if not self.changed:
            return False
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if self.before == self.content:
            os.chmod(self.path, self.mode)
        else:
            write_atomic(self.path, self.content, self.mode)
        return True

    def diff(self):
        """An Ansible diff dict; secrets are shown only as a marker."""
        if self.secret:
            before = "" if self.before is None else "<secret content, %d bytes>\n" % len(self.before)
            after = "<secret content, %d bytes>\n" % len(self.content)
            if self.before == self.content:
                before = after
        else:
            before, after = self.before or "", self.content
        return {
            "before_header": "%s (mode %s)" % (self.path, oct(self.before_mode) if self.before_mode is not None else "absent"),
            "after_header": "%s (mode %s)" % (self.path, oct(self.mode)),
            "before": before,
            "after": after,
        }
