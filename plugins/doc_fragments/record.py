# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The record's path, shared by cluster_record and cluster_record_info."""

    DOCUMENTATION = r"""
options:
  path:
    description:
      - Path of the record on the host, C(<data_root>/<cluster>/applied.json) (role
        C(seal.cluster.controller) publishes it as C(controller_cluster.record)). Absolute and normalised.
    type: path
    required: true
"""
