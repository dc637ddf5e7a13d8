"""The install ran offline: each host reaches the other fleet nodes, and the controller reaches
it over SSH (testinfra's own connection), but nothing beyond the fleet, neither the
controller's outward-facing address nor the Debian mirror, by route, TCP or DNS
(tests/fleet/egress.py)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # tests/fleet
import egress  # noqa: E402  pylint: disable=wrong-import-position
import fleet  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def outward():
    with egress.listener() as target:
        yield target


@pytest.fixture(scope="module")
def outside():
    return egress.mirror()


def test_reaches_the_fleet_and_nothing_beyond(host, outward, outside):
    hv = host.ansible.get_variables()
    state = fleet.load(hv["seal_cluster_name"])
    me = hv["ansible_host"]
    assert me in [n["ip"] for n in state["nodes"]]
    peers = [n["ip"] for n in state["nodes"] if n["ip"] != me]

    def run(command):
        result = host.run(command)
        return result.rc, result.stdout

    assert egress.leaks(run, peers, outward, outside) == []
