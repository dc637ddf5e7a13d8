"""k3s_node_labels: the taint grammar, and the labels/taints reconcile against a fake `k3s kubectl` (one Node,
changed as kubectl would): check predicts without writing, apply issues label/taint/annotate, a second run
issues nothing, a new wish removes only what this module set."""
import copy
import json

import pytest

from ansible_collections.seal.cluster.plugins.modules import k3s_node_labels
from ansible_collections.seal.cluster.plugins.modules.k3s_node_labels import parse_taint, taint_id, taint_text


@pytest.mark.parametrize("text, parsed", [
    ("dedicated=infra:NoSchedule", {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}),
    ("node-role.kubernetes.io/master:NoExecute", {"key": "node-role.kubernetes.io/master", "value": "", "effect": "NoExecute"}),
    ("k=:PreferNoSchedule", {"key": "k", "value": "", "effect": "PreferNoSchedule"}),
])
def test_parse_taint(text, parsed):
    assert parse_taint(text) == parsed
    assert taint_id(parsed) == "%s:%s" % (parsed["key"], parsed["effect"])
    assert parse_taint(taint_text(parsed)) == parsed


@pytest.mark.parametrize("bad", ["dedicated=infra", "k=v:Sometimes", ":NoSchedule", "a b=c:NoSchedule"])
def test_bad_taints_are_refused(bad):
    with pytest.raises(ValueError, match="NoSchedule|PreferNoSchedule|NoExecute"):
        parse_taint(bad)


def test_bad_taint_fails_module_before_api(run_module):
    out = run_module("k3s_node_labels", nodes=[{"name": "n1", "taints": ["oops"]}])
    assert out["failed"] is True
    assert out["msg"] == "nodes[0].taints[0]: 'oops' is not a taint (key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"


class FakeApi:
    """`k3s kubectl` against one in-memory Node, as kubectl does it: `get nodes -o json`, and
    `label|annotate node NAME k=v... k-... --overwrite`, `taint node NAME key[=value]:Effect... key:Effect-... --overwrite`;
    anything else is refused (rc 1). Every argv after `--kubeconfig PATH` is recorded."""

    def __init__(self, node):
        self.node = node
        self.calls = []

    def run_command(self, argv, **_kwargs):
        assert argv[1:4] == ["kubectl", "--kubeconfig", "/etc/rancher/k3s/k3s.yaml"], argv
        args = list(argv[4:])
        self.calls.append(args)
        if args == ["get", "nodes", "-o", "json"]:
            return 0, json.dumps({"kind": "List", "items": [copy.deepcopy(self.node)]}), ""
        if len(args) < 4 or args[1] != "node" or args[2] != self.node["metadata"]["name"] or args[-1] != "--overwrite":
            return 1, "", "error: unexpected arguments %r" % args
        meta = self.node["metadata"]
        for item in args[3:-1]:
            if args[0] in ("label", "annotate"):
                field = meta.setdefault("labels" if args[0] == "label" else "annotations", {})
                if item.endswith("-"):
                    field.pop(item[:-1], None)
                else:
                    key, value = item.split("=", 1)
                    field[key] = value
            elif args[0] == "taint":
                taints = self.node.setdefault("spec", {}).setdefault("taints", [])
                if item.endswith("-"):
                    key, effect = item[:-1].split(":")
                    taints[:] = [t for t in taints if (t["key"], t["effect"]) != (key, effect)]
                else:
                    new = parse_taint(item)
                    taints[:] = [t for t in taints if (t["key"], t["effect"]) != (new["key"], new["effect"])]
                    taints.append({k: v for k, v in new.items() if v})
            else:
                return 1, "", "error: unknown command %r" % args[0]
        return 0, "node/%s %s\n" % (args[2], args[0] + "ed"), ""

    def writes(self):
        return [c for c in self.calls if c[0] != "get"]


@pytest.fixture
def api(monkeypatch, tmp_path):
    from ansible.module_utils import basic
    from ansible_collections.seal.cluster.plugins.module_utils import _k3s_kube as kube

    k3s = tmp_path / "k3s"
    k3s.write_text("#!/bin/sh\n")
    monkeypatch.setattr(kube, "K3S", str(k3s))  # "is k3s installed" looks here; kubectl itself is the fake
    fake = FakeApi({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "seen": "by-others"},
                                 "annotations": {}},
                    "spec": {"taints": [{"key": "other", "effect": "NoExecute"}]},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}],
                               "nodeInfo": {"kubeletVersion": "v1.25.3+k3s1"}}})
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _module, argv, **kw: fake.run_command(argv, **kw))
    return fake


