"""seal_api: where the collection is found, what ansible-runner is given (no secret), redaction."""
import json
import os
import stat

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile_edit as edit
from ansible_collections.seal.cluster.plugins.plugin_utils import seal_api as api


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SEAL_HOME", str(tmp_path / "seal"))
    return tmp_path / "seal"


def test_collections_path_of_an_installed_collection(tmp_path):
    root = tmp_path / "colls" / "ansible_collections" / "seal" / "cluster"
    root.mkdir(parents=True)
    assert api.collections_path(str(root)) == str(tmp_path / "colls")


def test_collections_path_of_a_checkout_uses_its_link_or_makes_one(tmp_path, home):
    checkout = tmp_path / "seal.cluster"
    (checkout / ".cache" / "collections" / "ansible_collections" / "seal").mkdir(parents=True)
    os.symlink(str(checkout), str(checkout / ".cache" / "collections" / "ansible_collections" / "seal" / "cluster"))
    assert api.collections_path(str(checkout)) == str(checkout / ".cache" / "collections")
    other = tmp_path / "other-checkout"
    other.mkdir()
    made = api.collections_path(str(other))
    assert made == str(home / ".collections")
    assert os.path.realpath(os.path.join(made, "ansible_collections", "seal", "cluster")) == str(other)


def test_this_checkout_has_the_playbooks():
    for book in api.PLAYBOOKS:
        assert os.path.isfile(api.playbook(book))


def test_cluster_dir_is_0700(home):
    path = api.cluster_dir("c1")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(home)).st_mode) == 0o700


class FakeRunner:
    def __init__(self, rc=0, status="successful"):
        self.rc, self.status, self.stats = rc, status, {}


def test_run_playbook_gives_runner_no_secret(home, tmp_path, monkeypatch):
    text = edit.new("c1", [("10.0.0.2", None)], image="k3s:v1.25.3", passwd="ssh-Pw-123")
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(text)
    monkeypatch.setenv("SEAL_SSH_PASSWORD", "ssh-Pw-123")
    monkeypatch.setenv("SEAL_REGISTRY_PASSWORD", "reg-Pw-456")
    seen = {}

    def run(**kwargs):
        seen.update(kwargs)
        seen["environ"] = dict(os.environ)
        vars_file = kwargs["cmdline"].split("@", 1)[1].split()[0]
        seen["vars_mode"] = stat.S_IMODE(os.stat(vars_file).st_mode)
        with open(vars_file, encoding="utf-8") as f:
            seen["vars"] = f.read()
        seen["vars_file"] = vars_file
        kwargs["event_handler"]({"event": "runner_on_failed", "event_data": {"host": "10.0.0.2", "task": "t", "res": {}}})
        # what ansible-runner writes: a file that (wrongly) holds a secret is redacted after the run
        art = os.path.join(kwargs["private_data_dir"], "artifacts", kwargs["ident"])
        os.makedirs(art)
        with open(os.path.join(art, "stdout"), "w", encoding="utf-8") as f:
            f.write("pw is ssh-Pw-123\n")
        return FakeRunner(rc=2, status="failed")

    monkeypatch.setattr(api.ansible_runner, "run", run)
    events = []
    result = api.run(str(clusterfile), "k3s:v1.25.3", on_event=events.append, vars_text="seal_token: tok-Secret-789\n")
    flat = repr({k: v for k, v in seen.items() if k not in ("environ", "vars", "event_handler")})
    for secret in ("ssh-Pw-123", "reg-Pw-456", "tok-Secret-789"):
        assert secret not in flat
    assert "SEAL_SSH_PASSWORD" not in seen["environ"] and "SEAL_REGISTRY_PASSWORD" not in seen["environ"]
    assert os.environ["SEAL_SSH_PASSWORD"] == "ssh-Pw-123"  # given back after the run
    assert seen["vars_mode"] == 0o600 and "tok-Secret-789" in seen["vars"]
    assert not os.path.exists(seen["vars_file"])
    assert not seen["vars_file"].startswith(result.run_dir)
    assert seen["extravars"] == {"image": "k3s:v1.25.3"}
    assert seen["inventory"] == str(clusterfile)
    assert seen["private_data_dir"].startswith(str(home / "c1" / "runs") + os.sep)
    assert seen["suppress_env_files"] is True
    assert seen["playbook"].endswith(os.path.join("playbooks", "run.yml"))
    assert not result.ok and result.rc == 2 and len(result.failures) == 1
    with open(result.log, encoding="utf-8") as f:
        assert f.read() == "pw is [seal: redacted]\n"
    assert events[-1]["event"] == "secret_redacted"


@pytest.mark.parametrize("operation, args, extravars, book", [
    (api.delete, {"hosts": ["10.0.0.3"], "force": True}, {"force": True, "delete_hosts": "10.0.0.3"}, "delete"),
    (api.upgrade, {"image": "k3s:v1.26.0"}, {"image": "k3s:v1.26.0"}, "upgrade"),
    (api.reset, {}, {}, "reset"),
    (api.apply, {}, {}, "apply"),
])
def test_operations_run_their_playbook(home, tmp_path, monkeypatch, operation, args, extravars, book):
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(edit.new("c1", [("10.0.0.2", None)], [("10.0.0.3", None)], image="k3s:v1.25.3"))
    seen = {}
    monkeypatch.setattr(api.ansible_runner, "run", lambda **kw: seen.update(kw) or FakeRunner())
    result = operation(str(clusterfile), **args)
    assert result.ok
    assert seen["extravars"] == extravars
    assert seen["playbook"].endswith(book + ".yml")


