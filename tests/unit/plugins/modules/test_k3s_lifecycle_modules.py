"""k3s_cluster_info and k3s_node: what they do without a cluster, and input they refuse."""
import json
import os
import socket
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.filter.k3s_lifecycle import (
    k3s_api_host, k3s_apply_plan, k3s_delete_plan, k3s_plan_lines, k3s_upgrade_check)

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules")


def test_cluster_info_without_a_server_reports_instead_of_failing(run_module, tmp_path):
    record = tmp_path / "applied.json"
    record.write_text(json.dumps({"masters": ["m1"], "digest": "sha256:x"}))
    out = run_module("k3s_cluster_info", record=str(record), kubeconfig=str(tmp_path / "none.yaml"))
    assert out["changed"] is False and out["api_ready"] is False and out["nodes"] == []
    assert "does not exist" in out["api_error"] and out["record"]["masters"] == ["m1"]
    assert "etcd_members" not in out


def test_cluster_info_names_a_broken_record(run_module, tmp_path):
    record = tmp_path / "applied.json"
    record.write_text("{not json")
    out = run_module("k3s_cluster_info", record=str(record), kubeconfig=str(tmp_path / "none.yaml"))
    assert out["failed"] is True and str(record) in out["msg"]


def test_node_refuses_to_delete_itself():
    args = {"name": socket.gethostname().split(".")[0].lower(), "state": "absent"}
    proc = subprocess.run([sys.executable, os.path.join(MODULES, "k3s_node.py")], check=False, capture_output=True, text=True,
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    out = json.loads(proc.stdout)
    assert out["failed"] is True and "its own API server" in out["msg"]


HOSTVARS = {"m1": {"ansible_host": "10.0.0.1"}, "m2": {"ansible_host": "10.0.0.2"}, "m3": {"ansible_host": "10.0.0.3"},
            "n1": {"ansible_host": "10.0.1.1"}}
REPORTS = {  # what k3s_runtime_info returned (runtime_reports); n1 was not read
    "m1": {"role": "server", "live": False, "has_data": True, "version": "v1.25.3+k3s1"},
    "m2": {"role": "server", "live": True, "has_data": True},
    "m3": {"role": "server", "live": True, "has_data": True},
    "n1": {"unreachable": True, "msg": "ssh: connect to host 10.0.1.1 port 22: No route to host", "changed": False},
}
GROUPS = {"master": ["m1", "m2", "m3"], "node": ["n1"]}
INFO = {"api_ready": True, "record": {"digest": "sha256:a"},
        "nodes": [{"name": "x%d" % i, "addresses": ["10.0.0.%d" % i], "server": True, "etcd": False, "ready": True,
                   "version": "v1.25.3+k3s1"} for i in (1, 2, 3)]
        + [{"name": "y1", "addresses": ["10.0.1.1"], "server": False, "ready": True, "version": "v1.25.3+k3s1"}]}


def test_api_host_is_the_first_live_master_not_excluded():
    assert k3s_api_host(GROUPS["master"], HOSTVARS, REPORTS) == "m2"
    assert k3s_api_host(GROUPS["master"], HOSTVARS, REPORTS, exclude="10.0.0.2") == "m3"
    assert k3s_api_host(GROUPS["master"], HOSTVARS, REPORTS, exclude=["m2", "m3"]) == ""
    assert k3s_api_host(GROUPS["master"], HOSTVARS, {}) == ""  # nothing read: nothing is live


@pytest.mark.parametrize("reports", [HOSTVARS, {"m1": {"rc": 0}}, ["m1"]])
def test_hostvars_or_another_variable_passed_as_the_reports_fails_loudly(reports):
    with pytest.raises(AnsibleFilterError, match="runtime reports must"):
        k3s_api_host(GROUPS["master"], HOSTVARS, reports)
    with pytest.raises(AnsibleFilterError, match="runtime reports must"):
        k3s_apply_plan(INFO, GROUPS, HOSTVARS, reports)


def test_filters_wrap_the_plans():
    plan = k3s_delete_plan(INFO, GROUPS, HOSTVARS, delete_hosts="10.0.1.1", api_host="m2")
    assert [t["node"] for t in plan["delete"]] == ["y1"]
    plan = k3s_apply_plan(INFO, GROUPS, HOSTVARS, REPORTS, image_digest="sha256:b")
    assert plan["upgrade"] is True and plan["join"] == [] and k3s_plan_lines(plan)[0].startswith("upgrade:")
    assert plan["stale"] == []  # n1 was not read (unreachable): not judged stale
    assert k3s_upgrade_check(INFO, "v1.26.0+k3s1")["upgrade"] == ["x1", "x2", "x3", "y1"]
