"""Whether a fleet node can reach beyond the fleet: the checks behind "the fleet is offline".

The integration test, the Molecule verify of default/ha and the lifecycle scenario run them on
their nodes through a `run(command) -> (rc, output)` of their own (SSH or testinfra). Each check
is paired with its control on the controller, so a check cannot pass because its target is down:

- a TCP listener on the controller's outward-facing address (the one holding its default route),
  which the controller itself reaches: a node must not (on a NATed network it does);
- the Debian mirror the node image is built from, resolved and reached by the controller: a node
  must neither resolve its name (podman's DNS would forward it) nor connect to its address;
- a node's route to those addresses goes via no gateway on the fleet network (only through
  fleet.BLACKHOLE_GATEWAY, which nobody answers for);
- and the fleet still works: the node reaches every other node's SSH port.
"""
from __future__ import annotations

import contextlib
import ipaddress
import json
import shlex
import socket
import threading
import urllib.parse

import fleet

CONNECT_TIMEOUT = 5


def outward_address() -> str:
    """The controller's address on the interface holding its default route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: picks the default route; UDP connect sends nothing
        return s.getsockname()[0]


@contextlib.contextmanager
def listener():
    """A TCP listener on the controller's outward-facing address; yields (address, port)."""
    address = outward_address()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 0))
    server.listen(16)
    stop = threading.Event()

    def serve():
        server.settimeout(0.5)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with socket.create_connection((address, server.getsockname()[1]), timeout=CONNECT_TIMEOUT):
            pass  # the control: the controller reaches it
        yield address, server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def mirror() -> tuple[str, str, int] | None:
    """(name, address, port) of the Debian mirror, if the controller resolves and reaches it and it
    is not one of the controller's own addresses; else None (the controller is offline too)."""
    url = urllib.parse.urlsplit(fleet.MIRROR)
    name, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        address = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError:
        return None
    if ipaddress.ip_address(address).is_loopback or address == outward_address():
        return None
    return name, address, port


def tcp_probe(address: str, port: int) -> str:
    """A shell command for a node: exit 0 when a TCP connection to address:port opens."""
    inner = f"exec 3<>/dev/tcp/{address}/{port}"
    return f"timeout {CONNECT_TIMEOUT} bash -c {shlex.quote(inner)}"


def route_gateway(run, address: str) -> str | None:
    """The gateway a node's route to address goes through (None: on-link or no route)."""
    rc, out = run(f"ip -j route get {address}")
    if rc != 0:
        return None  # "Network is unreachable": no route at all
    routes = json.loads(out)
    return routes[0].get("gateway") if routes else None


def leaks(run, peers: list[str], outward: tuple[str, int], outside: tuple[str, str, int] | None) -> list[str]:
    """What a node reaches beyond the fleet (empty when offline), or what it misses inside it.
    run(command) runs a shell command on the node and returns (rc, stdout)."""
    found = []
    address, port = outward
    targets = [address] + ([outside[1]] if outside else [])
    for target in targets:
        gateway = route_gateway(run, target)
        if gateway not in (None, fleet.BLACKHOLE_GATEWAY):
            found.append(f"route to {target} via gateway {gateway}")
    if run(tcp_probe(address, port))[0] == 0:
        found.append(f"connected to the controller's outward-facing address {address}:{port}")
    if outside:
        name, ip, oport = outside
        if run(tcp_probe(ip, oport))[0] == 0:
            found.append(f"connected to {name} ({ip}:{oport}) beyond the controller")
        rc, out = run(f"timeout 20 getent ahostsv4 {shlex.quote(name)}")
        if rc == 0:
            found.append(f"resolved {name}: {out.split()[:1]}")
    for peer in peers:
        if run(tcp_probe(peer, 22))[0] != 0:
            found.append(f"could not reach the fleet node {peer}:22")
    return found
