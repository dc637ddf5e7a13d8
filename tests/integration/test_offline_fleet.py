"""The test fleet is offline: its network is internal, a node reaches the other nodes and the
controller reaches it over SSH, but nothing beyond the fleet (tests/fleet/egress.py). The same
checks report the leak once a node is given a NATed network, so they can fail."""
import json
import subprocess

import pytest

import egress
import fleet

NAME = fleet.name_from_env("SEAL_OFFLINE_FLEET", "offline")


@pytest.fixture(scope="module")
def state():
    st = fleet.up(NAME, masters=1, nodes=1)
    yield st
    fleet.down(NAME)


@pytest.fixture(scope="module")
def outward():
    with egress.listener() as target:
        yield target


def runner(state, node):
    def run(command):
        proc = subprocess.run(fleet.ssh_argv(node["ip"], state["key"]) + [command], capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode != 255, f"ssh to {node['name']} failed: {proc.stderr}"
        return proc.returncode, proc.stdout
    return run


def peers(state, node):
    return [n["ip"] for n in state["nodes"] if n is not node]


def test_network_is_internal_without_dns(state):
    net = json.loads(fleet.podman("network", "inspect", state["network"]))[0]
    assert net["internal"] is True
    assert net["dns_enabled"] is False


def test_nodes_reach_each_other_and_nothing_beyond(state, outward):
    outside = egress.mirror()
    for node in state["nodes"]:
        run = runner(state, node)
        assert run("true")[0] == 0  # the controller reaches it over SSH
        assert egress.leaks(run, peers(state, node), outward, outside) == [], node["name"]


def test_checks_report_a_nated_network(state, outward):
    """Give the last node a normal (NATed) podman network and its default route: the same checks
    must now see the way out; then take it away again."""
    node = state["nodes"][-1]
    nat = f"seal-fleet-{NAME}-nat"
    fleet.podman("network", "create", "--label", f"{fleet.LABEL}={NAME}", nat)
    try:
        fleet.podman("network", "connect", nat, node["name"])
        gateway = json.loads(fleet.podman("network", "inspect", nat))[0]["subnets"][0]["gateway"]
        run = runner(state, node)
        address = json.loads(fleet.podman("inspect", node["name"]))[0]["NetworkSettings"]["Networks"][nat]["IPAddress"]
        iface = run(f"ip -o -4 addr show to {address}")[1].split()[1]
        assert run(f"ip route replace default via {gateway} dev {iface}")[0] == 0
        found = egress.leaks(run, peers(state, node), outward, egress.mirror())
        assert any("outward-facing" in f for f in found), found
        assert any(f"via gateway {gateway}" in f for f in found), found
    finally:
        fleet.podman("network", "disconnect", "-f", nat, node["name"], check=False)
        fleet.blackhole_default_route(node["name"])
        fleet.podman("network", "rm", "-f", nat, check=False)
    assert egress.leaks(runner(state, node), peers(state, node), outward, None) == []
