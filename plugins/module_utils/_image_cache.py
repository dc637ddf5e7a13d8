# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cache the container images a cluster needs into the cluster image's ``registry/`` directory,
in the registry-v2 filesystem storage form that the cluster's private registry serves.

Which images: every line of ``manifests/imageList`` and every ``image:`` field of the YAML files
under ``manifests/``. Where: ``registry/docker/registry/v2/repositories/<path>``, with the
source registry's domain dropped (``docker.io/library/busybox:1.36`` -> ``library/busybox:1.36``),
which is where a containerd mirror of docker.io, quay.io, ... looks for it.

How: no hand-written registry writer. A temporary distribution registry (Debian's
``docker-registry``) is started on a random loopback port with its storage rooted at the new
``registry/`` directory, and ``skopeo copy`` copies each image from its source registry into it,
for the image's architecture (a digest-pinned reference keeps every architecture, so that its
digest still resolves). Credentials for sources go through a 0600 auth file, never argv.

The temporary registry requires a password: any local user can reach a loopback port (and any
127.x address), so without auth another user could push into the cluster image being built.
A unix socket would keep others out by file mode, but skopeo's docker transport cannot reach
one. So the registry gets htpasswd auth with a random password made for this run (bcrypt, as
the distribution registry requires), in a 0700 temporary directory; skopeo reads the password
from a 0600 auth file there, never from argv."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

from ansible_collections.seal.cluster.plugins.module_utils import _digest
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import IMAGE_LIST, Reference, ReferenceError_, image_list_entries

REPOSITORIES = "registry/docker/registry/v2/repositories/"
_IMAGE_FIELD = re.compile(r"""^\s*(?:-\s+)?image:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$""")
REGISTRY_CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: 127.0.0.1:%d
auth:
  htpasswd:
    realm: seal-cache
    path: %s
