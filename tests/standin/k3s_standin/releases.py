"""Which k3s release behaves how: the one place that maps the stand-in's version to the
behaviours that changed between releases (each with the k3s source and release that changed it).

- etcd_http_moved: k3s PR #8402 "Disable HTTP on main etcd client port" (pkg/etcd/etcd.go,
  listenClientHTTPURLs(): https://127.0.0.1:2382; executor.ETCDConfig ListenClientHTTPURLs), on
  master for v1.28.3 (tracking issue #8415 reproduced on v1.28.2+k3s1), backported to
  release-1.27 (#8427: v1.26.9/v1.27.6 still muxed -> v1.27.7), release-1.26 (#8428 -> v1.26.10)
  and release-1.25 (#8429 -> v1.25.15). From then on embedded etcd's client port 2379 serves
  gRPC only and etcd's HTTP/JSON gateway listens on https://127.0.0.1:2382."""
from __future__ import annotations

from . import util

ETCD_HTTP_MOVED = {25: 15, 26: 10, 27: 7, 28: 3}  # minor -> first patch release with the move
ETCD_HTTP_MOVED_FLOOR = 29  # every later minor has it


def etcd_http_moved(version: str = util.VERSION) -> bool:
    major, minor, _ = util.version_tuple(version)
    if major != 1 or minor < min(ETCD_HTTP_MOVED):
        return False
    return util.at_least(ETCD_HTTP_MOVED, ETCD_HTTP_MOVED_FLOOR, version)


def etcd_client_ports(version: str = util.VERSION) -> dict:
    """Where the embedded etcd answers what: {"grpc": port, "http": (host, port)}."""
    if etcd_http_moved(version):
        return {"grpc": 2379, "http": ("127.0.0.1", 2382)}
    return {"grpc": 2379, "http": None}  # HTTP and gRPC muxed on 2379
