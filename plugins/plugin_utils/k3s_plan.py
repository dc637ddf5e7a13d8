# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who initialises and whom everybody joins through, from what the hosts report.

The rule that keeps a cluster single: a cluster is initialised only when no master holds a
datastore yet. A server that already has one keeps the `server` it was configured with (k3s
ignores it once etcd data exists, and changing it would only restart the server); a new or
rebuilt server joins through the first live server."""

from __future__ import annotations


def _url(host, hostvars, port):
    address = hostvars[host].get("ansible_host", host)
    if ":" in str(address) and not str(address).startswith("["):
        address = "[%s]" % address
    return "https://%s:%s" % (address, port)


def join_plan(masters, hostvars, port=6443, external_datastore=False, registration_address=None, query_var="k3s_query"):
    """Return {init_host, ha, servers: {host: {server, cluster_init}}, agent_url}."""
    if not masters:
        raise ValueError("the inventory has no master: the master (server) group is empty")
    states = {h: hostvars[h].get(query_var) or {} for h in masters}
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
