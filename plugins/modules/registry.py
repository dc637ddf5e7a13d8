#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: registry
short_description: Run a cluster's private registry on a registry host, healthy and holding the cluster image's images
version_added: 0.1.0
description:
  - Installs the distribution registry binary of a cluster image (C(bin/registry) of the rootfs)
    as the systemd service C(seal-registry-<cluster>), with its C(config.yml), TLS certificate,
    key and CA, and an htpasswd file, and keeps it enabled and running. The service is
    restarted only when its binary, config, unit, certificate, key or htpasswd really changed.
  - The registry serves O(data_dir) (outside the rootfs). Each run merges the cluster image's
    C(registry/) storage into it, adding what is missing and setting the tags the image
    defines, and never deletes anything, so images that users pushed survive an upgrade to a
    newer cluster image. Blob data is hard-linked from the rootfs where possible.
  - Then checks the registry as a client would, through O(health_address) with TLS verified
    for O(domain) against O(ca_cert) - C(GET /v2/) with the credentials (and a 401 without
    them) - and fails naming every image that the cluster image lists (C(manifests/imageList)
    and C(image:) fields under C(manifests/)) and O(images) that the registry does not serve.
  - Images are looked up by their path without the registry domain
    (C(docker.io/library/busybox:1.36) is C(library/busybox:1.36)), where a mirror of docker.io,
    quay.io and the others finds them.
  - The TLS key, the htpasswd content and the password are never shown in output or diffs.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  cluster:
    description: Name of the cluster (a DNS-1123 label); names the service, the data and config directories.
    type: str
    required: true
  state:
    description:
      - V(present) installs, starts and checks the registry.
      - V(absent) stops and disables the service and removes its unit, binary and config
        directory; O(data_dir) is removed only with O(remove_data=true).
    type: str
    choices: [present, absent]
    default: present
  rootfs:
    description:
      - The cluster image's rootfs on the host; C(bin/registry), C(registry/) and C(manifests/)
        are read from it. Required with O(state=present).
    type: path
  domain:
    description: Name the registry is reached by; its certificate must hold it.
    type: str
    default: sea.hub
  port:
    description: Port the registry listens on (all addresses).
    type: int
    default: 5000
  data_root:
    description: Root of seal.cluster's data on the host (sealer's C(dataRoot)).
    type: path
    default: /var/lib/seal
  data_dir:
    description: The registry's storage. Default C(<data_root>/<cluster>/registry).
    type: path
  config_dir:
    description: Where config.yml, the TLS files and the htpasswd go. Default C(/etc/seal/<cluster>/registry).
    type: path
  ca_cert:
    description: PEM of the CA that issued O(tls_cert); written to C(<config_dir>/ca.crt) and used by the check.
    type: str
  tls_cert:
    description:
      - PEM of the registry's serving certificate. Without it the registry serves plain HTTP
        (Clusterfile C(insecure=true)).
    type: str
  tls_key:
    description: PEM of the certificate's private key; written with mode 0600. Required with O(tls_cert).
    type: str
  htpasswd:
    description:
      - Content of the htpasswd file (bcrypt), mode 0600. Without it the registry has no auth.
    type: str
  username:
    description: User for the health and catalog checks (the one in O(htpasswd)).
    type: str
  password:
    description: Password of O(username).
    type: str
  images:
    description: More image references the registry must serve, besides those the rootfs lists.
    type: list
    elements: str
    default: []
  check_images:
    description: Fail when the registry does not serve an image that the cluster image lists.
    type: bool
    default: true
  health_address:
    description: Address the checks dial (TLS is still verified for O(domain)).
    type: str
    default: 127.0.0.1
  timeout:
    description: Seconds to wait for the registry to answer after a start or restart.
    type: int
    default: 60
  remove_data:
    description: With O(state=absent), remove O(data_dir) too (images users pushed are lost).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details:
      - A running registry with nothing to change is still checked (read-only requests).
      - When something would change, the registry is not checked, since the new state is not running yet.
  diff_mode:
    support: full
    details: Secret files are shown as a size marker only.
