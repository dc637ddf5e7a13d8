#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_node_labels
short_description: Reconcile node labels and taints and gate on cluster health, from one server
version_added: 0.1.0
description:
  - Runs on a k3s server and talks to the API through C(k3s kubectl) with the server's kubeconfig.
  - Waits until the API is ready and every listed node is registered, Ready and running the
    expected version; on timeout fails with the nodes and what was seen on each. In check mode
    it does not wait, and reports RV(pending) when the cluster is not healthy (yet).
  - Sets the labels and taints each node should carry. Keys it set earlier and that are no
    longer wanted are removed; labels and taints set by others are left alone (the keys this
    module manages are recorded in the node annotations C(seal.cluster/labels) and C(seal.cluster/taints)).
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.kubeconfig
options:
  nodes:
    description: The nodes of the cluster, each found by O(nodes[].name) or else by O(nodes[].address).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Node name (a DNS-1123 subdomain, as Kubernetes requires).
        type: str
      address:
        description:
          - The node's address (its C(node-ip)); the node is the one whose C(InternalIP) (or
            C(k3s.io/internal-ip) annotation) it is. Used when O(nodes[].name) is not given, so that a host
            is matched to its node without knowing the name k3s registered it under.
        type: str
      host:
        description: Inventory name of the host, used in messages.
        type: str
      labels:
        description:
          - Labels the node must carry; keys and values as Kubernetes defines them (checked before
            the API is asked, so that no key can be read as a C(kubectl) flag).
        type: dict
        default: {}
      taints:
        description: Taints as C(key[=value]:Effect), in kubectl's grammar (key a label key, value a label value).
        type: list
        elements: str
        default: []
  version:
    description: Version every node must run (C(status.nodeInfo.kubeletVersion)); empty skips the check.
    type: str
  wait_timeout:
    description: Seconds to wait for the API and the nodes.
    type: int
    default: 300
attributes:
  check_mode:
    support: partial
    details:
      - Labels and taints of Ready nodes are compared and the changes predicted.
      - A cluster that is not healthy yet (being installed in the same check run) is reported as
        RV(pending) and changed, without comparing its nodes.
  diff_mode:
    support: full
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Labels, taints and health gates
  seal.cluster.k3s_node_labels:
    version: v1.25.3+k3s1
    nodes:
      - name: node-1
        labels: {zone: a}
      - address: 192.168.0.5
        host: worker-5
        taints: ["dedicated=infra:NoSchedule"]
  run_once: true
"""

RETURN = r"""
pending:
  description: In check mode, V(true) when the cluster is not (yet) healthy, so that nothing was checked further.
  returned: in check mode, when the cluster is not healthy
  type: bool
problems:
  description: What is not healthy yet (check mode).
  returned: when RV(pending)
  type: list
  elements: str
nodes:
  description: Per node name, C(ready), C(version), C(labels) and C(taints) as seen at the end.
  returned: success
  type: dict
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_kube as kube
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import taint_id, taint_text
from ansible_collections.seal.cluster.plugins.module_utils._names import parse_taint

LABELS_NOTE = "seal.cluster/labels"
TAINTS_NOTE = "seal.cluster/taints"


def check_nodes(nodes):
    """Node names, label keys and values and taints as Kubernetes defines them, so that none can
    be read as a kubectl flag (a key starting with '-') or reach kubectl malformed."""
    for i, want in enumerate(nodes):
        where = "nodes[%d]" % i
        if want["name"] is None:
            if not want["address"]:
                raise ModuleFailure("%s: give the node's name or its address" % where)
            want["address"] = names.check_ip(want["address"], where + ".address")  # canonical, as the API shows it
        else:
            names.check_node_name(want["name"], where + ".name")
        for key, value in want["labels"].items():
            names.check_label_key(key, "%s.labels" % where)
            names.check_label_value(str(value), "%s.labels.%s" % (where, key))
        for j, taint in enumerate(want["taints"]):
            parse_taint(taint, "%s.taints[%d]" % (where, j))


def _valid(check, value):
    try:
        check(value)
    except names.InvalidName:
        return False
    return True


