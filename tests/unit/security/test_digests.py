"""Digests from manifests, indexes, archives and registry answers (issue 15 item 2): one validator
(sha256:<64 lowercase hex>) before any digest becomes a path or a URL, and blobs read only as
regular files, so a digest can neither name a file outside the store nor hang a read."""
import hashlib
import http.server
import json
import os
import threading

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _digest
from ansible_collections.seal.cluster.plugins.module_utils import _image_registry as registry
from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError

# 64 characters of path: os.path.join(store, "blobs", "sha256", this) is /dev/zero
DEV_ZERO = ("../" * 18 + "dev/zero").rjust(64, "/")
TRAVERSAL = ("./" * 32)[:-5] + "../.."
assert len(DEV_ZERO) == 64 and len(TRAVERSAL) == 64


@pytest.mark.parametrize("digest, message", [
    ("sha256:" + DEV_ZERO, "here: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + DEV_ZERO)),
    ("sha256:" + TRAVERSAL, "here: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + TRAVERSAL)),
    ("sha256:" + "A" * 64, "here: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + "A" * 64)),
    ("sha256:" + "a" * 63, "here: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + "a" * 63)),
    ("sha256:" + "a" * 64 + "\n", "here: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + "a" * 64 + "\n")),
    ("sha512:" + "a" * 128, "here: digest algorithm 'sha512' is not supported (only sha256)"),
    (None, "here: digest must be a string, not NoneType"),
])
def test_one_validator_refuses_clearly(digest, message):
    with pytest.raises(_digest.DigestError) as err:
        _digest.check(digest, "here")
    assert str(err.value) == message


def test_store_paths_and_references_use_it(tmp_path):
    store = Store(str(tmp_path / "store"))
    with pytest.raises(StoreError) as err:
        store.blob_path("sha256:" + DEV_ZERO)
    assert str(err.value) == "blob: invalid digest %r (expected sha256:<64 lowercase hex>)" % ("sha256:" + DEV_ZERO)
    with pytest.raises(StoreError, match=r"^image: digest algorithm 'sha384' is not supported \(only sha256\)$"):
        store.rootfs_path("sha384:" + "a" * 96)
    with pytest.raises(ReferenceError_) as err:
        Reference.parse("k3s@sha512:" + "a" * 128)
    assert str(err.value) == "invalid image reference %r: digest algorithm 'sha512' is not supported (only sha256)" % (
        "k3s@sha512:" + "a" * 128)


def test_a_manifest_naming_a_traversal_digest_touches_nothing(images, sentinel):
    victim = os.path.join(images.store.root, "index.json")
    before = open(victim, "rb").read()
    good = images.image("k3s:v1", [[("f", "file", "x")]])
    manifest = images.store.manifest(good)
    manifest["layers"][0]["digest"] = "sha256:" + TRAVERSAL
    desc = images.raw_manifest("evil:v1", manifest)
    with pytest.raises(StoreError) as err:
        extract(images.store, desc)
    assert str(err.value) == "layer 0 of manifest %s: invalid digest %r (expected sha256:<64 lowercase hex>)" % (
        desc["digest"], "sha256:" + TRAVERSAL)
    assert os.path.getsize(victim) >= len(before)  # the store's index is still there
    assert not os.path.exists(os.path.join(images.store.root, "rootfs"))


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_blob_that_is_not_a_regular_file_is_refused_without_reading(images, sentinel, kind):
    desc = images.image("k3s:v1", [[("f", "file", "x")]])
    layer = images.store.manifest(desc)["layers"][0]["digest"]
    path = images.store.blob_path(layer)
    os.unlink(path)
    if kind == "symlink":
        os.symlink("/dev/zero", path)
        expected = "blob %s: %s is a symlink; refused" % (layer, path)
    else:
        os.mkfifo(path)  # a read would block forever
        expected = "blob %s: %s is not a regular file; refused" % (layer, path)
    with pytest.raises(StoreError) as err:
        extract(images.store, desc)
    assert str(err.value) == expected


class FakeRegistry:
    """A registry on loopback answering whatever the test puts in `manifests` and `blobs`."""

    def __init__(self):
        self.manifests, self.blobs, self.requests = {}, {}, []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                owner.requests.append(self.path)
                body, ctype = None, "application/json"
                if self.path == "/v2/":
                    body = b"{}"
                elif "/manifests/" in self.path:
                    found = owner.manifests.get(self.path.rsplit("/manifests/", 1)[1])
                    if found:
                        body, ctype = found
                elif "/blobs/" in self.path:
                    body = owner.blobs.get(self.path.rsplit("/blobs/", 1)[1])
                    ctype = "application/octet-stream"
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.host = "127.0.0.1:%d" % self.server.server_address[1]

    def blob(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": store_mod.CONFIG, "digest": digest, "size": len(data)}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_registry():
    reg = FakeRegistry()
    yield reg
    reg.close()


def manifest_bytes(config, layers):
    return json.dumps({"schemaVersion": 2, "mediaType": store_mod.MANIFEST, "config": config, "layers": layers}).encode()


@pytest.mark.skipif(not registry.HAS_ORAS, reason="needs oras")
@pytest.mark.parametrize("where, bad", [
    ("layers[0]", {"mediaType": store_mod.LAYER_GZIP, "digest": "sha256:" + TRAVERSAL, "size": 1}),
    ("config", {"mediaType": store_mod.CONFIG, "digest": "sha256:" + DEV_ZERO, "size": 1}),
    ("layers[0]", {"mediaType": store_mod.LAYER_GZIP, "digest": "sha512:" + "a" * 128, "size": 1}),
])
def test_registry_answers_with_hostile_digests_are_refused_before_any_path(tmp_path, sentinel, fake_registry, where, bad):
    config = fake_registry.blob(b'{"architecture":"amd64"}')
    body = manifest_bytes(bad if where == "config" else config, [bad] if where != "config" else [])
    fake_registry.manifests["v1"] = (body, store_mod.MANIFEST)
    store = Store(str(tmp_path / "store"))
    store.ensure()
    ref = Reference.parse("%s/test/evil:v1" % fake_registry.host)
    with pytest.raises(StoreError) as err:
        registry.pull(store, ref, plain_http=True)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    reason = ("digest algorithm 'sha512' is not supported (only sha256)" if bad["digest"].startswith("sha512")
              else "invalid digest %r (expected sha256:<64 lowercase hex>)" % bad["digest"])
    assert str(err.value) == "manifest %s of %s from %s, %s: %s" % (digest, ref, fake_registry.host, where, reason)
    assert not [r for r in fake_registry.requests if "/blobs/" in r]  # never asked for, never a path
    assert os.listdir(os.path.join(store.root, "blobs", "sha256")) == [] and store.images() == []


@pytest.mark.skipif(not registry.HAS_ORAS, reason="needs oras")
def test_registry_index_naming_dev_zero_is_refused(tmp_path, sentinel, fake_registry):
    index = json.dumps({"schemaVersion": 2, "mediaType": registry.OCI_INDEX, "manifests": [
        {"mediaType": store_mod.MANIFEST, "digest": "sha256:" + DEV_ZERO, "size": 10,
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    fake_registry.manifests["v1"] = (index, registry.OCI_INDEX)
    store = Store(str(tmp_path / "store"))
    ref = Reference.parse("%s/test/evil:v1" % fake_registry.host)
    with pytest.raises(StoreError) as err:
        registry.pull(store, ref, plain_http=True)
    digest = "sha256:" + hashlib.sha256(index).hexdigest()
    assert str(err.value) == "index %s from %s, manifests[0]: invalid digest %r (expected sha256:<64 lowercase hex>)" % (
        digest, fake_registry.host, "sha256:" + DEV_ZERO)
    assert fake_registry.requests == ["/v2/", "/v2/test/evil/manifests/v1"]


@pytest.mark.skipif(not registry.HAS_ORAS, reason="needs oras")
def test_registry_pull_of_a_sound_image_still_works(tmp_path, fake_registry):
    from hostile import tar_bytes
    layer = tar_bytes([("bin/k3s", "file", "k3s")])
    config = fake_registry.blob(b'{"architecture":"amd64","config":{"Labels":{}}}')
    layer_desc = dict(fake_registry.blob(layer), mediaType="application/vnd.oci.image.layer.v1.tar")
    fake_registry.manifests["v1"] = (manifest_bytes(config, [layer_desc]), store_mod.MANIFEST)
    store = Store(str(tmp_path / "store"))
    store.ensure()
    desc = registry.pull(store, Reference.parse("%s/test/ok:v1" % fake_registry.host), plain_http=True)
    root, _new = extract(store, desc)
    assert open(os.path.join(root, "bin", "k3s"), encoding="utf-8").read() == "k3s"
