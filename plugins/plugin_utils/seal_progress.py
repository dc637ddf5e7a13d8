# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a playbook run from ansible-runner's events, for the `seal` command.

Progress (the model, no output) maps events to phases (image, prepare, distribute, registry,
init, join servers, join agents, gates, ... named from the plays and tasks of the collection's
playbooks), with per phase: hosts done/total for the current step, the slow host (the one the
step waits for longest), elapsed time, and failures (host, task, message).

The views: PlainView (one line per phase start/end, slow host and failure; stdout not a
terminal), JsonView (one JSON object per event), LiveView (rich: a bar per phase)."""

from __future__ import annotations

import json
import time

try:
    from rich.console import Console, Group
    from rich.live import Live
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text
    HAS_RICH = True
except ImportError:
    HAS_RICH = False

# (phase, the start of a play's name) in the collection's playbooks; a task may open a phase too
PLAY_PHASES = (
    ("image", "Controller prologue"),
    ("image", "Resolve the cluster image"),
    ("image", "Read what runs on the masters"),
    ("image", "Resolve the cluster on the controller"),
    ("prepare", "Prepare hosts"),
    ("distribute", "Distribute the cluster image"),
    ("plugins", "Plugins before the install"),
    ("registry", "Private registry"),
    ("init", "Initialise the cluster"),
    ("join servers", "Join the other masters"),
    ("join agents", "Join the nodes"),
    ("gates", "Labels, taints, health gates"),
    ("plugins", "Plugins after the install"),
    ("apps", "Launch the image's apps"),
    ("plugins", "Plugins after the apps"),
    ("plan", "Plan"),
    ("check", "Check the upgrade path"),
    ("distribute", "Distribute the image"),
    ("upgrade servers", "Upgrade the masters"),
    ("upgrade agents", "Upgrade the nodes"),
    ("gates", "Whole-cluster gates"),
    ("delete", "Delete the hosts"),
    ("record", "Update the cluster's record"),
    ("reset", "Reset hosts"),
)
TASK_PHASES = (("distribute", "Distribute the cluster image"),)
RESULT_EVENTS = {"runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
                 "runner_on_skipped": "skipped"}
# a host that has not answered its current step after this long is named as slow
SLOW_AFTER = 2.0


def phase_of(play=None, task=None):
    """The phase a play (or a task that opens one) belongs to; None when it opens none."""
    for phase, start in TASK_PHASES:
        if task and task.startswith(start):
            return phase
    if play is not None:
        for phase, start in PLAY_PHASES:
            if play.startswith(start):
                return phase
        return play.lower()
    return None


def hosts_of_pattern(pattern, groups):
    """The hosts an Ansible play pattern names (a:b, a:!b, a:&b), from {group: [host]}; None when unknown."""
    hosts = None
    for term in (pattern or "").replace(",", ":").split(":"):
        op = term[:1] if term[:1] in ("!", "&") else ""
        term = term[len(op):]
        if term in ("all", "*"):
            members = groups.get("all", [])
        elif term == "localhost":
            members = ["localhost"]
        elif term in groups:
            members = groups[term]
        elif op == "!":
            members = []  # a group made at run time (seal_delete): not known in advance
        else:
            return None
        if hosts is None:
            hosts = [] if op == "!" else list(members)
        elif op == "!":
            hosts = [h for h in hosts if h not in members]
        elif op == "&":
            hosts = [h for h in hosts if h in members]
        else:
            hosts += [h for h in members if h not in hosts]
    return hosts


class Phase:
    def __init__(self, name, total_hosts, now):
        self.name = name
        self.hosts = list(total_hosts) if total_hosts is not None else None
        self.started = now
        self.ended = None
        self.task = None
        self.task_uuid = None
        self.task_started = now
        self.seen_tasks = set()
        self.finished = set()  # hosts of earlier serial batches
        self.reported = set()  # hosts that answered the current step
        self.pending = {}  # host -> when it started the current step
        self.failed = []
        self.results = {}  # status -> count

    @property
    def total(self):
        if self.hosts is not None:
            return len(self.hosts)
        return len(self.finished | self.reported | set(self.pending))

    @property
    def done(self):
        if self.ended is not None and not self.failed:
            return self.total
        return min(len(self.finished | self.reported), self.total)

    def elapsed(self, now):
        return (self.ended or now) - self.started

    def slow(self, now):
        """(host, seconds) that the current step waits for longest, when past SLOW_AFTER."""
        if not self.pending or self.ended is not None:
            return None
        host, since = min(self.pending.items(), key=lambda item: item[1])
        waited = now - since
        return (host, waited) if waited >= SLOW_AFTER else None

    def as_dict(self, now):
        slow = self.slow(now)
        return {"phase": self.name, "done": self.done, "total": self.total, "task": self.task,
                "elapsed": round(self.elapsed(now), 1), "slow_host": slow[0] if slow else None,
                "slow_for": round(slow[1], 1) if slow else None, "finished": self.ended is not None,
                "skipped": bool(self.results) and set(self.results) == {"skipped"}}


class Progress:
    """Phases from runner events. groups: {group: [host]} of the inventory (for hosts per play)."""

    def __init__(self, groups=None, clock=time.monotonic):
        self.groups = dict(groups or {})
        self.groups.setdefault("all", sorted({h for hosts in self.groups.values() for h in hosts}))
        self.clock = clock
        self.started = clock()
        self.phases = []
        self.failures = []
        self.play_hosts = None

    @property
    def current(self):
        return self.phases[-1] if self.phases else None

    def _open(self, name, now):
        if self.current and self.current.name == name and self.current.ended is None:
            return None
        self._close(now)
        phase = Phase(name, self.play_hosts, now)
        self.phases.append(phase)
        return phase

    def _close(self, now):
        if self.current and self.current.ended is None:
            self.current.ended = now
            self.current.pending.clear()
            return self.current
        return None

    def handle(self, event):
        """Feed one runner event; return a list of progress records (dicts) it produced."""
        now = self.clock()
        kind = event.get("event")
        data = event.get("event_data") or {}
        out = []
        if kind == "playbook_on_play_start":
            self.play_hosts = hosts_of_pattern(data.get("play_pattern") or data.get("name"), self.groups)
            name = phase_of(play=data.get("play") or data.get("name") or "")
            ended = self.current if self.current and self.current.name != name else None
            if self._open(name, now):
                if ended:
                    out.append(dict(ended.as_dict(now), event="phase_end"))
                out.append(dict(self.current.as_dict(now), event="phase_start"))
            elif self.current:
                self.current.hosts = self.play_hosts if self.play_hosts is not None else self.current.hosts
        elif kind == "playbook_on_task_start" and self.current:
            task = data.get("task") or data.get("name") or ""
            name = phase_of(task=task)
            if name and name != self.current.name:
                ended = self.current
                self._open(name, now)
                out.append(dict(ended.as_dict(now), event="phase_end"))
                out.append(dict(self.current.as_dict(now), event="phase_start"))
            phase = self.current
            uuid = data.get("task_uuid") or event.get("uuid")
            if uuid in phase.seen_tasks:  # the same task again: the next serial batch
                phase.finished |= phase.reported
            phase.seen_tasks.add(uuid)
            phase.task, phase.task_uuid, phase.task_started = task, uuid, now
            phase.reported = set()
            phase.pending = {}
            out.append(dict(phase.as_dict(now), event="task_start"))
        elif kind == "runner_on_start" and self.current:
            self.current.pending[data.get("host")] = now
        elif kind in RESULT_EVENTS and self.current:
            phase, host = self.current, data.get("host")
            phase.pending.pop(host, None)
            status = RESULT_EVENTS[kind]
            if status == "ok" and (data.get("res") or {}).get("changed"):
                status = "changed"
            phase.results[status] = phase.results.get(status, 0) + 1
            if status in ("failed", "unreachable") and not data.get("ignore_errors"):
                failure = {"host": host, "task": data.get("task"), "phase": phase.name, "message": message_of(data.get("res"))}
                phase.failed.append(failure)
                self.failures.append(failure)
            else:
                phase.reported.add(host)
            out.append(dict(phase.as_dict(now), event="host", host=host, status=status))
        elif kind == "playbook_on_stats":
            ended = self._close(now)
            if ended:
                out.append(dict(ended.as_dict(now), event="phase_end"))
        return out

    def summary(self, now=None):
        now = self.clock() if now is None else now
        return [p.as_dict(now) for p in self.phases]


def message_of(res):
    res = res or {}
    for key in ("msg", "stderr", "reason", "module_stderr", "stdout"):
        value = res.get(key)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            return text.strip().splitlines()[0][:500] if text.strip() else ""
    return "(no message)"


def _fmt(seconds):
    return "%.1fs" % seconds if seconds < 60 else "%dm%02ds" % divmod(int(seconds), 60)


class PlainView:
    """Lines for logs and pipes: phase start and end, a slow host once per step, failures."""

    def __init__(self, progress, write):
        self.progress, self.write = progress, write
        self.named_slow = set()

    def record(self, rec):
        if rec["event"] == "phase_start":
            self.write("[%7s] %s: started (%d hosts)" % (_fmt(self.progress.clock() - self.progress.started), rec["phase"], rec["total"]))
        elif rec["event"] == "phase_end" and rec["skipped"]:
            self.write("[%7s] %s: skipped (nothing to do)" % (_fmt(self.progress.clock() - self.progress.started), rec["phase"]))
        elif rec["event"] == "phase_end":
            self.write("[%7s] %s: %d/%d hosts done in %s" % (_fmt(self.progress.clock() - self.progress.started), rec["phase"],
                                                             rec["done"], rec["total"], _fmt(rec["elapsed"])))
        elif rec["event"] == "host" and rec["status"] in ("failed", "unreachable"):
            self.write("[%7s] %s: %s %s in task %r" % (_fmt(self.progress.clock() - self.progress.started), rec["phase"],
                                                       rec["host"], rec["status"], rec["task"]))

    def tick(self):
        phase = self.progress.current
        if phase is None:
            return
        slow = phase.slow(self.progress.clock())
        if slow and (phase.task_uuid, slow[0]) not in self.named_slow:
            self.named_slow.add((phase.task_uuid, slow[0]))
            self.write("[%7s] %s: waiting for %s (%s on %r, %d/%d hosts done)" % (
                _fmt(self.progress.clock() - self.progress.started), phase.name, slow[0], _fmt(slow[1]), phase.task,
                phase.done, phase.total))

    def close(self):
        pass


class JsonView:
    """One JSON object per progress record (and per tick naming a slow host)."""

    def __init__(self, progress, write):
        self.progress, self.write = progress, write
        self.named_slow = set()

    def record(self, rec):
        self.write(json.dumps(dict(rec, time=round(self.progress.clock() - self.progress.started, 2)), sort_keys=True))

    def tick(self):
        phase = self.progress.current
        slow = phase.slow(self.progress.clock()) if phase else None
        if slow and (phase.task_uuid, slow[0]) not in self.named_slow:
            self.named_slow.add((phase.task_uuid, slow[0]))
            self.record(dict(phase.as_dict(self.progress.clock()), event="slow"))

    def close(self):
        pass


class LiveView:
    """A live table: one row per phase with a bar of hosts done/total, the slow host, elapsed."""

    def __init__(self, progress, title, console=None):
        if not HAS_RICH:
            raise RuntimeError("the live view needs rich")
        self.progress, self.title = progress, title
        self.console = console or Console()
        self.live = Live(self.render(), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def render(self):
        now = self.progress.clock()
        table = Table.grid(padding=(0, 1))
        for _column in range(5):
            table.add_column()
        for phase in self.progress.phases:
            row = phase.as_dict(now)
            mark = "[red]x[/]" if phase.failed else ("[green]v[/]" if row["finished"] else "[yellow]>[/]")
            if row["skipped"] and row["finished"]:
                mark = "[dim]-[/]"
            hosts_bar = ProgressBar(total=max(row["total"], 1), completed=row["done"], width=24, complete_style="yellow",
                                    finished_style="red" if phase.failed else "green")
            if phase.failed:
                note = Text("failed: %s" % phase.failed[0]["host"], style="red")
            elif row["slow_host"]:
                note = Text("slow: %s (%s)" % (row["slow_host"], _fmt(row["slow_for"])), style="yellow")
            elif not row["finished"] and row["task"]:
                note = Text(row["task"][:60], style="dim")
            else:
                note = Text("")
            table.add_row(Text.from_markup("%s %-15s" % (mark, row["phase"])), hosts_bar,
                          Text("%d/%d hosts" % (row["done"], row["total"])), Text("%7s" % _fmt(row["elapsed"])), note)
        head = Text("%s  %s" % (self.title, _fmt(now - self.progress.started)), style="bold")
        return Group(head, table)

    def record(self, _rec):
        self.live.update(self.render())

    def tick(self):
        self.live.update(self.render())

    def close(self):
        self.live.update(self.render())
        self.live.stop()
