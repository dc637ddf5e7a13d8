"""Logging in logrus text format, sd_notify, version info, small helpers."""
from __future__ import annotations

import datetime
import json
import os
import re
import socket
import sys
import threading

try:
    from . import _build  # written by build.py
except ImportError:  # running from the source tree
    _build = None

VERSION = getattr(_build, "VERSION", os.environ.get("K3S_STANDIN_VERSION", "v1.25.3+k3s1"))
COMMIT = getattr(_build, "COMMIT", "0000000000000000000000000000000000000000")
GO_VERSION = getattr(_build, "GO_VERSION", "go1.19.2")
CONTAINERD_VERSION = getattr(_build, "CONTAINERD_VERSION", "1.6.8-k3s1")

# Test-only knobs (never set by the collection): where /etc/rancher lives, node grace period.
ETC_RANCHER = os.environ.get("K3S_STANDIN_ETC", "/etc/rancher")

_lock = threading.Lock()
_debug = False


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def log(level: str, msg: str) -> None:
    if level == "debug" and not _debug:
        return
    line = f'time="{_now()}" level={level} msg={json.dumps(msg)}\n'
    with _lock:
        sys.stderr.write(line)
        sys.stderr.flush()


def info(msg: str) -> None:
    log("info", msg)


def warn(msg: str) -> None:
    log("warning", msg)


def error(msg: str) -> None:
    log("error", msg)


def debug(msg: str) -> None:
    log("debug", msg)


class Fatal(SystemExit):
    """level=fatal: log and exit 1, like logrus.Fatal."""

    def __init__(self, msg: str):
        log("fatal", msg)
        super().__init__(1)


def sd_notify(state: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
        return True
    except OSError as exc:
        warn(f"sd_notify failed: {exc}")
        return False


def version_tuple(v: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", v)
    if not m:
        return (0, 0, 0)
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


def at_least(gates: dict[int, int], minor_floor: int, version: str = VERSION) -> bool:
    """True if version >= the patch gate of its minor (gates: minor -> patch), or minor > all gates."""
    major, minor, patch = version_tuple(version)
    if minor in gates:
        return patch >= gates[minor]
    return minor >= minor_floor


def write_file(path: str, data: bytes | str, mode: int = 0o600) -> None:
    if isinstance(data, str):
        data = data.encode()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def default_ip() -> str:
    """The address of the interface holding the default route (what k3s picks for --node-ip)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def hostname() -> str:
    return socket.gethostname().lower()


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: str) -> float:
    """Go-style durations: 10s, 1m30s, 500ms, or plain seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    total = 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        if m.start() != pos:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {text!r}")
    return total


def node_grace() -> float:
    """Node monitor grace period (kube-controller-manager default 40s); K3S_STANDIN_NODE_GRACE shortens it."""
    return parse_duration(os.environ.get("K3S_STANDIN_NODE_GRACE", "40s"))
