# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lifecycle decisions: which hosts to delete and whether that is safe, whether an upgrade
is allowed, and what apply has to do. Pure functions over plain data, so they are unit-tested
without a cluster; the playbooks gather the data and act on the answers.

Hosts are matched to Nodes by address (the Node's InternalIP / k3s.io/internal-ip annotation
against the host's ansible_host), because an unreachable or already removed host cannot tell us
its node name.

Trust: the inventory is trusted; the API's contents and the record (applied.json, kept on the
masters) are not. A host to delete that the inventory does not list is removed at the API level
only (drain, delete the Node; k3s removes its etcd member): its address comes from the API or the record and
is never connected to. A host the inventory lists is reached at the inventory's address, whatever
address its Node reports."""

from __future__ import annotations

import re

from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import API_ONLY_NOTE

VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*?(?:k3s(\d+))?)?$")


class PlanError(ValueError):
    """Input that must stop the run before any host changes; the message names what and where."""


# -- versions ------------------------------------------------------------------------------
def parse_version(text):
    """v1.26.0+k3s1 -> (1, 26, 0, 1). A missing k3s revision counts as 0."""
    m = VERSION_RE.match(str(text or "").strip())
    if not m:
        raise PlanError("%r is not a k3s version (vMAJOR.MINOR.PATCH+k3sN)" % (text,))
    return tuple(int(g) if g is not None else 0 for g in m.groups())


def upgrade_check(current, target):
    """current: {node or host: running version}; target: the image's runtime version.

    Returns {"target", "upgrade": [names below target], "current": [names at target]}.
    Raises PlanError for a downgrade or a skipped minor version (k3s docs, upgrades: no
    downgrades; Kubernetes skew policy: one minor at a time), naming every offending node."""
    want = parse_version(target)
    down, skip, upgrade, at = [], [], [], []
    for name in sorted(current):
        version = current[name]
        if not version:
            continue
        have = parse_version(version)
        if have == want:
            at.append(name)
        elif have > want:
            down.append("%s runs %s" % (name, version))
        elif have[0] != want[0] or want[1] - have[1] > 1:
            skip.append("%s runs %s" % (name, version))
        else:
            upgrade.append(name)
    if down:
        raise PlanError("refusing to downgrade to %s: %s (k3s does not support downgrades; restore from an etcd "
                        "snapshot instead)" % (target, ", ".join(down)))
    if skip:
        raise PlanError("refusing to upgrade to %s: %s; upgrade one minor version at a time (Kubernetes version skew "
                        "policy), e.g. to v%d.%d first" % (target, ", ".join(skip), want[0], want[1] - 1))
    return {"target": target, "upgrade": upgrade, "current": at}


# -- cluster view ---------------------------------------------------------------------------
def _index_nodes(live_nodes):
    by_address, by_name = {}, {}
    for node in live_nodes or []:
        by_name[node["name"]] = node
        for address in node.get("addresses") or []:
            by_address.setdefault(address, node)
    return by_address, by_name


def _is_server(node):
    return bool(node and node.get("server"))


def _host_address(host, inventory, record):
    if host in inventory:
        return inventory[host]["address"]
    return (record.get("addresses") or {}).get(host) or host


def delete_plan(inventory, live_nodes, record=None, delete_hosts=None, force=False, api_host=None, cluster="default",
                joining_servers=0):
    """Decide which hosts to delete and refuse unsafe deletions.

    inventory: {host: {"address": ip, "role": "server"|"agent"}} (what the inventory says now).
    live_nodes: [{"name", "addresses": [...], "server": bool, "etcd": bool, "ready": bool}] from the API
      (None when no server answered). The Nodes k3s labels etcd are the embedded etcd's members:
      k3s adds that label with the member and removes the member before it lets such a Node go.
    record: applied.json of the cluster ({"masters": [...], "nodes": [...], "addresses": {...}}) or {}.
    delete_hosts: names or addresses to delete; None or empty means "what is gone from the inventory".
    api_host: the inventory host whose API is used (must not be deleted).
    joining_servers: servers that join before the deletions (apply), counted as members after.

    Returns {"delete": [{"host", "address", "node", "role", "in_inventory", "ready"}], "servers_before",
    "servers_after", "etcd_after", "warnings": [...]}. A target with in_inventory false is removed at
    the API level only: its address (from the API or the record) is never connected to."""
    record = record or {}
    by_address, by_name = _index_nodes(live_nodes)
    recorded_masters = list(record.get("masters") or [])
    recorded_hosts = recorded_masters + list(record.get("nodes") or [])
    inventory_addresses = {v["address"]: h for h, v in inventory.items()}
    warnings = []

    def target_for(host, address):
        node = by_address.get(address) or by_name.get(host)
        role = "server" if (_is_server(node) or inventory.get(host, {}).get("role") == "server"
                            or (node is None and host in recorded_masters)) else "agent"
        return {"host": host, "address": address, "node": node["name"] if node else None, "role": role,
                "in_inventory": host in inventory, "ready": bool(node and node.get("ready"))}

    targets = []
    if delete_hosts:
        for wanted in delete_hosts:
            wanted = str(wanted).strip()
            if not wanted:
                continue
            if wanted in inventory:
                host, address = wanted, inventory[wanted]["address"]
            elif wanted in inventory_addresses:
                host, address = inventory_addresses[wanted], wanted
            elif wanted in recorded_hosts:
                host, address = wanted, _host_address(wanted, inventory, record)
            elif wanted in by_address or wanted in by_name:
                node = by_address.get(wanted) or by_name[wanted]
                if node["name"] in inventory:
                    # the Node of an inventory host: the inventory's address, never the API's
                    host, address = node["name"], inventory[node["name"]]["address"]
                else:
                    address = wanted if wanted in by_address else (node.get("addresses") or [wanted])[0]
                    host = address
            else:
                warnings.append("delete_hosts: %s is not in the inventory, the record (applied.json) or the API of "
                                "cluster %s: nothing to delete" % (wanted, cluster))
                continue
            if host not in [t["host"] for t in targets]:
                targets.append(target_for(host, address))
    else:
        for host in recorded_hosts:
            address = _host_address(host, inventory, record)
            if host not in inventory and address not in inventory_addresses:
                targets.append(target_for(host, address))
        for node in live_nodes or []:
            addresses = node.get("addresses") or []
            if any(a in inventory_addresses for a in addresses) or node["name"] in inventory:
                continue
            if any(node["name"] == t["node"] or t["address"] in addresses for t in targets):
                continue
            address = addresses[0] if addresses else node["name"]
            targets.append(target_for(address, address))

    if api_host and api_host in [t["host"] for t in targets]:
        raise PlanError("%s is the server this run talks to the API through and is also to be deleted; put "
                        "another live master first in the inventory" % api_host)

    if live_nodes is not None:
        servers_before = sorted(n["name"] for n in live_nodes if _is_server(n))
        gone = set(t["node"] for t in targets if t["node"]) | set(t["host"] for t in targets if t["role"] == "server")
        servers_after = [s for s in servers_before if s not in gone]
    else:
        known = sorted(set(h for h, v in inventory.items() if v["role"] == "server") | set(recorded_masters))
        servers_before = known
        servers_after = [h for h in known if h not in [t["host"] for t in targets]]
    servers_after = servers_after + ["(joining %d)" % (i + 1) for i in range(joining_servers)]
    deleting_servers = [t["host"] for t in targets if t["role"] == "server"]
    etcd_nodes = [n for n in live_nodes or [] if n.get("etcd")]
    embedded_etcd = bool(etcd_nodes)
    etcd_after = None
    if embedded_etcd:
        gone_nodes = set(t["node"] for t in targets if t["node"])
        etcd_after = joining_servers + len([n for n in etcd_nodes if n["name"] not in gone_nodes])
    problems = []
    if deleting_servers and not servers_after:
        problems.append("deleting %s would remove the last master of cluster %s (the cluster and its data would be "
                        "gone; use reset.yml to tear the cluster down)" % (", ".join(deleting_servers), cluster))
    elif deleting_servers and embedded_etcd and etcd_after is not None and etcd_after % 2 == 0:
        problems.append("deleting %s would leave %d etcd members: an even number adds no fault tolerance and 2 members "
                        "lose quorum when either fails; delete one more master, add one first, or pass -e force=true"
                        % (", ".join(deleting_servers), etcd_after))
    if problems:
        if not force:
            raise PlanError("; ".join(problems) + " (refused before any host changed; -e force=true overrides)")
        warnings.extend("forced: " + p for p in problems)
    return {"delete": targets, "servers_before": servers_before, "servers_after": servers_after,
            "etcd_after": etcd_after, "warnings": warnings}


def apply_plan(inventory, live_nodes, record=None, image_digest=None, host_states=None, cluster="default", force=False,
               api_host=None):
    """What apply does: joins (inventory hosts the API does not know, or know only as a stale
    node of a rebuilt host), deletions (known hosts gone from the inventory), and whether the
    image changes. host_states: {host: k3s_runtime_info result} of the hosts read.

    Returns {"join": [hosts], "stale": [{"host", "node"}], "delete": [...], "upgrade": bool,
    "image": {"recorded", "desired"}, "warnings": [...], "changes": bool}."""
    record = record or {}
    host_states = host_states or {}
    by_address, by_name = _index_nodes(live_nodes)
    joins, stale, warnings = [], [], []
    for host, spec in inventory.items():
        node = by_address.get(spec["address"]) or by_name.get(host)
        state = host_states.get(host) or {}
        if node is None:
            joins.append(host)
            if live_nodes is not None and state.get("live"):
                # e.g. removed at the API level only while it was not listed: a running kubelet
                # does not register its Node again, and an unchanged k3s is not restarted
                warnings.append("%s runs k3s but the API has no Node for it: reset it first "
                                "(playbooks/reset.yml --limit %s), then apply" % (host, host))
        elif state and not state.get("live") and not state.get("has_data") and not state.get("version"):
            # the host was reset or replaced, its Node is left: the node password would be rejected
            stale.append({"host": host, "node": node["name"]})
            joins.append(host)
    joining_servers = len([h for h in joins if inventory[h]["role"] == "server" and h not in [s["host"] for s in stale]])
    deletion = delete_plan(inventory, live_nodes, record, None, force, api_host, cluster, joining_servers)
    recorded = record.get("digest") or None
    upgrade = bool(image_digest and recorded and recorded != image_digest)
    return {"join": joins, "stale": stale, "delete": deletion["delete"], "upgrade": upgrade,
            "image": {"recorded": recorded, "desired": image_digest},
            "warnings": warnings + deletion["warnings"],
            "changes": bool(joins or stale or deletion["delete"] or upgrade)}


def render_plan(plan):
    """Human-readable lines for --check --diff and logs."""
    lines = []
    if plan.get("upgrade"):
        lines.append("upgrade: image %s -> %s" % (plan["image"]["recorded"], plan["image"]["desired"]))
    for item in plan.get("stale") or []:
        lines.append("remove stale node %s of rebuilt host %s, then rejoin it" % (item["node"], item["host"]))
    for host in plan.get("join") or []:
        lines.append("join %s" % host)
    for item in plan.get("delete") or []:
        note = "" if item.get("in_inventory", True) else ": " + API_ONLY_NOTE
        lines.append("delete %s %s (%s, node %s)%s" % (item["role"], item["host"], item["address"], item["node"] or "-", note))
    lines.extend("warning: %s" % w for w in plan.get("warnings") or [])
    return lines or ["nothing to do: the cluster matches the inventory"]
