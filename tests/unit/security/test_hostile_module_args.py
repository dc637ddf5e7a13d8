"""Hostile module arguments: each module refuses a bad name in its argument check, naming the
option, before anything on the host changes. A temporary directory stands for the host (every
path the module could touch points into it) and is compared before and after. Modules whose
paths are fixed system paths (k3s_reset, registry state=absent) run in check mode as well, so
that a broken check could never remove anything on this machine."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.seal.cluster.plugins.filter.registry_view import registry_view
from ansible_collections.seal.cluster.plugins.modules.k3s_reset import cluster_paths

MODULES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "modules"))
HOST_RULE = ("is not an RFC 1123 host name (letters, digits and '-', in dot-separated labels of at most 63 "
             "characters that start and end with a letter or digit)")
CLUSTER_RULE = ("is not a cluster name: a DNS-1123 label (at most 63 lowercase letters, digits or '-', "
                "starting and ending with a letter or digit)")
LABEL_RULE = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


def run_module_as_ansible(module, check=False, **args):
    args.update(_ansible_check_mode=check)
    proc = subprocess.run([sys.executable, os.path.join(MODULES, module + ".py")], check=False,
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return json.loads(proc.stdout)


def tree(root):
    """Every path under root with its type, mode and content digest (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                what = "link " + os.readlink(path)
            elif os.path.isdir(path):
                what = "dir"
            else:
                with open(path, "rb") as f:
                    what = "file " + hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, root)] = (what, st.st_mode)
    return out


@pytest.fixture
def host(tmp_path):
    """A sentinel tree standing for the host's files."""
    root = tmp_path / "host"
    (root / "etc" / "containers" / "certs.d" / "sea.hub:5000").mkdir(parents=True)
    (root / "etc" / "containers" / "certs.d" / "sea.hub:5000" / "ca.crt").write_text("CA\n")
    (root / "etc" / "containers" / "policy.json").write_text("{}\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n# BEGIN seal.cluster c1\n10.0.0.2 sea.hub\n# END seal.cluster c1\n")
    (root / "var" / "lib" / "seal" / "c1").mkdir(parents=True)
    (root / "var" / "lib" / "seal" / "c1" / "keep").write_text("data\n")
    return root


def node_prepare(host, **params):
    args = {"cluster": "c1", "kernel_modules": [], "sysctls": {}, "hosts_path": str(host / "etc" / "hosts"),
            "modules_load_path": str(host / "etc" / "modules-load.d" / "seal.conf"),
            "sysctl_path": str(host / "etc" / "sysctl.d" / "seal.conf")}
    args.update(params)
    return run_module_as_ansible("node_prepare", **args)


@pytest.mark.parametrize("params, message", [
    ({"hosts": [{"ip": "10.0.0.9\n# END seal.cluster c1\n10.6.6.6 sea.hub", "hostnames": ["sea.hub"]}]},
     "hosts[0].ip: '10.0.0.9\\n# END seal.cluster c1\\n10.6.6.6 sea.hub' is not an IP address (it holds a control character)"),
    ({"hosts": [{"ip": "fe80::1%eth0 sea.hub\n# END seal.cluster c1", "hostnames": ["x"]}]},
     "hosts[0].ip: 'fe80::1%eth0 sea.hub\\n# END seal.cluster c1' is not an IP address (it holds a control character)"),
    ({"hosts": [{"ip": "fe80::1%eth0 evil", "hostnames": ["x"]}]},
     "hosts[0].ip: 'fe80::1%eth0 evil' has an IPv6 scope id that is not an interface name (at most 15 letters, digits, '_', '.' or '-')"),
    ({"hosts": [{"ip": "10.0.0.9", "hostnames": ["ok", "sea.hub\n# END seal.cluster c1"]}]},
     "hosts[0].hostnames[1]: 'sea.hub\\n# END seal.cluster c1' " + HOST_RULE),
    ({"hosts": [{"ip": "10.0.0.9", "hostnames": []}]}, "hosts[0].hostnames: [] must name at least one host"),
    ({"cluster": "c1\n# END seal.cluster c1"}, "cluster: 'c1\\n# END seal.cluster c1' " + CLUSTER_RULE),
])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_node_prepare_refuses_entries_that_could_forge_the_hosts_block(host, params, message, state):
    before = tree(host)
    out = node_prepare(host, state=state, **params)
    assert out.get("failed") is True and out["msg"] == message
    assert tree(host) == before


def test_node_prepare_writes_entries_in_canonical_form(host):
    out = node_prepare(host, hosts=[{"ip": "2001:DB8:0::9", "hostnames": ["Sea.Hub"]}])
    assert out["changed"] is True, out
    assert "# BEGIN seal.cluster c1\n2001:db8::9 Sea.Hub\n# END seal.cluster c1\n" in (host / "etc" / "hosts").read_text()


@pytest.mark.parametrize("params, message", [
    ({"cluster": ".."}, "cluster: '..' " + CLUSTER_RULE),
    ({"cluster": "../../etc"}, "cluster: '../../etc' " + CLUSTER_RULE),
    ({"cluster": ""}, "cluster: '' must not be empty"),
    ({"registry_host": ".."}, "registry_host: '..' is not a registry host: '..' " + HOST_RULE),
    ({"registry_host": "../.."}, "registry_host: '../..' is not a registry host: '../..' " + HOST_RULE),
    ({"data_root": "/var/lib/seal/../.."},
     "data_root: '/var/lib/seal/../..' must be an absolute, normalised path other than '/' (no '.', '..' or '//')"),
    ({"extra_paths": ["/etc/containers/certs.d/.."]},
     "extra_paths[0]: '/etc/containers/certs.d/..' must be an absolute, normalised path other than '/' (no '.', '..' or '//')"),
    ({"data_dir": "/"}, "data_dir: '/' must be an absolute, normalised path other than '/' (no '.', '..' or '//')"),
])
def test_k3s_reset_removes_only_paths_built_from_checked_names(host, params, message):
    args = {"cluster": "c1", "data_root": str(host / "var" / "lib" / "seal")}
    args.update(params)
    before = tree(host)
    out = run_module_as_ansible("k3s_reset", check=True, **args)
    assert out.get("failed") is True and out["msg"] == message
    assert out.get("removed") is None
    assert tree(host) == before


