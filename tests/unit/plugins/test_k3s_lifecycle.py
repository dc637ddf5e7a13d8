import pytest

from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import summary
from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_lifecycle import (
    API_ONLY_NOTE, PlanError, apply_plan, delete_plan, parse_version, render_plan, upgrade_check)


def inv(masters=3, nodes=2):
    out = {"m%d" % i: {"address": "10.0.0.%d" % i, "role": "server"} for i in range(1, masters + 1)}
    out.update({"n%d" % i: {"address": "10.0.1.%d" % i, "role": "agent"} for i in range(1, nodes + 1)})
    return out


def live(masters=3, nodes=2, etcd=True, version="v1.25.3+k3s1", ready=True):
    out = [{"name": "host-m%d" % i, "addresses": ["10.0.0.%d" % i], "server": True, "etcd": etcd, "ready": ready,
            "version": version} for i in range(1, masters + 1)]
    out += [{"name": "host-n%d" % i, "addresses": ["10.0.1.%d" % i], "server": False, "etcd": False, "ready": ready,
             "version": version} for i in range(1, nodes + 1)]
    return out


# -- versions -------------------------------------------------------------------------------
@pytest.mark.parametrize("text, parsed", [
    ("v1.26.0+k3s1", (1, 26, 0, 1)), ("v1.25.3+k3s12", (1, 25, 3, 12)), ("1.27.1", (1, 27, 1, 0)),
    ("v1.28.2-rc1+k3s1", (1, 28, 2, 1)),
])
def test_parse_version(text, parsed):
    assert parse_version(text) == parsed


@pytest.mark.parametrize("bad", ["", None, "latest", "v1.26"])
def test_bad_version(bad):
    with pytest.raises(PlanError, match="not a k3s version"):
        parse_version(bad)


def test_upgrade_one_minor_and_patch_and_revision():
    out = upgrade_check({"a": "v1.25.3+k3s1", "b": "v1.26.0+k3s1", "c": "v1.26.0+k3s0"}, "v1.26.0+k3s1")
    assert out["upgrade"] == ["a", "c"] and out["current"] == ["b"]


def test_downgrade_is_refused_naming_the_nodes():
    with pytest.raises(PlanError, match=r"downgrade to v1.25.3\+k3s1: b runs v1.26.0\+k3s1"):
        upgrade_check({"a": "v1.25.3+k3s1", "b": "v1.26.0+k3s1"}, "v1.25.3+k3s1")
    with pytest.raises(PlanError, match="downgrade"):
        upgrade_check({"a": "v1.26.0+k3s2"}, "v1.26.0+k3s1")


def test_skipped_minor_is_refused():
    with pytest.raises(PlanError, match=r"a runs v1.25.3\+k3s1; upgrade one minor version at a time.*v1.26"):
        upgrade_check({"a": "v1.25.3+k3s1"}, "v1.27.1+k3s1")


def test_unknown_versions_are_ignored():
    assert upgrade_check({"a": None}, "v1.26.0+k3s1") == {"target": "v1.26.0+k3s1", "upgrade": [], "current": []}


# -- delete ---------------------------------------------------------------------------------
def test_named_node_by_address_or_name():
    plan = delete_plan(inv(), live(), delete_hosts=["10.0.1.2"])
    assert plan["delete"] == [{"host": "n2", "address": "10.0.1.2", "node": "host-n2", "role": "agent",
                               "in_inventory": True, "ready": True}]
    assert delete_plan(inv(), live(), delete_hosts=["n2"])["delete"][0]["node"] == "host-n2"


def test_gone_from_inventory_comes_from_record_and_api():
    inventory = inv(nodes=1)
    record = {"masters": ["m1", "m2", "m3"], "nodes": ["n1", "n2"], "addresses": {"n2": "10.0.1.2"}}
    plan = delete_plan(inventory, live(), record)
    assert [(t["host"], t["node"], t["role"]) for t in plan["delete"]] == [("n2", "host-n2", "agent")]
    # not in the record (record rewritten by a run), still in the API
    plan = delete_plan(inventory, live(), {"masters": ["m1", "m2", "m3"], "nodes": ["n1"]})
    assert [(t["host"], t["node"]) for t in plan["delete"]] == [("10.0.1.2", "host-n2")]
    # converged: nothing
    assert delete_plan(inv(), live(), record)["delete"] == []


