# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster operations of the `seal` command as a Python API, run through ansible-runner:

    from ansible_collections.seal.cluster.plugins.plugin_utils import seal_api
    result = seal_api.run("/path/Clusterfile", "k3s:v1.25.3", on_event=print)
    result.rc, result.log, result.failures

Each operation runs one of the collection's playbooks (run.yml, apply.yml, delete.yml,
upgrade.yml, reset.yml) with the Clusterfile as its inventory, in a private_data_dir
~/.seal/<cluster>/runs/<timestamp>/ whose artifacts (events, stdout, status, rc) are kept.

Secrets stay out of argv and of what ansible-runner writes there: they live in the Clusterfile
(0600) or a 0600 vars file outside the run directory, both passed by path; environment
variables that look like secrets are kept from the child's environment (runner records it);
after the run every file under the run directory is checked for the Clusterfile's secrets and
the cluster token, and any found is redacted and reported as a `secret_redacted` event."""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import sys
import tempfile

import yaml

from ansible_collections.seal.cluster.plugins.module_utils import _files as files
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile_edit

try:
    import ansible_runner
    HAS_RUNNER = True
except ImportError:  # the command says so; the collection's playbooks do not need it
    ansible_runner = None
    HAS_RUNNER = False

HOME_ENV = "SEAL_HOME"  # default ~/.seal: the same directory the playbooks keep a cluster's state in
REDACTED = b"[seal: redacted]"  # not Ansible's ******** (its banners are full of asterisks)
SECRET_ENV = re.compile(r"PASS|TOKEN|SECRET|CREDENTIAL|PRIVATE_KEY", re.I)
PLAYBOOKS = ("run", "apply", "delete", "upgrade", "reset")


class SealError(Exception):
    """A failed operation (exit status 1)."""


class InputError(SealError):
    """Bad input, found before any host was connected to (exit status 2)."""


class Result:
    """What one playbook run ended with."""

    def __init__(self, rc, status, run_dir, log, failures, stats):
        self.rc, self.status, self.run_dir, self.log = rc, status, run_dir, log
        self.failures, self.stats = failures, stats

    @property
    def ok(self):
        return self.rc == 0 and self.status == "successful"


# --- where things are ---------------------------------------------------------------------------

def seal_home():
    return os.environ.get(HOME_ENV) or os.path.join(os.path.expanduser("~"), ".seal")


def cluster_dir(name, create=True):
    """~/.seal/<cluster> (0700)."""
    path = os.path.join(seal_home(), name)
    if create:
        if not os.path.isdir(seal_home()):
            os.makedirs(seal_home(), mode=0o700)
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path


def stored_clusterfile(name):
    return os.path.join(cluster_dir(name, create=False), "Clusterfile")


def collection_root():
    """The collection's directory: this file is <root>/plugins/plugin_utils/seal_api.py."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def collections_path(root=None):
    """A directory holding ansible_collections/seal/cluster -> root: the one the collection was
    installed into (ansible-galaxy), the checkout's .cache/collections (scripts/setup.sh), or a
    link made under ~/.seal/.collections for a checkout installed with pip -e."""
    root = root or collection_root()
    parts = root.split(os.sep)
    if parts[-3:] == ["ansible_collections", "seal", "cluster"]:
        return os.sep.join(parts[:-3]) or os.sep
    for base in (os.path.join(root, ".cache", "collections"), os.path.join(seal_home(), ".collections")):
        link = os.path.join(base, "ansible_collections", "seal", "cluster")
        if os.path.realpath(link) == root:
            return base
    base = os.path.join(seal_home(), ".collections")
    link = os.path.join(base, "ansible_collections", "seal", "cluster")
    os.makedirs(os.path.dirname(link), mode=0o700, exist_ok=True)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(root, link)
    return base


def playbook(name, root=None):
    path = os.path.join(root or collection_root(), "playbooks", name + ".yml")
    if not os.path.isfile(path):
        raise SealError("%s not found: the seal command runs the collection's playbooks (install the collection with "
                        "ansible-galaxy, or pip install -e a checkout)" % path)
    return path


