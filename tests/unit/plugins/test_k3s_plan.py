import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_plan import join_plan as plan_of
from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_plan import node_specs

M = ["m1", "m2", "m3"]
HOSTVARS = {h: {"ansible_host": "10.0.0.%d" % (i + 1)} for i, h in enumerate(M)}


def hv(**states):
    """The masters' k3s_runtime_info results (runtime_reports)."""
    return {h: dict(states.get(h, {}), role="server") for h in M}


def join_plan(masters, reports, **kwargs):
    return plan_of(masters, HOSTVARS, reports, **kwargs)


def test_fresh_ha_cluster_inits_on_master0_and_others_join_it():
    plan = join_plan(M, hv())
    assert plan["init_host"] == "m1" and plan["ha"] is True
    assert plan["servers"]["m1"] == {"server": None, "cluster_init": True}
    assert plan["servers"]["m2"] == {"server": "https://10.0.0.1:6443", "cluster_init": False}
    assert plan["agent_url"] == "https://10.0.0.1:6443"


def test_single_master_uses_sqlite():
    plan = join_plan(["m1"], hv())
    assert plan["servers"]["m1"] == {"server": None, "cluster_init": False}


def test_rebuilt_master0_joins_through_a_live_server_and_stays_stable():
    live = {"live": True, "has_data": True}
    plan = join_plan(M, hv(m2=dict(live, config_server="https://10.0.0.1:6443"), m3=dict(live, config_server="https://10.0.0.1:6443")))
    assert plan["init_host"] == "m2"
    assert plan["servers"]["m1"] == {"server": "https://10.0.0.2:6443", "cluster_init": False}
    assert plan["servers"]["m2"]["server"] == "https://10.0.0.1:6443"
    # next run: m1 has joined; nobody's config moves
    again = join_plan(M, hv(m1=dict(live, config_server="https://10.0.0.2:6443"),
                            m2=dict(live, config_server="https://10.0.0.1:6443"), m3=dict(live, config_server="https://10.0.0.1:6443")))
    assert again["servers"]["m1"] == plan["servers"]["m1"]
    assert again["servers"]["m2"] == plan["servers"]["m2"]


def test_converged_cluster_keeps_init_host_config():
    live = {"live": True, "has_data": True}
    plan = join_plan(M, hv(m1=live, m2=dict(live, config_server="https://10.0.0.1:6443"), m3=dict(live, config_server="https://10.0.0.1:6443")))
    assert plan["servers"]["m1"] == {"server": None, "cluster_init": True}
    assert plan["servers"]["m3"] == {"server": "https://10.0.0.1:6443", "cluster_init": False}


def test_external_datastore_never_uses_server_or_cluster_init():
    plan = join_plan(M, hv(), external_datastore=True)
    assert all(s == {"server": None, "cluster_init": False} for s in plan["servers"].values())


def test_registration_address_and_no_master():
    assert join_plan(M, hv(), registration_address="api.example")["servers"]["m2"]["server"] == "https://api.example:6443"
    with pytest.raises(ValueError, match="no master"):
        join_plan([], {})


def test_the_reports_are_an_argument_and_a_wrong_one_fails():
    unread = {"m1": {"unreachable": True}, "m2": {"skipped": True}}  # m3 not in the play
    assert join_plan(M, unread) == join_plan(M, hv())
    with pytest.raises(ValueError, match="runtime reports must map each host"):
        join_plan(M, HOSTVARS)


def test_node_specs_find_nodes_by_address_the_k3s_config_node_ip_first():
    hostvars = {"a": {"ansible_host": "10.0.0.1", "seal_labels": {"x": "1"}, "seal_taints": ["t:NoSchedule"]},
                "b": {"ansible_host": "10.0.0.2", "seal_k3s_agent_config": {"node-ip": "192.168.1.2,fd00::2"}},
                "c": {"seal_k3s_server_config": {"node-ip": ["192.168.1.3"]}, "group_names": ["master"]},
                "d": {"seal_k3s_server_config": {"node-ip": "192.168.1.4"}, "group_names": ["node"]}}
    assert node_specs(["a", "b", "c", "d"], hostvars) == [
        {"host": "a", "address": "10.0.0.1", "labels": {"x": "1"}, "taints": ["t:NoSchedule"]},
        {"host": "b", "address": "192.168.1.2", "labels": {}, "taints": []},
        {"host": "c", "address": "192.168.1.3", "labels": {}, "taints": []},
        {"host": "d", "address": "d", "labels": {}, "taints": []}]  # an agent: the server config is not its own
