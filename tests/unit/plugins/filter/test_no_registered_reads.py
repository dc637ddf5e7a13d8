"""No planning filter reads another task's registered result from hostvars: every name a role or
playbook registers is put into every host's hostvars with a report that would change the plan
(live, holding data, a token, a version, a node name), and each filter must answer exactly as
without them. What the hosts run reaches the filters only as their `reports` argument."""
import glob
import os
import re

from ansible_collections.seal.cluster.plugins.filter.k3s_join_plan import k3s_join_plan, k3s_node_specs
from ansible_collections.seal.cluster.plugins.filter.k3s_lifecycle import k3s_api_host, k3s_apply_plan
from ansible_collections.seal.cluster.plugins.filter.k3s_token import k3s_token_sources

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
GROUPS = {"master": ["m1", "m2", "m3"], "node": ["n1"]}
HOSTS = GROUPS["master"] + GROUPS["node"]
INFO = {"api_ready": True, "record": {"digest": "sha256:a"}, "etcd_members": None,
        "nodes": [{"name": "x%d" % i, "addresses": ["10.0.0.%d" % i], "server": True, "ready": True} for i in (1, 2, 3)]
        + [{"name": "y1", "addresses": ["10.0.0.4"], "server": False, "ready": True}]}
TEMPTING = {"role": "server", "live": True, "has_data": True, "holds_data": True, "has_token": True, "installed": True,
            "version": "v1.25.3+k3s1", "node_name": "registered-name", "config_server": "https://10.9.9.9:6443"}


def registered_names():
    names = set()
    for path in glob.glob(os.path.join(ROOT, "roles", "**", "*.yml"), recursive=True) + \
            glob.glob(os.path.join(ROOT, "playbooks", "*.yml")):
        with open(path, encoding="utf-8") as f:
            names |= set(re.findall(r"^\s*register:\s*([a-z0-9_]+)", f.read(), re.M))
    return names | {"k3s_query", "runtime_result"}  # the names filters used to read


def hostvars(with_registered):
    hv = {h: {"ansible_host": "10.0.0.%d" % (i + 1), "group_names": ["master" if h in GROUPS["master"] else "node"]}
          for i, h in enumerate(HOSTS)}
    if with_registered:
        for h in HOSTS:
            hv[h].update({name: dict(TEMPTING) for name in registered_names()})
    return hv


def plans(hv):
    reports = {"m3": {"role": "server", "live": False, "has_data": False, "version": None}}
    return {
        "join": k3s_join_plan(GROUPS["master"], hv, reports),
        "tokens": k3s_token_sources(GROUPS["master"], reports),
        "api": k3s_api_host(GROUPS["master"], hv, reports),
        "apply": k3s_apply_plan(INFO, GROUPS, hv, reports, image_digest="sha256:a"),
        "nodes": k3s_node_specs(HOSTS, hv),
    }


def test_the_registered_names_are_found():
    assert {"runtime_info", "runtime_result", "delete_info", "k3s_query"} <= registered_names()


def test_registered_results_in_hostvars_change_no_plan():
    bare, tempted = plans(hostvars(False)), plans(hostvars(True))
    assert tempted == bare
    # and the tempting values would have changed them: m3 counts as read and not live
    assert bare["join"]["init_host"] == "m1" and bare["api"] == "" and bare["tokens"]["checked"] == ["m3"]
    assert bare["apply"]["stale"] == [{"host": "m3", "node": "x3"}]
    assert "registered-name" not in str(bare["nodes"])
