"""The controller half of seal.cluster.rootfs run without a connection: the task and the
connection's shell are plain objects, "transferring" copies into a local directory that stands
for the host's tmp, and the host half is the real module run as Ansible runs it."""
import os
import shutil
from types import SimpleNamespace

import pytest

from ansible_collections.seal.cluster.plugins.action.rootfs import ActionModule
from ansible_collections.seal.cluster.plugins.module_utils._image_store import sha256_file


@pytest.fixture
def act(tmp_path, run_module):
    """act(args, check=False, diff=True) -> (result, modules run [(state, args)], transfers [(local, remote)], tmp removed)."""
    remote_tmp = tmp_path / "host-tmp"

    def call(args, check=False, diff=True):
        remote_tmp.mkdir(exist_ok=True)
        log = SimpleNamespace(modules=[], transfers=[], removed=[])
        task = SimpleNamespace(args=dict(args), async_val=0, check_mode=check, diff=diff, action="seal.cluster.rootfs")
        connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir=str(remote_tmp), join_path=os.path.join))
        action = ActionModule(task, connection, None, None, None)

        def execute_module(module_name, module_args, task_vars):
            assert module_name in ("seal.cluster.rootfs", "seal.cluster.rootfs_info") and task_vars == {}
            log.modules.append(dict(module_args, _name=module_name.rsplit(".", 1)[1]))
            return run_module(module_name.rsplit(".", 1)[1], check=check, diff=diff,
                              **{k: v for k, v in module_args.items() if v is not None})

        def transfer(local, remote):
            log.transfers.append((local, remote, sha256_file(local)))
            shutil.copyfile(local, remote)
            return remote

        def remove_tmp(tmpdir):
            log.removed.append(tmpdir)
            shutil.rmtree(tmpdir)

        action._execute_module = execute_module
        action._transfer_file = transfer
        action._fixup_perms2 = lambda paths: None
        action._remove_tmp_path = remove_tmp
        return action.run(task_vars={}), log
    return call
