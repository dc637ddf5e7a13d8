#!/usr/bin/env python3
"""The test fleet: Debian bookworm nodes as privileged systemd containers, reached over SSH.

    fleet.py image                                  build the node image (reused while its recipe is unchanged)
    fleet.py up --name NAME --masters 1 --nodes 2   start nodes, wait for SSH, write Clusterfile + inventory
    fleet.py down --name NAME                       remove nodes, network and volumes of that fleet
    fleet.py ssh --name NAME NODE [CMD...]          a shell (or command) on one node
    fleet.py clusterfile --name NAME --masters 2 --nodes 1 --out FILE
                                                    a Clusterfile listing the first masters and nodes

Everything a fleet creates carries the podman label seal.fleet=NAME, so `up` and `down` also
remove what a crashed earlier run left behind. Usable from Python too: up(), down(), load().
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(ROOT, ".cache", "fleet")
IMAGE_REPO = "localhost/seal-fleet-node"
LABEL = "seal.fleet"
SUITE = "bookworm"
MIRROR = os.environ.get("SEAL_FLEET_MIRROR", "http://deb.debian.org/debian")
RECIPE = ("node-packages.txt", "node-setup.sh")
SSH_TIMEOUT = float(os.environ.get("SEAL_FLEET_SSH_TIMEOUT", "120"))
# A booting node that has not finished booting by then (longer under load: boot_timeout) counts as
# stalled and is replaced.
BOOT_TIMEOUT = 60.0
BOOT_ATTEMPTS = 3
# Nodes boot in waves of this many at once (each worker starts a node and waits until systemd
# reports the boot finished, then SSH answers): 30 systemd containers booting at once on two
# cores starve each other, and a fixed SSH timeout then takes a slow boot for a dead one.
BOOT_WAVE = int(os.environ.get("SEAL_FLEET_BOOT_WAVE", "6"))
# The fleet is offline: its network is internal (no gateway, no NAT) and without DNS. k3s still
# needs a default route (flannel takes the interface holding it; docs.k3s.io/installation/airgap,
# "Default Network Route"), so each node gets one via an address nobody answers for (TEST-NET-3,
# as those docs use): a black hole on the fleet's interface, not a way out.
BLACKHOLE_GATEWAY = "203.0.113.255"


class FleetError(RuntimeError):
    pass


NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", re.M)


def prefixed(name: str) -> str:
    """name under $SEAL_FLEET_PREFIX (empty by default): podman, ~/.seal and the controller's
    known hosts are shared by every checkout on the machine, so a checkout (a CI run, a second
    worktree) that sets a prefix of its own keeps all its default fleet names apart from the
    others' (`make test` and the Molecule scenarios' platforms use it too)."""
    prefix = os.environ.get("SEAL_FLEET_PREFIX", "")
    if not NAME_RE.fullmatch(prefix + name):
        raise ValueError(f"$SEAL_FLEET_PREFIX={prefix!r} + {name!r} is not a fleet name (lowercase letters, digits and '-', "
                         "at most 32, starting and ending with a letter or digit)")
    return prefix + name


def changed_by_host(recap: str) -> dict[str, int]:
    """Each host's changed count in a playbook's PLAY RECAP, for hosts with none unreachable or failed."""
    return {host: int(n) for host, n in RECAP.findall(recap)}


def name_from_env(variable: str, default: str) -> str:
    """A test's fleet name: $variable when set (taken as it is), else default under
    $SEAL_FLEET_PREFIX (podman is shared: each user of the machine runs its fleets under its own
    prefix). The name becomes host, container, network and cluster names, so it must be a short
    DNS label."""
    name = os.environ.get(variable)
    if not name:
        return prefixed(default)
    if not NAME_RE.fullmatch(name):
        raise ValueError(f"${variable}={name!r} is not a fleet name (lowercase letters, digits and '-', "
                         "at most 32, starting and ending with a letter or digit)")
    return name


def log(msg: str) -> None:
    print(f"fleet: {msg}", file=sys.stderr, flush=True)


def containers_conf() -> str:
    """Write containers.conf with ulimits under this host's hard limits; return its path."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1] // 2, 65536)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1] // 4, 16384)
    with open(os.path.join(HERE, "containers.conf"), encoding="utf-8") as f:
        text = f.read().replace("@NOFILE@", str(nofile)).replace("@NPROC@", str(nproc))
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, "containers.conf")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        # a temporary file of this process's own: test workers write it at the same time
        fd, tmp = tempfile.mkstemp(prefix="containers.conf.", dir=CACHE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def podman(*args: str, check: bool = True, capture: bool = True, stdin: str | None = None) -> str:
    env = dict(os.environ, CONTAINERS_CONF=containers_conf())
    proc = subprocess.run(
        ["podman", *args], env=env, input=stdin, text=True,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE,
    )
    if check and proc.returncode != 0:
        raise FleetError(f"podman {' '.join(args[:3])}... failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout or ""


@contextlib.contextmanager
def locked(name: str):
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, f"{name}.lock"), "w", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def recipe_hash() -> str:
    h = hashlib.sha256(f"{SUITE}\n{MIRROR}\n".encode())
    for name in RECIPE:
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()[:16]


def packages() -> list[str]:
    with open(os.path.join(HERE, "node-packages.txt"), encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]


def image() -> str:
    """Return the node image reference, building it first if its recipe changed."""
    ref = f"{IMAGE_REPO}:{recipe_hash()}"
    with locked("image"):
        if _image_exists(ref):
            return ref
        started = time.monotonic()
        log(f"building node image {ref} (debootstrap {SUITE})")
        workdir = tempfile.mkdtemp(prefix="build-", dir=CACHE)
        try:
            rootfs = os.path.join(workdir, "rootfs")
            debs = os.path.join(CACHE, "debs")
            os.makedirs(debs, exist_ok=True)
            _run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}", SUITE, rootfs, MIRROR])
            _provision(rootfs)
            tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
            env = dict(os.environ, CONTAINERS_CONF=containers_conf())
            subprocess.run(
                ["podman", "import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
                 "-", ref], stdin=tar.stdout, env=env, check=True, stdout=subprocess.DEVNULL)
            if tar.wait() != 0:
                raise FleetError("tar of the node rootfs failed")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        for old in podman("images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO).split():
            if old != ref:
                podman("rmi", old, check=False)
        log(f"node image built in {time.monotonic() - started:.1f}s")
        return ref


def _provision(rootfs: str) -> None:
    """apt-get the node packages inside the chroot (resolves dependencies better than
    debootstrap --include), then run node-setup.sh."""
    shutil.copy("/etc/resolv.conf", os.path.join(rootfs, "etc", "resolv.conf"))
    shutil.copy(os.path.join(HERE, "node-setup.sh"), os.path.join(rootfs, "node-setup.sh"))
    proc = os.path.join(rootfs, "proc")
    _run(["mount", "-t", "proc", "proc", proc])
    try:
        env = "DEBIAN_FRONTEND=noninteractive"
        _run(["chroot", rootfs, "env", env, "apt-get", "-q", "update"])
        _run(["chroot", rootfs, "env", env, "apt-get", "-q", "-y", "--no-install-recommends", "install", *packages()])
        _run(["chroot", rootfs, "/bin/sh", "/node-setup.sh"])
    finally:
        _run(["umount", "-l", proc])
    os.unlink(os.path.join(rootfs, "node-setup.sh"))
    os.unlink(os.path.join(rootfs, "etc", "resolv.conf"))


def _image_exists(ref: str) -> bool:
    env = dict(os.environ, CONTAINERS_CONF=containers_conf())
    return subprocess.run(["podman", "image", "exists", ref], env=env).returncode == 0


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise FleetError(f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")


def state_dir(name: str, out: str | None = None) -> str:
    return os.path.abspath(out or os.path.join(CACHE, name))


def down(name: str, out: str | None = None) -> None:
    """Remove every container, network and volume labelled for this fleet (idempotent)."""
    flt = f"label={LABEL}={name}"
    ids = podman("ps", "-a", "-q", "--filter", flt).split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids)
    for net in podman("network", "ls", "-q", "--filter", flt).split():
        podman("network", "rm", "-f", net)
    for vol in podman("volume", "ls", "-q", "--filter", flt).split():
        podman("volume", "rm", "-f", vol)
    path = state_dir(name, out)
    if os.path.exists(os.path.join(path, "state.json")):
        shutil.rmtree(path, ignore_errors=True)


def up(name: str, masters: int = 1, nodes: int = 0, out: str | None = None,
       cluster_image: str = "k3s:v1.25.3", host_extra: dict | None = None, spec_extra: dict | None = None) -> dict:
    """Start the fleet; host_extra adds Clusterfile fields per role, e.g. {"node": {"labels": {...}}},
    spec_extra adds fields to the Clusterfile's spec (e.g. hostAliases)."""
    if masters < 1 or nodes < 0:
        raise FleetError("a fleet needs at least one master")
    started = time.monotonic()
    ref = image()
    down(name, out)
    path = state_dir(name, out)
    os.makedirs(path, mode=0o700, exist_ok=True)
    key = os.path.join(path, "id_ed25519")
    for f in (key, key + ".pub"):
        if os.path.exists(f):
            os.unlink(f)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"seal-fleet-{name}", "-f", key])
    password = secrets.token_urlsafe(18)
    network = f"seal-fleet-{name}"
    create_network(name, network)
    members = [(f"{name}-m{i + 1}", "master") for i in range(masters)]
    members += [(f"{name}-n{i + 1}", "node") for i in range(nodes)]
    pubkey = open(key + ".pub", encoding="utf-8").read()
    booted = time.monotonic()

    def start(host: str, role: str) -> dict:
        podman("run", "-d", "--name", host, "--hostname", host, "--label", f"{LABEL}={name}",
               "--network", network, "--privileged", "--systemd=always", ref)
        blackhole_default_route(host)
        podman("exec", "-i", host, "sh", "-c",
               "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys", stdin=pubkey)
        podman("exec", "-i", host, "chpasswd", stdin=f"root:{password}\n")
        ip = podman("inspect", host, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()
        return {"name": host, "ip": ip, "role": role}

    def boot(member: tuple) -> dict:
        # Wait on systemd (is-system-running --wait), not on a fixed SSH timeout; a container
        # that stopped or whose systemd did not come up is replaced.
        for attempt in range(BOOT_ATTEMPTS):
            try:
                node = start(*member)
                wait = boot_timeout() if attempt < BOOT_ATTEMPTS - 1 else SSH_TIMEOUT
                _wait_booted(node["name"], wait)
                _wait_ssh(node["ip"], key, wait)
                return node
            except FleetError as exc:
                if attempt == BOOT_ATTEMPTS - 1:
                    raise
                log(f"{member[0]} did not boot ({exc}); replacing it")
                podman("rm", "-f", "-t", "0", member[0], check=False)
        raise FleetError("unreachable")

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(len(members), BOOT_WAVE))) as pool:
        result = list(pool.map(boot, members))
    state = {"name": name, "image": ref, "network": network, "key": key, "password": password,
             "nodes": result, "dir": path, "host_extra": host_extra or {}, "spec_extra": spec_extra or {},
             "cluster_image": cluster_image}
    _write_outputs(state)
    total = time.monotonic() - started
    log(f"{len(result)} node(s) of fleet {name} answer over SSH; up took {total:.1f}s "
        f"(start {booted - started:.1f}s, ssh {time.monotonic() - booted:.1f}s); files in {path}")
    return state


