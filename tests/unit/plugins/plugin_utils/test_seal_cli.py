"""The seal command: arguments, bad input (exit 2, one line, no run), the stored Clusterfile
(replaced only after a successful run), confirmation, the image verbs."""
import os
import stat

import pytest
import yaml

from ansible_collections.seal.cluster.plugins.plugin_utils import seal_api as api
from ansible_collections.seal.cluster.plugins.plugin_utils import seal_cli as cli


class Result(api.Result):
    def __init__(self, ok=True, run_dir="/runs/x"):
        super().__init__(0 if ok else 2, "successful" if ok else "failed", run_dir, run_dir + "/stdout", [], {})


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A seal home, an image store holding k3s:v1.25.3 and k3s:v1.26.0, and recorded runs (no Ansible)."""
    monkeypatch.setenv("SEAL_HOME", str(tmp_path / "seal"))
    monkeypatch.delenv("SEAL_SSH_PASSWORD", raising=False)
    monkeypatch.setattr(cli, "_check_image", lambda name, store: _known(name))
    calls = []
    state = {"ok": True}

    def fake(book):
        def operation(clusterfile, *args, on_event=None, **kwargs):
            with open(clusterfile, encoding="utf-8") as f:
                calls.append({"book": book, "clusterfile": clusterfile, "text": f.read(), "args": args, "kwargs": kwargs})
            on_event({"event": "playbook_on_play_start", "event_data": {"play": "Join the agents", "play_pattern": "node"}})
            return Result(state["ok"])
        return operation

    for book in api.PLAYBOOKS:
        monkeypatch.setattr(api, book, fake(book))
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    pw = tmp_path / "pw"
    pw.write_text("ssh-Pw-123\nsecond line\n")
    return {"calls": calls, "state": state, "key": str(key), "pw": str(pw), "home": tmp_path / "seal"}


def _known(name):
    if name not in ("k3s:v1.25.3", "k3s:v1.26.0"):
        raise cli.UsageError("image %s is not in the store" % name)


def stored(env, name="default"):
    path = env["home"] / name / "Clusterfile"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def seal(capsys, *argv):
    rc = cli.main(list(argv) + ["--output", "plain"] if argv and argv[0] in cli.VERBS else list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("argv, message", [
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.300"], "seal: --masters: '10.0.0.300': '10.0.0.300' is not an IP address"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2:70000"], "seal: --masters: '10.0.0.2:70000': port '70000' is not a number in 1-65535"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--pk", "/no/such/key"], "seal: --pk /no/such/key: no such readable key file"),
    (["run", "k3s:v9", "--masters", "10.0.0.2"], "seal: image k3s:v9 is not in the store"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--bogus"], "seal: unrecognized arguments: --bogus"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--passwd", "x"], "seal: unrecognized arguments: --passwd x"),
    (["run", "k3s:v1.25.3"], "seal: --masters: at least one master is needed"),
    (["run", "--masters", "10.0.0.2"], "seal: give the cluster IMAGE (or -f Clusterfile)"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--nodes", "10.0.0.2"], "seal: 10.0.0.2 is in --masters and --nodes"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--pk", "/k", "--ask-pass"], "seal: argument --ask-pass: not allowed with argument --pk"),
    (["run", "k3s:v1.25.3", "--masters", "10.0.0.2", "-e", "1x=2"], "seal: -e wants KEY=VALUE with KEY a variable name, got '1x'"),
    (["run", "a:b", "c:d", "--masters", "10.0.0.2"], "seal: c:d is not an app-installer image in the store"),
    (["frobnicate"], "seal: argument COMMAND: invalid choice: 'frobnicate'"),
    (["status"], "seal: cluster default has no Clusterfile"),
    (["run", "-f", "/no/Clusterfile"], "seal: /no/Clusterfile: No such file or directory"),
])
def test_bad_input_exits_2_with_one_line_and_runs_nothing(env, capsys, argv, message):
    rc, out, err = seal(capsys, *argv)
    assert rc == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert out == ""
    assert env["calls"] == []


def test_run_writes_the_clusterfile_only_after_success(env, capsys):
    env["state"]["ok"] = False
    rc, _out, err = seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--nodes", "10.0.0.3:2222,10.0.0.4",
                         "--pk", env["key"], "--cluster", "c1")
    assert rc == 1 and "seal: full log: /runs/x/stdout" in err
    assert stored(env, "c1") is None
    assert not (env["home"] / "c1" / "Clusterfile.next").exists()
    env["state"]["ok"] = True
    rc, out, _err = seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--nodes", "10.0.0.3:2222,10.0.0.4",
                         "--pk", env["key"], "--cluster", "c1")
    assert rc == 0 and "seal: run k3s:v1.25.3 done" in out
    value = stored(env, "c1")
    assert value["spec"]["image"] == "k3s:v1.25.3"
    assert value["spec"]["ssh"] == {"user": "root", "port": "22", "pk": env["key"]}
    assert value["spec"]["hosts"] == [{"ips": ["10.0.0.2"], "roles": ["master"]},
                                      {"ips": ["10.0.0.3"], "roles": ["node"], "ssh": {"port": "2222"}},
                                      {"ips": ["10.0.0.4"], "roles": ["node"]}]
    path = env["home"] / "c1" / "Clusterfile"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((env["home"] / "c1").stat().st_mode) == 0o700
    assert env["calls"][-1]["book"] == "run" and env["calls"][-1]["text"] == path.read_text()


def test_password_from_a_file_goes_into_the_clusterfile_not_argv(env, capsys):
    rc, _out, _err = seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--passwd-file", env["pw"])
    assert rc == 0
    assert stored(env)["spec"]["ssh"]["passwd"] == "ssh-Pw-123"
    assert "ssh-Pw-123" not in repr(env["calls"][-1]["args"]) + repr(env["calls"][-1]["kwargs"])


def test_password_from_the_environment(env, capsys, monkeypatch):
    monkeypatch.setenv("SEAL_SSH_PASSWORD", "env-Pw-1")
    assert seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2")[0] == 0
    assert stored(env)["spec"]["ssh"]["passwd"] == "env-Pw-1"


def test_extra_vars_go_to_a_vars_text(env, capsys):
    assert seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "-e", "seal_token=tok-1", "-e", "upgrade_drain=true")[0] == 0
    assert yaml.safe_load(env["calls"][-1]["kwargs"]["vars_text"]) == {"seal_token": "tok-1", "upgrade_drain": "true"}


def installed(env, capsys, nodes="10.0.0.3"):
    assert seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--nodes", nodes, "--pk", env["key"])[0] == 0
    env["calls"].clear()


def test_a_second_run_with_another_image_points_at_upgrade(env, capsys):
    installed(env, capsys)
    rc, _out, err = seal(capsys, "run", "k3s:v1.26.0", "--masters", "10.0.0.2", "--nodes", "10.0.0.3", "--pk", env["key"])
    assert rc == 2 and "cluster default runs k3s:v1.25.3: use seal upgrade k3s:v1.26.0" in err
    rc, _out, err = seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--pk", env["key"])
    assert rc == 2 and "use seal add / seal delete, or seal apply -f" in err
    assert env["calls"] == []
    assert seal(capsys, "run", "k3s:v1.25.3", "--masters", "10.0.0.2", "--nodes", "10.0.0.3", "--pk", env["key"])[0] == 0


def test_add_then_delete(env, capsys):
    installed(env, capsys)
    assert seal(capsys, "add", "--nodes", "10.0.0.4", "--masters", "10.0.0.5,10.0.0.6")[0] == 0
    assert env["calls"][-1]["book"] == "run"
    hosts = stored(env)["spec"]["hosts"]
    assert [(h["ips"], h["roles"]) for h in hosts] == [
        (["10.0.0.2"], ["master"]), (["10.0.0.3"], ["node"]), (["10.0.0.5", "10.0.0.6"], ["master"]), (["10.0.0.4"], ["node"])]
    before = (env["home"] / "default" / "Clusterfile").read_text()
    rc, _out, err = seal(capsys, "delete", "--nodes", "10.0.0.4")
    assert rc == 2 and "give --yes to confirm" in err
    env["state"]["ok"] = False
    assert seal(capsys, "delete", "--nodes", "10.0.0.4", "--yes")[0] == 1
    assert (env["home"] / "default" / "Clusterfile").read_text() == before
    env["state"]["ok"] = True
    assert seal(capsys, "delete", "--nodes", "10.0.0.4", "--masters", "10.0.0.6", "--yes", "--force")[0] == 0
    call = env["calls"][-1]
    assert call["book"] == "delete" and call["text"] == before  # run with the hosts still listed: they are reset
    assert call["kwargs"]["hosts"] == ["10.0.0.6", "10.0.0.4"] and call["kwargs"]["force"] is True
    assert [(h["ips"], h["roles"]) for h in stored(env)["spec"]["hosts"]] == [
        (["10.0.0.2"], ["master"]), (["10.0.0.3"], ["node"]), (["10.0.0.5"], ["master"])]


def test_delete_of_the_last_master_is_refused_before_any_run(env, capsys):
    installed(env, capsys)
    rc, _out, err = seal(capsys, "delete", "--masters", "10.0.0.2", "--yes")
    assert rc == 2 and "would remove the last master of cluster default: use seal reset" in err
    assert env["calls"] == []


def test_upgrade_and_check_mode(env, capsys):
    installed(env, capsys)
    assert seal(capsys, "upgrade", "k3s:v1.26.0", "--check")[0] == 0
    assert env["calls"][-1]["kwargs"]["check"] is True
    assert stored(env)["spec"]["image"] == "k3s:v1.25.3"  # check mode stores nothing
    assert seal(capsys, "upgrade", "k3s:v1.26.0")[0] == 0
    assert env["calls"][-1]["book"] == "upgrade" and env["calls"][-1]["args"] == ("k3s:v1.26.0",)
    assert stored(env)["spec"]["image"] == "k3s:v1.26.0"
    rc, _out, err = seal(capsys, "upgrade", "k3s:v9")
    assert rc == 2 and "k3s:v9 is not in the store" in err


def test_plan_is_apply_in_check_mode(env, capsys):
    installed(env, capsys)
    assert seal(capsys, "plan")[0] == 0
    assert env["calls"][-1]["book"] == "apply" and env["calls"][-1]["kwargs"]["check"] is True


def test_apply_f_replaces_the_stored_clusterfile_after_success(env, capsys, tmp_path):
    installed(env, capsys)
    new = tmp_path / "Clusterfile"
    text = (env["home"] / "default" / "Clusterfile").read_text().replace("10.0.0.3", "10.0.0.9")
    new.write_text(text)
    env["state"]["ok"] = False
    assert seal(capsys, "apply", "-f", str(new))[0] == 1
    assert stored(env)["spec"]["hosts"][1]["ips"] == ["10.0.0.3"]
    env["state"]["ok"] = True
    assert seal(capsys, "apply", "-f", str(new))[0] == 0
    assert stored(env)["spec"]["hosts"][1]["ips"] == ["10.0.0.9"]


def test_reset_needs_yes_and_retires_the_clusterfile(env, capsys):
    installed(env, capsys)
    assert seal(capsys, "reset")[0] == 2
    assert seal(capsys, "reset", "--yes")[0] == 0
    assert env["calls"][-1]["book"] == "reset"
    assert stored(env) is None and (env["home"] / "default" / "Clusterfile.reset").exists()


def test_image_verbs_are_seal_image(monkeypatch):
    seen = []
    monkeypatch.setattr(cli.image_cli, "main", lambda argv: seen.append(argv) or 0)
    assert cli.main(["images", "--store", "/s"]) == 0
    assert cli.main(["pull", "--store=/s", "-u", "me", "reg.example/k3s:v1"]) == 0
    assert cli.main(["tag", "a", "b"]) == 0
    assert seen == [["--store", "/s", "images"], ["--store", "/s", "pull", "-u", "me", "reg.example/k3s:v1"],
                    ["tag", "a", "b"]]


def test_check_image_against_a_real_store(tmp_path):
    with pytest.raises(cli.UsageError, match=r"image k3s:v1.25.3 is not in the store .*: seal pull k3s:v1.25.3"):
        cli._check_image("k3s:v1.25.3", str(tmp_path))  # pylint: disable=protected-access
    cli._check_image("registry.example:5000/k3s:v1.25.3", str(tmp_path))  # pylint: disable=protected-access
    with pytest.raises(cli.UsageError, match="image 'K3S:x'"):
        cli._check_image("K3S:x", str(tmp_path))  # pylint: disable=protected-access
    assert os.listdir(str(tmp_path)) == []


def test_app_images_run_on_the_stored_cluster_after_the_cluster_image(env, capsys, monkeypatch):
    """seal run CLUSTER-IMAGE APP-IMAGE: the cluster first, then run.yml with image=<app> on the
    stored Clusterfile, which keeps the cluster image; an app image alone runs on the stored
    cluster, and is refused (exit 2, nothing run) when there is none."""
    monkeypatch.setattr(cli, "_image_type", lambda name, store: {"app:v1": "app-installer"}.get(name, "kube-installer"))
    rc, _out, err = seal(capsys, "run", "app:v1", "--cluster", "c2")
    assert rc == 2 and err.startswith("seal: no cluster c2") and env["calls"] == []
    rc, _out, err = seal(capsys, "run", "k3s:v1.25.3", "k3s:v1.26.0", "--masters", "10.0.0.2", "--pk", env["key"])
    assert rc == 2 and "k3s:v1.26.0 is not an app-installer image" in err and env["calls"] == []
    rc, _out, err = seal(capsys, "run", "k3s:v1.25.3", "app:v1", "--masters", "10.0.0.2", "--pk", env["key"])
    assert rc == 0, err
    assert [c["book"] for c in env["calls"]] == ["run", "run"]
    assert env["calls"][1]["kwargs"]["image"] == "app:v1" and stored(env)["spec"]["image"] == "k3s:v1.25.3"
    rc, _out, _err = seal(capsys, "run", "app:v1")
    assert rc == 0 and env["calls"][-1]["kwargs"]["image"] == "app:v1"
    # sealer runs an app image named on the command line without the Clusterfile's Application (runWithArgs)
    assert yaml.safe_load(env["calls"][-1]["kwargs"]["vars_text"]) == {"controller_application": None}
