#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_record_info
short_description: Read a seal.cluster cluster's record (applied.json) from a master
version_added: 0.1.0
description:
  - Reads the record M(seal.cluster.cluster_record) keeps on a master, as untrusted data - at
    most 1 MiB, a regular file, every field type-checked - and fails naming the file when it is
    not a record.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.info_module
  - seal.cluster.record
options: {}
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Read the record on the first master
  delegate_to: "{{ groups['master'][0] }}"
  run_once: true
  seal.cluster.cluster_record_info:
    path: /var/lib/seal/my-cluster/applied.json
  register: cluster_record

- name: Show the image the cluster was installed from
  ansible.builtin.debug:
    msg: "{{ cluster_record.record.image }} ({{ cluster_record.record.digest }})"
  when: cluster_record.exists
"""

RETURN = r"""
exists:
  description: Whether there is a record.
  returned: always
  type: bool
record:
  description:
    - The record - C(cluster), C(image), C(digest), C(version), C(masters), C(nodes),
      C(addresses), C(clusterfile) - or an empty dict when there is none.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _cluster_record as rec
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._names import check_absolute_path


def read(params):
    record = rec.read(check_absolute_path(params["path"], "path"))
    return {"changed": False, "exists": bool(record), "record": record}


def main():
    module = AnsibleModule(
        argument_spec=dict(path=dict(type="path", required=True)),
        supports_check_mode=True,
    )
    try:
        result = read(module.params)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
