"""The HTTPS listener on 6443: k3s's supervisor endpoints and the part of kube-apiserver the
collection touches (health, version, nodes, pods/eviction for drain, node leases), with the
Node lifecycle controller (Ready/NotReady from lease renewals) and a tiny pod model.

Sources: K3S-REFERENCE.md §3 (endpoints, auth, labels), Kubernetes API conventions (Status
objects, NodeList, merge patches)."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import http.server
import json
import os
import secrets
import socketserver
import ssl
import threading
import time
import urllib.parse
import uuid

from . import util
from .store import Conflict, StoreUnavailable

NODES = "/registry/minions/"
LEASES = "/registry/leases/kube-node-lease/"
SECRETS = "/registry/secrets/kube-system/"
PODS = "/registry/pods/"

UNREACHABLE = "node.kubernetes.io/unreachable"


def status_obj(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (also used for strategic merge patches of Node fields: the
    fields kubectl patches on nodes - labels, annotations, unschedulable, taints - have no
    list-merge strategy, so strategic merge equals merge here)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if k.startswith("$"):
            continue  # strategic-merge directives ($setElementOrder, $retainKeys, ...)
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def json_patch(doc, ops: list):
    doc = copy.deepcopy(doc)
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for p in path[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = path[-1] if path else None
        kind = op["op"]
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                if last not in parent:
                    raise ApiError(422, "Invalid", f"remove operation does not apply: doc is missing path: {op['path']}")
                del parent[last]
        elif kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {op['path']} failed")
        else:
            raise ApiError(400, "BadRequest", f"unsupported json patch op {kind}")
    return doc


def match_labels(labels: dict, selector: str) -> bool:
    if not selector:
        return True
    for term in [t.strip() for t in selector.split(",") if t.strip()]:
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def node_ready(node: dict) -> bool:
    for c in node.get("status", {}).get("conditions", []):
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def scrypt_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    return "$scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(h).decode()


def scrypt_verify(password: str, stored: str) -> bool:
    try:
        _, _, salt, _ = stored.split("$")
        return hmac.compare_digest(scrypt_hash(password, base64.b64decode(salt)), stored)
    except ValueError:
        return False


class Cluster:
    """State operations on the shared datastore."""

    def __init__(self, store, ctx):
        self.store = store
        self.ctx = ctx  # the server (node name, etcd, options)
        self.grace = util.node_grace()

    # generic objects --------------------------------------------------------------------
    def _get(self, key: str):
        got = self.store.get(key)
        if not got:
            return None, None
        obj = json.loads(got[0])
        obj.setdefault("metadata", {})["resourceVersion"] = str(got[1])
        return obj, got[1]

    def _list(self, prefix: str) -> list[dict]:
        out = []
        for _k, v, rev in self.store.list(prefix):
            obj = json.loads(v)
            obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
            out.append(obj)
        return out

    @staticmethod
    def _dump(obj: dict) -> bytes:
        obj = copy.deepcopy(obj)
        obj.get("metadata", {}).pop("resourceVersion", None)
        return json.dumps(obj, sort_keys=True).encode()

    def _mutate(self, key: str, kind: str, name: str, fn, retries: int = 10):
        for _ in range(retries):
            obj, rev = self._get(key)
            if obj is None:
                raise not_found(kind, name)
            new = fn(copy.deepcopy(obj))
            if new is None or self._dump(new) == self._dump(obj):
                return obj
            try:
                nrev = self.store.update(key, self._dump(new), rev)
            except Conflict:
                continue
            new["metadata"]["resourceVersion"] = str(nrev)
            return new
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; please apply your changes to the latest version and try again')

    # nodes ------------------------------------------------------------------------------
    def list_nodes(self, selector: str = "", field: str = "") -> list[dict]:
        nodes = [n for n in self._list(NODES) if match_labels(n["metadata"].get("labels", {}), selector)]
        if field:
            for term in field.split(","):
                k, _, v = term.partition("=")
                if k == "metadata.name":
                    nodes = [n for n in nodes if n["metadata"]["name"] == v.lstrip("=")]
        return nodes

    def get_node(self, name: str) -> dict:
        obj, _ = self._get(NODES + name)
        if obj is None:
            raise not_found("nodes", name)
        return obj

    def create_node(self, node: dict) -> dict:
        name = node["metadata"]["name"]
        node["metadata"].setdefault("uid", str(uuid.uuid4()))
        node["metadata"].setdefault("creationTimestamp", util.now_rfc3339())
        node["kind"], node["apiVersion"] = "Node", "v1"
        try:
            rev = self.store.create(NODES + name, self._dump(node))
        except Conflict:
            raise ApiError(409, "AlreadyExists", f'nodes "{name}" already exists', {"name": name, "kind": "nodes"}) from None
        node["metadata"]["resourceVersion"] = str(rev)
        self.ensure_daemonset_pods()
        self.schedule_pending()
        return node

    def patch_node(self, name: str, patch, ptype: str = "merge") -> dict:
        def fn(obj):
            if ptype == "json":
                new = json_patch(obj, patch)
            else:
                new = merge_patch(obj, patch)
            new["metadata"]["name"] = name
            return new
        return self._reap(name, self._mutate(NODES + name, "nodes", name, fn))

    def replace_node(self, name: str, node: dict) -> dict:
        obj, rev = self._get(NODES + name)
        if obj is None:
            raise not_found("nodes", name)
        want = node.get("metadata", {}).get("resourceVersion")
        if want and str(rev) != str(want):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on nodes "{name}": the object has been modified; please apply your changes to the latest version and try again')
        try:
            nrev = self.store.update(NODES + name, self._dump(node), rev)
        except Conflict:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on nodes "{name}": the object has been modified') from None
        node["metadata"]["resourceVersion"] = str(nrev)
        return self._reap(name, node)

    def delete_node(self, name: str) -> dict:
        obj, rev = self._get(NODES + name)
        if obj is None:
            raise not_found("nodes", name)
        if obj["metadata"].get("finalizers"):
            # finalizers hold the object: it is marked and stays until the last one is removed
            # (on embedded etcd k3s's managed-etcd-controller holds every Node: etcd.py)
            def mark(o):
                o["metadata"].setdefault("deletionTimestamp", util.now_rfc3339())
                o["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                return o
            return self._mutate(NODES + name, "nodes", name, mark)
        self._finish_delete(name)
        return obj

    def _finish_delete(self, name: str) -> None:
        self.store.delete(NODES + name)
        self.store.delete(LEASES + name)
        # k3s: the node-password secret goes with the node (ownerReference / node controller)
        self.store.delete(SECRETS + name.lower() + ".node-password.k3s")
        # pod GC: pods bound to the node are deleted; controllers re-create theirs elsewhere
        for pod in self._list(PODS):
            if pod.get("spec", {}).get("nodeName") == name:
                self._delete_pod(pod, reschedule=True)

    def _reap(self, name: str, node: dict) -> dict:
        """A Node marked for deletion goes once its last finalizer is removed."""
        if node["metadata"].get("deletionTimestamp") and not node["metadata"].get("finalizers"):
            self._finish_delete(name)
        return node

    # leases / lifecycle ----------------------------------------------------------------
    def renew_lease(self, name: str) -> None:
        lease = {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                          "renewTime": time.time()}}
        self.store.put(LEASES + name, json.dumps(lease).encode())

    def controller_tick(self) -> None:
        """Node lifecycle controller: Ready=Unknown + unreachable taints after the grace period."""
        leases = {}
        for _k, v, _r in self.store.list(LEASES):
            lease = json.loads(v)
            leases[lease["metadata"]["name"]] = lease["spec"]["renewTime"]
        now = time.time()
        for node in self._list(NODES):
            name = node["metadata"]["name"]
            renew = leases.get(name, 0)
            if now - renew > self.grace and node_ready(node) is True:
                self._mutate(NODES + name, "nodes", name, _mark_unknown)
                util.info(f"Node {name} is NotReady: kubelet stopped posting node status")
        self.ensure_daemonset_pods()
        self.schedule_pending()

    # node passwords -----------------------------------------------------------------------
    def check_node_password(self, name: str, password: str) -> bool:
        key = SECRETS + name.lower() + ".node-password.k3s"
        obj, _ = self._get(key)
        if obj is None:
            secret = {"kind": "Secret", "apiVersion": "v1", "type": "k3s.cattle.io/node-password", "immutable": True,
                      "metadata": {"name": name.lower() + ".node-password.k3s", "namespace": "kube-system"},
                      "data": {"hash": base64.b64encode(scrypt_hash(password).encode()).decode()}}
            try:
                self.store.create(key, self._dump(secret))
            except Conflict:
                return self.check_node_password(name, password)
            return True
        return scrypt_verify(password, base64.b64decode(obj["data"]["hash"]).decode())

    # pods (the packaged components k3s deploys, enough for drain) --------------------------
    def list_pods(self, namespace: str | None = None, field: str = "", selector: str = "") -> list[dict]:
        pods = self._list(PODS + (namespace + "/" if namespace else ""))
        for term in [t for t in field.split(",") if t]:
            k, _, v = term.partition("=")
            v = v.lstrip("=")
            if k == "spec.nodeName":
                pods = [p for p in pods if p.get("spec", {}).get("nodeName", "") == v]
            elif k == "metadata.name":
                pods = [p for p in pods if p["metadata"]["name"] == v]
        return [p for p in pods if match_labels(p["metadata"].get("labels", {}), selector)]

    def seed_pods(self, disabled: set[str]) -> None:
        """Once per cluster: the Deployments k3s's packaged manifests create (one replica each)."""
        if self.store.get("/registry/standin/pods-seeded"):
            return
        self.store.put("/registry/standin/pods-seeded", b"1")
        comps = [("coredns", "coredns", {"k8s-app": "kube-dns"}, False),
                 ("local-storage", "local-path-provisioner", {"app": "local-path-provisioner"}, False),
                 ("metrics-server", "metrics-server", {"k8s-app": "metrics-server"}, True),
                 ("traefik", "traefik", {"app.kubernetes.io/name": "traefik"}, False)]
        for comp, name, labels, emptydir in comps:
            if comp in disabled:
                continue
            self._create_pod(name, labels, "ReplicaSet", f"{name}-{secrets.token_hex(5)[:10]}", emptydir, None)
        self.store.put("/registry/standin/daemonsets",
                       json.dumps({"svclb-traefik": "traefik" not in disabled and "servicelb" not in disabled}).encode())

    def _create_pod(self, base: str, labels: dict, owner_kind: str, owner: str, emptydir: bool, node: str | None):
        suffix = secrets.token_hex(3)[:5] if owner_kind == "DaemonSet" else secrets.token_hex(5)[:5]
        name = f"{owner}-{suffix}"
        pod = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": "kube-system", "uid": str(uuid.uuid4()),
                            "labels": dict(labels), "creationTimestamp": util.now_rfc3339(),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                                 "controller": True, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, owner))}]},
               "spec": {"containers": [{"name": base, "image": f"rancher/mirrored-{base}:standin"}],
                        "volumes": [{"name": "tmp-dir", "emptyDir": {}}] if emptydir else []},
               "status": {"phase": "Pending"}}
        if node:
            pod["spec"]["nodeName"] = node
            pod["status"]["phase"] = "Running"
        self.store.put(PODS + f"kube-system/{name}", self._dump(pod))
        return pod

    def _delete_pod(self, pod: dict, reschedule: bool) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.store.delete(PODS + f"{ns}/{name}")
        owner = (pod["metadata"].get("ownerReferences") or [{}])[0]
        if reschedule and owner.get("kind") == "ReplicaSet":
            vols = pod["spec"].get("volumes") or []
            self._create_pod(pod["spec"]["containers"][0]["name"], pod["metadata"].get("labels", {}), "ReplicaSet",
                             owner["name"], bool(vols), None)

    def evict_pod(self, ns: str, name: str) -> None:
        obj, _ = self._get(PODS + f"{ns}/{name}")
        if obj is None:
            raise not_found("pods", name)
        self._delete_pod(obj, reschedule=True)
        self.schedule_pending()

    def delete_pod(self, ns: str, name: str) -> dict:
        obj, _ = self._get(PODS + f"{ns}/{name}")
        if obj is None:
            raise not_found("pods", name)
        self._delete_pod(obj, reschedule=True)
        return obj

    def schedule_pending(self) -> None:
        nodes = [n for n in self._list(NODES) if node_ready(n) and not n.get("spec", {}).get("unschedulable")
                 and not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in n.get("spec", {}).get("taints") or [])]
        if not nodes:
            return
        for pod in self._list(PODS):
            if not pod["spec"].get("nodeName") and pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet":
                node = sorted(nodes, key=lambda n: n["metadata"]["name"])[hash(pod["metadata"]["name"]) % len(nodes)]
                pod["spec"]["nodeName"] = node["metadata"]["name"]
                pod["status"]["phase"] = "Running"
                self.store.put(PODS + f"kube-system/{pod['metadata']['name']}", self._dump(pod))

    def ensure_daemonset_pods(self) -> None:
        raw = self.store.get("/registry/standin/daemonsets")
        if not raw or not json.loads(raw[0]).get("svclb-traefik"):
            return
        have = {p["spec"].get("nodeName") for p in self._list(PODS + "kube-system/")
                if p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"}
        for node in self._list(NODES):
            name = node["metadata"]["name"]
            if name not in have:
                self._create_pod("lb-tcp-80", {"app": "svclb-traefik"}, "DaemonSet", "svclb-traefik", False, name)


def _mark_unknown(node: dict) -> dict:
    now = util.now_rfc3339()
    conds = node.setdefault("status", {}).setdefault("conditions", [])
    for c in conds:
        if c.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
    taints = node.setdefault("spec", {}).setdefault("taints", [])
    for effect in ("NoSchedule", "NoExecute"):
        if not any(t.get("key") == UNREACHABLE and t.get("effect") == effect for t in taints):
            taints.append({"key": UNREACHABLE, "effect": effect, "timeAdded": now} if effect == "NoExecute"
                          else {"key": UNREACHABLE, "effect": effect})
    return node


def mark_ready(node: dict) -> dict:
    now = util.now_rfc3339()
    conds = node.setdefault("status", {}).setdefault("conditions", [])
    wanted = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    }
    for typ, (st, reason, msg) in wanted.items():
        c = next((c for c in conds if c.get("type") == typ), None)
        if c is None:
            c = {"type": typ}
            conds.append(c)
        if c.get("status") != st:
            c["lastTransitionTime"] = now
        c.update(status=st, reason=reason, message=msg, lastHeartbeatTime=now)
    spec = node.setdefault("spec", {})
    spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE]
    if not spec["taints"]:
        spec.pop("taints")
    return node


