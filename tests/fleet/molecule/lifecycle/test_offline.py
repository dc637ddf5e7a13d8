"""The lifecycle ran offline: the fleet's network is internal without DNS (as fleet.py created it
before converge; no step changes it), and every node reaches the other nodes but nothing beyond
the fleet, by route, TCP or DNS (tests/fleet/egress.py). pytest runs this file after
test_lifecycle.py, so it also shows the nodes the upgrade v1.25.3 -> v1.26.0 ran on had no way
out at the end of the run."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # tests/fleet
import egress  # noqa: E402  pylint: disable=wrong-import-position
import fleet  # noqa: E402  pylint: disable=wrong-import-position

NAME = fleet.prefixed("mlc")


@pytest.fixture(scope="module")
def state():
    return fleet.load(NAME)


@pytest.fixture(scope="module")
def outward():
    with egress.listener() as target:
        yield target


def test_network_is_internal_without_dns(state):
    net = json.loads(fleet.podman("network", "inspect", state["network"]))[0]
    assert net["internal"] is True and net["dns_enabled"] is False


def test_nodes_reach_each_other_and_nothing_beyond(state, outward):
    outside = egress.mirror()
    for node in state["nodes"]:
        def run(command, ip=node["ip"]):
            proc = subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                                  timeout=60, check=False)
            assert proc.returncode != 255, f"ssh to {ip} failed: {proc.stderr}"
            return proc.returncode, proc.stdout
        peers = [n["ip"] for n in state["nodes"] if n is not node]
        assert egress.leaks(run, peers, outward, outside) == [], node["name"]
