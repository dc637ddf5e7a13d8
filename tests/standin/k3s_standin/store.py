"""Datastores: sqlite (kine's default file DATA/server/db/state.db) and etcd (embedded or
external), behind one small key-value interface with revisions, so that HA servers share state.

Keys follow kube-apiserver's layout: /registry/minions/<node>, /registry/leases/..., and
k3s's /bootstrap/<token-hash> for the encrypted bootstrap data."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import sqlite3
import ssl
import threading
import urllib.error
import urllib.request


class StoreUnavailable(Exception):
    pass


class Conflict(Exception):
    pass


class SQLiteStore:
    kind = "sqlite"

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS kine (name TEXT PRIMARY KEY, value BLOB, mod_revision INTEGER,"
            " create_revision INTEGER)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('revision', 0)")

    def _next_rev(self) -> int:
        self._db.execute("UPDATE meta SET v = v + 1 WHERE k = 'revision'")
        return self._db.execute("SELECT v FROM meta WHERE k = 'revision'").fetchone()[0]

    def health(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    def revision(self) -> int:
        """The datastore's current revision (a list's resourceVersion)."""
        with self._lock:
            return self._db.execute("SELECT v FROM meta WHERE k = 'revision'").fetchone()[0]

    def get(self, key: str):
        with self._lock:
            row = self._db.execute("SELECT value, mod_revision FROM kine WHERE name = ?", (key,)).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def list(self, prefix: str):
        with self._lock:
            rows = self._db.execute(
                "SELECT name, value, mod_revision FROM kine WHERE substr(name, 1, ?) = ? ORDER BY name",
                (len(prefix), prefix)).fetchall()
        return [(r[0], bytes(r[1]), r[2]) for r in rows]

    @contextlib.contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE; COMMIT when the block leaves (a return included), ROLLBACK when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def create(self, key: str, value: bytes) -> int:
        with self._lock:
            with self._transaction():
                if self._db.execute("SELECT 1 FROM kine WHERE name = ?", (key,)).fetchone():
                    raise Conflict(key)
                rev = self._next_rev()
                self._db.execute("INSERT INTO kine VALUES (?, ?, ?, ?)", (key, value, rev, rev))
                return rev

    def update(self, key: str, value: bytes, expected_rev: int | None) -> int:
        with self._lock:
            with self._transaction():
                row = self._db.execute("SELECT mod_revision FROM kine WHERE name = ?", (key,)).fetchone()
                if expected_rev is not None and (row is None or row[0] != expected_rev):
                    raise Conflict(key)
                rev = self._next_rev()
                if row:
                    self._db.execute("UPDATE kine SET value = ?, mod_revision = ? WHERE name = ?", (value, rev, key))
                else:
                    self._db.execute("INSERT INTO kine VALUES (?, ?, ?, ?)", (key, value, rev, rev))
                return rev

    def put(self, key: str, value: bytes) -> int:
        return self.update(key, value, None)

    def delete(self, key: str, expected_rev: int | None = None) -> bool:
        with self._lock:
            with self._transaction():
                row = self._db.execute("SELECT mod_revision FROM kine WHERE name = ?", (key,)).fetchone()
                if row is None:
                    return False
                if expected_rev is not None and row[0] != expected_rev:
                    raise Conflict(key)
                self._next_rev()
                self._db.execute("DELETE FROM kine WHERE name = ?", (key,))
                return True

    def close(self) -> None:
        self._db.close()


def _b64(s) -> str:
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def _prefix_end(prefix: str) -> str:
    b = bytearray(prefix.encode())
    b[-1] += 1
    return _b64(bytes(b))


class EtcdStore:
    """etcd v3 through its JSON gateway (/v3/...), with optional TLS client auth."""

    kind = "etcd"

    def __init__(self, endpoints: list[str], cafile: str | None = None, certfile: str | None = None,
                 keyfile: str | None = None, timeout: float = 5.0):
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self._ctx = None
        if any(e.startswith("https://") for e in self.endpoints):
            ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
            if not cafile:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if certfile:
                ctx.load_cert_chain(certfile, keyfile)
            self._ctx = ctx
        self._good = 0

    def call(self, path: str, body: dict, timeout: float | None = None) -> dict:
        errors = []
        n = len(self.endpoints)
        for i in range(n):
            ep = self.endpoints[(self._good + i) % n]
            req = urllib.request.Request(ep + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout or self.timeout,
                                            context=self._ctx if ep.startswith("https") else None) as r:
                    out = json.loads(r.read() or b"{}")
                self._good = (self._good + i) % n
                return out
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")
                try:
                    msg = json.loads(detail).get("error") or json.loads(detail).get("message") or detail
                except ValueError:
                    msg = detail
                errors.append(f"{ep}: {msg}")
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
                errors.append(f"{ep}: {getattr(exc, 'reason', exc)}")
        raise StoreUnavailable("; ".join(errors))

    def health(self) -> None:
        # a linearizable read needs quorum, like kube-apiserver's etcd health check
        self.call("/v3/kv/range", {"key": _b64("health")})

    def revision(self) -> int:
        out = self.call("/v3/kv/range", {"key": _b64("/registry/health"), "count_only": True})
        return int(out.get("header", {}).get("revision", 0))

    def get(self, key: str):
        out = self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = out.get("kvs") or []
        if not kvs:
            return None
        kv = kvs[0]
        return base64.b64decode(kv.get("value", "")), int(kv["mod_revision"])

    def list(self, prefix: str):
        out = self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        return [(base64.b64decode(kv["key"]).decode(), base64.b64decode(kv.get("value", "")), int(kv["mod_revision"]))
                for kv in out.get("kvs") or []]

    def _txn(self, compare: list, success: list) -> dict:
        out = self.call("/v3/kv/txn", {"compare": compare, "success": success, "failure": []})
        if not out.get("succeeded"):
            raise Conflict("txn compare failed")
        return out

    def create(self, key: str, value: bytes) -> int:
        out = self._txn([{"target": "CREATE", "key": _b64(key), "create_revision": 0, "result": "EQUAL"}],
                        [{"request_put": {"key": _b64(key), "value": _b64(value)}}])
        return int(out["header"]["revision"])

    def update(self, key: str, value: bytes, expected_rev: int | None) -> int:
        if expected_rev is None:
            return self.put(key, value)
        out = self._txn([{"target": "MOD", "key": _b64(key), "mod_revision": expected_rev, "result": "EQUAL"}],
                        [{"request_put": {"key": _b64(key), "value": _b64(value)}}])
        return int(out["header"]["revision"])

    def put(self, key: str, value: bytes) -> int:
        out = self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(out["header"]["revision"])

    def delete(self, key: str, expected_rev: int | None = None) -> bool:
        if expected_rev is not None:
            out = self._txn([{"target": "MOD", "key": _b64(key), "mod_revision": expected_rev, "result": "EQUAL"}],
                            [{"request_delete_range": {"key": _b64(key)}}])
            return True
        out = self.call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(out.get("deleted", 0)) > 0

    # membership
    def members(self) -> list[dict]:
        return self.call("/v3/cluster/member/list", {}).get("members") or []

    def member_add(self, peer_urls: list[str], learner: bool = False) -> dict:
        return self.call("/v3/cluster/member/add", {"peerURLs": peer_urls, "isLearner": learner})

    def member_promote(self, member_id) -> dict:
        return self.call("/v3/cluster/member/promote", {"ID": str(member_id)})

    def status(self) -> dict:
        return self.call("/v3/maintenance/status", {})

    def member_remove(self, member_id) -> dict:
        return self.call("/v3/cluster/member/remove", {"ID": str(member_id)})

    def close(self) -> None:
        pass
