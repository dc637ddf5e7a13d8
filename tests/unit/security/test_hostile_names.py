"""Hostile names against the one module of name validators (plugins/module_utils/_names.py):
each kind refuses what could reach a path, a file line, a unit name or a command line, with
an error that names the field; Kubernetes' own rules for label keys, values and taints."""
import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.modules import k3s_node_labels
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf

HOST_RULE = ("is not an RFC 1123 host name (letters, digits and '-', in dot-separated labels of at most 63 "
             "characters that start and end with a letter or digit)")
LABEL_RULE = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
CLUSTER_RULE = ("is not a cluster name: a DNS-1123 label (at most 63 lowercase letters, digits or '-', "
                "starting and ending with a letter or digit)")


def refused(check, value, field="f"):
    with pytest.raises(names.InvalidName) as err:
        check(value, field)
    return str(err.value)


@pytest.mark.parametrize("value", ["..", ".", "", "-a.b", "a-.b", "a..b", ".a", "a.", "a b", "a\nb", "a/b", "a:1", "a\n",
                                   "x" * 64, ".".join(["a" * 63] * 5)])
def test_host_names_and_domains_refused(value):
    expected = "f: %r must not be empty" % value if not value else "f: %r %s" % (value, HOST_RULE)
    assert refused(names.check_hostname, value) == expected
    assert names.check_domain is names.check_hostname


@pytest.mark.parametrize("value", ["sea.hub", "Harbor.Local", "a", "10.0.0.1", "x-1.example.com", "a" * 63])
def test_host_names_accepted(value):
    assert names.check_hostname(value, "f") == value


@pytest.mark.parametrize("value, canonical", [
    ("10.0.0.1", "10.0.0.1"), ("2001:DB8:0:0::1", "2001:db8::1"), ("fe80::1%eth0", "fe80::1%eth0"),
    ("fe80::1%enp0s31f6", "fe80::1%enp0s31f6"),
])
def test_ips_in_canonical_form(value, canonical):
    assert names.check_ip(value, "f") == canonical


@pytest.mark.parametrize("value, message", [
    ("fe80::1%eth0\n# END seal.cluster c1", "is not an IP address (it holds a control character)"),
    ("fe80::1%eth0/x", "has an IPv6 scope id that is not an interface name (at most 15 letters, digits, '_', '.' or '-')"),
    ("fe80::1%../../etc", "has an IPv6 scope id that is not an interface name (at most 15 letters, digits, '_', '.' or '-')"),
    ("fe80::1%", "has an IPv6 scope id that is not an interface name (at most 15 letters, digits, '_', '.' or '-')"),
    ("fe80::1%a-very-long-interface", "has an IPv6 scope id that is not an interface name "
                                      "(at most 15 letters, digits, '_', '.' or '-')"),
    ("10.0.0.1\n", "is not an IP address (it holds a control character)"),
    ("10.0.0.1%eth0", "is not an IP address (a scope id needs an IPv6 address)"),
    ("010.0.0.1", "is not an IP address"),
    ("10.0.0.256", "is not an IP address"),
    ("sea.hub", "is not an IP address"),
])
def test_ips_refused(value, message):
    assert refused(names.check_ip, value) == "f: %r %s" % (value, message)


@pytest.mark.parametrize("value", ["zone", "example.com/tier", "A_b.c-d", "kubernetes.io/hostname", "a" * 63,
                                   "%s/x" % ("a" * 63 + "." + "b" * 63)])
def test_label_keys_accepted(value):
    assert names.check_label_key(value, "f") == value


@pytest.mark.parametrize("value, message", [
    ("-rf", "is not a label key: its name part must be " + LABEL_RULE),
    ("--kubeconfig=/tmp/x", "is not a label key (at most one '/': [prefix/]name)"),
    ("a/b/c", "is not a label key (at most one '/': [prefix/]name)"),
    ("/x", "is not a label key: its prefix '' must not be empty"),
    ("example.com/", "is not a label key: its name part must be " + LABEL_RULE),
    ("Example.com/x", "is not a label key: its prefix 'Example.com' is not a DNS-1123 subdomain (lowercase letters, "
                      "digits and '-', in dot-separated labels that start and end with a letter or digit)"),
    ("a" * 64, "is not a label key: its name part must be " + LABEL_RULE),
    ("", "is not a label key: its name part must be " + LABEL_RULE),
    ("zone\n", "is not a label key: its name part must be " + LABEL_RULE),
])
def test_label_keys_refused(value, message):
    assert refused(names.check_label_key, value) == "f: %r %s" % (value, message)


@pytest.mark.parametrize("value", ["", "a", "gold", "1.25", "A-b_c.d", "x" * 63])
def test_label_values_accepted(value):
    assert names.check_label_value(value, "f") == value


@pytest.mark.parametrize("value", ["-x", "x-", "a b", "x" * 64, "{{ lookup('pipe','id') }}", "a\nb", "a/b", "gold\n"])
def test_label_values_refused(value):
    assert refused(names.check_label_value, value) == "f: %r is not a label value (empty, or %s)" % (value, LABEL_RULE)


@pytest.mark.parametrize("text, parsed", [
    ("dedicated=infra:NoSchedule", {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}),
    ("special:NoExecute", {"key": "special", "value": "", "effect": "NoExecute"}),
    ("k=:PreferNoSchedule", {"key": "k", "value": "", "effect": "PreferNoSchedule"}),
    ("node-role.kubernetes.io/master:NoSchedule", {"key": "node-role.kubernetes.io/master", "value": "", "effect": "NoSchedule"}),
])
def test_taints_accepted(text, parsed):
    assert names.parse_taint(text, "f") == parsed


