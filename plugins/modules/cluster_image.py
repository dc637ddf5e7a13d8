#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_image
short_description: Build, store, pull, push, save, load and extract cluster images (OCI) on the controller
version_added: 0.1.0
description:
  - Manages cluster images in a local store, an OCI image layout (content-addressed and
    deduplicated; C(skopeo) and other OCI tools read it as C(oci:<store>:<reference>)).
  - Run it on the controller (C(delegate_to=localhost) or a play on C(localhost)).
  - Builds from a Kubefile context reproducibly (the same context gives the same digest), pulls
    and pushes through C(skopeo) with credentials in a 0600 auth file, saves and loads OCI
    archives for air-gapped transfer, and extracts the image to a rootfs directory cached by
    digest. Every blob is checked against its digest; a tampered or truncated blob is an error
    that names it.
author:
  - seal.cluster developers (@seal-cluster)
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.platform
options:
  name:
    description: Image reference, for example V(k3s:v1.25.3) or V(reg.example:5000/ns/k3s:v1.25.3).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the image is in the store (see O(pull)), extracts and describes it.
      - V(built) builds it from the Kubefile context O(path) (rebuilding every time; the store
        changes only when the digest does).
      - V(pushed) pushes it from the store to its registry.
      - V(absent) removes the reference and the blobs no other image uses.
      - V(archived) writes it to the OCI archive O(archive); V(loaded) loads O(archive) into the store.
    type: str
    choices: [present, built, pushed, absent, archived, loaded]
    default: present
  pull:
    description: With O(state=present), when to pull from the registry.
    type: str
    choices: [missing, always, never]
    default: missing
  path:
    description: Build context (a directory holding the Kubefile) for O(state=built).
    type: path
  kubefile:
    description: Kubefile to build from. Default C(<path>/Kubefile).
    type: path
  build_args:
    description: Build arguments (C(ARG) values; C(ARCH) defaults to O(arch)).
    type: dict
    default: {}
  arch:
    description: Architecture of the image built.
    type: str
    default: amd64
  archive:
    description: OCI archive for O(state=archived) and O(state=loaded).
    type: path
  store:
    description: The local store. Default C($SEAL_IMAGE_STORE), else C(~/.cache/seal/images).
    type: path
  username:
    description: Registry user name.
    type: str
  password:
    description: Registry password.
    type: str
  ca_file:
    description: CA bundle to trust for the registry's TLS certificate.
    type: path
  insecure:
    description: Skip TLS verification (plain HTTP is allowed for loopback registries anyway).
    type: bool
    default: false
  extract:
    description:
      - Extract the image to its rootfs directory and return RV(rootfs).
      - This also happens in check mode for an image already in the store, because the rootfs
        cache is derived from the store and the install needs it to plan.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: partial
    details: V(built) and O(pull=always) report a change only when the stored digest changed.
  platform:
    platforms: posix
requirements:
  - skopeo, for O(state=pushed) and pulls
"""

EXAMPLES = r"""
- name: Make sure the image is in the store, pulling it if missing
  seal.cluster.cluster_image:
    name: registry.example:5000/k3s:v1.25.3
    ca_file: /etc/ssl/registry-ca.crt
    username: admin
    password: "{{ vault_registry_password }}"
  delegate_to: localhost
  register: image

- name: Build from a Kubefile context
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: built
    path: ./k3s-image
  delegate_to: localhost

- name: Save for an air-gapped site
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: archived
    archive: /media/usb/k3s-v1.25.3.oci.tar
  delegate_to: localhost
"""

RETURN = r"""
digest:
  description: Manifest digest of the image.
  returned: when the image exists
  type: str
  sample: sha256:4f2c...
size:
  description: Bytes of the manifest, config and layers.
  returned: when the image exists
  type: int
labels:
  description: Image labels.
  returned: when the image exists
  type: dict
