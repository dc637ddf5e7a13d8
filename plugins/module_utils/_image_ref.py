# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, parsed as container tools do (docker/distribution reference grammar):
`k3s:v1.25.3` is docker.io/library/k3s:v1.25.3, `reg.example:5000/ns/k3s:v1` keeps its
registry, `name@sha256:<hex>` pins a digest."""

from __future__ import annotations

import re

from ansible_collections.seal.cluster.plugins.module_utils import _digest

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


class ReferenceError_(ValueError):
    """A reference that does not parse; the message names it."""


class Reference:
    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or not text or text != text.strip():
            raise ReferenceError_("invalid image reference %r" % (text,))
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            try:
                _digest.check(digest, "image reference %r" % text)
            except _digest.DigestError as exc:
                raise ReferenceError_("invalid %s" % exc) from exc
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG.match(tag):
                raise ReferenceError_("invalid image reference %r: bad tag %r" % (text, tag))
        parts = rest.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            registry, path = parts[0], "/".join(parts[1:])
        else:
            registry, path = DEFAULT_REGISTRY, rest
        if registry == DEFAULT_REGISTRY and "/" not in path:
            path = "library/" + path
        if not _PATH.match(path):
            raise ReferenceError_("invalid image reference %r: repository %r must be lowercase [a-z0-9._-/]" % (text, path))
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry, path, tag, digest)

    @property
    def name(self):
        """Fully qualified name without tag or digest."""
        return "%s/%s" % (self.registry, self.repository)

    def __str__(self):
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def familiar(self):
        """Short form as docker prints it: k3s:v1.25.3 rather than docker.io/library/k3s:v1.25.3."""
        name = self.name
        if self.registry == DEFAULT_REGISTRY:
            name = self.repository[len("library/"):] if self.repository.startswith("library/") else self.repository
        text = name + (":" + self.tag if self.tag else "")
        return text + ("@" + self.digest if self.digest else "")


IMAGE_LIST = "manifests/imageList"


def image_list_entries(text):
    """(line number, reference text) of each entry of a cluster image's manifests/imageList: one
    reference a line, '#' starts a comment, blank lines are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if value:
            entries.append((number, value))
    return entries
