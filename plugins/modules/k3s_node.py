#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_node
short_description: Drain, cordon, uncordon or delete a k3s node
version_added: 0.1.0
description:
  - Runs on a k3s server other than the node it acts on, through C(k3s kubectl) and the server's
    admin kubeconfig.
  - V(absent) drains the node (with a timeout) and deletes the Node object with C(kubectl delete
    node), which waits until the Node is gone. On embedded etcd k3s holds every Node with a
    finalizer and its member controller releases a Node labelled etcd only once it removed the
    node's etcd member (the member with the node's name and address), so a Node gone is a member
    gone. While k3s cannot remove the member (for instance without enough started members) the
    Node stays and the module fails after O(delete_timeout), naming the finalizers that hold it.
  - The module watches the Node itself until it is gone, for O(delete_timeout) in all. Moments
    when the API fails (k3s removing the member that leads etcd makes the others elect a new
    leader) do not end the wait, and a deletion the API never got is asked for again.
    The module never talks to etcd and does not care which datastore the cluster has.
  - A node that is not Ready or whose host is unreachable (O(reachable=false)) is not drained
    (its pods cannot terminate); it is cordoned and deleted with a warning.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.kubeconfig
options:
  name:
    description: Node name (a DNS-1123 subdomain, as Kubernetes requires).
    type: str
    required: true
  address:
    description:
      - With O(state=absent), act only on a Node that reports this InternalIP; a Node of that name
        with other addresses (another machine's) is left alone with a warning.
    type: str
  host:
    description: Inventory name of the node's host, used in messages.
    type: str
  state:
    description:
      - V(absent) drains and deletes the node (k3s removes its etcd member, if any, before the Node goes).
      - V(drained) cordons and drains it.
      - V(schedulable) uncordons it.
    type: str
    choices: [absent, drained, schedulable]
    required: true
  drain:
    description: With O(state=absent), drain before deleting.
    type: bool
    default: true
  drain_timeout:
    description: Seconds C(kubectl drain) may take.
    type: int
    default: 120
  delete_timeout:
    description: Seconds C(kubectl delete node) may wait for the node's finalizers.
    type: int
    default: 120
  force:
    description:
      - Drain with C(--force) (pods without a controller are deleted) and, with O(state=absent),
        delete the node even when the drain did not finish.
    type: bool
    default: false
  reachable:
    description: Whether the node's host answers; an unreachable node is not drained.
    type: bool
    default: true
  in_inventory:
    description:
      - Whether the node's host is listed in the inventory. V(false) (a Node only the API or the
        cluster's record knows) removes it at the API level only and says so; nothing is done on,
        or connected to, the address the Node reports.
    type: bool
    default: true
attributes:
  check_mode:
    support: partial
    details:
      - The Node is read; a cordon, a drain of a schedulable node and a deletion are predicted.
      - A cordoned node's remaining pods are not listed, so their eviction shows only in a real run.
  diff_mode:
    support: full
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Remove node-3 from the cluster
  seal.cluster.k3s_node:
    name: node-3
    state: absent
    drain_timeout: 300
  delegate_to: "{{ groups['master'][0] }}"

- name: Drain before maintenance
  seal.cluster.k3s_node:
    name: node-3
    state: drained
  delegate_to: "{{ groups['master'][0] }}"
"""

RETURN = r"""
actions:
  description:
    - What was done, in order, among C(cordon), C(drain), C(delete), C(etcd_member_removed) (the
      Node of an etcd member is gone, which k3s allows only after removing the member), C(uncordon).
  returned: always
  type: list
  elements: str
etcd_member:
  description: The etcd member name k3s annotated the Node with (C(etcd.k3s.cattle.io/node-name)), or null.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import (
    API_ONLY_NOTE, KubeError, get_node, kubectl, summary)
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Runner

DELETE_POLL = 2  # seconds between looks at a Node being deleted


class NodeManager:
    def __init__(self, module, runner=None):
        self.module = module
        self.runner = runner or Runner(module)
        self.p = module.params
        self.who = "node %s (host %s)" % (self.p["name"], self.p["host"] or self.p["name"])
        self.actions = []

    def fail(self, msg, **kw):
        raise ModuleFailure("%s: %s" % (self.who, msg), actions=self.actions, **kw)

    def kubectl(self, *args):
        return kubectl(self.runner, *args, kubeconfig=self.p["kubeconfig"])

    def node(self):
        try:
            node = get_node(self.runner, self.p["name"], self.p["kubeconfig"])
        except KubeError as exc:
            self.fail("the API does not answer: %s" % exc)
        return summary(node) if node else None

    def cordon(self, node, value):
        if node["unschedulable"] == value or ("cordon" if value else "uncordon") in self.actions:
            return
        self.actions.append("cordon" if value else "uncordon")
        if self.module.check_mode:
            return
        rc, out, err = self.kubectl("cordon" if value else "uncordon", self.p["name"])
        if rc != 0:
            self.fail("kubectl %s failed: %s" % ("cordon" if value else "uncordon", (err or out).strip()))

    def drain(self, node, must_finish):
        if not self.p["reachable"] or not node["ready"]:
            self.module.warn("%s is %s: not drained (its pods cannot terminate), only cordoned"
                             % (self.who, "unreachable" if not self.p["reachable"] else "not Ready"))
            self.cordon(node, True)
            return
        args = ["drain", self.p["name"], "--ignore-daemonsets", "--delete-emptydir-data",
                "--timeout=%ds" % self.p["drain_timeout"]]
        if self.p["force"]:
            args.append("--force")
        if self.module.check_mode:
            if not node["unschedulable"]:
                self.actions.append("drain")
            return
        rc, out, err = self.kubectl(*args)
        if rc == 0:
            if "evicting" in out or not node["unschedulable"]:
                self.actions.append("drain")
            return
        seen = (err or out).strip()
        if must_finish and not self.p["force"]:
            self.fail("drain did not finish within %ss: %s (fix the pods, raise the timeout, or force)"
                      % (self.p["drain_timeout"], seen))
        self.actions.append("drain")
        self.module.warn("%s: drain did not finish (%s); continuing because force is set" % (self.who, seen))

    def delete(self, node):
        if node is None:
            return
        if self.p["drain"]:
            self.drain(node, must_finish=True)
        self.actions.append("delete")
        if not self.p["in_inventory"]:
            self.module.warn("%s: %s" % (self.who, API_ONLY_NOTE))
        elif not self.p["reachable"]:
            self.module.warn("%s is unreachable: its node is removed from the cluster at the API level only; k3s may "
                             "still be installed there: reset it (playbooks/reset.yml --limit %s) before reusing it"
                             % (self.who, self.p["host"] or self.p["name"]))
        if not self.module.check_mode:
            self.delete_and_wait()
        if node["etcd"]:
            self.actions.append("etcd_member_removed")

    def delete_and_wait(self):
        """kubectl delete node, then watch the Node until it is gone or delete_timeout has passed.
        Observed, not assumed: kubectl's own wait also ends early when the API fails for a moment,
        which k3s's member removal causes when the member it removes leads etcd (the others elect
        a new leader); a Node still marked for deletion is held by a finalizer whatever kubectl
        said, and one not marked never got the deletion, which is asked for again."""
        started = time.monotonic()
        deadline = started + self.p["delete_timeout"]
        ask, said, left = True, "", None
        while True:
            if ask:
                rc, out, err = self.kubectl("delete", "node", self.p["name"], "--ignore-not-found",
                                            "--timeout=%ds" % max(1, round(deadline - time.monotonic())))
                said = (err or out).strip() if rc != 0 else ""
            try:
                node = get_node(self.runner, self.p["name"], self.p["kubeconfig"])
            except KubeError as exc:
                node, said = False, "the API does not answer: %s" % exc
            if node is None:
                return
            if node:
                left = summary(node)
            ask = node is not False and not left["deleting"]
            if time.monotonic() >= deadline:
                break
            time.sleep(DELETE_POLL)
        waited = int(time.monotonic() - started)
        if left is not None and left["deleting"]:
            self.fail("the Node is still there %ss after its deletion, held by finalizer(s) %s%s; it goes when "
                      "k3s releases it (run again to wait longer)%s"
                      % (waited, ", ".join(left["finalizers"]) or "-",
                         ": k3s has not removed its etcd member %s (see the journal of the k3s servers: an etcd "
                         "member is removed only while enough members are started)" % left["etcd_member"]
                         if left["etcd"] else "", "; last seen: %s" % said if said else ""))
        self.fail("kubectl delete node failed: %s" % (said or "the Node is still there %ss later" % waited))

    def run(self):
        state = self.p["state"]
        if self.p["name"] == names.node_name() and state == "absent":
            self.fail("a node cannot be deleted through its own API server; run this on another server")
        node = self.node()
        if node is not None and state == "absent" and self.p["address"] and self.p["address"] not in node["addresses"]:
            self.module.warn("%s: the Node of that name reports %s, not %s: another machine's, left alone"
                             % (self.who, ", ".join(node["addresses"]) or "no address", self.p["address"]))
            node = None
        before = self.describe(node)
        if state == "absent":
            self.delete(node)
        elif node is None:
            self.fail("no such node in the cluster")
        elif state == "drained":
            # the node as it was: a schedulable node's drain is a change in check mode and in a real run alike
            self.cordon(node, True)
            self.drain(node, must_finish=True)
        else:
            self.cordon(node, False)
        after = "absent\n" if state == "absent" else self.describe(dict(node, unschedulable=state == "drained"))
        result = {"changed": bool(self.actions), "actions": self.actions, "etcd_member": (node or {}).get("etcd_member")}
        if self.module._diff and self.actions:
            result["diff"] = {"before_header": "node/%s" % self.p["name"], "after_header": "node/%s" % self.p["name"],
                              "before": before, "after": after}
        return result

    @staticmethod
    def describe(node):
        if node is None:
            return "absent\n"
        return "ready: %s\nunschedulable: %s\nversion: %s\n" % (node["ready"], node["unschedulable"], node["version"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            address=dict(type="str"),
            host=dict(type="str"),
            state=dict(type="str", required=True, choices=["absent", "drained", "schedulable"]),
            drain=dict(type="bool", default=True),
            drain_timeout=dict(type="int", default=120),
            delete_timeout=dict(type="int", default=120),
            force=dict(type="bool", default=False),
            reachable=dict(type="bool", default=True),
            in_inventory=dict(type="bool", default=True),
            kubeconfig=dict(type="path", default=layout.KUBECONFIG),
        ),
        supports_check_mode=True,
    )
    try:
        names.check_node_name(module.params["name"], "name")
        result = NodeManager(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