# --- files ----------------------------------------------------------------------------------------

def write_private(path, text):
    """Write text to path (0600, never wider, never half-written)."""
    files.write_atomic(path, text, 0o600)


def read_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def cluster_token(name):
    """The cluster token the playbooks keep for the cluster (to keep it out of the artifacts)."""
    path = os.path.join(cluster_dir(name, create=False), "token")
    try:
        return read_text(path).strip()
    except OSError:
        return None


# --- running a playbook ---------------------------------------------------------------------------

def _timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


class _CleanEnviron:
    """While the runner starts its child, keep variables that look like secrets out of os.environ
    (ansible-runner copies os.environ into the child and into artifacts/<id>/command)."""

    def __enter__(self):
        self.saved = {k: v for k, v in os.environ.items() if SECRET_ENV.search(k)}
        for key in self.saved:
            del os.environ[key]
        return self

    def __exit__(self, *exc):
        os.environ.update(self.saved)


def redact(directory, secrets):
    """Replace every secret in the files under directory; return the paths changed."""
    secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    changed = []
    for base, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            new = data
            for secret in secrets:
                new = new.replace(secret.encode(), REDACTED)
            if new != data:
                with open(path, "wb") as f:
                    f.write(new)
                changed.append(path)
    return changed


def _envvars(root):
    """The child's Ansible settings (recorded in the artifacts: nothing secret)."""
    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(
            [collections_path(root)] + [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if p]),
        "ANSIBLE_INVENTORY_ENABLED": "seal.cluster.clusterfile, host_list, script, auto, yaml, ini, toml",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        # the ansible-playbook next to the Python this runs on (a venv's), before any other
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
    }
    config = os.path.join(root, "ansible.cfg")
    if not os.environ.get("ANSIBLE_CONFIG") and os.path.isfile(config):
        envvars["ANSIBLE_CONFIG"] = config  # the collection's (host key checking on)
    return envvars


def run_playbook(book, inventory, cluster, extravars=None, vars_text=None, on_event=None, check=False, limit=None,
                 secrets=(), root=None):
    """Run playbooks/<book>.yml with the Clusterfile `inventory` through ansible-runner.

    extravars: non-secret values (they are recorded in the run's artifacts); vars_text: YAML of
    variables that may be secret, given to Ansible as a 0600 file outside the run directory.
    on_event: called with each runner event (a dict)."""
    if not HAS_RUNNER:
        raise SealError("the seal command needs ansible-runner (pip install -r requirements.txt)")
    root = root or collection_root()
    path = playbook(book, root)
    state = cluster_dir(cluster)
    runs = os.path.join(state, "runs")
    os.makedirs(runs, mode=0o700, exist_ok=True)
    ident = _timestamp()
    run_dir = os.path.join(runs, ident)
    os.makedirs(run_dir, mode=0o700)
    cmdline = []
    vars_file = None
    if vars_text:
        fd, vars_file = tempfile.mkstemp(dir=state, prefix=".vars-", suffix=".yml")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(vars_text)
        cmdline += ["-e", "@" + vars_file]
    if check:
        cmdline += ["--check", "--diff"]
    failures = []

    def handler(event):
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and not (event.get("event_data") or {}).get("ignore_errors"):
            failures.append(event)
        if on_event:
            on_event(event)
        return True

    kwargs = {
        "private_data_dir": run_dir, "ident": ident, "playbook": path, "inventory": os.path.abspath(inventory),
        "extravars": dict(extravars or {}), "envvars": _envvars(root), "cmdline": " ".join(shlex.quote(a) for a in cmdline) or None,
        "limit": limit, "quiet": True, "event_handler": handler, "suppress_env_files": True, "project_dir": root,
        "rotate_artifacts": 0,
    }
    try:
        with _CleanEnviron():
            runner = ansible_runner.run(**kwargs)
    finally:
        if vars_file:
            os.unlink(vars_file)
    token = cluster_token(cluster)
    leaked = redact(run_dir, list(secrets) + ([token] if token else []))
    if leaked and on_event:
        on_event({"event": "secret_redacted", "event_data": {"files": leaked}})
    log = os.path.join(run_dir, "artifacts", ident, "stdout")
    return Result(runner.rc, runner.status, run_dir, log, failures, runner.stats or {})


