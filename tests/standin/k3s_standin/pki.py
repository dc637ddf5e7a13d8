"""Certificates as k3s makes them: ECDSA P-256, CAs "<name>@<unix time>" valid 10 years,
leaf certs valid 365 days (K3S-REFERENCE.md §9)."""
from __future__ import annotations

import datetime
import ipaddress
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = []
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def new_ca(name: str) -> tuple[bytes, bytes]:
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    subj = _name(f"{name}@{int(time.time())}")
    cert = (
        x509.CertificateBuilder().subject_name(subj).issuer_name(subj).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert_pem(cert), key_pem(key)


def issue(ca_cert_pem: bytes, ca_key_pem: bytes, cn: str, org: str | None = None,
          dns: list[str] = (), ips: list[str] = (), server: bool = False, client: bool = False) -> tuple[bytes, bytes]:
    ca_cert = load_cert(ca_cert_pem)
    ca_key = load_key(ca_key_pem)
    key = new_key()
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    b = (
        x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    sans: list = []
    for d in dict.fromkeys(dns):
        sans.append(x509.DNSName(d))
    for ip in dict.fromkeys(ips):
        sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return cert_pem(cert), key_pem(key)


def split_sans(values: list[str]) -> tuple[list[str], list[str]]:
    dns, ips = [], []
    for v in values:
        v = v.strip()
        if not v:
            continue
        try:
            ipaddress.ip_address(v)
            ips.append(v)
        except ValueError:
            dns.append(v)
    return dns, ips


def sans_of(cert_pem_bytes: bytes) -> tuple[list[str], list[str]]:
    cert = load_cert(cert_pem_bytes)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), [str(i) for i in ext.get_values_for_type(x509.IPAddress)]


def subject_of(cert: x509.Certificate) -> tuple[str, list[str]]:
    cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return (cn[0] if cn else ""), orgs


def valid_for(cert_pem_bytes: bytes, days: int) -> bool:
    """Whether the certificate is still valid `days` from now (k3s renews it otherwise)."""
    cert = load_cert(cert_pem_bytes)
    # not_valid_after_utc needs cryptography 42; Debian bookworm's nodes have 38
    not_after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return not_after > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
