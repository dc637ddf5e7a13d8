"""config.yaml + config.yaml.d merging and injection into argv, as k3s's configfilearg does.

k3s facts modelled (shared/K3S-REFERENCE.md §2; k3s pkg/configfilearg/parser.go):
- default file /etc/rancher/k3s/config.yaml, overridden by --config/-c, and K3S_CONFIG_FILE
  (the env var is consulted first, so it wins); drop-ins in "<file>.d/";
- drop-ins: regular files ending in .yaml/.yml (any case), non-recursive, lexical order, read
  after the main file, used even when the main file is missing; a missing file is ignored;
- last occurrence of a key wins; "key+" appends to the accumulated value;
- each key becomes --key=value (one per list item; one-letter keys -k=value), inserted right
  after the subcommand, so CLI > config file > env > default; for repeatable flags given on the
  CLI the CLI list replaces the file's list;
- values are stringified the way yaml.v2 + fmt would (true/false; ints in decimal, so an
  unquoted 0644 is the octal int 420 and becomes "420").
"""
from __future__ import annotations

import ipaddress
import os
import re

import yaml

from . import releases, util

DEFAULT_CONFIG = "/etc/rancher/k3s/config.yaml"


class ConfigError(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """YAML 1.1 like yaml.v2: 0644 is octal, yes/no/on/off are booleans (SafeLoader does both)."""


def _stringify(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_file(path: str) -> dict:
    """One config file as a mapping ({} if missing or empty)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        return {}
    try:
        doc = yaml.load(data, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"failed to parse {path}: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"failed to parse {path}: yaml: unmarshal errors: cannot unmarshal !!{type(doc).__name__} into map")
    return doc


def dropin_files(config_file: str) -> list[str]:
    d = config_file + ".d"
    try:
        names = sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return []
    out = []
    for n in names:
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p) or (os.path.islink(p) and os.path.isfile(p)):
            if n.lower().endswith((".yaml", ".yml")):
                out.append(p)
    return out


def merge(docs: list[dict]) -> dict:
    """Merge parsed files in order; returns key -> str or list[str] (insertion order kept)."""
    result: dict = {}
    for doc in docs:
        for raw_key, value in doc.items():
            key = str(raw_key)
            append = key.endswith("+")
            if append:
                key = key[:-1]
            if isinstance(value, list):
                vals = [_stringify(v) for v in value]
            else:
                vals = None
                sval = _stringify(value)
            if append and key in result:
                prev = result.pop(key)
                prev_list = prev if isinstance(prev, list) else [prev]
                result[key] = prev_list + (vals if vals is not None else [sval])
            else:
                result.pop(key, None)
                result[key] = vals if vals is not None else sval
    return result


def config_path(args: list[str], env: dict) -> str:
    """Which config file: K3S_CONFIG_FILE, then --config/-c among args, else the default."""
    if env.get("K3S_CONFIG_FILE"):
        return env["K3S_CONFIG_FILE"]
    path = DEFAULT_CONFIG
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        for name in ("--config", "-config", "-c", "--c"):
            if a == name and i + 1 < len(args):
                path = args[i + 1]
                i += 1
                break
            if a.startswith(name + "="):
                path = a.split("=", 1)[1]
                break
        i += 1
    return path


def load(args: list[str], env: dict) -> tuple[str, dict, list[str]]:
    path = config_path(args, env)
    files = ([path] if os.path.isfile(path) else []) + dropin_files(path)
    merged = merge([read_file(p) for p in files])
    return path, merged, files


_FLAG_RE = re.compile(r"^--?([A-Za-z0-9][A-Za-z0-9-]*)(=.*)?$")


def cli_flag_names(args: list[str]) -> set[str]:
    names = set()
    for a in args:
        if a == "--":
            break
        m = _FLAG_RE.match(a)
        if m:
            names.add(m.group(1))
    return names


def to_args(merged: dict, cli_args: list[str], repeatable: set[str], aliases: dict[str, str] | None = None) -> list[str]:
    """Render merged config as flag arguments to insert before the CLI arguments.

    repeatable: canonical names of slice flags; for those, a value on the CLI replaces the file's.
    aliases: alias -> canonical name, used to recognise a repeatable flag given by alias on the CLI.
    """
    aliases = aliases or {}
    on_cli = {aliases.get(n, n) for n in cli_flag_names(cli_args)}
    out = []
    for key, value in merged.items():
        canon = aliases.get(key, key)
        if canon in repeatable and canon in on_cli:
            continue
        prefix = "-" if len(key) == 1 else "--"
        values = value if isinstance(value, list) else [value]
        for v in values:
            out.append(f"{prefix}{key}={v}")
    return out


# --- critical configuration (k3s pkg/daemons/config/types.go CriticalControlArgs) ------------------
# What every server of a cluster must share; a server joining an embedded-etcd cluster fetches the
# cluster's from /v1-k3s/config and refuses to start on a difference (pkg/cluster/bootstrap.go
# compareConfig, called from bootstrap() only when the datastore is managed etcd). v1.25.3's
# fields: ClusterDNS(s), ClusterIPRange(s), ClusterDomain, DisableCCM, DisableHelmController,
# DisableNPC, DisableServiceLB, FlannelBackend, FlannelIPv6Masq, EgressSelectorMode, NoCoreDNS,
# ServiceIPRange(s); `disable` counts only through servicelb and coredns (a differing
# `disable: [traefik]` is not critical). Later releases add secrets-encryption (releases.py
# "critical-config-names") and name the mismatched fields by their cli tag.
CRITICAL_DEFAULTS = {"cluster-cidr": ["10.42.0.0/16"], "service-cidr": ["10.43.0.0/16"],
                     "cluster-domain": "cluster.local", "flannel-backend": "vxlan", "egress-selector-mode": "agent"}


def _nets(values: list[str]) -> list[str]:
    return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in values if v.strip()]


def critical_args(opts: dict, version: str) -> dict:
    """A server's critical configuration, by k3s's cli tag, normalised as k3s compares it."""
    disables = {d.strip() for d in opts.get("disable") or []}
    cluster = _nets(opts.get("cluster-cidr") or CRITICAL_DEFAULTS["cluster-cidr"])
    service = _nets(opts.get("service-cidr") or CRITICAL_DEFAULTS["service-cidr"])
    dns = [str(ipaddress.ip_address(v.strip())) for v in opts.get("cluster-dns") or [] if v.strip()]
    if not dns:  # k3s: the 10th address of each service CIDR
        dns = [str(ipaddress.ip_network(n)[10]) for n in service]
    args = {
        "cluster-cidr": cluster, "service-cidr": service, "cluster-dns": dns,
        "cluster-domain": opts.get("cluster-domain") or CRITICAL_DEFAULTS["cluster-domain"],
        "disable-cloud-controller": bool(opts.get("disable-cloud-controller")),
        "disable-helm-controller": bool(opts.get("disable-helm-controller")),
        "disable-network-policy": bool(opts.get("disable-network-policy")),
        "disable-service-lb": "servicelb" in disables,
        "NoCoreDNS": "coredns" in disables,
        "flannel-backend": opts.get("flannel-backend") or CRITICAL_DEFAULTS["flannel-backend"],
        "flannel-ipv6-masq": bool(opts.get("flannel-ipv6-masq")),
        "egress-selector-mode": opts.get("egress-selector-mode") or CRITICAL_DEFAULTS["egress-selector-mode"],
    }
    if releases.has("critical-config-names", version):
        args["secrets-encryption"] = bool(opts.get("secrets-encryption"))
    return args


def critical_mismatch(local: dict, cluster: dict, version: str) -> str | None:
    """compareConfig: None when they agree, else the error text of the release (the mismatched
    names are logged as warnings by releases that name them)."""
    cluster = dict(cluster)
    if not cluster.get("egress-selector-mode"):  # a down-level server: the local value is used
        cluster["egress-selector-mode"] = local.get("egress-selector-mode")
    differ = [k for k in sorted(set(local) | set(cluster)) if local.get(k) != cluster.get(k)]
    if not differ:
        return None
    if releases.has("critical-config-names", version):
        for name in differ:
            util.warn(f"critical configuration mismatched: {name}")
        return "critical configuration value mismatch between servers"
    util.debug(f"This is the server CriticalControlArgs: {cluster!r}")
    util.debug(f"This is the local CriticalControlArgs: {local!r}")
    return "critical configuration value mismatch"
