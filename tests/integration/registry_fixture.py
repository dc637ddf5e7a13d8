"""A real distribution registry (Debian's docker-registry) on loopback, with TLS from a CA made
here and either bcrypt htpasswd auth or token auth (a small token service here issues ES256 JWTs
the registry verifies, as Docker Hub, Harbor or GitLab do), for tests that push and pull."""
from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import os
import threading
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import ssl

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
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


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - seal.cluster.cluster_image:
%s      register: result
    - ansible.builtin.copy:
        content: "{{ result | to_json }}"
        dest: "{{ lookup('env', 'OUT') }}"
        mode: "0600"
"""


def write_cluster_image_play(path, options):
    """A localhost play at path: seal.cluster.cluster_image with `options` (its YAML lines, indented
    under the task), the module's result written as JSON to $OUT."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(PLAY % options)


def run_cluster_image_play(work, play, variables, timeout):
    """ansible-playbook on a play of write_cluster_image_play, with `variables` in its environment:
    the process and the module's result (None where the play wrote none). The registry password
    must not show in the output."""
    out = os.path.join(work, "out.json")
    if os.path.exists(out):
        os.unlink(out)
    env = dict(os.environ, OUT=out, ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), **variables)
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-v", "-i", "localhost,", play], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert PASSWORD not in proc.stdout + proc.stderr
    if not os.path.exists(out):
        return proc, None
    with open(out, encoding="utf-8") as f:
        return proc, json.load(f)


START_TIMEOUT = 60  # seconds for docker-registry to answer; the suite runs several test modules at once


def _serve(workdir, config_for, ready):
    """docker-registry serving config_for(port) on a free loopback port; returns (port, process).
    The port is free when picked, but test modules run side by side and another may bind it first:
    then this registry exits (or a foreign one answers while this one is dying), and it starts
    again on another port."""
    config = os.path.join(workdir, "config.yml")
    for _attempt in range(5):
        port = _free_port()
        with open(config, "w", encoding="utf-8") as f:
            f.write(config_for(port))
        proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(workdir, "registry.log"), "ab"))
        deadline = time.monotonic() + START_TIMEOUT
        while proc.poll() is None:
            if ready("127.0.0.1:%d" % port):
                time.sleep(0.3)
                if proc.poll() is None:
                    return port, proc
                break
            if time.monotonic() > deadline:
                proc.terminate()
                proc.wait(timeout=10)
                raise RuntimeError("registry on 127.0.0.1:%d did not start within %ds" % (port, START_TIMEOUT))
            time.sleep(0.2)
    raise RuntimeError("registry: did not start on 5 ports in a row (see %s/registry.log)" % workdir)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_scope(scope):
    """'repository:team/k3s:pull,push' -> ('repository', 'team/k3s', ['pull', 'push'])."""
    kind, name, actions = scope.split(":")
    return kind, name, actions.split(",")


class TokenService:
    """GET /token?service=&scope= with Basic auth -> {"token": JWT} granting the scopes asked for."""

    def __init__(self, workdir, host_cert, host_key, issuer="seal-test-issuer", service="seal-test"):
        self.issuer, self.service = issuer, service
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seal-token-signer")])
        self.cert = _cert(name, self.key, self.key.public_key(), name)
        self.bundle = os.path.join(workdir, "token-signer.crt")
        with open(self.bundle, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests = []
        service_ref = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                good = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
                service_ref.requests.append((auth == good, query.get("scope", [])))
                if auth != good:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": service_ref.token(query.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(host_cert, host_key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.realm = "https://127.0.0.1:%d/token" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, scopes):
        access = []
        for scope in scopes:
            kind, name, actions = parse_scope(scope)
            access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": self.issuer, "sub": USER, "aud": self.service, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": _b64url(os.urandom(12)), "access": access}
        signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    def stop(self):
        self.server.shutdown()


class _RegistryProcess:
    """A distribution registry process on loopback."""

    def __init__(self, workdir, config_for, ready):
        self.port, self.proc = _serve(workdir, config_for, ready)
        self.host = "127.0.0.1:%d" % self.port

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Registry(_RegistryProcess):
    def __init__(self, workdir, auth="htpasswd"):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
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
        self.tokens = None
        auth_config = f"htpasswd: {{realm: seal-test, path: {workdir}/htpasswd}}"
        if auth == "token":
            self.tokens = TokenService(workdir, os.path.join(workdir, "server.crt"), os.path.join(workdir, "server.key"))
            auth_config = (f"token: {{realm: '{self.tokens.realm}', service: {self.tokens.service}, "
                           f"issuer: {self.tokens.issuer}, rootcertbundle: {self.tokens.bundle}}}")
        context = ssl.create_default_context(cafile=self.ca_file)

        def config_for(port):
            return f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {self.storage}}}, delete: {{enabled: true}}}}
http:
  addr: 127.0.0.1:{port}
  tls: {{certificate: {workdir}/server.crt, key: {workdir}/server.key}}
auth:
  {auth_config}
"""

        def ready(host):
            try:
                urllib.request.urlopen("https://%s/v2/" % host, context=context, timeout=2)
            except urllib.error.HTTPError as exc:
                return exc.code == 401
            except OSError:
                pass
            return False

        super().__init__(workdir, config_for, ready)

    def stop(self):
        super().stop()
        if self.tokens:
            self.tokens.stop()


class PlainRegistry(_RegistryProcess):
    """A distribution registry on loopback over plain HTTP, serving an existing storage directory
    (for example the registry/ of an extracted cluster image), read-only."""

    def __init__(self, workdir, storage):
        os.makedirs(workdir, exist_ok=True)

        def config_for(port):
            return f"""version: 0.1
log: {{level: error}}
storage: {{filesystem: {{rootdirectory: {storage}}}, maintenance: {{readonly: {{enabled: true}}}}}}
http: {{addr: 127.0.0.1:{port}}}
"""

        def ready(host):
            try:
                urllib.request.urlopen("http://%s/v2/" % host, timeout=2).read()
                return True
            except OSError:
                return False

        super().__init__(workdir, config_for, ready)