def boot_timeout() -> float:
    """How long a booting node may take to answer over SSH before it counts as stalled and is
    replaced: BOOT_TIMEOUT on an idle machine, longer (up to SSH_TIMEOUT) while the load is above
    the core count, as when the suite runs fleets side by side: a node that boots slowly because it
    waits for a CPU is not stalled, and replacing it only starts its boot again."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return min(max(BOOT_TIMEOUT, BOOT_TIMEOUT * load), max(BOOT_TIMEOUT, SSH_TIMEOUT))


def create_network(name: str, network: str) -> None:
    """The fleet's network: internal (podman gives the nodes no gateway and the host no NAT for
    it, so nothing beyond the host is routed) and without podman's DNS, which would resolve
    outside names for the nodes. podman 4 gives such a network no host address on its bridge
    (the controller could not reach the nodes) unless --gateway is named, which needs --subnet:
    podman picks a free subnet for a plain internal network, which is then re-created so."""
    for attempt in range(5):
        podman("network", "create", "--internal", "--label", f"{LABEL}={name}", network)
        subnet = json.loads(podman("network", "inspect", network))[0]["subnets"][0]
        podman("network", "rm", network)
        try:
            podman("network", "create", "--internal", "--disable-dns", "--subnet", subnet["subnet"],
                   "--gateway", subnet["gateway"], "--label", f"{LABEL}={name}", network)
            return
        except FleetError:  # another network took that subnet meanwhile
            if attempt == 4:
                raise


def blackhole_default_route(host: str) -> None:
    podman("exec", host, "ip", "route", "replace", "default", "via", BLACKHOLE_GATEWAY, "dev", "eth0", "onlink")


def _wait_booted(host: str, timeout: float) -> None:
    """Until systemd in the node finished booting (running, or degraded: some unit failed)."""
    env = dict(os.environ, CONTAINERS_CONF=containers_conf())
    try:
        proc = subprocess.run(["podman", "exec", host, "systemctl", "is-system-running", "--wait"], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FleetError(f"{host}: systemd did not finish booting within {timeout:.0f}s") from None
    state = proc.stdout.strip()
    if state not in ("running", "degraded"):
        raise FleetError(f"{host}: systemd is {state or 'unreachable'} ({proc.stderr.strip()[:200]})")


def _wait_ssh(ip: str, key: str, timeout: float = SSH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(ssh_argv(ip, key) + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise FleetError(f"{ip} did not answer over SSH within {timeout:.0f}s: {proc.stderr.strip()}")
        time.sleep(0.5)


def ssh_argv(ip: str, key: str) -> list[str]:
    return ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"root@{ip}"]


def clusterfile(state: dict, masters: int | None = None, nodes: int | None = None, passwd: bool = False) -> str:
    """The fleet's Clusterfile listing its first `masters` masters and `nodes` nodes (all when None)."""
    ips = {role: [n["ip"] for n in state["nodes"] if n["role"] == role] for role in ("master", "node")}
    ips["master"] = ips["master"][:masters]
    ips["node"] = ips["node"][:nodes]
    extra = state.get("host_extra") or {}

    def group(role: str) -> str:
        text = f"    - ips: [{', '.join(ips[role])}]\n      roles: [{role}]\n"
        for key, value in (extra.get(role) or {}).items():
            text += f"      {key}: {json.dumps(value)}\n"
        return text

    ssh = {"user": "root", "passwd": state["password"]} if passwd else {"user": "root", "pk": state["key"]}
    ssh["port"] = "22"
    hosts = [group("master")] + ([group("node")] if ips["node"] else [])
    ssh_lines = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in ssh.items())
    spec_lines = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in (state.get("spec_extra") or {}).items())
    return (
        "apiVersion: sealer.io/v2\nkind: Cluster\n"
        f"metadata:\n  name: {state['name']}\n"
        f"spec:\n  image: {state['cluster_image']}\n{spec_lines}  ssh:\n{ssh_lines}  hosts:\n" + "".join(hosts)
    )


