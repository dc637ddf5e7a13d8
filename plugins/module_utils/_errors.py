# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception a module's manager raises; the module's main() turns it into fail_json."""

from __future__ import annotations


class ModuleFailure(Exception):
    """msg for the user, details for the failed result (what changed so far, a journal, ...)."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def exit_module(module, run):
    """A module's main(): run(module)'s result to exit_json, a ModuleFailure to fail_json."""
    try:
        result = run(module)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)