# --- the operations -------------------------------------------------------------------------------

def _load(clusterfile_path):
    try:
        text = read_text(clusterfile_path)
        return text, clusterfile_edit.info(text)
    except OSError as exc:
        raise InputError("%s: %s" % (clusterfile_path, exc.strerror)) from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _operation(book, clusterfile_path, extravars=None, **kwargs):
    text, facts = _load(clusterfile_path)
    return run_playbook(book, clusterfile_path, facts["name"], extravars=extravars,
                        secrets=clusterfile_edit.secrets(text), **kwargs)


def run(clusterfile, image=None, on_event=None, **kwargs):
    """Install or converge the cluster of a Clusterfile (run.yml); image overrides spec.image."""
    return _operation("run", clusterfile, {"image": image} if image else None, on_event=on_event, **kwargs)


def apply(clusterfile, image=None, on_event=None, **kwargs):
    """Make the cluster match the Clusterfile: joins, deletions, upgrade (apply.yml)."""
    return _operation("apply", clusterfile, {"image": image} if image else None, on_event=on_event, **kwargs)


def delete(clusterfile, hosts=(), force=False, on_event=None, **kwargs):
    """Remove hosts (delete.yml): the named ones, or those the Clusterfile no longer lists."""
    extravars = {"force": bool(force)}
    if hosts:
        extravars["delete_hosts"] = ",".join(hosts)
    return _operation("delete", clusterfile, extravars, on_event=on_event, **kwargs)


def upgrade(clusterfile, image, on_event=None, **kwargs):
    """Rolling upgrade to a new cluster image (upgrade.yml)."""
    return _operation("upgrade", clusterfile, {"image": image}, on_event=on_event, **kwargs)


def reset(clusterfile, on_event=None, **kwargs):
    """Remove k3s and everything seal.cluster installed from the cluster's hosts (reset.yml)."""
    return _operation("reset", clusterfile, None, on_event=on_event, **kwargs)


# What `seal status` runs: the cluster's resolved settings (controller_cluster: record, rootfs and
# registry view) from the same role the playbooks read them from, then, changing nothing, the
# nodes and record through each master, the rootfs each host holds, and every registry host's
# own registry (master0, or every master with an HA registry).
FACT_TASK = "The cluster's settings, as the playbooks resolve them (controller_cluster)"
STATUS_TASK = "Read the cluster's nodes and record"
ROOTFS_TASK = "Which cluster image's rootfs the host holds"
REGISTRY_TASK = "Ask the host's own registry"
STATUS_PLAY = [{
    "name": "seal status (changes nothing)",
    "hosts": "master:node",
    "gather_facts": False,
    "tasks": [
        {"name": FACT_TASK,
         "ansible.builtin.include_role": {"name": "seal.cluster.controller", "tasks_from": "fact"}},
        {"name": STATUS_TASK,
         "seal.cluster.k3s_cluster_info": {"record": "{{ controller_cluster.record }}"},
         "when": "inventory_hostname in groups['master']"},
        {"name": ROOTFS_TASK,
         "seal.cluster.rootfs_info": {"dest": "{{ controller_cluster.rootfs }}"}},
        {"name": REGISTRY_TASK,
         "ansible.builtin.uri": {"url": "{{ 'http' if controller_cluster.registry.insecure else 'https' }}://127.0.0.1:"
                                        "{{ controller_cluster.registry.port }}/v2/",
                                 "validate_certs": False, "status_code": [200, 401], "timeout": 10},
         "when": "controller_cluster.registry.is_server",
         "ignore_errors": True},
    ],
}]


