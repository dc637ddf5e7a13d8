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
  delete ${datadir}/server/db on each peer etcd server and rejoin the nodes").
- A single server on sqlite (no cluster-init) has no snapshot command: "take a copy of
  /var/lib/rancher/k3s/server/db/" and restore "the contents of /var/lib/rancher/k3s/server/db
  (and the token)" (docs.k3s.io datastore/backup-restore); its database is server/db/state.db."""

from __future__ import annotations

import os
import re

SNAPSHOT_DIR = "server/db/snapshots"
COMPRESSED = ".zip"
RESET_DONE = "restart without --cluster-reset flag now"
RESET_CONFIG = "/etc/rancher/k3s/cluster-reset.yaml"
SQLITE_DB = "server/db/state.db"
SQLITE_HEADER = b"SQLite format 3\x00"
# a snapshot's base name (k3s --name): what follows is "-<node>-<unix ts>"
BASE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def snapshot_dir(data_dir, configured=None):
    return configured or os.path.join(data_dir, SNAPSHOT_DIR)


def sqlite_file(data_dir):
    """k3s's sqlite datastore (kine's default, k3s pkg/etcd/etcd.go sqliteFile): server/db/state.db."""
    return os.path.join(data_dir, SQLITE_DB)


def sqlite_data(data_dir):
    """Whether this server keeps its datastore in sqlite (a state.db and no embedded etcd)."""
    return os.path.isfile(sqlite_file(data_dir)) and not etcd_data(data_dir)


def is_sqlite(path):
    """Whether the file is an SQLite database (its 16-byte header), i.e. a sqlite server's backup."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def copy_sqlite(source, dest):
    """A consistent copy of a live sqlite database (its WAL folded in) with SQLite's online backup
    API, as a reader beside k3s: docs.k3s.io datastore/backup-restore says to copy server/db (and
    the token); a plain file copy of a database being written may be torn."""
    import sqlite3  # pylint: disable=import-outside-toplevel

    os.close(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 from the start
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


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


# etcd-snapshot-schedule-cron: k3s schedules with robfig/cron v3's cron.New() (pkg/etcd/etcd.go
# NewETCD), whose parser is the standard one: five fields (minute hour day-of-month month
# day-of-week), "*" or "?", ranges, steps, lists, month and weekday names, the descriptors and
# "@every <duration>", optionally behind "CRON_TZ=<zone> " (robfig/cron v3 parser.go).
CRON_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
               ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
               ("day of week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def _cron_number(text, names, lo):
    if text.lower() in names:
        return names.index(text.lower()) + lo
    if not text.isdigit():
        raise ValueError("%r is not a number" % text)
    return int(text)


def _cron_field(text, field):
    label, lo, hi, names = field
    for part in text.split(","):
        span, slash, step = part.partition("/")
        if slash and (not step.isdigit() or int(step) < 1):
            raise ValueError("the step in %r (%s) must be a positive number" % (part, label))
        if span in ("*", "?"):
            continue
        ends = span.split("-")
        if len(ends) > 2:
            raise ValueError("too many hyphens in %r (%s)" % (part, label))
        values = [_cron_number(e, names, lo if names else 0) for e in ends]
        if values[0] < lo or values[-1] > hi:
            raise ValueError("%r is out of range for the %s (%d-%d)" % (part, label, lo, hi))
        if values[0] > values[-1]:
            raise ValueError("%r begins after it ends (%s)" % (part, label))


def check_schedule(spec):
    """A cron spec k3s accepts for etcd-snapshot-schedule-cron; ValueError says what is wrong."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("a schedule is a non-empty cron string")
    text = spec.strip()
    if text.startswith(("CRON_TZ=", "TZ=")):
        text = text.split(None, 1)[1] if len(text.split(None, 1)) == 2 else ""
    if text.startswith("@every "):
        if not DURATION.match(text[len("@every "):].strip()):
            raise ValueError("%r: @every takes a Go duration such as 90m or 6h" % spec)
        return spec
    if text.startswith("@"):
        if text not in CRON_DESCRIPTORS:
            raise ValueError("%r: unknown descriptor (%s, @every <duration>)" % (spec, ", ".join(CRON_DESCRIPTORS)))
        return spec
    fields = text.split()
    if len(fields) != 5:
        raise ValueError("%r has %d fields; k3s takes five: minute hour day-of-month month day-of-week" % (spec, len(fields)))
    for value, field in zip(fields, CRON_FIELDS):
        _cron_field(value, field)
    return spec


def check_retention(value):
    """etcd-snapshot-retention: how many scheduled snapshots each server keeps (k3s: 5)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("retention is a whole number of snapshots, at least 1, not %r" % (value,))
    return value
