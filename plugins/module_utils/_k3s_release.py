# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster image from the files of a k3s release, as published on its release page.

The files (k3s-io/k3s: scripts/package-cli, scripts/package-airgap, .github/workflows/release.yml):

    k3s | k3s-arm64 | k3s-armhf | k3s-s390x | k3s-riscv64    the binary of each architecture
    k3s-airgap-images-<arch>.tar.zst | .tar.gz | .tar         `docker save` / `ctr images export`
    sha256sum-<arch>.txt                                      `sha256sum` lines: "<hex>  <name>"
    k3s-images.txt                                            the image list (no checksum: unused)

Every file used must match its line of sha256sum-<arch>.txt (install.sh checks the binary the
same way). The binary is never run (it may be of another architecture): its ELF machine must be
the architecture's and it must carry the version string (k3s's scripts/build sets it with
`-X .../version.Version=`). The images of the air-gap archive (its manifest.json) are copied
offline into the context's registry/ by skopeo from the archive into a temporary registry, so
the build caches nothing from the internet. Runs on the controller."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile

from ansible_collections.seal.cluster.plugins.module_utils import _digest
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import IMAGE_LIST, CacheError, ImageCache
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_store import sha256_file as store_sha256
from ansible_collections.seal.cluster.plugins.module_utils._safe_archive import ArchiveError, read_member

BINARIES = {"amd64": "k3s", "arm64": "k3s-arm64", "arm": "k3s-armhf", "s390x": "k3s-s390x", "riscv64": "k3s-riscv64"}
AIRGAP_SUFFIXES = (".tar.zst", ".tar.gz", ".tar")  # the first one present is used
ELF_MACHINES = {"amd64": 62, "arm64": 183, "arm": 40, "s390x": 22, "riscv64": 243}
VERSION = re.compile(r"^v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+$")
_VERSION_IN_BINARY = re.compile(rb"v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+")
_CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")

KUBEFILE = """\
# A k3s cluster image from the files of a k3s release (seal.cluster: docs/cluster-images.md,
# "From a k3s release"). The recipe writes this build context after checking every file
# against sha256sum-${ARCH}.txt; VERSION (the release's) and ARCH are build arguments.
ARG VERSION
FROM scratch
COPY Metadata .
COPY bin bin
COPY images images
COPY registry registry
COPY manifests manifests
LABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s" \\
      cluster.alpha.sealer.io/cluster-runtime-version="${VERSION}" \\
      cluster.alpha.sealer.io/container-runtime-type="containerd"
CMD ["k3s"]
"""


class ReleaseError(ValueError):
    """The release files are unusable; the message names the file."""


def check_version(version, tag=None):
    """version must look like v1.25.3+k3s1; a tag that names a version (v1.25.3, v1.25.3-k3s1,
    v1.25.3+k3s1) must name this one."""
    if not VERSION.match(version or ""):
        raise ReleaseError("k3s version %r does not look like a k3s release (v1.25.3+k3s1)" % (version,))
    if tag and re.match(r"^v\d+\.\d+", tag) and tag not in (version, version.replace("+", "-"), version.split("+", 1)[0]):
        raise ReleaseError("the image tag %s does not match the k3s version %s (use %s, %s or another tag)"
                           % (tag, version, version.split("+", 1)[0], version.replace("+", "-")))


def parse_checksums(path):
    """{file name: sha256 hex} of a sha256sum file; a malformed line is an error with file:line."""
    sums = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReleaseError("cannot read %s: %s" % (path, exc)) from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.match(line.rstrip("\r"))
        if not match:
            raise ReleaseError("%s:%d: not a sha256sum line (\"<64 hex>  <file>\"): %r" % (path, number, line[:120]))
        digest, name = match.group(1).lower(), match.group(2)
        if sums.get(name, digest) != digest:
            raise ReleaseError("%s:%d: a second, different checksum for %s" % (path, number, name))
        sums[name] = digest
    return sums


def sha256_file(path):
    """Hex sha256 of a regular file, as sha256sum prints it."""
    return _digest.hex_of(store_sha256(path)[0])