requirements:
  - systemd on the host.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Serve the cluster image's registry data on master0
  seal.cluster.registry:
    cluster: my-cluster
    rootfs: /var/lib/seal/my-cluster/rootfs
    domain: sea.hub
    port: 5000
    ca_cert: "{{ certs.ca_cert }}"
    tls_cert: "{{ certs.cert }}"
    tls_key: "{{ server_key.content | b64decode }}"
    htpasswd: "{{ htpasswd_file.content | b64decode }}"
    username: admin
    password: "{{ registry_password }}"

- name: Remove the registry (keeping its data)
  seal.cluster.registry:
    cluster: my-cluster
    state: absent
"""

RETURN = r"""
service:
  description: Name of the systemd unit.
  returned: always
  type: str
  sample: seal-registry-my-cluster.service
restarted:
  description: Whether the service was (or, in check mode, would be) started or restarted.
  returned: always
  type: bool
files_changed:
  description: Files (binary, config, unit, TLS, htpasswd) that changed.
  returned: always
  type: list
  elements: str
merged:
  description: Storage files added from the image's C(registry/) and tags set to the image's manifests.
  returned: when O(state=present)
  type: dict
  sample: {added: 42, updated: 0}
images:
  description: Image references the registry must serve.
  returned: when O(state=present)
  type: list
  elements: str
catalog:
  description: Repositories the registry serves (empty when not checked).
  returned: when O(state=present)
  type: list
  elements: str
checked:
  description: Whether the health and catalog checks ran (not in check mode when something would change).
  returned: when O(state=present)
  type: bool
