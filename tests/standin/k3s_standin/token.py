"""k3s join tokens (k3s pkg/clientaccess/token.go; shared/K3S-REFERENCE.md §1).

Secure form: "K10" + sha256-hex of the CA bundle + "::" + "user:password" or a bootstrap token
"[a-z0-9]{6}.[a-z0-9]{16}". Short form: only the password (or bootstrap token); no CA check.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

PREFIX = "K10"
BOOTSTRAP_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


class TokenError(ValueError):
    pass


@dataclass
class Token:
    ca_hash: str  # "" for short tokens
    username: str  # "" for bootstrap tokens
    password: str  # the password, or the whole bootstrap token

    @property
    def is_bootstrap(self) -> bool:
        return not self.username

    def auth_header(self) -> str:
        import base64

        if self.is_bootstrap:
            return "Bearer " + self.password
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def format(self) -> str:
        creds = f"{self.username}:{self.password}" if self.username else self.password
        return f"{PREFIX}{self.ca_hash}::{creds}"


def parse(raw: str, default_user: str = "") -> Token:
    """Parse a token like k3s's clientaccess (NormalizeAndValidateTokenForUser + parseToken).

    A short token (no K10 prefix) is the password of default_user ("server" or "node"), unless
    it looks like a bootstrap token.
    """
    raw = (raw or "").strip()
    if not raw:
        raise TokenError("token must not be empty")
    if not raw.startswith(PREFIX):
        if BOOTSTRAP_RE.match(raw):
            return Token("", "", raw)
        return Token("", default_user, raw)
    rest = raw[len(PREFIX):]
    ca_hash, sep, body = rest.partition("::")
    if not sep:
        body, ca_hash = ca_hash, ""
    if ca_hash and len(ca_hash) != 64:
        raise TokenError("invalid token CA hash length")
    if BOOTSTRAP_RE.match(body):
        return Token(ca_hash, "", body)
    user, colon, pw = body.partition(":")
    if not colon or not user or not pw:
        raise TokenError("invalid token format")
    return Token(ca_hash, user, pw)


def password_of(tok: Token) -> str:
    return tok.password


def generate_password() -> str:
    """32 hex chars (16 random bytes), like k3s's generated passwords."""
    return secrets.token_hex(16)


def ca_hash(bundle: bytes) -> str:
    """Hash of a CA bundle: sha256 of the file bytes if it holds one cert, else of the root's DER."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle, re.S)
    certs = [x509.load_pem_x509_certificate(b) for b in blocks]
    if len(certs) <= 1:
        return hashlib.sha256(bundle).hexdigest()
    roots = [c for c in certs if c.subject == c.issuer]
    root = roots[-1] if roots else certs[-1]
    return hashlib.sha256(root.public_bytes(serialization.Encoding.DER)).hexdigest()


def hash_mismatch_message(in_token: str, actual: str) -> str:
    return f"token CA hash does not match the Cluster CA certificate hash: {in_token} != {actual}"
