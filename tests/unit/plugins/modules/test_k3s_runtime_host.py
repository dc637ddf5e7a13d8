"""k3s_runtime's success path on a host laid out under a temporary root: check mode predicts
and writes nothing, apply writes the files and starts the service, a second run changes and
restarts nothing, a config change restarts. systemctl and the k3s binary are a recording runner
that keeps the service's state."""
import json
import os
import stat

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._k3s_layout import Layout
from ansible_collections.seal.cluster.plugins.modules import k3s_runtime

REAL = k3s_runtime.K3sRuntime
PASSWORD = "p" * 32
HELD = "K10%s::server:%s" % ("c" * 64, PASSWORD)
REGISTRY_PASSWORD = "Reg-pw-0nly"


class Host:
    """systemd and k3s as far as k3s_runtime sees them: start writes the server token as k3s
    does (DATA/server/token, secure form)."""

    def __init__(self, tmp_path, fake_runner, fake_units, fail_start=False):
        self.root = tmp_path / "root"
        self.layout = Layout(str(self.root))
        self.data = self.layout.path("/var/lib/rancher/k3s")
        self.fail_start = fail_start
        self.units = fake_units(on_start=self.start)
        self.runner = fake_runner({"*": self.answer}, programs=("systemctl", "journalctl"))

    def start(self, _argv):
        if self.fail_start:
            return 1, "", "Job for k3s.service failed"
        os.makedirs(os.path.join(self.data, "server"), exist_ok=True)
        with open(os.path.join(self.data, "server", "token"), "w", encoding="utf-8") as f:
            f.write(HELD + "\n")
        return None

    def answer(self, argv):
        if argv[0] == "systemctl":
            return self.units.systemctl(argv)
        if argv[0] == "journalctl":
            return 0, "level=info msg=\"token %s\"\nlevel=fatal msg=\"failed\"\n" % PASSWORD, ""
        assert argv[0] == self.layout.k3s_bin, argv
        if argv[1:] == ["--version"]:
            return 0, "k3s version v1.30.1+k3s1 (80978b5b)\ngo version go1.22.2\n", ""
        assert argv[1:4] == ["kubectl", "--kubeconfig", self.layout.kubeconfig], argv
        if argv[4:] == ["get", "--raw", "/readyz"]:
            return 0, "ok", ""
        if argv[4:7] == ["get", "node", "m1"]:
            return 0, "True", ""
        return 1, "", "unexpected %s" % argv

    def verbs(self):
        return [c[1] for c in self.runner.calls if c[0] == "systemctl" and c[1] not in ("is-active", "is-enabled", "show")]


@pytest.fixture
def rootfs(tmp_path):
    rootfs = tmp_path / "rootfs"
    for rel, content in (("bin/k3s", b"\x7fELF k3s v1.30.1"), ("images/k3s-airgap-images-amd64.tar.zst", b"zstd"),
                         ("images/README", b"not an archive"), ("manifests/app.yaml", b"kind: ConfigMap\n")):
        (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / rel).write_bytes(content)
    return rootfs


def args(host, rootfs, **more):
    result = dict(role="server", rootfs=str(rootfs), token=PASSWORD, wait_timeout=5, data_dir=host.data,
                  token_file=host.layout.path("/etc/rancher/k3s/token"),
                  config={"node-name": "m1", "node-ip": "10.0.0.2", "write-kubeconfig-mode": "0600"},
                  registries={"mirrors": {"docker.io": {"endpoint": ["https://sea.hub:5000"]}}},
                  registry_auth=[{"host": "sea.hub:5000", "auth": {"username": "pull", "password": REGISTRY_PASSWORD}}],
                  env={"K3S_NODE_NAME": "m1"})
    result.update(more)
    return result


def run(run_main, monkeypatch, host, module_args, check=False):
    monkeypatch.setattr(k3s_runtime, "K3sRuntime", lambda module: REAL(module, host.layout, host.runner))
    host.runner.calls.clear()
    return run_main(k3s_runtime, module_args, check=check, diff=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, names in os.walk(root) for f in names)


