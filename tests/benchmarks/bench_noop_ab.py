#!/usr/bin/env python3
"""No-op re-runs of two trees side by side (issue 16: "no slower than the previous commit"):
this tree and a baseline worktree, each on its own converged fleet kept by its own
`bench_run.py --keep`, run in turns (this, baseline, then `ansible -m ping` of this fleet's
hosts, the floor of any Ansible run) so that both see the same machine load. Prints each round
and the medians.

    git -C /work/main worktree add --detach /work/wt/base <commit>
    (cd /work/wt/base && scripts/setup.sh && cp /work/main/tests/benchmarks/bench_run.py tests/benchmarks/ \\
       && .venv/bin/python tests/benchmarks/bench_run.py --name noop-base --keep)
    .venv/bin/python tests/benchmarks/bench_run.py --name noop-this --keep
    .venv/bin/python tests/benchmarks/bench_noop_ab.py --fleet noop-this --baseline /work/wt/base \\
        --baseline-fleet noop-base [--rounds 5]

A benchmark, not a test: it fails only when a run fails or a no-op run changes something.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def kept(tree: str, name: str) -> dict:
    with open(os.path.join(tree, ".cache", "fleet", name, "bench.json"), encoding="utf-8") as f:
        return json.load(f)


def env_of(fleet: dict) -> dict:
    tree = fleet["tree"]
    return dict(os.environ, HOME=fleet["home"], SEAL_IMAGE_STORE=fleet["store"],
                ANSIBLE_CONFIG=os.path.join(tree, "tests", "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(tree, ".cache", "collections"))


def timed(argv: list[str], fleet: dict, label: str) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=fleet["tree"], env=env_of(fleet), capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit(f"bench: {label} failed (rc {proc.returncode})")
    if "PLAY RECAP" in proc.stdout and re.search(r"changed=[1-9]", proc.stdout.split("PLAY RECAP", 1)[1]):
        raise SystemExit(f"bench: {label} changed something")
    return wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--fleet", required=True, help="this tree's fleet, kept by bench_run.py --keep")
    p.add_argument("--baseline", required=True, help="the baseline worktree")
    p.add_argument("--baseline-fleet", required=True, help="the baseline's fleet, kept by its bench_run.py --keep")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    this, base = kept(ROOT, args.fleet), kept(os.path.abspath(args.baseline), args.baseline_fleet)
    playbook = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
    ping = os.path.join(ROOT, ".venv", "bin", "ansible")
    figures = {"this": [], "baseline": [], "ping": []}
    for i in range(args.rounds):
        figures["this"].append(timed([playbook, "-i", this["clusterfile"], "playbooks/run.yml"], this, "this tree's no-op"))
        figures["baseline"].append(timed([playbook, "-i", base["clusterfile"], "playbooks/run.yml"], base, "the baseline's no-op"))
        figures["ping"].append(timed([ping, "-i", this["clusterfile"], "all", "-m", "ping"], this, "ping"))
        with open("/proc/loadavg", encoding="utf-8") as f:
            load = f.read().split()[0]
        print(f"round {i + 1}: this {figures['this'][-1]:.1f}s, baseline {figures['baseline'][-1]:.1f}s,"
              f" ping {figures['ping'][-1]:.1f}s (load {load})", flush=True)
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"\nmedians of {args.rounds}: this {med['this']:.1f}s, baseline {med['baseline']:.1f}s, ping {med['ping']:.1f}s")
    print(f"this / baseline = {med['this'] / med['baseline']:.2f}; this / ping = {med['this'] / med['ping']:.1f};"
          f" baseline / ping = {med['baseline'] / med['ping']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
