#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs_info
short_description: Report which cluster image's rootfs a host holds
version_added: 0.1.0
description:
  - Reads, without changing anything, the digest marker (C(.seal-digest)) that M(seal.cluster.rootfs)
    writes into O(dest) once a rootfs is complete.
  - The M(seal.cluster.rootfs) action plugin asks it first, so that hosts that already hold the
    image's rootfs get no copy.
author:
  - seal.cluster developers (@seal-cluster)
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.info_module
options:
  dest:
    description: Directory on the host that holds the rootfs.
    type: path
    required: true
  role:
    description:
      - With a layered image, the host's role (see M(seal.cluster.rootfs)); the report then says
        which layers are intact (files as recorded, by sha256 when their stat changed) and, with
        O(storage), which blobs the seed keeps intact.
    type: str
    choices: [agent, server, registry]
  storage:
    description: The seed's registry storage where the layer blobs are kept.
    type: path
"""

EXAMPLES = r"""
- name: Which image's rootfs the host holds
  seal.cluster.rootfs_info:
    dest: /var/lib/seal/my-cluster/rootfs
  register: rootfs_held
"""

RETURN = r"""
digest:
  description: Digest of the cluster image whose rootfs is at O(dest), V(null) when there is none (or it is incomplete).
  returned: always
  type: str
intact:
  description: With O(role), digests of the layers whose files are as recorded.
  returned: with O(role)
  type: list
  elements: str
damaged:
  description: With O(role), digests of the layers with a missing or changed file (paths sealer Config documents wrote are not checked).
  returned: with O(role)
  type: list
  elements: str
blobs:
  description: With O(storage), digests of the layer blobs kept intact in the registry storage.
  returned: with O(role)
  type: list
  elements: str
overlay_inputs:
  description:
    - The sha256 of the inputs (Config files, env, image digest) the Clusterfile's overlay in O(dest)
      was made from by M(seal.cluster.rootfs_config); null when there is none.
  returned: always
  type: str
exists:
  description: Whether O(dest) exists (a directory without marker is a rootfs M(seal.cluster.rootfs) replaces).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._rootfs_report import rootfs_report


def main():
    module = AnsibleModule(
        argument_spec=dict(dest=dict(type="path", required=True),
                           role=dict(type="str", choices=["agent", "server", "registry"]),
                           storage=dict(type="path")),
        supports_check_mode=True,
    )
    module.exit_json(**rootfs_report(module.params["dest"], module.params["role"], module.params["storage"]))


if __name__ == "__main__":
    main()
