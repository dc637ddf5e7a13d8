#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_cluster_info
short_description: Read a k3s cluster's nodes and seal.cluster record from one server
version_added: 0.1.0
description:
  - Runs on a k3s server. Reads the Node objects through C(k3s kubectl) and the server's admin
    kubeconfig, and the record seal.cluster writes after each install (C(applied.json)).
  - Nothing of etcd is read; the Nodes labelled C(node-role.kubernetes.io/etcd) are the embedded
    etcd's members as k3s manages them (RV(nodes) C(etcd)).
  - Changes nothing. When the API does not answer, RV(api_ready) is false and RV(nodes) is
    empty rather than failing, so that playbooks can choose another server or decide.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.info_module
  - seal.cluster.kubeconfig
options:
  record:
    description:
      - Path of the cluster's record C(applied.json) on this server (see M(seal.cluster.cluster_record)).
      - Read as untrusted data - at most 1 MiB, a regular file, every field type-checked - and an
        error names the file.
    type: path
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
      C(etcd) (labelled an embedded etcd member by k3s), C(etcd_member) (member name annotation),
      C(deleting) (deletion requested, held by C(finalizers)), C(ready), C(unschedulable),
      C(version) (kubelet version).
  returned: always
  type: list
  elements: dict
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
from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import KubeError, get_nodes, summary


def main():
    module = AnsibleModule(
        argument_spec=dict(
            record=dict(type="path"),
            kubeconfig=dict(type="path", default=layout.KUBECONFIG),
        ),
        supports_check_mode=True,
    )
    result = {"changed": False, "api_ready": False, "nodes": []}
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
    module.exit_json(**result)


if __name__ == "__main__":
    main()