def test_a_bad_clusterfile_is_input_error(home, tmp_path):
    bad = tmp_path / "Clusterfile"
    bad.write_text("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c1}\nspec: {hosts: []}\n")
    with pytest.raises(api.InputError, match="the cluster has no hosts"):
        api.run(str(bad))
    with pytest.raises(api.InputError, match="No such file"):
        api.run(str(tmp_path / "missing"))


def _status_with(monkeypatch, tmp_path, answers):
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(edit.new("c1", [("10.0.0.2", None), ("10.0.0.3", None)], [("10.0.0.4", None)], image="k3s:v1.25.3"))
    seen = {}

    def run(**kwargs):
        seen.update(kwargs)
        for task, host, kind, res in answers:
            kwargs["event_handler"]({"event": kind, "event_data": {"task": task, "host": host, "res": res}})
        return FakeRunner()

    monkeypatch.setattr(api.ansible_runner, "run", run)
    return api.status(str(clusterfile)), seen


NODES = [{"name": "m1", "addresses": ["10.0.0.2"], "ready": True}, {"name": "m2", "addresses": ["10.0.0.3"], "ready": True},
         {"name": "n1", "addresses": ["10.0.0.4"], "ready": True}]
HOSTS = ("10.0.0.2", "10.0.0.3", "10.0.0.4")
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _rootfs(digests):
    return [(api.ROOTFS_TASK, host, "runner_on_ok", {"digest": digest, "exists": digest is not None})
            for host, digest in zip(HOSTS, digests)]


def test_the_status_play_reads_the_settings_the_playbooks_resolve():
    tasks = api.STATUS_PLAY[0]["tasks"]
    assert tasks[0]["ansible.builtin.include_role"] == {"name": "seal.cluster.controller", "tasks_from": "fact"}
    text = json.dumps(tasks[1:])
    # paths and registry hosts come from controller_cluster, not from inventory variables
    assert "seal_" not in text and "controller_cluster.record" in text and "controller_cluster.rootfs" in text
    assert tasks[3]["when"] == "controller_cluster.registry.is_server"


def test_status_reads_the_first_master_whose_api_answers(home, tmp_path, monkeypatch):
    st, seen = _status_with(monkeypatch, tmp_path, [
        (api.STATUS_TASK, "10.0.0.2", "runner_on_ok", {"api_ready": False, "api_error": "connection refused"}),
        (api.STATUS_TASK, "10.0.0.3", "runner_on_ok",
         {"api_ready": True, "nodes": NODES, "record": {"version": "v1", "digest": D1}}),
        *_rootfs([D1, D1, D1]),
        (api.REGISTRY_TASK, "10.0.0.2", "runner_on_ok", {"status": 401}),
        (api.REGISTRY_TASK, "10.0.0.3", "runner_on_ok", {"status": 200})])
    assert st["problems"] == []
    assert st["healthy"] and st["api_host"] == "10.0.0.3" and st["record"] == {"version": "v1", "digest": D1}
    assert st["registries"] == [{"host": "10.0.0.2", "status": 401}, {"host": "10.0.0.3", "status": 200}]
    assert st["images"] == dict.fromkeys(HOSTS, D1)
    assert seen["playbook"] == api.STATUS_PLAY and seen["inventory"] == str(tmp_path / "Clusterfile")


def test_status_names_what_is_wrong(home, tmp_path, monkeypatch):
    nodes = [dict(NODES[0]), dict(NODES[1], ready=False)]
    st, _seen = _status_with(monkeypatch, tmp_path, [
        (api.STATUS_TASK, "10.0.0.2", "runner_on_ok", {"api_ready": True, "nodes": nodes, "record": {"digest": D1}}),
        *_rootfs([D1, D2, None]),
        (api.REGISTRY_TASK, "10.0.0.2", "runner_on_ok", {"status": 200}),
        (api.REGISTRY_TASK, "10.0.0.3", "runner_on_failed", {"msg": "Connection refused"})])
    assert not st["healthy"]
    assert st["problems"] == ["10.0.0.4 has no node in the cluster", "node m2 is not Ready",
                              "10.0.0.3 holds the rootfs of %s, the cluster runs %s" % (D2, D1),
                              "10.0.0.4 holds no complete cluster image rootfs",
                              "the registry on 10.0.0.3 does not answer: Connection refused"]
    st, _seen = _status_with(monkeypatch, tmp_path, [
        (api.STATUS_TASK, "10.0.0.2", "runner_on_unreachable", {"msg": "ssh: no route"}),
        (api.STATUS_TASK, "10.0.0.3", "runner_on_ok", {"api_ready": False, "api_error": "refused"}),
        *_rootfs([D1, D1, D1])])
    assert st["problems"] == ["no master's API answers (10.0.0.2: unreachable, 10.0.0.3: refused)"]
