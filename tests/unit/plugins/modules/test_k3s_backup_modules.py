"""k3s_etcd_snapshot and k3s_cluster_reset against a temporary host root and a recording runner:
the k3s commands they run (argv, no token), what they report, check mode, and the config copy
without `server` that k3s's --cluster-reset needs (k3s pkg/cli/server/server.go refuses a reset
while server is set)."""
import hashlib
import os
import sqlite3
import types

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_snapshot as snap
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules.k3s_cluster_reset import ClusterReset
from ansible_collections.seal.cluster.plugins.modules.k3s_etcd_snapshot import Snapshots

CONFIG = 'node-ip: "10.0.0.2"\nserver: "https://10.0.0.1:6443"\ntls-san:\n  - "10.0.0.1"\ntoken-file: "/etc/rancher/k3s/token"\n'


def module(check=False, **params):
    return types.SimpleNamespace(params=params, check_mode=check)


@pytest.fixture
def host(tmp_path):
    layout = Layout(str(tmp_path))
    os.makedirs(os.path.dirname(layout.config))
    with open(layout.config, "w", encoding="utf-8") as f:
        f.write(CONFIG)
    return layout


def test_reset_config_drops_server_only():
    assert snap.reset_config(CONFIG) == 'node-ip: "10.0.0.2"\ntls-san:\n  - "10.0.0.1"\ntoken-file: "/etc/rancher/k3s/token"\n'
    assert snap.reset_config('"server": "https://x:6443"\ncluster-init: true\n') == "cluster-init: true\n"
    assert snap.reset_config("servers: 1\n") == "servers: 1\n"


def test_snapshot_names_newest_first():
    names = ["seal-backup-m1-100", "seal-backup-m1-300.zip", "etcd-snapshot-m1-200", "seal-backup-m1-x", "seal-backup-m1-200"]
    assert snap.of_base(names, "seal-backup") == ["seal-backup-m1-300.zip", "seal-backup-m1-200", "seal-backup-m1-100"]


def snapshots(host, data_dir, runner, check=False, **params):
    p = dict(state="present", name="seal-backup", compress=False, retention=5, snapshots=[], data_dir=data_dir)
    p.update(params)
    return Snapshots(module(check, **p), host=host, runner=runner)


def test_present_takes_a_snapshot_and_reports_its_checksum(host, tmp_path, fake_runner):
    data = tmp_path / "k3s"
    os.makedirs(data / "server/db/etcd/member/wal")
    target = data / "server/db/snapshots"

    def save(argv):
        os.makedirs(target, exist_ok=True)
        (target / "seal-backup-m1-1764680000").write_bytes(b"bbolt")
        return 0, "", 'level=info msg="Saving etcd snapshot"'
    runner = fake_runner({host.k3s_bin: save})
    out = snapshots(host, str(data), runner).run()
    assert runner.calls == [[host.k3s_bin, "etcd-snapshot", "save", "--name", "seal-backup"]]
    assert out["changed"] and out["snapshot"] == {"name": "seal-backup-m1-1764680000", "path": str(target / "seal-backup-m1-1764680000"),
                                                  "size": 5, "sha256": hashlib.sha256(b"bbolt").hexdigest(),
                                                  "datastore": "etcd"}
    assert snapshots(host, str(data), fake_runner(), check=True).run() == {"changed": True, "snapshot": {}}


def test_present_refuses_a_server_without_a_datastore_it_can_back_up(host, tmp_path, fake_runner):
    runner = fake_runner()
    with pytest.raises(ModuleFailure, match="neither embedded etcd nor sqlite"):
        snapshots(host, str(tmp_path), runner).run()
    assert runner.calls == []


