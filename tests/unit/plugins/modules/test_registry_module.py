"""The registry module on a host under a temporary directory: systemctl is a recording runner
that keeps the unit's state, and the registry it checks is a small HTTP server on loopback.
check -> apply -> idempotent -> changed, then absent."""
import http.server
import json
import os
import stat
import threading

import pytest

from ansible_collections.seal.cluster.plugins.modules import registry

REAL = registry.Registry
TAG_LINK = "registry/docker/registry/v2/repositories/library/busybox/_manifests/tags/1.36/current/link"


class FakeRegistry(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/v2/":
            body = b"{}"
        elif self.path.startswith("/v2/_catalog"):
            body = json.dumps({"repositories": ["library/busybox"]}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def served():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


class Units:
    def __init__(self, fake_runner, fake_units):
        self.units = fake_units()
        self.runner = fake_runner({"systemctl": self.units.systemctl}, programs=("systemctl", "journalctl"))

    def verbs(self):
        return [" ".join(c[1:]) for c in self.runner.calls if c[1] not in ("is-active", "is-enabled")]


@pytest.fixture
def rootfs(tmp_path):
    rootfs = tmp_path / "rootfs"
    for rel, data in (("bin/registry", b"registry v2.8.3"), (TAG_LINK, b"sha256:" + b"a" * 64),
                      ("manifests/imageList", b"docker.io/library/busybox:1.36\n")):
        (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / rel).write_bytes(data)
    return rootfs


def run(run_main, monkeypatch, units, unit_dir, module_args, check=False):
    monkeypatch.setattr(registry, "Registry", lambda module: REAL(module, units.runner, str(unit_dir)))
    units.runner.calls.clear()
    return run_main(registry, module_args, check=check, diff=True)


def test_check_apply_idempotent_changed_absent(run_main, monkeypatch, tmp_path, rootfs, served, fake_runner, fake_units):
    units, unit_dir = Units(fake_runner, fake_units), tmp_path / "systemd"
    unit_dir.mkdir()
    args = {"cluster": "c1", "rootfs": str(rootfs), "port": served, "data_root": str(tmp_path / "seal"),
            "config_dir": str(tmp_path / "etc/registry"), "check_images": False, "timeout": 5}
    unit = unit_dir / "seal-registry-c1.service"
    binary = tmp_path / "seal/c1/bin/seal-registry"

    predicted = run(run_main, monkeypatch, units, unit_dir, args, check=True)
    assert predicted["changed"] is True and predicted["restarted"] is True and predicted["checked"] is False
    assert str(unit) in predicted["files_changed"] and str(binary) in predicted["files_changed"]
    assert predicted["merged"] == {"added": 1, "updated": 0} and predicted["images"] == ["docker.io/library/busybox:1.36"]
    assert not unit.exists() and not (tmp_path / "seal").exists() and units.verbs() == []

    applied = run(run_main, monkeypatch, units, unit_dir, args)
    assert applied["changed"] is True and applied["checked"] is True and applied["catalog"] == ["library/busybox"]
    assert units.verbs() == ["daemon-reload", "enable seal-registry-c1.service", "restart seal-registry-c1.service"]
    assert binary.read_bytes() == b"registry v2.8.3" and stat.S_IMODE(os.stat(binary).st_mode) == 0o755
    assert "ExecStart=%s" % binary in unit.read_text()
    assert (tmp_path / "seal/c1/registry" / TAG_LINK[len("registry/"):]).read_bytes() == b"sha256:" + b"a" * 64

    again = run(run_main, monkeypatch, units, unit_dir, args)
    assert again["changed"] is False and again["restarted"] is False and again["files_changed"] == []
    assert units.verbs() == [] and again["checked"] is True

    (rootfs / "bin/registry").write_bytes(b"registry v3.0.0")
    changed = run(run_main, monkeypatch, units, unit_dir, args)
    assert changed["files_changed"] == [str(binary)] and units.verbs() == ["restart seal-registry-c1.service"]

    absent = dict(args, state="absent")
    assert run(run_main, monkeypatch, units, unit_dir, absent, check=True)["changed"] is True and unit.exists()
    removed = run(run_main, monkeypatch, units, unit_dir, absent)
    assert sorted(removed["files_changed"]) == sorted([str(unit), args["config_dir"], str(binary)])
    assert units.verbs() == ["disable --now seal-registry-c1.service", "daemon-reload"]
    assert not unit.exists() and not binary.exists() and (tmp_path / "seal/c1/registry").is_dir()
    assert run(run_main, monkeypatch, units, unit_dir, absent)["changed"] is False


def test_an_unhealthy_registry_fails_from_main_with_its_journal(run_main, monkeypatch, tmp_path, rootfs, fake_runner, fake_units):
    units, unit_dir = Units(fake_runner, fake_units), tmp_path / "systemd"
    unit_dir.mkdir()
    units.runner.answers["journalctl"] = (0, "level=fatal msg=\"listen tcp :1: bind: permission denied\"\n", "")
    out = run(run_main, monkeypatch, units, unit_dir,
              {"cluster": "c1", "rootfs": str(rootfs), "port": 1, "data_root": str(tmp_path / "seal"),
               "config_dir": str(tmp_path / "etc"), "check_images": False, "timeout": 1})
    assert out["failed"] is True and "is not healthy after 1s" in out["msg"] and "bind: permission denied" in out["msg"]
    assert out["restarted"] is True
