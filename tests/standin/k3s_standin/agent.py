"""The node agent (kubelet's part that the collection sees): token/CA validation loop, node
password, kubelet client certificate from the supervisor, Node registration with k3s's labels
and annotations, lease heartbeats, failover between known servers.

Sources: K3S-REFERENCE.md §1 (CA hash check, messages, node password), §3 (labels,
annotations, load balancer file, readiness), k3s pkg/agent/config/config.go (2 s retry loop);
flannel's interface: k3s pkg/agent/flannel/setup.go + flannel.go (below, start_flannel)."""
from __future__ import annotations

import ipaddress
import json
import os
import platform
import random
import re
import secrets
import socket
import ssl
import threading
import time

from . import client, images, registries, sandbox, token as tokmod, util
from .apiserver import mark_ready


def node_password_file() -> str:
    return os.path.join(util.ETC_RANCHER, "node", "password")


def ensure_node_password() -> str:
    path = node_password_file()
    if os.path.exists(path):
        return open(path, encoding="utf-8").read().strip()
    pw = secrets.token_hex(16)
    util.write_file(path, pw + "\n", 0o600)
    return pw


def node_id() -> str:
    path = os.path.join(util.ETC_RANCHER, "node", "id")
    if os.path.exists(path):
        return open(path, encoding="utf-8").read().strip()
    nid = secrets.token_hex(4)
    util.write_file(path, nid + "\n", 0o600)
    return nid


def parse_taint(spec: str) -> dict:
    m = re.fullmatch(r"([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)", spec.strip())
    if not m:
        raise util.Fatal(f'failed to parse taint "{spec}": invalid taint spec')
    t = {"key": m.group(1), "effect": m.group(3)}
    if m.group(2):
        t["value"] = m.group(2)
    return t


def parse_label(spec: str) -> tuple[str, str]:
    if "=" not in spec:
        raise util.Fatal(f'invalid node label "{spec}": must be key=value')
    k, v = spec.split("=", 1)
    return k.strip(), v.strip()


class ValidationError(Exception):
    pass


def validate_server(url: str, tok: tokmod.Token) -> bytes | None:
    """k3s clientaccess.ParseAndValidateToken (pkg/clientaccess/token.go): getCACerts, then
    validateCAHash. Returns the CA bundle, or None when the host's CA bundle already trusts the
    server (k3s then uses its default client and checks no hash)."""
    if not url.startswith("https://"):
        raise ValidationError(f"only https:// URLs are supported, invalid scheme: {url}")
    try:
        client.request(url + "/cacerts", ctx=client.context(), timeout=10)
        trusted = True
    except (client.HTTPFailure, ssl.SSLError):
        trusted = False
    if trusted:
        if tok.ca_hash:
            util.warn("Cluster CA certificate is trusted by the host CA bundle. Token CA hash will not be validated.")
        return None
    try:
        _, ca, _ = client.request(url + "/cacerts", ctx=client.context(verify=False), timeout=10)
    except client.HTTPFailure as exc:
        raise ValidationError(f"failed to get CA certs: {exc}") from None
    try:
        client.request(url + "/cacerts", ctx=client.context(ca), timeout=10)
    except (client.HTTPFailure, ssl.SSLError, ValueError) as exc:
        raise ValidationError(f"CA cert validation failed: {exc}") from None
    actual = tokmod.ca_hash(ca)
    if not tok.ca_hash:
        util.warn("Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a "
                  "CA hash. Use the full token from the server's node-token file to enable Cluster CA validation.")
    elif tok.ca_hash != actual:
        raise ValidationError(tokmod.hash_mismatch_message(tok.ca_hash, actual))
    return ca