def test_pruned_and_absent_are_idempotent(host, tmp_path, fake_runner):
    target = tmp_path / "server/db/snapshots"
    os.makedirs(target)
    for ts in (100, 200, 300):
        (target / f"seal-backup-m1-{ts}").write_bytes(b"x")
    runner = fake_runner({host.k3s_bin: lambda argv: ((target / "seal-backup-m1-100").unlink(), (target / "seal-backup-m1-200").unlink())
                          and (0, "", "")})
    out = snapshots(host, str(tmp_path), runner, state="pruned", retention=1).run()
    assert out == {"changed": True, "removed": ["seal-backup-m1-200", "seal-backup-m1-100"]}
    assert runner.calls == [[host.k3s_bin, "etcd-snapshot", "prune", "--name", "seal-backup", "--snapshot-retention", "1"]]
    assert snapshots(host, str(tmp_path), fake_runner(), state="pruned", retention=1).run()["changed"] is False
    gone = snapshots(host, str(tmp_path), fake_runner(), state="absent", snapshots=["seal-backup-m1-999"]).run()
    assert gone == {"changed": False, "removed": []}
    with pytest.raises(ModuleFailure, match="not a file name"):
        snapshots(host, str(tmp_path), fake_runner(), state="absent", snapshots=["../x"]).run()


def resetter(host, data_dir, runner, check=False, **params):
    p = dict(mode="reset", snapshot=None, data_dir=data_dir, wait_timeout=5)
    p.update(params)
    return ClusterReset(module(check, **p), host=host, runner=runner)


def ready_answers(host, k3s_answer, fake_units):
    units = fake_units()
    seen = {}

    def k3s(argv):
        if argv[1] == "kubectl":
            return 0, "ok" if "/readyz" in argv else "True", ""
        return k3s_answer(argv)

    def timeout(argv):
        seen["config"] = open(argv[argv.index("--config") + 1], encoding="utf-8").read()
        return k3s_answer(argv[2:])
    return {"systemctl": units.systemctl, host.k3s_bin: k3s, "timeout": timeout}, seen


def test_reset_restores_with_a_config_without_server(host, tmp_path, fake_runner, fake_units):
    snapshot = tmp_path / "seal-backup-m1-1"
    snapshot.write_bytes(b"bbolt")
    done = 'msg="Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup ..."'
    answers, seen = ready_answers(host, lambda argv: (0, "", done), fake_units)
    runner = fake_runner(answers)
    out = resetter(host, str(tmp_path), runner, snapshot=str(snapshot)).run()
    assert out["changed"] is True
    reset = [c for c in runner.calls if c[0] == "timeout"][0]
    assert reset[2:] == [host.k3s_bin, "server", "--config", host.path(snap.RESET_CONFIG), "--cluster-reset",
                         "--cluster-reset-restore-path=" + str(snapshot)]
    assert "server:" not in seen["config"] and "token-file" in seen["config"]
    assert not os.path.exists(host.path(snap.RESET_CONFIG))
    assert ["systemctl", "stop", "k3s"] in runner.calls and ["systemctl", "start", "--no-block", "k3s"] in runner.calls


def test_a_reset_k3s_did_not_finish_fails_and_starts_nothing(host, tmp_path, fake_runner, fake_units):
    os.makedirs(tmp_path / "server/db/etcd/member/wal")
    fatal = 'level=fatal msg="bootstrap data already found and encrypted with different token"'
    answers, _seen = ready_answers(host, lambda argv: (1, "", fatal), fake_units)
    runner = fake_runner(answers)
    with pytest.raises(ModuleFailure, match="different token"):
        resetter(host, str(tmp_path), runner).run()
    assert ["systemctl", "start", "--no-block", "k3s"] not in runner.calls
    assert not os.path.exists(host.path(snap.RESET_CONFIG))


def test_reset_without_snapshot_needs_etcd_data_and_check_mode_changes_nothing(host, tmp_path, fake_runner):
    with pytest.raises(ModuleFailure, match="no embedded etcd data"):
        resetter(host, str(tmp_path), fake_runner()).run()
    os.makedirs(tmp_path / "server/db/etcd/member/wal")
    runner = fake_runner()
    assert resetter(host, str(tmp_path), runner, check=True).run() == {"changed": True, "output": []}
    assert runner.calls == []


def test_rejoin_moves_the_database_aside(host, tmp_path, fake_runner, fake_units):
    os.makedirs(tmp_path / "server/db/etcd")
    answers, _seen = ready_answers(host, lambda argv: (0, "", ""), fake_units)
    out = resetter(host, str(tmp_path), fake_runner(answers), mode="rejoin").run()
    assert out["changed"] and os.path.isdir(os.path.join(out["moved"], "etcd"))
    assert not os.path.exists(tmp_path / "server/db")


