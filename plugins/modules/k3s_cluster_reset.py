#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_cluster_reset
short_description: Reset a k3s embedded-etcd cluster to one server (from a snapshot or not) and rejoin the others
version_added: 0.1.0
description:
  - V(reset), on one server, stops C(k3s.service), runs C(k3s server --cluster-reset) (with
    C(--cluster-reset-restore-path=) O(snapshot) when given) in the foreground with a copy of
    config.yaml without C(server) (k3s refuses a reset while it is set; the token stays in the
    token file, never on the command line), checks k3s's message that the reset is done, starts
    the service again and waits until the server is ready. Without O(snapshot) this is the
    quorum-loss recovery on the surviving server; with it, the restore of a backup.
  - On a single server whose datastore is sqlite, V(reset) with a sqlite O(snapshot) (a copy of
    C(state.db) that M(seal.cluster.k3s_etcd_snapshot) took) restores what k3s documents
    (docs.k3s.io datastore/backup-restore, "restore the contents of /var/lib/rancher/k3s/server/db
    (and the token)"). k3s is stopped, C(<data_dir>/server/db) moved aside to
    C(<data_dir>/server/db-<unix ts>), a new C(server/db) made holding the copy as C(state.db), and k3s
    started and waited for. A sqlite server has no quorum, so V(reset) without O(snapshot) refuses
    there, as does an etcd snapshot on a sqlite server or a sqlite copy on an etcd one. The token
    is the caller's to check (k3s decrypts the bootstrap data with it).
  - V(rejoin), on every other server afterwards, one at a time, stops C(k3s.service), moves
    C(<data_dir>/server/db) aside to C(<data_dir>/server/db-<unix ts>) (k3s - "Backup and delete
    ${datadir}/server/db on each peer etcd server and rejoin the nodes"), starts the service, which
    joins the reset cluster through its configured C(server), and waits until it is ready.
  - V(healthy) waits until every Node the API lists is Ready (agents reconnect by themselves).
  - These are operations, not states; every run of V(reset) or V(rejoin) acts.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  mode:
    description: What to do on this host.
    type: str
    choices: [reset, rejoin, healthy]
    required: true
  snapshot:
    description: For V(reset), the snapshot file on this host to restore (plain or C(.zip)); none for a reset without restore.
    type: path
  data_dir:
    description: k3s data directory.
    type: path
    default: /var/lib/rancher/k3s
  wait_timeout:
    description: Seconds to wait for the reset, for readiness, or for every Node to be Ready.
    type: int
    default: 300
attributes:
  check_mode:
    support: full
    details: Reports the operation as a change and does nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: V(reset) and V(rejoin) act at every run; V(healthy) only reads.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Restore a snapshot on the first server
  seal.cluster.k3s_cluster_reset:
    mode: reset
    snapshot: /var/lib/rancher/k3s/server/db/restore/on-demand-m1-1764680000

- name: Rejoin another server
  seal.cluster.k3s_cluster_reset:
    mode: rejoin
"""

RETURN = r"""
moved:
  description: Where V(rejoin), or V(reset) on a sqlite server, moved the server's old database directory.
  returned: when mode is rejoin, or reset on a sqlite server
  type: str
output:
  description: The last lines k3s printed during V(reset).
  returned: when mode is reset
  type: list
  elements: str
nodes:
  description: The Nodes seen Ready (V(healthy)).
  returned: when mode is healthy
  type: list
  elements: str
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_host as k3s_host
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_kube as kube
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_snapshot as snap
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import read_text, remove_path, write_atomic
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Systemd, SystemdError

SERVICE = layout.service_name("server")


class ClusterReset(layout.HostManager):
    def __init__(self, module, host=None, runner=None):
        super().__init__(module, host, runner)
        self.systemd = Systemd(self.runner)
        self.node = names.node_name(k3s_host.config_value(self.host.config, "node-name"))

    def journal(self):
        return self.systemd.journal(SERVICE, 30)

    def stop(self):
        self.systemd.systemctl("stop", SERVICE)

    def start_and_wait(self):
        self.systemd.systemctl("start", "--no-block", SERVICE)
        deadline = time.monotonic() + self.p["wait_timeout"]
        seen = ""
        while time.monotonic() < deadline:
            active, _enabled = self.systemd.state(SERVICE)
            if active == "active":
                ok, seen = kube.server_ready(self.runner, self.node, self.host.kubeconfig, self.host.k3s_bin)
                if ok:
                    return
            else:
                seen = "service %s is %s" % (SERVICE, active)
            time.sleep(2)
        raise ModuleFailure("k3s server %s not ready after %ss: %s" % (self.node, self.p["wait_timeout"], seen),
                            journal=self.journal())

    def reset(self):
        source = self.p["snapshot"]
        if source and not os.path.isfile(source):
            raise ModuleFailure("snapshot %s is not a file on this host" % source)
        if snap.sqlite_data(self.p["data_dir"]) or (source and snap.is_sqlite(source)):
            return self.restore_sqlite(source)
        if not source and not snap.etcd_data(self.p["data_dir"]):
            raise ModuleFailure("no embedded etcd data in %s: nothing to reset" % self.p["data_dir"])
        if self.check:
            return {"changed": True, "output": []}
        self.stop()
        config = self.host.path(snap.RESET_CONFIG)
        write_atomic(config, snap.reset_config(read_text(self.host.config) or ""), 0o600)
        argv = ["timeout", str(self.p["wait_timeout"]), self.host.k3s_bin, "server", "--config", config, "--cluster-reset"]
        if source:
            argv.append("--cluster-reset-restore-path=" + source)
        try:
            rc, out, err = self.runner.run(argv)
        finally:
            remove_path(config)
        lines = [line for line in (out + "\n" + err).splitlines() if line.strip()]
        if rc != 0 or not any(snap.RESET_DONE in line for line in lines):
            raise ModuleFailure("k3s server --cluster-reset%s on %s failed (rc %d): %s" % (
                " with snapshot " + source if source else "", self.node, rc, lines[-1] if lines else "no output"),
                output=lines[-30:])
        self.start_and_wait()
        return {"changed": True, "output": lines[-5:]}

    def restore_sqlite(self, source):
        data = self.p["data_dir"]
        if not source:
            raise ModuleFailure("%s keeps its datastore in sqlite (one server, no etcd quorum to lose): a reset needs a "
                                "backup to restore" % self.node)
        if not snap.is_sqlite(source):
            raise ModuleFailure("%s is an etcd snapshot but this server keeps its datastore in sqlite: not restored" % source)
        if snap.etcd_data(data):
            raise ModuleFailure("%s is a sqlite backup but this server runs embedded etcd: not restored" % source)
        db = os.path.dirname(snap.sqlite_file(data))
        moved = "%s-%d" % (db, int(time.time()))
        if self.check:
            return {"changed": True, "moved": moved if os.path.exists(db) else ""}
        self.stop()
        staged = os.path.join(os.path.dirname(db), ".state.db.restore")
        remove_path(staged)
        snap.copy_sqlite(source, staged)  # before the move: the snapshot may lie under server/db
        if os.path.exists(db):
            os.rename(db, moved)
        else:
            moved = ""
        os.makedirs(db, 0o700)
        os.rename(staged, snap.sqlite_file(data))
        self.start_and_wait()
        return {"changed": True, "moved": moved, "output": []}

    def rejoin(self):
        db = os.path.join(self.p["data_dir"], "server", "db")
        moved = "%s-%d" % (db, int(time.time()))
        if self.check:
            return {"changed": True, "moved": moved if os.path.exists(db) else ""}
        self.stop()
        if os.path.exists(db):
            os.rename(db, moved)
        else:
            moved = ""
        self.start_and_wait()
        return {"changed": True, "moved": moved}

    def healthy(self):
        deadline = time.monotonic() + self.p["wait_timeout"]
        waiting = ["?"]
        while time.monotonic() < deadline:
            rc, out, _err = kube.kubectl(self.runner, "get", "nodes", "-o", "json",
                                         kubeconfig=self.host.kubeconfig, k3s=self.host.k3s_bin)
            if rc == 0:
                items = json.loads(out).get("items", [])
                waiting = sorted(n["metadata"]["name"] for n in items if not kube.ready(n))
                if items and not waiting:
                    return {"changed": False, "nodes": sorted(n["metadata"]["name"] for n in items)}
            time.sleep(2)
        raise ModuleFailure("Nodes not Ready after %ss: %s" % (self.p["wait_timeout"], ", ".join(waiting)))

    def run(self):
        try:
            return getattr(self, self.p["mode"])()
        except SystemdError as exc:
            raise ModuleFailure(str(exc), journal=self.journal()) from exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", choices=["reset", "rejoin", "healthy"], required=True),
            snapshot=dict(type="path"),
            data_dir=dict(type="path", default=layout.DATA_DIR),
            wait_timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    try:
        result = ClusterReset(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
