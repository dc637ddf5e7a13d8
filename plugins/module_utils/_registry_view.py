# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What clients of the cluster's registry need, computed from the Clusterfile's
``spec.registry`` (``seal_registry``) and the inventory alone, so that every role that needs it
(prepare for /etc/hosts, the registry role, a runtime for registries.yaml) gets the same answer
without a task having run first.

- ``resolve(spec)``: local or external registry, domain, port, credentials, HA, extra SANs.
- ``registry_servers(spec, masters)``: which hosts run the local registry (master0, or every
  master with ``ha: true``).
- ``hosts_entries(...)``: the /etc/hosts entries for the domain on one host. A registry host
  resolves the domain to itself (with HA every master is served by its own registry, so that
  no master depends on another one); any other host gets every registry host's address,
  master0 first, each on its own line: resolvers return all of them and clients (containerd,
  curl, skopeo) fall through to the next address when one refuses the connection.
- ``render_registries(...)``: k3s ``registries.yaml`` content (K3S-REFERENCE.md §5).
"""

from __future__ import annotations

from ansible_collections.seal.cluster.plugins.module_utils import _names as names

# where podman/skopeo look for a registry's CA (<CA_DIR>/<host>/ca.crt) and k3s's registries.yaml points
CA_DIR = "/etc/containers/certs.d"
DEFAULT_DOMAIN = "sea.hub"
DEFAULT_PORT = 5000
# registries whose images the private registry serves (the cluster image caches them with the
# registry's domain dropped: docker.io/library/busybox:1.36 -> <domain>:<port>/library/busybox:1.36)
DEFAULT_MIRRORS = ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io")


class RegistrySpecError(ValueError):
    """spec.registry is not usable; the message names the field."""


def resolve(spec):
    """Normalized settings from a Clusterfile spec.registry ({localRegistry: ..} or {externalRegistry: ..}).
    An externalRegistry wins: no local registry is deployed then (sealer's rule)."""
    spec = dict(spec or {})
    if spec.get("externalRegistry"):
        kind, item = "external", dict(spec["externalRegistry"])
    else:
        kind, item = "local", dict(spec.get("localRegistry") or {})
    where = "spec.registry.%sRegistry" % kind
    domain = item.get("domain") or DEFAULT_DOMAIN
    try:
        names.check_domain(domain, where + ".domain")
        if item.get("username"):
            names.check_registry_username(item["username"], where + ".username")
    except names.InvalidName as exc:
        raise RegistrySpecError(str(exc)) from None
    try:
        port = int(item.get("port") or DEFAULT_PORT)
    except (TypeError, ValueError):
        raise RegistrySpecError("%s.port: %r is not a port number" % (where, item.get("port"))) from None
    if not 0 < port < 65536:
        raise RegistrySpecError("%s.port: %d is not a port number" % (where, port))
    username = item.get("username") or None
    password = item.get("password")
    if username and not password:
        raise RegistrySpecError("%s: username %r is set without a password" % (where, username))
    san = ((item.get("cert") or {}).get("subjectAltName") or {})
    insecure = bool(item.get("insecure", False))
    return {
        "mode": kind,
        "domain": domain,
        "port": port,
        "host": registry_host(domain, port, insecure),
        "username": username,
        "password": password if username else None,
        "ha": bool(item.get("ha", False)) if kind == "local" else False,
        "insecure": insecure,
        "sans": [str(n) for n in (san.get("dnsNames") or []) + (san.get("ips") or [])],
    }


def ca_file(host):
    """Where clients find the CA of the registry named host (``<domain>[:<port>]``, validated)."""
    return "%s/%s/ca.crt" % (CA_DIR, names.check_registry_host(host, "registry host"))


def registry_host(domain, port, insecure=False):
    """The registry's name as image references and registries.yaml spell it."""
    default = 80 if insecure else 443
    return domain if port == default else "%s:%d" % (domain, port)


def endpoint(settings):
    return "%s://%s" % ("http" if settings["insecure"] else "https", settings["host"])


def registry_servers(settings, masters):
    """Inventory names of the hosts that run the local registry (none for an external one)."""
    masters = list(masters or [])
    if settings["mode"] != "local" or not masters:
        return []
    return masters if settings["ha"] else masters[:1]


def hosts_entries(settings, server_addresses, own_address=None):
    """[{ip, hostnames}] for the domain in one host's /etc/hosts block."""
    if settings["mode"] != "local" or not server_addresses:
        return []
    if own_address in server_addresses:
        return [{"ip": own_address, "hostnames": [settings["domain"]]}]
    return [{"ip": addr, "hostnames": [settings["domain"]]} for addr in server_addresses]


def render_registries(settings, ca_file=None, with_auth=True, mirrors=DEFAULT_MIRRORS):
    """registries.yaml content for k3s (and any runtime that reads the same schema):
    every mirrored registry and the registry's own name point at the one endpoint; configs
    carry the CA file (unless insecure or not given) and, when with_auth, the credentials."""
    url = endpoint(settings)
    names = [m for m in mirrors if m != settings["host"]] + [settings["host"]]
    result = {"mirrors": {name: {"endpoint": [url]} for name in names}}
    config = {}
    if settings["username"] and with_auth:
        config["auth"] = {"username": settings["username"], "password": settings["password"]}
    if ca_file and not settings["insecure"]:
        config["tls"] = {"ca_file": ca_file}
    if config:
        result["configs"] = {settings["host"]: config}
    return result


def registry_auth(settings):
    """{host: {username, password}} (empty without a username): the part of registries.yaml
    that must never be logged, kept apart so that the rest can be shown in a diff."""
    if not settings["username"]:
        return {}
    return {settings["host"]: {"username": settings["username"], "password": settings["password"]}}
