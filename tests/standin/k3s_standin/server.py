"""`k3s server`: datastore selection, bootstrap data, certificates, tokens, kubeconfig, the
HTTPS listener, the node lifecycle controller and the server's own agent.

Sources: K3S-REFERENCE.md §1 (token files, passwd, bootstrap encryption, joiner checks), §3
(startup errors, endpoints, kubeconfig, labels, readiness), §4 (datastore choice, etcd)."""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import agent as agentmod, apiserver, client, config as cfgmod, pki, sandbox, snapshot, token as tokmod, util
from .etcd import EmbeddedEtcd, MemberController, token_key
from .store import EtcdStore, SQLiteStore, StoreUnavailable


def _kdf(password: str, salt: bytes) -> bytes:
    return PBKDF2HMAC(algorithm=hashes.SHA1(), length=32, salt=salt, iterations=4096).derive(password.encode())  # noqa: S303


def encrypt_bootstrap(password: str, data: dict) -> bytes:
    salt = os.urandom(8)
    nonce = os.urandom(12)
    ct = AESGCM(_kdf(password, salt)).encrypt(nonce, json.dumps(data).encode(), None)
    return (base64.b64encode(salt) + b":" + base64.b64encode(nonce + ct))


def decrypt_bootstrap(password: str, blob: bytes) -> dict:
    salt_b64, _, ct_b64 = blob.partition(b":")
    raw = base64.b64decode(ct_b64)
    return json.loads(AESGCM(_kdf(password, base64.b64decode(salt_b64))).decrypt(raw[:12], raw[12:], None))


def _read_token_opt(opts: dict, key: str) -> str:
    val = opts.get(key) or ""
    fkey = key + "-file"
    if opts.get(fkey):
        try:
            val = open(opts[fkey], encoding="utf-8").read().strip()
        except OSError as exc:
            raise util.Fatal(f"Error: failed to read {fkey} {opts[fkey]}: {exc}") from None
    return val.strip()


