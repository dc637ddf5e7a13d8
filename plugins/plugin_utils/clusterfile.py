# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sealer-style Clusterfiles (apiVersion sealer.io/v2, kind Cluster): parse and validate with
errors that name the file, the document, the field path and the line; turn a cluster into
hosts, groups and variables; and write a Clusterfile from --masters/--nodes style arguments.

Controller-only (needs PyYAML); shared by the inventory plugin and command lines."""

from __future__ import annotations

import re

import yaml

import ipaddress

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_snapshot as snapshot, _names as names
from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_application, sealer_config, sealer_plugins

API_VERSION = "sealer.io/v2"
DEFAULT_REGISTRY = {"domain": "sea.hub", "port": 5000}
DEFAULT_DATA_ROOT = "/var/lib/seal"

SSH_KEYS = {"user": str, "passwd": str, "pk": str, "pkPasswd": str, "port": (str, int)}
SPEC_KEYS = {"image": str, "env": list, "cmd": list, "cmdArgs": list, "appNames": list, "hosts": list, "ssh": dict,
             "containerRuntime": dict, "registry": dict, "hostAliases": list, "dataRoot": str, "etcdSnapshot": dict}
HOST_KEYS = {"ips": list, "roles": list, "ssh": dict, "env": list, "labels": dict, "taints": list}
# spec.etcdSnapshot: the servers' scheduled etcd snapshots (k3s etcd-snapshot-schedule-cron and
# etcd-snapshot-retention); a seal.cluster field, sealer has none (docs/clusterfile.md)
ETCD_SNAPSHOT_KEYS = {"schedule": str, "retention": int}
REGISTRY_KEYS = {"domain": str, "port": (str, int), "username": str, "password": str, "insecure": bool, "ha": bool, "cert": dict}
SECRET_KEYS = ("passwd", "pkPasswd", "password")


class ClusterfileError(ValueError):
    pass


def _type_name(types):
    types = types if isinstance(types, tuple) else (types,)
    names = {str: "string", int: "integer", bool: "boolean", list: "list", dict: "mapping"}
    return " or ".join(names[t] for t in types)


class _Doc:
    """One YAML document: its value and the line of every field path."""

    def __init__(self, filename, index, node):
        self.filename, self.index = filename, index
        self.lines = {}
        self.kind = None
        if isinstance(node, yaml.MappingNode):  # the kind names the document in errors found while walking it
            self.kind = next((v.value for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == "kind"
                              and isinstance(v, yaml.ScalarNode)), None)
        loader = yaml.SafeLoader("")
        self.value = self._walk(node, "", loader)
        self.kind = self.value.get("kind") if isinstance(self.value, dict) else None

    def _walk(self, node, path, loader):
        self.lines[path] = node.start_mark.line + 1
        plain = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}.get(type(node))
        if plain and node.tag != plain:
            raise self.error(path, "YAML tag %s refused: a Clusterfile is plain data" % node.tag)
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                sub = "%s.%s" % (path, key) if path else str(key)
                if key in out:
                    raise self.error(sub, "duplicate key", line=key_node.start_mark.line + 1)
                out[key] = self._walk(value_node, sub, loader)
                self.lines[sub] = key_node.start_mark.line + 1  # the key's line, not its block's
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(item, "%s[%d]" % (path, i), loader) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    def error(self, path, message, line=None):
        line = line or self.lines.get(path) or self.lines.get(path.rsplit(".", 1)[0]) or self.lines.get("")
        kind = " (kind %s)" % self.kind if self.kind else ""
        where = "%s: document %d%s, %s (line %s)" % (self.filename, self.index + 1, kind, path or "<root>", line)
        return ClusterfileError("%s: %s" % (where, message))


def _check_keys(doc, value, path, allowed):
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    for key, item in value.items():
        sub = "%s.%s" % (path, key)
        if key not in allowed:
            raise doc.error(sub, "unknown key %r (allowed: %s)" % (key, ", ".join(sorted(allowed))))
        if item is not None and not isinstance(item, allowed[key]) or (allowed[key] is int and isinstance(item, bool)):
            raise doc.error(sub, "must be a %s, not %s" % (_type_name(allowed[key]), type(item).__name__))


def _port(doc, value, path):
    try:
        port = int(str(value).strip())
    except ValueError:
        raise doc.error(path, "port %r is not a number" % (value,)) from None
    if not 1 <= port <= 65535:
        raise doc.error(path, "port %d is out of range 1-65535" % port)
    return port


def _env(doc, items, path):
    env = {}
    for i, item in enumerate(items or []):
        if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0]:
            raise doc.error("%s[%d]" % (path, i), "env entries are KEY=VALUE strings, got %r" % (item,))
        key, value = item.split("=", 1)
        _check(doc, "%s[%d]" % (path, i), names.check_env_key, key)
        _check(doc, "%s[%d]" % (path, i), names.check_env_value, value)
        if key in env:  # sealer: a repeated key collects its values in a list
            env[key] = (env[key] if isinstance(env[key], list) else [env[key]]) + [value]
        else:
            env[key] = value
    return env


def _ssh(doc, value, path):
    _check_keys(doc, value or {}, path, SSH_KEYS)
    out = dict(value or {})
    if "port" in out and out["port"] is not None:
        out["port"] = _port(doc, out["port"], path + ".port")
    return out


class _DataLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """Composes plain data only: an anchor or an alias stops the parse before anything expands
    (no billion laughs, no recursive alias)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, "YAML alias *%s" % event.anchor)
        if getattr(event, "anchor", None) is not None:
            raise _Refused(event.start_mark, "YAML anchor &%s" % event.anchor)
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, mark, what):
        super().__init__(what)
        self.mark, self.what = mark, what


