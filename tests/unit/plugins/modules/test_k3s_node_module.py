"""k3s_node against a recorded `k3s kubectl` that keeps one Node's state: drained, schedulable
and absent, each in check mode, applied and re-run; state is required (omitting it deletes
nothing)."""
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
            self.node = None
            return 0, 'node "%s" deleted\n' % NAME, ""
        return 1, "", "unexpected %s" % rest

    def verbs(self):
        return [c[4] for c in self.runner.calls]


def run(run_main, monkeypatch, cluster, tmp_path, state, check=False):
    monkeypatch.setattr(k3s_node, "NodeManager", lambda module: REAL(module, cluster.runner))
    cluster.runner.calls.clear()
    return run_main(k3s_node, {"name": NAME, "state": state, "data_dir": str(tmp_path)}, check=check, diff=True)


@pytest.mark.parametrize("state, actions, verbs", [
    ("drained", ["cordon", "drain"], ["get", "cordon", "drain"]),
    ("absent", ["drain", "delete"], ["get", "drain", "delete"]),
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
    out = run_main(k3s_node, {"name": NAME, "data_dir": str(tmp_path)})
    assert out["failed"] is True and "state" in out["msg"] and cluster.runner.calls == []
    assert cluster.node is not None


def test_an_unreachable_node_is_cordoned_once_not_drained(run_main, monkeypatch, fake_runner, tmp_path):
    cluster, warned = Cluster(fake_runner), []
    monkeypatch.setattr(k3s_node, "NodeManager", lambda module: REAL(module, cluster.runner))
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, msg: warned.append(msg))
    out = run_main(k3s_node, {"name": NAME, "state": "drained", "reachable": False, "data_dir": str(tmp_path)})
    assert out["actions"] == ["cordon"] and [c[4] for c in cluster.runner.calls] == ["get", "cordon"]
    assert warned == ["node %s (host %s) is unreachable: not drained (its pods cannot terminate), only cordoned" % (NAME, NAME)]
