#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_cluster_info
short_description: Read a k3s cluster's nodes, etcd members and seal.cluster record from one server
version_added: 0.1.0
description:
  - Runs on a k3s server. Reads the Node objects through C(k3s kubectl) and the server's admin
    kubeconfig, the embedded etcd's members through etcd's JSON gateway on C(https://127.0.0.1:2379)
    with k3s's etcd client certificate, and the record seal.cluster writes after each install
    (C(applied.json)).
  - Changes nothing. When the API does not answer, RV(api_ready) is false and RV(nodes) is
    empty rather than failing, so that playbooks can choose another server or decide.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.info_module
options:
  record:
    description:
      - Path of the cluster's record C(applied.json) on this server (see M(seal.cluster.cluster_record)).
      - Read as untrusted data - at most 1 MiB, a regular file, every field type-checked - and an
        error names the file.
    type: path
  kubeconfig:
    description: Kubeconfig of the server.
    type: path
    default: /etc/rancher/k3s/k3s.yaml
  data_dir:
    description: k3s data directory (for the etcd client certificate).
    type: path
    default: /var/lib/rancher/k3s
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Read the cluster
  seal.cluster.k3s_cluster_info:
    record: /var/lib/seal/my-cluster/applied.json
  register: cluster_info
  run_once: true
"""

RETURN = r"""
api_ready:
  description: Whether the API answered.
  returned: always
  type: bool
api_error:
  description: What C(kubectl) said when the API did not answer.
  returned: when the API did not answer
  type: str
nodes:
  description:
    - One entry per Node, C(name), C(addresses) (internal IPs), C(server) (control-plane),
      C(etcd) (embedded etcd member), C(etcd_member) (member name annotation), C(ready),
      C(unschedulable), C(version) (kubelet version).
  returned: always
  type: list
  elements: dict
etcd_members:
  description: Members of the embedded etcd, C(id), C(name), C(peerURLs), C(clientURLs); null without embedded etcd or when it does not answer.
  returned: always
  type: list
  elements: dict
etcd_error:
  description: Why the members could not be read.
  returned: when this server has embedded etcd but it did not answer
  type: str
record:
  description:
    - The record at O(record) (see M(seal.cluster.cluster_record_info)), or an empty dict when there is none.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _cluster_record as record
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import Etcd, KubeError, get_nodes, summary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            record=dict(type="path"),
            kubeconfig=dict(type="path", default=layout.KUBECONFIG),
            data_dir=dict(type="path", default=layout.DATA_DIR),
        ),
        supports_check_mode=True,
    )
    result = {"changed": False, "api_ready": False, "nodes": [], "etcd_members": None}
    try:
        result["record"] = record.read(module.params["record"])
    except record.RecordError as exc:
        module.fail_json(msg=exc.msg, **result)
    if os.path.exists(module.params["kubeconfig"]):
        try:
            result["nodes"] = [summary(n) for n in get_nodes(module, module.params["kubeconfig"])]
            result["api_ready"] = True
        except KubeError as exc:
            result["api_error"] = str(exc)
    else:
        result["api_error"] = "%s does not exist: k3s server is not installed here" % module.params["kubeconfig"]
    etcd = Etcd(module.params["data_dir"])
    if etcd.present:
        try:
            result["etcd_members"] = etcd.members()
        except KubeError as exc:
            result["etcd_error"] = str(exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
