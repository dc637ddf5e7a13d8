"""k3s_node against a recorded `k3s kubectl` that keeps one Node's state: drained, schedulable
and absent, each in check mode, applied and re-run; state is required (omitting it deletes
nothing); an etcd Node that k3s holds with its finalizer fails the deletion naming it, one it
releases reports its member removed; a deletion whose wait kubectl gave up on when the API failed
for a moment (k3s removing the etcd leader's member) is watched to its end, and one the API never
got is asked for again; another machine's Node of the same name is left alone."""
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
        self.script = []  # queued answers (rc, out, err) or callables, taken before the model's own
        self.now = 1000.0  # the module's clock: time.sleep advances it
        self.timeouts = []  # kubectl delete's --timeout= arguments

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def etcd(self):
        self.node["metadata"]["labels"]["node-role.kubernetes.io/etcd"] = "true"
        self.node["metadata"]["annotations"]["etcd.k3s.cattle.io/node-name"] = NAME + "-0a1b2c3d"
        self.node["metadata"]["finalizers"] = ["wrangler.cattle.io/managed-etcd-controller"]

    def kubectl(self, argv):
        assert argv[:4] == [K3S_BIN, "kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"], argv
        verb, rest = argv[4], argv[5:]
        if verb == "delete":
            self.timeouts += [a for a in rest if a.startswith("--timeout=")]
        if self.script:
            answer = self.script.pop(0)
            if answer is not None:
                return answer() if callable(answer) else answer
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
    monkeypatch.setattr(k3s_node, "time", cluster)
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
    assert "still there 120s after its deletion" in out["msg"]
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


def test_a_deletion_kubectl_gave_up_on_when_the_api_failed_is_watched_to_its_end(
        run_main, monkeypatch, fake_runner, tmp_path):
    """k3s's member controller removed the member leading etcd: the API fails while the others
    elect a new leader, kubectl's wait ends with that error, and the Node goes moments later."""
    cluster = Cluster(fake_runner)
    cluster.etcd()
    leader_changed = "Error from server (InternalError): etcdserver: leader changed"

    def marked_then_error():
        cluster.node["metadata"]["deletionTimestamp"] = "2026-12-02T10:00:00Z"
        return 1, 'node "%s" deleted\n' % NAME, leader_changed

    def released():
        cluster.node = None
        return 1, "", 'Error from server (NotFound): nodes "%s" not found' % NAME
    # get (before), delete (marked, then the error), get (API down), get (still held), get (gone)
    cluster.script = [None, marked_then_error, (1, "", leader_changed), None, released]
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert out.get("failed") is not True, out
    assert out["actions"] == ["delete", "etcd_member_removed"] and cluster.node is None
    assert cluster.verbs() == ["get", "delete", "get", "get", "get"]
    assert cluster.now == 1000.0 + 2 * k3s_node.DELETE_POLL


def test_a_deletion_the_api_never_got_is_asked_for_again_within_the_timeout(
        run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    cluster.etcd()
    # the first delete fails before the API takes it: the Node is not marked, so it is asked for again
    cluster.script = [None, (1, "", "Error from server (InternalError): etcdserver: request timed out")]
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert out["actions"] == ["delete", "etcd_member_removed"] and cluster.node is None
    assert cluster.verbs() == ["get", "delete", "get", "delete", "get"]
    assert cluster.timeouts == ["--timeout=120s", "--timeout=%ds" % (120 - k3s_node.DELETE_POLL)]


def test_a_deletion_the_api_keeps_refusing_fails_with_what_it_said(run_main, monkeypatch, fake_runner, tmp_path):
    cluster = Cluster(fake_runner)
    refused = (1, "", 'Error from server (Forbidden): nodes "%s" is forbidden' % NAME)

    def kubectl(argv):
        if argv[4] == "delete":
            return refused
        return Cluster.kubectl(cluster, argv)
    cluster.runner.answers["*"] = kubectl
    out = run(run_main, monkeypatch, cluster, tmp_path, "absent", drain=False)
    assert out["failed"] is True and cluster.node is not None
    assert out["msg"].endswith("kubectl delete node failed: " + refused[2])
    assert cluster.now >= 1000.0 + 120  # asked again until delete_timeout had passed
