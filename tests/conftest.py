"""Make the checkout importable as ansible_collections.seal.cluster for every test, and group
fleet tests for pytest-xdist (below)."""
import os
import signal
import sys
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "seal", "cluster")

if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.join("..", "..", "..", ".."), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


# --- Fleet tests side by side (pytest-xdist `--dist loadgroup`, as `make test` runs them) ---
# A module's fleet is module-scoped and named once per module, so a module's tests run on one
# worker, one after another: a module is a group. A module listed in SPLIT_BY_PARAMETER makes a
# group of each parameter (the Molecule wrapper: each scenario, its own fleet, is a group).
# Groups start longest first, by their `minutes` mark (expected minutes on an idle machine,
# default 0), and each group's seconds (setup, call and teardown of its tests, its fleet's
# start and removal too) are listed at the end of the run.
# xdist's own loadgroup reads xdist_group marks through a nodeid suffix that pytest 9 no longer
# lets a plugin set, so the groups are made here, by a scheduler of our own.
SPLIT_BY_PARAMETER = ("tests/molecule/test_scenarios.py",)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    """A worker told to stop (SIGTERM: scripts/suite.py stopped) stops as on Ctrl-C, tearing its
    fixtures down, so its fleet is removed rather than left running."""
    if hasattr(config, "workerinput") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def fleet_group(nodeid: str) -> str:
    module, test = (nodeid.split("::", 1) + [""])[:2]
    if module in SPLIT_BY_PARAMETER and test.endswith("]") and "[" in test:
        return f"{module}[{test[test.index('[') + 1:]}"
    return module


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel

    class FleetGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return fleet_group(nodeid)

    return FleetGroups(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if not (getattr(config.option, "loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup"):
        return
    minutes = {}
    for item in items:
        mark = max((float(m.args[0]) for m in item.iter_markers("minutes")), default=0.0)
        minutes[fleet_group(item.nodeid)] = max(minutes.get(fleet_group(item.nodeid), 0.0), mark)
    items.sort(key=lambda item: -minutes[fleet_group(item.nodeid)])  # stable: a group keeps its order


_TIMES: dict = {}
# The fault-injection suite's table (tests/integration/faults), sent by a worker in its reports
_FAULT_ROWS: list = []
_FAULT_NOTES: list = []


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", None) or []:
        if name == "seal_fault_row":
            _FAULT_ROWS.append(value)
        elif name == "seal_fault_notes":
            _FAULT_NOTES[:] = value
    entry = _TIMES.setdefault(fleet_group(report.nodeid), {"seconds": 0.0, "tests": set(), "failed": False, "worker": ""})
    entry["seconds"] += report.duration
    entry["tests"].add(report.nodeid)
    entry["failed"] |= report.failed
    node = getattr(report, "node", None)
    if node is not None:
        entry["worker"] = node.gateway.id


def pytest_terminal_summary(terminalreporter, config):
    if _FAULT_ROWS and getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        sys.path.insert(0, os.path.join(ROOT, "tests", "integration", "faults"))
        import table  # pylint: disable=import-outside-toplevel
        terminalreporter.write_line("")
        for line in table.render(_FAULT_ROWS, _FAULT_NOTES).splitlines():
            terminalreporter.write_line(line)
    if getattr(config.option, "dist", "no") != "loadgroup" or not _TIMES:
        return
    terminalreporter.write_sep("-", "groups: seconds (setup, call, teardown), result, worker, tests; in the order they started")
    for name, entry in _TIMES.items():
        terminalreporter.write_line(f"{entry['seconds']:8.1f}s  {'FAILED' if entry['failed'] else 'ok':6}  "
                                    f"{entry['worker']:5}  {len(entry['tests']):3} tests  {name}")
