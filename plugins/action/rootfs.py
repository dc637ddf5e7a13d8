# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of seal.cluster.rootfs: ask the host for its digest marker, and ship the
archive only to hosts whose marker differs (one task per host, no copy when converged)."""

from __future__ import annotations

import fcntl
import os
import tarfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


def archive_of(src, digest):
    """A tar of the rootfs directory src, made once per digest next to it (atomically, under
    a lock, since every host's task asks for it at once)."""
    if os.path.isfile(src):
        return src
    archive = "%s.%s.tar" % (src.rstrip("/"), digest.replace(":", "-"))
    with open(archive + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(archive):
            tmp = archive + ".tmp"
            with tarfile.open(tmp, "w") as tar:
                for name in sorted(os.listdir(src)):
                    tar.add(os.path.join(src, name), arcname=name)
            os.replace(tmp, archive)
    return archive


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        module = "seal.cluster.rootfs"
        if args.get("state", "present") == "absent":
            result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
            return result
        src = args.get("src")
        if not src or not os.path.exists(src):
            raise AnsibleActionFail("rootfs: src %r is neither a rootfs directory nor an archive on the controller" % src)
        if not args.get("digest"):
            raise AnsibleActionFail("rootfs: digest is required")
        query = self._execute_module(module_name=module, module_args=dict(args, src=None, state="query"), task_vars=task_vars)
        query["changed"] = False
        if query.get("failed") or query.get("previous_digest") == args.get("digest"):
            result.update(query)
            return result
        if self._task.check_mode:
            result.update(query, changed=True, digest=args.get("digest"), transferred=False)
            if self._task.diff:
                result["diff"] = {"before": "digest %s\n" % query.get("previous_digest"), "after": "digest %s\n" % args.get("digest")}
            return result
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        remote = self._connection._shell.join_path(tmpdir, "rootfs.tar")
        self._transfer_file(archive_of(src, args["digest"]), remote)
        self._fixup_perms2((tmpdir, remote))
        result.update(self._execute_module(module_name=module, module_args=dict(args, src=remote), task_vars=task_vars))
        if self._task.diff:
            result["diff"] = {"before": "digest %s\n" % query.get("previous_digest"), "after": "digest %s\n" % args.get("digest")}
        self._remove_tmp_path(tmpdir)
        return result
