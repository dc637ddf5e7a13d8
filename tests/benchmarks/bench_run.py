#!/usr/bin/env python3
"""Benchmark of the main job: bring up N fleet nodes, run playbooks/run.yml from the fleet's
Clusterfile, then run it again on the converged cluster. Prints wall time per phase and per
play, totals, and tasks executed per host.

    .venv/bin/python tests/benchmarks/bench_run.py --masters 1 --nodes 9 [--reruns 5] [--keep]

With --reruns N the no-op re-run is repeated N times and the median is printed (the figure to
compare between two commits: run each commit's copy of this script on the same machine, one
after the other, in one session).

A benchmark, not a test: it prints figures and fails only when a run fails or the second run
changes something.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
sys.path.insert(0, os.path.join(ROOT, "tests", "standin"))
import fleet  # noqa: E402  pylint: disable=wrong-import-position
import build_image  # noqa: E402  pylint: disable=wrong-import-position

TOP_TASKS = 12
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def run_playbook(inventory: str, extra_env: dict, label: str) -> dict:
    out = tempfile.NamedTemporaryFile(prefix="seal-timing-", suffix=".json", delete=False).name
    env = dict(os.environ, **extra_env, SEAL_TIMING_OUT=out,
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="seal_timing", ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"))
    started = time.monotonic()
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "playbooks/run.yml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-6000:])
        raise SystemExit(f"bench: {label} failed (rc {proc.returncode})")
    with open(out, encoding="utf-8") as f:
        timing = json.load(f)
    os.unlink(out)
    timing["wall"] = wall
    return timing


def report(label: str, timing: dict) -> None:
    print(f"\n== {label}: {timing['wall']:.1f}s wall")
    for play in timing["plays"]:
        print(f"   {play['seconds']:7.2f}s  {play['name']}")
    tasks = timing["tasks_per_host"]
    hosts = sorted(h for h in tasks if h != "localhost")
    per_host = [tasks[h] for h in hosts]
    if per_host:
        print(f"   tasks per host: min {min(per_host)}, max {max(per_host)}, total {sum(per_host)} on {len(hosts)} hosts"
              f" (+{tasks.get('localhost', 0)} on localhost)")
    changed = sum(timing["changed_per_host"].values())
    print(f"   changed results: {changed}")
    slowest = sorted(timing.get("tasks", []), key=lambda t: -(t["seconds"] or 0))[:TOP_TASKS]
    if slowest:
        print(f"   slowest {len(slowest)} of {len(timing['tasks'])} tasks:")
        for task in slowest:
            print(f"   {task['seconds']:7.2f}s  {task['name'][:100]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--masters", type=int, default=1)
    p.add_argument("--nodes", type=int, default=9)
    p.add_argument("--name", default="bench")
    p.add_argument("--reruns", type=int, default=1, help="how many no-op re-runs (the median is printed)")
    p.add_argument("--keep", action="store_true", help="leave the fleet up")
    args = p.parse_args()
    phases = {}
    store = tempfile.mkdtemp(prefix="seal-bench-store-")
    t0 = time.monotonic()
    image = build_image.build("v1.25.3+k3s1", store)
    phases["build test cluster image"] = time.monotonic() - t0
    t0 = time.monotonic()
    state = fleet.up(args.name, args.masters, args.nodes, cluster_image=image)
    phases["fleet up"] = time.monotonic() - t0
    try:
        env = {"SEAL_IMAGE_STORE": store, "HOME": tempfile.mkdtemp(prefix="seal-bench-home-")}
        clusterfile = os.path.join(state["dir"], "Clusterfile")
        first = run_playbook(clusterfile, env, "install")
        phases["run.yml install"] = first["wall"]
        reruns = [run_playbook(clusterfile, env, "no-op re-run") for _ in range(max(1, args.reruns))]
        second = reruns[-1]
        phases["run.yml no-op re-run"] = statistics.median(r["wall"] for r in reruns)
        report("install", first)
        report("no-op re-run", second)
        print(f"\n== phases ({args.masters} masters + {args.nodes} nodes)")
        for name, seconds in phases.items():
            print(f"   {seconds:7.2f}s  {name}")
        print(f"   {sum(phases.values()):7.2f}s  total")
        if len(reruns) > 1:
            walls = ", ".join(f"{r['wall']:.1f}" for r in reruns)
            print(f"   no-op re-runs: {walls}s; median {phases['run.yml no-op re-run']:.1f}s")
        for rerun in reruns:
            if sum(rerun["changed_per_host"].values()):
                raise SystemExit(f"bench: a re-run changed something: {rerun['changed_per_host']}")
    finally:
        if not args.keep:
            fleet.down(args.name)
        else:
            kept = os.path.join(state["dir"], "bench.json")
            with open(kept, "w", encoding="utf-8") as f:
                json.dump({"tree": ROOT, "home": env["HOME"], "store": store,
                           "clusterfile": os.path.join(state["dir"], "Clusterfile")}, f)
            print(f"\nkept fleet {args.name}: {kept} (tests/benchmarks/bench_noop_ab.py reads it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
