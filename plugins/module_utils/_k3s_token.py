# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""k3s join tokens, as k3s parses them (k3s pkg/clientaccess/token.go, K3S-REFERENCE §1).

Secure ("full") form: ``K10<sha256 hex of the cluster CA>::<user>:<password>``; short form: the
password alone. k3s derives the key that encrypts its bootstrap data from the password only
(pkg/cluster/storage.go normalizeToken), so two tokens with the same password are the same
credentials; the CA hash only lets a joiner check the server before it sends them.
Used on hosts (k3s_runtime) and on the controller (filters): stdlib only."""

from __future__ import annotations

import hashlib
import re

PREFIX = "K10"
CA_HASH_LENGTH = 64
SERVER_USER = "server"
# k3s agents authenticate as "node" whatever user their token names (pkg/clientaccess/token.go
# WithUser("node")): with a separate agent token, only its password opens the agent endpoints.
AGENT_USER = "node"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# kubeadm-style bootstrap token: k3s sends it as a Bearer token, it has no password part
_BOOTSTRAP = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


class TokenError(ValueError):
    """A token k3s would refuse; the message never holds the token."""


def parse(token):
    """-> (ca_hash or "", username or "", password). Same rules and messages as k3s's parseToken."""
    token = (token or "").strip()
    if not token:
        raise TokenError("token must not be empty")
    if not token.startswith(PREFIX):
        return "", "", token  # a password or a bootstrap token, no CA hash to check
    rest = token[len(PREFIX):]
    ca_hash, sep, creds = rest.partition("::")
    if not sep:
        ca_hash, creds = "", rest
    if ca_hash and len(ca_hash) != CA_HASH_LENGTH:
        raise TokenError("invalid token CA hash length")
    if _BOOTSTRAP.match(creds):
        return ca_hash, "", creds
    user, colon, password = creds.partition(":")
    if not colon or not password:
        raise TokenError("invalid token format")
    return ca_hash, user, password


def password(token):
    """The credentials' password: what k3s keys its bootstrap data with."""
    return parse(token)[2]


def is_secure(token):
    return bool(parse(token)[0])


def ca_hash_of(ca_bundle):
    """Hash of a CA bundle holding one certificate: sha256 of its exact bytes (what /cacerts serves)."""
    if isinstance(ca_bundle, str):
        ca_bundle = ca_bundle.encode()
    return hashlib.sha256(ca_bundle).hexdigest()


def secure(ca_hash, secret, user=SERVER_USER):
    """``K10<ca_hash>::<user>:<password>`` from a CA hash and a token (short or full) or password."""
    if not _HEX64.match(ca_hash or ""):
        raise TokenError("a CA hash is 64 lowercase hex characters")
    return "%s%s::%s:%s" % (PREFIX, ca_hash, user, password(secret))


def same_credentials(a, b):
    """Whether two tokens carry the same password (the CA hash part may differ or be absent)."""
    try:
        return password(a) == password(b)
    except TokenError:
        return False
