"""ansible-runner events -> phases, hosts done/total, the slow host, failures; the plain and JSON views."""
import json
import os

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import seal_progress as sp

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "seal")
GROUPS = {"master": ["m1"], "node": ["n1", "n2"]}


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def play(name, pattern):
    return {"event": "playbook_on_play_start", "event_data": {"play": name, "play_pattern": pattern}}


def task(name, uuid):
    return {"event": "playbook_on_task_start", "event_data": {"task": name, "task_uuid": uuid}}


def start(host):
    return {"event": "runner_on_start", "event_data": {"host": host}}


def ok(host, task_name="t", changed=False):
    return {"event": "runner_on_ok", "event_data": {"host": host, "task": task_name, "res": {"changed": changed}}}


def feed(prog, *events):
    out = []
    for event in events:
        out += prog.handle(event)
    return out


@pytest.mark.parametrize("play_name, task_name, phase", [
    ("Read what runs on the masters (the cluster token and the registry CA depend on it)", None, "image"),
    ("Prepare hosts, distribute the rootfs, read what runs", None, "prepare"),
    (None, "Distribute the cluster image rootfs (skipped where the digest marker matches)", "distribute"),
    ("Private registry on master0 (every master with ha), before any k3s pulls from it", None, "registry"),
    ("Initialise the cluster on its first server (never twice)", None, "init"),
    ("Join the other masters, one at a time", None, "join servers"),
    ("Join the nodes", None, "join agents"),
    ("Labels, taints, health gates, kubeconfig, record", None, "gates"),
    ("Upgrade the nodes in batches of 2", None, "upgrade agents"),
    ("Reset hosts", None, "reset"),
    ("Something New", None, "something new"),
    (None, "Some task", None),
])
def test_phase_names(play_name, task_name, phase):
    assert sp.phase_of(play=play_name, task=task_name) == phase


@pytest.mark.parametrize("pattern, hosts", [
    ("master", ["m1"]),
    ("master:node", ["m1", "n1", "n2"]),
    ("all:!node", ["m1"]),
    ("master:&node", []),
    ("localhost", ["localhost"]),
    ("master:!seal_delete", ["m1"]),
    ("seal_delete", None),
])
def test_hosts_of_pattern(pattern, hosts):
    assert sp.hosts_of_pattern(pattern, dict(GROUPS, all=["m1", "n1", "n2"])) == hosts


def test_done_counts_advance_per_step_and_the_slow_host_is_the_one_not_answering():
    clock = Clock()
    prog = sp.Progress(GROUPS, clock=clock)
    recs = feed(prog, play("Join the nodes", "node"), task("Install k3s", "u1"), start("n1"), start("n2"))
    assert [r["event"] for r in recs] == ["phase_start", "task_start"]
    assert (recs[0]["phase"], recs[0]["done"], recs[0]["total"]) == ("join agents", 0, 2)
    clock.now += 1.0
    feed(prog, ok("n1"))
    assert (prog.current.done, prog.current.total) == (1, 2)
    assert prog.current.slow(clock.now) is None  # not past SLOW_AFTER yet
    clock.now += 5.0
    assert prog.current.slow(clock.now) == ("n2", 6.0)
    rec = feed(prog, ok("n2", changed=True))[0]
    assert (rec["event"], rec["host"], rec["status"], rec["done"], rec["total"]) == ("host", "n2", "changed", 2, 2)
    assert prog.current.slow(clock.now) is None


def test_serial_batches_accumulate_done_hosts():
    prog = sp.Progress({"master": ["m1", "m2", "m3"]}, clock=Clock())
    feed(prog, play("Join the other masters, one at a time", "master"))
    for host in ("m1", "m2", "m3"):  # serial: 1 -> the same two tasks again for each batch
        feed(prog, task("Server", "u1"), start(host), ok(host), task("Wait", "u2"), start(host), ok(host))
        assert prog.current.done == ["m1", "m2", "m3"].index(host) + 1
    assert prog.current.total == 3


def test_phase_end_on_next_play_and_stats():
    clock = Clock()
    prog = sp.Progress(GROUPS, clock=clock)
    feed(prog, play("Prepare hosts, distribute the rootfs, read what runs", "master:node"), task("Prepare", "u1"))
    clock.now += 2
    recs = feed(prog, task("Distribute the cluster image rootfs (skipped ...)", "u2"))
    assert [(r["event"], r["phase"]) for r in recs] == [("phase_end", "prepare"), ("phase_start", "distribute"),
                                                        ("task_start", "distribute")]
    assert recs[0]["elapsed"] == 2.0 and recs[0]["done"] == recs[0]["total"] == 3
    recs = feed(prog, {"event": "playbook_on_stats", "event_data": {}})
    assert [(r["event"], r["phase"], r["finished"]) for r in recs] == [("phase_end", "distribute", True)]


def test_failure_names_host_task_and_message():
    prog = sp.Progress(GROUPS, clock=Clock())
    feed(prog, play("Join the nodes", "node"), task("Install k3s", "u1"), start("n1"))
    recs = feed(prog, {"event": "runner_on_failed", "event_data": {
        "host": "n1", "task": "Install k3s", "res": {"msg": "k3s did not start\nmore lines", "changed": False}}})
    assert recs[0]["status"] == "failed"
    assert prog.failures == [{"host": "n1", "task": "Install k3s", "phase": "join agents", "message": "k3s did not start"}]
    # an ignored error is no failure
    feed(prog, {"event": "runner_on_failed", "event_data": {"host": "n2", "task": "x", "ignore_errors": True, "res": {}}})
    assert len(prog.failures) == 1


