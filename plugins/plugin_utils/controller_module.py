# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a controller-side module inside Ansible's own process when the task's host is the controller
(connection local, no become, no async, no task environment): the module's own argument spec and
code, without starting a Python interpreter for it (about 0.6 s a call on a small controller).
Anywhere else the module runs as Ansible runs any module."""

from __future__ import annotations

import subprocess

from ansible.module_utils.common.arg_spec import ModuleArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure


class ControllerModule:
    """The part of AnsibleModule a module's run() reads: its validated params, check and diff
    modes, run_command (argv lists only) and warn."""

    def __init__(self, params, check_mode, diff):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def run_command(self, args, check_rc=False, data=None):
        proc = subprocess.run(args, input=data, capture_output=True, text=True, check=False)
        if check_rc and proc.returncode != 0:
            raise ModuleFailure("%s exited %d: %s" % (args[0], proc.returncode, proc.stderr.strip()), rc=proc.returncode)
        return proc.returncode, proc.stdout, proc.stderr


class ControllerModuleAction(ActionBase):
    """Subclasses name the module's AnsibleModule keyword arguments (MODULE_ARGS) and its run(module)
    (RUN), which returns the result or raises ModuleFailure, as the module's main() uses them."""

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True
    MODULE_ARGS: dict = {}
    RUN = None

    def on_controller(self):
        return (self._connection.transport == "local" and not self._play_context.become
                and not self._task.async_val and not any(self._task.environment or []))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not self.on_controller():  # as ansible.builtin.normal runs a module
            wrap_async = self._task.async_val and not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        spec = {k: v for k, v in self.MODULE_ARGS.items() if k != "supports_check_mode"}
        validated = ModuleArgumentSpecValidator(**spec).validate(self._task.args)
        if validated.error_messages:  # errors is an exception object: true even when empty
            result.update(failed=True, msg="; ".join(
                "Unsupported parameters for (%s) module: %s" % (self._task.action, e) if isinstance(e, UnsupportedError) else str(e)
                for e in validated.errors.errors))
            return result
        module = ControllerModule(validated.validated_parameters, bool(self._task.check_mode), bool(self._task.diff))
        try:
            outcome = type(self).RUN(module)
        except ModuleFailure as exc:
            outcome = dict(exc.details, failed=True, msg=exc.msg)
        outcome = remove_values(outcome, validated._no_log_values)  # pylint: disable=protected-access
        outcome.setdefault("changed", False)
        if module.warnings:
            outcome["warnings"] = module.warnings
        result.update(outcome)
        return result