class Server:
    def __init__(self, opts: dict):
        self.opts = opts
        self.data_dir = opts["data-dir"]
        self.sdir = os.path.join(self.data_dir, "server")
        self.tls = os.path.join(self.sdir, "tls")
        self.port = int(opts["https-listen-port"])
        self.bind = opts["bind-address"] or "0.0.0.0"
        self.node_name, self.node_ip = agentmod.node_identity(opts)
        self.etcd: EmbeddedEtcd | None = None
        self.store = None
        self.datastore_kind = "sqlite"
        self.boot: dict = {}
        self.server_ca = b""
        self.client_ca = b""
        self.stop = threading.Event()
        self._health = (0.0, False)
        self.agent = None
        self.cluster = None
        self.members = None  # the managed-etcd-controller, embedded etcd only

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        o = self.opts
        if os.geteuid() != 0 and not o.get("disable-agent") and not o.get("rootless"):
            raise util.Fatal("Error: must run as root unless --disable-agent is specified")
        if o.get("cluster-reset-restore-path") and not o.get("cluster-reset"):
            raise util.Fatal("Error: invalid flag use; --cluster-reset required with --cluster-reset-restore-path")
        if o.get("disable-etcd") and not o.get("server"):
            raise util.Fatal("Error: invalid flag use; --server is required with --disable-etcd")
        if o.get("datastore-endpoint") and (o.get("disable-apiserver") or o.get("disable-etcd")):
            flag = "--disable-apiserver" if o.get("disable-apiserver") else "--disable-etcd"
            raise util.Fatal(f"Error: invalid flag use; cannot use {flag} with --datastore-endpoint")
        if o.get("cluster-reset") and o.get("server"):
            raise util.Fatal("Error: cannot perform cluster-reset while server URL is set - remove server from "
                             "configuration before resetting")
        if o.get("server") and not o["server"].startswith("https://"):
            raise util.Fatal(f"Error: only https:// URLs are supported, invalid scheme: {o['server']}")
        if o.get("write-kubeconfig-mode"):
            try:
                int(o["write-kubeconfig-mode"], 8)
            except ValueError:
                raise util.Fatal(f"Error: failed to parse --write-kubeconfig-mode {o['write-kubeconfig-mode']}") from None
        for t in o.get("node-taint") or []:
            agentmod.parse_taint(t)
        for lbl in o.get("node-label") or []:
            agentmod.parse_label(lbl)

    # ------------------------------------------------------------------ start
    def run(self) -> int:
        self.validate()
        util.info(f"Starting k3s {util.VERSION} ({util.COMMIT[:8]})")
        for d in ("cred", "db", "manifests", "static", "tls"):
            os.makedirs(os.path.join(self.sdir, d), mode=0o700, exist_ok=True)
        server_raw = _read_token_opt(self.opts, "token")
        agent_raw = _read_token_opt(self.opts, "agent-token")
        token_file = os.path.join(self.sdir, "token")
        if not server_raw and os.path.exists(token_file):
            server_raw = open(token_file, encoding="utf-8").read().strip()
        try:
            stok = tokmod.parse(server_raw, "server") if server_raw else None
            atok = tokmod.parse(agent_raw, "node") if agent_raw else None
        except tokmod.TokenError as exc:
            raise util.Fatal(f"Error: failed to normalize server token; must be in format "
                             f"K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>: {exc}") from None

        endpoint = self.opts.get("datastore-endpoint") or ""
        self.etcd = EmbeddedEtcd(self.data_dir, self.node_name, self.node_ip)
        joining = False
        if endpoint:
            self._open_external(endpoint)
            if not stok:
                raise util.Fatal("Error: starting kubernetes: preparing server: --token is required when using an external datastore")
        elif self.opts.get("cluster-reset") and (self.etcd.exists or self.opts.get("cluster-reset-restore-path")):
            self._cluster_reset()
        elif self.etcd.exists:
            if self.opts.get("cluster-init") or self.opts.get("server"):
                util.info("etcd data already exists; ignoring --cluster-init and --server")
            flag = os.path.join(self.sdir, "db", "reset-flag")
            if os.path.exists(flag):  # k3s pkg/cluster/managed.go start(): not resetting, the flag goes
                os.remove(flag)
            self.datastore_kind = "etcd"
            self.etcd.start()
            self.store = self.etcd.client()
        elif self.opts.get("server"):
            joining = True
            if not stok:
                raise util.Fatal("Error: K3S_TOKEN is required to join a cluster")
            self._join(stok)
        elif self.opts.get("cluster-init"):
            self.datastore_kind = "etcd"
            # k3s keeps a former sqlite server's certificates and credentials: they are files on disk
            # (pkg/daemons/control/deps/deps.go reuses existing ones), saved to the new datastore
            self.boot = self._disk_bootstrap() or self._new_bootstrap(stok, atok)
            self.etcd.write_certs(self.boot)
            self.etcd.start()
            self.store = self.etcd.client()
            self.etcd.wait_ready()
            self._migrate_from_sqlite()
        else:
            self.store = SQLiteStore(os.path.join(self.sdir, "db", "state.db"))
            util.info(f"Configuring sqlite3 database connection pooling: {os.path.join(self.sdir, 'db', 'state.db')}")

        if self.datastore_kind == "etcd" and self.etcd.proc:
            self.etcd.wait_ready()
        if self.opts.get("cluster-reset") and self.datastore_kind == "etcd":
            tls_copy = f"{self.tls}-{int(time.time())}"
            util.info(f"Cluster reset: backing up certificates directory to {tls_copy}")
            shutil.copytree(self.tls, tls_copy, symlinks=True)
        self._reconcile_bootstrap(stok, atok, joining)
        self._write_files()
        if self.opts.get("cluster-reset") and self.datastore_kind == "etcd":
            return self._reset_done()
        self.cluster = apiserver.Cluster(self.store, self)
        if self.datastore_kind == "etcd":
            self.members = MemberController(self.cluster, self.etcd)
        self.httpd = apiserver.serve(self, self.bind if self.bind != "0.0.0.0" else "", self.port,
                                     os.path.join(self.tls, "serving-kube-apiserver.crt"),
                                     os.path.join(self.tls, "serving-kube-apiserver.key"),
                                     os.path.join(self.tls, "client-ca.crt"))
        util.info(f"Running kube-apiserver --advertise-address={self.node_ip} --secure-port={self.port} "
                  f"--storage-backend={'etcd3' if self.datastore_kind == 'etcd' else 'kine(sqlite)'}")
        self._wait_datastore()
        try:
            self.cluster.seed_pods(set(self.opts.get("disable") or []))
            self.cluster.seed_crds(bool(self.opts.get("disable-helm-controller")))
        except StoreUnavailable:
            pass
        threading.Thread(target=self._controller, name="controller", daemon=True).start()
        if self.datastore_kind == "etcd":
            snapshot.start_schedule(self.opts, self.data_dir, self.node_name, self.stop)
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        if not self.opts.get("disable-agent"):
            self._start_agent()
        util.info("k3s is up and running")
        util.sd_notify("READY=1\nSTATUS=k3s is up and running")
        while not self.stop.wait(1):
            if self.etcd and self.etcd.proc and self.etcd.proc.poll() is not None:
                raise util.Fatal(f"etcd exited unexpectedly with code {self.etcd.proc.returncode}")
        util.info("Shutting down k3s")
        if self.agent:
            self.agent.stop.set()
        self.httpd.shutdown()
        if self.etcd:
            self.etcd.stop()
        return 0

    def _cluster_reset(self) -> None:
        """k3s pkg/cluster/managed.go start() and pkg/etcd/etcd.go Reset(): one member, a new name,
        the reset-flag marker; with a restore path the snapshot replaces the data first."""
        flag = os.path.join(self.sdir, "db", "reset-flag")
        source = self.opts.get("cluster-reset-restore-path")
        if not source and os.path.exists(flag):
            raise util.Fatal("Error: starting kubernetes: preparing server: start managed database: Managed etcd "
                             "cluster membership was previously reset, please remove the cluster-reset flag and "
                             "start k3s normally. If you need to perform another cluster reset, you must first "
                             f"manually delete the {flag} file")
        name = f"{self.node_name}-{secrets.token_hex(4)}"
        if source:
            snapshot.restore(self.data_dir, source, name, self.etcd.peer_url())
        if not os.path.exists(os.path.join(self.etcd.tls, "client.crt")):
            self.etcd.write_certs(self._new_bootstrap(None, None))  # replaced by the snapshot's CA below
        util.write_file(flag, b"", 0o600)
        self.datastore_kind = "etcd"
        self.etcd.start(name=name, force_new=not source)
        self.store = self.etcd.client()

    def _reset_done(self) -> int:
        """Wait until etcd is this one member under its new name, then exit 0 (k3s Reset's goroutine)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                members = self.etcd.client(timeout=5).members()
                if len(members) == 1 and members[0].get("name") == self.etcd.member_name():
                    break
            except StoreUnavailable as exc:
                util.info(f"Waiting for etcd to reset: {exc}")
            time.sleep(1)
        else:
            raise util.Fatal("etcd did not become a single-member cluster")
        util.info(snapshot.RESET_MESSAGE)
        self.etcd.stop()
        return 0

    def _open_external(self, endpoint: str) -> None:
        eps = [e.strip() for e in endpoint.split(",") if e.strip()]
        if not all(e.startswith(("http://", "https://")) for e in eps):
            raise util.Fatal(f"Error: starting kubernetes: preparing server: the k3s stand-in models only etcd "
                             f"datastore endpoints (http(s)://host:2379), not {endpoint}")
        self.datastore_kind = "external-etcd"
        self.store = EtcdStore(eps, self.opts.get("datastore-cafile"), self.opts.get("datastore-certfile"),
                               self.opts.get("datastore-keyfile"))
        util.info(f"Datastore endpoint {endpoint} (external etcd)")

    def _join(self, stok: tokmod.Token) -> None:
        url = self.opts["server"].rstrip("/")
        tok = tokmod.Token(stok.ca_hash, "server", stok.password) if stok.username or not stok.is_bootstrap else stok
        try:
            ca = agentmod.validate_server(url, tok)
        except agentmod.ValidationError as exc:
            # k3s: the error of clientaccess.ParseAndValidateToken, wrapped by pkg/daemons/control
            # ("preparing server") and pkg/server ("starting kubernetes"); the server exits.
            raise util.Fatal(f"Error: starting kubernetes: preparing server: {exc}") from None
        ctx = client.context(ca)
        self._compare_critical(url, ctx, tok)
        util.info(f"Joining etcd cluster via {url}")
        try:
            _, body, _ = client.request(url + "/v1-k3s/server-bootstrap", ctx=ctx,
                                        headers={"Authorization": tok.auth_header()}, timeout=15)
        except client.HTTPFailure as exc:
            raise util.Fatal(f"Error: starting kubernetes: preparing server: failed to get bootstrap data: "
                             f"{url}/v1-k3s/server-bootstrap: {exc.code} {_reason(exc.code)}") from None
        self.boot = json.loads(body)
        self.datastore_kind = "etcd"
        self.etcd.write_certs(self.boot)
        try:
            info = client.get_json(url + "/db/info", ctx=ctx, headers={"Authorization": tok.auth_header()})
        except client.HTTPFailure as exc:
            raise util.Fatal(f"Error: starting kubernetes: preparing server: failed to get etcd members: {exc}") from None
        # k3s ClientURLs(): the client URLs of the members that are not learners
        peers = [u for m in info.get("members", []) if not m.get("isLearner") for u in m.get("clientURLs") or []]
        name, initial = self.etcd.join(peers)
        self.etcd.start(initial, "existing", name)
        self.store = self.etcd.client()

    def _compare_critical(self, url: str, ctx, tok: tokmod.Token) -> None:
        """k3s pkg/cluster/bootstrap.go compareConfig (config.critical_mismatch): fatal on a
        difference; a server that does not answer /v1-k3s/config is not compared."""
        try:
            remote = client.get_json(url + "/v1-k3s/config", ctx=ctx, headers={"Authorization": tok.auth_header()})
        except client.HTTPFailure as exc:
            util.warn(f"Skipping cluster configuration validation: {exc}")
            return
        problem = cfgmod.critical_mismatch(cfgmod.critical_args(self.opts, util.VERSION),
                                           remote.get("CriticalControlArgs") or {}, util.VERSION)
        if problem:
            raise util.Fatal(f"starting kubernetes: preparing server: failed to validate server configuration: {problem}")

    def _new_bootstrap(self, stok, atok) -> dict:
        sca, skey = pki.new_ca("k3s-server-ca")
        cca, ckey = pki.new_ca("k3s-client-ca")
        eca, ekey = pki.new_ca("etcd-server-ca")
        spw = stok.password if stok else tokmod.generate_password()
        return {"server-ca.crt": sca.decode(), "server-ca.key": skey.decode(),
                "client-ca.crt": cca.decode(), "client-ca.key": ckey.decode(),
                "etcd-server-ca.crt": eca.decode(), "etcd-server-ca.key": ekey.decode(),
                "server-password": spw, "agent-password": atok.password if atok else spw,
                "agent-token-set": bool(atok)}

    def _sqlite_file(self) -> str:
        return os.path.join(self.sdir, "db", "state.db")

    def _disk_bootstrap(self) -> dict | None:
        """The bootstrap data of a former sqlite server read from its files (server/tls CAs,
        server/tls/etcd CA, cred/passwd), or None when there is no sqlite datastore to migrate."""
        if not os.path.exists(self._sqlite_file()):
            return None
        read = lambda *p: open(os.path.join(self.tls, *p), encoding="utf-8").read()  # noqa: E731
        try:
            lines = open(os.path.join(self.sdir, "cred", "passwd"), encoding="utf-8").read().splitlines()
            pw = {f[1]: f[0] for f in (line.split(",") for line in lines) if len(f) >= 2}
            boot = {"server-ca.crt": read("server-ca.crt"), "server-ca.key": read("server-ca.key"),
                    "client-ca.crt": read("client-ca.crt"), "client-ca.key": read("client-ca.key"),
                    "etcd-server-ca.crt": read("etcd", "server-ca.crt"), "etcd-server-ca.key": read("etcd", "server-ca.key"),
                    "server-password": pw["server"], "agent-password": pw["node"],
                    "agent-token-set": os.path.isfile(os.path.join(self.sdir, "agent-token"))
                    and not os.path.islink(os.path.join(self.sdir, "agent-token"))}
        except (OSError, KeyError) as exc:
            raise util.Fatal(f"Error: starting kubernetes: preparing server: {exc}") from None
        return boot

    def _migrate_from_sqlite(self) -> None:
        """k3s pkg/etcd/etcd.go newCluster -> migrateFromSQLite (v1.22.2+): when the new etcd
        cluster's server still has DATA/server/db/state.db, every key under /registry/ is put into
        etcd and the file is renamed state.db.migrated. Bootstrap keys are not copied: the server
        saves its own (from disk) to the new datastore afterwards."""
        path = self._sqlite_file()
        if not os.path.exists(path):
            return
        util.info("Migrating content from sqlite to etcd")
        old = SQLiteStore(path)
        try:
            for key, value, _rev in old.list("/registry/"):
                util.info(f"Migrating etcd key {key}")
                self.store.put(key, value)
        except StoreUnavailable as exc:
            raise util.Fatal(f"Error: starting kubernetes: preparing server: failed to migrate content from "
                             f"sqlite to etcd: {exc}") from None
        finally:
            old.close()
        os.rename(path, path + ".migrated")

    def _wait_datastore(self) -> None:
        while True:
            try:
                self.store.health()
                return
            except StoreUnavailable as exc:
                util.info(f"Waiting for etcd server to become available: {exc}")
                time.sleep(2)

    def _reconcile_bootstrap(self, stok, atok, joining: bool) -> None:
        self._wait_datastore()
        existing = {k: v for k, v, _ in self.store.list("/bootstrap/")}
        if self.boot and not joining and not existing:
            pw = self.boot["server-password"]
        elif joining:
            pw = self.boot["server-password"]
        elif stok:
            pw = stok.password
        elif existing:
            raise util.Fatal("Error: starting kubernetes: preparing server: bootstrap data already found and "
                             "encrypted with different token")
        else:
            self.boot = self._new_bootstrap(None, atok)
            pw = self.boot["server-password"]
        key = token_key(pw)
        if key in existing:
            try:
                self.boot = decrypt_bootstrap(pw, existing[key])
            except (InvalidTag, ValueError):
                raise util.Fatal("Error: starting kubernetes: preparing server: bootstrap data already found and "
                                 "encrypted with different token") from None
        elif existing:
            raise util.Fatal("Error: starting kubernetes: preparing server: bootstrap data already found and "
                             "encrypted with different token")
        else:
            if not self.boot:
                self.boot = self._new_bootstrap(stok, atok)
            self.store.put(key, encrypt_bootstrap(pw, self.boot))
        if atok and atok.password != self.boot["agent-password"]:
            raise util.Fatal("Error: starting kubernetes: preparing server: failed to validate server configuration: "
                             "critical configuration value mismatch: agent-token")

    # ------------------------------------------------------------------ files
    def _write_files(self) -> None:
        b = self.boot
        w = util.write_file
        self.server_ca = b["server-ca.crt"].encode()
        self.client_ca = b["client-ca.crt"].encode()
        w(os.path.join(self.tls, "server-ca.crt"), self.server_ca, 0o644)
        w(os.path.join(self.tls, "server-ca.key"), b["server-ca.key"])
        w(os.path.join(self.tls, "client-ca.crt"), self.client_ca, 0o644)
        w(os.path.join(self.tls, "client-ca.key"), b["client-ca.key"])
        # k3s genCerts always runs genETCDCerts (pkg/daemons/control/deps/deps.go): every server has
        # the etcd certificates, whatever its datastore
        if not os.path.exists(os.path.join(self.tls, "etcd", "client.crt")):
            self.etcd.write_certs(b)
        dns, ips = pki.split_sans(self.opts.get("tls-san") or [])
        ips = ["127.0.0.1", "::1", self.node_ip, "10.43.0.1"] + ips + [i for i in (self.opts.get("node-external-ip") or [])]
        if self.opts.get("advertise-address"):
            ips.append(self.opts["advertise-address"])
        dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local", util.hostname()] + dns
        crt, key = pki.issue(self.server_ca, b["server-ca.key"].encode(), "k3s", "k3s", dns, ips, server=True)
        w(os.path.join(self.tls, "serving-kube-apiserver.crt"), crt + self.server_ca, 0o644)
        w(os.path.join(self.tls, "serving-kube-apiserver.key"), key)
        # k3s renews a certificate at start only when it is expired or within 90 days of expiring
        # (docs.k3s.io/cli/certificate): a restart keeps the admin credentials, so k3s.yaml too.
        acrt, akey = self._kept_admin_cert()
        if acrt is None:
            acrt, akey = pki.issue(self.client_ca, b["client-ca.key"].encode(), "system:admin", "system:masters", client=True)
        w(os.path.join(self.tls, "client-admin.crt"), acrt + self.client_ca, 0o644)
        w(os.path.join(self.tls, "client-admin.key"), akey)
        # tokens and credentials
        cahash = tokmod.ca_hash(self.server_ca)
        spw, apw = b["server-password"], b["agent-password"]
        w(os.path.join(self.sdir, "cred", "passwd"),
          f"{spw},server,server,k3s:server\n{apw},node,node,k3s:agent\n", 0o600)
        w(os.path.join(self.sdir, "token"), f"K10{cahash}::server:{spw}\n", 0o600)
        _symlink("token", os.path.join(self.sdir, "node-token"))
        at = os.path.join(self.sdir, "agent-token")
        if b.get("agent-token-set"):
            if os.path.islink(at):
                os.unlink(at)
            w(at, f"K10{cahash}::node:{apw}\n", 0o600)
        else:
            _symlink("token", at)
        adv = self.opts.get("advertise-address") or self.node_ip
        util.info(f"Server node token is available at {os.path.join(self.sdir, 'token')}")
        util.info(f"To join server node to cluster: k3s server -s https://{adv}:{self.port} -t ${{SERVER_NODE_TOKEN}}")
        util.info(f"Agent node token is available at {at}")
        util.info(f"To join agent node to cluster: k3s agent -s https://{adv}:{self.port} -t ${{AGENT_NODE_TOKEN}}")
        self._write_kubeconfig(acrt + self.client_ca, akey)

    def _kept_admin_cert(self):
        """(cert, key) of the existing admin client certificate when it is still good for 90 days
        and issued by the current client CA, else (None, None)."""
        try:
            with open(os.path.join(self.tls, "client-admin.crt"), "rb") as f:
                chain = f.read()
            with open(os.path.join(self.tls, "client-admin.key"), "rb") as f:
                key = f.read()
        except OSError:
            return None, None
        first = chain.split(b"-----END CERTIFICATE-----", 1)[0] + b"-----END CERTIFICATE-----\n"
        if not chain.endswith(self.client_ca) or not pki.valid_for(first, days=90):
            return None, None
        return first, key

    def _write_kubeconfig(self, crt: bytes, key: bytes) -> None:
        host = self.bind if self.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
        b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731
        text = (
            "apiVersion: v1\nclusters:\n- cluster:\n"
            f"    certificate-authority-data: {b64(self.server_ca)}\n"
            f"    server: https://{host}:{self.port}\n  name: default\n"
            "contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\n"
            "current-context: default\nkind: Config\npreferences: {}\nusers:\n- name: default\n  user:\n"
            f"    client-certificate-data: {b64(crt)}\n    client-key-data: {b64(key)}\n"
        )
        mode = int(self.opts["write-kubeconfig-mode"], 8) if self.opts.get("write-kubeconfig-mode") else 0o600
        default = os.path.join(util.ETC_RANCHER, "k3s", "k3s.yaml")
        target = self.opts.get("write-kubeconfig") or default
        util.write_file(target, text, mode)
        os.chmod(target, mode)
        if self.opts.get("write-kubeconfig-group"):
            import grp

            try:
                os.chown(target, -1, grp.getgrnam(self.opts["write-kubeconfig-group"]).gr_gid)
            except KeyError:
                util.warn(f"Unable to find group {self.opts['write-kubeconfig-group']}")
        if os.path.abspath(target) != default:
            os.makedirs(os.path.dirname(default), exist_ok=True)
            if os.path.lexists(default):
                os.unlink(default)
            os.symlink(os.path.abspath(target), default)
        util.info(f"Wrote kubeconfig {target}")

    # ------------------------------------------------------------------ agent part
    def _start_agent(self) -> None:
        host = self.bind if self.bind not in ("0.0.0.0", "::", "") else "127.0.0.1"
        labels = {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}
        ann = {}
        if self.datastore_kind == "etcd":
            labels["node-role.kubernetes.io/etcd"] = "true"
            ann = {"etcd.k3s.cattle.io/node-name": self.etcd.member_name(),
                   "etcd.k3s.cattle.io/node-address": self.node_ip}
        secret_args = {"token", "agent-token", "datastore-endpoint", "etcd-s3-secret-key"}
        args = [self.opts.get("_cmd", "server")]
        for k, v in sorted(self.opts.items()):
            if k.startswith("_") or v in (None, False, [], "") or k not in self.opts.get("_explicit", set()):
                continue
            for item in (v if isinstance(v, list) else [v]):
                args += [f"--{k}", "********" if k in secret_args else str(item)]
        ann["k3s.io/node-args"] = json.dumps(args)
        ann["k3s.io/node-config-hash"] = base64.b32encode(os.urandom(20)).decode()[:32]
        ann["k3s.io/node-env"] = "{}"
        agentmod.prepare_runtime(self.opts)
        tok = tokmod.Token(tokmod.ca_hash(self.server_ca), "node", self.boot["agent-password"])
        self.agent = agentmod.NodeAgent(self.opts, [f"https://{host}:{self.port}"], tok, self.node_name,
                                        self.node_ip, labels, ann, is_server=True)
        self.agent.connect()
        self.agent.register()
        agentmod.start_flannel(self.opts, self.opts.get("flannel-backend") or "vxlan")
        sandbox.start(self.data_dir, self.node_name)
        threading.Thread(target=self.agent.heartbeat_loop, name="kubelet", daemon=True).start()

    def _controller(self) -> None:
        while not self.stop.wait(2):
            try:
                self.cluster.controller_tick()
                if self.members:
                    self.members.tick()
            except (StoreUnavailable, apiserver.ApiError) as exc:
                util.debug(f"controller: {exc}")
            except Exception as exc:  # noqa: BLE001 - keep the controller alive
                util.error(f"controller: {exc!r}")

    # ------------------------------------------------------------------ used by handlers
    def check_password(self, user: str, pw: str):
        import hmac

        if user == "server" and hmac.compare_digest(pw, self.boot["server-password"]):
            return "server"
        if user == "node" and hmac.compare_digest(pw, self.boot["agent-password"]):
            return "node"
        return None

    def bootstrap_for_joiner(self) -> dict:
        return self.boot

    def etcd_members(self) -> list[dict]:
        return [{"name": m.get("name"), "peerURLs": m.get("peerURLs"), "clientURLs": m.get("clientURLs"),
                 "isLearner": bool(m.get("isLearner"))}
                for m in self.etcd.client(timeout=5).members()]

    def datastore_ok(self) -> bool:
        now = time.monotonic()
        if now - self._health[0] < 1.0:
            return self._health[1]
        try:
            self.store.health()
            ok = True
        except StoreUnavailable:
            ok = False
        self._health = (time.monotonic(), ok)
        return ok

    def ready(self, include_store: bool = True):
        checks = [("ping", True), ("log", True)]
        if include_store:
            checks.append(("etcd", self.datastore_ok()))
            checks.append(("informer-sync", True))
        checks.append(("shutdown", not self.stop.is_set()))
        return all(ok for _, ok in checks), checks

    def apiservers(self) -> list[str]:
        out = []
        try:
            for n in self.cluster.list_nodes("node-role.kubernetes.io/control-plane=true"):
                for a in n.get("status", {}).get("addresses", []):
                    if a.get("type") == "InternalIP":
                        out.append(f"{a['address']}:{self.port}")
        except StoreUnavailable:
            pass
        return out or [f"{self.node_ip}:{self.port}"]

    def agent_config(self) -> dict:
        return {"ServerCA": "", "ClusterDomain": self.opts.get("cluster-domain"), "Version": util.VERSION,
                "SupervisorPort": self.port, "HTTPSPort": self.port,
                "FlannelBackend": self.opts.get("flannel-backend") or "vxlan",
                "CriticalControlArgs": cfgmod.critical_args(self.opts, util.VERSION)}

    def issue_kubelet_cert(self, name: str, ip: str) -> tuple[bytes, bytes]:
        crt, key = pki.issue(self.client_ca, self.boot["client-ca.key"].encode(), f"system:node:{name}",
                             "system:nodes", client=True)
        return crt + self.client_ca, key

    def version_info(self) -> dict:
        major, minor, _ = util.version_tuple(util.VERSION)
        return {"major": str(major), "minor": str(minor), "gitVersion": util.VERSION, "gitCommit": util.COMMIT,
                "gitTreeState": "clean", "buildDate": "2022-10-25T19:59:38Z", "goVersion": util.GO_VERSION,
                "compiler": "gc", "platform": "linux/amd64"}


def _reason(code):
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            500: "Internal Server Error", 503: "Service Unavailable"}.get(code, "")


def _symlink(target: str, path: str) -> None:
    if os.path.islink(path) and os.readlink(path) == target:
        return
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def run_server(opts: dict) -> int:
    return Server(opts).run()
