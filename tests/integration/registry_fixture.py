"""A real distribution registry (Debian's docker-registry) on loopback, with TLS from a CA made
here and bcrypt htpasswd auth, for tests that push and pull."""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import time
import urllib.request
import ssl

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "seal", "reg-pass-5f2a"


def _cert(subject, issuer_key, public_key, issuer, ca=False, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = _free_port()
        self.host = "127.0.0.1:%d" % self.port
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seal-test-ca")])
        ca = _cert(ca_name, ca_key, ca_key.public_key(), ca_name, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_key, key.public_key(), ca_name,
                     sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.ca_file = os.path.join(workdir, "ca.crt")
        files = {
            "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
            "server.crt": cert.public_bytes(serialization.Encoding.PEM),
            "server.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()),
            "htpasswd": b"%s:%s\n" % (USER.encode(), bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5))),
        }
        for name, data in files.items():
            fd = os.open(os.path.join(workdir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        self.storage = os.path.join(workdir, "storage")
        config = os.path.join(workdir, "config.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}
http:
  addr: 127.0.0.1:{self.port}
  tls: {{certificate: {workdir}/server.crt, key: {workdir}/server.key}}
auth:
  htpasswd: {{realm: seal-test, path: {workdir}/htpasswd}}
""")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(workdir, "registry.log"), "wb"))
        context = ssl.create_default_context(cafile=self.ca_file)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen("https://%s/v2/" % self.host, context=context, timeout=2)
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("registry on %s did not start" % self.host)
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class PlainRegistry:
    """A distribution registry on loopback over plain HTTP, serving an existing storage directory
    (for example the registry/ of an extracted cluster image), read-only."""

    def __init__(self, workdir, storage):
        os.makedirs(workdir, exist_ok=True)
        self.port = _free_port()
        self.host = "127.0.0.1:%d" % self.port
        config = os.path.join(workdir, "config.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {storage}}}, maintenance: {{readonly: {{enabled: true}}}}}}
http: {{addr: 127.0.0.1:{self.port}}}
""")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(workdir, "registry.log"), "wb"))
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("registry on %s did not start" % self.host)
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
