"""HTTPS client helpers shared by the agent, joining servers and kubectl."""
from __future__ import annotations

import json
import os
import socket
import ssl
import tempfile
import urllib.error
import urllib.request


class HTTPFailure(Exception):
    def __init__(self, url: str, code: int | None, body: str, reason: str = ""):
        self.url, self.code, self.body = url, code, body
        msg = f"{url}: {code} {reason}".strip() if code else f"{url}: {body}"
        super().__init__(msg)

    def status_message(self) -> str:
        try:
            return json.loads(self.body).get("message") or self.body
        except ValueError:
            return self.body.strip()


def context(ca_pem: bytes | None = None, cert_pem: bytes | None = None, key_pem: bytes | None = None,
            verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    else:
        ctx.load_default_certs()
    if cert_pem and key_pem:
        # ssl needs files for client certificates
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            f.write(cert_pem + b"\n" + key_pem)
            path = f.name
        try:
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


def request(url: str, method: str = "GET", body=None, ctx: ssl.SSLContext | None = None,
            headers: dict | None = None, timeout: float = 10, ctype: str = "application/json") -> tuple[int, bytes, str]:
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", ctype)
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        raise HTTPFailure(url, exc.code, exc.read().decode(errors="replace"), exc.reason) from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HTTPFailure(url, None, str(reason)) from None


def get_json(url: str, ctx=None, headers=None, timeout: float = 10):
    return json.loads(request(url, ctx=ctx, headers=headers, timeout=timeout)[1])