def test_labels_taints_check_apply_idempotent_then_changed(run_main, api):
    want = {"nodes": [{"name": "n1", "labels": {"tier": "infra"}, "taints": ["dedicated=infra:NoSchedule"]}],
            "version": "v1.25.3+k3s1", "wait_timeout": 1}

    check = run_main(k3s_node_labels, want, check=True, diff=True)
    assert check["changed"] is True and "pending" not in check and api.writes() == []
    assert check["diff"] == [{"before_header": "node/n1", "after_header": "node/n1",
                              "before": 'labels: {}\ntaints: ["other:NoExecute"]\n',
                              "after": 'labels: {"tier": "infra"}\ntaints: ["dedicated=infra:NoSchedule"]\n'}]

    applied = run_main(k3s_node_labels, want, diff=True)
    assert applied["changed"] is True
    assert api.writes() == [["label", "node", "n1", "tier=infra", "--overwrite"],
                            ["taint", "node", "n1", "dedicated=infra:NoSchedule", "--overwrite"],
                            ["annotate", "node", "n1", "seal.cluster/labels=tier", "seal.cluster/taints=dedicated:NoSchedule",
                             "--overwrite"]]
    assert applied["nodes"]["n1"]["labels"] == {"kubernetes.io/hostname": "n1", "seen": "by-others", "tier": "infra"}
    assert applied["nodes"]["n1"]["taints"] == ["other:NoExecute", "dedicated=infra:NoSchedule"]
    assert applied["nodes"]["n1"]["ready"] is True and applied["nodes"]["n1"]["version"] == "v1.25.3+k3s1"

    del api.calls[:]
    for check_mode in (True, False):
        again = run_main(k3s_node_labels, want, check=check_mode, diff=True)
        assert again["changed"] is False and again["diff"] == [] and api.writes() == []

    other = {"nodes": [{"name": "n1", "labels": {"zone": "a"}, "taints": []}], "wait_timeout": 1}
    predicted = run_main(k3s_node_labels, other, check=True)
    assert predicted["changed"] is True and api.writes() == []
    changed = run_main(k3s_node_labels, other)
    assert changed["changed"] is True
    # what this module set earlier goes; what others set (seen, other:NoExecute) stays
    assert api.writes() == [["label", "node", "n1", "zone=a", "tier-", "--overwrite"],
                            ["taint", "node", "n1", "dedicated:NoSchedule-", "--overwrite"],
                            ["annotate", "node", "n1", "seal.cluster/labels=zone", "seal.cluster/taints=", "--overwrite"]]
    assert changed["nodes"]["n1"]["labels"] == {"kubernetes.io/hostname": "n1", "seen": "by-others", "zone": "a"}
    assert changed["nodes"]["n1"]["taints"] == ["other:NoExecute"]
    del api.calls[:]
    assert run_main(k3s_node_labels, other)["changed"] is False and api.writes() == []


def test_a_node_is_found_by_its_internal_address_when_its_name_is_not_given(run_main, api):
    api.node["status"]["addresses"] = [{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "n1"}]
    want = {"nodes": [{"address": "10.0.0.5", "host": "h5", "labels": {"tier": "infra"}}], "wait_timeout": 1}
    applied = run_main(k3s_node_labels, want)
    assert applied["changed"] is True and api.writes()[0] == ["label", "node", "n1", "tier=infra", "--overwrite"]
    del api.calls[:]
    assert run_main(k3s_node_labels, want)["changed"] is False and api.writes() == []

    # an address no Node has: the gate names the host and the address (never a node of another host)
    gone = run_main(k3s_node_labels, {"nodes": [{"address": "10.0.0.6", "host": "h6"}], "wait_timeout": 0})
    assert gone["failed"] is True and "node with address 10.0.0.6 (host h6): not registered" in gone["msg"]
    pending = run_main(k3s_node_labels, {"nodes": [{"address": "10.0.0.6", "host": "h6"}]}, check=True)
    assert pending["pending"] is True and api.writes() == []


@pytest.mark.parametrize("node, msg", [({"host": "h"}, "nodes[0]: give the node's name or its address"),
                                       ({"address": "-l=x"}, "nodes[0].address")])
def test_a_node_without_name_needs_a_valid_address(run_module, node, msg):
    out = run_module("k3s_node_labels", nodes=[node])
    assert out["failed"] is True and msg in out["msg"]