def load(text, filename="Clusterfile"):
    """Parse a multi-document Clusterfile; return the list of _Doc, validated."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_DataLoader))
        docs = [_Doc(filename, i, node) for i, node in enumerate(nodes) if node is not None]
    except _Refused as exc:
        raise ClusterfileError("%s: line %d: %s refused: a Clusterfile is plain data, anchors and aliases are not allowed"
                               % (filename, exc.mark.line + 1, exc.what)) from None
    except RecursionError:
        raise ClusterfileError("%s: nested too deeply to be a Clusterfile" % filename) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = " (line %d)" % (mark.line + 1) if mark else ""
        raise ClusterfileError("%s: not valid YAML%s: %s" % (filename, line, getattr(exc, "problem", exc))) from None
    clusters = [d for d in docs if d.kind == "Cluster"]
    if not clusters:
        raise ClusterfileError("%s: no document of kind Cluster" % filename)
    for doc in docs:
        if not isinstance(doc.value, dict) or "kind" not in doc.value or "apiVersion" not in doc.value:
            raise doc.error("", "every document needs apiVersion and kind")
    for doc in clusters:
        validate(doc)
    for doc in docs:
        check_runtime_doc(doc)
    apps = [d for d in docs if d.kind == "Application"]
    if len(apps) > 1:  # sealer keeps the last one silently; which one was meant is not for us to guess
        raise apps[1].error("", "a second Application document (the first is document %d): a Clusterfile has one"
                            % (apps[0].index + 1))
    return docs


def check_runtime_doc(doc):
    """A Config, Plugin or Application document checked where it is read; errors name the document and field."""
    checker = {"Config": sealer_config.check, "Plugin": sealer_plugins.check,
               "Application": sealer_application.check}.get(doc.kind)
    if checker is None:
        return None
    try:
        return checker(doc.value)
    except (sealer_config.ConfigError, sealer_plugins.PluginError, sealer_application.ApplicationError) as exc:
        field, _sep, message = str(exc).partition(": ")
        name = (doc.value.get("metadata") or {}).get("name") if isinstance(doc.value.get("metadata"), dict) else None
        raise doc.error(field, "%s%s" % ("%s %s: " % (doc.kind, name) if name else "", message)) from None


def derived_env(env, ip):
    """The keys sealer adds to a host's env: HostIP (pkg/infradriver/ssh_infradriver.go
    GetHostEnv, unless set) and, from SvcCIDR's first network, KubeSvcIP (its 1st address) and
    DNSSvcIP (its 10th), replacing given ones (pkg/clusterfile/decoder.go)."""
    env = dict(env)
    env.setdefault("HostIP", ip)
    svc = env.get("SvcCIDR")
    if isinstance(svc, str) and svc:
        env.pop("KubeSvcIP", None)
        env.pop("DNSSvcIP", None)
        try:
            network = ipaddress.ip_network(svc.split(",")[0].strip(), strict=False)
            env["KubeSvcIP"] = str(network[1])
            env["DNSSvcIP"] = str(network[10])
        except (ValueError, IndexError):
            pass  # k3s_env_config refuses a SvcCIDR that is not a network, naming it
    return env


def _check(doc, path, check, value):
    """Run a _names validator; its error becomes one naming the document, field and line."""
    try:
        return check(value)
    except names.InvalidName as exc:
        raise doc.error(path, exc.reason) from None


def validate(doc):
    value = doc.value
    if value["apiVersion"] != API_VERSION:
        raise doc.error("apiVersion", "unsupported apiVersion %r (expected %s)" % (value["apiVersion"], API_VERSION))
    _check_keys(doc, value, "", {"apiVersion": str, "kind": str, "metadata": dict, "spec": dict})
    _check(doc, "metadata.name", names.check_cluster_name, (value.get("metadata") or {}).get("name"))
    spec = value.get("spec")
    if not isinstance(spec, dict):
        raise doc.error("spec", "spec is required")
    _check_keys(doc, spec, "spec", SPEC_KEYS)
    _ssh(doc, spec.get("ssh"), "spec.ssh")
    _env(doc, spec.get("env"), "spec.env")
    _application(doc, ())  # spec.cmd and spec.appNames
    if spec.get("dataRoot") is not None:
        _check(doc, "spec.dataRoot", names.check_absolute_path, spec["dataRoot"])
    _etcd_snapshot(doc, spec.get("etcdSnapshot"))
    hosts = spec.get("hosts") or []
    if not hosts:
        raise doc.error("spec.hosts", "the cluster has no hosts")
    seen = {}
    masters = 0
    for i, host in enumerate(hosts):
        path = "spec.hosts[%d]" % i
        _check_keys(doc, host, path, HOST_KEYS)
        if not host.get("ips"):
            raise doc.error(path + ".ips", "each host group needs ips")
        if not host.get("roles"):
            raise doc.error(path + ".roles", "each host group needs roles")
        for j, role in enumerate(host["roles"]):
            if not isinstance(role, str) or not role:
                raise doc.error("%s.roles[%d]" % (path, j), "roles are non-empty strings")
        for j, ip in enumerate(host["ips"]):
            ip_path = "%s.ips[%d]" % (path, j)
            canonical = _check(doc, ip_path, names.check_ip, ip if isinstance(ip, str) else str(ip))
            if canonical in seen:
                raise doc.error(ip_path, "duplicate IP %s (already at %s)" % (ip, seen[canonical]))
            seen[canonical] = ip_path
        if "master" in host["roles"]:
            masters += len(host["ips"])
        _ssh(doc, host.get("ssh"), path + ".ssh")
        _env(doc, host.get("env"), path + ".env")
        for key, label in (host.get("labels") or {}).items():
            label_path = "%s.labels.%s" % (path, key)
            _check(doc, label_path, names.check_label_key, key)
            if not isinstance(label, (str, int, float, bool)):
                raise doc.error(label_path, "a label value is a string, not %s" % type(label).__name__)
            _check(doc, label_path, names.check_label_value, _label_text(label))
        for j, taint in enumerate(host.get("taints") or []):
            _check(doc, "%s.taints[%d]" % (path, j), names.parse_taint, taint)
    if not masters:
        raise doc.error("spec.hosts", "no host has the role master")
    registry = spec.get("registry") or {}
    _check_keys(doc, registry, "spec.registry", {"localRegistry": dict, "externalRegistry": dict})
    for kind in ("localRegistry", "externalRegistry"):
        item = registry.get(kind)
        if item is None:
            continue
        where = "spec.registry." + kind
        _check_keys(doc, item, where, REGISTRY_KEYS)
        if "port" in item:
            _port(doc, item["port"], where + ".port")
        if item.get("domain") is not None:
            _check(doc, where + ".domain", names.check_domain, item["domain"])
        if item.get("username") is not None:
            _check(doc, where + ".username", names.check_registry_username, item["username"])
        _check_keys(doc, item.get("cert") or {}, where + ".cert", {"subjectAltName": dict})
        san = (item.get("cert") or {}).get("subjectAltName") or {}
        _check_keys(doc, san, where + ".cert.subjectAltName", {"dnsNames": list, "ips": list})
        for j, name in enumerate(san.get("dnsNames") or []):
            _check(doc, "%s.cert.subjectAltName.dnsNames[%d]" % (where, j), _san_name, name)
        for j, ip in enumerate(san.get("ips") or []):
            _check(doc, "%s.cert.subjectAltName.ips[%d]" % (where, j), names.check_ip, ip)
    for i, alias in enumerate(spec.get("hostAliases") or []):
        path = "spec.hostAliases[%d]" % i
        _check_keys(doc, alias, path, {"ip": str, "hostnames": list})
        _check(doc, path + ".ip", names.check_ip, alias.get("ip"))
        if not alias.get("hostnames"):
            raise doc.error(path + ".hostnames", "each host alias needs hostnames")
        for j, hostname in enumerate(alias["hostnames"]):
            _check(doc, "%s.hostnames[%d]" % (path, j), names.check_hostname, hostname)


def _etcd_snapshot(doc, value):
    """spec.etcdSnapshot {schedule, retention}: a cron spec k3s accepts, a retention of 1 or more."""
    if value is None:
        return {}
    _check_keys(doc, value, "spec.etcdSnapshot", ETCD_SNAPSHOT_KEYS)
    out = {}
    for key, check, var in (("schedule", snapshot.check_schedule, "seal_etcd_snapshot_schedule_cron"),
                            ("retention", snapshot.check_retention, "seal_etcd_snapshot_retention")):
        if value.get(key) is not None:
            try:
                out[var] = check(value[key])
            except ValueError as exc:
                raise doc.error("spec.etcdSnapshot." + key, str(exc)) from None
    return out


def _label_text(value):
    """YAML gives true/1/1.5 for unquoted label values; the label holds their text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _san_name(name):
    """A certificate DNS SAN: a host name, or a wildcard '*.' followed by one."""
    if isinstance(name, str) and name.startswith("*."):
        names.check_hostname(name[2:])
        return name
    return names.check_hostname(name)


