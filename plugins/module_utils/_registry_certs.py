# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private registry's TLS certificates and auth (the registry certs), kept on the controller in one directory per
cluster (made with ``cryptography`` and ``bcrypt``):

    ca.crt ca.key          the cluster's registry CA (ECDSA P-256, 10 years), made once
    server.crt server.key  the registry's serving certificate, signed by that CA
    htpasswd               ``<user>:<bcrypt hash>`` for the registry's htpasswd auth

Rules: the CA is never regenerated; a CA that is half there (only one of its two files), does
not match its key, or has expired is an error that names the file, never a silent new CA. The
server certificate is re-issued from the same CA only when it lacks a wanted SAN, was not
signed by this CA, or expires within 30 days; extra SANs in it are kept. The htpasswd is
rewritten only when it does not verify the current username and password (bcrypt hashes are
salted, so a new hash on every run would never converge). Keys and htpasswd are 0600."""

from __future__ import annotations

import datetime
import ipaddress
import os
import traceback

from ansible_collections.seal.cluster.plugins.module_utils._files import read_text, write_atomic

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

try:
    import bcrypt
except ImportError:
    HAS_BCRYPT = False
    BCRYPT_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_BCRYPT = True
    BCRYPT_IMPORT_ERROR = None

CA_CERT, CA_KEY = "ca.crt", "ca.key"
SERVER_CERT, SERVER_KEY = "server.crt", "server.key"
HTPASSWD = "htpasswd"
CA_DAYS = 3650
SERVER_DAYS = 3650
RENEW_BEFORE = datetime.timedelta(days=30)


class MaterialError(ValueError):
    """Existing registry certs that cannot be used as it is; the message names the file."""


def split_sans(names):
    """(dns names, ip addresses) from a list of strings, in order and without duplicates."""
    dns, ips = [], []
    for name in names:
        name = str(name).strip()
        if not name:
            continue
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            if name.lower() not in dns:
                dns.append(name.lower())
        else:
            if ip not in ips:
                ips.append(ip)
    return dns, ips


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _not_after(cert):
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:  # cryptography < 42
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def fingerprint(pem):
    """SHA-256 fingerprint of a PEM certificate, as ``AA:BB:...``."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def cert_sans(pem):
    """(dns names, ip strings) of a PEM certificate's subjectAltName."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ([n.lower() for n in ext.get_values_for_type(x509.DNSName)],
            [str(i) for i in ext.get_values_for_type(x509.IPAddress)])


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _public_bytes(key):
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_ca(cluster):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "seal.cluster"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "seal registry CA %s" % cluster)])
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _cert_pem(cert), _key_pem(key)


def new_server_cert(ca_cert_pem, ca_key_pem, domain, sans):
    """A serving certificate for domain with SANs domain + sans (DNS names or IPs)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = split_sans([domain] + list(sans))
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(min(now + datetime.timedelta(days=SERVER_DAYS), _not_after(ca_cert)))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns] + [x509.IPAddress(i) for i in ips]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _cert_pem(cert), _key_pem(key)


def _check_pair(cert_pem, key_pem, cert_path, key_path):
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise MaterialError("%s is not a PEM certificate: %s" % (cert_path, exc)) from exc
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise MaterialError("%s is not an unencrypted PEM private key: %s" % (key_path, exc)) from exc
    cert_public = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if _public_bytes(key) != cert_public:
        raise MaterialError("%s does not belong to %s" % (key_path, cert_path))
    return cert


def server_cert_problem(cert_pem, key_pem, ca_cert_pem, domain, sans, now=None):
    """Why the existing server certificate must be re-issued (None when it can stay)."""
    now = now or _now()
    try:
        cert = _check_pair(cert_pem, key_pem, SERVER_CERT, SERVER_KEY)
    except MaterialError as exc:
        return str(exc)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return "it was not issued by the cluster's registry CA"
    if _not_after(cert) - now < RENEW_BEFORE:
        return "it expires on %s" % _not_after(cert).date().isoformat()
    have_dns, have_ips = cert_sans(cert_pem)
    want_dns, want_ips = split_sans([domain] + list(sans))
    missing = [n for n in want_dns if n not in have_dns] + [str(i) for i in want_ips if str(i) not in have_ips]
    if missing:
        return "it lacks the SAN(s) %s" % ", ".join(missing)
    return None


def htpasswd_line(username, password, rounds=10):
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds, prefix=b"2b")).decode()
    return "%s:%s\n" % (username, digest)