def status(clusterfile, on_event=None):
    """Nodes, roles, Ready, versions and the record (image, digest) read through the first master
    whose API answers (module k3s_cluster_info), the image digest of the rootfs each host holds
    (module rootfs_info), and whether each registry host's registry answers; paths and registry
    hosts come from role controller's controller_cluster, as in the playbooks. Run through
    ansible-runner. Returns {healthy, api_host, nodes, record, images, registries, expected,
    problems, log}."""
    if not HAS_RUNNER:
        raise SealError("the seal command needs ansible-runner (pip install -r requirements.txt)")
    text, facts = _load(clusterfile)
    name = facts["name"]
    state = cluster_dir(name)
    ident = _timestamp()
    run_dir = os.path.join(state, "runs", ident)
    os.makedirs(run_dir, mode=0o700)
    root = collection_root()
    answers = {STATUS_TASK: {}, ROOTFS_TASK: {}, REGISTRY_TASK: {}}

    def handler(event):
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            answers.setdefault(data.get("task"), {})[data.get("host")] = (event["event"], data.get("res") or {})
        if on_event:
            on_event(event)
        return True

    with _CleanEnviron():
        runner = ansible_runner.run(private_data_dir=run_dir, ident=ident, playbook=STATUS_PLAY,
                                    inventory=os.path.abspath(clusterfile), envvars=_envvars(root), quiet=True,
                                    event_handler=handler, suppress_env_files=True, rotate_artifacts=0)
    token = cluster_token(name)
    redact(run_dir, clusterfile_edit.secrets(text) + ([token] if token else []))
    api_host, info = None, None
    for master in facts["masters"]:
        kind, res = answers[STATUS_TASK].get(master, (None, {}))
        if kind == "runner_on_ok" and res.get("api_ready"):
            api_host, info = master, res
            break
    expected = facts["masters"] + facts["nodes"]
    problems = []
    nodes = (info or {}).get("nodes") or []
    record = (info or {}).get("record") or {}
    if info is None:
        problems.append("no master's API answers (%s)" % ", ".join(
            "%s: %s" % (m, _short(answers[STATUS_TASK].get(m))) for m in facts["masters"]))
    else:
        seen = {a for n in nodes for a in n.get("addresses") or []}
        for ip in expected:
            if ip not in seen:
                problems.append("%s has no node in the cluster" % ip)
        for node in nodes:
            if not node.get("ready"):
                problems.append("node %s is not Ready" % node.get("name"))
    images = {}
    for host in expected:
        kind, res = answers[ROOTFS_TASK].get(host, (None, {}))
        images[host] = res.get("digest") if kind == "runner_on_ok" else None
        if kind != "runner_on_ok":
            problems.append("the rootfs of %s could not be read: %s" % (host, _short((kind, res)) if kind else "no answer"))
        elif not images[host]:
            problems.append("%s holds no complete cluster image rootfs" % host)
        elif record.get("digest") and images[host] != record["digest"]:
            problems.append("%s holds the rootfs of %s, the cluster runs %s" % (host, images[host], record["digest"]))
    registries = []
    for host in facts["masters"]:
        if host not in answers[REGISTRY_TASK]:
            continue
        kind, res = answers[REGISTRY_TASK][host]
        registries.append({"host": host, "status": res.get("status")})
        if kind != "runner_on_ok":
            problems.append("the registry on %s does not answer: %s" % (host, _short((kind, res))))
    return {"cluster": name, "healthy": not problems, "api_host": api_host, "nodes": nodes, "record": record,
            "images": images, "registries": registries, "expected": expected, "problems": problems,
            "log": os.path.join(run_dir, "artifacts", ident, "stdout"), "rc": runner.rc}


def _short(answer):
    if not answer:
        return "no answer"
    kind, res = answer
    if kind == "runner_on_unreachable":
        return "unreachable"
    return res.get("api_error") or res.get("msg") or "API not ready"


def dump_status(result):
    return json.dumps(result, indent=2, sort_keys=True, default=str)


def yaml_text(values):
    return yaml.safe_dump(values, default_flow_style=False)