def test_k3s_reset_paths_of_a_cluster():
    assert cluster_paths({"cluster": "c1", "data_root": "/data/seal", "registry_host": "sea.hub:5000", "extra_paths": []}) == [
        "/data/seal/c1", "/etc/seal/c1", "/etc/containers/certs.d/sea.hub:5000"]
    assert cluster_paths({"cluster": None, "data_root": "/var/lib/seal", "registry_host": None, "extra_paths": ["/x/y"]}) == ["/x/y"]


def test_a_registry_domain_of_dot_dot_never_reaches_reset():
    """The reset role takes the registry's host from the registry_view filter: a domain of '..'
    stops there, naming the field, so /etc/containers/certs.d/.. is never computed."""
    with pytest.raises(Exception) as err:
        registry_view({"localRegistry": {"domain": ".."}}, ["m"], {"m": {}}, "m")
    assert str(err.value) == "spec.registry.localRegistry.domain: '..' " + HOST_RULE


@pytest.mark.parametrize("params, message", [
    ({"cluster": "../../etc"}, "cluster: '../../etc' " + CLUSTER_RULE),
    ({"cluster": "c1.service\nExecStartPre=/bin/sh"}, "cluster: 'c1.service\\nExecStartPre=/bin/sh' " + CLUSTER_RULE),
    ({"domain": "sea.hub\nx"}, "domain: 'sea.hub\\nx' " + HOST_RULE),
    ({"config_dir": "relative/registry"},
     "config_dir: 'relative/registry' must be an absolute, normalised path other than '/' (no '.', '..' or '//')"),
])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_registry_refuses_names_that_reach_its_unit_and_paths(host, params, message, state):
    args = {"cluster": "c1", "state": state, "rootfs": str(host / "rootfs"), "remove_data": True,
            "data_root": str(host / "var" / "lib" / "seal"), "config_dir": str(host / "etc" / "seal" / "c1" / "registry")}
    args.update(params)
    before = tree(host)
    out = run_module_as_ansible("registry", check=True, **args)
    assert out.get("failed") is True and out["msg"] == message
    assert tree(host) == before


@pytest.mark.parametrize("params, message", [
    ({"username": "admin\nroot:$2y$05$abcdefghijklmnopqrstuv"},
     "username: 'admin\\nroot:$2y$05$abcdefghijklmnopqrstuv' must not contain ':' or a control character (it is an htpasswd line)"),
    ({"username": "ad:min"}, "username: 'ad:min' must not contain ':' or a control character (it is an htpasswd line)"),
    ({"domain": ".."}, "domain: '..' " + HOST_RULE),
    ({"sans": ["10.0.0.2", "bad name"]}, "sans[1]: 'bad name' " + HOST_RULE),
    ({"cluster": "C1/.."}, "cluster: 'C1/..' " + CLUSTER_RULE),
])
def test_registry_certs_refuses_usernames_that_add_htpasswd_lines(host, params, message):
    args = {"path": str(host / "state" / "registry"), "cluster": "c1", "username": "admin", "password": "pw"}
    args.update(params)
    before = tree(host)
    out = run_module_as_ansible("registry_certs", **args)
    assert out.get("failed") is True and out["msg"] == message
    assert tree(host) == before


@pytest.mark.parametrize("node, message", [
    ({"name": "n1", "labels": {"--kubeconfig=/tmp/evil": "x"}},
     "nodes[0].labels: '--kubeconfig=/tmp/evil' is not a label key (at most one '/': [prefix/]name)"),
    ({"name": "n1", "labels": {"-rf": "x"}}, "nodes[0].labels: '-rf' is not a label key: its name part must be " + LABEL_RULE),
    ({"name": "n1", "labels": {"zone": "-a"}}, "nodes[0].labels.zone: '-a' is not a label value (empty, or %s)" % LABEL_RULE),
    ({"name": "--all", "labels": {}}, "nodes[0].name: '--all' is not a DNS-1123 subdomain (lowercase letters, digits and '-', "
                                      "in dot-separated labels that start and end with a letter or digit)"),
    ({"name": "n1", "taints": ["-k:NoSchedule"]},
     "nodes[0].taints[0]: '-k:NoSchedule' is not a taint: '-k' is not a label key: its name part must be " + LABEL_RULE),
])
def test_k3s_cluster_refuses_what_kubectl_would_read_as_a_flag(node, message):
    out = run_module_as_ansible("k3s_node_labels", check=True, nodes=[node], wait_timeout=1)
    assert out.get("failed") is True and out["msg"] == message


def test_k3s_node_refuses_a_name_read_as_a_flag():
    out = run_module_as_ansible("k3s_node", check=True, name="--all", state="drained")
    assert out.get("failed") is True
    assert out["msg"] == ("name: '--all' is not a DNS-1123 subdomain (lowercase letters, digits and '-', in dot-separated "
                          "labels that start and end with a letter or digit)")
