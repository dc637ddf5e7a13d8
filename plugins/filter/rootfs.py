# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters about the cluster image's rootfs on the hosts."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.plugin_utils.rootfs_layers import LayersError, held_converged


def rootfs_held_converged(held, src, digest, storage=None):
    try:
        return held_converged(held, src, digest, storage)
    except LayersError as exc:
        raise AnsibleFilterError("rootfs_held_converged: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"rootfs_held_converged": rootfs_held_converged}
