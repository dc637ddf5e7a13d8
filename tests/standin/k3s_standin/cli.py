"""k3s's command line: flag tables for `server` and `agent`, parsed with Go `flag` semantics
(k3s uses urfave/cli v1 on top of Go's flag package: -flag and --flag, -flag=value or
-flag value, bools only as -flag or -flag=bool; an unknown flag prints
"Incorrect Usage: flag provided but not defined: -<name>" and exits 1).

Flag names, aliases and env vars: docs.k3s.io cli/server.md and cli/agent.md (v1.25-era set,
plus flags from later releases that configs commonly carry). Server flags include every agent
flag (servers run an agent). Flags that depend on the release come from releases.py;
`system-default-registry` is a server flag only (k3s pkg/cli/cmds/server.go).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import config as cfgmod, releases, util


@dataclass
class Flag:
    name: str
    kind: str  # str | bool | slice | int
    aliases: tuple = ()
    env: str = ""
    default: object = None
    split: bool = False  # comma-separated values split (k3s does for node-ip, tls-san, disable...)


def _f(spec: str, default=None, split=False) -> Flag:
    # "name,alias:kind:ENV"
    parts = spec.split(":")
    names = parts[0].split(",")
    kind = parts[1] if len(parts) > 1 else "str"
    env = parts[2] if len(parts) > 2 else ""
    return Flag(names[0], kind, tuple(names[1:]), env, default, split)


COMMON = [
    _f("config,c:str:K3S_CONFIG_FILE", cfgmod.DEFAULT_CONFIG),
    _f("debug:bool:K3S_DEBUG"),
    _f("v:int", 0), _f("vmodule"), _f("log,l"), _f("alsologtostderr:bool"),
]

AGENT_NODE = [
    _f("data-dir,d:str:K3S_DATA_DIR", "/var/lib/rancher/k3s"),
    _f("node-name:str:K3S_NODE_NAME"), _f("with-node-id:bool"),
    _f("node-label:slice"), _f("node-taint:slice"),
    _f("image-credential-provider-bin-dir", "/var/lib/rancher/credentialprovider/bin"),
    _f("image-credential-provider-config", "/var/lib/rancher/credentialprovider/config.yaml"),
    _f("docker:bool"), _f("container-runtime-endpoint"), _f("default-runtime"),
    _f("pause-image", "rancher/mirrored-pause:3.6"), _f("snapshotter", "overlayfs"),
    _f("private-registry", "/etc/rancher/k3s/registries.yaml"),
    _f("node-ip,i:slice", split=True), _f("node-external-ip:slice", split=True),
    _f("resolv-conf:str:K3S_RESOLV_CONF"), _f("flannel-iface"), _f("flannel-conf"), _f("flannel-cni-conf"),
    _f("kubelet-arg:slice"), _f("kube-proxy-arg:slice"), _f("protect-kernel-defaults:bool"),
    _f("rootless:bool"), _f("prefer-bundled-bin:bool"), _f("selinux:bool:K3S_SELINUX"),
    _f("lb-server-port:int:K3S_LB_SERVER_PORT", 6444), _f("enable-pprof:bool"),
    _f("airgap-extra-registry:slice"), _f("vpn-auth:str:K3S_VPN_AUTH"), _f("vpn-auth-file:str:K3S_VPN_AUTH_FILE"),
    _f("disable-apiserver-lb:bool"),
]

AGENT_ONLY = [
    _f("token,t:str:K3S_TOKEN"), _f("token-file:str:K3S_TOKEN_FILE"), _f("server,s:str:K3S_URL"),
]

SERVER_ONLY = [
    _f("bind-address", "0.0.0.0"), _f("https-listen-port:int", 6443), _f("supervisor-port:int"),
    _f("apiserver-port:int"), _f("apiserver-bind-address"),
    _f("advertise-address"), _f("advertise-port:int"),
    _f("tls-san:slice", split=True), _f("tls-san-security:bool"),
    _f("cluster-cidr:slice", split=True), _f("service-cidr:slice", split=True), _f("service-node-port-range", "30000-32767"),
    _f("cluster-dns:slice", split=True), _f("cluster-domain", "cluster.local"),
    _f("flannel-backend", "vxlan"), _f("flannel-ipv6-masq:bool"), _f("flannel-external-ip:bool"),
    _f("egress-selector-mode", "agent"), _f("servicelb-namespace", "kube-system"),
    _f("write-kubeconfig,o:str:K3S_KUBECONFIG_OUTPUT"), _f("write-kubeconfig-mode:str:K3S_KUBECONFIG_MODE"),
    _f("write-kubeconfig-group:str:K3S_KUBECONFIG_GROUP"), _f("helm-job-image"),
    _f("token,t:str:K3S_TOKEN"), _f("token-file:str:K3S_TOKEN_FILE"),
    _f("agent-token:str:K3S_AGENT_TOKEN"), _f("agent-token-file:str:K3S_AGENT_TOKEN_FILE"),
    _f("server,s:str:K3S_URL"), _f("cluster-init:bool:K3S_CLUSTER_INIT"),
    _f("cluster-reset:bool:K3S_CLUSTER_RESET"), _f("cluster-reset-restore-path"),
    _f("kube-apiserver-arg:slice"), _f("etcd-arg:slice"), _f("kube-controller-manager-arg:slice"),
    _f("kube-scheduler-arg:slice"), _f("kube-cloud-controller-manager-arg:slice"),
    _f("kine-tls:bool"), _f("datastore-endpoint:str:K3S_DATASTORE_ENDPOINT"),
    _f("datastore-cafile:str:K3S_DATASTORE_CAFILE"), _f("datastore-certfile:str:K3S_DATASTORE_CERTFILE"),
    _f("datastore-keyfile:str:K3S_DATASTORE_KEYFILE"),
    _f("etcd-expose-metrics:bool"), _f("etcd-disable-snapshots:bool"), _f("etcd-snapshot-name", "etcd-snapshot"),
    _f("etcd-snapshot-schedule-cron", "0 */12 * * *"), _f("etcd-snapshot-retention:int", 5), _f("etcd-snapshot-dir"),
    _f("etcd-snapshot-compress:bool"), _f("etcd-s3:bool"), _f("etcd-s3-endpoint", "s3.amazonaws.com"),
    _f("etcd-s3-endpoint-ca"), _f("etcd-s3-skip-ssl-verify:bool"), _f("etcd-s3-access-key:str:AWS_ACCESS_KEY_ID"),
    _f("etcd-s3-secret-key:str:AWS_SECRET_ACCESS_KEY"), _f("etcd-s3-bucket"), _f("etcd-s3-region", "us-east-1"),
    _f("etcd-s3-folder"), _f("etcd-s3-insecure:bool"), _f("etcd-s3-timeout", "5m0s"),
    _f("default-local-storage-path"), _f("disable:slice", split=True), _f("disable-scheduler:bool"),
    _f("disable-cloud-controller:bool"), _f("disable-kube-proxy:bool"), _f("disable-network-policy:bool"),
    _f("disable-helm-controller:bool"), _f("disable-apiserver:bool"), _f("disable-controller-manager:bool"),
    _f("disable-etcd:bool"), _f("disable-agent:bool"), _f("embedded-registry:bool"),
    _f("secrets-encryption:bool"), _f("secrets-encryption-provider"),
    _f("enable-pprof:bool"), _f("system-default-registry:str:K3S_SYSTEM_DEFAULT_REGISTRY"),
]


def _table(flags: list[Flag]) -> dict[str, Flag]:
    t: dict[str, Flag] = {}
    for fl in flags:
        t.setdefault(fl.name, fl)
    return t


def _release_flags(version: str) -> list[Flag]:
    """Agent flags (servers have them too) that only some releases define (releases.py)."""
    return [_f("disable-default-registry-endpoint:bool")] if releases.has("disable-default-registry-endpoint", version) else []


def server_flags(version: str = util.VERSION) -> dict[str, Flag]:
    return _table(COMMON + SERVER_ONLY + AGENT_NODE + _release_flags(version))


def agent_flags(version: str = util.VERSION) -> dict[str, Flag]:
    return _table(COMMON + AGENT_ONLY + AGENT_NODE + _release_flags(version))


SERVER_FLAGS = server_flags()
AGENT_FLAGS = agent_flags()


class UsageError(Exception):
    """Incorrect Usage (urfave/cli)."""


def _lookup(table: dict[str, Flag]) -> dict[str, Flag]:
    idx = {}
    for fl in table.values():
        idx[fl.name] = fl
        for a in fl.aliases:
            idx[a] = fl
    return idx


def aliases(table: dict[str, Flag]) -> dict[str, str]:
    return {a: fl.name for fl in table.values() for a in fl.aliases}


def parse_flags(table: dict[str, Flag], args: list[str]) -> tuple[dict, list[str], set[str]]:
    """Go flag.Parse: returns (values, positional args, names set explicitly)."""
    idx = _lookup(table)
    values: dict = {}
    explicit: set[str] = set()
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        name = a[2:] if a.startswith("--") else a[1:]
        if not name or name.startswith("-") or name.startswith("="):
            raise UsageError(f"bad flag syntax: {a}")
        val = None
        if "=" in name:
            name, val = name.split("=", 1)
        if name in ("h", "help"):
            raise UsageError("help requested")
        fl = idx.get(name)
        if fl is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if fl.kind == "bool":
            if val is None:
                bval = True
            else:
                lv = val.lower()
                if lv in ("1", "t", "true"):
                    bval = True
                elif lv in ("0", "f", "false"):
                    bval = False
                else:
                    raise UsageError(f'invalid boolean value "{val}" for -{name}: parse error')
            values[fl.name] = bval
        else:
            if val is None:
                i += 1
                if i >= len(args):
                    raise UsageError(f"flag needs an argument: -{name}")
                val = args[i]
            if fl.kind == "int":
                try:
                    values[fl.name] = int(val, 0)
                except ValueError:
                    raise UsageError(f'invalid value "{val}" for flag -{name}: parse error') from None
            elif fl.kind == "slice":
                parts = [p for p in val.split(",")] if fl.split else [val]
                values.setdefault(fl.name, []).extend(p.strip() for p in parts if p.strip() or not fl.split)
            else:
                values[fl.name] = val
        explicit.add(fl.name)
        i += 1
    return values, args[i:], explicit


def resolve(table: dict[str, Flag], cli_args: list[str], env: dict | None = None, server: bool = True):
    """Apply config files, then parse; returns (opts, positional, info).

    For `server`, config keys that are not server flags are dropped with k3s's warning; for
    `agent` they are passed through and rejected by the flag parser.
    """

    env = dict(os.environ if env is None else env)
    path, merged, files = cfgmod.load(cli_args, env)
    if server:
        idx = _lookup(table)
        for key in list(merged):
            if key not in idx:
                util.warn(f"Unknown flag --{key} found in config.yaml, skipping")
                merged.pop(key)
    repeatable = {fl.name for fl in table.values() if fl.kind == "slice"}
    injected = cfgmod.to_args(merged, cli_args, repeatable, aliases(table))
    values, positional, explicit = parse_flags(table, injected + list(cli_args))
    opts = {}
    for fl in table.values():
        if fl.name in values:
            opts[fl.name] = values[fl.name]
        elif fl.env and env.get(fl.env, "") != "":
            ev = env[fl.env]
            if fl.kind == "bool":
                opts[fl.name] = ev.lower() in ("1", "t", "true")
            elif fl.kind == "int":
                opts[fl.name] = int(ev, 0)
            elif fl.kind == "slice":
                opts[fl.name] = [p for p in ev.split(",") if p]
            else:
                opts[fl.name] = ev
        elif fl.kind == "slice":
            opts[fl.name] = list(fl.default or [])
        elif fl.kind == "bool":
            opts[fl.name] = bool(fl.default)
        else:
            opts[fl.name] = fl.default
    return opts, positional, {"config": path, "files": files, "injected": injected, "explicit": explicit}


def usage_text(cmd: str, table: dict[str, Flag]) -> str:
    lines = [f"NAME:\n   k3s {cmd} - Run {'management server' if cmd == 'server' else 'node agent'}\n",
             f"USAGE:\n   k3s {cmd} [OPTIONS]\n", "OPTIONS:"]
    for fl in sorted(table.values(), key=lambda f: f.name):
        names = ", ".join(("--" if len(n) > 1 else "-") + n for n in (fl.name, *fl.aliases))
        env = f" [${fl.env}]" if fl.env else ""
        lines.append(f"   {names}{' value' if fl.kind != 'bool' else ''}{env}")
    return "\n".join(lines) + "\n"
