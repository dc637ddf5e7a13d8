"""k3s token parsing and the secure form, against k3s's pkg/clientaccess/token.go rules."""
import hashlib

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_token as t

HASH = hashlib.sha256(b"-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n").hexdigest()


@pytest.mark.parametrize("token, parsed", [
    ("0123abcd", ("", "", "0123abcd")),
    ("K10%s::server:pw" % HASH, (HASH, "server", "pw")),
    ("K10::node:pw", ("", "node", "pw")),
    ("K10%s::abcdef.0123456789abcdef" % HASH, (HASH, "", "abcdef.0123456789abcdef")),
    ("  pw\n", ("", "", "pw")),
])
def test_parse(token, parsed):
    assert t.parse(token) == parsed


@pytest.mark.parametrize("token, message", [
    ("", "token must not be empty"), ("K10abc::server:pw", "invalid token CA hash length"),
    ("K10%s::server" % HASH, "invalid token format"), ("K10%s::server:" % HASH, "invalid token format"),
])
def test_parse_errors_are_k3s_messages(token, message):
    with pytest.raises(t.TokenError, match="^%s$" % message):
        t.parse(token)


def test_secure_form_and_credentials():
    full = t.secure(HASH, "pw")
    assert full == "K10%s::server:pw" % HASH and t.is_secure(full) and not t.is_secure("pw")
    assert t.secure(HASH, full) == full
    assert t.same_credentials("pw", full) and not t.same_credentials("pw2", full)
    assert not t.same_credentials("", full)
    with pytest.raises(t.TokenError):
        t.secure("ABC", "pw")


def test_ca_hash_is_sha256_of_the_exact_bytes():
    pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
    assert t.ca_hash_of(pem) == HASH == t.ca_hash_of(pem.encode())
    assert t.ca_hash_of(pem.rstrip("\n")) != HASH