TAINT_USAGE = "(key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"


@pytest.mark.parametrize("text, message", [
    ("oops", "is not a taint " + TAINT_USAGE),
    ("k=v", "is not a taint " + TAINT_USAGE),
    ("a:b:NoSchedule", "is not a taint " + TAINT_USAGE),
    ("k=v=w:NoSchedule", "is not a taint " + TAINT_USAGE),
    ("k:Sometimes", "is not a taint: effect 'Sometimes' is not one of NoSchedule, PreferNoSchedule, NoExecute"),
    ("-k:NoSchedule", "is not a taint: '-k' is not a label key: its name part must be " + LABEL_RULE),
    (":NoSchedule", "is not a taint: '' is not a label key: its name part must be " + LABEL_RULE),
    ("a/b/c:NoSchedule", "is not a taint: 'a/b/c' is not a label key (at most one '/': [prefix/]name)"),
    ("k=-v:NoSchedule", "is not a taint: '-v' is not a label value (empty, or %s)" % LABEL_RULE),
    ("k=%s:NoSchedule" % ("v" * 64), "is not a taint: %r is not a label value (empty, or %s)" % ("v" * 64, LABEL_RULE)),
])
def test_taints_refused(text, message):
    assert refused(names.parse_taint, text) == "f: %r %s" % (text, message)


@pytest.mark.parametrize("text", ["-k:NoSchedule", "k=-v:NoSchedule", "a/b/c:NoSchedule", "k.:NoSchedule",
                                  "dedicated=infra:NoSchedule", "k:NoExecute"])
def test_one_taint_grammar_for_the_clusterfile_and_the_module(text):
    """The module and the Clusterfile parser use the one parser, so they accept and refuse alike."""
    assert k3s_node_labels.parse_taint is names.parse_taint
    clusterfile = ("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c1}\nspec:\n  hosts:\n"
                   "    - ips: [10.0.0.2]\n      roles: [master]\n      taints: [%r]\n" % text)
    try:
        names.parse_taint(text)
        module_ok = True
    except names.InvalidName:
        module_ok = False
    try:
        cf.load(clusterfile, "Clusterfile")
        file_ok = True
    except cf.ClusterfileError:
        file_ok = False
    assert module_ok == file_ok


@pytest.mark.parametrize("value", ["..", ".", "", "a.b", "A", "a_b", "-a", "a-", "../etc", "c1\n# END", "c1\n", "a" * 64])
def test_cluster_names_refused(value):
    expected = "f: %r must not be empty" % value if not value else "f: %r %s" % (value, CLUSTER_RULE)
    assert refused(names.check_cluster_name, value) == expected


def test_node_names_are_dns_subdomains_and_follow_k3s():
    assert names.check_node_name("node-1.example.com", "f") == "node-1.example.com"
    expected = ("f: '-n' is not a DNS-1123 subdomain (lowercase letters, digits and "
                "'-', in dot-separated labels that start and end with a letter or digit)")
    assert refused(names.check_node_name, "-n") == expected


def test_node_name_rule_is_k3s(monkeypatch):
    """k3s: --node-name, else os.Hostname(), lower-cased (pkg/util/net.go GetHostnameAndIPs); the
    host name is not cut at its first dot."""
    monkeypatch.setattr(names.socket, "gethostname", lambda: "Node-1.Example.COM")
    assert names.node_name() == "node-1.example.com"
    assert names.node_name("Worker-A") == "worker-a"


@pytest.mark.parametrize("value, message", [
    ("A-B", "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    ("1A", "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    ("A\nB", "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    ("", "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    ("A\n", "is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
])
def test_env_keys_refused(value, message):
    assert refused(names.check_env_key, value) == "f: %r %s" % (value, message)


@pytest.mark.parametrize("value", ["x\ny", "x\r", "x\0"])
def test_env_values_refused(value):
    assert refused(names.check_env_value, value) == "f: %r must not hold a newline or NUL" % value


@pytest.mark.parametrize("value", ["a:b", "admin\nroot:$2y$10$x", "a\0", "a\tb"])
def test_registry_usernames_refused(value):
    assert refused(names.check_registry_username, value) == (
        "f: %r must not contain ':' or a control character (it is an htpasswd line)" % value)


@pytest.mark.parametrize("value, message", [
    ("..", "is not a registry host: '..' " + HOST_RULE),
    ("..:5000", "is not a registry host: '..' " + HOST_RULE),
    ("sea.hub:0", "is not a registry host: port '0' is not 1-65535"),
    ("sea.hub:65536", "is not a registry host: port '65536' is not 1-65535"),
    ("sea.hub:/x", "is not a registry host: port '/x' is not 1-65535"),
])
def test_registry_hosts_refused(value, message):
    assert refused(names.check_registry_host, value) == "f: %r %s" % (value, message)


@pytest.mark.parametrize("value", ["/var/lib/seal/..", "relative", "/", "//x", "/a/./b", "/a/", "/a\n/b"])
def test_paths_refused(value):
    message = ("is not a usable path (it holds a control character)" if "\n" in value
               else "must be an absolute, normalised path other than '/' (no '.', '..' or '//')")
    assert refused(names.check_absolute_path, value) == "f: %r %s" % (value, message)
