"""The fault-injection suite's table, printed at the end of the pytest session (pass or fail)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import table  # noqa: E402  pylint: disable=wrong-import-position


def pytest_terminal_summary(terminalreporter):
    if table.ROWS:
        terminalreporter.write_line("")
        for line in table.render().splitlines():
            terminalreporter.write_line(line)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    """A failed case leaves the shared fleet unconverged: the cases after it are skipped (named
    in their reason) rather than judged on a broken cluster."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        item.session.seal_faults_failed = getattr(item.session, "seal_faults_failed", None) or item.name
