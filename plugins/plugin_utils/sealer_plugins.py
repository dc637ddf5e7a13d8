# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documents of `kind: Plugin` (sealer v0.8: types/api/v1/plugin_types.go, pkg/plugin/): checked
where they are read (the Clusterfile, or an image's `plugins/*.yaml`), and which inventory hosts
run one in a phase.

- ``apiVersion`` ``sealer.io/v1`` or ``sealer.aliyun.com/v1alpha1``; ``metadata.name``;
- ``spec.type``: ``SHELL`` (pkg/plugin/shell_plugin.go), ``HOSTNAME``, ``LABEL``, ``TAINT``
  (hostname_plugin.go, labels.go, taint_plugin.go); sealer's ETCD, CLUSTERCHECK and Go ``.so``
  plugins are refused;
- ``spec.action``: a phase (pkg/plugin/plugin.go: PreInit, PreJoin, PostJoin, PreGuest,
  PostInstall, PreClean, PostClean) or several joined by ``|``;
- ``spec.on`` (SHELL; pkg/plugin/utils.go GetIpsByOnField): empty for every host, ``master``,
  ``node``, ``master0``, IPs separated by ``,`` and ranges ``a-b`` (utils/net DisassembleIPList),
  or a node label selector (it holds ``=``; sealer only for PostInstall, PostJoin and PreClean);
- ``spec.data``: the shell text; for HOSTNAME ``<ip> <hostname>`` lines, for LABEL
  ``<ips> k=v,k2=v2`` and for TAINT ``<ips> key=value:Effect`` lines (docs/design/plugin.md).

Whatever ``on`` or ``data`` says, only the inventory's hosts are ever selected (sealer's shell
plugin skips IPs that are not the cluster's too)."""

from __future__ import annotations

import ipaddress

from ansible_collections.seal.cluster.plugins.module_utils import _names as names

API_VERSIONS = ("sealer.io/v1", "sealer.aliyun.com/v1alpha1")
TYPES = ("SHELL", "HOSTNAME", "LABEL", "TAINT")
PHASES = ("PreInit", "PreJoin", "PostJoin", "PreGuest", "PostInstall", "PreClean", "PostClean")
LABEL_PHASES = ("PostInstall", "PostJoin", "PreClean")  # sealer pkg/plugin/utils.go GetIpsByOnField
NODE_PHASES = ("PreGuest", "PostInstall", "PostJoin")  # LABEL / TAINT need the Nodes
SPEC_KEYS = ("type", "action", "on", "data")
ROLE_LABELS = {"node-role.kubernetes.io/master": "true", "node-role.kubernetes.io/control-plane": "true"}
MAX_RANGE = 4096


class PluginError(ValueError):
    pass


def _ip(text, where):
    try:
        return ipaddress.ip_address(names.check_ip(text.strip()).split("%", 1)[0])
    except names.InvalidName as exc:
        raise PluginError("%s: %s" % (where, exc.reason)) from None


def ip_set(text, where):
    """The addresses of '<ip>,<ip>,<a>-<b>' (DisassembleIPList)."""
    out = []
    for item in str(text).split(","):
        if not item.strip():
            raise PluginError("%s: empty address in %r" % (where, text))
        if "-" in item:
            first, last = (_ip(part, where) for part in item.split("-", 1))
            if first.version != last.version or int(last) < int(first):
                raise PluginError("%s: %r is not a range from a lower to a higher address" % (where, item))
            if int(last) - int(first) >= MAX_RANGE:
                raise PluginError("%s: range %r holds more than %d addresses" % (where, item, MAX_RANGE))
            out.extend(ipaddress.ip_address(int(first) + i) for i in range(int(last) - int(first) + 1))
        else:
            out.append(_ip(item, where))
    return out


def parse_selector(text, where):
    """A node label selector: requirements k=v, k==v or k!=v joined by ','."""
    out = []
    for item in str(text).split(","):
        op = "!=" if "!=" in item else "==" if "==" in item else "="
        if op not in item:
            raise PluginError("%s: %r in the label selector %r is not key=value" % (where, item, text))
        key, value = (part.strip() for part in item.split(op, 1))
        try:
            names.check_label_key(key)
            if value:
                names.check_label_value(value)
        except names.InvalidName as exc:
            raise PluginError("%s: %s" % (where, exc.reason)) from None
        out.append((key, "!=" if op == "!=" else "=", value))
    return out


def _lines(data, where):
    """[(ips, rest)] for the non-empty lines of HOSTNAME / LABEL / TAINT data."""
    out = []
    for n, line in enumerate(str(data).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(None, 1)
        if len(fields) != 2:
            raise PluginError("%s line %d: %r is not '<ips> <value>'" % (where, n, line))
        out.append((ip_set(fields[0], "%s line %d" % (where, n)), fields[1].strip(), n))
    return out


def _check_data(kind, data, where):
    for ips, rest, n in _lines(data, where):
        at = "%s line %d" % (where, n)
        try:
            if kind == "HOSTNAME":
                if len(ips) != 1:
                    raise PluginError("%s: a HOSTNAME line names one address" % at)
                names.check_node_name(rest)
            elif kind == "LABEL":
                for pair in rest.split(","):
                    key, sep, value = pair.partition("=")
                    if not sep or key.endswith("-"):
                        raise PluginError("%s: %r: a LABEL is key=value (removing labels is not supported)" % (at, pair))
                    names.check_label_key(key.strip())
                    names.check_label_value(value.strip())
            else:
                if rest.endswith("-"):
                    raise PluginError("%s: %r: removing taints is not supported" % (at, rest))
                names.parse_taint(rest)
        except names.InvalidName as exc:
            raise PluginError("%s: %s" % (at, exc.reason)) from None


def check(value, source="Clusterfile"):
    """Validate one Plugin document's value; return {name, type, actions, on, data, source}."""
    if value.get("apiVersion") not in API_VERSIONS:
        raise PluginError("apiVersion: %r is not a Plugin apiVersion (%s)" % (value.get("apiVersion"), ", ".join(API_VERSIONS)))
    meta = value.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise PluginError("metadata.name: a Plugin needs a name")
    spec = value.get("spec")
    if not isinstance(spec, dict):
        raise PluginError("spec: a Plugin needs spec.type, spec.action and spec.data")
    spec = dict(spec)
    if True in spec:
        # YAML 1.1 reads an unquoted `on:` as the key true (sealer's docs quote it: 'on': master;
        # unquoted, sealer drops it and runs everywhere): it can only mean `on`
        if "on" in spec:
            raise PluginError("spec.on: given twice ('on' and an unquoted on, which YAML reads as true)")
        spec["on"] = spec.pop(True)
    for key, item in spec.items():
        if key not in SPEC_KEYS:
            raise PluginError("spec.%s: unknown key (allowed: %s)" % (key, ", ".join(SPEC_KEYS)))
        if key == "on" and isinstance(item, list):
            item = spec["on"] = ",".join(str(i) for i in item)  # sealer's docs show a list of IPs as one string
        if item is not None and not isinstance(item, str):
            raise PluginError("spec.%s: must be a string, not %s" % (key, type(item).__name__))
    kind = spec.get("type")
    if kind not in TYPES:
        raise PluginError("spec.type: %r is not supported (supported: %s)" % (kind, ", ".join(TYPES)))
    actions = [a.strip() for a in (spec.get("action") or "").split("|") if a.strip()]
    if not actions:
        raise PluginError("spec.action: a Plugin needs an action (%s, or several joined by '|')" % ", ".join(PHASES))
    for action in actions:
        if action not in PHASES:
            raise PluginError("spec.action: %r is not a phase (%s)" % (action, ", ".join(PHASES)))
    data = spec.get("data") or ""
    if not data.strip():
        raise PluginError("spec.data: a Plugin needs data")
    on = (spec.get("on") or "").strip()
    if on and kind != "SHELL":
        raise PluginError("spec.on: only SHELL plugins take on (%s names its hosts in data)" % kind)
    if "=" in on:
        parse_selector(on, "spec.on")
        wrong = [a for a in actions if a not in LABEL_PHASES]
        if wrong:
            raise PluginError("spec.on: a node label selector needs the action to be %s, not %s"
                              % (" or ".join(LABEL_PHASES), "|".join(wrong)))
    elif on and on not in ("master", "node", "master0"):
        ip_set(on, "spec.on")
    if kind in ("LABEL", "TAINT"):
        wrong = [a for a in actions if a not in NODE_PHASES]
        if wrong:
            raise PluginError("spec.action: a %s plugin needs the Nodes, so %s, not %s" % (kind, " or ".join(NODE_PHASES), "|".join(wrong)))
    if kind != "SHELL":
        _check_data(kind, data, "spec.data")
    # sealer trims the data's last newline (pkg/cluster-runtime/hook.go, decodePluginFile)
    return {"name": name, "type": kind, "actions": actions, "on": on, "data": data[:-1] if data.endswith("\n") else data,
            "source": source}


def _address(host, hostvars):
    try:
        return ipaddress.ip_address(names.check_ip(str(hostvars[host].get("ansible_host", host))).split("%", 1)[0])
    except (names.InvalidName, ValueError):
        return None


def host_labels(host, hostvars, groups):
    """The labels a host's Node carries as seal.cluster makes it: the inventory's (finish sets
    them) and the role labels k3s puts on servers."""
    labels = dict(hostvars[host].get("seal_labels") or {})
    if host in groups.get("master", ()):
        labels.update(ROLE_LABELS)
    return labels


def _matches(selector, labels):
    for key, op, value in selector:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
    return True


def select(plugin, phase, hosts, hostvars, groups):
    """The hosts among `hosts` (inventory hosts, in their order) that run plugin in phase."""
    if phase not in plugin["actions"]:
        return []
    on = plugin["on"]
    if plugin["type"] != "SHELL":
        wanted = {ip for ips, _rest, _n in _lines(plugin["data"], "spec.data") for ip in ips}
        return [h for h in hosts if _address(h, hostvars) in wanted]
    if not on:
        return list(hosts)
    if on in ("master", "node"):
        return [h for h in hosts if h in groups.get(on, ())]
    if on == "master0":
        first = list(groups.get("master", ()))[:1]
        return [h for h in hosts if h in first]
    if "=" in on:
        selector = parse_selector(on, "spec.on")
        return [h for h in hosts if _matches(selector, host_labels(h, hostvars, groups))]
    wanted = set(ip_set(on, "spec.on"))
    return [h for h in hosts if _address(h, hostvars) in wanted]


def host_value(plugin, host, hostvars):
    """HOSTNAME: this host's name; LABEL: its labels (dict); TAINT: its taints (list)."""
    address = _address(host, hostvars)
    found = [rest for ips, rest, _n in _lines(plugin["data"], "spec.data") if address in ips]
    if plugin["type"] == "HOSTNAME":
        return found[-1] if found else None
    if plugin["type"] == "LABEL":
        return {k.strip(): v.strip() for rest in found for k, _s, v in (p.partition("=") for p in rest.split(","))}
    return found
