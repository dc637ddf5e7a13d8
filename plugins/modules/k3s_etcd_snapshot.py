#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_etcd_snapshot
short_description: Take, prune or delete k3s etcd snapshots (or a sqlite server's database copies) on a server
version_added: 0.1.0
description:
  - Runs C(k3s etcd-snapshot) on a k3s server with embedded etcd (k3s reads its config.yaml, so
    C(etcd-snapshot-dir) and the etcd client certificates are k3s's own).
  - V(present) takes an on-demand snapshot C(<name>-<node name>-<unix ts>) and reports its path,
    size and sha256. Every run takes a new one.
  - V(pruned) keeps the newest O(retention) snapshots of base name O(name) (C(k3s etcd-snapshot prune));
    V(absent) deletes the snapshots O(snapshots) (C(k3s etcd-snapshot delete)).
  - On a single server whose datastore is sqlite (no C(cluster-init)), which k3s cannot snapshot,
    V(present) takes what k3s documents as its backup (docs.k3s.io datastore/backup-restore,
    "take a copy of /var/lib/rancher/k3s/server/db/"), a consistent copy of C(server/db/state.db)
    made with SQLite's online backup API while k3s runs, named and placed as an etcd snapshot
    would be (C(<name>-<node name>-<unix ts>), 0600; O(compress) does not apply); V(pruned) and
    V(absent) remove those copies. C(snapshot.datastore) says which it was.
  - Fails on a server with neither (an external datastore, or no data yet).
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  state:
    description: What to do.
    type: str
    choices: [present, pruned, absent]
    default: present
  name:
    description: The snapshots' base name (k3s C(--name)); a DNS-1123 label.
    type: str
    default: on-demand
  compress:
    description: Zip the snapshot (k3s C(--etcd-snapshot-compress)); the file then ends in C(.zip).
    type: bool
    default: false
  retention:
    description: For V(pruned), how many snapshots of O(name) to keep (at least 1).
    type: int
    default: 5
  snapshots:
    description: For V(absent), the snapshot file names to delete.
    type: list
    elements: str
    default: []
  data_dir:
    description: k3s data directory.
    type: path
    default: /var/lib/rancher/k3s
attributes:
  check_mode:
    support: full
    details: Reports the snapshot it would take or the files it would remove, and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: V(pruned) and V(absent) are idempotent; V(present) takes a new snapshot at every run.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Take a snapshot
  seal.cluster.k3s_etcd_snapshot:
    name: seal-backup
  register: snap

- name: Keep the three newest
  seal.cluster.k3s_etcd_snapshot:
    state: pruned
    name: seal-backup
    retention: 3
"""

RETURN = r"""
snapshot:
  description: The snapshot taken (V(present) outside check mode).
  returned: when state is present
  type: dict
  contains:
    name:
      description: File name.
      type: str
    path:
      description: Path on the server.
      type: str
    size:
      description: Size in bytes.
      type: int
    datastore:
      description: V(etcd) (a k3s etcd snapshot) or V(sqlite) (a copy of the sqlite database).
      type: str
    sha256:
      description: SHA-256 of the file.
      type: str
removed:
  description: Snapshot files removed (or that would be).
  returned: when state is pruned or absent
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_host as k3s_host
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_snapshot as snap
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import list_dir, remove_path, sha256_file


class Snapshots(layout.HostManager):
    def __init__(self, module, host=None, runner=None):
        super().__init__(module, host, runner)
        configured = k3s_host.config_value(self.host.config, "etcd-snapshot-dir")
        self.dir = snap.snapshot_dir(self.p["data_dir"], configured)
        self.sqlite = snap.sqlite_data(self.p["data_dir"])

    def k3s(self, *args):
        rc, out, err = self.runner.run([self.host.k3s_bin, "etcd-snapshot"] + list(args))
        if rc != 0:
            lines = [line for line in (err or out).splitlines() if line.strip()]
            raise ModuleFailure("k3s etcd-snapshot %s failed (rc %d): %s" % (args[0], rc, lines[-1] if lines else ""),
                                output=lines[-20:])
        return out

    def files(self):
        return sorted(n for n in list_dir(self.dir) if os.path.isfile(os.path.join(self.dir, n)))

    def present(self):
        if self.sqlite:
            return self.sqlite_copy()
        if not snap.etcd_data(self.p["data_dir"]):
            raise ModuleFailure("neither embedded etcd nor sqlite data in %s: nothing to back up (an external "
                                "datastore is backed up by its own tools)" % self.p["data_dir"])
        if self.check:
            return {"changed": True, "snapshot": {}}
        before = set(self.files())
        args = ["save", "--name", self.p["name"]] + (["--etcd-snapshot-compress"] if self.p["compress"] else [])
        self.k3s(*args)
        new = snap.of_base([n for n in self.files() if n not in before], self.p["name"])
        if not new:
            raise ModuleFailure("k3s etcd-snapshot save reported success but no new snapshot %s-* is in %s"
                                % (self.p["name"], self.dir))
        return {"changed": True, "snapshot": self.describe(new[0], "etcd")}

    def describe(self, name, datastore):
        path = os.path.join(self.dir, name)
        return {"name": name, "path": path, "size": os.path.getsize(path), "sha256": sha256_file(path),
                "datastore": datastore}

    def sqlite_copy(self):
        if self.check:
            return {"changed": True, "snapshot": {}}
        node = names.node_name(k3s_host.config_value(self.host.config, "node-name"))
        name = "%s-%s-%d" % (self.p["name"], node, int(time.time()))
        if not os.path.isdir(self.dir):
            os.makedirs(self.dir, 0o700)
        try:
            snap.copy_sqlite(snap.sqlite_file(self.p["data_dir"]), os.path.join(self.dir, name))
        except Exception as exc:  # pylint: disable=broad-exception-caught  # sqlite3.Error, OSError
            remove_path(os.path.join(self.dir, name))
            raise ModuleFailure("copying the sqlite datastore %s failed: %s" % (snap.sqlite_file(self.p["data_dir"]), exc))
        return {"changed": True, "snapshot": self.describe(name, "sqlite")}

    def pruned(self):
        if self.p["retention"] < 1:
            raise ModuleFailure("retention must be at least 1")
        doomed = snap.of_base(self.files(), self.p["name"])[self.p["retention"]:]
        if doomed and not self.check:
            self.remove(doomed, ["prune", "--name", self.p["name"], "--snapshot-retention", str(self.p["retention"])])
        return {"changed": bool(doomed), "removed": doomed}

    def absent(self):
        doomed = [n for n in self.p["snapshots"] if n in self.files()]
        if doomed and not self.check:
            self.remove(doomed, ["delete"] + doomed)
        return {"changed": bool(doomed), "removed": doomed}

    def remove(self, doomed, k3s_args):
        """k3s removes etcd snapshots; a sqlite server's copies (no etcd-snapshot there) go here."""
        if self.sqlite:
            for name in doomed:
                remove_path(os.path.join(self.dir, name))
        else:
            self.k3s(*k3s_args)

    def run(self):
        if not snap.BASE_NAME.match(self.p["name"]):
            raise ModuleFailure("name %r is not a DNS-1123 label" % self.p["name"])
        for name in self.p["snapshots"]:
            if "/" in name or name in (".", ".."):
                raise ModuleFailure("snapshots: %r is not a file name" % name)
        return getattr(self, self.p["state"])()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["present", "pruned", "absent"], default="present"),
            name=dict(type="str", default="on-demand"),
            compress=dict(type="bool", default=False),
            retention=dict(type="int", default=5),
            snapshots=dict(type="list", elements="str", default=[]),
            data_dir=dict(type="path", default=layout.DATA_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result = Snapshots(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