def sqlite_db(path, rows):
    """A sqlite database in WAL mode, as kine keeps it, with rows still in its WAL (a live server)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE IF NOT EXISTS kine (name TEXT, value BLOB)")
    db.executemany("INSERT INTO kine VALUES (?, ?)", rows)
    db.commit()
    return db


def rows_of(path):
    db = sqlite3.connect(path)
    try:
        return sorted(db.execute("SELECT name, value FROM kine"))
    finally:
        db.close()


def test_present_on_sqlite_copies_the_live_database_with_its_wal(host, tmp_path, fake_runner):
    live = sqlite_db(str(tmp_path / "server/db/state.db"), [("/registry/configmaps/default/a", b"1")])
    try:
        runner = fake_runner()
        out = snapshots(host, str(tmp_path), runner).run()
    finally:
        live.close()
    taken = out["snapshot"]
    assert runner.calls == [] and taken["datastore"] == "sqlite"
    assert taken["name"].startswith("seal-backup-") and snap.created(taken["name"])
    assert taken["path"] == str(tmp_path / "server/db/snapshots" / taken["name"])
    assert os.stat(taken["path"]).st_mode & 0o777 == 0o600 and snap.is_sqlite(taken["path"])
    assert rows_of(taken["path"]) == [("/registry/configmaps/default/a", b"1")]
    pruned = snapshots(host, str(tmp_path), runner, state="pruned", retention=1).run()
    assert pruned == {"changed": False, "removed": []} and runner.calls == []
    (tmp_path / "server/db/snapshots/seal-backup-m0-1").write_bytes(b"old")
    pruned = snapshots(host, str(tmp_path), runner, state="pruned", retention=1).run()
    assert pruned == {"changed": True, "removed": ["seal-backup-m0-1"]} and runner.calls == []
    assert not (tmp_path / "server/db/snapshots/seal-backup-m0-1").exists()


def test_reset_on_sqlite_restores_state_db_and_moves_the_old_db_aside(host, tmp_path, fake_runner, fake_units):
    sqlite_db(str(tmp_path / "server/db/state.db"), [("/registry/now", b"after")]).close()
    backup = tmp_path / "server/db/snapshots/seal-backup-m1-1"  # where role backup copies it: under server/db
    sqlite_db(str(backup), [("/registry/then", b"before")]).close()
    answers, _seen = ready_answers(host, lambda argv: (0, "", ""), fake_units)
    runner = fake_runner(answers)
    out = resetter(host, str(tmp_path), runner, snapshot=str(backup)).run()
    assert out["changed"] and rows_of(str(tmp_path / "server/db/state.db")) == [("/registry/then", b"before")]
    assert rows_of(os.path.join(out["moved"], "state.db")) == [("/registry/now", b"after")]
    assert not [c for c in runner.calls if c[0] == "timeout"]  # no --cluster-reset on sqlite
    assert runner.calls.index(["systemctl", "stop", "k3s"]) < runner.calls.index(["systemctl", "start", "--no-block", "k3s"])
    assert os.stat(tmp_path / "server/db").st_mode & 0o777 == 0o700


def test_reset_on_sqlite_refuses_without_a_backup_or_with_an_etcd_snapshot(host, tmp_path, fake_runner):
    sqlite_db(str(tmp_path / "server/db/state.db"), []).close()
    with pytest.raises(ModuleFailure, match="no etcd quorum to lose"):
        resetter(host, str(tmp_path), fake_runner()).run()
    etcd_snapshot = tmp_path / "seal-backup-m1-1"
    etcd_snapshot.write_bytes(b"bbolt")
    runner = fake_runner()
    with pytest.raises(ModuleFailure, match="is an etcd snapshot but this server keeps its datastore in sqlite"):
        resetter(host, str(tmp_path), runner, snapshot=str(etcd_snapshot)).run()
    assert runner.calls == [] and rows_of(str(tmp_path / "server/db/state.db")) == []
