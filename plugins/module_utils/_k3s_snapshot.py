# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""k3s's etcd snapshots and cluster reset, as k3s has them (K3S-REFERENCE; k3s-io/k3s
pkg/etcd/snapshot.go, pkg/etcd/etcd.go, pkg/cluster/managed.go, pkg/cli/server/server.go,
pkg/cli/cmds/etcd_snapshot.go; docs.k3s.io datastore/backup-restore):

- `k3s etcd-snapshot save --name NAME` writes `<NAME>-<node name>-<unix ts>` (`.zip` with
  `--etcd-snapshot-compress`) into `etcd-snapshot-dir`, default `<data dir>/server/db/snapshots`;
  `k3s etcd-snapshot prune --name NAME --snapshot-retention N` keeps the newest N with that prefix;
  `k3s etcd-snapshot delete NAME...`. Every subcommand reads config.yaml as `server` does.
- `k3s server --cluster-reset [--cluster-reset-restore-path=FILE]` resets the member to a
  one-member cluster (restoring FILE first), writes `<data dir>/server/db/reset-flag`, logs
  RESET_DONE and exits; it refuses to run while `server` is configured, so the reset runs with a
  copy of config.yaml without `server` (the token stays in token-file, never on the command line).
  The restored bootstrap data must decrypt with the server's token.
- The other servers rejoin only with their `<data dir>/server/db` removed (k3s: "Backup and
  delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")."""

from __future__ import annotations

import os
import re

SNAPSHOT_DIR = "server/db/snapshots"
COMPRESSED = ".zip"
RESET_DONE = "restart without --cluster-reset flag now"
RESET_CONFIG = "/etc/rancher/k3s/cluster-reset.yaml"
# a snapshot's base name (k3s --name): what follows is "-<node>-<unix ts>"
BASE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def snapshot_dir(data_dir, configured=None):
    return configured or os.path.join(data_dir, SNAPSHOT_DIR)


def etcd_data(data_dir):
    """Whether this server holds embedded etcd data (k3s IsInitialized: the WAL directory)."""
    return os.path.isdir(os.path.join(data_dir, "server", "db", "etcd", "member", "wal"))


def created(name):
    """The unix timestamp at the end of a snapshot's name (None when there is none)."""
    base = name[:-len(COMPRESSED)] if name.endswith(COMPRESSED) else name
    tail = base.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None


def of_base(names, base):
    """The snapshot file names of base name `base`, newest first."""
    own = [n for n in names if n.startswith(base + "-") and created(n) is not None]
    return sorted(own, key=lambda n: (created(n), n), reverse=True)


def reset_config(text):
    """config.yaml's text without its top-level `server` key (k3s refuses a reset with it)."""
    kept, skipping = [], False
    for line in text.splitlines(True):
        top = line[:1] not in (" ", "\t", "-", "#", "\n", "")
        if top:
            skipping = line.split(":", 1)[0].strip().strip("'\"") == "server"
        if not skipping:
            kept.append(line)
    return "".join(kept)
