# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""seal.cluster.cluster_kubeconfig runs inside Ansible's process where the task's host is the controller
(plugin_utils/controller_module.py); elsewhere as any module."""

from __future__ import annotations

from ansible_collections.seal.cluster.plugins.modules import cluster_kubeconfig
from ansible_collections.seal.cluster.plugins.plugin_utils.controller_module import ControllerModuleAction


class ActionModule(ControllerModuleAction):
    MODULE_ARGS = cluster_kubeconfig.MODULE_ARGS
    RUN = cluster_kubeconfig.run_module
