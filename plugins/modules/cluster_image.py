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
  - B(Runs on the controller) (C(delegate_to=localhost), or a play on C(localhost) with
    C(connection=local)); the store and the extracted rootfs are controller paths.
  - Builds from a Kubefile context reproducibly (the same context gives the same digest) and
    caches every image named in C(manifests/imageList) and in C(image:) fields of C(manifests/)
    into the image's C(registry/) directory (registry-v2 storage), so that the cluster needs no
    internet.
  - Pulls and pushes with the C(oras) Python library (HTTPS verified against O(ca_file) or the
    system CAs; basic or bearer-token auth), saves and loads OCI archives for air-gapped
    transfer, and extracts the image to a rootfs directory cached by digest.
  - Every blob is checked against its digest; a tampered or truncated blob is an error that
    names it, and nothing half-extracted is ever taken as a good rootfs.
  - Two runs at once are safe, because writers to the store hold a lock file.
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.CONTROLLER_IN_PROCESS
options:
  name:
    description:
      - Image reference, parsed as container tools do. V(k3s:v1.25.3) is
        V(docker.io/library/k3s:v1.25.3); V(reg.example:5000/ns/k3s:v1.25.3) keeps its registry;
        V(name@sha256:<hex>) pins a digest.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the image is in the store (see O(pull)), extracts and describes it.
      - V(built) builds it from the Kubefile context O(path), or from the files of a k3s release
        (O(k3s_release)). The store changes only when the digest does.
      - V(pushed) pushes it from the store to the registry of O(name); nothing is sent when the
        registry already has that digest under that tag.
      - V(absent) removes the reference, then the blobs and extracted rootfs directories that no
        other image uses.
      - V(archived) writes it to the OCI archive O(archive) (unchanged when the archive already
        holds that digest under that name).
      - V(loaded) loads the image O(name) from the OCI archive O(archive) into the store and
        tags only O(name), which the archive must declare (annotation
        C(org.opencontainers.image.ref.name)); other images of the archive are neither tagged
        nor copied. O(name) is replaced when the store had it as another digest (reported as a
        change, with a diff). Member names with a C(./) prefix (C(tar -C layout -cf image.tar .))
        are accepted.
    type: str
    choices: [present, built, pushed, absent, archived, loaded]
    default: present
  pull:
    description:
      - With O(state=present), when to pull from the registry.
      - V(missing) pulls only when the reference is not in the store, V(always) asks the registry
        each time (the store changes only when the registry has a new digest), V(never) fails when
        it is missing.
    type: str
    choices: [missing, always, never]
    default: missing
  path:
    description: Build context (a directory holding the Kubefile) for O(state=built).
    type: path
  k3s_release:
    description:
      - With O(state=built), build from the files of a k3s release as published instead of from O(path)
        (see C(docs/cluster-images.md), "From a k3s release").
      - Every file used must match its line of C(sha256sum-<arch>.txt); the binary must be an ELF binary for
        O(arch) (it is never run) that carries O(k3s_release.version); the tag of O(name), when it names a
        version, must name this one.
      - The image holds C(bin/k3s), C(bin/registry), the air-gap archive in C(images/), its images in
        C(registry/) (copied offline from the archive), C(manifests/imageList) and the sealer labels.
    type: dict
    suboptions:
      path:
        description:
          - Directory holding the release files for O(arch) under their published names, which are
            the binary (C(k3s) for V(amd64), C(k3s-arm64), C(k3s-armhf) for V(arm)),
            C(k3s-airgap-images-<arch>.tar.zst) (or C(.tar.gz), C(.tar)) and C(sha256sum-<arch>.txt).
        type: path
        required: true
      version:
        description: The release's version, for example V(v1.25.3+k3s1).
        type: str
        required: true
      registry_bin:
        description:
          - The distribution registry binary that becomes C(bin/registry), built for O(arch).
          - Default the controller's C(docker-registry) (Debian/Ubuntu package), which fits only when the
            controller has the image's architecture.
        type: path
  kubefile:
    description: Kubefile to build from. Default C(<path>/Kubefile).
    type: path
  build_args:
    description: Build arguments (values of C(ARG) and C(${NAME}) in the Kubefile; C(ARCH) defaults to O(arch)).
    type: dict
    default: {}
  arch:
    description:
      - Architecture of the image built, and of the images cached into its C(registry/).
      - For a pull of a multi-architecture index, the architecture picked.
    type: str
    default: amd64
  image_type:
    description:
      - With O(state=built), sealer's image type, written to the C(sealer.image.extension) annotation
        (sealer's C(build --type)); an V(app-installer) image run on a cluster installs only its apps
        (C(docs/apps.md)).
    type: str
    choices: [kube-installer, app-installer]
    default: kube-installer
  cache_images:
    description:
      - With O(state=built), copy the images that C(manifests/imageList) and C(image:) fields of
        the YAML files under C(manifests/) name into C(registry/), unless the image already holds them.
      - Needs C(skopeo) and C(docker-registry) (the distribution registry) on the controller.
    type: bool
    default: true
  sources:
    description: Credentials and TLS settings for the registries that images are cached from.
    type: list
    elements: dict
    default: []
    suboptions:
      registry:
        description: Registry host[:port] as written in the image references (V(docker.io) for Docker Hub).
        type: str
        required: true
      username:
        description: User name.
        type: str
      password:
        description: Password.
        type: str
      ca_file:
        description: CA bundle for the registry's TLS certificate.
        type: path
      insecure:
        description: Skip TLS verification (and allow plain HTTP) for this registry.
        type: bool
        default: false
  archive:
    description: OCI archive (a tar of an OCI image layout) for O(state=archived) and O(state=loaded).
    type: path
  store:
    description: The local store. Default C($SEAL_IMAGE_STORE), else C(~/.cache/seal/images).
    type: path
  username:
    description: User name for the registry of O(name).
    type: str
  password:
    description: Password (or token) for the registry of O(name).
    type: str
  ca_file:
    description: CA bundle to trust for the registry's TLS certificate.
    type: path
  insecure:
    description: Do not verify the registry's TLS certificate.
    type: bool
    default: false
  plain_http:
    description:
      - Talk plain HTTP to the registry of O(name).
      - Without it, HTTP is used only for a loopback registry (V(localhost), V(127.0.0.0/8), V(::1))
        that does not speak TLS; a TLS certificate that does not verify is always an error.
    type: bool
    default: false
  extract:
    description:
      - Extract the image to its rootfs directory (C(<store>/rootfs/<digest hex>)) and return RV(rootfs).
      - Extraction goes through the collection's safe archive helper (the rules of Python's
        C(data) extraction filter on every Python, OCI whiteouts resolved inside the rootfs,
        nothing written through a symlink); C(Metadata) and C(manifests/imageList) are read only
        as regular files inside the rootfs.
      - Check mode writes nothing. An image not yet extracted is described from its verified
        layers, and RV(rootfs) names the directory a real run would extract to.
    type: bool
    default: true
