#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs
short_description: Put a cluster image's rootfs on a host, once per image digest
version_added: 0.1.0
description:
  - Ships a tar archive of a cluster image's rootfs from the controller to the host and
    unpacks it at O(dest), unless O(dest) already carries the marker of the same image digest.
    The archive is sent only when needed.
  - The rootfs is unpacked next to O(dest) and renamed into place, so a host never holds a
    half-unpacked rootfs under O(dest); the previous rootfs is removed only after the new one
    is complete. The marker file C(.seal-digest) inside O(dest) records the digest.
  - The archive is unpacked by the collection's safe archive helper, with the rules of Python's
    C(data) extraction filter on every Python version. Absolute or C(..) names, symlinks and hard
    links leading out of the rootfs, devices and FIFOs are refused; setuid/setgid/sticky bits and
    group/other write permissions are dropped; nothing is written through a symlink.
  - The action plugin part runs on the controller (it reads O(src)); the module part runs on the host.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  src:
    description:
      - The rootfs on the controller, a directory (a tar of it is made once per digest, next to
        it) or a tar archive. The action plugin ships it and hands the module the host's copy.
      - Required with O(state=present).
    type: path
  digest:
    description: Digest of the cluster image (C(sha256:...)). Required unless O(state=absent).
    type: str
  dest:
    description: Directory on the host that holds the rootfs.
    type: path
    required: true
  state:
    description:
      - V(present) puts the rootfs in place; V(absent) removes O(dest).
      - The digest recorded at O(dest) is read by M(seal.cluster.rootfs_info) (the action plugin
        asks it first, so that converged hosts get no copy).
    type: str
    choices: [present, absent]
    default: present
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the work happen on the controller.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The rootfs shows as the image digest its marker records, before and after.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Distribute the cluster image rootfs
  seal.cluster.rootfs:
    src: /root/.cache/seal/rootfs/sha256-abc.tar
    digest: sha256:abc...
    dest: /var/lib/seal/my-cluster/rootfs
"""

RETURN = r"""
digest:
  description: Digest recorded at O(dest) after the run (V(null) when absent).
  returned: always
  type: str
previous_digest:
  description: Digest that was recorded before the run.
  returned: always
  type: str
transferred:
  description: Whether the archive was sent to the host.
  returned: always
  type: bool
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._digest import DigestError
from ansible_collections.seal.cluster.plugins.module_utils._digest import check as check_digest
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import remove_path
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_marker import marker_path, read_marker
from ansible_collections.seal.cluster.plugins.module_utils._safe_archive import ArchiveError, extract


class RootfsInstaller:
    """Host side. The action plugin asks rootfs_info first, then calls it with the shipped archive."""

    def __init__(self, module):
        self.module = module
        self.p = module.params

    def run(self):
        dest = self.p["dest"]
        before = read_marker(dest)
        result = {"changed": False, "previous_digest": before, "digest": before, "transferred": False}
        if self.p["state"] == "absent":
            if os.path.lexists(dest):
                result.update(changed=True, digest=None)
                if not self.module.check_mode:
                    remove_path(dest)
            return result
        try:
            check_digest(self.p["digest"], "rootfs: digest")
        except DigestError as exc:
            raise ModuleFailure(str(exc)) from exc
        if before == self.p["digest"]:
            return result
        archive = self.p["src"]
        if not archive or not os.path.isfile(archive):
            raise ModuleFailure("rootfs: archive %s is not on the host (use the action plugin, which ships it)" % archive)
        if self.module.check_mode:
            result.update(changed=True, digest=self.p["digest"])
            return result
        staging = dest + ".new"
        remove_path(staging)
        os.makedirs(staging, mode=0o755)
        try:
            self.unpack(archive, staging)
            with open(marker_path(staging), "w", encoding="utf-8") as f:
                f.write(self.p["digest"] + "\n")
            old = dest + ".old"
            remove_path(old)
            if os.path.lexists(dest):
                os.rename(dest, old)
            os.rename(staging, dest)
            remove_path(old)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            shutil.rmtree(staging, ignore_errors=True)
            raise ModuleFailure("rootfs: unpacking %s into %s failed: %s" % (archive, dest, exc)) from exc
        result.update(changed=True, digest=self.p["digest"], transferred=True)
        return result

    def unpack(self, archive, staging):
        """Through the collection's one safe extraction helper (links, hard links and names
        confined to staging, no devices, no setuid bits)."""
        try:
            extract(archive, staging, label="rootfs archive %s" % archive)
        except ArchiveError as exc:
            raise ValueError(str(exc)) from exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            digest=dict(type="str"),
            dest=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        required_if=[("state", "present", ("digest", "src"))],
        supports_check_mode=True,
    )
    try:
        result = RootfsInstaller(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
