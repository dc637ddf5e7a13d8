#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_runtime
short_description: Install and run k3s (server or agent) on a host from a cluster image rootfs
version_added: 0.1.0
description:
  - Installs the k3s binary from the rootfs (atomic replace, C(kubectl)/C(crictl)/C(ctr) links),
    the air-gap image archives, C(config.yaml) and C(registries.yaml) (mode 0600), the token
    file (0600; the token never appears on a command line), the systemd unit and its env file
    (0600) for a server or an agent, and on servers the auto-deployed manifests.
  - Restarts the service only when the binary, config, registries, token credentials, unit, env
    file or air-gap archives really changed; starts it when it is not running. A token file whose
    password stays the same but whose form changes (short to secure C(K10<CA hash>::server:<password>))
    is rewritten without a restart, since k3s reads it only at start and keys its bootstrap data with the
    password alone (k3s C(pkg/cli/server/server.go), C(pkg/cluster/storage.go) C(normalizeToken)).
  - On a server, before anything changes, refuses a token whose password differs from the one k3s
    keeps in C(<data_dir>/server/token) (k3s would fail with C(bootstrap data already found and
    encrypted with different token)). Once k3s wrote that file, the server's own token file holds
    the secure form written there (same password).
  - Waits until the server answers C(/readyz) through its kubeconfig and its node is Ready, or
    until an agent's service is active. Failing that, reports what it saw.
  - Replaces install.sh with the same file layout and unit (see the k3s docs' install script);
    nothing is downloaded.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  state:
    description:
      - V(present) installs and runs k3s. What a host has and runs is read by
        M(seal.cluster.k3s_runtime_info).
    type: str
    choices: [present]
    default: present
  role:
    description: V(server) runs C(k3s server) as C(k3s.service); V(agent) runs C(k3s agent) as C(k3s-agent.service).
    type: str
    choices: [server, agent]
    required: true
  rootfs:
    description:
      - The cluster image's rootfs on this host. C(bin/k3s) is installed; C(images/*) air-gap
        archives are copied to the agent images directory; on servers C(manifests/*.yaml) go to
        the auto-deploy directory.
    type: path
    required: true
  config:
    description:
      - k3s configuration, written as C(/etc/rancher/k3s/config.yaml). Keys are k3s's long flag
        names. Do not put the token here; use O(token).
      - For an agent, server-only keys (C(system-default-registry) among them) are refused before anything
        changes (k3s agent exits on them); so are keys the release of the rootfs binary does not define
        (C(disable-default-registry-endpoint) before v1.26.13, v1.27.10, v1.28.6, v1.29.1).
      - C(node-ip) and C(node-external-ip) take IP addresses only (k3s exits on C(invalid ip format)); a host
        name there (the inventory's C(ansible_host) may be one) is resolved on this host to its first IPv4
        address, else its first IPv6 address, loopback addresses excluded, and written as that address; a name
        that does not resolve so is refused before anything changes.
    type: dict
    default: {}
  keep_server:
    description:
      - Keep the C(server) of the current C(config.yaml) when there is one, instead of the one in
        O(config). An agent that registered through one server then stays as it is when the
        cluster's first server changes (k3s agents learn every server after registering).
    type: bool
    default: false
  secret_config:
    description:
      - Config keys whose values are secret (for example C(datastore-endpoint) with a password).
        Merged into C(config.yaml) and never shown in output or diffs.
    type: dict
    default: {}
  token:
    description:
      - The cluster token. Written to O(token_file) (0600) and referenced as C(token-file).
      - Joiners should get the secure form C(K10<CA hash>::server:<password>) so that they check the
        server's CA before sending credentials; the first server of a new cluster can only get the
        password (short form), since its CA does not exist yet.
    type: str
    required: true
  agent_token:
    description: Separate token for agents (servers only); written to O(agent_token_file), referenced as C(agent-token-file).
    type: str
  token_file:
    description: Where the token is kept on the host.
    type: path
    default: /etc/rancher/k3s/token
  agent_token_file:
    description: Where the agent token is kept on a server.
    type: path
    default: /etc/rancher/k3s/agent-token
  registries:
    description:
      - Content of C(/etc/rancher/k3s/registries.yaml) (C(mirrors), C(configs)) without passwords.
        Empty writes no file.
    type: dict
    default: {}
  registry_auth:
    description:
      - Credentials per registry host, merged into C(configs.<host>.auth) of C(registries.yaml).
      - The secret fields are never shown in output; the user name is not a secret (marking it
        would mask every occurrence of a short name such as C(seal) in the module's results).
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Registry host (and port) as in C(registries.yaml), for example C(sea.hub:5000).
        type: str
        required: true
      auth:
        description: The C(auth) entry of C(registries.yaml) for O(registry_auth[].host).
        type: dict
        required: true
        suboptions:
          username:
            description: User name.
            type: str
          password:
            description: Password.
            type: str
          auth:
            description: Base64 of C(user:password), as C(registries.yaml) accepts.
            type: str
          identity_token:
            description: Identity token.
            type: str
  env:
    description: Environment for the service, written to the unit's env file (0600); values are not shown.
    type: dict
    default: {}
  manifests:
    description: On servers, copy the rootfs C(manifests/*.yaml) files to the auto-deploy directory.
    type: bool
    default: true
  wait:
    description: Wait for readiness after a start or restart (and check it on every run).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for readiness. The service is started without blocking (its unit has
        C(TimeoutStartSec=0) and k3s retries a refused token forever), so this bounds the whole start;
        a failure names the cause the journal shows (a refused token, a CA hash or critical configuration mismatch).
    type: int
    default: 300
  data_dir:
    description: k3s data directory (C(data-dir)).
    type: path
    default: /var/lib/rancher/k3s
  inputs:
    description:
      - The controller's digest of every input of this call (the role computes it); recorded in
        O(record) once the host has converged to them. Not a secret, and not read by the module.
    type: str
  record:
    description:
      - Where to keep the converged record (0600), with O(inputs), the service, and the stat
        fingerprint of every file, copy and link this module owns. M(seal.cluster.node_prepare)
        reports it, and the role skips this module on a host whose record matches
        (docs/distribution.md). Removed before this module changes anything.
    type: path
notes:
  - The node name is C(node-name) from O(config), else the host name, as k3s chooses it.
attributes:
  check_mode:
    support: partial
    details:
      - Files, copies, links and the service state are compared and the changes predicted without
        writing; readiness is not waited for.
      - When the rootfs is not on the host yet (distributed by the same run), nothing can be
        compared and a full install is reported.
  diff_mode:
    support: full
    details: Binaries and copied archives show as their sha256; secret files and values are masked.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: First server of an HA cluster
  seal.cluster.k3s_runtime:
    role: server
    rootfs: /var/lib/seal/my-cluster/rootfs
    token: "{{ cluster_token }}"
    config:
      cluster-init: true
      node-ip: 192.168.0.2
      tls-san: [192.168.0.2]
      write-kubeconfig-mode: "0600"

- name: Agent
  seal.cluster.k3s_runtime:
    role: agent
    rootfs: /var/lib/seal/my-cluster/rootfs
    token: "{{ cluster_token }}"
    config:
      server: https://192.168.0.2:6443
      node-ip: 192.168.0.5
"""

RETURN = r"""
version:
  description: Version of the installed k3s binary (C(k3s --version)), e.g. V(v1.25.3+k3s1).
  returned: success
  type: str
role:
  description: V(server) or V(agent).
  returned: always
  type: str
service:
  description: The systemd service name.
  returned: always
  type: str
node_name:
  description: The node's name in the cluster.
  returned: always
  type: str
changed_items:
  description:
    - What changed, among C(binary), C(links), C(config), C(registries), C(token), C(agent_token),
      C(unit), C(env), C(airgap), C(manifests), C(service).
  returned: always
  type: list
  elements: str
restarted:
  description: Whether the service was started or restarted by this run.
  returned: always
  type: bool
token_ca_hash:
  description:
    - On a server, the CA hash of the secure token k3s wrote to C(<data_dir>/server/token) (the
      SHA-256 of its CA certificate), or null before k3s wrote it. Not secret.
  returned: always
  type: str
"""

import glob
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_config as k3s_config
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_snapshot as snapshot
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_host as k3s_host
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_kube as kube
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_token as k3s_token
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._converged import remove_record, write_record
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import FileState, copy_atomic, read_text, sha256_file
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Runner, Systemd, SystemdError
from ansible_collections.seal.cluster.plugins.module_utils._yaml_emit import dump

AIRGAP_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst", ".tar.lz4", ".tar.bz2", ".tbz")
# "token" and "agent_token" restart only when their password changes (see token_restarts)
RESTART_ITEMS = ("binary", "config", "registries", "unit", "env", "airgap")
# k3s exits on a fatal start error (a joining server's token, critical configuration, node-ip) and
# the unit's Restart=always starts it again: after this many exits the wait stops early.
EXITS_TOLERATED = 2


class K3sRuntime:
    def __init__(self, module, host=None, runner=None):
        self.module = module
        self.host = host or layout.Layout()
        self.runner = runner or Runner(module)
        self.systemd = Systemd(self.runner)
        self.p = module.params
        self.role = self.p["role"]
        self.check = module.check_mode
        self.service = layout.service_name(self.role)
        self.changed_items = []
        self.diffs = []
        self.files = []
        self.copies = []
        self.token_restarts = []
        self.config = dict(self.p.get("config") or {})
        self.owned = []

    # -- desired state ---------------------------------------------------------------------
    def validate(self):
        """Refuse bad input before anything changes; in check mode before the rootfs was
        distributed, return the result of a full install (nothing can be compared)."""
        if self.check and not os.path.isfile(os.path.join(self.p["rootfs"], "bin", "k3s")):
            return dict(changed=True, changed_items=["binary", "config", "token", "unit", "env", "service"],
                        restarted=False, role=self.role, service=self.service, node_name=self.node_name(),
                        version=None, token_ca_hash=None, msg="rootfs %s not distributed yet; k3s would be installed" % self.p["rootfs"])
        if not os.path.isfile(os.path.join(self.p["rootfs"], "bin", "k3s")):
            raise ModuleFailure("rootfs %s has no bin/k3s: is the cluster image distributed to this host?" % self.p["rootfs"])
        config = self.p["config"]
        for key in ("token", "agent-token"):
            if key in config:
                raise ModuleFailure("config: put the %s in the %s option, not in config (it would be stored in config.yaml)"
                                    % (key, key.replace("-", "_")))
        if self.role == "agent":
            bad = k3s_config.server_only_keys(config)
            if bad:
                raise ModuleFailure("config for an agent has server-only keys %s; k3s agent would exit with "
                                    "'flag provided but not defined'" % ", ".join(bad))
            if not config.get("server"):
                raise ModuleFailure("config for an agent needs 'server' (https://<server>:6443)")
            if self.p["agent_token"]:
                raise ModuleFailure("agent_token is for servers; give an agent its token in 'token'")
        for key, check in (("etcd-snapshot-schedule-cron", snapshot.check_schedule),
                           ("etcd-snapshot-retention", snapshot.check_retention)):
            try:
                if key in config:
                    check(int(config[key]) if key.endswith("retention") and str(config[key]).isdigit() else config[key])
            except ValueError as exc:
                raise ModuleFailure("config %s: %s (refused before any change)" % (key, exc)) from None
        if k3s_config.release_keys(config):
            version = self.release_version()
            unknown = k3s_config.unknown_to_release(config, version)
            if unknown:
                raise ModuleFailure("config has keys k3s %s does not define: %s; k3s would exit with 'flag provided "
                                    "but not defined' (refused before any change)" % (version, "; ".join(unknown)))
        self.config = k3s_config.resolve_ips(config)
        try:
            given = k3s_token.parse(self.p["token"])
        except k3s_token.TokenError as exc:
            raise ModuleFailure("token: %s (k3s would refuse it)" % exc) from exc
        held = self.server_token()
        if self.role == "server" and held:
            ca_hash, _user, password = k3s_token.parse(held)
            if password != given[2]:
                raise ModuleFailure("the token given differs from the cluster token this server holds in %s: k3s "
                                    "would fail with 'bootstrap data already found and encrypted with different "
                                    "token'; give the cluster's token (refused before any change)"
                                    % self.server_token_path())
            if given[0] and given[0] != ca_hash:
                raise ModuleFailure("the token given names CA hash %s but this server's CA hash (%s) is %s; refused "
                                    "before any change" % (given[0], self.server_token_path(), ca_hash))
        return None

    def release_version(self):
        """The k3s version of the rootfs binary (what will run), from `bin/k3s --version`."""
        binary = os.path.join(self.p["rootfs"], "bin", "k3s")
        version = k3s_host.version(self.runner, binary)
        if not version:
            raise ModuleFailure("cannot tell the k3s version of %s (%s --version)" % (binary, binary))
        return version

    def server_token_path(self):
        return k3s_host.server_token_path(self.p["data_dir"])

    def server_token(self):
        """The secure token k3s wrote on this server (None on agents or before k3s wrote it)."""
        return k3s_host.server_token(self.p["data_dir"]) if self.role == "server" else None

    def server_ca_hash(self):
        return k3s_host.ca_hash(self.server_token())

    def token_content(self):
        """The token file's content: on a server that has DATA/server/token, the secure form k3s
        wrote there (same password as the token given, checked in validate)."""
        held = self.server_token()
        token = held if held and not k3s_token.is_secure(self.p["token"]) else self.p["token"].strip()
        return token + "\n"

    def current_server(self):
        return k3s_host.config_value(self.host.config, "server")

    def desired_config(self):
        config = dict(self.config)
        config.update(self.p["secret_config"])
        if self.p["keep_server"] and self.current_server():
            config["server"] = self.current_server()
        config["token-file"] = self.p["token_file"]
        if self.role == "server" and self.p["agent_token"]:
            config["agent-token-file"] = self.p["agent_token_file"]
        if self.p["data_dir"] != layout.DATA_DIR:
            config["data-dir"] = self.p["data_dir"]
        return config

    def plan_files(self):
        header = "# Managed by seal.cluster (k3s_runtime); edits are overwritten.\n"
        config = self.desired_config()
        self.add_file("config", self.host.config, header + dump(config), 0o600, masked=self.masked(config))
        registries = self.desired_registries()
        if registries:
            self.add_file("registries", self.host.registries, header + dump(registries), 0o600,
                          masked=header + dump(self.p["registries"]) if self.p["registry_auth"] else None)
        self.add_token_file("token", self.p["token_file"], self.token_content())
        if self.role == "server" and self.p["agent_token"]:
            self.add_token_file("agent_token", self.p["agent_token_file"], self.p["agent_token"].strip() + "\n")
        self.add_file("unit", self.host.unit_path(self.role), layout.unit_text(self.role), 0o644)
        self.add_file("env", self.host.env_path(self.role), layout.env_text(self.p["env"]), 0o600, secret=True)

    def add_token_file(self, item, path, content):
        """A token file; its change restarts k3s only when the password changes (k3s reads the
        file only at start and keys its bootstrap data with the password alone)."""
        before = read_text(path)
        self.add_file(item, path, content, 0o600, secret=True)
        if item in self.changed_items and not (before and k3s_token.same_credentials(before, content)):
            self.token_restarts.append(item)

    def secure_own_token(self):
        """After the first start of a server given the password alone: its token file takes the
        secure form k3s just wrote to DATA/server/token (same password; no restart needed)."""
        if self.role != "server" or k3s_token.is_secure(self.p["token"]) or not self.server_token():
            return
        state = FileState(self.p["token_file"], self.token_content(), 0o600, secret=True)
        if state.changed:
            state.apply()
            if "token" not in self.changed_items:
                self.changed_items.append("token")

    def desired_registries(self):
        registries = dict(self.p["registries"])
        if self.p["registry_auth"]:
            configs = dict(registries.get("configs") or {})
            for item in self.p["registry_auth"]:
                entry = dict(configs.get(item["host"]) or {})
                entry["auth"] = dict((k, v) for k, v in item["auth"].items() if v is not None)
                configs[item["host"]] = entry
            registries["configs"] = configs
        return registries

    def masked(self, config):
        secret = set(self.p["secret_config"]) | {"token", "agent-token"}
        return dump(dict((k, "********" if k in secret else v) for k, v in config.items()))

    def add_file(self, item, path, content, mode, secret=False, masked=None):
        state = FileState(path, content, mode, secret=secret)
        if state.changed:
            self.changed_items.append(item)
            diff = state.diff()
            if masked is not None:
                diff["after"] = masked
                diff["before"] = "" if state.before is None else "<previous content>\n"
            self.diffs.append(diff)
        self.files.append(state)

    def plan_copies(self):
        rootfs = self.p["rootfs"]
        src_bin, k3s_bin = os.path.join(rootfs, "bin", "k3s"), self.host.k3s_bin
        self.owned.append(k3s_bin)
        want_sum, have_sum = sha256_file(src_bin), sha256_file(k3s_bin)
        if want_sum != have_sum:
            self.changed_items.append("binary")
            self.copies.append((src_bin, k3s_bin, 0o755))
            self.diffs.append({"before_header": layout.K3S_BIN, "after_header": layout.K3S_BIN,
                               "before": "absent\n" if have_sum is None else "sha256 %s\n" % have_sum,
                               "after": "sha256 %s\n" % want_sum})
        self.plan_dir_copy("airgap", [p for p in sorted(glob.glob(os.path.join(rootfs, "images", "*")))
                                      if p.endswith(AIRGAP_SUFFIXES) or p.endswith(".txt")],
                           os.path.join(self.p["data_dir"], "agent", "images"))
        if self.role == "server" and self.p["manifests"]:
            self.plan_dir_copy("manifests", sorted(glob.glob(os.path.join(rootfs, "manifests", "*.yaml"))
                                                   + glob.glob(os.path.join(rootfs, "manifests", "*.yml"))),
                               os.path.join(self.p["data_dir"], "server", "manifests"))

    def plan_dir_copy(self, item, sources, dest_dir):
        for src in sources:
            dest = os.path.join(dest_dir, os.path.basename(src))
            self.owned.append(dest)
            if os.path.getsize(src) == (os.path.getsize(dest) if os.path.exists(dest) else -1) and sha256_file(src) == sha256_file(dest):
                continue
            if item not in self.changed_items:
                self.changed_items.append(item)
            self.copies.append((src, dest, 0o600 if item == "manifests" else 0o644))
            self.diffs.append({"before_header": dest, "after_header": dest,
                               "before": "absent\n" if not os.path.exists(dest) else "other content\n",
                               "after": "copy of %s\n" % src})

    def plan_links(self):
        missing = []
        for name in layout.LINKS:
            path = os.path.join(self.host.bin_dir, name)
            self.owned.append(path)
            if os.path.islink(path) and os.readlink(path) in ("k3s", layout.K3S_BIN):
                continue
            found = self.runner.which(name)
            if os.path.lexists(path) and not os.path.islink(path):
                continue  # a real binary of that name: leave it, as install.sh does
            if found and os.path.realpath(found) != os.path.realpath(self.host.k3s_bin) and not os.path.lexists(path):
                continue  # provided elsewhere in PATH
            missing.append(path)
        if missing:
            self.changed_items.append("links")
        return missing

    # -- actions ---------------------------------------------------------------------------
    def apply(self, links):
        for src, dest, mode in self.copies:
            copy_atomic(src, dest, mode)
        for path in links:
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink("k3s", path)
        for state in self.files:
            state.apply()

    def journal(self):
        return self.systemd.journal(self.service, 30, redact=(self.p["token"], self.p["agent_token"]))

    def service_state(self):
        return self.systemd.state(self.service)

    def node_name(self):
        return names.node_name(self.p["config"].get("node-name"))

    def kubectl(self, *args):
        return kube.kubectl(self.runner, *args, kubeconfig=self.host.kubeconfig, k3s=self.host.k3s_bin)

    def wait_ready(self, previous=""):
        """Until the service is ready, at most wait_timeout. previous: the InvocationID before a
        queued (--no-block) start or restart; until it changes, "active" is the old process."""
        deadline = time.monotonic() + self.p["wait_timeout"]
        seen = ""
        while True:
            active, _enabled = self.service_state()
            if previous and active == "active" and self.systemd.invocation(self.service) == previous:
                active = "still the previous run (restart queued)"
            else:
                previous = ""
            exited = False
            if active == "active":
                if self.role == "agent":
                    return
                ok, seen = kube.server_ready(self.runner, self.node_name(), self.host.kubeconfig, self.host.k3s_bin)
                if ok:
                    return
            else:
                seen = "service %s is %s" % (self.service, active)
                restarts = self.systemd.restarts(self.service)
                exited = restarts >= EXITS_TOLERATED  # k3s exits on a fatal error; Restart=always brings it back
                if exited:
                    seen = "k3s exited %d times since it was started (systemd restarts it)" % restarts
            timed_out = time.monotonic() > deadline
            if timed_out or exited or active == "failed":
                journal = self.journal()
                raise ModuleFailure("k3s %s on %s not ready%s: %s%s" % (
                    self.role, self.node_name(), " after %ss" % self.p["wait_timeout"] if timed_out else "", seen,
                    k3s_config.journal_hint(journal)), changed_items=self.changed_items, journal=journal)
            time.sleep(2)

    def write_record(self):
        """The converged record (module_utils/_converged.py): the inputs digest and every path
        this module owns, so that a later run can skip this module where nothing changed."""
        owned = [state.path for state in self.files] + self.owned
        if self.role == "server":
            owned.append(self.server_token_path())
        write_record(self.p["record"], self.p["inputs"], owned, self.service)

    def version(self):
        return k3s_host.version(self.runner, self.host.k3s_bin)

    def run(self):
        try:
            return self.present()
        except SystemdError as exc:
            raise ModuleFailure(str(exc), changed_items=self.changed_items, journal=self.journal()) from exc

    def present(self):
        predicted = self.validate()
        if predicted:
            return predicted
        self.plan_files()
        self.plan_copies()
        links = self.plan_links()
        active, enabled = self.service_state()
        needs_restart = any(item in self.changed_items for item in RESTART_ITEMS) or bool(self.token_restarts)
        start = needs_restart or active != "active"
        if start:
            self.changed_items.append("service")
        elif enabled != "enabled":
            self.changed_items.append("service")
        restarted = False
        if not self.check and self.p["record"] and (self.changed_items or self.token_restarts):
            remove_record(self.p["record"])
        if not self.check:
            self.apply(links)
            if "unit" in self.changed_items:
                self.systemd.systemctl("daemon-reload")
            if enabled != "enabled":
                self.systemd.systemctl("enable", self.service)
            if start:
                # Type=notify with TimeoutStartSec=0 (install.sh's unit): a blocking start would
                # wait for READY=1 forever, e.g. for an agent whose token the server refuses
                # (k3s retries it every few seconds). Queue the job; wait_ready bounds the wait.
                # A unit stuck in "activating" (k3s retrying) takes no new start job: restart it.
                verb = "start" if active in ("inactive", "failed") else "restart"
                previous = self.systemd.invocation(self.service)
                self.systemd.systemctl(verb, "--no-block", self.service)
                restarted = True
            if self.p["wait"]:
                self.wait_ready(previous if start else "")
                self.secure_own_token()
            if self.p["record"] and self.p["inputs"]:
                self.write_record()
        result = dict(
            changed=bool(self.changed_items), changed_items=self.changed_items, restarted=restarted,
            role=self.role, service=self.service, node_name=self.node_name(),
            version=self.version(), token_ca_hash=self.server_ca_hash(),
        )
        if self.module._diff:
            result["diff"] = self.diffs
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="present", choices=["present"]),
            role=dict(type="str", required=True, choices=["server", "agent"]),
            rootfs=dict(type="path", required=True),
            config=dict(type="dict", default={}),
            keep_server=dict(type="bool", default=False),
            secret_config=dict(type="dict", default={}, no_log=True),
            token=dict(type="str", required=True, no_log=True),
            agent_token=dict(type="str", no_log=True),
            token_file=dict(type="path", default=layout.TOKEN_FILE),
            agent_token_file=dict(type="path", default=layout.AGENT_TOKEN_FILE),
            registries=dict(type="dict", default={}),
            registry_auth=dict(type="list", elements="dict", default=[], options=dict(
                host=dict(type="str", required=True),
                auth=dict(type="dict", required=True, options=dict(
                    username=dict(type="str"),
                    password=dict(type="str", no_log=True),
                    auth=dict(type="str", no_log=True),
                    identity_token=dict(type="str", no_log=True),
                )),
            )),
            env=dict(type="dict", default={}, no_log=True),
            manifests=dict(type="bool", default=True),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=300),
            data_dir=dict(type="path", default=layout.DATA_DIR),
            inputs=dict(type="str"),
            record=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    try:
        result = K3sRuntime(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
