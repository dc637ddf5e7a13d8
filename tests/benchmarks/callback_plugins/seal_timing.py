# Benchmark callback (tests only): wall time per play and tasks executed per host, written as
# JSON to $SEAL_TIMING_OUT when the run ends.
from __future__ import annotations

import collections
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: seal_timing
type: aggregate
short_description: per-play wall time and per-host task counts (benchmarks)
description: Writes a JSON summary to the file named by SEAL_TIMING_OUT.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "seal_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.plays = []
        self.tasks = collections.Counter()
        self.changed = collections.Counter()
        self.started = time.monotonic()
        self.task_times = []

    def _close_task(self):
        if self.task_times and self.task_times[-1]["seconds"] is None:
            self.task_times[-1]["seconds"] = round(time.monotonic() - self.task_times[-1]["t0"], 3)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_task()
        self.task_times.append({"name": task.get_name(), "t0": time.monotonic(), "seconds": None})

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _close_play(self):
        self._close_task()
        if self.plays and self.plays[-1]["seconds"] is None:
            self.plays[-1]["seconds"] = round(time.monotonic() - self.plays[-1]["t0"], 2)

    def v2_playbook_on_play_start(self, play):
        self._close_play()
        self.plays.append({"name": play.get_name(), "t0": time.monotonic(), "seconds": None})

    def _count(self, result, changed=False):
        host = result._host.get_name()
        self.tasks[host] += 1
        if changed:
            self.changed[host] += 1

    def v2_runner_on_ok(self, result):
        self._count(result, result._result.get("changed", False))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count(result)

    def v2_runner_on_skipped(self, result):
        pass

    def v2_playbook_on_stats(self, stats):
        self._close_play()
        out = os.environ.get("SEAL_TIMING_OUT")
        if not out:
            return
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"total": round(time.monotonic() - self.started, 2),
                       "plays": [{"name": p["name"], "seconds": p["seconds"]} for p in self.plays],
                       "tasks_per_host": dict(self.tasks),
                       "tasks": [{"name": t["name"], "seconds": t["seconds"]} for t in self.task_times], "changed_per_host": dict(self.changed)}, f, indent=2)
