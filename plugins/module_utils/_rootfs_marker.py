# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The digest marker of a rootfs on a host: rootfs writes it last, rootfs_info reads it."""

from __future__ import annotations

import os

MARKER = ".seal-digest"


def marker_path(dest):
    return os.path.join(dest, MARKER)


def read_marker(dest):
    """The image digest recorded in dest, None when dest holds no (complete) rootfs."""
    try:
        with open(marker_path(dest), encoding="utf-8") as f:
            return f.read().strip() or None
    except (FileNotFoundError, NotADirectoryError):
        return None
