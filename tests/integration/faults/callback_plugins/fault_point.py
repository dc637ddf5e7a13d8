# Test tooling (not shipped): the fault-injection suite's callback (tests/integration/faults).
"""Strike a fault when a named task starts.

Enabled with ANSIBLE_CALLBACKS_ENABLED=fault_point and ANSIBLE_CALLBACK_PLUGINS=<this directory>;
does nothing unless SEAL_FAULT_TASK is set:

  SEAL_FAULT_TASK    the task's name as `ansible-playbook --list-tasks` lists it ("role : name" for
                     role tasks) or without the role prefix; exact match, except that a name
                     holding a template ("{{ ... }}") matches up to that template
  SEAL_FAULT_HOST    only when the task starts on this host (default: the first start, any host)
  SEAL_FAULT_NTH     the n-th matching start (default 1)
  SEAL_FAULT_DELAY   seconds to wait after the start before striking (the task runs meanwhile)
  SEAL_FAULT_ACTION  kill (default): SIGKILL to ansible-playbook and everything it started
                     (workers, which have sessions of their own, and their ssh clients); exec: run SEAL_FAULT_EXEC (a JSON argv) and let the run go on
  SEAL_FAULT_RECORD  a file where the point reached is written (JSON) before the strike

Every task start (task name; and once per host, with the host) is appended to SEAL_FAULT_TRACE
(JSON lines) when set: the harness watches it to act at a task too (stop a service)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

from ansible.plugins.callback import CallbackBase

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import proctree  # noqa: E402  pylint: disable=wrong-import-position

DOCUMENTATION = """
    name: fault_point
    type: aggregate
    short_description: SIGKILL ansible-playbook (or run a command) when a named task starts
    description: Test tooling of seal.cluster's fault-injection suite; see the module docstring.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fault_point"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        env = os.environ
        self.task = env.get("SEAL_FAULT_TASK", "")
        self.host = env.get("SEAL_FAULT_HOST", "")
        self.nth = int(env.get("SEAL_FAULT_NTH", "1"))
        self.delay = float(env.get("SEAL_FAULT_DELAY", "0"))
        self.action = env.get("SEAL_FAULT_ACTION", "kill")
        self.argv = json.loads(env.get("SEAL_FAULT_EXEC", "[]"))
        self.record = env.get("SEAL_FAULT_RECORD", "")
        self.trace = env.get("SEAL_FAULT_TRACE", "")
        self.seen = 0
        self.struck = False

    @staticmethod
    def _bare(name):
        """A name up to its first template (names like "Upgrade {{ inventory_hostname }}" are
        printed templated and listed raw), without the role prefix."""
        return name.split("{{", 1)[0].strip().split(" : ", 1)[-1].strip()

    def _matches(self, task):
        names = {task.get_name().strip(), (task.name or "").strip()}
        if "{{" in self.task:
            return self._bare(self.task) in {self._bare(n)[:len(self._bare(self.task))] for n in names}
        return self.task in names | {n.split(" : ", 1)[-1] for n in names}

    def _trace(self, task, host):
        if self.trace:
            with open(self.trace, "a", encoding="utf-8") as f:
                f.write(json.dumps({"task": task.get_name().strip(), "host": host}) + "\n")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._trace(task, "")
        if not self.host:
            self._match(task, "")

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def v2_runner_on_start(self, host, task):
        self._trace(task, host.get_name())
        if self.host:
            if host.get_name() == self.host:
                self._match(task, host.get_name())

    def _match(self, task, host):
        if self.struck or not self.task or not self._matches(task):
            return
        self.seen += 1
        if self.seen != self.nth:
            return
        self.struck = True
        point = {"task": task.get_name().strip(), "host": host, "nth": self.nth, "delay": self.delay,
                 "action": self.action, "time": time.time()}
        if self.delay > 0:
            threading.Thread(target=self._strike, args=(point, self.delay), daemon=True).start()
        else:
            self._strike(point, 0)

    def _strike(self, point, delay):
        if delay:
            time.sleep(delay)
        if self.record:
            with open(self.record, "w", encoding="utf-8") as f:
                json.dump(point, f)
                f.flush()
                os.fsync(f.fileno())
        if self.action == "exec":
            subprocess.run(self.argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
            return
        proctree.kill_tree(os.getpid())
