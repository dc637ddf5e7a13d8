# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.plugin_utils import k3s_lifecycle as lc
from ansible_collections.seal.cluster.plugins.plugin_utils import k3s_plan


def _inventory(groups, hostvars):
    inventory = {}
    for group, role in (("node", "agent"), ("master", "server")):
        for host in groups.get(group) or []:
            inventory[host] = {"address": str(hostvars[host].get("ansible_host", host)), "role": role}
    return inventory


def _split(hosts):
    if not hosts:
        return []
    if isinstance(hosts, str):
        return [h.strip() for h in hosts.split(",") if h.strip()]
    return [str(h).strip() for h in hosts if str(h).strip()]


def _live(info):
    return info.get("nodes") if info.get("api_ready") else None


def k3s_delete_plan(info, groups, hostvars, delete_hosts=None, force=False, api_host=None, cluster="default"):
    try:
        return lc.delete_plan(_inventory(groups, hostvars), _live(info), info.get("record") or {}, _split(delete_hosts),
                              bool(force), api_host, cluster)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_apply_plan(info, groups, hostvars, reports, image_digest=None, force=False, api_host=None, cluster="default"):
    inventory = _inventory(groups, hostvars)
    try:
        k3s_plan.runtime_reports(reports)
        states = {h: k3s_plan.report_of(reports, h) for h in inventory if k3s_plan.report_of(reports, h)}
        return lc.apply_plan(inventory, _live(info), info.get("record") or {}, image_digest, states, cluster, bool(force),
                             api_host)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_upgrade_check(info, target):
    try:
        return lc.upgrade_check({n["name"]: n.get("version") for n in info.get("nodes") or []}, target)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_api_host(masters, hostvars, reports, exclude=None):
    """The first master whose k3s server is live (its k3s_runtime_info result in reports) and
    that is not named in exclude (names or addresses); empty string when there is none."""
    try:
        return k3s_plan.api_host(masters, hostvars, reports, set(_split(exclude)))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_plan_lines(plan):
    return lc.render_plan(plan)


class FilterModule:
    def filters(self):
        return {"k3s_delete_plan": k3s_delete_plan, "k3s_apply_plan": k3s_apply_plan,
                "k3s_upgrade_check": k3s_upgrade_check, "k3s_plan_lines": k3s_plan_lines,
                "k3s_api_host": k3s_api_host}
