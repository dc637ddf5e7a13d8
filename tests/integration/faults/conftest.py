"""The fault-injection suite's table, printed at the end of the pytest session (pass or fail)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table  # noqa: E402  pylint: disable=wrong-import-position


def pytest_terminal_summary(terminalreporter, config):
    """Without pytest-xdist; with it, the controller prints the rows the worker sent (tests/conftest.py)."""
    if table.ROWS and getattr(config.option, "dist", "no") == "no":
        terminalreporter.write_line("")
        for line in table.render().splitlines():
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    """The table's new rows and notes go with each report (a pytest-xdist worker's table reaches
    the controller so); and a failed case leaves the shared fleet unconverged: the cases after it
    are skipped (named in their reason) rather than judged on a broken cluster."""
    outcome = yield
    report = outcome.get_result()
    sent = getattr(item.session, "seal_faults_sent", 0)
    report.user_properties.extend(("seal_fault_row", row) for row in table.ROWS[sent:])
    item.session.seal_faults_sent = len(table.ROWS)
    report.user_properties.append(("seal_fault_notes", list(table.NOTES)))
    if report.failed and report.when in ("setup", "call"):
        item.session.seal_faults_failed = getattr(item.session, "seal_faults_failed", None) or item.name