"""
TEMP_USER = "seal-cache"


class CacheError(ValueError):
    """An image could not be cached; the message names it (and the file:line that asked for it)."""


def images_wanted(files):
    """[(Reference, where)] from {path: text} of manifests/ (imageList lines, image: fields),
    sorted and without duplicates. An imageList line that is not a reference is an error with
    file:line; an image: field that is a template (``{{ }}``, ``$``) is skipped."""
    found = {}
    for path in sorted(files):
        text = files[path]
        if path == IMAGE_LIST:
            entries = image_list_entries(text)
        elif path.endswith((".yaml", ".yml")):
            entries = [(number, _image_field(line)) for number, line in enumerate(text.splitlines(), 1)]
        else:
            continue
        for number, value in entries:
            where = "%s:%d" % (path, number)
            if not value:
                continue
            try:
                ref = Reference.parse(value)
            except ReferenceError_ as exc:
                raise CacheError("%s: %s" % (where, exc)) from exc
            found.setdefault(str(ref), (ref, where))
    return [found[k] for k in sorted(found)]


def _image_field(line):
    """The image of a YAML `image:` line; "" for other lines and templates ({{ }}, $)."""
    match = _IMAGE_FIELD.match(line)
    value = match.group(1) if match else ""
    return "" if "{{" in value or "$" in value else value


def cached_path(ref):
    """The file of registry/ that exists when ref is already cached there."""
    base = REPOSITORIES + ref.repository + "/_manifests/"
    if ref.digest:
        return base + "revisions/sha256/" + _digest.hex_of(ref.digest) + "/link"
    return base + "tags/" + ref.tag + "/current/link"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_run(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


class ImageCache:
    """Copies images into a registry-v2 storage directory through skopeo and a temporary registry.

    sources: [{registry, username, password, ca_file, insecure, plain_http}] for source registries."""

    def __init__(self, skopeo, registry_bin, arch="amd64", sources=None, run=None, progress=None):
        self.skopeo = skopeo
        self.registry_bin = registry_bin
        self.arch = arch
        self.sources = {}
        for source in sources or []:
            name = source.get("registry")
            if not name:
                raise CacheError("a source registry entry needs registry (host[:port]): %r" % sorted(source))
            self.sources["docker.io" if name in ("index.docker.io", "registry-1.docker.io") else name] = source
        self.run = run or _default_run
        self.progress = progress or (lambda message: None)

    @classmethod
    def find(cls, arch="amd64", sources=None, run=None, progress=None):
        skopeo = shutil.which("skopeo")
        registry_bin = shutil.which("docker-registry") or shutil.which("docker-registry", path="/usr/bin:/usr/sbin")
        missing = [name for name, path in (("skopeo", skopeo), ("docker-registry", registry_bin)) if not path]
        if missing:
            raise CacheError("caching the images of %s needs %s on the controller (Debian/Ubuntu: apt-get install skopeo docker-registry)"
                             % (IMAGE_LIST, " and ".join(missing)))
        return cls(skopeo, registry_bin, arch, sources, run, progress)

    def source(self, ref):
        """Where skopeo copies ref from (a subclass may read another transport)."""
        return "docker://%s" % ref

    def _source_options(self, ref, tmp):
        source = self.sources.get(ref.registry) or {}
        opts = []
        auths = {name: {"auth": base64.b64encode(("%s:%s" % (s["username"], s.get("password") or "")).encode()).decode()}
                 for name, s in self.sources.items() if s.get("username")}
        if auths:
            path = os.path.join(tmp, "auth.json")
            if not os.path.exists(path):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"auths": auths}, f)
            opts += ["--src-authfile", path]
        else:
            opts += ["--src-no-creds"]
        if source.get("ca_file"):
            certs = os.path.join(tmp, "certs", ref.registry.replace(":", "_"))
            os.makedirs(certs, exist_ok=True)
            shutil.copyfile(source["ca_file"], os.path.join(certs, "ca.crt"))
            opts += ["--src-cert-dir", certs]
        if source.get("insecure") or source.get("plain_http"):
            opts += ["--src-tls-verify=false"]
        return opts

    def fill(self, refs, storage, where=None):
        """Copy every Reference of refs into the registry-v2 storage directory storage;
        where maps a reference to the file:line that asked for it (for errors)."""
        where = where or {}
        os.makedirs(storage, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="seal-cache-")
        try:
            with TemporaryRegistry(self.registry_bin, storage, tmp) as registry:
                for number, ref in enumerate(refs, 1):
                    self.progress("caching image %d/%d: %s" % (number, len(refs), ref))
                    if ref.digest:
                        dest = "docker://%s/%s:sha256-%s" % (registry.host, ref.repository, _digest.hex_of(ref.digest))
                        mode = ["--all", "--preserve-digests"]
                    else:
                        dest = "docker://%s/%s:%s" % (registry.host, ref.repository, ref.tag)
                        mode = ["--override-arch", self.arch, "--override-os", "linux"]
                    argv = ([self.skopeo, "copy", "--quiet", "--retry-times", "2"] + mode + self._source_options(ref, tmp)
                            + ["--dest-tls-verify=false", "--dest-authfile", registry.authfile, self.source(ref), dest])
                    rc, out, err = self.run(argv)
                    if rc != 0:
                        asked = " (%s)" % where[str(ref)] if str(ref) in where else ""
                        raise CacheError("caching %s%s failed: skopeo: %s" % (ref, asked, (err or out).strip()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        # uploads are finished: their bookkeeping directories carry nothing the registry needs
        for dirpath, dirnames, _files in os.walk(storage):
            if "_uploads" in dirnames:
                shutil.rmtree(os.path.join(dirpath, "_uploads"))
                dirnames.remove("_uploads")


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


class TemporaryRegistry:
    """A distribution registry on a random loopback port, serving storage, for this process only:
    htpasswd auth with a random password; ``authfile`` (0600, in tmp) holds it for skopeo.
    tmp must be a private (0700) directory that the caller removes."""

    def __init__(self, registry_bin, storage, tmp):
        self.registry_bin, self.storage, self.tmp = registry_bin, storage, tmp
        self.username, self.password = TEMP_USER, secrets.token_urlsafe(32)
        self.proc, self.port = None, None
        self.authfile = os.path.join(tmp, "dest-auth.json")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        try:
            import bcrypt  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise CacheError("caching images needs the Python package bcrypt on the controller "
                             "(the temporary registry's password is a bcrypt htpasswd entry)") from None
        htpasswd = os.path.join(self.tmp, "htpasswd")
        digest = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=10)).decode()
        _write_private(htpasswd, "%s:%s\n" % (self.username, digest))
        last = ""
        for attempt in range(3):
            port = _free_port()
            config = os.path.join(self.tmp, "registry-%d.yml" % attempt)
            _write_private(config, REGISTRY_CONFIG % (json.dumps(os.path.abspath(self.storage)), port, json.dumps(htpasswd)))
            log_path = os.path.join(self.tmp, "registry-%d.log" % attempt)
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([self.registry_bin, "serve", config], stdout=log, stderr=log)  # pylint: disable=consider-using-with
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    self.proc, self.port = proc, port
                    auth = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
                    if not os.path.exists(self.authfile):
                        _write_private(self.authfile, "")
                    with open(self.authfile, "w", encoding="utf-8") as f:
                        json.dump({"auths": {self.host: {"auth": auth}}}, f)
                    return self
                except OSError:
                    time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with open(log_path, encoding="utf-8", errors="replace") as f:
                last = f.read()[-500:]
        raise CacheError("the temporary registry (%s) did not start: %s" % (self.registry_bin, last.strip()))

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