class NodeAgent:
    def __init__(self, opts: dict, servers: list[str], tok: tokmod.Token, node_name: str, node_ip: str,
                 role_labels: dict | None = None, annotations: dict | None = None, is_server: bool = False):
        self.opts = opts
        self.data_dir = opts["data-dir"]
        self.agent_dir = os.path.join(self.data_dir, "agent")
        self.servers = list(dict.fromkeys(servers))
        self.tok = tok
        self.node_name = node_name
        self.node_ip = node_ip
        self.role_labels = role_labels or {}
        self.annotations = annotations or {}
        self.is_server = is_server
        self.ca = None
        self.ctx = None
        self.server_config: dict = {}
        self.stop = threading.Event()
        # k3s's client load balancer (pkg/agent/loadbalancer: New -> updateConfig -> setServers):
        # the servers saved in etc/k3s-agent-load-balancer.json replace the configured one when
        # the file was written for the same --server URL, in random order (rand.Shuffle; the
        # first is the current server); the configured server is added last when not among them.
        self.server_url = self.servers[0]
        # lb.ServerAddresses: what the file holds, the set an Update is compared with (servers.go setServers)
        self.lb_addresses = {self.server_url[8:]}
        self.lb_file = os.path.join(self.agent_dir, "etc", "k3s-agent-load-balancer.json")
        if not is_server:
            self._load_lb_file()

    def _load_lb_file(self) -> None:
        """loadbalancer.go New -> updateConfig: the saved servers when the file was written for
        this --server URL, else the file (re)written with the configured server alone."""
        try:
            saved = json.load(open(self.lb_file, encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        if not isinstance(saved, dict) or saved.get("ServerURL") != self.server_url:
            self._write_lb_file(sorted(self.lb_addresses))
            return
        known = list(dict.fromkeys(f"https://{a}" for a in saved.get("ServerAddresses") or []))
        if known:
            self.lb_addresses = {u[8:] for u in known}
        random.shuffle(known)
        self.servers = list(dict.fromkeys(known + self.servers))
        util.info(f"Running load balancer k3s-agent-load-balancer 127.0.0.1:"
                  f"{self.opts.get('lb-server-port', 6444)} -> {[s[8:] for s in self.servers]}")

    def _write_lb_file(self, addresses: list[str]) -> None:
        util.write_file(self.lb_file, json.dumps({"ServerURL": self.server_url, "ServerAddresses": addresses},
                                                 indent=2), 0o600)

    def _dial(self) -> str:
        """The load balancer's dialContext: the current server if a TCP connection to it opens,
        else the next one that accepts ("Dial server in load balancer failed over to ...", at
        debug level as in k3s); the current one again when every server failed (the caller retries)."""
        for url in list(self.servers):
            host, _, port = url[8:].rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
            except OSError as exc:
                util.debug(f"Dial error from load balancer: {exc}")
                continue
            if url != self.servers[0]:
                util.debug(f"Dial server in load balancer failed over to {url[8:]}")
                self.servers.remove(url)
                self.servers.insert(0, url)
            return url
        return self.servers[0]

    # connection --------------------------------------------------------------------------
    def connect(self) -> None:
        """Loop until the token validates and a kubelet client certificate is issued."""
        node_pw = ensure_node_password()
        while not self.stop.is_set():
            url = self._dial() if not self.is_server else self.servers[0]
            try:
                self.ca = validate_server(url, self.tok)
                hdrs = {"Authorization": self.tok.auth_header(), "K3s-Node-Name": self.node_name,
                        "K3s-Node-Password": node_pw, "K3s-Node-IP": self.node_ip}
                try:
                    _, body, _ = client.request(url + "/v1-k3s/client-kubelet.crt", ctx=client.context(self.ca),
                                                headers=hdrs, timeout=10)
                except client.HTTPFailure as exc:
                    if exc.code == 401:
                        raise ValidationError(f"token is not valid: {exc}") from None
                    if exc.code == 403:
                        util.info("Waiting to retrieve agent configuration; server is not ready: Node password "
                                  "rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not "
                                  "match server node-passwd entry, try enabling a unique node name with the "
                                  "--with-node-id flag")
                        self.stop.wait(5)
                        continue
                    raise ValidationError(str(exc)) from None
                pem = body.decode()
                key_at = pem.index("-----BEGIN EC PRIVATE KEY-----")
                crt, key = pem[:key_at].encode(), pem[key_at:].encode()
                os.makedirs(self.agent_dir, exist_ok=True)
                util.write_file(os.path.join(self.agent_dir, "client-kubelet.crt"), crt, 0o644)
                util.write_file(os.path.join(self.agent_dir, "client-kubelet.key"), key, 0o600)
                util.write_file(os.path.join(self.agent_dir, "server-ca.crt"), self.ca or b"", 0o644)
                self.ctx = client.context(self.ca, crt, key)
                try:  # k3s's get() reads it too; agents take e.g. the flannel backend from it
                    _, body, _ = client.request(url + "/v1-k3s/config", ctx=client.context(self.ca),
                                                headers={"Authorization": self.tok.auth_header()}, timeout=10)
                    self.server_config = json.loads(body)
                except (client.HTTPFailure, ValueError) as exc:
                    raise ValidationError(f"failed to retrieve configuration from server: {exc}") from None
                self._learn_servers(url)
                return
            except ValidationError as exc:
                util.error(f"Failed to validate connection to cluster at {url}: {exc}")
                self.stop.wait(2)

    def _learn_servers(self, url: str) -> None:
        """k3s's agent tunnel watches the apiserver endpoints and calls the load balancer's
        Update (pkg/agent/tunnel/tunnel.go; loadbalancer.go Update -> setServers -> writeConfig):
        when the set of addresses differs from the one the balancer holds (the saved file's, read
        at start), the server list becomes those addresses, the configured server kept last as the
        fallback, and the file is rewritten without it unless the endpoints name it."""
        if self.is_server:
            return
        try:
            _, body, _ = client.request(url + "/v1-k3s/apiservers", ctx=client.context(self.ca),
                                        headers={"Authorization": self.tok.auth_header()}, timeout=5)
            addrs = list(dict.fromkeys(json.loads(body)))
        except (client.HTTPFailure, ValueError):
            return
        if not addrs or set(addrs) == self.lb_addresses:
            return
        self.lb_addresses = set(addrs)
        current = self.servers[0]
        servers = [f"https://{a}" for a in addrs]
        servers = ([current] if current in servers else []) + [u for u in servers if u != current]
        self.servers = list(dict.fromkeys(servers + [self.server_url]))
        util.info(f"Updating load balancer k3s-agent-load-balancer server addresses -> {[u[8:] for u in self.servers]}")
        self._write_lb_file(sorted(addrs))

    def api(self, method: str, path: str, body=None, ctype="application/json"):
        last = None
        for url in list(self.servers):
            try:
                _, data, _ = client.request(url + path, method, body, self.ctx, timeout=8, ctype=ctype)
                if url != self.servers[0]:
                    self.servers.remove(url)
                    self.servers.insert(0, url)
                    util.info(f"Running load balancer k3s-agent-load-balancer 127.0.0.1:{self.opts.get('lb-server-port', 6444)} -> {url[8:]}")
                return json.loads(data) if data else None
            except client.HTTPFailure as exc:
                last = exc
                if exc.code is not None and exc.code < 500:
                    raise
        raise last or client.HTTPFailure("", None, "no servers")

    # node registration -----------------------------------------------------------------------
    def node_object(self) -> dict:
        labels = {
            "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": self.node_name,
            "node.kubernetes.io/instance-type": "k3s", "beta.kubernetes.io/instance-type": "k3s",
        }
        for spec in self.opts.get("node-label") or []:
            k, v = parse_label(spec)
            labels[k] = v
        labels.update(self.role_labels)
        taints = [parse_taint(t) for t in self.opts.get("node-taint") or []]
        ann = {"k3s.io/hostname": util.hostname(), "k3s.io/internal-ip": self.node_ip,
               "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
        ann.update(self.annotations)
        node = {"kind": "Node", "apiVersion": "v1",
                "metadata": {"name": self.node_name, "labels": labels, "annotations": ann},
                "spec": {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "providerID": f"k3s://{self.node_name}"},
                "status": {"addresses": [{"type": "InternalIP", "address": self.node_ip},
                                         {"type": "Hostname", "address": self.node_name}],
                           "nodeInfo": self.node_info(), "capacity": {"cpu": str(os.cpu_count() or 1), "pods": "110"},
                           "allocatable": {"cpu": str(os.cpu_count() or 1), "pods": "110"}}}
        if taints:
            node["spec"]["taints"] = taints
        return mark_ready(node)

    def node_info(self) -> dict:
        return {"architecture": "amd64", "operatingSystem": "linux", "kernelVersion": platform.release(),
                "osImage": _os_image(), "containerRuntimeVersion": f"containerd://{util.CONTAINERD_VERSION}",
                "kubeletVersion": util.VERSION, "kubeProxyVersion": util.VERSION,
                "machineID": _read("/etc/machine-id"), "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "systemUUID": ""}

    def register(self) -> None:
        while not self.stop.is_set():
            try:
                try:
                    existing = self.api("GET", f"/api/v1/nodes/{self.node_name}")
                except client.HTTPFailure as exc:
                    if exc.code != 404:
                        raise
                    existing = None
                if existing is None:
                    self.api("POST", "/api/v1/nodes", self.node_object())
                    util.info(f"Successfully registered node {self.node_name}")
                else:
                    fresh = self.node_object()
                    # kubelet on restart refreshes default labels and status; --node-label/--node-taint
                    # apply only at registration (K3S-REFERENCE.md §3)
                    default_keys = ("kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
                                    "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
                                    "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")
                    labels = {k: fresh["metadata"]["labels"][k] for k in default_keys}
                    labels.update(self.role_labels)
                    # metadata through the node, status through nodes/status (kube-apiserver drops the
                    # other half of each: node strategy PrepareForUpdate)
                    patch = {"metadata": {"labels": labels, "annotations": fresh["metadata"]["annotations"]}}
                    self.api("PATCH", f"/api/v1/nodes/{self.node_name}", patch, "application/merge-patch+json")
                    status = {"status": {"nodeInfo": fresh["status"]["nodeInfo"], "addresses": fresh["status"]["addresses"]}}
                    self.api("PATCH", f"/api/v1/nodes/{self.node_name}/status", status, "application/merge-patch+json")
                    util.info(f"Node {self.node_name} already registered; updated status")
                self.heartbeat()
                return
            except client.HTTPFailure as exc:
                util.error(f"Unable to register node {self.node_name} with API server: {exc.status_message() or exc}")
                self.stop.wait(2)

    def heartbeat(self) -> None:
        self.api("PUT", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}",
                 {"spec": {"holderIdentity": self.node_name}})
        node = self.api("GET", f"/api/v1/nodes/{self.node_name}")
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in node["status"].get("conditions", []))
        if not ready:
            new = mark_ready(json.loads(json.dumps(node)))
            # status only: the node lifecycle controller (the server) lifts the unreachable taints
            self.api("PATCH", f"/api/v1/nodes/{self.node_name}/status",
                     {"status": {"conditions": new["status"]["conditions"]}}, "application/merge-patch+json")
            util.info(f"Node {self.node_name} status is now: NodeReady")

    def heartbeat_loop(self) -> None:
        interval = min(10.0, max(1.0, util.node_grace() / 4))
        while not self.stop.wait(interval):
            try:
                self.heartbeat()
                self._learn_servers(self.servers[0])
            except client.HTTPFailure as exc:
                if exc.code == 404:
                    util.error(f'Error updating node status, will retry: error getting node "{self.node_name}": '
                               f'nodes "{self.node_name}" not found')
                else:
                    util.error(f"Error updating node status, will retry: {exc}")


def default_route_interface(route_table: str = "/proc/net/route") -> str:
    """flannel's ip.GetDefaultGatewayInterface (IPv4): the interface of the first default route."""
    with open(route_table, encoding="utf-8") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
                if fields[0] == "*":  # blackhole/unreachable: a route with no link
                    raise LookupError("found default route but could not determine interface")
                return fields[0]
    raise LookupError("unable to find default route")


def start_flannel(opts: dict, backend: str) -> None:
    """What the collection can see of k3s starting flannel once the node is registered: without
    --flannel-iface flannel takes the default route's interface (even when --node-ip is set),
    and k3s exits when it has none: logrus.Fatalf("flannel exited: %v") around
    errors.Wrap(err, "failed to get default interface") (k3s pkg/agent/flannel/setup.go Run,
    flannel.go LookupExtInterface). Hence docs.k3s.io/installation/airgap: an air-gapped node
    needs a default route, "even a black-hole route via a dummy interface"."""
    if backend == "none" or opts.get("flannel-iface"):
        return
    try:
        iface = default_route_interface()
    except LookupError as exc:
        raise util.Fatal(f"flannel exited: failed to get default interface: {exc}") from None
    util.info(f"Starting flannel with backend {backend}; the interface {iface} will be used by flannel")


def prepare_runtime(opts: dict) -> None:
    """What k3s does before the kubelet: containerd config from registries.yaml, airgap import."""
    agent_dir = os.path.join(opts["data-dir"], "agent")
    regs = registries.load(opts.get("private-registry") or "/etc/rancher/k3s/registries.yaml")
    registries.write_containerd_config(agent_dir, regs, disable_default=opts.get("disable-default-registry-endpoint"))
    threading.Thread(target=registries.probe_all, args=(regs, agent_dir), daemon=True).start()
    images.import_dir(agent_dir)


def _read(path: str) -> str:
    try:
        return open(path, encoding="utf-8").read().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def run_agent(opts: dict) -> int:
    if not opts.get("server"):
        raise util.Fatal("Error: --server is required")
    tok_raw = opts.get("token") or ""
    if opts.get("token-file"):
        try:
            tok_raw = open(opts["token-file"], encoding="utf-8").read().strip()
        except OSError as exc:
            raise util.Fatal(f"Error: failed to read token file {opts['token-file']}: {exc}") from None
    if not tok_raw:
        if not (os.path.exists(os.path.join(opts["data-dir"], "agent", "client-kubelet.crt"))
                and os.path.exists(os.path.join(opts["data-dir"], "agent", "client-kubelet.key"))):
            raise util.Fatal("Error: --token is required")
    if os.geteuid() != 0 and not opts.get("rootless"):
        raise util.Fatal("Error: agent must be run as root, or with --rootless")
    url = opts["server"].rstrip("/")
    if not url.startswith("https://"):
        raise util.Fatal(f"Error: only https:// URLs are supported, invalid scheme: {url}")
    try:
        tok = tokmod.parse(tok_raw, "node")
    except tokmod.TokenError as exc:
        raise util.Fatal(f"Error: failed to normalize token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> "
                         f"or <PASSWORD>: {exc}") from None
    if tok.username:
        tok = tokmod.Token(tok.ca_hash, "node", tok.password)  # k3s WithUser("node")
    util.info(f"Starting k3s agent {util.VERSION} ({util.COMMIT[:8]})")
    node_name, node_ip = node_identity(opts)
    prepare_runtime(opts)
    agent = NodeAgent(opts, [url], tok, node_name, node_ip)
    agent.connect()
    agent.register()
    start_flannel(opts, agent.server_config.get("FlannelBackend") or "vxlan")
    sandbox.start(opts["data-dir"], node_name)
    util.info("k3s agent is up and running")
    util.sd_notify("READY=1\nSTATUS=k3s agent is up and running")
    import signal

    signal.signal(signal.SIGTERM, lambda *_: agent.stop.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop.set())
    agent.heartbeat_loop()
    util.info("Shutting down k3s agent")
    return 0


def parse_ips(flag: str, values: list[str]) -> list[str]:
    """k3s pkg/util/net.go ParseStringSliceToIPs: every comma-separated value must be an IP
    (Go net.ParseIP: no names, no zone, no brackets); else a fatal "invalid <flag>: invalid ip
    format '<value>'" at start (GetHostnameAndIPs wraps it for node-ip)."""
    out = []
    for value in values:
        try:
            if "%" in value:
                raise ValueError(value)
            out.append(str(ipaddress.ip_address(value)))
        except ValueError:
            raise util.Fatal(f"invalid {flag}: invalid ip format '{value}'") from None
    return out


def node_identity(opts: dict) -> tuple[str, str]:
    """k3s pkg/util/net.go GetHostnameAndIPs: --node-name, else os.Hostname(), lower-cased (not cut
    at a dot); --node-ip parsed as IPs, else the default route's address."""
    ips = parse_ips("node-ip", opts.get("node-ip") or [])
    parse_ips("node-external-ip", opts.get("node-external-ip") or [])
    name = (opts.get("node-name") or util.hostname()).lower()
    if opts.get("with-node-id"):
        name = f"{name}-{node_id()}"
    ip = ips[0] if ips else util.default_ip()
    return name, ip
