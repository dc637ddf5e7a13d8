"""Registry CA, serving certificate and htpasswd on the controller: SANs, reuse, re-issue
from the same CA, refusal to replace a CA silently, 0600 keys, bcrypt verification."""
import datetime
import os
import stat

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ansible_collections.seal.cluster.plugins.module_utils import _registry_certs as rc


def make(path, sans=("10.0.0.2",), username="admin", password="s3cret", domain="sea.hub"):
    material = rc.RegistryCerts(str(path), "c1", domain, list(sans), username, password)
    material.apply()
    return material


def load(path, name):
    return x509.load_pem_x509_certificate((path / name).read_bytes())


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_makes_ca_cert_htpasswd_with_modes(tmp_path):
    d = tmp_path / "registry"
    m = make(d, sans=["10.0.0.2", "10.0.0.3", "extra.example", "fd00::2"])
    assert sorted(m.reasons) == ["ca", "cert", "htpasswd"]
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.key", "htpasswd", "server.crt", "server.key"]
    assert mode(d) == 0o700
    assert {n: mode(d / n) for n in os.listdir(d)} == {
        "ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600, "htpasswd": 0o600}
    cert = load(d, "server.crt")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["sea.hub", "extra.example"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.2", "10.0.0.3", "fd00::2"]
    assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == "sea.hub"
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    ca = load(d, "ca.crt")
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    summary = m.summary()
    assert summary["sans"] == ["sea.hub", "extra.example", "10.0.0.2", "10.0.0.3", "fd00::2"]
    assert "PRIVATE KEY" not in repr(summary)
    assert "s3cret" not in repr(summary) and "$2" not in repr(summary)
    digest = ca.fingerprint(hashes.SHA256()).hex().upper()
    assert summary["ca_fingerprint"].replace(":", "") == digest


def test_second_run_reuses_everything(tmp_path):
    d = tmp_path / "registry"
    first = make(d).summary()
    before = {n: (d / n).read_bytes() for n in os.listdir(d)}
    again = rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.2"], "admin", "s3cret")
    assert not again.changed and again.reasons == {}
    again.apply()
    assert {n: (d / n).read_bytes() for n in os.listdir(d)} == before
    assert again.summary()["cert_fingerprint"] == first["cert_fingerprint"]
    assert again.summary()["ca_fingerprint"] == first["ca_fingerprint"]


def test_subset_of_sans_keeps_the_certificate(tmp_path):
    d = tmp_path / "registry"
    make(d, sans=["10.0.0.2", "10.0.0.3"])
    assert not rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.3"], "admin", "s3cret").changed


def test_missing_san_reissues_from_the_same_ca(tmp_path):
    d = tmp_path / "registry"
    first = make(d).summary()
    key_before = (d / "server.key").read_bytes()
    m = rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.2", "10.0.0.9"], "admin", "s3cret")
    assert m.reasons == {"cert": "it lacks the SAN(s) 10.0.0.9"}
    m.apply()
    after = m.summary()
    assert after["ca_fingerprint"] == first["ca_fingerprint"]
    assert after["cert_fingerprint"] != first["cert_fingerprint"]
    assert "10.0.0.9" in after["sans"] and (d / "server.key").read_bytes() != key_before
    load(d, "server.crt").verify_directly_issued_by(load(d, "ca.crt"))
    # a new domain is a missing SAN as well
    assert "registry.example" in rc.RegistryCerts(str(d), "c1", "registry.example", [], None, None).reasons["cert"]


def test_half_a_ca_is_refused_never_regenerated(tmp_path):
    d = tmp_path / "registry"
    make(d)
    (d / "ca.key").unlink()
    with pytest.raises(rc.MaterialError, match=r"ca.key is missing but its pair is there"):
        rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.2"], "admin", "s3cret")
    assert sorted(os.listdir(d)) == ["ca.crt", "htpasswd", "server.crt", "server.key"]


def test_ca_key_of_another_ca_is_refused(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make(a)
    make(b)
    (a / "ca.key").write_bytes((b / "ca.key").read_bytes())
    with pytest.raises(rc.MaterialError, match=r"ca.key does not belong to .*ca.crt"):
        rc.RegistryCerts(str(a), "c1", "sea.hub", [], None, None)


def test_certificate_of_another_ca_is_reissued(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    make(a)
    make(b)
    for name in ("server.crt", "server.key"):
        (a / name).write_bytes((b / name).read_bytes())
    m = rc.RegistryCerts(str(a), "c1", "sea.hub", ["10.0.0.2"], "admin", "s3cret")
    assert m.reasons == {"cert": "it was not issued by the cluster's registry CA"}


def test_expiring_certificate_is_reissued(tmp_path):
    d = tmp_path / "registry"
    m = make(d)
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=rc.SERVER_DAYS - 10)
    assert rc.server_cert_problem(m.cert, m.key, m.ca_cert, "sea.hub", ["10.0.0.2"], now=soon).startswith("it expires on")
    assert rc.server_cert_problem(m.cert, m.key, m.ca_cert, "sea.hub", ["10.0.0.2"]) is None


def test_modes_are_restored(tmp_path):
    d = tmp_path / "registry"
    make(d)
    os.chmod(d / "server.key", 0o644)
    m = rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.2"], "admin", "s3cret")
    assert m.changed and m.reasons == {"modes": ["server.key"]} and m.summary()["issued"] == []
    m.apply()
    assert mode(d / "server.key") == 0o600


def test_htpasswd_verifies_with_bcrypt_and_follows_the_password(tmp_path):
    d = tmp_path / "registry"
    make(d)
    line = (d / "htpasswd").read_text()
    user, digest = line.strip().split(":", 1)
    assert user == "admin" and digest.startswith("$2b$")
    assert bcrypt.checkpw(b"s3cret", digest.replace("$2y$", "$2b$", 1).encode())
    assert not bcrypt.checkpw(b"wrong", digest.replace("$2y$", "$2b$", 1).encode())
    assert rc.htpasswd_verifies(line, "admin", "s3cret")
    assert not rc.htpasswd_verifies(line, "admin", "other")
    assert not rc.htpasswd_verifies(line, "root", "s3cret")
    m = rc.RegistryCerts(str(d), "c1", "sea.hub", ["10.0.0.2"], "admin", "n3w")
    assert m.reasons == {"htpasswd": "username or password changed"}
    m.apply()
    assert rc.htpasswd_verifies((d / "htpasswd").read_text(), "admin", "n3w")


def test_no_username_no_htpasswd(tmp_path):
    d = tmp_path / "registry"
    m = make(d, username=None, password=None)
    assert "htpasswd" not in os.listdir(d) and m.summary()["htpasswd_path"] is None


def test_keys_are_unencrypted_pkcs8_ec(tmp_path):
    d = tmp_path / "registry"
    make(d)
    key = serialization.load_pem_private_key((d / "server.key").read_bytes(), password=None)
    assert key.curve.name == "secp256r1"
    assert (d / "server.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_split_sans():
    assert rc.split_sans(["Sea.Hub", "10.0.0.2", "sea.hub", " ", "10.0.0.2", "::1"]) == (
        ["sea.hub"], [rc.ipaddress.ip_address("10.0.0.2"), rc.ipaddress.ip_address("::1")])
