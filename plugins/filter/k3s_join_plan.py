# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_plan import join_plan


def k3s_join_plan(masters, hostvars, port=6443, external_datastore=False, registration_address=None):
    try:
        return join_plan(list(masters), hostvars, port, external_datastore, registration_address)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_node_specs(hosts, hostvars):
    """Per host: node name (as k3s_runtime reported it), labels and taints from the inventory."""
    specs = []
    for host in hosts:
        hv = hostvars[host]
        result = hv.get("runtime_result") or hv.get("k3s_query") or {}
        specs.append({"name": result.get("node_name") or host, "host": host,
                      "labels": dict(hv.get("seal_labels") or {}), "taints": list(hv.get("seal_taints") or [])})
    return specs


class FilterModule:
    def filters(self):
        return {"k3s_join_plan": k3s_join_plan, "k3s_node_specs": k3s_node_specs}
