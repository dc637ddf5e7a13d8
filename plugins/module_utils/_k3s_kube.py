# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to a k3s cluster from one of its servers: `k3s kubectl` with the server's admin
kubeconfig, nothing else. The collection never talks to etcd: k3s owns its members (a Node
labelled etcd is released by k3s's member controller only once its member is removed), and
etcd's client certificates exist on every server whatever the datastore, so they say nothing
about it (K3S-REFERENCE §10)."""

from __future__ import annotations

import json

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import K3S_BIN as K3S
from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import KUBECONFIG
SERVER_LABEL = "node-role.kubernetes.io/control-plane"
MASTER_LABEL = "node-role.kubernetes.io/master"
ETCD_LABEL = "node-role.kubernetes.io/etcd"
ETCD_NAME_NOTE = "etcd.k3s.cattle.io/node-name"
# What a plan and a deletion say of a host the inventory does not list (never connected to).
API_ONLY_NOTE = "not in the inventory: removed from the API only; the host itself was not touched"


class KubeError(Exception):
    pass


def kubectl(module, *args, kubeconfig=KUBECONFIG, k3s=K3S):
    """`k3s kubectl` as root with the server's kubeconfig; module is an AnsibleModule or a
    _systemd.Runner (anything with run_command)."""
    return module.run_command([k3s, "kubectl", "--kubeconfig", kubeconfig] + list(args))


def server_ready(module, node_name, kubeconfig=KUBECONFIG, k3s=K3S):
    """(True, "") when the server answers /readyz and its Node is Ready, else (False, what was seen)."""
    rc, out, err = kubectl(module, "get", "--raw", "/readyz", kubeconfig=kubeconfig, k3s=k3s)
    if rc != 0 or out.strip() != "ok":
        return False, "/readyz: %s" % (out.strip() or err.strip())
    rc, out, err = kubectl(module, "get", "node", node_name, "-o",
                           "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}", kubeconfig=kubeconfig, k3s=k3s)
    if rc == 0 and out.strip() == "True":
        return True, ""
    return False, "node %s Ready=%s %s" % (node_name, out.strip() or "?", err.strip())


def taint_id(t):
    return "%s:%s" % (t["key"], t["effect"])


def taint_text(t):
    return "%s%s:%s" % (t["key"], "=" + t["value"] if t.get("value") else "", t["effect"])


def ready(node):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def summary(node):
    """The facts lifecycle decisions need about a Node object."""
    meta = node.get("metadata", {})
    labels = meta.get("labels", {}) or {}
    notes = meta.get("annotations", {}) or {}
    addresses = [a["address"] for a in node.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP"]
    if notes.get("k3s.io/internal-ip"):
        for address in notes["k3s.io/internal-ip"].split(","):
            if address and address not in addresses:
                addresses.append(address)
    return {
        "name": meta.get("name"),
        "addresses": addresses,
        "server": labels.get(SERVER_LABEL) == "true" or labels.get(MASTER_LABEL) == "true",
        "etcd": labels.get(ETCD_LABEL) == "true",
        "etcd_member": notes.get(ETCD_NAME_NOTE),
        "deleting": bool(meta.get("deletionTimestamp")),
        "finalizers": list(meta.get("finalizers") or []),
        "ready": ready(node),
        "unschedulable": bool(node.get("spec", {}).get("unschedulable")),
        "version": node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
    }


def get_nodes(module, kubeconfig=KUBECONFIG):
    rc, out, err = kubectl(module, "get", "nodes", "-o", "json", kubeconfig=kubeconfig)
    if rc != 0:
        raise KubeError((err or out).strip() or "kubectl get nodes failed (rc %d)" % rc)
    return json.loads(out).get("items", [])


def get_node(module, name, kubeconfig=KUBECONFIG):
    """The Node object, or None when it does not exist."""
    rc, out, err = kubectl(module, "get", "node", name, "-o", "json", kubeconfig=kubeconfig)
    if rc != 0:
        if "NotFound" in err or "not found" in err:
            return None
        raise KubeError((err or out).strip() or "kubectl get node %s failed (rc %d)" % (name, rc))
    return json.loads(out)
