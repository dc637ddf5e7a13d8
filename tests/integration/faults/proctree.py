"""Kill a process and every process it started. ansible-playbook's workers (ansible-core 2.19)
each run in a session of their own, and their ssh clients with them, so a signal to the
playbook's process group alone would leave them running the task they hold."""
from __future__ import annotations

import os
import signal


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL the process groups of pid and of all its descendants (the caller's own last)."""
    own = os.getpgrp()
    groups = []
    for p in [pid] + descendants(pid):
        try:
            groups.append(os.getpgid(p))
        except ProcessLookupError:
            continue
    for group in dict.fromkeys(groups):
        if group != own:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if own in groups:
        os.killpg(own, signal.SIGKILL)
