"""Plugin documents: checks and which inventory hosts run one in a phase."""

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_plugins as sp

HOSTVARS = {
    "10.0.0.2": {"ansible_host": "10.0.0.2", "seal_labels": {"ssd": "true"}},
    "10.0.0.3": {"ansible_host": "10.0.0.3"},
    "10.0.0.4": {"ansible_host": "10.0.0.4", "seal_labels": {"ssd": "false", "role": "db"}},
}
GROUPS = {"all": list(HOSTVARS), "master": ["10.0.0.2", "10.0.0.3"], "node": ["10.0.0.4"]}
HOSTS = list(HOSTVARS)


def plugin(spec, api="sealer.io/v1", name="p"):
    return sp.check({"apiVersion": api, "kind": "Plugin", "metadata": {"name": name}, "spec": spec})


def shell(on="", action="PreInit"):
    return plugin({"type": "SHELL", "action": action, "on": on, "data": "echo hi\n"})


def test_parse_combined_actions_and_both_api_versions():
    p = plugin({"type": "SHELL", "action": "PreInit|PreJoin", "data": "echo hi\n"}, api="sealer.aliyun.com/v1alpha1")
    assert p["actions"] == ["PreInit", "PreJoin"] and p["data"] == "echo hi" and p["source"] == "Clusterfile"


@pytest.mark.parametrize("on,expected", [
    ("", HOSTS),
    ("master", ["10.0.0.2", "10.0.0.3"]),
    ("node", ["10.0.0.4"]),
    ("master0", ["10.0.0.2"]),
    ("10.0.0.4", ["10.0.0.4"]),
    ("10.0.0.2,10.0.0.4,10.9.9.9", ["10.0.0.2", "10.0.0.4"]),  # an IP the inventory lacks selects nothing
    ("10.0.0.3-10.0.0.9", ["10.0.0.3", "10.0.0.4"]),
])
def test_on_selects_only_inventory_hosts(on, expected):
    assert sp.select(shell(on), "PreInit", HOSTS, HOSTVARS, GROUPS) == expected


@pytest.mark.parametrize("on,expected", [
    ("ssd=true", ["10.0.0.2"]),
    ("ssd!=true", ["10.0.0.3", "10.0.0.4"]),
    ("role=db", ["10.0.0.4"]),
    ("node-role.kubernetes.io/master=true", ["10.0.0.2", "10.0.0.3"]),  # k3s labels its servers
    ("node-role.kubernetes.io/master=", []),  # kubeadm's empty value: k3s sets "true"
    ("ssd=false,role=db", ["10.0.0.4"]),
])
def test_label_selectors(on, expected):
    assert sp.select(shell(on, "PostInstall|PreClean"), "PreClean", HOSTS, HOSTVARS, GROUPS) == expected


def test_selection_is_limited_to_the_phase_and_the_hosts_given():
    p = shell("", "PreJoin")
    assert sp.select(p, "PreInit", HOSTS, HOSTVARS, GROUPS) == []
    assert sp.select(p, "PreJoin", ["10.0.0.4"], HOSTVARS, GROUPS) == ["10.0.0.4"]


@pytest.mark.parametrize("spec,message", [
    ({"type": "ETCD", "action": "PostInstall", "data": "x"}, "spec.type"),
    ({"type": "SHELL", "action": "PreInstall", "data": "x"}, "spec.action: 'PreInstall' is not a phase"),
    ({"type": "SHELL", "action": "", "data": "x"}, "spec.action"),
    ({"type": "SHELL", "action": "PreInit", "data": ""}, "spec.data"),
    ({"type": "SHELL", "action": "PreInit|PostInstall", "on": "ssd=true", "data": "x"}, "spec.on: a node label selector"),
    ({"type": "SHELL", "action": "PreInit", "on": "10.0.0.9-10.0.0.2", "data": "x"}, "spec.on: .* not a range"),
    ({"type": "SHELL", "action": "PreInit", "on": "masters", "data": "x"}, "spec.on: .*not an IP address"),
    ({"type": "SHELL", "action": "PreInit", "on": "0.0.0.0-1.0.0.0", "data": "x"}, "more than"),
    ({"type": "LABEL", "action": "PreInit", "data": "10.0.0.2 a=b"}, "needs the Nodes"),
    ({"type": "LABEL", "action": "PreGuest", "data": "10.0.0.2 a-"}, "key=value"),
    ({"type": "TAINT", "action": "PreGuest", "data": "10.0.0.2 k=v:NoSchedule-"}, "removing taints"),
    ({"type": "HOSTNAME", "action": "PreInit", "data": "10.0.0.2 Bad_Name"}, "spec.data line 1"),
    ({"type": "HOSTNAME", "action": "PreInit", "on": "master", "data": "10.0.0.2 n"}, "only SHELL plugins take on"),
    ({"type": "SHELL", "action": "PreInit", "data": "x", "scope": "master"}, "spec.scope: unknown key"),
])
def test_bad_plugins_name_the_field(spec, message):
    with pytest.raises(sp.PluginError, match=message):
        plugin(spec)


def test_hostname_label_and_taint_values_per_host():
    hn = plugin({"type": "HOSTNAME", "action": "PreInit", "data": "10.0.0.2 master-0\n10.0.0.4 node-0\n"})
    assert sp.select(hn, "PreInit", HOSTS, HOSTVARS, GROUPS) == ["10.0.0.2", "10.0.0.4"]
    assert sp.host_value(hn, "10.0.0.4", HOSTVARS) == "node-0"
    lb = plugin({"type": "LABEL", "action": "PreGuest", "data": "10.0.0.2-10.0.0.3 ssd=true,zone=a\n"})
    assert sp.host_value(lb, "10.0.0.3", HOSTVARS) == {"ssd": "true", "zone": "a"}
    tt = plugin({"type": "TAINT", "action": "PreGuest", "data": "10.0.0.2,10.0.0.4 key4:NoSchedule\n"})
    assert sp.host_value(tt, "10.0.0.4", HOSTVARS) == ["key4:NoSchedule"]
    assert sp.host_value(tt, "10.0.0.3", HOSTVARS) == []


def test_an_unquoted_on_and_a_list_of_ips():
    """YAML 1.1 reads `on:` as the key true; sealer's docs quote it. Either way it is `on`."""
    import yaml
    value = yaml.safe_load("apiVersion: sealer.io/v1\nkind: Plugin\nmetadata: {name: p}\n"
                           "spec:\n  type: SHELL\n  action: PreInit\n  on: [10.0.0.2, 10.0.0.4]\n  data: x\n")
    assert True in value["spec"]
    assert sp.select(sp.check(value), "PreInit", HOSTS, HOSTVARS, GROUPS) == ["10.0.0.2", "10.0.0.4"]
    value["spec"]["on"] = "master"
    with pytest.raises(sp.PluginError, match="spec.on: given twice"):
        sp.check(value)
