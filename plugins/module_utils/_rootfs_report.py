# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host holds of the cluster image: the one report rootfs_info returns and node_prepare
folds into its call (docs/distribution.md)."""

from __future__ import annotations

import os

from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_layers as rl
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_marker import read_marker
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_overlay import held_inputs


def rootfs_report(dest, role=None, storage=None):
    overlay = held_inputs(dest) if os.path.isdir(dest) else None
    if role is None:
        return {"changed": False, "digest": read_marker(dest), "exists": os.path.lexists(dest), "overlay_inputs": overlay}
    include, exclude = rl.role_paths(role)
    return dict(rl.check(dest, None, include, exclude, storage), changed=False, exists=os.path.lexists(dest),
                overlay_inputs=overlay)