attributes:
  check_mode:
    support: partial
    details:
      - Registries are asked (read-only) to predict pulls with O(pull=always) and pushes.
      - V(built) is reported as changed without building, since only a build tells its digest.
  diff_mode:
    support: full
  idempotent:
    details: V(built) and O(pull=always) report a change only when the stored digest changed.
requirements:
  - oras (Python library), for pulls and pushes
  - skopeo and docker-registry (Debian/Ubuntu package names), for O(state=built) with images to cache
  - zstd (Debian/Ubuntu package name), for O(k3s_release) with a C(.tar.zst) air-gap archive
notes:
  - The store is shared by every run on the controller; writers lock C(<store>/.lock).
  - The C(seal-image) command line of this collection (C(pip install -e <collection>)) does the
    same operations for sealer users (C(build), C(pull), C(push), C(save), C(load), C(inspect),
    C(images), C(rmi)).
seealso:
  - name: Cluster images
    description: The store layout, the Kubefile and image caching.
    link: https://example.invalid/seal/cluster/docs/cluster-images.md
author:
  - seal.cluster developers (@seal-cluster)
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

- name: Build from a Kubefile context, caching the images of manifests/imageList
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: built
    path: ./k3s-image
    arch: arm64
    sources:
      - registry: registry.example:5000
        username: mirror
        password: "{{ vault_mirror_password }}"
        ca_file: /etc/ssl/registry-ca.crt
  delegate_to: localhost