def test_a_recorded_run_of_one_master_and_two_nodes():
    """A real event stream (seal add on 1 master + 2 nodes, trimmed to what the model reads)."""
    with open(os.path.join(DATA, "run-add-events.jsonl"), encoding="utf-8") as f:
        events = [json.loads(line) for line in f]
    groups = {"master": ["10.89.2.4"], "node": ["10.89.2.3", "10.89.2.2"]}
    prog = sp.Progress(groups, clock=Clock())
    recs = feed(prog, *events)
    starts = [(r["phase"], r["total"]) for r in recs if r["event"] == "phase_start"]
    assert starts == [("image", 1), ("prepare", 3), ("distribute", 3), ("registry", 1), ("init", 1),
                      ("join servers", 1), ("join agents", 2), ("gates", 1)]
    ends = [(r["phase"], r["done"], r["total"]) for r in recs if r["event"] == "phase_end"]
    assert ends == [(p, t, t) for p, t in starts]
    assert not prog.failures
    # within a phase, for one step, the done count only goes up and never passes the total
    last = {}
    for rec in recs:
        if rec["event"] == "task_start":
            last = {}
        elif rec["event"] == "host":
            assert rec["done"] >= last.get(rec["phase"], 0) and rec["done"] <= rec["total"]
            last[rec["phase"]] = rec["done"]


def test_plain_view_lines():
    clock = Clock()
    prog = sp.Progress(GROUPS, clock=clock)
    lines = []
    view = sp.PlainView(prog, lines.append)
    for event in (play("Join the nodes", "node"), task("Install k3s", "u1"), start("n1"), start("n2"), ok("n1")):
        for rec in prog.handle(event):
            view.record(rec)
    clock.now += 3
    view.tick()
    view.tick()  # the slow host is named once per step
    for rec in prog.handle({"event": "runner_on_unreachable", "event_data": {"host": "n2", "task": "Install k3s", "res": {"msg": "ssh: timeout"}}}):
        view.record(rec)
    assert lines == ["[   0.0s] join agents: started (2 hosts)",
                     "[   3.0s] join agents: waiting for n2 (3.0s on 'Install k3s', 1/2 hosts done)",
                     "[   3.0s] join agents: n2 unreachable in task 'Install k3s'"]


def test_json_view_is_one_object_per_line():
    prog = sp.Progress(GROUPS, clock=Clock())
    lines = []
    view = sp.JsonView(prog, lines.append)
    for event in (play("Join the nodes", "node"), task("Install k3s", "u1"), start("n1"), ok("n1", changed=True)):
        for rec in prog.handle(event):
            view.record(rec)
    objects = [json.loads(line) for line in lines]
    assert [o["event"] for o in objects] == ["phase_start", "task_start", "host"]
    assert objects[2]["host"] == "n1" and objects[2]["status"] == "changed" and objects[2]["done"] == 1


def test_live_view_renders_phases_bars_and_the_slow_host():
    rich = pytest.importorskip("rich.console")
    clock = Clock()
    prog = sp.Progress(GROUPS, clock=clock)
    console = rich.Console(record=True, width=120, force_terminal=False)
    view = sp.LiveView(prog, "run k3s:v1.25.3", console=console)
    for event in (play("Prepare hosts", "master:node"), task("Prepare", "u0"), start("m1"), ok("m1"),
                  play("Join the nodes", "node"), task("Install k3s", "u1"), start("n1"), start("n2"), ok("n1")):
        for rec in prog.handle(event):
            view.record(rec)
    clock.now += 4
    view.close()
    screen = console.export_text()
    assert "prepare" in screen and "3/3 hosts" in screen
    assert "join agents" in screen and "1/2 hosts" in screen and "slow: n2 (4.0s)" in screen


def test_a_phase_whose_every_result_was_skipped_says_so():
    prog = sp.Progress(GROUPS, clock=Clock())
    lines = []
    view = sp.PlainView(prog, lines.append)
    skipped = {"event": "runner_on_skipped", "event_data": {"host": "m1", "task": "Server"}}
    for event in (play("Upgrade the masters, one at a time", "master"), task("Server", "u1"), start("m1"), skipped,
                  play("Join the nodes", "node"), task("Agent", "u2"), start("n1"), ok("n1")):
        for rec in prog.handle(event):
            view.record(rec)
    assert lines == ["[   0.0s] upgrade servers: started (1 hosts)", "[   0.0s] upgrade servers: skipped (nothing to do)",
                     "[   0.0s] join agents: started (2 hosts)"]
    assert prog.current.as_dict(0)["skipped"] is False


@pytest.mark.parametrize("playbook", ["run.yml", "upgrade.yml", "apply.yml", "delete.yml", "reset.yml", "prologue.yml"])
def test_every_play_of_the_collections_playbooks_has_a_named_phase(playbook):
    """A play renamed in a playbook must be renamed in PLAY_PHASES too, or the view would show it
    under its raw name (lower-cased) instead of its phase."""
    import yaml

    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
    with open(os.path.join(root, "playbooks", playbook), encoding="utf-8") as f:
        plays = [p for p in yaml.safe_load(f) if "hosts" in p]
    for play in plays:
        assert any(play["name"].startswith(start) for _phase, start in sp.PLAY_PHASES), play["name"]
