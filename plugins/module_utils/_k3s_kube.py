# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to a k3s cluster from one of its servers: `k3s kubectl` with the server's admin
kubeconfig, and the embedded etcd's v3 JSON gateway on https://127.0.0.1:2379 with the etcd
client certificate k3s keeps in DATA/server/tls/etcd (K3S-REFERENCE §4)."""

from __future__ import annotations

import json
import os
import re

from ansible.module_utils.urls import open_url

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import K3S_BIN as K3S
from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import KUBECONFIG
ETCD_URL = "https://127.0.0.1:2379"
SERVER_LABEL = "node-role.kubernetes.io/control-plane"
MASTER_LABEL = "node-role.kubernetes.io/master"
ETCD_LABEL = "node-role.kubernetes.io/etcd"
ETCD_NAME_NOTE = "etcd.k3s.cattle.io/node-name"
# What a plan and a deletion say of a host the inventory does not list (never connected to).
API_ONLY_NOTE = "not in the inventory: removed from the API only; the host itself was not touched"


class KubeError(Exception):
    pass


def member_matches(member, node_name, address):
    """Whether an etcd member belongs to a node: k3s names members <node-name>-<8 hex>; the
    peer URLs carry the node's address."""
    name = member.get("name") or ""
    if node_name and re.match(r"^%s-[0-9a-f]{8}$" % re.escape(node_name), name):
        return True
    if address:
        for url in member.get("peerURLs") or member.get("peer_urls") or []:
            host = re.sub(r"^[a-z]+://", "", url).rsplit(":", 1)[0].strip("[]")
            if host == address:
                return True
    return False


def kubectl(module, *args, kubeconfig=KUBECONFIG, k3s=K3S):
    """`k3s kubectl` as root with the server's kubeconfig; module is an AnsibleModule or a
    _systemd.Runner (anything with run_command)."""
    return module.run_command([k3s, "kubectl", "--kubeconfig", kubeconfig] + list(args))


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


class Etcd:
    """The embedded etcd, through its JSON gateway with k3s's etcd client certificate."""

    def __init__(self, data_dir, url=ETCD_URL, timeout=10):
        tls = os.path.join(data_dir, "server", "tls", "etcd")
        self.ca = os.path.join(tls, "server-ca.crt")
        self.cert = os.path.join(tls, "client.crt")
        self.key = os.path.join(tls, "client.key")
        self.url = url
        self.timeout = timeout

    @property
    def present(self):
        """Whether this server runs embedded etcd (its client certificate exists)."""
        return all(os.path.exists(p) for p in (self.ca, self.cert, self.key))

    def call(self, path, body):
        try:
            resp = open_url(self.url + path, data=json.dumps(body), method="POST", ca_path=self.ca,
                            client_cert=self.cert, client_key=self.key, timeout=self.timeout,
                            headers={"Content-Type": "application/json"}, validate_certs=True)
            return json.loads(resp.read() or b"{}")
        except Exception as exc:  # urllib, ssl and socket errors alike: report, do not crash
            raise KubeError("etcd %s%s: %s" % (self.url, path, exc)) from exc

    def members(self):
        return [{"id": str(m.get("ID")), "name": m.get("name") or "", "peerURLs": m.get("peerURLs") or [],
                 "clientURLs": m.get("clientURLs") or []}
                for m in self.call("/v3/cluster/member/list", {}).get("members") or []]

    def remove(self, member_id):
        return self.call("/v3/cluster/member/remove", {"ID": str(member_id)})