def write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def _write_outputs(state: dict) -> None:
    masters = [n["ip"] for n in state["nodes"] if n["role"] == "master"]
    workers = [n["ip"] for n in state["nodes"] if n["role"] == "node"]
    files = {
        "Clusterfile": clusterfile(state),
        "Clusterfile.passwd": clusterfile(state, passwd=True),
        "hosts.yml": _inventory(state, masters, workers),
        "state.json": json.dumps(state, indent=2) + "\n",
        "known_hosts": known_hosts(state),
    }
    for fname, text in files.items():
        write_private(os.path.join(state["dir"], fname), text)


def known_hosts(state: dict) -> str:
    """known_hosts lines for every node, from its host keys read through podman (not over the
    network), so that SSH to the fleet can check host keys for real (`make demo`)."""
    lines = []
    for node in state["nodes"]:
        keys = podman("exec", node["name"], "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
        for line in keys.splitlines():
            fields = line.split()
            if len(fields) < 2:
                raise FleetError(f"{node['name']}: unreadable host key line {line!r}")
            lines.append(f"{node['ip']} {fields[0]} {fields[1]}\n")
    return "".join(lines)


def _inventory(state: dict, masters: list[str], workers: list[str]) -> str:
    def group(ips: list[str]) -> str:
        return "".join(f"        {ip}:\n          ansible_host: {ip}\n" for ip in ips) or "        {}\n"
    return (
        "all:\n  vars:\n    ansible_user: root\n"
        f"    ansible_ssh_private_key_file: {state['key']}\n"
        f"    seal_cluster_name: {state['name']}\n"
        "  children:\n"
        f"    master:\n      hosts:\n{group(masters)}"
        f"    node:\n      hosts:\n{group(workers)}"
    )


def write_instance_config(state: dict, path: str) -> None:
    """Molecule's delegated-driver instance config: how to reach each platform."""
    instances = [{"instance": n["name"], "address": n["ip"], "user": "root", "port": 22,
                  "identity_file": state["key"]} for n in state["nodes"]]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(instances, f, indent=2)  # JSON is YAML


def load(name: str, out: str | None = None) -> dict:
    with open(os.path.join(state_dir(name, out), "state.json"), encoding="utf-8") as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("image", help="build the node image if its recipe changed; print its reference")
    u = sub.add_parser("up", help="start a fleet (removing an earlier one of the same name)")
    u.add_argument("--name", default="dev")
    u.add_argument("--masters", type=int, default=1)
    u.add_argument("--nodes", type=int, default=0)
    u.add_argument("--out", help="directory for Clusterfile, hosts.yml, key (default .cache/fleet/NAME)")
    u.add_argument("--image", default="k3s:v1.25.3", help="spec.image written to the Clusterfile")
    u.add_argument("--molecule-instance-config", help="also write Molecule's instance config here")
    u.add_argument("--spec-extra", type=json.loads, default={},
                   help='JSON of Clusterfile spec fields, e.g. \'{"hostAliases": [{"ip": "10.0.0.9", "hostnames": ["x"]}]}\'')
    u.add_argument("--host-extra", type=json.loads, default={},
                   help='JSON of Clusterfile host fields per role, e.g. \'{"node": {"labels": {"zone": "a"}}}\'')
    d = sub.add_parser("down", help="remove a fleet and everything it left")
    d.add_argument("--name", default="dev")
    d.add_argument("--out")
    s = sub.add_parser("ssh", help="run a command (or a shell) on one node over SSH")
    s.add_argument("--name", default="dev")
    s.add_argument("--out")
    s.add_argument("node", help="node name (e.g. dev-m1) or IP")
    s.add_argument("command", nargs=argparse.REMAINDER)
    c = sub.add_parser("clusterfile", help="write a Clusterfile listing the fleet's first masters and nodes")
    c.add_argument("--name", default="dev")
    c.add_argument("--masters", type=int)
    c.add_argument("--nodes", type=int)
    c.add_argument("--out", required=True, help="file to write (0600)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "image":
            print(image())
        elif args.cmd == "up":
            state = up(args.name, args.masters, args.nodes, args.out, args.image, args.host_extra, args.spec_extra)
            if args.molecule_instance_config:
                write_instance_config(state, args.molecule_instance_config)
            for n in state["nodes"]:
                print(f"{n['name']}\t{n['ip']}\t{n['role']}")
        elif args.cmd == "down":
            started = time.monotonic()
            down(args.name, args.out)
            log(f"fleet {args.name} removed in {time.monotonic() - started:.1f}s")
        elif args.cmd == "ssh":
            state = load(args.name, args.out)
            ip = next((n["ip"] for n in state["nodes"] if args.node in (n["name"], n["ip"])), None)
            if ip is None:
                raise FleetError(f"no node {args.node} in fleet {args.name}")
            os.execvp("ssh", ssh_argv(ip, state["key"]) + args.command)
        elif args.cmd == "clusterfile":
            write_private(args.out, clusterfile(load(args.name), args.masters, args.nodes))
    except FleetError as exc:
        print(f"fleet: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