"""

import os
import ssl
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import FileState, copy_atomic, remove_path, sha256_file
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import CacheError, images_wanted
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._registry_server import (
    RegistryAPIError,
    RegistryProbe,
    merge_apply,
    merge_plan,
    missing_images,
    render_config,
    render_unit,
)
from ansible_collections.seal.cluster.plugins.module_utils._systemd import UNIT_DIR, Runner, Systemd, SystemdError


class Registry:
    def __init__(self, module, runner=None, unit_dir=UNIT_DIR):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        cluster = self.p["cluster"]
        self.service = "seal-registry-%s.service" % cluster
        self.unit_path = os.path.join(unit_dir, self.service)
        base = os.path.join(self.p["data_root"], cluster)
        self.data_dir = self.p["data_dir"] or os.path.join(base, "registry")
        self.config_dir = self.p["config_dir"] or os.path.join("/etc/seal", cluster, "registry")
        self.binary = os.path.join(base, "bin", "seal-registry")
        self.result = {"changed": False, "service": self.service, "restarted": False, "files_changed": []}
        self.diffs = []
        self.systemd = Systemd(runner or Runner(module))

    def path(self, name):
        return os.path.join(self.config_dir, name)

    def fail(self, msg):
        raise ModuleFailure(msg, **self.result)

    # -- present ---------------------------------------------------------------------------
    def wanted(self):
        manifests = os.path.join(self.p["rootfs"], "manifests")
        files = {}
        for dirpath, _dirs, names in os.walk(manifests):
            for name in names:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.p["rootfs"]).replace(os.sep, "/")
                try:
                    with open(full, encoding="utf-8") as f:
                        files[rel] = f.read()
                except (OSError, UnicodeDecodeError):
                    continue
        try:
            refs = [ref for ref, _where in images_wanted(files)]
        except CacheError as exc:
            self.fail("%s: %s" % (self.p["rootfs"], exc))
        for text in self.p["images"]:
            try:
                refs.append(Reference.parse(text))
            except ReferenceError_ as exc:
                self.fail("images: %s" % exc)
        seen, unique = set(), []
        for ref in refs:
            if str(ref) not in seen:
                seen.add(str(ref))
                unique.append(ref)
        return unique

    def desired_files(self):
        tls = bool(self.p["tls_cert"])
        files = []
        if tls:
            files.append(FileState(self.path("tls.crt"), self.p["tls_cert"], 0o644))
            files.append(FileState(self.path("tls.key"), self.p["tls_key"] or "", 0o600, secret=True))
        if self.p["ca_cert"]:
            files.append(FileState(self.path("ca.crt"), self.p["ca_cert"], 0o644))
        if self.p["htpasswd"]:
            files.append(FileState(self.path("htpasswd"), self.p["htpasswd"], 0o600, secret=True))
        config = render_config(self.data_dir, self.p["port"],
                               tls_cert=self.path("tls.crt") if tls else None,
                               tls_key=self.path("tls.key") if tls else None,
                               htpasswd=self.path("htpasswd") if self.p["htpasswd"] else None)
        files.append(FileState(self.path("config.yml"), config, 0o644))
        files.append(FileState(self.unit_path, render_unit(self.p["cluster"], self.binary, self.path("config.yml")), 0o644))
        return files

    def present(self):
        p = self.p
        if not p["rootfs"]:
            self.fail("rootfs is required with state=present")
        source_binary = os.path.join(p["rootfs"], "bin", "registry")
        if not os.path.isfile(source_binary):
            self.fail("%s not found: the cluster image's rootfs has no registry binary (bin/registry)" % source_binary)
        if p["tls_cert"] and not p["tls_key"] and not self.check:
            self.fail("tls_key is required with tls_cert")
        if p["tls_cert"] and not p["ca_cert"]:
            self.fail("ca_cert is required with tls_cert (the check verifies the registry's certificate with it)")
        if p["htpasswd"] and not (p["username"] and p["password"]):
            self.fail("username and password are required with htpasswd (the check authenticates with them)")
        refs = self.wanted()
        self.result["images"] = [str(r) for r in refs]

        files = self.desired_files()
        restart = False
        for state in files:
            if state.changed:
                self.result["files_changed"].append(state.path)
                self.diffs.append(state.diff())
                restart = restart or not state.path.endswith("/ca.crt")
        want_sum, have_sum = sha256_file(source_binary), sha256_file(self.binary)
        if want_sum != have_sum:
            self.result["files_changed"].append(self.binary)
            self.diffs.append({"before_header": self.binary, "after_header": self.binary,
                               "before": "absent\n" if have_sum is None else "sha256 %s\n" % have_sum,
                               "after": "sha256 %s (from %s)\n" % (want_sum, source_binary)})
            restart = True
        image_storage = os.path.join(p["rootfs"], "registry")
        plan = merge_plan(image_storage, self.data_dir)
        self.result["merged"] = {"added": sum(1 for _r, a in plan if a == "add"),
                                 "updated": sum(1 for _r, a in plan if a == "update")}
        if plan:
            self.diffs.append({"before_header": self.data_dir, "after_header": self.data_dir, "before": "",
                               "after": "".join("%s %s\n" % (a, r) for r, a in plan[:50])
                               + ("... and %d more\n" % (len(plan) - 50) if len(plan) > 50 else "")})
        data_dir_missing = not os.path.isdir(self.data_dir)

        if not self.check:
            os.makedirs(self.config_dir, mode=0o755, exist_ok=True)
            for state in files:
                state.apply()
            if want_sum != have_sum:
                copy_atomic(source_binary, self.binary, 0o755)
            os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
            merge_apply(image_storage, self.data_dir, plan)

        unit_changed = self.unit_path in self.result["files_changed"]
        rc_enabled, enabled = self.systemd.systemctl("is-enabled", self.service, check=False)
        rc_active, active = self.systemd.systemctl("is-active", self.service, check=False)
        enabled_ok = rc_enabled == 0 and enabled == "enabled"
        running = rc_active == 0 and active == "active"
        start = restart or not running
        if not self.check:
            if unit_changed:
                self.systemd.systemctl("daemon-reload")
            if not enabled_ok:
                self.systemd.systemctl("enable", self.service)
            if start:
                self.systemd.systemctl("restart", self.service)
        if not enabled_ok:
            self.diffs.append({"before_header": self.service, "after_header": self.service,
                               "before": "%s\n" % (enabled or "not enabled"), "after": "enabled\n"})
        if start:
            self.diffs.append({"before_header": self.service, "after_header": self.service,
                               "before": "%s\n" % (active or "inactive"),
                               "after": "restarted\n" if running else "started\n"})
        self.result["restarted"] = start
        self.result["changed"] = bool(self.result["files_changed"] or plan or data_dir_missing
                                      or not enabled_ok or start)

        self.result["catalog"] = []
        self.result["checked"] = False
        if self.check and self.result["changed"]:
            return
        probe = RegistryProbe(p["health_address"], p["port"], p["domain"], ca_pem=p["ca_cert"],
                              username=p["username"], password=p["password"], tls=bool(p["tls_cert"]))
        self.wait_healthy(probe)
        if p["htpasswd"]:
            anonymous = RegistryProbe(p["health_address"], p["port"], p["domain"], ca_pem=p["ca_cert"],
                                      tls=bool(p["tls_cert"]))
            status, _h, _b = anonymous.request("/v2/")
            if status != 401:
                self.fail("the registry answers GET /v2/ without credentials with HTTP %d, not 401: auth is not on" % status)
        try:
            self.result["catalog"] = sorted(probe.catalog())
            missing = missing_images(probe, refs) if p["check_images"] else []
        except (OSError, ssl.SSLError, RegistryAPIError, ValueError) as exc:
            self.fail("cannot read the catalog of %s:%d: %s" % (p["domain"], p["port"], exc))
        self.result["checked"] = True
        if missing:
            self.fail("the registry %s:%d does not serve %d image(s) that the cluster image lists: %s"
                      % (p["domain"], p["port"], len(missing), ", ".join(missing)))

    def wait_healthy(self, probe):
        p = self.p
        deadline = time.monotonic() + p["timeout"]
        last = None
        while True:
            try:
                status, _headers, body = probe.request("/v2/")
                if status == 200:
                    return
                if status == 401:
                    self.fail("the registry rejects the credentials of user %r (GET /v2/: HTTP 401)" % p["username"])
                last = "HTTP %d %s" % (status, body[:200].decode("utf-8", "replace"))
            except ssl.SSLCertVerificationError as exc:
                last = "TLS verification for %s failed: %s" % (p["domain"], exc)
            except (OSError, ssl.SSLError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                journal = "\n".join(self.systemd.journal(self.service, 15))
                self.fail("the registry on %s:%d is not healthy after %ds (GET https://%s:%d/v2/): %s\n%s"
                          % (p["health_address"], p["port"], p["timeout"], p["domain"], p["port"], last, journal))
            time.sleep(1)

    # -- absent ----------------------------------------------------------------------------
    def absent(self):
        removed = []
        if os.path.exists(self.unit_path):
            removed.append(self.unit_path)
            if not self.check:
                self.systemd.systemctl("disable", "--now", self.service, check=False)
                os.unlink(self.unit_path)
                self.systemd.systemctl("daemon-reload")
        for path in (self.config_dir, self.binary) + ((self.data_dir,) if self.p["remove_data"] else ()):
            if os.path.lexists(path):
                removed.append(path)
                if not self.check:
                    remove_path(path)
        self.result["files_changed"] = removed
        self.diffs = [{"before_header": path, "after_header": path, "before": "present\n", "after": "absent\n"}
                      for path in removed]
        self.result["changed"] = bool(removed)

    def run(self):
        try:
            if self.p["state"] == "present":
                self.present()
            else:
                self.absent()
        except SystemdError as exc:
            self.fail(str(exc))
        if self.module._diff:
            self.result["diff"] = self.diffs
        return self.result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cluster=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            rootfs=dict(type="path"),
            domain=dict(type="str", default="sea.hub"),
            port=dict(type="int", default=5000),
            data_root=dict(type="path", default="/var/lib/seal"),
            data_dir=dict(type="path"),
            config_dir=dict(type="path"),
            ca_cert=dict(type="str"),
            tls_cert=dict(type="str"),
            tls_key=dict(type="str", no_log=True),
            htpasswd=dict(type="str", no_log=True),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            images=dict(type="list", elements="str", default=[]),
            check_images=dict(type="bool", default=True),
            health_address=dict(type="str", default="127.0.0.1"),
            timeout=dict(type="int", default=60),
            remove_data=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ["rootfs"])],
        supports_check_mode=True,
    )
    try:
        check_args(module.params)
        result = Registry(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


def check_args(p):
    """The cluster's name goes into the unit's name and into paths that state=absent removes."""
    names.check_cluster_name(p["cluster"], "cluster")
    names.check_domain(p["domain"], "domain")
    names.check_absolute_path(p["data_root"], "data_root")
    for option in ("data_dir", "config_dir"):
        if p[option]:
            names.check_absolute_path(p[option], option)
    if p["username"]:
        names.check_registry_username(p["username"], "username")


if __name__ == "__main__":
    main()
