"""The k3s stand-in needs a default route as k3s's flannel does (agent.start_flannel)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "standin"))
from k3s_standin import agent  # noqa: E402

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
SUBNET = "eth0\t0000590A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
ONLINK_DEFAULT = "eth0\t00000000\tFF7100CB\t0007\t0\t0\t0\t00000000\t0\t0\t0\n"  # via 203.0.113.255 onlink
BLACKHOLE_DEFAULT = "*\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n"


def table(tmp_path, *lines):
    path = tmp_path / "route"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return str(path)


def test_default_route_interface(tmp_path):
    assert agent.default_route_interface(table(tmp_path, SUBNET, ONLINK_DEFAULT)) == "eth0"
    with pytest.raises(LookupError, match="unable to find default route"):
        agent.default_route_interface(table(tmp_path, SUBNET))
    with pytest.raises(LookupError, match="could not determine interface"):
        agent.default_route_interface(table(tmp_path, SUBNET, BLACKHOLE_DEFAULT))


def test_flannel_exits_without_a_default_route(tmp_path, monkeypatch, capsys):
    read = agent.default_route_interface
    routes = table(tmp_path, SUBNET)
    monkeypatch.setattr(agent, "default_route_interface", lambda: read(routes))
    with pytest.raises(SystemExit) as exc:
        agent.start_flannel({"node-ip": ["10.89.0.2"]}, "vxlan")  # node-ip does not help: k3s's flannel ignores it
    assert exc.value.code == 1
    assert "flannel exited: failed to get default interface: unable to find default route" in capsys.readouterr().err
    agent.start_flannel({"flannel-iface": "eth0"}, "vxlan")
    agent.start_flannel({}, "none")
    routes = table(tmp_path, SUBNET, ONLINK_DEFAULT)
    agent.start_flannel({}, "vxlan")
    assert "the interface eth0 will be used by flannel" in capsys.readouterr().err
