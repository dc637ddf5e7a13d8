# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull and push cluster images between the store and an OCI registry with the ORAS Python
client (``oras``): its session, its basic and bearer-token auth backends and its blob upload.

Transport rules:

- HTTPS, verified against the system CAs or ``ca_file``; ``insecure`` skips the verification.
- Plain HTTP only when asked (``plain_http``) or for a loopback registry (localhost, 127.0.0.0/8,
  ::1) that does not speak TLS, as container tools do. A loopback registry that speaks TLS with a
  certificate that does not verify is an error, never a silent downgrade.
- The auth backend follows the registry's challenge on ``/v2/``: ``Basic`` (htpasswd) or
  ``Bearer`` (a token service; credentials are exchanged for a scoped token).

Manifests travel as the exact bytes that were stored (so the digest is the same on both sides),
and every blob is hashed while it streams in and refused, by digest, when it does not match."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import time
import traceback

from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils._image_store import StoreError

try:
    import requests
    import requests.adapters
    import oras.container
    import oras.provider
except ImportError:
    HAS_ORAS = False
    ORAS_IMPORT_ERROR = traceback.format_exc()
    _Base = object
else:
    HAS_ORAS = True
    ORAS_IMPORT_ERROR = None
    _Base = oras.provider.Registry

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT = ", ".join((store_mod.MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
CHUNKED_ABOVE = 64 << 20
TIMEOUT = 60


class RegistryError(StoreError):
    """A registry refused or failed a request; the message names the registry and what failed."""


def api_host(registry):
    """The host to talk to for a reference's registry (docker.io's API lives elsewhere)."""
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


def is_loopback(host):
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _cert_problem(exc):
    text = str(exc)
    return any(word in text for word in ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "doesn't match", "hostname mismatch"))


if HAS_ORAS:
    class _TimeoutAdapter(requests.adapters.HTTPAdapter):
        def send(self, request, **kwargs):  # pylint: disable=arguments-differ
            if not kwargs.get("timeout"):
                kwargs["timeout"] = TIMEOUT
            return super().send(request, **kwargs)


class RepositoryClient(_Base):
    """One registry, one repository. Built through connect(), which picks scheme and auth."""

    def __init__(self, host, scheme, verify, backend, repository):
        super().__init__(hostname=host, insecure=scheme == "http", tls_verify=verify, auth_backend=backend)
        for prefix in ("http://", "https://"):
            self.session.mount(prefix, _TimeoutAdapter())
        self.host = host
        self.basic = backend == "basic"
        self.base = "%s://%s/v2/%s" % (scheme, host, repository)
        self.container = oras.container.Container(repository.rsplit("/", 1)[-1], registry=host)
        self.container.namespace = repository.rsplit("/", 1)[0] if "/" in repository else None

    def do_request(self, url, method="GET", data=None, headers=None, json=None, stream=False):  # pylint: disable=redefined-outer-name
        """oras' request with auth, minus its minutes-long retry loop; a 401/403 asks the auth
        backend again with refresh (a new token for the new scope, e.g. push after pull)."""
        headers = dict(headers or {})
        response = None
        for attempt in range(3):
            if getattr(self.auth, "token", None) or (self.basic and getattr(self.auth, "_basic_auth", None)):
                headers.update(self.auth.get_auth_header())  # basic: sent up front, no 401 round trip
            try:
                response = self.session.request(method, url, data=data, json=json, headers=headers, stream=stream,
                                                verify=self._tls_verify)
            except requests.exceptions.SSLError as exc:
                raise RegistryError("TLS with %s failed: %s" % (self.host, exc)) from exc
            except requests.exceptions.ConnectionError as exc:
                if attempt == 2:
                    raise RegistryError("cannot reach the registry %s: %s" % (self.host, exc)) from exc
                time.sleep(1 + attempt)
                continue
            if response.status_code not in (401, 403) or attempt == 2:
                return response
            headers, changed = self.auth.authenticate_request(response, headers, refresh=True)
            if not changed:
                return response
        return response

    def _check(self, response, what, ok=(200, 201, 202)):
        if response.status_code in ok:
            return response
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join("%s: %s" % (e.get("code"), e.get("message")) for e in errors if isinstance(e, dict))
        except ValueError:
            detail = response.text[:200]
        hint = ""
        if response.status_code == 401:
            has_creds = getattr(self.auth, "_basic_auth", None)
            hint = " (unauthorized: wrong username or password)" if has_creds else " (unauthorized: give username and password)"
        raise RegistryError("%s on %s: HTTP %d%s%s" % (what, self.host, response.status_code, hint, (": " + detail) if detail else ""))

    # -- manifests -----------------------------------------------------------------------
    def get_manifest_bytes(self, reference):
        response = self._check(self.do_request("%s/manifests/%s" % (self.base, reference), "GET", headers={"Accept": ACCEPT}),
                               "getting manifest %s" % reference)
        body = response.content
        media = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        media = _json_object(body, "manifest %s" % reference, self.host).get("mediaType") or media
        return body, media

    def put_manifest_bytes(self, reference, body, media):
        response = self._check(self.do_request("%s/manifests/%s" % (self.base, reference), "PUT", data=body,
                                               headers={"Content-Type": media}), "pushing manifest %s" % reference)
        return response.headers.get("Docker-Content-Digest")

    # -- blobs ---------------------------------------------------------------------------
    def fetch_blob(self, store, desc):
        """Stream a blob into the store, hashing as it comes; refuse it by digest if it does not match."""
        digest, size = store_mod.checked_digest(desc["digest"], "blob from %s" % self.host), desc.get("size")
        tmp = store.tempfile()
        try:
            h, got = hashlib.sha256(), 0
            response = self._check(self.do_request("%s/blobs/%s" % (self.base, digest), "GET", stream=True),
                                   "getting blob %s" % digest)
            with response, open(tmp, "wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 20):
                    h.update(chunk)
                    got += len(chunk)
                    out.write(chunk)
            actual = "sha256:" + h.hexdigest()
            if actual != digest or (size is not None and got != size):
                raise StoreError("blob %s from %s is corrupt: its content hashes to %s (%d bytes%s); refused"
                                 % (digest, self.host, actual, got, "" if size is None else ", expected %d" % size))
            store.put_file(tmp)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def send_blob(self, path, desc):
        layer = {"digest": desc["digest"], "size": desc["size"], "mediaType": desc.get("mediaType")}
        try:
            response = self.upload_blob(path, self.container, layer, do_chunked=desc["size"] > CHUNKED_ABOVE)
        except ValueError as exc:  # oras: no upload session (refused POST)
            raise RegistryError("pushing blob %s to %s failed: %s" % (desc["digest"], self.host, exc)) from exc
        self._check(response, "pushing blob %s" % desc["digest"])


def connect(registry, repository, username=None, password=None, ca_file=None, insecure=False, plain_http=False):
    """A RepositoryClient for registry/repository: scheme from the rules above, auth backend from the challenge."""
    if not HAS_ORAS:
        raise RegistryError("the oras Python library is needed to talk to registries")
    host = api_host(registry)
    verify = ca_file or not insecure
    if ca_file and not os.path.isfile(ca_file):
        raise RegistryError("ca_file %s does not exist" % ca_file)
    scheme = "http" if plain_http else "https"
    session = requests.Session()
    try:
        try:
            response = session.get("%s://%s/v2/" % (scheme, host), verify=verify, timeout=TIMEOUT)
        except requests.exceptions.SSLError as exc:
            if not is_loopback(host) or _cert_problem(exc):
                raise RegistryError("TLS with %s failed: %s (give ca_file with the registry's CA%s)"
                                    % (host, exc, "" if is_loopback(host) else ", or plain_http=true for an HTTP registry")) from exc
            scheme = "http"  # loopback registry without TLS
            response = session.get("%s://%s/v2/" % (scheme, host), timeout=TIMEOUT)
    except requests.exceptions.ConnectionError as exc:
        raise RegistryError("cannot reach the registry %s: %s" % (host, exc)) from exc
    finally:
        session.close()
    challenge = response.headers.get("WWW-Authenticate", "")
    if response.status_code not in (200, 401):
        raise RegistryError("%s://%s/v2/ answered HTTP %d; is it an OCI registry?" % (scheme, host, response.status_code))
    backend = "basic" if challenge.lower().startswith("basic") else "token"
    if backend == "basic" and not username:
        raise RegistryError("the registry %s asks for basic auth: give username and password" % host)
    client = RepositoryClient(host, scheme, verify, backend, repository)
    if username:
        client.auth.set_basic_auth(username, password or "")
    return client


def _json_object(body, what, host):
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise RegistryError("%s from %s is not JSON" % (what, host)) from exc
    if not isinstance(doc, dict):
        raise RegistryError("%s from %s is not a JSON object" % (what, host))
    return doc


def _manifest_of_index(client, body, digest, arch, ref):
    index = _json_object(body, "index %s" % digest, client.host)
    if not isinstance(index.get("manifests", []), list):
        raise RegistryError("index %s from %s has no list of manifests" % (digest, client.host))
    for n, entry in enumerate(index.get("manifests", [])):
        store_mod.checked_descriptor(entry, "index %s from %s, manifests[%d]" % (digest, client.host, n))
        platform = entry.get("platform") or {}
        if not isinstance(platform, dict):
            continue
        if platform.get("architecture") == arch and platform.get("os", "linux") == "linux":
            return entry["digest"]
    have = sorted("%s/%s" % ((e.get("platform") or {}).get("os"), (e.get("platform") or {}).get("architecture"))
                  for e in index.get("manifests", []))
    raise RegistryError("%s (%s) has no linux/%s image (it has %s)" % (ref, digest, arch, ", ".join(have) or "none"))


def _checked(body, expected, ref):
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    if expected and actual != expected:
        raise StoreError("manifest %s of %s is corrupt: its content hashes to %s; refused" % (expected, ref, actual))
    return actual


def pull(store, ref, arch="amd64", **creds):
    """Pull ref into the store (blobs verified, then tagged); return its manifest descriptor."""
    client = connect(ref.registry, ref.repository, **creds)
    body, media = client.get_manifest_bytes(ref.digest or ref.tag)
    digest = _checked(body, ref.digest, ref)
    if media in (OCI_INDEX, DOCKER_LIST):
        digest = _manifest_of_index(client, body, digest, arch, ref)
        body, media = client.get_manifest_bytes(digest)
        _checked(body, digest, ref)
    if media not in (store_mod.MANIFEST, DOCKER_MANIFEST):
        raise RegistryError("%s is a %s, not an image manifest" % (ref, media or "document of unknown type"))
    manifest = _json_object(body, "manifest %s of %s" % (digest, ref), client.host)
    if "config" not in manifest or not isinstance(manifest.get("layers", []), list):
        raise RegistryError("manifest %s of %s from %s is not an image manifest" % (digest, ref, client.host))
    where = "manifest %s of %s from %s" % (digest, ref, client.host)
    store_mod.checked_descriptor(manifest["config"], where + ", config")
    for n, layer in enumerate(manifest.get("layers", [])):
        store_mod.checked_descriptor(layer, "%s, layers[%d]" % (where, n))
    for desc in [manifest["config"]] + list(manifest.get("layers", [])):
        if store.has_blob(desc["digest"]):
            try:
                store.verify_blob(desc["digest"], desc.get("size"))
                continue
            except StoreError:
                os.unlink(store.blob_path(desc["digest"]))  # a damaged local copy (or not a file): fetch it again
        client.fetch_blob(store, desc)
    mdigest, msize = store.put_bytes(body)
    store.tag(ref, mdigest, msize, media)
    return {"mediaType": media, "digest": mdigest, "size": msize}


def push(store, ref, desc, **creds):
    """Push the image desc of the store to ref; return the digest the registry reports."""
    manifest = store.manifest(desc)
    blobs = [manifest["config"]] + list(manifest.get("layers", []))
    paths = [store.verify_blob(d["digest"], d.get("size")) for d in blobs]
    body_path = store.verify_blob(desc["digest"], desc.get("size"))
    with open(body_path, "rb") as f:
        body = f.read()
    client = connect(ref.registry, ref.repository, **creds)
    # fails early, with the auth hint, when the credentials are wrong
    client._check(client.do_request("%s/manifests/%s" % (client.base, ref.tag or desc["digest"]), "HEAD",  # pylint: disable=protected-access
                                    headers={"Accept": ACCEPT}), "asking for %s" % ref, ok=(200, 404))
    for path, blob in zip(paths, blobs):
        client.send_blob(path, blob)
    reported = client.put_manifest_bytes(ref.tag or desc["digest"], body, manifest.get("mediaType") or store_mod.MANIFEST)
    if reported and reported != desc["digest"]:
        raise RegistryError("%s stored the manifest as %s, not %s" % (client.host, reported, desc["digest"]))
    return desc["digest"]