def test_hosts_the_inventory_does_not_list_are_api_only():
    inventory = inv(nodes=1)
    record = {"masters": ["m1", "m2", "m3"], "nodes": ["n1", "n2"], "addresses": {"n2": "10.0.1.2"}}
    rogue = {"name": "rogue", "addresses": ["10.9.9.9"], "server": False, "etcd": False, "ready": True}
    plan = delete_plan(inventory, live() + [rogue], record)
    assert [(t["host"], t["address"], t["node"], t["in_inventory"]) for t in plan["delete"]] == [
        ("n2", "10.0.1.2", "host-n2", False), ("10.9.9.9", "10.9.9.9", "rogue", False)]
    lines = render_plan(plan)
    assert lines == ["delete agent n2 (10.0.1.2, node host-n2): " + API_ONLY_NOTE,
                     "delete agent 10.9.9.9 (10.9.9.9, node rogue): " + API_ONLY_NOTE]
    assert "the host itself was not touched" in API_ONLY_NOTE
    # named by its API address or node name: still API-only
    for wanted in ("10.9.9.9", "rogue"):
        target, = delete_plan(inventory, live() + [rogue], record, delete_hosts=[wanted])["delete"]
        assert (target["node"], target["in_inventory"]) == ("rogue", False)


def test_inventory_host_keeps_the_inventory_address_whatever_its_node_reports():
    inventory = inv()
    inventory["box"] = {"address": "10.0.2.1", "role": "agent"}
    nodes = live() + [{"name": "box", "addresses": ["10.6.6.6"], "server": False, "etcd": False, "ready": True}]
    for wanted in ("10.6.6.6", "box"):
        target, = delete_plan(inventory, nodes, delete_hosts=[wanted])["delete"]
        assert (target["host"], target["address"], target["node"], target["in_inventory"]) == (
            "box", "10.0.2.1", "box", True)
    assert delete_plan(inventory, nodes)["delete"] == []  # listed by name: not a deletion
    assert render_plan({"delete": [dict(target)]}) == ["delete agent box (10.0.2.1, node box)"]


def test_apply_warns_of_a_listed_host_that_runs_k3s_without_a_node():
    plan = apply_plan(inv(nodes=2), live(nodes=1), {}, None, {"n2": {"live": True, "has_data": False}})
    assert plan["join"] == ["n2"]
    assert plan["warnings"] == ["n2 runs k3s but the API has no Node for it: reset it first "
                                "(playbooks/reset.yml --limit n2), then apply"]
    assert apply_plan(inv(nodes=2), live(nodes=1), {}, None, {"n2": {"live": False}})["warnings"] == []
    assert apply_plan(inv(nodes=2), None, {}, None, {"n2": {"live": True}})["warnings"] == []


def test_already_deleted_named_host_is_a_noop_with_warning():
    plan = delete_plan(inv(nodes=1), live(nodes=1), {"masters": ["m1"], "nodes": ["n1"]}, delete_hosts="x".split())
    assert plan["delete"] == [] and "x is not in the inventory" in plan["warnings"][0]


def test_last_master_is_refused_unless_forced():
    with pytest.raises(PlanError, match="last master"):
        delete_plan(inv(masters=1), live(masters=1, etcd=False), delete_hosts=["m1"])
    plan = delete_plan(inv(masters=1), live(masters=1, etcd=False), delete_hosts=["m1"], force=True)
    assert plan["delete"][0]["role"] == "server" and plan["warnings"][0].startswith("forced: ")


def test_even_etcd_members_refused_unless_forced():
    with pytest.raises(PlanError, match="leave 2 etcd members"):
        delete_plan(inv(), live(), delete_hosts=["m3"])
    plan = delete_plan(inv(), live(), delete_hosts=["m3"], force=True)
    assert plan["etcd_after"] == 2
    plan = delete_plan(inv(), live(), delete_hosts=["m2", "m3"])
    assert plan["etcd_after"] == 1 and plan["servers_after"] == ["host-m1"]


