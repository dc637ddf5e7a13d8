"""etcd's client ports after k3s PR #8402 (releases.etcd_http_moved): 2379 serves gRPC only and
the HTTP/JSON gateway listens on https://127.0.0.1:2382 (k3s pkg/etcd/etcd.go
listenClientHTTPURLs(), etcd's --listen-client-http-urls).

The bundled etcd is Debian's 3.4, which has no --listen-client-http-urls (etcd 3.5 / 3.4.25+);
so the stand-in runs it on a port of its own (INTERNAL_PORT) and puts a TCP relay on each k3s
port that decides, from the TLS ClientHello, what the real listener would serve. TLS stays end to
end (etcd's certificate, etcd's client-certificate check):
- 2379 (gRPC only): a client that does not offer ALPN "h2" (urllib, curl --http1.1, any
  HTTP/1.1 JSON client) is dropped, as grpc-go drops a connection that is not HTTP/2;
- 2382 (HTTP only): a client that offers only "h2" (a gRPC client such as etcdctl) is dropped.
Not modelled: a JSON request sent over HTTP/2 to 2379 (curl's default) gets an answer here where
grpc-go answers 415."""
from __future__ import annotations

import socket
import struct
import threading

from . import util

INTERNAL_PORT = 2399  # the stand-in's own way in (it speaks JSON, k3s speaks gRPC in-process)
HELLO_MAX = 16384
PEEK_TIMEOUT = 5.0


def client_hello_alpn(data: bytes):
    """ALPN protocol names a TLS ClientHello offers: a list ([] without the extension or when the
    data is not TLS), or None while `data` does not yet hold the whole ClientHello."""
    hs = b""
    pos = 0
    while True:
        if len(data) < pos + 5:
            return None
        ctype, _version, length = struct.unpack("!BHH", data[pos:pos + 5])
        if ctype != 22:
            return []
        if len(data) < pos + 5 + length:
            return None
        hs += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(hs) >= 4:
            need = 4 + int.from_bytes(hs[1:4], "big")
            if hs[0] != 1:
                return []
            if len(hs) >= need:
                return _alpn_of(hs[4:need])
        if pos >= HELLO_MAX:
            return []


def _alpn_of(body: bytes) -> list:
    try:
        p = 2 + 32  # client_version, random
        p += 1 + body[p]  # session id
        p += 2 + int.from_bytes(body[p:p + 2], "big")  # cipher suites
        p += 1 + body[p]  # compression methods
        if p + 2 > len(body):
            return []
        end = p + 2 + int.from_bytes(body[p:p + 2], "big")
        p += 2
        while p + 4 <= end:
            etype, elen = struct.unpack("!HH", body[p:p + 4])
            p += 4
            if etype == 16:  # application_layer_protocol_negotiation
                names, q = [], p + 2
                while q < p + elen:
                    n = body[q]
                    names.append(body[q + 1:q + 1 + n].decode("ascii", "replace"))
                    q += 1 + n
                return names
            p += elen
    except IndexError:
        pass
    return []


def grpc_only(alpn: list) -> bool:
    return "h2" in alpn


def http_only(alpn: list) -> bool:
    return not alpn or "http/1.1" in alpn


class Relay:
    """Listens on (host, port); relays the connections `admit(alpn)` accepts to `upstream`."""

    def __init__(self, host: str, port: int, upstream: tuple, admit, what: str):
        self.upstream, self.admit, self.what = upstream, admit, what
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.where = f"{host}:{port}"
        threading.Thread(target=self._accept, name=f"etcd-{port}", daemon=True).start()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            alpn = self._peek(conn)
            if alpn is None or not self.admit(alpn):
                util.debug(f"etcd {self.where} ({self.what}): dropped a client offering ALPN {alpn}")
                conn.close()
                return
            up = socket.create_connection(self.upstream, timeout=10)
            up.settimeout(None)
            conn.settimeout(None)
        except OSError:
            conn.close()
            return
        back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
        back.start()
        _pump(conn, up)
        back.join()
        up.close()
        conn.close()

    @staticmethod
    def _peek(conn: socket.socket):
        conn.settimeout(PEEK_TIMEOUT)
        data = b""
        while len(data) < HELLO_MAX:
            data = conn.recv(HELLO_MAX, socket.MSG_PEEK)
            if not data:
                return None
            alpn = client_hello_alpn(data)
            if alpn is not None:
                return alpn
            if len(data) >= HELLO_MAX:
                break
            threading.Event().wait(0.01)
        return []


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass
