# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one check of a content digest (`sha256:<64 lowercase hex>`) and of an OCI descriptor.

A digest comes from untrusted places (manifests, indexes, archives, registry answers) and is
later used in paths and URLs, so it is checked here before anything else touches it. Only
sha256 is accepted: it is what OCI image layouts and registries use, and the store names its
blobs by it."""

from __future__ import annotations

import re

ALGORITHM = "sha256"
_DIGEST = re.compile(r"\Asha256:[0-9a-f]{64}\Z")
_ALGO = re.compile(r"\A[a-z0-9]+(?:[+._-][a-z0-9]+)*\Z")


class DigestError(ValueError):
    """A digest or descriptor that is not acceptable; the message names what and where."""


def check(digest, where="digest"):
    """Return digest if it is `sha256:<64 lowercase hex>`; raise DigestError naming where it came from."""
    if isinstance(digest, str) and _DIGEST.match(digest):
        return digest
    if not isinstance(digest, str):
        raise DigestError("%s: digest must be a string, not %s" % (where, type(digest).__name__))
    algo, sep, _rest = digest.partition(":")
    if sep and _ALGO.match(algo) and algo != ALGORITHM:
        raise DigestError("%s: digest algorithm %r is not supported (only %s)" % (where, algo, ALGORITHM))
    raise DigestError("%s: invalid digest %r (expected sha256:<64 lowercase hex>)" % (where, digest[:100]))


def hex_of(digest, where="digest"):
    """The hex part of a checked digest (what the store names a blob by)."""
    return check(digest, where)[len(ALGORITHM) + 1:]


def descriptor(desc, where):
    """Check an OCI descriptor taken from a manifest, index or archive: a mapping with a valid
    digest and, when present, a non-negative integer size and a string media type."""
    if not isinstance(desc, dict):
        raise DigestError("%s: descriptor must be an object, not %s" % (where, type(desc).__name__))
    check(desc.get("digest"), where)
    size = desc.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise DigestError("%s: descriptor %s has an invalid size %r" % (where, desc["digest"], size))
    media = desc.get("mediaType")
    if media is not None and not isinstance(media, str):
        raise DigestError("%s: descriptor %s has an invalid mediaType %r" % (where, desc["digest"], media))
    return desc