# ---------------------------------------------------------------------------------------------
class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, ssl_ctx, app):
        self.ssl_ctx = ssl_ctx
        self.app = app
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(conn, client_address, self)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k3s-standin"

    def log_message(self, fmt, *args):  # quiet; errors are logged explicitly
        util.debug("http: " + fmt % args)

    # helpers -------------------------------------------------------------------------------
    def _send(self, code: int, body, ctype: str = "application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _status(self, code: int, reason: str, message: str, details=None):
        self._send(code, status_obj(code, reason, message, details))

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid JSON in request body") from None

    def _basic(self):
        h = self.headers.get("Authorization", "")
        if h.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                return user, pw
            except (ValueError, UnicodeDecodeError):
                return None
        return None

    def _client_cert(self):
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not cert:
            return None
        cn, orgs = "", []
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
                elif k == "organizationName":
                    orgs.append(v)
        return cn, orgs

    # routing -------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path == "/cacerts":
                return self._send(200, app.server_ca, "text/plain")
            if path == "/ping":
                return self._send(200, "pong", "text/plain")
            if path.startswith("/v1-k3s/") or path == "/db/info":
                return self._supervisor(app, path, q)
            return self._kube(app, path, q)
        except ApiError as exc:
            self._status(exc.code, exc.reason, exc.message, exc.details)
        except StoreUnavailable as exc:
            util.error(f"datastore unavailable: {exc}")
            self._status(500, "InternalError", f"Internal error occurred: etcdserver: request timed out ({exc})")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # supervisor (k3s) ----------------------------------------------------------------------
    def _supervisor(self, app, path, q):
        creds = self._basic()
        cert = self._client_cert()
        user = app.check_password(*creds) if creds else None
        groups = set()
        if user == "server":
            groups = {"k3s:server", "k3s:agent"}
        elif user == "node":
            groups = {"k3s:agent"}
        if cert and "system:nodes" in cert[1]:
            groups.add("system:nodes")
        if cert and "system:masters" in cert[1]:
            groups.add("k3s:server")
        server_paths = ("/v1-k3s/server-bootstrap", "/v1-k3s/token", "/v1-k3s/encrypt/status",
                        "/v1-k3s/encrypt/config", "/v1-k3s/cert/cacerts", "/db/info")
        if path in server_paths:
            if "k3s:server" not in groups:
                return self._status(401, "Unauthorized", "Unauthorized")
        elif not groups:
            return self._status(401, "Unauthorized", "Unauthorized")
        if path == "/v1-k3s/server-bootstrap":
            if app.datastore_kind != "etcd":
                util.info(f"Received HTTP bootstrap request from {self.client_address[0]}, but embedded etcd is not enabled.")
                return self._send(400, "etcd disabled", "text/plain")
            return self._send(200, app.bootstrap_for_joiner())
        if path == "/db/info":
            if app.datastore_kind != "etcd":
                return self._send(400, "etcd disabled", "text/plain")
            return self._send(200, {"members": app.etcd_members()})
        if path == "/v1-k3s/readyz":
            ok, _ = app.ready()
            return self._send(200 if ok else 503, "ok" if ok else "runtime core not ready", "text/plain")
        if path == "/v1-k3s/apiservers":
            return self._send(200, app.apiservers())
        if path == "/v1-k3s/config":
            return self._send(200, app.agent_config())
        if path in ("/v1-k3s/client-kubelet.crt", "/v1-k3s/serving-kubelet.crt"):
            name = self.headers.get("K3s-Node-Name", "")
            pw = self.headers.get("K3s-Node-Password", "")
            if not name or not pw:
                return self._status(400, "BadRequest", "missing node name or password header")
            if not app.cluster.check_node_password(name, pw):
                util.error(f"Node password validation failed for '{name}', using passwd file 'nodepassword'")
                return self._status(403, "Forbidden", "unable to verify password for node " + name)
            crt, key = app.issue_kubelet_cert(name, self.headers.get("K3s-Node-IP", ""))
            return self._send(200, crt + key, "text/plain")
        if path in ("/v1-k3s/server-ca.crt", "/v1-k3s/client-ca.crt"):
            return self._send(200, app.server_ca if "server" in path else app.client_ca, "text/plain")
        return self._status(404, "NotFound", "the server could not find the requested resource")

    # kube-apiserver ------------------------------------------------------------------------
    def _kube(self, app, path, q):
        cert = self._client_cert()
        if not cert:
            return self._status(401, "Unauthorized", "Unauthorized")
        cn, orgs = cert
        admin = "system:masters" in orgs
        node_name = cn[len("system:node:"):] if cn.startswith("system:node:") and "system:nodes" in orgs else None
        if path in ("/readyz", "/healthz", "/livez"):
            ok, checks = app.ready(path != "/livez")
            if "verbose" in q:
                body = "".join(f"[{'+' if c_ok else '-'}]{c} {'ok' if c_ok else 'failed: reason withheld'}\n" for c, c_ok in checks)
                body += f"{path[1:]} check {'passed' if ok else 'failed'}\n"
            else:
                body = "ok" if ok else "".join(f"[-]{c} failed: reason withheld\n" for c, c_ok in checks if not c_ok) + f"{path[1:]} check failed"
            return self._send(200 if ok else 500, body, "text/plain; charset=utf-8")
        if path == "/version":
            return self._send(200, app.version_info())
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if not app.datastore_ok():
            raise StoreUnavailable("datastore health check failed")
        parts = path.strip("/").split("/")
        verb = self.command
        # /api/v1/nodes[/name[/status]]
        if parts[:3] == ["api", "v1", "nodes"]:
            if len(parts) == 3:
                if verb == "GET":
                    items = app.cluster.list_nodes(q.get("labelSelector", ""), q.get("fieldSelector", ""))
                    return self._send(200, {"kind": "NodeList", "apiVersion": "v1",
                                            "metadata": {"resourceVersion": ""}, "items": items})
                if verb == "POST":
                    body = self._body() or {}
                    if not (admin or node_name == body.get("metadata", {}).get("name")):
                        return self._forbidden(cn, "create", "nodes")
                    return self._send(201, app.cluster.create_node(body))
            else:
                name = parts[3]
                if not (admin or node_name == name or (verb == "GET" and node_name)):
                    return self._forbidden(cn, verb.lower(), "nodes", name)
                if verb == "GET":
                    return self._send(200, app.cluster.get_node(name))
                if verb == "PATCH":
                    ctype = self.headers.get("Content-Type", "")
                    ptype = "json" if "json-patch" in ctype else "merge"
                    body = self._body()
                    return self._send(200, app.cluster.patch_node(name, body, ptype))
                if verb == "PUT":
                    return self._send(200, app.cluster.replace_node(name, self._body() or {}))
                if verb == "DELETE":
                    if not admin:
                        return self._forbidden(cn, "delete", "nodes", name)
                    app.cluster.delete_node(name)
                    return self._send(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                            "details": {"name": name, "kind": "nodes", "uid": ""}})
            return self._status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if parts[:5] == ["apis", "coordination.k8s.io", "v1", "namespaces", "kube-node-lease"] and len(parts) == 7:
            name = parts[6]
            if not (admin or node_name == name):
                return self._forbidden(cn, verb.lower(), "leases", name)
            self._body()
            app.cluster.renew_lease(name)
            return self._send(200, {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": name}})
        if parts[:3] == ["api", "v1", "pods"] and verb == "GET":
            items = app.cluster.list_pods(None, q.get("fieldSelector", ""), q.get("labelSelector", ""))
            return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5 and parts[4] == "pods":
            ns = parts[3]
            if not admin:
                return self._forbidden(cn, verb.lower(), "pods")
            if len(parts) == 5 and verb == "GET":
                items = app.cluster.list_pods(ns, q.get("fieldSelector", ""), q.get("labelSelector", ""))
                return self._send(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
            if len(parts) == 7 and parts[6] == "eviction" and verb == "POST":
                self._body()
                app.cluster.evict_pod(ns, parts[5])
                return self._send(201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})
            if len(parts) == 6 and verb == "DELETE":
                return self._send(200, app.cluster.delete_pod(ns, parts[5]))
            if len(parts) == 6 and verb == "GET":
                pods = app.cluster.list_pods(ns, "metadata.name=" + parts[5])
                if not pods:
                    raise not_found("pods", parts[5])
                return self._send(200, pods[0])
        return self._status(404, "NotFound", "the server could not find the requested resource")

    def _forbidden(self, user, verb, resource, name=""):
        msg = f'{resource} {json.dumps(name) + " " if name else ""}is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "" at the cluster scope'
        return self._status(403, "Forbidden", msg, {"name": name, "kind": resource})


def serve(app, host: str, port: int, certfile: str, keyfile: str, client_ca: str) -> TLSServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    srv = TLSServer((host, port), Handler, ctx, app)
    t = threading.Thread(target=srv.serve_forever, name="https", daemon=True)
    t.start()
    return srv