def elf_machine(path):
    """The e_machine of an ELF file, or None when path is not ELF."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def versions_in(path):
    """The k3s version strings (v1.25.3+k3s1) a binary carries, read without running it."""
    found, tail = set(), b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            data = tail + chunk
            found.update(m.group(0).decode() for m in _VERSION_IN_BINARY.finditer(data))
            tail = data[-64:]
    return found


class Release:
    """The files of one k3s release for one architecture, in a directory."""

    def __init__(self, directory, version, arch="amd64"):
        if arch not in BINARIES:
            raise ReleaseError("k3s publishes no release for architecture %r (one of %s)" % (arch, ", ".join(BINARIES)))
        check_version(version)
        self.directory = os.path.abspath(directory)
        self.version = version
        self.arch = arch
        self.checksum_file = os.path.join(self.directory, "sha256sum-%s.txt" % arch)
        self.binary = os.path.join(self.directory, BINARIES[arch])
        self.airgap = None
        self.sums = {}

    def _need(self, path, what):
        if not os.path.isfile(path):
            others = [name for a, name in sorted(BINARIES.items())
                      if a != self.arch and os.path.isfile(os.path.join(self.directory, name))]
            hint = ""
            if what == "binary" and others:
                hint = "; the directory has %s: is the architecture right (arch)?" % ", ".join(others)
            raise ReleaseError("%s: %s not found (the %s of k3s %s for %s)%s"
                               % (self.directory, os.path.basename(path), what, self.version, self.arch, hint))

    def _check(self, path):
        name = os.path.basename(path)
        if name not in self.sums:
            raise ReleaseError("%s has no line for %s: it is not a file of this release" % (self.checksum_file, name))
        actual = sha256_file(path)
        if actual != self.sums[name]:
            raise ReleaseError("%s does not match its checksum: %s says sha256 %s, the file hashes to %s"
                               % (path, os.path.basename(self.checksum_file), self.sums[name], actual))

    def verify(self):
        """Check every file used; return {binary, airgap, checksums} paths. Nothing is written."""
        if not os.path.isdir(self.directory):
            raise ReleaseError("%s is not a directory (the k3s release files)" % self.directory)
        self._need(self.binary, "binary")
        self._need(self.checksum_file, "checksum file")
        self.sums = parse_checksums(self.checksum_file)
        names = ["k3s-airgap-images-%s%s" % (self.arch, suffix) for suffix in AIRGAP_SUFFIXES]
        present = [n for n in names if os.path.isfile(os.path.join(self.directory, n))]
        if not present:
            raise ReleaseError("%s: no air-gap image archive (%s)" % (self.directory, " or ".join(names)))
        self.airgap = os.path.join(self.directory, present[0])
        for path in (self.binary, self.airgap):
            self._check(path)
        machine = elf_machine(self.binary)
        if machine is not None and machine != ELF_MACHINES[self.arch]:
            raise ReleaseError("%s is an ELF binary for machine %d, not for %s (%d)"
                               % (self.binary, machine, self.arch, ELF_MACHINES[self.arch]))
        carried = versions_in(self.binary)
        if self.version not in carried:
            raise ReleaseError("%s does not carry the version %s (it names %s): is it that release?"
                               % (self.binary, self.version, ", ".join(sorted(carried)) or "no k3s version"))
        return {"binary": self.binary, "airgap": self.airgap, "checksums": self.checksum_file}

    def _copy_checked(self, src, dest, mode):
        shutil.copyfile(src, dest)
        os.chmod(dest, mode)
        if sha256_file(dest) != self.sums[os.path.basename(src)]:
            raise ReleaseError("%s changed while it was copied" % src)

    def write_context(self, context, registry_bin, progress=None):
        """Write the build context (Kubefile, Metadata, bin/, images/, registry/, manifests/) into
        the empty or new directory context; return the build arguments. verify() first."""
        progress = progress or (lambda message: None)
        if self.airgap is None:
            self.verify()
        registry_bin = os.path.abspath(registry_bin)
        if not os.path.isfile(registry_bin) or not os.access(registry_bin, os.X_OK):
            raise ReleaseError("%s is not an executable file (the registry binary for bin/registry)" % registry_bin)
        machine = elf_machine(registry_bin)
        if machine is not None and machine != ELF_MACHINES[self.arch]:
            raise ReleaseError("%s is an ELF binary for machine %d, not for %s (%d): give a registry binary of the image's "
                               "architecture (registry_bin, --registry-bin)" % (registry_bin, machine, self.arch, ELF_MACHINES[self.arch]))
        if os.path.isdir(context) and os.listdir(context):
            raise ReleaseError("%s is not empty: the build context goes into a new directory" % context)
        for sub in ("bin", "images", "manifests", "registry"):
            os.makedirs(os.path.join(context, sub), exist_ok=True)
        self._copy_checked(self.binary, os.path.join(context, "bin", "k3s"), 0o755)
        shutil.copyfile(registry_bin, os.path.join(context, "bin", "registry"))
        os.chmod(os.path.join(context, "bin", "registry"), 0o755)
        self._copy_checked(self.airgap, os.path.join(context, "images", os.path.basename(self.airgap)), 0o644)
        with tempfile.TemporaryDirectory(prefix="seal-k3s-release-") as tmp:
            tar = self._plain_tar(os.path.join(context, "images", os.path.basename(self.airgap)), tmp)
            refs = archive_images(tar, self.airgap)
            progress("caching the %d images of %s into registry/" % (len(refs), os.path.basename(self.airgap)))
            try:
                ArchiveCache.for_archive(tar, self.arch, progress).fill(refs, os.path.join(context, "registry"))
            except CacheError as exc:
                raise ReleaseError("%s: %s" % (self.airgap, exc)) from exc
        with open(os.path.join(context, IMAGE_LIST), "w", encoding="utf-8") as f:
            f.write("".join("%s\n" % ref for ref in refs))
        with open(os.path.join(context, "Metadata"), "w", encoding="utf-8") as f:
            json.dump({"version": self.version, "arch": self.arch, "ClusterRuntime": "k3s"}, f, sort_keys=True)
            f.write("\n")
        with open(os.path.join(context, "Kubefile"), "w", encoding="utf-8") as f:
            f.write(KUBEFILE.replace("ARG VERSION\n", "ARG VERSION=%s\n" % self.version, 1))
        return {"VERSION": self.version, "ARCH": self.arch}

    @staticmethod
    def _plain_tar(path, tmp):
        """The uncompressed tar of an air-gap archive (zstd through the zstd command)."""
        if path.endswith(".tar"):
            return path
        out = os.path.join(tmp, "airgap.tar")
        if path.endswith(".tar.gz"):
            with gzip.open(path, "rb") as src, open(out, "wb") as dest:
                shutil.copyfileobj(src, dest, 1 << 20)
            return out
        zstd = shutil.which("zstd")
        if not zstd:
            raise ReleaseError("reading %s needs the zstd command on the controller (Debian/Ubuntu: apt-get install zstd)" % path)
        proc = subprocess.run([zstd, "--decompress", "--quiet", "--force", "--long=31", "-o", out, path],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ReleaseError("%s: zstd could not decompress it: %s" % (path, (proc.stderr or proc.stdout).strip()))
        return out


def archive_images(tar_path, shown=None):
    """[Reference] named by the RepoTags of the archive's manifest.json (docker save and
    ctr images export both write it), sorted and without duplicates."""
    shown = shown or tar_path
    try:
        data = read_member(tar_path, "manifest.json", 4 << 20, shown)
        manifest = None if data is None else json.loads(data.decode("utf-8"))
    except (ArchiveError, OSError, ValueError) as exc:
        raise ReleaseError("%s: cannot read its manifest.json: %s" % (shown, exc)) from exc
    if data is None:
        raise ReleaseError("%s has no manifest.json: not a docker/OCI image archive" % shown)
    if not isinstance(manifest, list):
        raise ReleaseError("%s: manifest.json is not a list of images" % shown)
    refs = {}
    for entry in manifest:
        tags = entry.get("RepoTags") if isinstance(entry, dict) else None
        for tag in tags or []:
            try:
                ref = Reference.parse(tag)
            except (ReferenceError_, AttributeError, TypeError) as exc:
                raise ReleaseError("%s: manifest.json names %r: %s" % (shown, tag, exc)) from exc
            refs.setdefault(str(ref), ref)
    if not refs:
        raise ReleaseError("%s: manifest.json names no image (RepoTags)" % shown)
    return [refs[k] for k in sorted(refs)]


class ArchiveCache(ImageCache):
    """ImageCache that copies each image from a docker-archive tar instead of its registry."""

    archive = None

    @classmethod
    def for_archive(cls, archive, arch, progress=None):
        cache = cls.find(arch, progress=progress)
        cache.archive = archive
        return cache

    def source(self, ref):
        return "docker-archive:%s:%s" % (self.archive, ref)

    def _source_options(self, ref, tmp):
        return []


def default_registry_bin():
    """The controller's distribution registry (Debian's docker-registry), or None."""
    return shutil.which("docker-registry") or shutil.which("docker-registry", path="/usr/bin:/usr/sbin")


def verify(ref, directory, version, arch="amd64"):
    """Check the version against the tag of ref and every release file used; return the Release."""
    check_version(version, ref.tag)
    release = Release(directory, version, arch)
    release.verify()
    return release


def build(store, ref, directory, version, arch="amd64", registry_bin=None, context=None, progress=None):
    """Check the release, write its build context (into context, else a temporary directory) and
    build ref from it; return (manifest descriptor, previous digest or None)."""
    release = verify(ref, directory, version, arch)
    registry_bin = registry_bin or default_registry_bin()
    if not registry_bin:
        raise ReleaseError("no registry binary for bin/registry: give registry_bin (--registry-bin), or install the "
                           "distribution registry on the controller (Debian/Ubuntu: apt-get install docker-registry)")
    with tempfile.TemporaryDirectory(prefix="seal-k3s-context-") as tmp:
        target = os.path.abspath(context) if context else os.path.join(tmp, "context")
        build_args = release.write_context(target, registry_bin, progress=progress)
        builder = Builder(store, target, arch=arch, build_args=build_args, progress=progress)
        return builder.build(ref)