runtime:
  description: Cluster runtime (label C(cluster.alpha.sealer.io/cluster-runtime-type), else the Metadata file's C(ClusterRuntime)).
  returned: when the image exists
  type: str
runtime_version:
  description: Runtime version, for example V(v1.25.3+k3s1).
  returned: when the image exists
  type: str
arch:
  description: Architecture.
  returned: when the image exists
  type: str
rootfs:
  description: Extracted rootfs directory on the controller.
  returned: when the image exists and O(extract=true)
  type: str
image_list:
  description: Images listed in the image's C(manifests/imageList).
  returned: when the image exists and O(extract=true)
  type: list
  elements: str
name:
  description: The fully qualified reference.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _image_transfer as transfer
from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe, extract, runtime_error
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError


class ClusterImage:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        try:
            self.ref = Reference.parse(self.p["name"])
        except ReferenceError_ as exc:
            module.fail_json(msg=str(exc))
        self.store = Store(self.p["store"])
        self.result = {"changed": False, "name": str(self.ref)}

    def registry(self):
        skopeo = self.module.get_bin_path("skopeo", required=True)
        return transfer.Registry(self.module.run_command, skopeo, self.p["username"], self.p["password"],
                                 self.p["ca_file"], self.p["insecure"])

    def finish(self, desc, before=None):
        if desc is not None:
            rootfs = None
            if self.p["extract"] and self.store.resolve(self.ref) is not None:
                # also in check mode: the rootfs cache is derived from the store, not state
                rootfs, _new = extract(self.store, desc)
            info = describe(self.store, desc, rootfs)
            if self.p["extract"] and rootfs and not info["runtime"]:
                self.module.fail_json(msg=runtime_error(self.ref, desc), **self.result)
            self.result.update(info)
            self.result.pop("kubefile", None)
            if rootfs:
                self.result["rootfs"] = rootfs
        if self.module._diff:
            after = desc["digest"] if desc else None
            self.result["diff"] = {"before": "%s: %s\n" % (self.ref, before or "absent"), "after": "%s: %s\n" % (self.ref, after or "absent")}
        self.module.exit_json(**self.result)

    def run(self):
        state = self.p["state"]
        self.store.ensure()
        current = self.store.resolve(self.ref)
        before = current["digest"] if current else None
        if state == "present":
            if current is None or self.p["pull"] == "always":
                if self.p["pull"] == "never":
                    self.module.fail_json(msg="image %s is not in the store %s and pull=never" % (self.ref, self.store.root), **self.result)
                if self.check:
                    self.result["changed"] = current is None
                    self.finish(current, before)
                with self.store.lock():
                    self.registry().pull(self.store, self.ref)
                current = self.store.resolve(self.ref)
                self.result["changed"] = before != current["digest"]
            self.finish(current, before)
        if state == "built":
            if not self.p["path"]:
                self.module.fail_json(msg="state=built needs path (the Kubefile context)")
            if self.check:
                self.result["changed"] = True
                self.finish(current, before)
            builder = Builder(self.store, self.p["path"], self.p["kubefile"], self.p["arch"], self.p["build_args"])
            desc, _previous = builder.build(self.ref)
            self.result["changed"] = desc["digest"] != before
            self.finish(desc, before)
        if state == "absent":
            if current is not None:
                self.result["changed"] = True
                if not self.check:
                    with self.store.lock():
                        self.store.untag(self.ref)
                        self.result["blobs_removed"] = self.store.gc()
            self.finish(None, before)
        if current is None:
            self.module.fail_json(msg="image %s is not in the store %s" % (self.ref, self.store.root), **self.result)
        if state == "pushed":
            self.result["changed"] = True
            if not self.check:
                self.registry().push(self.store, self.ref, current)
            self.p["extract"] = False
            self.finish(current, before)
        if state == "archived":
            if not self.p["archive"]:
                self.module.fail_json(msg="state=archived needs archive")
            self.result["changed"] = True
            if not self.check:
                transfer.save(self.store, self.ref, current, self.p["archive"])
            self.finish(current, before)

    def load(self):
        if not self.p["archive"] or not os.path.isfile(self.p["archive"]):
            self.module.fail_json(msg="state=loaded needs archive, an existing OCI archive file (got %r)" % self.p["archive"])
        if self.check:
            self.result["changed"] = True
            self.module.exit_json(**self.result)
        current = self.store.resolve(self.ref)
        with self.store.lock():
            tagged = transfer.load(self.store, self.p["archive"])
        desc = self.store.resolve(self.ref)
        if desc is None:
            held = ", ".join(str(r) for r, _d in tagged) or "nothing"
            self.module.fail_json(msg="archive %s does not hold %s (it holds %s)" % (self.p["archive"], self.ref, held))
        self.result["changed"] = current is None or current["digest"] != desc["digest"]
        self.finish(desc, current["digest"] if current else None)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "built", "pushed", "absent", "archived", "loaded"]),
            pull=dict(type="str", default="missing", choices=["missing", "always", "never"]),
            path=dict(type="path"),
            kubefile=dict(type="path"),
            build_args=dict(type="dict", default={}),
            arch=dict(type="str", default="amd64"),
            archive=dict(type="path"),
            store=dict(type="path"),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            ca_file=dict(type="path"),
            insecure=dict(type="bool", default=False),
            extract=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    manager = ClusterImage(module)
    try:
        if module.params["state"] == "loaded":
            manager.load()
        manager.run()
    except (StoreError, BuildError, ReferenceError_) as exc:
        module.fail_json(msg=str(exc), name=manager.result["name"])


if __name__ == "__main__":
    main()
