#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs
short_description: Put a cluster image's rootfs on a host, once per image digest
version_added: 0.1.0
description:
  - Ships a tar archive of a cluster image's rootfs from the controller to the host and
    unpacks it at O(dest), unless O(dest) already carries the marker of the same image digest.
    The archive is sent only when needed.
  - The rootfs is unpacked next to O(dest) and renamed into place, so a host never holds a
    half-unpacked rootfs under O(dest); the previous rootfs is removed only after the new one
    is complete. The marker file C(.seal-digest) inside O(dest) records the digest.
  - The archive is unpacked by the collection's safe archive helper, with the rules of Python's
    C(data) extraction filter on every Python version. Absolute or C(..) names, symlinks and hard
    links leading out of the rootfs, devices and FIFOs are refused; setuid/setgid/sticky bits and
    group/other write permissions are dropped; nothing is written through a symlink.
  - The action plugin part runs on the controller (it reads O(src)); the module part runs on the host.
  - When O(src) is the rootfs directory of an image in the controller's store, the host's rootfs is
    built from the image's layers instead (docs/distribution.md) - each layer's digest is checked,
    only the layers the host lacks (or whose files are damaged) are fetched, only the paths of the
    host's O(role) are written, and a blob comes either from the controller over the connection
    (O(source=controller)) or from the cluster's registry (O(source=registry)). With O(storage)
    (the seed, the first registry host) the blobs are kept in the registry's storage, where the
    other hosts fetch them.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  src:
    description:
      - The rootfs on the controller, a directory (a tar of it is made once per digest, next to
        it) or a tar archive. The action plugin ships it and hands the module the host's copy.
      - Required with O(state=present). When it is C(<store>/rootfs/<hex of digest>) of an image in
        the controller's store, the image's layers are distributed instead (O(layers)).
    type: path
  digest:
    description: Digest of the cluster image (C(sha256:...)). Required unless O(state=absent).
    type: str
  dest:
    description: Directory on the host that holds the rootfs.
    type: path
    required: true
  role:
    description:
      - What this host gets of a layered image - V(agent) the paths C(bin), C(Metadata) and
        C(Kubefile); V(server) everything but C(registry); V(registry) everything.
    type: str
    choices: [agent, server, registry]
    default: registry
  source:
    description:
      - Where the layers come from - V(controller) over the connection (the seed, a single-host
        cluster, an external registry), V(registry) from the cluster's registry described by O(registry).
    type: str
    choices: [controller, registry]
    default: controller
  held:
    description:
      - What the host holds, as M(seal.cluster.rootfs_info) reports it with the same O(dest),
        O(role) and O(storage), read earlier in the same run (M(seal.cluster.node_prepare)'s
        C(reports.rootfs)). The action plugin then does not ask the host again; a host that holds
        the image intact costs no module call. Read by the action plugin only.
    type: dict
  storage:
    description:
      - The seed's registry storage (C(<data_root>/<cluster>/registry)) - every layer blob is kept
        there, verified, under the repository C(seal/rootfs-layers).
    type: path
  registry:
    description: With O(source=registry), the registry to fetch the layers from.
    type: dict
    suboptions:
      address:
        description: Address to dial (the seed's).
        type: str
      port:
        description: Port of the registry.
        type: int
      domain:
        description: The registry's TLS name (checked against its certificate).
        type: str
      ca_file:
        description: The registry's CA on this host.
        type: path
      tls:
        description: Whether the registry speaks TLS.
        type: bool
        default: true
      username:
        description: This host's pull user (from the inventory).
        type: str
      password:
        description: This host's pull password (from the inventory; never logged, written nowhere).
        type: str
      timeout:
        description: Seconds to wait on the registry per connection.
        type: int
        default: 30
  layers:
    description: Set by the action plugin - the image's layers (digest, size, top-level names).
    type: list
    elements: dict
  shipped:
    description: Set by the action plugin - the host paths of the blobs it sent, by digest.
    type: dict
  state:
    description:
      - V(present) puts the rootfs in place; V(absent) removes O(dest).
      - The digest recorded at O(dest) is read by M(seal.cluster.rootfs_info) (the action plugin
        asks it first, so that converged hosts get no copy).
    type: str
    choices: [present, absent]
    default: present
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the work happen on the controller.
    support: full
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The rootfs shows as the image digest its marker records, before and after.
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Distribute the cluster image rootfs
  seal.cluster.rootfs:
    src: /root/.cache/seal/rootfs/sha256-abc.tar
    digest: sha256:abc...
    dest: /var/lib/seal/my-cluster/rootfs
"""

RETURN = r"""
digest:
  description: Digest recorded at O(dest) after the run (V(null) when absent).
  returned: always
  type: str
previous_digest:
  description: Digest that was recorded before the run.
  returned: always
  type: str
overlay_inputs:
  description:
    - What the Clusterfile's overlay in O(dest) was made from (see M(seal.cluster.rootfs_info));
      returned when nothing moved, as a rootfs that changed needs its overlay made again.
  returned: when the host already held the image
  type: str
transferred:
  description: Whether the archive (or any layer) was sent to or fetched by the host.
  returned: always
  type: bool
fetched:
  description: Digests of the layers fetched (or that would be, in check mode).
  returned: when the image is layered
  type: list
  elements: str
damaged:
  description: Digests of the layers whose files were not as recorded (healed by this run).
  returned: when the image is layered
  type: list
  elements: str
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._digest import DigestError
from ansible_collections.seal.cluster.plugins.module_utils._digest import check as check_digest
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._files import remove_path
from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_layers as rl
from ansible_collections.seal.cluster.plugins.module_utils._registry_server import RegistryAPIError, RegistryProbe
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_marker import marker_path, read_marker
from ansible_collections.seal.cluster.plugins.module_utils._safe_archive import ArchiveError, extract


class RootfsInstaller:
    """Host side. The action plugin asks rootfs_info first, then calls it with the shipped archive."""

    def __init__(self, module):
        self.module = module
        self.p = module.params

    def run(self):
        dest = self.p["dest"]
        before = read_marker(dest)
        result = {"changed": False, "previous_digest": before, "digest": before, "transferred": False}
        if self.p["state"] == "absent":
            if os.path.lexists(dest):
                result.update(changed=True, digest=None)
                if not self.module.check_mode:
                    remove_path(dest)
            return result
        try:
            check_digest(self.p["digest"], "rootfs: digest")
        except DigestError as exc:
            raise ModuleFailure(str(exc)) from exc
        if self.p["layers"] is not None:
            return self.run_layers(result)
        if before == self.p["digest"]:
            return result
        archive = self.p["src"]
        if not archive or not os.path.isfile(archive):
            raise ModuleFailure("rootfs: archive %s is not on the host (use the action plugin, which ships it)" % archive)
        if self.module.check_mode:
            result.update(changed=True, digest=self.p["digest"])
            return result
        staging = dest + ".new"
        remove_path(staging)
        os.makedirs(staging, mode=0o755)
        try:
            self.unpack(archive, staging)
            with open(marker_path(staging), "w", encoding="utf-8") as f:
                f.write(self.p["digest"] + "\n")
            old = dest + ".old"
            remove_path(old)
            if os.path.lexists(dest):
                os.rename(dest, old)
            os.rename(staging, dest)
            remove_path(old)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            shutil.rmtree(staging, ignore_errors=True)
            raise ModuleFailure("rootfs: unpacking %s into %s failed: %s" % (archive, dest, exc)) from exc
        result.update(changed=True, digest=self.p["digest"], transferred=True)
        return result

    def run_layers(self, result):
        p = self.p
        include, exclude = rl.role_paths(p["role"])
        layers = p["layers"]
        for desc in layers:
            try:
                check_digest(desc.get("digest"), "rootfs: layer")
            except DigestError as exc:
                raise ModuleFailure(str(exc)) from exc
        report = rl.check(p["dest"], p["digest"], include, exclude, p["storage"])
        result["damaged"] = report["damaged"]
        if rl.converged(report, p["digest"], layers, p["storage"]):
            result["fetched"] = []
            return result
        builder = rl.LayerBuilder(p["dest"], p["digest"], layers, include, exclude, p["storage"], self.opener())
        planned = [desc["digest"] for desc, action in builder.plan(report) if action == "fetch"]
        result.update(changed=True, digest=p["digest"], fetched=planned)
        if self.module.check_mode:
            return result
        try:
            if p["storage"]:
                self.keep_blobs(report)
            result["fetched"] = builder.build(report)
        except (rl.LayerError, ArchiveError, OSError) as exc:
            raise ModuleFailure("rootfs: building %s from the layers of %s failed: %s" % (p["dest"], p["digest"], exc)) from exc
        result["transferred"] = bool(result["fetched"] or p["shipped"])
        return result

    def keep_blobs(self, report):
        """The seed keeps every blob of the image in the registry's storage (shipped ones moved there)."""
        for desc in self.p["layers"]:
            digest = desc["digest"]
            if digest in report["blobs"]:
                continue
            shipped = (self.p["shipped"] or {}).get(digest)
            if not shipped or not os.path.isfile(shipped):
                raise ModuleFailure("rootfs: layer %s is neither kept in %s nor shipped (use the action plugin)"
                                    % (digest, self.p["storage"]))
            rl.keep_blob(self.p["storage"], digest, shipped)

    def opener(self):
        p = self.p
        if p["storage"]:
            return lambda desc: rl.open_blob(p["storage"], desc)
        if p["source"] == "controller":
            def from_shipped(desc):
                path = (p["shipped"] or {}).get(desc["digest"])
                if not path or not os.path.isfile(path):
                    raise rl.LayerError("layer %s was not shipped (use the action plugin)" % desc["digest"])
                return open(path, "rb")
            return from_shipped
        reg = p["registry"] or {}
        for key in ("address", "port", "domain"):
            if not reg.get(key):
                raise ModuleFailure("rootfs: source=registry needs registry.%s" % key)
        ca_pem = None
        if reg.get("tls", True) and reg.get("ca_file"):
            with open(reg["ca_file"], encoding="utf-8") as f:
                ca_pem = f.read()
        probe = RegistryProbe(reg["address"], int(reg["port"]), reg["domain"], ca_pem=ca_pem,
                              username=reg.get("username"), password=reg.get("password"),
                              tls=reg.get("tls", True), timeout=int(reg.get("timeout", 30)))
        where = "%s:%s (%s)" % (reg["address"], reg["port"], reg["domain"])

        def from_registry(desc):
            try:
                return probe.stream("/v2/%s/blobs/%s" % (rl.REPOSITORY, desc["digest"]))
            except (OSError, RegistryAPIError) as exc:
                raise rl.LayerError("the cluster registry at %s did not serve layer %s: %s (is the registry host up? "
                                    "a re-run fetches what is missing)" % (where, desc["digest"], exc)) from exc
        return from_registry

    def unpack(self, archive, staging):
        """Through the collection's one safe extraction helper (links, hard links and names
        confined to staging, no devices, no setuid bits)."""
        try:
            extract(archive, staging, label="rootfs archive %s" % archive)
        except ArchiveError as exc:
            raise ValueError(str(exc)) from exc


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            digest=dict(type="str"),
            dest=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            role=dict(type="str", default="registry", choices=["agent", "server", "registry"]),
            source=dict(type="str", default="controller", choices=["controller", "registry"]),
            storage=dict(type="path"),
            held=dict(type="dict"),
            registry=dict(type="dict", options=dict(
                address=dict(type="str"), port=dict(type="int"), domain=dict(type="str"),
                ca_file=dict(type="path"), tls=dict(type="bool", default=True),
                username=dict(type="str", no_log=True), password=dict(type="str", no_log=True),
                timeout=dict(type="int", default=30))),
            layers=dict(type="list", elements="dict"),
            shipped=dict(type="dict"),
        ),
        required_if=[("state", "present", ("digest",))],
        supports_check_mode=True,
    )
    try:
        result = RootfsInstaller(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
