"""How long the fleet waits for a booting node before it replaces it (tests/fleet/fleet.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet"))
import fleet  # noqa: E402  pylint: disable=wrong-import-position


def test_a_booting_node_gets_longer_under_load(monkeypatch):
    monkeypatch.setattr(fleet.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(fleet.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert fleet.boot_timeout() == fleet.BOOT_TIMEOUT
    monkeypatch.setattr(fleet.os, "getloadavg", lambda: (3.0, 1.0, 1.0))
    assert fleet.boot_timeout() == min(1.5 * fleet.BOOT_TIMEOUT, fleet.SSH_TIMEOUT)
    monkeypatch.setattr(fleet.os, "getloadavg", lambda: (90.0, 1.0, 1.0))
    assert fleet.boot_timeout() == max(fleet.BOOT_TIMEOUT, fleet.SSH_TIMEOUT)
