#!/usr/bin/env python3
"""The whole test suite (`make test`, which CI runs): its parts side by side, in two lanes.

    checks  unit, lint, sanity, one after another: they keep one core busy
    fleet   the integration modules and the Molecule scenarios, SEAL_TEST_JOBS at a time
            (pytest-xdist, one worker per group: tests/conftest.py), waiting on SSH, systemd
            and the stand-in most of the time

Each part runs as `make <part>`, its output in .cache/suite/<part>.log; a line when each part
ends, then a table (part, seconds, result) and the failing parts' last lines. Exits 1 when a
part failed.

    scripts/suite.py                 run everything
    scripts/suite.py unit lint       run these parts (same lanes, same logs)
    scripts/suite.py jobs            print the default SEAL_TEST_JOBS for this machine
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(ROOT, ".cache", "suite")
LANES = {"checks": ["unit", "lint", "sanity"], "fleet": ["fleet"]}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PYTEST_PARTS = {"unit", "fleet", "integration", "molecule"}
# What one fleet worker needs at most: the largest group (the lifecycle scenario's six nodes,
# each systemd + sshd + the stand-in, and the Ansible controller driving them).
GIB_PER_WORKER = 3


def default_jobs() -> int:
    """Fleet workers: the fleet groups mostly wait, so twice the cores, while memory allows."""
    cores = os.cpu_count() or 1
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kib = int(re.search(r"^MemTotal:\s+(\d+)", f.read(), re.M).group(1))
    return max(1, min(2 * cores, mem_kib // (GIB_PER_WORKER << 20)))


class Part:
    def __init__(self, name: str):
        self.name = name
        self.log = os.path.join(LOGS, f"{name}.log")
        self.seconds = 0.0
        self.rc: int | None = None
        self.proc: subprocess.Popen | None = None

    def run(self, started: float) -> None:
        t = time.monotonic()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(["make", "--no-print-directory", self.name], cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            self.rc = self.proc.wait()
        self.seconds = time.monotonic() - t
        say(started, f"{self.name} {'passed' if self.rc == 0 else f'FAILED (exit {self.rc})'} "
                     f"in {self.seconds:.0f}s; {self.closing()} (log {os.path.relpath(self.log, ROOT)})")

    def closing(self) -> str:
        """pytest's closing line (counts and time), else the log's last line."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                lines = [ANSI.sub("", ln).strip() for ln in f if ln.strip()]
        except OSError:
            return ""
        for line in reversed(lines):
            m = re.fullmatch(r"=+ (.*\b(?:passed|failed|error|errors|skipped|no tests ran)\b.*) =+", line)
            if m:
                return m.group(1)
        return lines[-1][:120] if lines else ""

    def counts(self) -> tuple[int, int]:
        text = self.closing() if self.name in PYTEST_PARTS else ""
        passed = sum(int(n) for n in re.findall(r"(\d+) passed", text))
        failed = sum(int(n) for n in re.findall(r"(\d+) (?:failed|errors?)\b", text))
        return passed, failed

    def stop(self) -> None:
        """SIGTERM to the part's process group; the fleet tests then remove their fleets (up to
        two minutes) before SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def say(started: float, text: str) -> None:
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    print(f"[{minutes:02d}:{seconds:02d}] {text}", flush=True)


def main(argv: list[str]) -> int:
    if argv == ["jobs"]:
        print(default_jobs())
        return 0
    wanted = argv or [p for lane in LANES.values() for p in lane]
    lanes = [[Part(p) for p in lane if p in wanted] for lane in LANES.values()]
    lanes += [[Part(p)] for p in wanted if not any(p in lane for lane in LANES.values())]
    lanes = [lane for lane in lanes if lane]
    parts = [p for lane in lanes for p in lane]
    os.makedirs(LOGS, exist_ok=True)
    os.environ.setdefault("SEAL_TEST_JOBS", str(default_jobs()))
    started = time.monotonic()
    say(started, f"suite: {', '.join(p.name for p in parts)}; fleet workers SEAL_TEST_JOBS={os.environ['SEAL_TEST_JOBS']}"
                 f", fleet prefix SEAL_FLEET_PREFIX={os.environ.get('SEAL_FLEET_PREFIX', '')!r}; "
                 f"logs in {os.path.relpath(LOGS, ROOT)}/")

    stopping = threading.Event()

    def lane_runner(lane):
        for part in lane:
            if not stopping.is_set():
                part.run(started)

    def stop(signum, _frame):
        """Stopped (SIGTERM, Ctrl-C): no part starts any more, the running ones stop (and
        remove their fleets), and the table shows where the suite was."""
        say(started, f"suite: stopped by signal {signum}")
        stopping.set()
        for part in parts:
            part.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=lane_runner, args=(lane,), daemon=True) for lane in lanes]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=1)
    wall = time.monotonic() - started

    failed = [p for p in parts if p.rc != 0]
    for part in (p for p in failed if p.rc is not None):
        print(f"\n----- {part.name}: last lines of {os.path.relpath(part.log, ROOT)} -----")
        with open(part.log, encoding="utf-8", errors="replace") as f:
            print("".join(f.readlines()[-60:]), end="")
    print(f"\n{'part':<12} {'seconds':>8}  result")
    for part in parts:
        result = "not run" if part.rc is None else "passed" if part.rc == 0 else "FAILED"
        print(f"{part.name:<12} {part.seconds:8.0f}  {result:7}  {part.closing() if part.rc is not None else ''}")
    print(f"{'(wall)':<12} {wall:8.0f}")
    passed = sum(p.counts()[0] for p in parts)
    failures = sum(p.counts()[1] for p in parts)
    print(f"make test: {'failed: ' + ', '.join(p.name for p in failed) if failed else 'every part passed'}")
    print(f"suite: {passed} passed, {failures} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
