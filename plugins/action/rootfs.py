# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller half of seal.cluster.rootfs: ask the host for its digest marker, and ship the
archive only to hosts whose marker differs (one task per host, no copy when converged)."""

from __future__ import annotations

import fcntl
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_layers as rl
from ansible_collections.seal.cluster.plugins.module_utils._digest import hex_of
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError, rootfs_archive, sha256_file
from ansible_collections.seal.cluster.plugins.module_utils._safe_archive import ArchiveError, Writer
from ansible_collections.seal.cluster.plugins.plugin_utils.rootfs_layers import LayersError, image_layers


def _recorded(archive):
    try:
        with open(archive + ".sha256", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def _intact(archive):
    """Whether the tar made earlier is the one recorded next to it (sha256 and size)."""
    recorded = _recorded(archive)
    if not recorded or not os.path.isfile(archive) or os.path.islink(archive):
        return False
    try:
        digest, size = sha256_file(archive)
    except (OSError, StoreError):
        return False
    return recorded == "%s %d" % (digest, size)


def archive_of(src, digest):
    """A tar of the rootfs directory src, made once per digest next to it (atomically, under
    a lock, since every host's task asks for it at once). An existing tar is reused only when
    it still hashes to what was recorded when it was made; otherwise it is made again."""
    if os.path.isfile(src):
        return src
    try:
        archive = rootfs_archive(src, digest)
    except StoreError as exc:
        raise AnsibleActionFail("rootfs: %s" % exc) from exc
    with open(archive + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _intact(archive):
            tmp = archive + ".tmp"
            try:
                with open(tmp, "wb") as f, Writer(f, reproducible=False) as tar:
                    tar.add_tree(src)
            except ArchiveError as exc:
                os.unlink(tmp)
                raise AnsibleActionFail("rootfs: cannot archive %s: %s" % (src, exc)) from exc
            digest_of_tar, size = sha256_file(tmp)
            if os.path.lexists(archive + ".sha256"):
                os.unlink(archive + ".sha256")
            os.replace(tmp, archive)
            with open(archive + ".sha256.tmp", "w", encoding="utf-8") as f:
                f.write("%s %d\n" % (digest_of_tar, size))
            os.replace(archive + ".sha256.tmp", archive + ".sha256")
    return archive


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        given = args.pop("held", None)
        module = "seal.cluster.rootfs"
        if args.get("state", "present") == "absent":
            result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
            return result
        src = args.get("src")
        if not args.get("digest"):
            raise AnsibleActionFail("rootfs: digest is required")
        # in check mode the rootfs may not be extracted yet (check mode does not write the cache)
        if not src or (not os.path.exists(src) and not self._task.check_mode):
            raise AnsibleActionFail("rootfs: src %r is neither a rootfs directory nor an archive on the controller" % src)
        try:
            layers = image_layers(src, args["digest"]) if os.path.isdir(src) else None
        except LayersError as exc:
            raise AnsibleActionFail("rootfs: %s" % exc) from exc
        if layers is not None:
            return self.run_layers(result, args, src, layers, task_vars, given)
        held = self._execute_module(module_name="seal.cluster.rootfs_info", module_args={"dest": args.get("dest")},
                                    task_vars=task_vars)
        if held.get("failed"):
            result.update(held)
            return result
        query = {"changed": False, "digest": held.get("digest"), "previous_digest": held.get("digest"), "transferred": False}
        if query["previous_digest"] == args.get("digest"):
            result.update(query, overlay_inputs=held.get("overlay_inputs"))
            return result
        if self._task.check_mode:
            result.update(query, changed=True, digest=args.get("digest"))
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

    def run_layers(self, result, args, src, layers, task_vars, given=None):
        """The layered image: ask the host what it holds (one module call on a converged host),
        ship over the connection only the blobs the host lacks (source controller), or let the
        host fetch them from the cluster's registry (source registry)."""
        module = "seal.cluster.rootfs"
        role, storage = args.get("role", "registry"), args.get("storage")
        args = dict(args, layers=layers)
        args.pop("src", None)
        held = given or self._execute_module(module_name="seal.cluster.rootfs_info",
                                             module_args={"dest": args["dest"], "role": role, "storage": storage},
                                             task_vars=task_vars)
        if held.get("failed"):
            result.update(held)
            return result
        diff = {"before": "digest %s\n" % held.get("digest"), "after": "digest %s\n" % args["digest"]}
        if rl.converged(held, args["digest"], layers, storage):
            result.update(changed=False, digest=held.get("digest"), previous_digest=held.get("digest"),
                          transferred=False, fetched=[], damaged=[], overlay_inputs=held.get("overlay_inputs"))
            return result
        include, exclude = rl.role_paths(role)
        needed = self.blobs_to_ship(held, args, layers, include, exclude, storage)
        if self._task.check_mode:
            result.update(changed=True, digest=args["digest"], previous_digest=held.get("digest"), transferred=bool(needed),
                          fetched=needed, damaged=held.get("damaged", []))
            if self._task.diff:
                result["diff"] = diff
            return result
        tmpdir = None
        shipped = {}
        if needed:
            tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
            store = Store(os.path.dirname(os.path.dirname(src.rstrip("/"))))
            for digest in needed:
                remote = self._connection._shell.join_path(tmpdir, "layer-" + hex_of(digest))
                self._transfer_file(store.blob_path(digest), remote)
                shipped[digest] = remote
            self._fixup_perms2([tmpdir] + list(shipped.values()))
        try:
            result.update(self._execute_module(module_name=module, module_args=dict(args, shipped=shipped), task_vars=task_vars))
        finally:
            if tmpdir:
                self._remove_tmp_path(tmpdir)
        result["previous_digest"] = held.get("digest")
        if self._task.diff:
            result["diff"] = diff
        return result

    @staticmethod
    def blobs_to_ship(held, args, layers, include, exclude, storage):
        """The blobs the controller sends this host: on the seed every blob it does not keep
        intact; with source controller the layers the host must fetch; none from the registry."""
        if storage:
            return [d["digest"] for d in layers if d["digest"] not in held.get("blobs", [])]
        if args.get("source", "controller") != "controller":
            return []
        plan = rl.LayerBuilder(args["dest"], args["digest"], layers, include, exclude).plan(held)
        return [desc["digest"] for desc, action in plan if action == "fetch"]