def test_even_check_counts_the_etcd_nodes_k3s_still_holds():
    # m3 was deleted but k3s has not removed its member yet: its Node is held (deleting) and counts;
    # the agents and Nodes without k3s's etcd label do not
    nodes = live()
    nodes[2]["deleting"] = True
    with pytest.raises(PlanError, match="leave 2 etcd members"):
        delete_plan(inv(), nodes, {}, delete_hosts=["m2"])
    plan = delete_plan(inv(), nodes, {}, delete_hosts=["m2", "m3"])
    assert plan["etcd_after"] == 1


def test_apply_replacing_a_master_counts_the_joiner():
    inventory = inv(masters=2)
    inventory["m4"] = {"address": "10.0.0.4", "role": "server"}
    plan = apply_plan(inventory, live(), {}, None)
    assert plan["join"] == ["m4"] and [t["host"] for t in plan["delete"]] == ["10.0.0.3"]


def test_external_datastore_has_no_even_rule():
    plan = delete_plan(inv(), live(etcd=False), delete_hosts=["m3"])
    assert plan["etcd_after"] is None and len(plan["servers_after"]) == 2


def test_api_host_cannot_be_deleted():
    with pytest.raises(PlanError, match="talks to the API through"):
        delete_plan(inv(), live(), delete_hosts=["m1", "m2"], api_host="m1")


def test_unreachable_api_falls_back_to_inventory_and_record():
    plan = delete_plan(inv(), None, {"masters": ["m1", "m2", "m3"]}, delete_hosts=["m2", "m3"])
    assert plan["servers_after"] == ["m1"] and plan["etcd_after"] is None


# -- apply ----------------------------------------------------------------------------------
def test_apply_joins_deletes_and_upgrade():
    plan = apply_plan(inv(masters=3, nodes=2), live(masters=2, nodes=1, etcd=True),
                      {"masters": ["m1", "m2"], "nodes": ["n1"], "digest": "sha256:old"}, "sha256:new")
    assert plan["join"] == ["m3", "n2"] and plan["delete"] == [] and plan["upgrade"] is True and plan["changes"]
    lines = render_plan(plan)
    assert lines[0] == "upgrade: image sha256:old -> sha256:new" and "join m3" in lines


def test_apply_converged_is_empty():
    plan = apply_plan(inv(), live(), {"masters": ["m1", "m2", "m3"], "nodes": ["n1", "n2"], "digest": "d"}, "d")
    assert not plan["changes"] and render_plan(plan) == ["nothing to do: the cluster matches the inventory"]


def test_apply_rebuilt_master0_is_stale_and_rejoins():
    states = {"m1": {"live": False, "has_data": False, "version": None}, "m2": {"live": True, "has_data": True, "version": "v"}}
    plan = apply_plan(inv(), live(), {}, None, states)
    assert plan["stale"] == [{"host": "m1", "node": "host-m1"}] and plan["join"] == ["m1"]


def test_apply_refuses_unsafe_deletion():
    with pytest.raises(PlanError, match="even"):
        apply_plan(inv(masters=2), live(), {}, None)


# -- module_utils helpers -------------------------------------------------------------------
def test_summary_of_a_node_object():
    node = {"metadata": {"name": "lc-m1", "labels": {"node-role.kubernetes.io/control-plane": "true",
                                                     "node-role.kubernetes.io/etcd": "true"},
                         "annotations": {"k3s.io/internal-ip": "10.89.1.2", "etcd.k3s.cattle.io/node-name": "lc-m1-d31163fa"}},
            "spec": {"unschedulable": True},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.89.1.2"}, {"type": "Hostname", "address": "lc-m1"}],
                       "conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.25.3+k3s1"}}}
    assert summary(node) == {"name": "lc-m1", "addresses": ["10.89.1.2"], "server": True, "etcd": True,
                             "etcd_member": "lc-m1-d31163fa", "deleting": False, "finalizers": [], "ready": True,
                             "unschedulable": True, "version": "v1.25.3+k3s1"}
