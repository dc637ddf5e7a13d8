# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """DOCUMENTATION: the attributes' descriptions and what holds for every module of this
    collection (idempotent, POSIX hosts); each module states its own check_mode and diff_mode,
    with details where support is partial, or extends INFO_MODULE when it only reads."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation
        indicates no change.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""

    # The platform alone (DOCUMENTATION includes it), for modules that list it.
    PLATFORM = r"""
options: {}
attributes:
  platform:
    support: N/A
    platforms: posix
"""

    # Modules that only read: check mode runs them as they are, nothing to show in a diff.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module changes nothing, so it runs in check mode as it does otherwise.
  diff_mode:
    support: N/A
    details: This module changes nothing.
"""

    # Modules with an action plugin of seal.cluster.plugin_utils.controller_module: run in-process
    # where the task's host is the controller.
    CONTROLLER_IN_PROCESS = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the work happen on the controller.
    support: full
    details:
      - Where the task's host is the controller (connection local, no become, async or task environment), the module runs
        inside Ansible's own process, with the Python that runs Ansible.
"""
