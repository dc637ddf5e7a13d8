"""The stand-in's `k3s etcd-snapshot` and restore against Debian's real etcd and etcdctl on a
loopback address: snapshots are real (etcdctl snapshot status reads them), named
<name>-<node>-<unix ts>, zipped with --etcd-snapshot-compress, pruned newest-first by prefix,
and a restore brings back what the datastore held as a one-member cluster (k3s
pkg/etcd/snapshot.go, pkg/etcd/etcd.go Restore)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "standin"))
sys.path.insert(0, os.path.dirname(__file__))
from k3s_standin import snapshot  # noqa: E402
from test_standin_etcd import Member, _up, needs_etcd  # noqa: E402


def status(path):
    proc = subprocess.run(["etcdctl", "snapshot", "status", path, "-w", "json"], capture_output=True, text=True,
                          env=dict(os.environ, ETCDCTL_API="3"), timeout=30, check=True)
    return json.loads(proc.stdout)


@pytest.fixture
def member(tmp_path):
    m = Member(tmp_path, "alpha", "127.0.0.171", True)
    _up(m)
    yield m
    m.stop()


@needs_etcd
def test_save_compress_prune_and_restore(member, tmp_path):
    cli = member.client()
    cli.put("/registry/configmaps/default/kept", b'{"data":{"a":"1"}}')
    path = snapshot.take(member.data_dir, "on-demand", "alpha", None, False)
    assert re.fullmatch(r"on-demand-alpha-\d{10}", os.path.basename(path))
    assert os.path.dirname(path) == os.path.join(member.data_dir, "server", "db", "snapshots")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert status(path)["totalKey"] >= 1
    zipped = snapshot.take(member.data_dir, "zipped", "alpha", None, True)
    assert zipped.endswith(".zip") and not os.path.exists(zipped[:-4])
    with zipfile.ZipFile(zipped) as z:
        assert [i.filename for i in z.infolist()] == [os.path.basename(zipped)[:-4]]
        assert z.infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    # retention: newest first by the name's timestamp, only the prefix's files
    directory = os.path.dirname(path)
    for ts in (100, 200, 300):
        open(os.path.join(directory, f"on-demand-alpha-{ts}"), "wb").close()
    assert snapshot.retention(2, "on-demand", directory) == ["on-demand-alpha-200", "on-demand-alpha-100"]
    assert os.path.exists(zipped)
    names = sorted(f["name"] for f in snapshot.list_files(directory))
    assert names == sorted([os.path.basename(path), "on-demand-alpha-300", os.path.basename(zipped)])
    # a later change, then restore the zipped snapshot: the change is gone, one member
    cli.delete("/registry/configmaps/default/kept")
    member.stop()
    snapshot.restore(member.data_dir, zipped, "alpha-0000beef", member.peer_url())
    assert [d for d in os.listdir(os.path.dirname(member.db)) if d.startswith("etcd-old-")]
    _up(member, name="alpha-0000beef")
    got = member.client().get("/registry/configmaps/default/kept")
    assert got is not None and b'"a"' in got[0]
    assert [m["name"] for m in member.client().members()] == ["alpha-0000beef"]


@needs_etcd
def test_restore_refuses_a_missing_or_directory_path(tmp_path, member):
    with pytest.raises(SystemExit):
        snapshot.restore(member.data_dir, str(tmp_path / "nope"), "x", member.peer_url())
    with pytest.raises(SystemExit):
        snapshot.restore(member.data_dir, str(tmp_path), "x", member.peer_url())


def test_save_without_etcd_data_fails_as_k3s_does(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("K3S_CONFIG_FILE", str(tmp_path / "none.yaml"))
    assert snapshot.main(["save", "--data-dir", str(tmp_path)]) == 1
    assert f"etcd database not found in {tmp_path}/server" in capsys.readouterr().err
    assert snapshot.main(["delete", "--data-dir", str(tmp_path)]) == 1
    assert "no snapshots given for removal" in capsys.readouterr().err
    assert snapshot.main(["nope"]) == 3


def test_cron_schedule():
    start = time.mktime((2026, 1, 1, 0, 30, 0, 0, 0, -1))
    nxt = time.localtime(snapshot.Schedule("0 */12 * * *").next_after(start))
    assert (nxt.tm_hour, nxt.tm_min) == (12, 0)
    assert snapshot.Schedule("@every 5s").next_after(100.0) == 105.0
    nxt = time.localtime(snapshot.Schedule("*/15 1-2 * * *").next_after(start))
    assert (nxt.tm_hour, nxt.tm_min) == (1, 0)
    with pytest.raises(ValueError):
        snapshot.Schedule("0 25 * * *")
    with pytest.raises(ValueError):
        snapshot.Schedule("0 * *")
    with pytest.raises(ValueError):  # robfig/cron: day of week 0-6 (7 is not Sunday there)
        snapshot.Schedule("0 3 * * 7")