def sanitize_group(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", str(name))


def hosts_of(doc, runtime_docs=()):
    """[(ip, hostvars, groups)] for one Cluster document, in file order (master0 first among masters)."""
    spec = doc.value["spec"]
    cluster = doc.value["metadata"]["name"]
    cluster_env = _env(doc, spec.get("env"), "spec.env")
    registry = {}
    for kind in ("localRegistry", "externalRegistry"):
        if (spec.get("registry") or {}).get(kind) is not None:
            registry[kind] = dict(DEFAULT_REGISTRY, **spec["registry"][kind])
            registry[kind]["port"] = int(registry[kind]["port"])
    if not registry:
        registry = {"localRegistry": dict(DEFAULT_REGISTRY)}
    masters = [names.check_ip(str(ip)) for h in spec["hosts"] if "master" in h["roles"] for ip in h["ips"]]
    common = {
        "seal_cluster_name": cluster,
        "seal_image": spec.get("image"),
        "seal_registry": registry,
        "seal_host_aliases": spec.get("hostAliases") or [],
        "seal_data_root": spec.get("dataRoot") or DEFAULT_DATA_ROOT,
        # the other documents: Config, Plugin and Application ones checked and normalised, the rest kept as they are
        "seal_runtime_config": [d.value for d in runtime_docs if d.kind not in ("Config", "Plugin", "Application")],
        "seal_application": _application(doc, runtime_docs),
        "seal_configs": [d.value for d in runtime_docs if d.kind == "Config"],
        "seal_plugins": [check_runtime_doc(d) for d in runtime_docs if d.kind == "Plugin"],
        "seal_cluster_env": cluster_env,
    }
    # only the keys given: without them, group_vars (or k3s's defaults) decide
    common.update(_etcd_snapshot(doc, spec.get("etcdSnapshot")))
    out = []
    for host in spec["hosts"]:
        ssh = dict(_ssh(doc, spec.get("ssh"), "spec.ssh"), **_ssh(doc, host.get("ssh"), "ssh"))
        env = dict(cluster_env, **_env(doc, host.get("env"), "env"))
        for ip in (names.check_ip(str(ip)) for ip in host["ips"]):
            hostvars = dict(common)
            hostvars.update({
                "ansible_host": ip,
                "ansible_port": int(ssh.get("port") or 22),
                "ansible_user": ssh.get("user") or "root",
                "seal_env": derived_env(env, ip),
                "seal_labels": {str(k): _label_text(v) for k, v in (host.get("labels") or {}).items()},
                "seal_taints": list(host.get("taints") or []),
            })
            if ssh.get("passwd"):
                hostvars["ansible_password"] = ssh["passwd"]
            if ssh.get("pk"):
                if ssh.get("pkPasswd"):
                    # the ssh connection honours a passphrase only for key content, not a key file
                    with open(ssh["pk"], encoding="utf-8") as f:
                        hostvars["ansible_ssh_private_key"] = f.read()
                    hostvars["ansible_ssh_private_key_passphrase"] = ssh["pkPasswd"]
                else:
                    hostvars["ansible_ssh_private_key_file"] = ssh["pk"]
            groups = [sanitize_group(r) for r in host["roles"]] + ["cluster_" + sanitize_group(cluster)]
            if ip == masters[0]:
                groups.append("master0")
            out.append((ip, hostvars, groups))
    return out


def _application(doc, runtime_docs):
    """The Application document's launch settings with the Cluster's spec.cmd / spec.appNames over
    them (None when neither is given)."""
    app = next((check_runtime_doc(d) for d in runtime_docs if d.kind == "Application"), None)
    try:
        return sealer_application.with_cluster_spec(app, doc.value["spec"])
    except sealer_application.ApplicationError as exc:
        field, _sep, message = str(exc).partition(": ")
        raise doc.error(field, message) from None


def write(name, masters, nodes=(), user="root", passwd=None, pk=None, port=22, image=None):
    """A Clusterfile from --masters/--nodes style arguments (IP lists)."""
    ssh = {"user": user, "port": str(port)}
    if passwd:
        ssh["passwd"] = passwd
    if pk:
        ssh["pk"] = pk
    hosts = [{"ips": list(masters), "roles": ["master"]}]
    if nodes:
        hosts.append({"ips": list(nodes), "roles": ["node"]})
    spec = {"image": image} if image else {}
    spec.update({"ssh": ssh, "hosts": hosts})
    text = yaml.safe_dump({"apiVersion": API_VERSION, "kind": "Cluster", "metadata": {"name": name}, "spec": spec},
                          sort_keys=False, default_flow_style=False)
    load(text, "<generated>")
    return text
