# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What k3s accepts in config.yaml, checked before anything changes on a host (K3S-REFERENCE §2
and §10): the keys `k3s agent` does not define, the keys a release does not define
(_k3s_releases), and node-ip / node-external-ip, which k3s parses as IP addresses only.

node-ip: the collection writes the host's ansible_host there, which may be a name. k3s refuses a
name at start ("invalid node-ip: invalid ip format '<name>'", pkg/util/net.go
ParseStringSliceToIPs, fatal), so a name is resolved here, on the host itself (its /etc/hosts
and resolver, the view k3s would have), to one address: the first IPv4 address, else the first
IPv6 address; loopback addresses do not count (Debian maps the host's own name to 127.0.1.1).
A name that does not resolve to such an address is refused with a message that names it."""

from __future__ import annotations

import ipaddress
import socket

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_releases as releases
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure

# Keys `k3s agent` does not define: an agent given one exits with
# "Incorrect Usage: flag provided but not defined" (K3S-REFERENCE §2). system-default-registry is
# a server flag in every release (k3s pkg/cli/cmds/server.go; agents get it from the server).
SERVER_ONLY_KEYS = frozenset((
    "cluster-init", "cluster-reset", "cluster-reset-restore-path", "datastore-endpoint",
    "datastore-cafile", "datastore-certfile", "datastore-keyfile", "tls-san", "tls-san-security",
    "write-kubeconfig", "write-kubeconfig-mode", "write-kubeconfig-group", "disable",
    "disable-scheduler", "disable-cloud-controller", "disable-kube-proxy", "disable-network-policy",
    "disable-helm-controller", "disable-apiserver", "disable-etcd", "disable-controller-manager",
    "agent-token", "agent-token-file", "https-listen-port", "advertise-address", "advertise-port",
    "bind-address", "cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain",
    "flannel-backend", "egress-selector-mode", "secrets-encryption", "embedded-registry",
    "etcd-expose-metrics", "etcd-snapshot-schedule-cron", "etcd-snapshot-retention", "etcd-snapshot-dir",
    "etcd-snapshot-name", "etcd-snapshot-compress", "etcd-disable-snapshots",
    "kube-apiserver-arg", "kube-controller-manager-arg", "kube-scheduler-arg", "etcd-arg",
    "default-local-storage-path", "service-node-port-range", "token-file-server",
    "system-default-registry",
))
IP_KEYS = ("node-ip", "node-external-ip")


def base_key(key):
    """The flag a config key sets ("tls-san+" appends to tls-san)."""
    return str(key).rstrip("+")


def server_only_keys(config):
    return sorted(k for k in config if base_key(k) in SERVER_ONLY_KEYS)


def release_keys(config):
    """The keys of config that only some releases define."""
    return sorted(k for k in config if base_key(k) in releases.FLAGS)


def unknown_to_release(config, version):
    """Messages for the keys the release `version` does not define."""
    return ["%s (k3s has it from %s)" % (k, releases.since(releases.FLAGS[base_key(k)]))
            for k in release_keys(config) if not releases.has(releases.FLAGS[base_key(k)], version)]


def _addresses(name, resolve):
    infos = resolve(name, None, 0, socket.SOCK_STREAM)
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if str(address) not in [str(a) for a in found]:
            found.append(address)
    return found


def resolve_ip(key, value, resolve=None):
    """One value of node-ip: an IP (returned in canonical form) or a host name resolved on this
    host to one non-loopback address; ModuleFailure otherwise."""
    value = str(value).strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    advice = "set ansible_host (or %s) to the node's IP address" % key
    try:
        names.check_hostname(value)
    except names.InvalidName:
        raise ModuleFailure("%s: %r is neither an IP address nor a host name; k3s would exit with "
                            "\"invalid %s: invalid ip format\" (%s)" % (key, value, key, advice)) from None
    try:
        found = _addresses(value, resolve or socket.getaddrinfo)
    except (OSError, UnicodeError) as exc:
        raise ModuleFailure("%s: %r is not an IP address and does not resolve on this host (%s); k3s takes IP "
                            "addresses only (%s)" % (key, value, exc, advice)) from None
    usable = [a for a in found if not a.is_loopback]
    if not usable:
        raise ModuleFailure("%s: %r resolves on this host only to loopback addresses (%s): other nodes could not "
                            "reach the node there (%s)" % (key, value, ", ".join(str(a) for a in found), advice))
    chosen = next((a for a in usable if a.version == 4), usable[0])
    return str(chosen)


def resolve_ips(config, resolve=None):
    """config with node-ip / node-external-ip names resolved (lists stay lists, a comma-separated
    string stays one); the input is not changed."""
    result = dict(config)
    for key in config:
        if base_key(key) not in IP_KEYS or config[key] in (None, "", []):
            continue
        value = config[key]
        items = value if isinstance(value, list) else str(value).split(",")
        resolved = []
        for item in items:
            resolved.extend(resolve_ip(base_key(key), part, resolve) for part in str(item).split(",") if part.strip())
        result[key] = resolved if isinstance(value, list) else ",".join(resolved)
    return result


# What k3s logs while it retries forever (the service stays "activating"): line fragment -> cause.
# k3s pkg/agent/config/config.go retries the token check and the agent configuration every 2 s;
# the agent authenticates as user "node" whatever the token's user (pkg/clientaccess/token.go
# WithUser), so a server token is refused when the cluster has a separate agent token.
JOURNAL_CAUSES = (
    ("token CA hash does not match", "the token's CA hash is not this cluster's CA"),
    ("401 Unauthorized", "the server refuses this node's token (401 Unauthorized): an agent needs the agent "
                         "token when the cluster has one (seal_agent_token), else the cluster token"),
    ("critical configuration value mismatch", "this server's critical configuration (cluster-cidr, "
                                              "service-cidr, flannel-backend, disable servicelb/coredns, ...) "
                                              "differs from the cluster's"),
    ("invalid node-ip", "node-ip is not an IP address"),
)


def journal_hint(lines):
    """"; <cause>" for the last journal line that names a known cause, else ""."""
    for line in reversed(lines or []):
        for fragment, cause in JOURNAL_CAUSES:
            if fragment in line:
                return "; %s" % cause
    return ""


# Sealer's network env keys (sealer common/common.go EnvPodCIDR, EnvSvcCIDR, EnvCertSANs; CertSANs
# is split on ',' as pkg/runtime/kubernetes/init.go initKubeadmConfig does) and the k3s server
# flags that mean the same (k3s pkg/cli/cmds/server.go: cluster-cidr, service-cidr, tls-san,
# cluster-domain). DNSDomain is not a sealer env key (sealer takes the DNS domain from kubeadm's
# networking.dnsDomain): seal.cluster reads it under that name for k3s's cluster-domain.
SEALER_ENV_KEYS = (("PodCIDR", "cluster-cidr"), ("SvcCIDR", "service-cidr"), ("CertSANs", "tls-san"),
                   ("DNSDomain", "cluster-domain"))


def _cidrs(key, value):
    items = [item.strip() for item in str(value).split(",")]
    for item in items:
        try:
            if "/" not in item:
                raise ValueError(item)
            ipaddress.ip_network(item, strict=False)  # k3s: net.ParseCIDR, host bits allowed (pkg/cli/server/server.go)
        except ValueError:
            raise ModuleFailure("env %s: %r is not a network in CIDR form (k3s would refuse %s)" % (key, item, value)) from None
    return ",".join(items)


def from_sealer_env(env):
    """The k3s server config the cluster env's network keys give ({} when it has none).
    tls-san is a list (added to the collection's own); the others are strings."""
    config = {}
    for key, flag in SEALER_ENV_KEYS:
        value = (env or {}).get(key)
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if flag in ("cluster-cidr", "service-cidr"):
            config[flag] = _cidrs(key, value)
        elif flag == "tls-san":
            config[flag] = [item.strip() for item in str(value).split(",") if item.strip()]
        else:
            try:
                config[flag] = names.check_domain(str(value).strip())
            except names.InvalidName as exc:
                raise ModuleFailure("env %s: %s" % (key, exc.reason)) from None
    return config
