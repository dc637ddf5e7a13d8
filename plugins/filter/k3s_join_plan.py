# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_plan import join_plan, node_specs


def k3s_join_plan(masters, hostvars, reports, port=6443, external_datastore=False, registration_address=None):
    try:
        return join_plan(list(masters), hostvars, reports, port, external_datastore, registration_address)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_node_specs(hosts, hostvars):
    """Per host: the address its Node is found by (InternalIP), labels and taints from the inventory."""
    return node_specs(list(hosts), hostvars)


class FilterModule:
    def filters(self):
        return {"k3s_join_plan": k3s_join_plan, "k3s_node_specs": k3s_node_specs}
