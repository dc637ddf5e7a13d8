# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One validator per kind of name that reaches a file, a path, a unit or a command line.

Each ``check_*`` returns the value (IPs in canonical form) or raises ``InvalidName`` whose
message names the field. Used where a value enters: the Clusterfile parser (controller) and the
modules' argument checks (hosts), so stdlib only.

Kubernetes' own rules, as k8s.io/apimachinery defines them:

- label key = ``IsLabelKey`` (formerly ``IsQualifiedName``,
  staging/src/k8s.io/apimachinery/pkg/api/validate/content/kube.go): an optional prefix that is
  a DNS-1123 subdomain, then ``/``, then a name of at most 63 characters matching
  ``([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]``;
- label value = ``IsLabelValue`` (same file): empty, or at most 63 characters of the name form;
- DNS-1123 label / subdomain = ``IsDNS1123Label`` / ``IsDNS1123Subdomain``
  (staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go): ``[a-z0-9]([-a-z0-9]*[a-z0-9])?``
  (63 at most), dot-separated (253 at most); a Node's name is a DNS-1123 subdomain;
- taint = kubectl's ``parseTaint`` (staging/src/k8s.io/kubectl/pkg/cmd/taint/utils.go):
  ``key[=value]:effect``, key a label key, value a label value, effect one of NoSchedule,
  PreferNoSchedule, NoExecute (the effect is required when a taint is added).

The node-name rule is k3s's (pkg/util/net.go ``GetHostnameAndIPs``): ``--node-name`` if given,
else ``os.Hostname()``, lower-cased either way."""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
import socket

# Patterns are used with fullmatch: '$' would also match before a trailing newline.
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS_LABEL = re.compile(_DNS_LABEL)
DNS_SUBDOMAIN = re.compile(r"%s(?:\.%s)*" % (_DNS_LABEL, _DNS_LABEL))
_HOST_LABEL = r"[A-Za-z0-9](?:[-A-Za-z0-9]*[A-Za-z0-9])?"
HOST_NAME = re.compile(r"%s(?:\.%s)*" % (_HOST_LABEL, _HOST_LABEL))
_QNAME = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME = re.compile(_QNAME)
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Linux interface names: at most IFNAMSIZ-1 = 15 bytes, no '/', no whitespace; we keep to a safe subset.
SCOPE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

LABEL_RULE = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


class InvalidName(ModuleFailure, ValueError):
    """A value is not a valid name of its kind; ``str()`` names the field (when given) and why.
    A ModuleFailure, so a module's main() reports it like any other failure."""

    def __init__(self, field, value, problem):
        self.field, self.value, self.problem = field, value, problem
        text = "%r %s" % (value, problem)
        super().__init__("%s: %s" % (field, text) if field else text)

    @property
    def reason(self):
        """The message without the field (for callers that say where themselves)."""
        return "%r %s" % (self.value, self.problem)


def _text(value, field, kind):
    if not isinstance(value, str):
        raise InvalidName(field, value, "is not a %s (not a string)" % kind)
    return value


def _subdomain_problem(value):
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return "is longer than 253 characters"
    if not DNS_SUBDOMAIN.fullmatch(value):
        return ("is not a DNS-1123 subdomain (lowercase letters, digits and '-', in dot-separated labels "
                "that start and end with a letter or digit)")
    if any(len(label) > 63 for label in value.split(".")):
        return "has a label longer than 63 characters"
    return None


def check_dns_label(value, field=None, kind="DNS-1123 label"):
    value = _text(value, field, kind)
    if not value:
        raise InvalidName(field, value, "must not be empty")
    if len(value) > 63 or not DNS_LABEL.fullmatch(value):
        raise InvalidName(field, value, "is not a %s (at most 63 lowercase letters, digits or '-', "
                                        "starting and ending with a letter or digit)" % kind)
    return value


def check_dns_subdomain(value, field=None):
    value = _text(value, field, "DNS-1123 subdomain")
    problem = _subdomain_problem(value)
    if problem:
        raise InvalidName(field, value, problem)
    return value


def check_hostname(value, field=None):
    """An RFC 1123 host name (letters of either case, digits, '-'; dot-separated labels of at
    most 63 characters, none empty and none starting or ending with '-'; 253 at most).
    An IPv4 address passes too, as RFC 1123 allows."""
    value = _text(value, field, "host name")
    if not value:
        raise InvalidName(field, value, "must not be empty")
    if len(value) > 253 or not HOST_NAME.fullmatch(value) or any(len(label) > 63 for label in value.split(".")):
        raise InvalidName(field, value, "is not an RFC 1123 host name (letters, digits and '-', in dot-separated labels "
                                        "of at most 63 characters that start and end with a letter or digit)")
    return value


check_domain = check_hostname


def check_ip(value, field=None):
    """An IPv4 or IPv6 address; returned in canonical form. An IPv6 scope id (``%eth0``) must look
    like an interface name."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        value = str(value)
    value = _text(value, field, "IP address")
    if CONTROL.search(value):
        raise InvalidName(field, value, "is not an IP address (it holds a control character)")
    address, _sep, scope = value.partition("%")
    if _sep and not SCOPE_ID.fullmatch(scope):
        raise InvalidName(field, value, "has an IPv6 scope id that is not an interface name "
                                        "(at most 15 letters, digits, '_', '.' or '-')")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise InvalidName(field, value, "is not an IP address") from None
    if _sep and parsed.version != 6:
        raise InvalidName(field, value, "is not an IP address (a scope id needs an IPv6 address)")
    return str(parsed) + ("%" + scope if _sep else "")


def check_label_key(value, field=None):
    value = _text(value, field, "label key")
    parts = value.split("/")
    if len(parts) > 2:
        raise InvalidName(field, value, "is not a label key (at most one '/': [prefix/]name)")
    if len(parts) == 2:
        problem = _subdomain_problem(parts[0])
        if problem:
            raise InvalidName(field, value, "is not a label key: its prefix %r %s" % (parts[0], problem))
    name = parts[-1]
    if not name or len(name) > 63 or not QUALIFIED_NAME.fullmatch(name):
        raise InvalidName(field, value, "is not a label key: its name part must be %s" % LABEL_RULE)
    return value


def check_label_value(value, field=None):
    value = _text(value, field, "label value")
    if value and (len(value) > 63 or not QUALIFIED_NAME.fullmatch(value)):
        raise InvalidName(field, value, "is not a label value (empty, or %s)" % LABEL_RULE)
    return value


def parse_taint(value, field=None):
    """``key[=value]:Effect`` -> {key, value, effect} (kubectl's grammar, effect required)."""
    text = _text(value, field, "taint")
    usage = "key[=value]:%s" % "|".join(TAINT_EFFECTS)
    parts = text.split(":")
    if len(parts) != 2:
        raise InvalidName(field, text, "is not a taint (%s)" % usage)
    spec, effect = parts
    if effect not in TAINT_EFFECTS:
        raise InvalidName(field, text, "is not a taint: effect %r is not one of %s" % (effect, ", ".join(TAINT_EFFECTS)))
    key, sep, taint_value = spec.partition("=")
    if "=" in taint_value:
        raise InvalidName(field, text, "is not a taint (%s)" % usage)
    try:
        check_label_key(key)
        if sep:
            check_label_value(taint_value)
    except InvalidName as exc:
        raise InvalidName(field, text, "is not a taint: %s" % exc.reason) from None
    return {"key": key, "value": taint_value, "effect": effect}


def check_cluster_name(value, field=None):
    """A cluster's name names directories (<data_root>/<name>, /etc/seal/<name>), systemd units
    (seal-registry-<name>.service) and marker lines: a DNS-1123 label."""
    return check_dns_label(value, field, kind="cluster name: a DNS-1123 label")


def check_node_name(value, field=None):
    """A Kubernetes Node name: a DNS-1123 subdomain."""
    return check_dns_subdomain(value, field)


def node_name(configured=None):
    """The name k3s registers a node under: ``node-name`` if set, else the host name, lower-cased."""
    return str(configured or socket.gethostname()).lower()


def check_env_key(value, field=None):
    value = _text(value, field, "environment variable name")
    if not ENV_KEY.fullmatch(value):
        raise InvalidName(field, value, "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    return value


def check_env_value(value, field=None):
    value = _text(value, field, "environment value")
    if "\n" in value or "\r" in value or "\0" in value:
        raise InvalidName(field, value, "must not hold a newline or NUL")
    return value


def check_registry_username(value, field=None):
    """A registry user name goes into an htpasswd line ``user:hash``: no ':' and no control character."""
    value = _text(value, field, "user name")
    if not value:
        raise InvalidName(field, value, "must not be empty")
    if ":" in value or CONTROL.search(value):
        raise InvalidName(field, value, "must not contain ':' or a control character (it is an htpasswd line)")
    return value


def check_registry_host(value, field=None):
    """``<domain>`` or ``<domain>:<port>``, the registry's name as image references and
    /etc/containers/certs.d spell it."""
    value = _text(value, field, "registry host")
    domain, sep, port = value.partition(":")
    try:
        check_domain(domain)
    except InvalidName as exc:
        raise InvalidName(field, value, "is not a registry host: %s" % exc.reason) from None
    if sep and not (port.isdigit() and port[0] != "0" and 0 < int(port) < 65536):
        raise InvalidName(field, value, "is not a registry host: port %r is not 1-65535" % port)
    return value


def check_absolute_path(value, field=None):
    """An absolute, normalised path (no '.', '..' or empty components, no trailing '/'), not '/'."""
    value = _text(value, field, "path")
    if CONTROL.search(value):
        raise InvalidName(field, value, "is not a usable path (it holds a control character)")
    if not value.startswith("/") or value == "/" or os.path.normpath(value) != value or value.startswith("//"):
        raise InvalidName(field, value, "must be an absolute, normalised path other than '/' (no '.', '..' or '//')")
    return value
