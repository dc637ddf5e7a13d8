# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Edits of a Clusterfile for the `seal` command: the --masters/--nodes host lists (IP[:PORT]),
adding and removing hosts, changing the image. Every edit returns new text that
clusterfile.load() has validated; the parsing and the writer stay in clusterfile.py."""

from __future__ import annotations

import copy

import yaml

from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile


class EditError(ValueError):
    """Bad input for an edit (exit status 2 in the command)."""


def parse_hosts(text, flag="--masters"):
    """'10.0.0.2,10.0.0.3:2222' -> [(ip, port or None)]; EditError naming the flag and the entry."""
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        ip, port = item, None
        if item.startswith("["):  # [v6]:port
            ip, _sep, rest = item[1:].partition("]")
            if rest:
                if not rest.startswith(":"):
                    raise EditError("%s: %r is not IP[:PORT]" % (flag, item))
                port = rest[1:]
        elif item.count(":") == 1:
            ip, port = item.split(":")
        try:
            ip = names.check_ip(ip)
        except names.InvalidName as exc:
            raise EditError("%s: %r: %s" % (flag, item, exc.reason)) from None
        if port is not None:
            if not port.isdigit() or not 1 <= int(port) <= 65535:
                raise EditError("%s: %r: port %r is not a number in 1-65535" % (flag, item, port))
            port = int(port)
        if any(ip == seen for seen, _p in out):
            raise EditError("%s: %s is listed twice" % (flag, ip))
        out.append((ip, port))
    return out


def _doc(text):
    docs = clusterfile.load(text)
    cluster = next(d for d in docs if d.kind == "Cluster")
    return docs, cluster


def _dump(docs, cluster_value):
    values = [cluster_value if d.kind == "Cluster" else d.value for d in docs]
    text = yaml.safe_dump_all(values, sort_keys=False, default_flow_style=False)
    clusterfile.load(text, "<edited>")
    return text


def _group_hosts(spec, role, hosts):
    """Host groups for (ip, port) pairs of one role: one group per port that differs from spec.ssh's
    (a host given without a port gets spec.ssh's)."""
    default_port = int((spec.get("ssh") or {}).get("port") or 22)
    groups = {}
    for ip, port in hosts:
        groups.setdefault(port or default_port, []).append(ip)
    out = []
    for port, ips in groups.items():
        group = {"ips": ips, "roles": [role]}
        if port != default_port:
            group["ssh"] = {"port": str(port)}
        out.append(group)
    return out


def new(name, masters, nodes=(), user="root", passwd=None, pk=None, image=None):
    """A Clusterfile from parsed --masters/--nodes lists, through clusterfile.write()."""
    if not masters:
        raise EditError("--masters: at least one master is needed")
    masters = [(ip, port or 22) for ip, port in masters]  # no port: ssh's 22, not the most common one
    nodes = [(ip, port or 22) for ip, port in nodes]
    ports = [p for _ip, p in masters + nodes]
    common = max(sorted(set(ports)), key=ports.count)
    text = clusterfile.write(name, [ip for ip, _p in masters], [ip for ip, _p in nodes], user=user, passwd=passwd, pk=pk,
                             port=common, image=image)
    docs, cluster = _doc(text)
    value = copy.deepcopy(cluster.value)
    spec = value["spec"]
    spec["hosts"] = _group_hosts(spec, "master", masters) + (_group_hosts(spec, "node", nodes) if nodes else [])
    return _dump(docs, value)


def info(text):
    """{name, image, masters: [ip], nodes: [ip], data_root} of a Clusterfile's text."""
    _docs, cluster = _doc(text)
    spec = cluster.value["spec"]
    masters = [names.check_ip(str(ip)) for h in spec["hosts"] if "master" in h["roles"] for ip in h["ips"]]
    nodes = [names.check_ip(str(ip)) for h in spec["hosts"] if "master" not in h["roles"] for ip in h["ips"]]
    return {"name": cluster.value["metadata"]["name"], "image": spec.get("image"), "masters": masters, "nodes": nodes,
            "data_root": spec.get("dataRoot") or clusterfile.DEFAULT_DATA_ROOT}


def secrets(text):
    """The secret values a Clusterfile holds (ssh passwords, key passphrases, registry passwords)."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in clusterfile.SECRET_KEYS and isinstance(item, str) and item:
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for doc in clusterfile.load(text):
        walk(doc.value)
    return found


def set_image(text, image):
    docs, cluster = _doc(text)
    value = copy.deepcopy(cluster.value)
    value["spec"]["image"] = image
    return _dump(docs, value)


def add_hosts(text, masters=(), nodes=()):
    """Add (ip, port) masters and nodes in new groups; EditError when a host is already listed."""
    docs, cluster = _doc(text)
    known = info(text)
    for ip, _port in list(masters) + list(nodes):
        if ip in known["masters"] + known["nodes"]:
            raise EditError("%s is already in cluster %s" % (ip, known["name"]))
    if not masters and not nodes:
        raise EditError("give --masters and/or --nodes to add")
    value = copy.deepcopy(cluster.value)
    spec = value["spec"]
    spec["hosts"] = list(spec["hosts"]) + _group_hosts(spec, "master", masters) + _group_hosts(spec, "node", nodes)
    return _dump(docs, value)


def remove_hosts(text, ips):
    """Remove IPs from their groups (groups left empty go); EditError for an unknown IP or the last master
    (the other rules, such as an even etcd member count, are delete.yml's plan)."""
    docs, cluster = _doc(text)
    known = info(text)
    for ip in ips:
        if ip not in known["masters"] + known["nodes"]:
            raise EditError("%s is not in cluster %s" % (ip, known["name"]))
    if not ips:
        raise EditError("give --masters and/or --nodes to delete")
    left = [m for m in known["masters"] if m not in ips]
    if not left:
        raise EditError("deleting %s would remove the last master of cluster %s: use seal reset to tear the cluster down"
                        % (", ".join(m for m in known["masters"] if m in ips), known["name"]))
    value = copy.deepcopy(cluster.value)
    groups = []
    for group in value["spec"]["hosts"]:
        kept = [ip for ip in group["ips"] if names.check_ip(str(ip)) not in ips]
        if kept:
            groups.append(dict(group, ips=kept))
    value["spec"]["hosts"] = groups
    return _dump(docs, value)