- name: Build from the files of a k3s release (binary, air-gap images, checksums) in ./k3s-v1.25.3
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: built
    arch: amd64
    k3s_release:
      path: ./k3s-v1.25.3
      version: v1.25.3+k3s1
  delegate_to: localhost

- name: Push it
  seal.cluster.cluster_image:
    name: registry.example:5000/k3s:v1.25.3
    state: pushed
    username: admin
    password: "{{ vault_registry_password }}"
  delegate_to: localhost

- name: Save for an air-gapped site
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: archived
    archive: /media/usb/k3s-v1.25.3.oci.tar
  delegate_to: localhost

- name: Load it there
  seal.cluster.cluster_image:
    name: k3s:v1.25.3
    state: loaded
    archive: /media/usb/k3s-v1.25.3.oci.tar
  delegate_to: localhost
"""

RETURN = r"""
name:
  description: The fully qualified reference.
  returned: always
  type: str
  sample: docker.io/library/k3s:v1.25.3
digest:
  description: Manifest digest of the image.
  returned: when the image exists
  type: str
  sample: sha256:4f2c0a8d1e9b4c7a5f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a
size:
  description: Bytes of the manifest, config and layers.
  returned: when the image exists
  type: int
labels:
  description: Image labels.
  returned: when the image exists
  type: dict
  sample: {"cluster.alpha.sealer.io/cluster-runtime-type": "k3s"}