def test_check_apply_idempotent_then_changed(run_main, monkeypatch, tmp_path, rootfs, fake_runner, fake_units):
    host = Host(tmp_path, fake_runner, fake_units)
    layout = host.layout
    module_args = args(host, rootfs)

    predicted = run(run_main, monkeypatch, host, module_args, check=True)
    assert predicted["changed"] is True and predicted["restarted"] is False, predicted
    assert set(predicted["changed_items"]) == {"binary", "links", "config", "registries", "token", "unit", "env",
                                               "airgap", "manifests", "service"}
    assert files_under(str(tmp_path / "root")) == [] and host.verbs() == []
    assert REGISTRY_PASSWORD not in json.dumps(predicted) and PASSWORD not in json.dumps(predicted)

    applied = run(run_main, monkeypatch, host, module_args)
    assert applied["changed"] is True and applied["restarted"] is True
    assert set(applied["changed_items"]) == set(predicted["changed_items"])
    assert host.verbs() == ["daemon-reload", "enable", "start"]
    assert applied["version"] == "v1.30.1+k3s1" and applied["token_ca_hash"] == "c" * 64
    with open(layout.k3s_bin, "rb") as f:
        assert f.read() == b"\x7fELF k3s v1.30.1"
    assert mode(layout.k3s_bin) == 0o755
    assert all(os.readlink(os.path.join(layout.bin_dir, n)) == "k3s" for n in ("kubectl", "crictl", "ctr"))
    config = open(layout.config, encoding="utf-8").read()
    assert "token-file: \"%s\"" % module_args["token_file"] in config and PASSWORD not in config and mode(layout.config) == 0o600
    assert REGISTRY_PASSWORD in open(layout.registries, encoding="utf-8").read() and mode(layout.registries) == 0o600
    # the first server was given the password alone: its token file now holds k3s's secure form
    assert open(module_args["token_file"], encoding="utf-8").read() == HELD + "\n" and mode(module_args["token_file"]) == 0o600
    assert "ExecStart=/usr/local/bin/k3s" in open(layout.unit_path("server"), encoding="utf-8").read()
    assert mode(layout.env_path("server")) == 0o600
    assert os.listdir(os.path.join(host.data, "agent", "images")) == ["k3s-airgap-images-amd64.tar.zst"]
    assert mode(os.path.join(host.data, "server", "manifests", "app.yaml")) == 0o600
    shown = json.dumps(applied)
    assert REGISTRY_PASSWORD not in shown and PASSWORD not in shown

    again = run(run_main, monkeypatch, host, module_args)
    assert again["changed"] is False and again["changed_items"] == [] and again["restarted"] is False
    assert host.verbs() == []
    predicted_again = run(run_main, monkeypatch, host, module_args, check=True)
    assert predicted_again["changed"] is False

    changed = run(run_main, monkeypatch, host, dict(module_args, config=dict(module_args["config"], **{"node-label": ["a=b"]})))
    assert changed["changed_items"] == ["config", "service"] and changed["restarted"] is True
    assert host.verbs() == ["restart"]


def test_a_failed_start_is_reported_from_main_with_the_journal(run_main, monkeypatch, tmp_path, rootfs, fake_runner, fake_units):
    host = Host(tmp_path, fake_runner, fake_units, fail_start=True)
    out = run(run_main, monkeypatch, host, args(host, rootfs))
    assert out["failed"] is True and out["msg"] == "systemctl start --no-block k3s failed: Job for k3s.service failed"
    assert "config" in out["changed_items"]
    assert out["journal"] == ['level=info msg="token ********"', 'level=fatal msg="failed"']
    assert PASSWORD not in json.dumps(out)


def test_registry_user_name_is_not_masked_in_results(run_main, monkeypatch, tmp_path, rootfs, fake_runner, fake_units):
    """Only the registry's secrets are no_log: a user name that is part of the node name (and of
    paths) stays readable in the results, the password never appears."""
    host = Host(tmp_path, fake_runner, fake_units)
    module_args = args(host, rootfs, config={"node-name": "pull-m1", "node-ip": "10.0.0.2"}, env={})
    module_args["registry_auth"][0]["auth"]["username"] = "pull"
    result = run(run_main, monkeypatch, host, module_args, check=True)
    assert result["node_name"] == "pull-m1", result
    assert REGISTRY_PASSWORD not in json.dumps(result)


def test_the_converged_record_shows_inputs_owned_paths_and_service(run_main, monkeypatch, tmp_path, rootfs, fake_runner, fake_units):
    """k3s_runtime records the inputs it converged to and what it owns; the report node_prepare
    folds into its call (module_utils/_converged.py) matches only while nothing changed."""
    from ansible_collections.seal.cluster.plugins.module_utils._converged import record_report
    from ansible_collections.seal.cluster.plugins.module_utils._systemd import Systemd

    host = Host(tmp_path, fake_runner, fake_units)
    record = str(tmp_path / "converged.json")
    module_args = args(host, rootfs, inputs="digest-one", record=record)

    def report():
        return record_report(record, Systemd(host.runner))

    run(run_main, monkeypatch, host, module_args, check=True)
    assert not os.path.exists(record) and report() == {"inputs": None, "intact": False, "active": False}
    run(run_main, monkeypatch, host, module_args)
    assert mode(record) == 0o600 and report() == {"inputs": "digest-one", "intact": True, "active": True}
    owned = json.load(open(record, encoding="utf-8"))["paths"]
    assert {host.layout.config, host.layout.k3s_bin, os.path.join(host.data, "server", "token"),
            os.path.join(host.data, "server", "manifests", "app.yaml")} <= set(owned)
    assert PASSWORD not in open(record, encoding="utf-8").read()

    with open(host.layout.config, "a", encoding="utf-8") as f:  # an edit by hand: not intact
        f.write("# drift\n")
    assert report()["intact"] is False
    run(run_main, monkeypatch, host, module_args)
    assert report() == {"inputs": "digest-one", "intact": True, "active": True}

    host.units.active = "failed"
    assert report()["active"] is False
    run(run_main, monkeypatch, host, module_args)
    assert report()["active"] is True

    run(run_main, monkeypatch, host, dict(module_args, inputs="digest-two"))
    assert report()["inputs"] == "digest-two"

    # a run that fails after changing something leaves no record behind
    host.fail_start = True
    out = run(run_main, monkeypatch, host, dict(module_args, config=dict(module_args["config"], **{"node-label": ["a=b"]})))
    assert out.get("failed") and not os.path.exists(record)
