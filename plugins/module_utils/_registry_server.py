# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private registry on a registry host: the distribution registry's config and systemd
unit, the merge of a cluster image's ``registry/`` storage into the registry's own data
directory, and a small HTTPS client for its API (stdlib only: it runs on the hosts).

Data and upgrades: the registry serves ``<data_root>/<cluster>/registry``, outside the image
rootfs, never the rootfs itself. Each run merges the image's ``registry/`` into it: files that
are missing are added (blob data hard-linked from the rootfs when on the same filesystem, else
copied; link files always copied, so that the registry never writes through into the rootfs),
a tag that the image defines is set to the image's manifest, and nothing is ever deleted.
Images that users pushed, and the images of older cluster images, survive an upgrade."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl

STORAGE = os.path.join("docker", "registry", "v2")
_TAG_LINK = re.compile(r"^docker/registry/v2/repositories/.+/_manifests/tags/[^/]+/current/link$")
_BLOB_DATA = re.compile(r"^docker/registry/v2/blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}/data$")
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def render_config(data_dir, port, tls_cert=None, tls_key=None, htpasswd=None, realm="seal-registry"):
    """config.yml of the distribution registry (v2 format; 2.x and 3.x read it)."""
    lines = [
        "# Managed by seal.cluster; changes are overwritten.",
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        "    rootdirectory: %s" % json.dumps(data_dir),
        "  delete:",
        "    enabled: false",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: true",
        "      age: 168h",
        "      interval: 24h",
        "      dryrun: false",
        "http:",
        "  addr: \":%d\"" % port,
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
    ]
    if tls_cert:
        lines += ["  tls:", "    certificate: %s" % json.dumps(tls_cert), "    key: %s" % json.dumps(tls_key)]
    if htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: %s" % json.dumps(realm), "    path: %s" % json.dumps(htpasswd)]
    lines += ["health:", "  storagedriver:", "    enabled: true", "    interval: 10s", "    threshold: 3"]
    return "\n".join(lines) + "\n"


def render_unit(cluster, binary, config):
    return """# Managed by seal.cluster; changes are overwritten.
[Unit]
Description=seal.cluster private registry (cluster %s)
Documentation=https://github.com/distribution/distribution
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=%s serve %s
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
""" % (cluster, binary, config)


def merge_plan(src, dst):
    """[(relative path, 'add'|'update')] to bring the image's storage src into dst: missing
    files are added; a tag's current link that points elsewhere is updated (the image defines
    its own tags); nothing else is touched and nothing is removed."""
    plan = []
    if not os.path.isdir(src):
        return plan
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src)
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            target = os.path.join(dst, rel)
            if not os.path.lexists(target):
                plan.append((rel, "add"))
            elif _TAG_LINK.match(rel.replace(os.sep, "/")):
                with open(os.path.join(src, rel), "rb") as a, open(target, "rb") as b:
                    if a.read() != b.read():
                        plan.append((rel, "update"))
    return plan


def merge_apply(src, dst, plan):
    """Apply merge_plan's result; every file appears atomically (temporary name, rename)."""
    for rel, _action in plan:
        source, target = os.path.join(src, rel), os.path.join(dst, rel)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        tmp = os.path.join(os.path.dirname(target), ".seal-merge-" + os.path.basename(target))
        if os.path.lexists(tmp):
            os.unlink(tmp)
        linked = False
        if _BLOB_DATA.match(rel.replace(os.sep, "/")):
            try:
                os.link(source, tmp)
                linked = True
            except OSError:
                linked = False
        if not linked:
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)


class RegistryProbe:
    """GET/HEAD against the registry at address:port, verifying TLS for domain with the given CA
    (only that CA), optionally with basic auth. The address is dialled directly, so that a
    registry host can check itself before its /etc/hosts names the domain."""

    def __init__(self, address, port, domain, ca_pem=None, username=None, password=None, tls=True, timeout=10):
        self.address, self.port, self.domain = address, port, domain
        self.ca_pem, self.tls, self.timeout = ca_pem, tls, timeout
        self.auth = None
        if username:
            token = base64.b64encode(("%s:%s" % (username, password or "")).encode()).decode()
            self.auth = "Basic " + token

    def _connection(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        if self.tls:
            context = ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=self.domain)
            except BaseException:
                sock.close()
                raise
        conn = http.client.HTTPConnection(self.domain, self.port, timeout=self.timeout)
        conn.sock = sock
        return conn

    def request(self, path, method="GET", headers=None):
        """(status, headers dict (lower-case names), body bytes)."""
        conn = self._connection()
        try:
            all_headers = {"Host": "%s:%d" % (self.domain, self.port), "User-Agent": "seal.cluster"}
            if self.auth:
                all_headers["Authorization"] = self.auth
            all_headers.update(headers or {})
            conn.request(method, path, headers=all_headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
        finally:
            conn.close()

    def stream(self, path):
        """The answer to GET path as a readable stream (closed by its close()), for a 200;
        RegistryAPIError naming the status otherwise. Nothing is held in memory."""
        conn = self._connection()
        headers = {"Host": "%s:%d" % (self.domain, self.port), "User-Agent": "seal.cluster"}
        if self.auth:
            headers["Authorization"] = self.auth
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if resp.status != 200:
            body = resp.read(200)
            conn.close()
            raise RegistryAPIError("GET %s: HTTP %d %s" % (path, resp.status, body.decode("utf-8", "replace")))
        return _Answer(resp, conn)

    def catalog(self):
        """Every repository name, following the Link pagination."""
        repos, path = [], "/v2/_catalog?n=1000"
        while path:
            status, headers, body = self.request(path)
            if status != 200:
                raise RegistryAPIError("GET %s: HTTP %d %s" % (path, status, body[:200].decode("utf-8", "replace")))
            repos.extend(json.loads(body.decode()).get("repositories") or [])
            match = re.search(r"<([^>]+)>;\s*rel=\"?next\"?", headers.get("link", ""))
            path = match.group(1) if match else None
        return repos

    def tags(self, repository):
        status, _headers, body = self.request("/v2/%s/tags/list" % repository)
        if status == 404:
            return []
        if status != 200:
            raise RegistryAPIError("GET /v2/%s/tags/list: HTTP %d" % (repository, status))
        return json.loads(body.decode()).get("tags") or []

    def has_manifest(self, repository, reference):
        status, _headers, _body = self.request("/v2/%s/manifests/%s" % (repository, reference), method="HEAD",
                                               headers={"Accept": MANIFEST_TYPES})
        return status == 200


class RegistryAPIError(RuntimeError):
    pass


class _Answer:
    def __init__(self, resp, conn):
        self.resp, self.conn = resp, conn

    def read(self, n=-1):
        return self.resp.read(n)

    def close(self):
        self.conn.close()


def missing_images(client, refs):
    """[str(ref)] of image references (module_utils._image_ref.Reference) the registry does
    not serve: repository (the reference's path, domain dropped) absent from the catalog, tag
    absent from its tag list, or digest without a manifest."""
    catalog = set(client.catalog())
    tags_of = {}
    missing = []
    for ref in refs:
        if ref.repository not in catalog:
            missing.append(str(ref))
            continue
        if ref.digest:
            if not client.has_manifest(ref.repository, ref.digest):
                missing.append(str(ref))
            continue
        if ref.repository not in tags_of:
            tags_of[ref.repository] = set(client.tags(ref.repository))
        if ref.tag not in tags_of[ref.repository]:
            missing.append(str(ref))
    return missing
