"""k3s_node against a recorded `k3s kubectl` that keeps one Node's state: drained, schedulable
and absent, each in check mode, applied and re-run; state is required (omitting it deletes
nothing); an etcd Node that k3s holds with its finalizer fails the deletion naming it, one it
releases reports its member removed; another machine's Node of the same name is left alone."""
import json

import pytest
from ansible.module_utils import basic

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import K3S_BIN
from ansible_collections.seal.cluster.plugins.modules import k3s_node

REAL = k3s_node.NodeManager
NAME = "n2-plm-test"


class Cluster:
    def __init__(self, fake_runner):
        self.node = {"metadata": {"name": NAME, "labels": {}, "annotations": {}},
                     "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                            "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
                                            "nodeInfo": {"kubeletVersion": "v1.30.1+k3s1"}}}
        self.runner = fake_runner({"*": self.kubectl}, programs=())
        self.held = False  # k3s cannot remove the etcd member: the finalizer stays

    def etcd(self):
        self.node["metadata"]["labels"]["node-role.kubernetes.io/etcd"] = "true"
        self.node["metadata"]["annotations"]["etcd.k3s.cattle.io/node-name"] = NAME + "-0a1b2c3d"
        self.node["metadata"]["finalizers"] = ["wrangler.cattle.io/managed-etcd-controller"]

    def kubectl(self, argv):
        assert argv[:4] == [K3S_BIN, "kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"], argv
        verb, rest = argv[4], argv[5:]
        if verb == "get":
            if self.node is None:
                return 1, "", 'Error from server (NotFound): nodes "%s" not found' % NAME
            return 0, json.dumps(self.node), ""
        if verb in ("cordon", "uncordon"):
            self.node["spec"]["unschedulable"] = verb == "cordon"
            return 0, "node/%s %sed\n" % (NAME, verb), ""
        if verb == "drain":
            was = self.node["spec"].get("unschedulable")
            self.node["spec"]["unschedulable"] = True
            return 0, "node/%s drained\n" % NAME if was else "evicting pod default/web\nnode/%s drained\n" % NAME, ""
        if verb == "delete":
            assert "--timeout=120s" in rest, rest
            if self.held:
                self.node["metadata"]["deletionTimestamp"] = "2026-12-02T10:00:00Z"
                return 1, 'node "%s" deleted\n' % NAME, "error: timed out waiting for the condition on nodes/%s" % NAME
            self.node = None
            return 0, 'node "%s" deleted\n' % NAME, ""
        return 1, "", "unexpected %s" % rest

    def verbs(self):
        return [c[4] for c in self.runner.calls]


def run(run_main, monkeypatch, cluster, tmp_path, state, check=False, **extra):
    monkeypatch.setattr(k3s_node, "NodeManager", lambda module: REAL(module, cluster.runner))
    cluster.runner.calls.clear()
    return run_main(k3s_node, dict({"name": NAME, "state": state}, **extra), check=check, diff=True)


@pytest.mark.parametrize("state, actions, verbs", [
    ("drained", ["cordon", "drain"], ["get", "cordon", "drain"]),
    ("absent", ["drain", "delete"], ["get", "drain", "delete", "get"]),
])
def test_check_apply_idempotent(run_main, monkeypatch, fake_runner, tmp_path, state, actions, verbs):
    cluster = Cluster(fake_runner)
    predicted = run(run_main, monkeypatch, cluster, tmp_path, state, check=True)
    assert predicted["changed"] is True and predicted["actions"] == actions and cluster.verbs() == ["get"]
    assert "unschedulable" not in cluster.node["spec"]

    applied = run(run_main, monkeypatch, cluster, tmp_path, state)
    assert applied["actions"] == actions and cluster.verbs() == verbs
    assert applied["diff"]["before"].startswith("ready: True\nunschedulable: False")

    again = run(run_main, monkeypatch, cluster, tmp_path, state)
    assert again["changed"] is False and again["actions"] == []
    assert "cordon" not in cluster.verbs() and "delete" not in cluster.verbs()


def test_schedulable_uncordons_once(run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    cluster.node["spec"]["unschedulable"] = True
    assert run(run_main, monkeypatch, cluster, tmp_path, "schedulable", check=True)["actions"] == ["uncordon"]
    assert cluster.node["spec"]["unschedulable"] is True
    assert run(run_main, monkeypatch, cluster, tmp_path, "schedulable")["actions"] == ["uncordon"]
    assert cluster.node["spec"]["unschedulable"] is False
    assert run(run_main, monkeypatch, cluster, tmp_path, "schedulable")["changed"] is False


def test_a_missing_node_fails_from_main(run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    cluster.node = None
    out = run(run_main, monkeypatch, cluster, tmp_path, "drained")
    assert out["failed"] is True and out["msg"] == "node %s (host %s): no such node in the cluster" % (NAME, NAME)
    assert out["actions"] == []


def test_state_is_required(run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    monkeypatch.setattr(k3s_node, "NodeManager", lambda module: REAL(module, cluster.runner))
    out = run_main(k3s_node, {"name": NAME})
    assert out["failed"] is True and "state" in out["msg"] and cluster.runner.calls == []
    assert cluster.node is not None


def test_an_unreachable_node_is_cordoned_once_not_drained(run_main, monkeypatch, fake_runner, tmp_path):
    cluster, warned = Cluster(fake_runner), []
    monkeypatch.setattr(k3s_node, "NodeManager", lambda module: REAL(module, cluster.runner))
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))
    out = run_main(k3s_node, {"name": NAME, "state": "drained", "reachable": False})
    assert out["actions"] == ["cordon"] and [c[4] for c in cluster.runner.calls] == ["get", "cordon"]
    assert warned == ["node %s (host %s) is unreachable: not drained (its pods cannot terminate), only cordoned" % (NAME, NAME)]


def test_an_etcd_node_k3s_releases_reports_its_member_removed(run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    cluster.etcd()
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert out["actions"] == ["delete", "etcd_member_removed"] and out["etcd_member"] == NAME + "-0a1b2c3d"
    assert cluster.verbs() == ["get", "delete", "get"] and cluster.node is None


def test_an_etcd_node_k3s_holds_fails_naming_the_finalizer_and_a_rerun_waits_again(
        run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    cluster.etcd()
    cluster.held = True
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert out["failed"] is True and out["actions"] == ["delete"]
    assert "held by finalizer(s) wrangler.cattle.io/managed-etcd-controller" in out["msg"]
    assert "k3s has not removed its etcd member %s-0a1b2c3d" % NAME in out["msg"]
    cluster.held = False
    again = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert again["actions"] == ["delete", "etcd_member_removed"] and cluster.node is None


def test_a_node_of_that_name_at_another_address_is_left_alone(run_main, monkeypatch, fake_runner, tmp_path):
    cluster, warned = Cluster(fake_runner), []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", address="10.0.0.10", drain=False)
    assert out["changed"] is False and cluster.node is not None and cluster.verbs() == ["get"]
    assert "reports 10.0.0.9, not 10.0.0.10" in warned[0]
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", address="10.0.0.9", drain=False)
    assert out["actions"] == ["delete"] and cluster.node is None
