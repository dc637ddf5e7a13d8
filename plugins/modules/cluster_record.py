#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_record
short_description: Write the record of what was applied to a seal.cluster cluster (applied.json)
version_added: 0.1.0
description:
  - Keeps the cluster's record on a master, C(<data_root>/<cluster>/applied.json) - the image,
    its digest, the k3s version, the masters and nodes, and each host's address - that
    C(playbooks/apply.yml) and C(playbooks/delete.yml) compare with the inventory and the live
    cluster. M(seal.cluster.cluster_record_info) reads it.
  - The file is written atomically, mode C(0600), and only when its content or mode differs.
  - V(absent) with O(hosts) drops those hosts from an existing record (a missing record stays
    missing); V(absent) without O(hosts) removes the record.
  - An existing record that O(hosts) are dropped from is read as untrusted data - at most 1 MiB,
    a regular file, every field type-checked - and an error names the file.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.record
options:
  state:
    description:
      - V(present) writes the record from O(cluster), O(image), O(digest), O(version),
        O(masters), O(nodes), O(addresses) and O(clusterfile).
      - V(absent) drops O(hosts) from the record, or removes it when O(hosts) is not given.
    type: str
    choices: [present, absent]
    default: present
  cluster:
    description: Name of the cluster. Required with O(state=present), unless only O(apps) are updated.
    type: str
  image:
    description: Reference of the cluster image.
    type: str
    default: ""
  digest:
    description: Digest of the cluster image (C(sha256:...)).
    type: str
    default: ""
  version:
    description: The k3s version the image carries.
    type: str
    default: ""
  masters:
    description: Inventory names of the cluster's servers. Required with O(state=present).
    type: list
    elements: str
  nodes:
    description: Inventory names of the cluster's agents.
    type: list
    elements: str
    default: []
  addresses:
    description: Each host's address (its C(ansible_host); null when it has none), by inventory name.
    type: dict
    default: {}
  clusterfile:
    description: Path of the Clusterfile on the controller, when the inventory is one.
    type: str
  apps:
    description:
      - The apps launched on the cluster (M(seal.cluster.cluster_apps)'s RV(seal.cluster.cluster_apps#module:record_apps)),
        each with C(name), C(type), C(image), C(digest) and C(content) (the sha256 of what ran).
      - Not given, the record keeps the apps it holds. Given without O(cluster), only the apps of an
        existing record are replaced.
    type: list
    elements: dict
  hosts:
    description: With O(state=absent), the inventory names to drop from the record.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The record's JSON text and mode, before and after (it holds no secret).
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Record what was applied
  seal.cluster.cluster_record:
    path: /var/lib/seal/my-cluster/applied.json
    cluster: my-cluster
    image: k3s:v1.25.3
    digest: sha256:0123...
    version: v1.25.3+k3s1
    masters: [192.168.0.2]
    nodes: [192.168.0.5]
    addresses: {192.168.0.2: 192.168.0.2, 192.168.0.5: 192.168.0.5}

- name: Forget deleted hosts
  seal.cluster.cluster_record:
    path: /var/lib/seal/my-cluster/applied.json
    state: absent
    hosts: [192.168.0.5]
"""

RETURN = r"""
record:
  description: The record after this run (as it would be, in check mode); empty when there is none.
  returned: always
  type: dict
  sample: {"cluster": "my-cluster", "masters": ["192.168.0.2"], "nodes": [], "addresses": {"192.168.0.2": "192.168.0.2"},
           "image": "k3s:v1.25.3", "digest": "sha256:0123...", "version": "v1.25.3+k3s1", "clusterfile": null}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _cluster_record as rec
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import file_mode, write_atomic
from ansible_collections.seal.cluster.plugins.module_utils._names import check_absolute_path, check_cluster_name


class RecordWriter:
    def __init__(self, module):
        self.p = module.params
        self.check = module.check_mode
        self.diff = module._diff
        self.path = check_absolute_path(self.p["path"], "path")

    def wanted(self):
        """The record's content after this run, or None when it goes."""
        if self.p["state"] == "present":
            if self.p["hosts"] is not None:
                raise ModuleFailure("hosts: goes with state=absent (the hosts to drop from the record)")
            if self.p["cluster"] is None:
                if self.p["apps"] is None:
                    raise ModuleFailure("state=present needs cluster and masters (or only apps, to update the apps of a record)")
                record = rec.read(self.path)
                if not record and self.check:  # run.yml in check mode: the record is not written yet
                    return rec.checked({"apps": self.p["apps"]}, "arguments")
                if not record:
                    raise ModuleFailure("%s: no record to update the apps of (run.yml writes it)" % self.path)
                return dict(record, apps=rec.checked_apps(self.p["apps"], "arguments"))
            if self.p["masters"] is None:
                raise ModuleFailure("state=present needs masters with cluster")
            check_cluster_name(self.p["cluster"], "cluster")
            data = {key: self.p[key] for key in rec.SCHEMA}
            if data["apps"] is None:  # the apps launched earlier stay (role apps writes them)
                try:
                    data["apps"] = (rec.read(self.path) or {}).get("apps", [])
                except rec.RecordError:
                    data["apps"] = []  # not a record: overwritten below, the writer owns the file
            return rec.checked(data, "arguments")
        if self.p["hosts"] is None:
            return None
        record = rec.read(self.path)
        return rec.without_hosts(record, self.p["hosts"]) if record else None

    def run(self):
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            raise ModuleFailure("%s: is a directory, not a record" % self.path)
        wanted = self.wanted()
        try:
            before = rec.read_text(self.path)
        except rec.RecordError:
            before = "<not a record>\n"  # overwritten or removed below: the writer owns the file
        after = None if wanted is None else rec.render(wanted)
        mode = file_mode(self.path)
        if after is None:
            changed = os.path.lexists(self.path) and self.p["hosts"] is None
        else:
            changed = before != after or mode != rec.MODE
        result = {"changed": changed, "record": wanted or {}}
        if self.diff:
            result["diff"] = {"before_header": "%s (mode %s)" % (self.path, "absent" if mode is None else oct(mode)),
                              "after_header": "%s (mode %s)" % (self.path, "absent" if after is None else oct(rec.MODE)),
                              "before": before or "", "after": after or ""}
        if changed and not self.check:
            self.apply(after)
        return result

    def apply(self, after):
        try:
            if after is None:
                os.unlink(self.path)
            else:
                os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
                write_atomic(self.path, after, rec.MODE)
        except OSError as exc:
            raise ModuleFailure("%s: cannot be %s: %s" % (self.path, "removed" if after is None else "written",
                                                          exc.strerror or exc)) from exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            hosts=dict(type="list", elements="str"),
            **rec.options()
        ),
        supports_check_mode=True,
    )
    try:
        result = RecordWriter(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
