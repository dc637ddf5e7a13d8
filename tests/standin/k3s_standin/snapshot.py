"""`k3s etcd-snapshot save|ls|delete|prune`, scheduled snapshots and `server --cluster-reset`.

Sources (k3s-io/k3s, the v1.25-v1.27 era the stand-in's releases start from):
- pkg/cli/cmds/etcd_snapshot.go: subcommands `save` (also the bare command), `delete`,
  `ls` (aliases `list`, `l`; `-o/--output json|yaml`), `prune` (`--snapshot-retention`, default
  5); flags `--node-name` ($K3S_NODE_NAME), `--data-dir/-d`, `--dir/--etcd-snapshot-dir`,
  `--name` (default "on-demand"), `--snapshot-compress/--etcd-snapshot-compress`, the s3 flags
  (not modelled: refused); the config file is read as for `server`.
- pkg/cli/etcdsnapshot/etcd_snapshot.go: NODE_NAME from --node-name or the host name; the data
  dir is DATA/server; `save` takes no arguments and fails with "etcd database not found in
  DATA/server" without embedded etcd; `delete` without names: "no snapshots given for
  removal"; `ls` prints a tabwriter table "Name Location Size Created"; "invalid output format".
- pkg/etcd/snapshot.go: snapshot dir DATA/server/db/snapshots (0700, made only when it is the
  default; another dir must exist), name "<name>-<node>-<unix ts>", a real etcd snapshot
  (snapshotv3.Save: a bbolt file `etcdctl snapshot status` reads), `--etcd-snapshot-compress`
  zips it to "<name>.zip" (one Deflate member named like the snapshot) and removes the plain
  file; retention keeps the newest N files whose name starts with the prefix (timestamp from the
  name, mtime otherwise); scheduled snapshots use `etcd-snapshot-name` (default "etcd-snapshot")
  with `etcd-snapshot-schedule-cron` (robfig/cron standard spec) and `etcd-snapshot-retention`;
  `etcd-disable-snapshots` turns them off.
- pkg/etcd/etcd.go Reset/Restore, pkg/cluster/managed.go start: `--cluster-reset` makes the
  member a single-member cluster (force-new-cluster on its data, or a restore of
  --cluster-reset-restore-path into a fresh data dir, the old one moved to
  db/etcd-old-<unix ts>), writes a new member name and the empty marker DATA/server/db/reset-flag,
  reconciles the bootstrap data (the token must decrypt the snapshot's), then logs "Managed etcd
  cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete
  ${datadir}/server/db on each peer etcd server and rejoin the nodes" and exits 0. A second
  --cluster-reset without a restore path while reset-flag exists fails ("Managed etcd cluster
  membership was previously reset, ..."); a normal start removes reset-flag.
  pkg/cli/server/server.go: "cannot perform cluster-reset while server URL is set - remove server
  from configuration before resetting".
Debian's etcd 3.4 etcdctl is bundled (payload/etcdctl) for save/restore, as k3s links etcd's
snapshot package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile

import yaml

from . import cli, util

COMPRESSED = ".zip"
RESET_MESSAGE = ("Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. "
                 "Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes")

_F = cli._f  # noqa: SLF001 - the same flag table format
SNAPSHOT_FLAGS = [
    _F("config,c:str:K3S_CONFIG_FILE", cli.cfgmod.DEFAULT_CONFIG), _F("debug:bool:K3S_DEBUG"),
    _F("log,l"), _F("alsologtostderr:bool"),
    _F("node-name:str:K3S_NODE_NAME"), _F("data-dir,d:str:K3S_DATA_DIR", "/var/lib/rancher/k3s"),
    _F("dir,etcd-snapshot-dir"), _F("name", "on-demand"),
    _F("snapshot-compress,etcd-snapshot-compress:bool"),
    _F("s3,etcd-s3:bool"), _F("s3-endpoint,etcd-s3-endpoint", "s3.amazonaws.com"), _F("s3-endpoint-ca,etcd-s3-endpoint-ca"),
    _F("s3-skip-ssl-verify,etcd-s3-skip-ssl-verify:bool"), _F("s3-access-key,etcd-s3-access-key:str:AWS_ACCESS_KEY_ID"),
    _F("s3-secret-key,etcd-s3-secret-key:str:AWS_SECRET_ACCESS_KEY"), _F("s3-bucket,etcd-s3-bucket"),
    _F("s3-region,etcd-s3-region", "us-east-1"), _F("s3-folder,etcd-s3-folder"), _F("s3-insecure,etcd-s3-insecure:bool"),
    _F("s3-timeout,etcd-s3-timeout", "5m0s"),
]
EXTRA = {"ls": [_F("o,output")], "prune": [_F("snapshot-retention:int", 5)]}


class SnapshotError(Exception):
    """A failed snapshot operation: fatal for the CLI, logged by the scheduler."""


SUBCOMMANDS = {"save": "save", "delete": "delete", "ls": "ls", "list": "ls", "l": "ls", "prune": "prune"}


# ---------------------------------------------------------------- files
def snapshot_dir(server_dir: str, configured: str | None, create: bool) -> str:
    default = os.path.join(server_dir, "db", "snapshots")
    path = configured or default
    if path != default:
        create = False
    if not os.path.exists(path):
        if not create:
            raise SnapshotError(f"failed to get etcd-snapshot-dir: stat {path}: no such file or directory")
        os.makedirs(path, mode=0o700)
    elif not os.path.isdir(path):
        raise SnapshotError(f"failed to get etcd-snapshot-dir: {path} is not a directory")
    return path


def created_at(path: str) -> int:
    base = os.path.basename(path)
    base = base[:-len(COMPRESSED)] if base.endswith(COMPRESSED) else base
    try:
        return int(base[base.rfind("-") + 1:])
    except ValueError:
        return int(os.path.getmtime(path))


def list_files(directory: str) -> list[dict]:
    out = []
    for root, _dirs, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(root, name)
            out.append({"name": name, "location": "file://" + path, "size": os.path.getsize(path),
                        "created": created_at(path), "compressed": name.endswith(COMPRESSED)})
    return out


def retention(keep: int, prefix: str, directory: str) -> list[str]:
    if keep < 1:
        return []
    util.info(f"Applying snapshot retention={keep} to local snapshots with prefix {prefix} in {directory}")
    files = [f for f in list_files(directory) if f["name"].startswith(prefix)]
    if len(files) <= keep:
        return []
    files.sort(key=lambda f: f["created"], reverse=True)
    deleted = []
    for f in files[keep:]:
        path = os.path.join(directory, f["name"])
        util.info(f"Removing local snapshot {path}")
        os.remove(path)
        deleted.append(f["name"])
    return deleted


def etcdctl_argv(data_dir: str, *args: str) -> list[str]:
    from .etcd import helper_bin

    return [helper_bin(data_dir, "etcdctl"), *args]


def _run(argv: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3", **(env_extra or {})}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def client_endpoint(server_dir: str) -> str:
    """Where this server's etcd member listens for clients (its etcd config, written at start)."""
    try:
        with open(os.path.join(server_dir, "db", "etcd", "config"), encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
    except OSError:
        return "https://127.0.0.1:2379"
    return str(conf.get("listen-client-urls", "https://127.0.0.1:2379")).split(",")[0]


def take(data_dir: str, name: str, node: str, directory: str | None, compress: bool) -> str:
    """One snapshot "<name>-<node>-<unix ts>" (k3s ETCD.snapshot); returns its path."""
    server_dir = os.path.join(data_dir, "server")
    target_dir = snapshot_dir(server_dir, directory, True)
    now = int(round(time.time()))
    snap = f"{name}-{node}-{now}"
    path = os.path.join(target_dir, snap)
    util.info(f"Saving etcd snapshot to {path}")
    tls = os.path.join(server_dir, "tls", "etcd")
    proc = _run(etcdctl_argv(data_dir, "--endpoints", client_endpoint(server_dir),
                             "--cacert", os.path.join(tls, "server-ca.crt"), "--cert", os.path.join(tls, "client.crt"),
                             "--key", os.path.join(tls, "client.key"), "--command-timeout", "60s",
                             "snapshot", "save", path))
    if proc.returncode != 0:
        for leftover in (path, path + ".part"):
            if os.path.exists(leftover):
                os.remove(leftover)
        raise SnapshotError(f"Failed to take etcd snapshot: {(proc.stderr or proc.stdout).strip()}")
    os.chmod(path, 0o600)
    if compress:
        util.info("Compressing etcd snapshot file: " + snap)
        zpath = path + COMPRESSED
        info = zipfile.ZipInfo(snap, date_time=time.gmtime(now)[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        with zipfile.ZipFile(zpath, "w") as z, open(path, "rb") as src:
            z.writestr(info, src.read())
        os.remove(path)
        os.chmod(zpath, 0o600)
        path = zpath
        util.info("Compressed snapshot: " + path)
    return path


def decompress(path: str, into: str) -> str:
    util.info("Decompressing etcd snapshot file: " + path)
    with zipfile.ZipFile(path) as z:
        member = z.infolist()[0]
        target = os.path.join(into, os.path.basename(member.filename.replace(COMPRESSED, "")))
        with z.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def restore(data_dir: str, source: str, member: str, peer_url: str) -> None:
    """k3s ETCD.Restore: the old data dir moved aside, the snapshot restored as a one-member cluster."""
    db = os.path.join(data_dir, "server", "db", "etcd")
    if not os.path.exists(source):
        raise util.Fatal(f"Error: starting kubernetes: preparing server: start managed database: "
                         f"etcd: snapshot path does not exist: {source}")
    if os.path.isdir(source):
        raise util.Fatal(f"Error: starting kubernetes: preparing server: start managed database: "
                         f"etcd: snapshot path must be a file, not a directory: {source}")
    work = os.path.dirname(db)
    plain = decompress(source, work) if source.endswith(COMPRESSED) else source
    if os.path.exists(db):
        old = f"{db}-old-{int(time.time())}"
        os.rename(db, old)
        util.info(f"Pre-restore etcd database moved to {old}")
    util.info(f"Restoring etcd snapshot from {source}")
    proc = _run(etcdctl_argv(data_dir, "snapshot", "restore", plain, "--data-dir", db, "--name", member,
                             "--initial-cluster", f"{member}={peer_url}", "--initial-advertise-peer-urls", peer_url))
    if plain != source:
        os.remove(plain)
    if proc.returncode != 0:
        raise util.Fatal(f"Error: starting kubernetes: preparing server: start managed database: "
                         f"failed to restore etcd snapshot: {(proc.stderr or proc.stdout).strip()}")
    os.chmod(db, 0o700)


# ---------------------------------------------------------------- schedule
def _field(spec: str, lo: int, hi: int) -> set[int]:
    values: set[int] = set()
    for part in spec.split(","):
        rng, _, step = part.partition("/")
        if rng in ("*", "?"):
            a, b = lo, hi
        elif "-" in rng:
            a, b = (int(x) for x in rng.split("-", 1))
        else:
            a = b = int(rng)
            if step:
                b = hi
        if a < lo or b > hi or a > b:
            raise ValueError(f"end of range ({b}) above maximum ({hi}): {part}")
        values.update(range(a, b + 1, int(step) if step else 1))
    return values


DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
               "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class Schedule:
    """robfig/cron v3 ParseStandard: five fields, descriptors and "@every <duration>"."""

    def __init__(self, spec: str):
        spec = DESCRIPTORS.get(spec.strip(), spec.strip())
        self.every = None
        if spec.startswith("@every "):
            self.every = max(1.0, util.parse_duration(spec[len("@every "):]))
            return
        fields = spec.split()
        if len(fields) != 5:
            raise ValueError(f"expected exactly 5 fields, found {len(fields)}: [{spec}]")
        self.minute, self.hour, self.dom, self.month = (_field(fields[0], 0, 59), _field(fields[1], 0, 23),
                                                        _field(fields[2], 1, 31), _field(fields[3], 1, 12))
        self.dow = _field(fields[4], 0, 6)  # robfig/cron spec.go: dow bounds 0-6

    def next_after(self, t: float) -> float:
        if self.every:
            return t + self.every
        m = (int(t) // 60 + 1) * 60
        for _ in range(366 * 24 * 60):
            tm = time.localtime(m)
            if (tm.tm_min in self.minute and tm.tm_hour in self.hour and tm.tm_mon in self.month
                    and tm.tm_mday in self.dom and (tm.tm_wday + 1) % 7 in self.dow):
                return float(m)
            m += 60
        return t + 366 * 86400


def start_schedule(opts: dict, data_dir: str, node: str, stop: threading.Event) -> None:
    """The server's snapshot cron (k3s ETCD.setSnapshotFunction)."""
    if opts.get("etcd-disable-snapshots"):
        return
    try:
        sched = Schedule(opts.get("etcd-snapshot-schedule-cron") or "0 */12 * * *")
    except ValueError as exc:
        util.error(f"Failed to schedule etcd snapshots: {exc}")
        return
    name = opts.get("etcd-snapshot-name") or "etcd-snapshot"

    def loop() -> None:
        due = sched.next_after(time.time())
        while not stop.wait(max(0.2, min(5.0, due - time.time()))):
            if time.time() < due:
                continue
            due = sched.next_after(time.time())
            try:
                take(data_dir, name, node, opts.get("etcd-snapshot-dir"), bool(opts.get("etcd-snapshot-compress")))
                directory = snapshot_dir(os.path.join(data_dir, "server"), opts.get("etcd-snapshot-dir"), True)
                retention(int(opts.get("etcd-snapshot-retention") or 0), name, directory)
            except (SnapshotError, OSError) as exc:
                util.error(f"Failed to take scheduled snapshot: {exc}")

    threading.Thread(target=loop, name="etcd-snapshot-cron", daemon=True).start()


# ---------------------------------------------------------------- CLI
def main(args: list[str]) -> int:
    sub = "save"
    if args and not args[0].startswith("-"):
        if args[0] not in SUBCOMMANDS:
            sys.stderr.write(f"No help topic for '{args[0]}'\n")
            return 3
        sub, args = SUBCOMMANDS[args[0]], args[1:]
    table = cli._table(SNAPSHOT_FLAGS + EXTRA.get(sub, []))  # noqa: SLF001
    try:
        opts, positional, _info = cli.resolve(table, args, server=True)
    except cli.UsageError as exc:
        sys.stdout.write(f"Incorrect Usage: {exc}\n\n")
        util.log("fatal", str(exc))
        return 1
    util.set_debug(bool(opts.get("debug")))
    if opts.get("s3"):
        util.log("fatal", "etcd-snapshot to S3 is not modelled by the k3s stand-in")
        return 1
    data_dir = opts["data-dir"]
    server_dir = os.path.join(data_dir, "server")
    node = opts.get("node-name") or util.hostname()
    try:
        if sub == "save":
            if positional:
                raise SnapshotError("this command does not take any arguments")
            if not os.path.isdir(os.path.join(server_dir, "db", "etcd", "member", "wal")):
                raise SnapshotError(f"etcd database not found in {server_dir}")
            take(data_dir, opts["name"], node, opts.get("dir"), bool(opts.get("snapshot-compress")))
            return 0
        if sub == "delete":
            if not positional:
                raise SnapshotError("no snapshots given for removal")
            directory = snapshot_dir(server_dir, opts.get("dir"), False)
            for name in positional:
                path = os.path.join(directory, name)
                if os.path.exists(path):
                    os.remove(path)
                    util.info(f"Snapshot {name} deleted locally")
                else:
                    util.info(f"Snapshot {name} not found locally")
            return 0
        if sub == "prune":
            directory = snapshot_dir(server_dir, opts.get("dir"), False)
            retention(int(opts["snapshot-retention"]), opts["name"], directory)
            return 0
        fmt = (opts.get("output") or "").lower()
        if fmt and fmt not in ("json", "yaml"):
            raise SnapshotError("invalid output format: " + fmt)
        files = list_files(snapshot_dir(server_dir, opts.get("dir"), True))
        stamp = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))  # noqa: E731
        if fmt:
            items = [{"name": f["name"], "location": f["location"], "nodeName": node, "size": f["size"],
                      "createdAt": stamp(f["created"]), "compressed": f["compressed"]} for f in files]
            text = json.dumps(items) + "\n" if fmt == "json" else yaml.safe_dump(items)
            sys.stdout.write(text)
            return 0
        rows = [("Name", "Location", "Size", "Created")] + [
            (f["name"], f["location"], str(f["size"]), stamp(f["created"])) for f in files]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            sys.stdout.write(" ".join(r[i].ljust(widths[i]) for i in range(3)) + " " + r[3] + "\n")
        return 0
    except (SnapshotError, OSError) as exc:
        util.log("fatal", str(exc))
        return 1