runtime:
  description: Cluster runtime (label C(cluster.alpha.sealer.io/cluster-runtime-type), else the Metadata file's C(ClusterRuntime)).
  returned: when the image exists
  type: str
  sample: k3s
runtime_version:
  description: Runtime version.
  returned: when the image exists
  type: str
  sample: v1.25.3+k3s1
arch:
  description: Architecture.
  returned: when the image exists
  type: str
  sample: amd64
rootfs:
  description: Extracted rootfs directory on the controller (in check mode, where it is or would be extracted).
  returned: when the image exists and O(extract=true)
  type: str
  sample: /root/.cache/seal/images/rootfs/4f2c0a8d1e9b4c7a5f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a
image_list:
  description: Images listed in the image's C(manifests/imageList).
  returned: when the image exists and O(extract=true)
  type: list
  elements: str
type:
  description: sealer's image type from the C(sealer.image.extension) annotation (V(kube-installer) when there is none).
  returned: when the image exists
  type: str
  sample: app-installer
extension:
  description:
    - The image's C(sealer.image.extension), checked (C(docs/image-interchange.md)); type, applications
      (name, type, files, env, cmds), launch (cmds, app_names), env, labels.
  returned: when the image exists
  type: dict
container_images:
  description: The image's C(sealer.image.container.images) as a list of image, app and arch.
  returned: when the image exists
  type: list
  elements: dict
blobs_removed:
  description: How many blobs O(state=absent) removed.
  returned: when O(state=absent) removed the image
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.seal.cluster.plugins.module_utils import _image_registry as registry
from ansible_collections.seal.cluster.plugins.module_utils import _image_transfer as transfer
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure, exit_module
from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import CacheError, ImageCache
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import (
    cached_rootfs, describe, extract, rootfs_path, runtime_error)
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_release as recipe


class ClusterImage:
    """One run of the module: read the store once, act outside check mode, report changed + diff."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.result = {"changed": False, "name": self.p["name"]}
        try:
            self.ref = Reference.parse(self.p["name"])
        except ReferenceError_ as exc:
            raise ModuleFailure(str(exc)) from exc
        self.store = Store(self.p["store"])
        self.result["name"] = str(self.ref)

    # -- helpers -------------------------------------------------------------------------
    def creds(self):
        if not registry.HAS_ORAS:
            raise ModuleFailure(missing_required_lib("oras"), exception=registry.ORAS_IMPORT_ERROR, **self.result)
        return {"username": self.p["username"], "password": self.p["password"], "ca_file": self.p["ca_file"],
                "insecure": self.p["insecure"], "plain_http": self.p["plain_http"]}

    def remote_digest(self):
        """The digest the registry has for the reference, or None."""
        client = registry.connect(self.ref.registry, self.ref.repository, **self.creds())
        response = client.do_request("%s/manifests/%s" % (client.base, self.ref.digest or self.ref.tag), "HEAD",
                                     headers={"Accept": registry.ACCEPT})
        if response.status_code == 404:
            return None
        client._check(response, "asking for %s" % self.ref)  # pylint: disable=protected-access
        return response.headers.get("Docker-Content-Digest") or "unknown"

    def finish(self, desc, before):
        """The result for the image now described by desc (None: absent)."""
        if desc is not None:
            rootfs = None
            if self.p["extract"] and self.store.resolve(self.ref) is not None:
                if self.check:  # check mode writes nothing: a cached rootfs is read, else the layers
                    rootfs = cached_rootfs(self.store, desc)
                    self.result["rootfs"] = rootfs_path(self.store, desc)
                else:
                    rootfs, _new = extract(self.store, desc)
            info = describe(self.store, desc, rootfs)
            if self.p["extract"] and rootfs and not info["runtime"]:
                raise ModuleFailure(runtime_error(self.ref, desc), **self.result)
            self.result.update(info)
            self.result.pop("kubefile", None)
            if rootfs:
                self.result["rootfs"] = rootfs
        if self.module._diff:
            after = desc["digest"] if desc else None
            self.result["diff"] = {"before": "%s: %s\n" % (self.ref, before or "absent"),
                                   "after": "%s: %s\n" % (self.ref, after or "absent")}
        return self.result

    # -- states --------------------------------------------------------------------------
    def run(self):
        state = self.p["state"]
        if not self.check:
            self.store.ensure()
        current = self.store.resolve(self.ref)
        before = current["digest"] if current else None
        return getattr(self, "state_" + state)(current, before)

    def state_present(self, current, before):
        pull = self.p["pull"]
        if current is not None and pull != "always":
            return self.finish(current, before)
        if current is None and pull == "never":
            raise ModuleFailure("image %s is not in the store %s and pull=never" % (self.ref, self.store.root), **self.result)
        if self.check:
            remote = self.remote_digest()
            if remote is None:
                raise ModuleFailure("image %s is not in its registry" % self.ref, **self.result)
            self.result["changed"] = remote != before
            return self.finish(current, before)
        with self.store.lock():
            desc = registry.pull(self.store, self.ref, arch=self.p["arch"], **self.creds())
        self.result["changed"] = desc["digest"] != before
        return self.finish(desc, before)

    def state_built(self, current, before):
        if self.p["k3s_release"]:
            return self.built_from_release(current, before)
        if not self.p["path"]:
            raise ModuleFailure("state=built needs path (the Kubefile context) or k3s_release", **self.result)
        if self.check:
            # a build is the only way to know its digest: report a change unless nothing could differ
            self.result["changed"] = True
            return self.finish(current, before)
        cache = None
        if self.p["cache_images"]:
            try:
                cache = ImageCache.find(self.p["arch"], self.p["sources"], run=self.run_command)
            except CacheError:
                cache = None  # reported by the build only if some image really has to be cached
        builder = Builder(self.store, self.p["path"], self.p["kubefile"], self.p["arch"], self.p["build_args"],
                          cache_images=self.p["cache_images"], image_cache=cache, image_type=self.p["image_type"])
        desc, _previous = builder.build(self.ref)
        self.result["changed"] = desc["digest"] != before
        return self.finish(desc, before)

    def built_from_release(self, current, before):
        release = self.p["k3s_release"]
        recipe.verify(self.ref, release["path"], release["version"], self.p["arch"])
        if self.check:
            self.result["changed"] = True
            return self.finish(current, before)
        desc, _previous = recipe.build(self.store, self.ref, release["path"], release["version"], self.p["arch"],
                                       release["registry_bin"])
        self.result["changed"] = desc["digest"] != before
        return self.finish(desc, before)

    def run_command(self, argv):
        return self.module.run_command(argv)

    def state_absent(self, current, before):
        if current is not None:
            self.result["changed"] = True
            if not self.check:
                with self.store.lock():
                    self.store.untag(self.ref)
                    self.result["blobs_removed"] = self.store.gc()
        return self.finish(None, before)

    def require(self, current):
        if current is None:
            raise ModuleFailure("image %s is not in the store %s" % (self.ref, self.store.root), **self.result)

    def state_pushed(self, current, before):
        self.require(current)
        self.p["extract"] = False
        remote = self.remote_digest()
        self.result["changed"] = remote != current["digest"]
        if self.result["changed"] and not self.check:
            registry.push(self.store, self.ref, current, **self.creds())
        return self.finish(current, before)

    def state_archived(self, current, before):
        self.require(current)
        if not self.p["archive"]:
            raise ModuleFailure("state=archived needs archive", **self.result)
        held = transfer.archive_refs(self.p["archive"]) if os.path.isfile(self.p["archive"]) else {}
        self.result["changed"] = held != {str(self.ref): current["digest"]}
        if self.result["changed"] and not self.check:
            transfer.save(self.store, self.ref, current, self.p["archive"])
        return self.finish(current, before)

    def state_loaded(self, current, before):
        if not self.p["archive"] or not os.path.isfile(self.p["archive"]):
            raise ModuleFailure("state=loaded needs archive, an existing OCI archive file (got %r)" % self.p["archive"], **self.result)
        held = transfer.archive_refs(self.p["archive"])
        if str(self.ref) not in held:
            raise ModuleFailure("archive %s does not hold %s (it holds %s)"
                                % (self.p["archive"], self.ref, ", ".join(sorted(held)) or "nothing"), **self.result)
        self.result["changed"] = held[str(self.ref)] != before
        if self.check:
            return self.finish(current, before)
        with self.store.lock():
            transfer.load(self.store, self.p["archive"], wanted=self.ref)
        return self.finish(self.store.resolve(self.ref), before)


MODULE_ARGS = dict(
    argument_spec=dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "built", "pushed", "absent", "archived", "loaded"]),
        pull=dict(type="str", default="missing", choices=["missing", "always", "never"]),
        path=dict(type="path"),
        k3s_release=dict(type="dict", options=dict(
            path=dict(type="path", required=True),
            version=dict(type="str", required=True),
            registry_bin=dict(type="path"),
        )),
        kubefile=dict(type="path"),
        build_args=dict(type="dict", default={}),
        arch=dict(type="str", default="amd64"),
        cache_images=dict(type="bool", default=True),
        image_type=dict(type="str", default="kube-installer", choices=["kube-installer", "app-installer"]),
        sources=dict(type="list", elements="dict", default=[], options=dict(
            registry=dict(type="str", required=True),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            ca_file=dict(type="path"),
            insecure=dict(type="bool", default=False),
        )),
        archive=dict(type="path"),
        store=dict(type="path"),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        ca_file=dict(type="path"),
        insecure=dict(type="bool", default=False),
        plain_http=dict(type="bool", default=False),
        extract=dict(type="bool", default=True),
    ),
    mutually_exclusive=[("path", "k3s_release"), ("kubefile", "k3s_release")],
    supports_check_mode=True,
)


def run_module(module):
    """The module's result for module (AnsibleModule, or plugin_utils.controller_module's in-process
    stand-in for it); ModuleFailure on failure."""
    manager = None
    try:
        manager = ClusterImage(module)
        return manager.run()
    except (StoreError, BuildError, ReferenceError_, CacheError, recipe.ReleaseError) as exc:
        raise ModuleFailure(str(exc), **(manager.result if manager else {})) from exc


def main():
    exit_module(AnsibleModule(**MODULE_ARGS), run_module)


if __name__ == "__main__":
    main()
