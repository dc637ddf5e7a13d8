"""OCI archives loaded into the store (issue 15 items 5 and 10): only the image asked for is
tagged, loading without a name never silently moves an existing tag, `./`-prefixed archives are
accepted, and hostile members go through the one safe-archive helper."""
import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils import _image_transfer as transfer
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError

from hostile import tar_bytes, write_tar

K3S = "docker.io/library/k3s:v1.25.3"
OTHER = "docker.io/library/other:v1"


def layout(store, named, path):
    """An OCI layout directory at path holding [(name, descriptor)] of store."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))
    with open(os.path.join(path, "oci-layout"), "w", encoding="utf-8") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    manifests = []
    for name, desc in named:
        manifest = store.manifest(desc)
        for d in [desc, manifest["config"]] + manifest["layers"]:
            shutil.copyfile(store.blob_path(d["digest"]), os.path.join(path, "blobs", "sha256", d["digest"][7:]))
        manifests.append(dict(desc, annotations={store_mod.REF_ANNOTATION: name}))
    with open(os.path.join(path, "index.json"), "w", encoding="utf-8") as f:
        json.dump({"schemaVersion": 2, "manifests": manifests}, f)
    return path


def dot_archive(layout_dir, archive):
    """What `tar -C layout -cf image.tar .` makes: members ., ./oci-layout, ./index.json, ./blobs/..."""
    subprocess.run(["tar", "-C", layout_dir, "-cf", archive, "."], check=True)
    return archive


@pytest.fixture
def two(images, tmp_path):
    """An archive declaring two images, k3s:v1.25.3 (B) and other:v1, and a store whose
    k3s:v1.25.3 is another image (A)."""
    a = images.image(K3S, [[("bin/k3s", "file", "A")]])
    b = images.image("k3s:b", [[("bin/k3s", "file", "B")]])
    other = images.image(OTHER, [[("bin/other", "file", "O")]])
    archive = dot_archive(layout(images.store, [(K3S, b), (OTHER, other)], str(tmp_path / "layout")), str(tmp_path / "two.tar"))
    target = Store(str(tmp_path / "target"))
    target.ensure()
    transfer.load(target, dot_archive(layout(images.store, [(K3S, a)], str(tmp_path / "layout-a")), str(tmp_path / "a.tar")))
    return archive, target, a, b, other


def test_loading_one_name_tags_only_that_name(two, run_module):
    archive, target, a, _b, other = two
    result = run_module("cluster_image", name="other:v1", state="loaded", archive=archive, store=target.root)
    assert result["changed"] and result["digest"] == other["digest"] and result["name"] == OTHER
    assert dict((n, d["digest"]) for n, d in target.images()) == {K3S: a["digest"], OTHER: other["digest"]}


def test_loading_without_a_name_never_silently_replaces_a_tag(two):
    archive, target, a, b, other = two
    with pytest.raises(StoreError) as err:
        transfer.load(target, archive)
    assert str(err.value) == ("archive %s holds %s as %s, but the store has %s as %s; not replaced (ask to overwrite)"
                              % (archive, K3S, b["digest"], K3S, a["digest"]))
    assert dict((n, d["digest"]) for n, d in target.images()) == {K3S: a["digest"]}
    tagged = transfer.load(target, archive, overwrite=True)
    assert sorted(str(ref) for ref, _d in tagged) == [K3S, OTHER]
    assert dict((n, d["digest"]) for n, d in target.images()) == {K3S: b["digest"], OTHER: other["digest"]}


def test_asking_for_a_name_the_archive_does_not_declare_fails(two, run_module):
    archive, target, _a, _b, _other = two
    result = run_module("cluster_image", name="k3s:v9", state="loaded", archive=archive, store=target.root)
    assert result["failed"] and result["msg"] == "archive %s does not hold docker.io/library/k3s:v9 (it holds %s, %s)" % (
        archive, K3S, OTHER)


def test_dot_prefixed_archive_is_accepted(images, tmp_path, run_module):
    desc = images.image(K3S, [[("bin/k3s", "file", "k3s")]])
    archive = dot_archive(layout(images.store, [(K3S, desc)], str(tmp_path / "layout")), str(tmp_path / "dot.tar"))
    assert "./index.json" in subprocess.run(["tar", "-tf", archive], check=True, capture_output=True, text=True).stdout.split()
    assert transfer.archive_refs(archive) == {K3S: desc["digest"]}
    target = str(tmp_path / "target")
    checked = run_module("cluster_image", check=True, name="k3s:v1.25.3", state="loaded", archive=archive, store=target)
    assert checked["changed"] and not os.path.exists(target)
    loaded = run_module("cluster_image", name="k3s:v1.25.3", state="loaded", archive=archive, store=target)
    assert loaded["changed"] and loaded["digest"] == desc["digest"] and loaded["runtime"] == "k3s"
    assert run_module("cluster_image", name="k3s:v1.25.3", state="loaded", archive=archive, store=target)["changed"] is False


def oci_archive_with(tmp_path, extra, index=None):
    index = index or {"schemaVersion": 2, "manifests": []}
    members = [("oci-layout", "file", '{"imageLayoutVersion":"1.0.0"}'), ("index.json", "file", json.dumps(index))]
    return write_tar(tmp_path / "evil.tar", members + extra)


@pytest.mark.parametrize("extra, reason", [
    ([("blobs", "symlink", "SENTINEL")], "member 'blobs' is a symlink to the absolute path 'SENTINEL'; refused"),
    ([("../../x", "file", "x")], "member '../../x' leaves the target ('..'); refused"),
    ([("blobs/sha256/x", "hardlink", "SENTINEL/etc/shadow")], "member 'blobs/sha256/x' is a hard link to the absolute path 'SENTINEL/etc/shadow'; refused"),
])
def test_hostile_archive_members_are_refused(tmp_path, sentinel, extra, reason):
    extra = [tuple(v.replace("SENTINEL", sentinel.root) if isinstance(v, str) else v for v in e) for e in extra]
    archive = oci_archive_with(tmp_path, extra)
    store = Store(str(tmp_path / "store"))
    with pytest.raises(StoreError) as err:
        transfer.load(store, archive, overwrite=True)
    assert str(err.value) == "%s: %s" % (archive, reason.replace("SENTINEL", sentinel.root))
    assert not [n for n in os.listdir(store.root) if n.startswith(".load-")]


def test_archive_blobs_are_read_only_as_regular_files(images, tmp_path, sentinel):
    desc = images.image(K3S, [[("bin/k3s", "file", "k3s")]])
    path = layout(images.store, [(K3S, desc)], str(tmp_path / "layout"))
    layer = images.store.manifest(desc)["layers"][0]["digest"][7:]
    os.unlink(os.path.join(path, "blobs", "sha256", layer))
    os.symlink("../../oci-layout", os.path.join(path, "blobs", "sha256", layer))  # inside, so extraction keeps it
    archive = dot_archive(path, str(tmp_path / "linked.tar"))
    store = Store(str(tmp_path / "target"))
    with pytest.raises(StoreError) as err:
        transfer.load(store, archive)
    assert str(err.value).startswith("blob sha256:%s: " % layer) and str(err.value).endswith(" is a symlink; refused")
    assert store.images() == []


def test_archive_index_with_a_traversal_digest_is_refused(tmp_path, sentinel):
    bad = {"mediaType": store_mod.MANIFEST, "digest": "sha256:" + "../" * 21 + "x", "size": 2,
           "annotations": {store_mod.REF_ANNOTATION: K3S}}
    archive = oci_archive_with(tmp_path, [], {"schemaVersion": 2, "manifests": [bad]})
    for call in (lambda: transfer.archive_refs(archive), lambda: transfer.load(Store(str(tmp_path / "s")), archive)):
        with pytest.raises(StoreError) as err:
            call()
        assert str(err.value) == "%s: index.json manifests[0]: invalid digest %r (expected sha256:<64 lowercase hex>)" % (
            archive, bad["digest"])


def test_archive_members_that_are_not_files_are_refused_as_index(tmp_path):
    archive = str(tmp_path / "fifo.tar")
    with open(archive, "wb") as f:
        f.write(tar_bytes([("./index.json", "fifo")]))
    with pytest.raises(StoreError) as err:
        transfer.archive_refs(archive)
    assert str(err.value) == "%s is not an OCI archive: %s: member './index.json' is not a regular file; refused" % (archive, archive)