def htpasswd_verifies(text, username, password):
    """Whether the htpasswd text has exactly one line, for username, whose bcrypt hash matches."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) != 1 or ":" not in lines[0]:
        return False
    user, digest = lines[0].split(":", 1)
    if user != username or not digest.startswith(("$2y$", "$2b$", "$2a$")):
        return False
    try:
        return bcrypt.checkpw(password.encode(), digest.replace("$2y$", "$2b$", 1).encode())
    except ValueError:
        return False


class RegistryCerts:
    """Plans and makes the registry certs in directory path; nothing is written before apply()."""

    def __init__(self, path, cluster, domain, sans=(), username=None, password=None):
        self.path = path
        self.cluster = cluster
        self.domain = domain
        self.sans = list(sans)
        self.username = username or None
        self.password = password
        self.files = {}     # name -> (content, mode) to write
        self.reasons = {}   # what is made and why
        self._plan()

    def _file(self, name):
        return os.path.join(self.path, name)

    def _plan(self):
        ca_cert, ca_key = read_text(self._file(CA_CERT)), read_text(self._file(CA_KEY))
        if ca_cert is None and ca_key is None:
            ca_cert, ca_key = new_ca(self.cluster)
            self.files[CA_CERT], self.files[CA_KEY] = (ca_cert, 0o644), (ca_key, 0o600)
            self.reasons["ca"] = "no CA yet"
        elif ca_cert is None or ca_key is None:
            missing = self._file(CA_CERT if ca_cert is None else CA_KEY)
            raise MaterialError("%s is missing but its pair is there; restore it (a new CA would make every node "
                                "distrust the registry); remove both ca.crt and ca.key to start a new CA on purpose"
                                % missing)
        else:
            cert = _check_pair(ca_cert, ca_key, self._file(CA_CERT), self._file(CA_KEY))
            if _not_after(cert) <= _now():
                raise MaterialError("%s expired on %s; remove ca.crt and ca.key in %s to make a new CA on purpose"
                                    % (self._file(CA_CERT), _not_after(cert).date().isoformat(), self.path))
        self.ca_cert, self.ca_key = ca_cert, ca_key

        cert, key = read_text(self._file(SERVER_CERT)), read_text(self._file(SERVER_KEY))
        if cert is None or key is None:
            problem = "no server certificate yet"
        else:
            problem = server_cert_problem(cert, key, ca_cert, self.domain, self.sans)
        if problem:
            cert, key = new_server_cert(ca_cert, ca_key, self.domain, self.sans)
            self.files[SERVER_CERT], self.files[SERVER_KEY] = (cert, 0o644), (key, 0o600)
            self.reasons["cert"] = problem
        self.cert, self.key = cert, key

        htpasswd = read_text(self._file(HTPASSWD))
        if self.username:
            if not htpasswd_verifies(htpasswd, self.username, self.password or ""):
                htpasswd = htpasswd_line(self.username, self.password or "")
                self.files[HTPASSWD] = (htpasswd, 0o600)
                self.reasons["htpasswd"] = "no htpasswd yet" if read_text(self._file(HTPASSWD)) is None \
                    else "username or password changed"
        self.htpasswd = htpasswd if self.username else None
        # modes of files that stay are corrected too (keys must be 0600)
        for name, mode in ((CA_CERT, 0o644), (CA_KEY, 0o600), (SERVER_CERT, 0o644), (SERVER_KEY, 0o600),
                           (HTPASSWD, 0o600)):
            current = self._mode(name)
            if name not in self.files and current is not None and current != mode:
                self.files[name] = (read_text(self._file(name)), mode)
                self.reasons.setdefault("modes", []).append(name)

    def _mode(self, name):
        try:
            return os.stat(self._file(name)).st_mode & 0o7777
        except FileNotFoundError:
            return None

    @property
    def changed(self):
        return bool(self.files)

    def apply(self):
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        os.chmod(self.path, 0o700)
        # the key before its certificate: a crash in between leaves a pair that is re-issued
        for name in sorted(self.files, key=lambda n: (not n.endswith(".key"), n)):
            content, mode = self.files[name]
            write_atomic(self._file(name), content, mode)

    def summary(self):
        dns, ips = cert_sans(self.cert)
        return {
            "path": self.path,
            "ca_cert": self.ca_cert,
            "cert": self.cert,
            "ca_fingerprint": fingerprint(self.ca_cert),
            "cert_fingerprint": fingerprint(self.cert),
            "sans": dns + ips,
            "issued": sorted(k for k in self.reasons if k != "modes"),
            "reasons": {k: v for k, v in self.reasons.items() if k != "modes"},
            "ca_cert_path": self._file(CA_CERT),
            "cert_path": self._file(SERVER_CERT),
            "key_path": self._file(SERVER_KEY),
            "htpasswd_path": self._file(HTPASSWD) if self.username else None,
        }