class ClusterReconciler:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.changes = []
        self.diffs = []

    def kubectl(self, *args):
        return kube.kubectl(self.module, *args, kubeconfig=self.p["kubeconfig"])

    def get_nodes(self):
        if not os.path.exists(kube.K3S):
            return None, "%s is not installed" % kube.K3S
        try:
            return {n["metadata"]["name"]: n for n in kube.get_nodes(self.module, kubeconfig=self.p["kubeconfig"])}, ""
        except kube.KubeError as exc:
            return None, str(exc)

    @staticmethod
    def find(nodes, want):
        """The Node object wanted: by name, else the one whose internal address is want's address."""
        if want["name"] is not None:
            return nodes.get(want["name"])
        return next((n for n in nodes.values() if want["address"] in kube.summary(n)["addresses"]), None)

    @staticmethod
    def who(want):
        if want["name"] is None:
            return "node with address %s (host %s)" % (want["address"], want.get("host") or want["address"])
        return "%s (host %s)" % (want["name"], want.get("host") or want["name"])

    def problems(self, nodes):
        out = []
        for want in self.p["nodes"]:
            who = self.who(want)
            node = self.find(nodes, want)
            if node is None:
                out.append("%s: not registered" % who)
                continue
            if not kube.ready(node):
                out.append("%s: not Ready" % who)
            version = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion")
            if self.p["version"] and version != self.p["version"]:
                out.append("%s: runs %s, expected %s" % (who, version, self.p["version"]))
        return out

    def wait(self):
        deadline = time.monotonic() + self.p["wait_timeout"]
        while True:
            nodes, err = self.get_nodes()
            seen = ["API not answering: %s" % err] if nodes is None else self.problems(nodes)
            if not seen:
                return nodes, []
            if self.module.check_mode:
                # a cluster being installed in this check run: report what is still to come
                return None, seen
            if time.monotonic() > deadline:
                raise ModuleFailure("cluster not healthy after %ss: %s" % (self.p["wait_timeout"], "; ".join(seen)))
            time.sleep(2)

    def reconcile(self, node, want):
        meta = node["metadata"]
        labels = meta.get("labels", {})
        notes = meta.get("annotations", {})
        # the annotations come from the API (not trusted): only well-formed keys are acted on
        managed = [k for k in notes.get(LABELS_NOTE, "").split(",") if _valid(names.check_label_key, k)]
        args = []
        for key, value in sorted(want["labels"].items()):
            if labels.get(key) != str(value):
                args.append("%s=%s" % (key, value))
        for key in managed:
            if key not in want["labels"] and key in labels:
                args.append(key + "-")
        wanted_note = ",".join(sorted(want["labels"]))
        taints = node.get("spec", {}).get("taints", [])
        have = {taint_id(t): t for t in taints}
        wanted = [parse_taint(t) for t in want["taints"]]
        taint_args = [taint_text(t) for t in wanted if have.get(taint_id(t), {}).get("value", "") != t["value"] or taint_id(t) not in have]
        managed_t = [k for k in notes.get(TAINTS_NOTE, "").split(",") if _valid(parse_taint, k)]
        taint_args += [tid + "-" for tid in managed_t if tid in have and tid not in {taint_id(t) for t in wanted}]
        wanted_tnote = ",".join(sorted(taint_id(t) for t in wanted))
        note_args = []
        if notes.get(LABELS_NOTE, "") != wanted_note:
            note_args.append("%s=%s" % (LABELS_NOTE, wanted_note))
        if notes.get(TAINTS_NOTE, "") != wanted_tnote:
            note_args.append("%s=%s" % (TAINTS_NOTE, wanted_tnote))
        if not (args or taint_args or note_args):
            return
        name = meta["name"]
        self.changes.append(name)
        shown = {k: labels[k] for k in sorted(set(want["labels"]) | set(managed)) if k in labels}
        self.diffs.append({"before_header": "node/%s" % name, "after_header": "node/%s" % name,
                           "before": "labels: %s\ntaints: %s\n" % (json.dumps(shown), json.dumps(sorted(taint_text(t) for t in taints))),
                           "after": "labels: %s\ntaints: %s\n" % (json.dumps(dict(sorted(want["labels"].items()))),
                                                                  json.dumps(sorted(want["taints"])))})
        if self.module.check_mode:
            return
        for cmd, items in (("label", args), ("taint", taint_args), ("annotate", note_args)):
            if items:
                rc, out, err = self.kubectl(cmd, "node", name, *items, "--overwrite")
                if rc != 0:
                    raise ModuleFailure("kubectl %s node %s failed: %s" % (cmd, name, (err or out).strip()))

    def run(self):
        try:
            check_nodes(self.p["nodes"])
        except names.InvalidName as exc:
            raise ModuleFailure(str(exc)) from exc
        nodes, pending = self.wait()
        if pending:
            return {"changed": True, "pending": True, "problems": pending, "nodes": {}}
        for want in self.p["nodes"]:
            self.reconcile(self.find(nodes, want), want)
        if self.changes and not self.module.check_mode:
            nodes, _err = self.get_nodes()
        result = {"changed": bool(self.changes), "nodes": {
            name: {"ready": kube.ready(n), "version": n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
                   "labels": n["metadata"].get("labels", {}), "taints": [taint_text(t) for t in n.get("spec", {}).get("taints", [])]}
            for name, n in (nodes or {}).items()}}
        if self.module._diff:
            result["diff"] = self.diffs
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str"),
                address=dict(type="str"),
                host=dict(type="str"),
                labels=dict(type="dict", default={}),
                taints=dict(type="list", elements="str", default=[]),
            )),
            version=dict(type="str"),
            wait_timeout=dict(type="int", default=300),
            kubeconfig=dict(type="path", default=kube.KUBECONFIG),
        ),
        supports_check_mode=True,
    )
    try:
        result = ClusterReconciler(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
