# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who initialises and whom everybody joins through, from what the hosts report.

The rule that keeps a cluster single: a cluster is initialised only when no master holds a
datastore yet. A server that already has one keeps the `server` it was configured with (k3s
ignores it once etcd data exists, and changing it would only restart the server); a new or
rebuilt server joins through the first live server."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import DATA_DIR

# What Ansible registers for a host whose task did not run: such a report says nothing about k3s.
NOT_RUN = ("unreachable", "skipped", "failed")


def runtime_reports(reports):
    """The per-host k3s_runtime_info results the caller passed ({host: result}, the runtime role's
    runtime_reports fact), checked to be that: hostvars or another mapping passed in their place
    fails here, loudly, instead of reading as "nothing runs anywhere"."""
    if not isinstance(reports, Mapping):
        raise ValueError("the runtime reports must be a mapping host -> k3s_runtime_info result, got %s"
                         % type(reports).__name__)
    for host, report in reports.items():
        if not isinstance(report, Mapping) or not ("role" in report or any(k in report for k in NOT_RUN)):
            raise ValueError("the runtime reports must map each host to its k3s_runtime_info result (the runtime "
                             "role's runtime_reports fact); %s has %s" % (host, _shape(report)))
    return reports


def _shape(value):
    if isinstance(value, Mapping):
        return "keys %s" % ", ".join(sorted(str(k) for k in value)[:8])
    return "a %s" % type(value).__name__


def report_of(reports, host):
    """The host's k3s_runtime_info result, or {} when it was not read (not in the play, unreachable)."""
    report = reports.get(host) or {}
    return report if "role" in report and not any(report.get(k) for k in NOT_RUN) else {}


def token_sources(masters, reports):
    """Who holds DATA/server/token (live servers first), who holds server data, who was read and
    who was not (unreachable, not in the play: such a master may hold the cluster's data, so
    nothing that only a new cluster may make -- a token, a registry CA -- is made while one is)."""
    runtime_reports(reports)
    checked, holders, live, holding, unread = [], [], [], [], []
    for host in masters or []:
        report = report_of(reports, host)
        if not report:
            unread.append(host)
            continue
        checked.append(host)
        if report.get("has_token"):
            (live if report.get("live") else holders).append(host)
        if report.get("has_token") or report.get("holds_data") or report.get("has_data"):
            holding.append(host)
    return {"file": os.path.join(DATA_DIR, "server", "token"), "holders": live + holders,
            "holding_data": holding, "checked": checked, "unread": unread}


def api_host(masters, hostvars, reports, excluded=()):
    """The first master whose k3s server is live and that is not excluded (by name or address); ""
    when there is none."""
    runtime_reports(reports)
    for host in masters or []:
        if host in excluded or str(hostvars[host].get("ansible_host", host)) in excluded:
            continue
        if report_of(reports, host).get("live"):
            return host
    return ""


def node_address(host, hostvars):
    """The address k3s registers the host's Node with (its InternalIP): the first node-ip of the
    host's k3s config (server config in group master, else agent config), else ansible_host (the
    runtime role's node-ip), else the host's name."""
    hv = hostvars[host]
    key = "seal_k3s_server_config" if "master" in (hv.get("group_names") or []) else "seal_k3s_agent_config"
    node_ip = (hv.get(key) or {}).get("node-ip")
    if node_ip:
        first = node_ip[0] if isinstance(node_ip, (list, tuple)) else str(node_ip).split(",", maxsplit=1)[0]
        return str(first).strip()
    return str(hv.get("ansible_host", host))


def node_specs(hosts, hostvars):
    """Per host: the address its Node is found by, its labels and taints from the inventory."""
    return [{"host": host, "address": node_address(host, hostvars),
             "labels": dict(hostvars[host].get("seal_labels") or {}), "taints": list(hostvars[host].get("seal_taints") or [])}
            for host in hosts]


def _url(host, hostvars, port):
    address = hostvars[host].get("ansible_host", host)
    if ":" in str(address) and not str(address).startswith("["):
        address = "[%s]" % address
    return "https://%s:%s" % (address, port)


def join_plan(masters, hostvars, reports, port=6443, external_datastore=False, registration_address=None):
    """Return {init_host, ha, servers: {host: {server, cluster_init}}, agent_url}. reports: the
    masters' k3s_runtime_info results (runtime_reports); hostvars: the inventory's addresses."""
    if not masters:
        raise ValueError("the inventory has no master: the master (server) group is empty")
    states = {h: report_of(runtime_reports(reports), h) for h in masters}
    live = [h for h in masters if states[h].get("live") and states[h].get("has_data")]
    with_data = [h for h in masters if states[h].get("has_data")]
    init_host = (live or with_data or list(masters))[0]
    ha = len(masters) > 1 and not external_datastore
    join_url = ("https://%s:%s" % (registration_address, port)) if registration_address else _url(init_host, hostvars, port)
    servers = {}
    for host in masters:
        state = states[host]
        if external_datastore:
            server = None
        elif state.get("has_data"):
            server = state.get("config_server") or None
        elif host == init_host:
            server = None
        else:
            server = join_url
        servers[host] = {"server": server, "cluster_init": bool(ha and server is None)}
    return {"init_host": init_host, "ha": ha, "servers": servers, "agent_url": join_url}
