"""The stand-in agent's client load balancer as k3s's (pkg/agent/loadbalancer New ->
updateConfig -> setServers, dialContext): the saved servers replace the configured one only when
the file was written for the same --server URL, in random order, the configured server last when
not among them; a dial fails over to the next server that accepts a TCP connection."""
from __future__ import annotations

import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "standin"))
from k3s_standin import agent, token  # noqa: E402

TOKEN = token.Token("", "node", "secret")


def saved(tmp_path, server_url, addresses):
    etc = tmp_path / "agent" / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "k3s-agent-load-balancer.json").write_text(json.dumps({"ServerURL": server_url, "ServerAddresses": addresses}))


def new_agent(tmp_path, server):
    return agent.NodeAgent({"data-dir": str(tmp_path)}, [server], TOKEN, "n1", "127.0.0.1")


def test_saved_servers_replace_the_configured_one_in_random_order(tmp_path, monkeypatch):
    saved(tmp_path, "https://10.0.0.1:6443", ["10.0.0.2:6443", "10.0.0.3:6443"])
    orders = set()
    for seed in range(20):
        monkeypatch.setattr(agent.random, "shuffle", __import__("random").Random(seed).shuffle)
        lb = new_agent(tmp_path, "https://10.0.0.1:6443")
        assert lb.servers[-1] == "https://10.0.0.1:6443"  # not among the saved ones: added last
        orders.add(tuple(lb.servers[:2]))
    assert orders == {("https://10.0.0.2:6443", "https://10.0.0.3:6443"), ("https://10.0.0.3:6443", "https://10.0.0.2:6443")}


def test_a_file_saved_for_another_server_url_is_not_used(tmp_path):
    saved(tmp_path, "https://10.0.0.9:6443", ["10.0.0.2:6443"])
    assert new_agent(tmp_path, "https://10.0.0.1:6443").servers == ["https://10.0.0.1:6443"]


def test_a_dial_fails_over_to_a_server_that_accepts(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        port = live.getsockname()[1]
        lb = new_agent(tmp_path, f"https://127.0.0.1:{dead}")
        lb.servers.append(f"https://127.0.0.1:{port}")
        assert lb._dial() == f"https://127.0.0.1:{port}"  # pylint: disable=protected-access
        assert lb.servers[0] == f"https://127.0.0.1:{port}"


def test_a_fresh_agent_or_another_server_url_writes_the_configured_server_alone(tmp_path):
    saved(tmp_path, "https://10.0.0.9:6443", ["10.0.0.2:6443"])
    new_agent(tmp_path, "https://10.0.0.1:6443")
    written = json.loads((tmp_path / "agent" / "etc" / "k3s-agent-load-balancer.json").read_text())
    assert written == {"ServerURL": "https://10.0.0.1:6443", "ServerAddresses": ["10.0.0.1:6443"]}


def apiservers(monkeypatch, addresses):
    def request(url, *args, **kwargs):
        assert url.endswith("/v1-k3s/apiservers"), url
        return 200, json.dumps(addresses).encode(), {}
    monkeypatch.setattr(agent.client, "request", request)
    monkeypatch.setattr(agent.client, "context", lambda *a: None)


def test_an_update_without_the_configured_server_rewrites_the_file_whatever_the_order(tmp_path, monkeypatch):
    # servers.go setServers compares sets with what the file held: a server gone from the
    # endpoints leaves the file even when the shuffled order happened to match the new list
    lb_file = tmp_path / "agent" / "etc" / "k3s-agent-load-balancer.json"
    for seed in range(6):
        saved(tmp_path, "https://10.0.0.1:6443", ["10.0.0.1:6443", "10.0.0.2:6443", "10.0.0.3:6443"])
        monkeypatch.setattr(agent.random, "shuffle", __import__("random").Random(seed).shuffle)
        lb = new_agent(tmp_path, "https://10.0.0.1:6443")
        apiservers(monkeypatch, ["10.0.0.3:6443", "10.0.0.2:6443"])
        lb._learn_servers(lb.servers[0])  # pylint: disable=protected-access
        assert json.loads(lb_file.read_text()) == {"ServerURL": "https://10.0.0.1:6443",
                                                   "ServerAddresses": ["10.0.0.2:6443", "10.0.0.3:6443"]}
        assert lb.servers[-1] == "https://10.0.0.1:6443"  # kept as the last resort
        monkeypatch.undo()


def test_the_same_set_of_servers_leaves_the_file_alone(tmp_path, monkeypatch):
    saved(tmp_path, "https://10.0.0.1:6443", ["10.0.0.2:6443", "10.0.0.1:6443"])
    lb_file = tmp_path / "agent" / "etc" / "k3s-agent-load-balancer.json"
    lb = new_agent(tmp_path, "https://10.0.0.1:6443")
    before = lb_file.stat().st_mtime_ns
    apiservers(monkeypatch, ["10.0.0.1:6443", "10.0.0.2:6443"])
    lb._learn_servers(lb.servers[0])  # pylint: disable=protected-access
    assert lb_file.stat().st_mtime_ns == before
