"""Hostile cluster image layers (issue 15 item 1), extracted on the controller by
_image_rootfs.extract through the one safe-archive helper: each refused with its precise error,
nothing outside the rootfs changed, no partial rootfs left, and the same under check mode."""
import json
import os
import stat

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe, extract, rootfs_path
from ansible_collections.seal.cluster.plugins.module_utils._image_store import StoreError


def refusal(desc, layer_digest, member, reason):
    return "image %s: layer %s: member %r %s; refused" % (desc["digest"], layer_digest, member, reason)


def layer_digest(images, desc, n):
    return images.store.manifest(desc)["layers"][n]["digest"]


def rootfs_dir_entries(images):
    root = os.path.join(images.store.root, "rootfs")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.fixture
def other_rootfs(images, sentinel):
    """Another image's cached rootfs in the same store: `.wh...` used to wipe every one of them."""
    path = os.path.join(images.store.root, "rootfs", "b" * 64)
    os.makedirs(os.path.join(path, "bin"))
    with open(os.path.join(path, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("another image\n")
    sentinel.extra(os.path.join(images.store.root, "rootfs"))
    return path


def cases(s):
    """(layers, index of the refused layer, member, reason) for a sentinel tree at s."""
    return [
        # whiteouts through a symlinked directory
        ([[("evil", "symlink", s + "/etc")], [("evil/.wh.f", "file")]], 0, "evil", "is a symlink to the absolute path %r" % (s + "/etc")),
        ([[("d", "dir"), ("evil", "symlink", "d")], [("evil/.wh.f", "file")]], 1, "evil/.wh.f", "would be written through the symlink 'evil'"),
        ([[("d", "dir"), ("evil", "symlink", "d")], [("evil/.wh..wh..opq", "file")]], 1, "evil/.wh..wh..opq",
         "would be written through the symlink 'evil'"),
        # whiteouts that name no entry
        ([[("a", "file", "x")], [(".wh...", "file")]], 1, ".wh...", "is a whiteout of '..', which names no entry of its directory"),
        ([[("a", "file", "x")], [(".wh.", "file")]], 1, ".wh.", "is a whiteout of '', which names no entry of its directory"),
        ([[("d", "dir")], [("d/.wh..", "file")]], 1, "d/.wh..", "is a whiteout of '.', which names no entry of its directory"),
        ([[("d", "dir")], [("d/.wh..wh.plnk", "file")]], 1, "d/.wh..wh.plnk", "is an unsupported AUFS whiteout"),
        # hard links
        ([[("x", "hardlink", s + "/etc/shadow")]], 0, "x", "is a hard link to the absolute path %r" % (s + "/etc/shadow")),
        ([[("nothere", "hardlink", "missing")]], 0, "nothere", "is a hard link to 'missing', which is not a regular file extracted before it"),
        ([[("d", "dir"), ("h", "hardlink", "d")]], 0, "h", "is a hard link to 'd', which is not a regular file extracted before it"),
        ([[("d", "dir"), ("l", "symlink", "d"), ("f", "file", "x")], [("h", "hardlink", "l/../f")]], 1, None, None),
        # symlinks out
        ([[("up", "symlink", "../../../sentinel")]], 0, "up", "is a symlink to '../../../sentinel', outside the target"),
        ([[("a/b", "symlink", "../../x")]], 0, "a/b", "is a symlink to '../../x', outside the target"),
        ([[("p", "symlink", "d/s/.."), ("d", "dir")], [("d/s", "symlink", "..")]], 0, "p",
         "is a symlink to 'd/s/..', which resolves outside the target once extracted"),
        # writing through a symlink made by an earlier member or layer
        ([[("d", "dir"), ("link", "symlink", "d")], [("link/f", "file", "x")]], 1, "link/f", "would be written through the symlink 'link'"),
        ([[("d", "dir"), ("link", "symlink", "d"), ("link/sub/f", "file", "x")]], 0, "link/sub/f", "would be written through the symlink 'link'"),
        # names
        ([[("/abs", "file", "x")]], 0, "/abs", None),
        ([[("a/../../x", "file", "x")]], 0, "a/../../x", None),
        # special files
        ([[("pipe", "fifo")]], 0, "pipe", "is a FIFO"),
        ([[("zero", "chr")]], 0, "zero", "is a character device"),
    ]


@pytest.mark.parametrize("index", range(20))
def test_hostile_layer_is_refused_precisely_and_nothing_outside_changes(images, sentinel, other_rootfs, index):
    layers, bad, member, reason = cases(sentinel.root)[index]
    desc = images.image("evil:%d" % index, layers)
    with pytest.raises(StoreError) as err:
        extract(images.store, desc)
    digest = layer_digest(images, desc, bad)
    if member is None:  # hard link target with '..'
        expected = "image %s: layer %s: hard link target of 'h': 'l/../f' leaves the target ('..'); refused" % (desc["digest"], digest)
    elif reason is None:
        what = "is an absolute path" if member.startswith("/") else "leaves the target ('..')"
        expected = "image %s: layer %s: member %r %s; refused" % (desc["digest"], digest, member, what)
    else:
        expected = refusal(desc, digest, member, reason)
    assert str(err.value) == expected
    assert rootfs_dir_entries(images) == ["b" * 64]  # no partial, no rootfs of the hostile image


def test_whiteouts_and_links_that_stay_inside_work(images, sentinel):
    desc = images.image("ok:1", [
        [("bin", "dir"), ("bin/k3s", "file", "k3s"), ("bin/kubectl", "symlink", "k3s"), ("gone", "file", "x"),
         ("d", "dir"), ("d/a", "file", "a"), ("d/b", "file", "b"), ("etc", "dir"), ("etc/shadow", "file", "inside")],
        [(".wh.gone", "file"), ("d/.wh..wh..opq", "file"), ("d/c", "file", "c"),
         ("a/b/c/d/e/x", "hardlink", "etc/shadow"), ("up", "symlink", "bin/../etc")],
    ])
    root, new = extract(images.store, desc)
    assert new and sorted(os.listdir(root)) == ["a", "bin", "d", "etc", "up"]
    assert os.listdir(os.path.join(root, "d")) == ["c"]
    assert os.readlink(os.path.join(root, "bin", "kubectl")) == "k3s"
    # a hard link target is a member name, relative to the target root, not to the link's directory
    with open(os.path.join(root, "a", "b", "c", "d", "e", "x"), encoding="utf-8") as f:
        assert f.read() == "inside"
    assert os.stat(os.path.join(root, "etc", "shadow")).st_nlink == 2


@pytest.mark.parametrize("given, expected", [(0o4755, 0o755), (0o2777, 0o755), (0o1666, 0o644), (0o070, 0o640), (0o000, 0o600)])
def test_modes_lose_setuid_and_group_other_write(images, sentinel, given, expected):
    desc = images.image("modes:1", [[("f", "file", "x", given), ("d", "dir", None, given | 0o1000)]])
    root, _new = extract(images.store, desc)
    assert stat.S_IMODE(os.lstat(os.path.join(root, "f")).st_mode) == expected
    assert stat.S_IMODE(os.lstat(os.path.join(root, "d")).st_mode) == (given & 0o755) | 0o700


@pytest.mark.parametrize("layers, rel, culprit", [
    ([[("real", "file", json.dumps({"ClusterRuntime": "k3s"})), ("Metadata", "symlink", "real")]], "Metadata", "Metadata"),
    ([[("m", "dir"), ("m/imageList", "file", "busybox\n"), ("manifests", "symlink", "m")]], "manifests/imageList", "manifests"),
])
def test_describe_reads_rootfs_files_only_as_regular_files(images, sentinel, layers, rel, culprit):
    desc = images.image("links:1", layers)
    root, _new = extract(images.store, desc)  # links inside the rootfs are fine to extract
    with pytest.raises(StoreError) as err:
        describe(images.store, desc, root)
    assert str(err.value) == "image %s: %s is a symlink (%r); refused" % (desc["digest"], rel, culprit)
    with pytest.raises(StoreError) as again:  # the same image described from its layers (check mode)
        describe(images.store, desc, None)
    assert str(again.value) == str(err.value)


def test_describe_from_layers_matches_the_extracted_rootfs(images, sentinel):
    desc = images.image("legacy:1", [
        [("Metadata", "file", json.dumps({"ClusterRuntime": "k3s", "version": "v1"})), ("manifests/imageList", "file", "a:1\n")],
        [("manifests/.wh.imageList", "file"), ("manifests/imageList", "file", "# c\nb:2\n")],
    ], labels={})
    from_layers = describe(images.store, desc, None)
    assert not os.path.exists(rootfs_path(images.store, desc))  # nothing written
    assert from_layers == describe(images.store, desc, extract(images.store, desc)[0])
    assert (from_layers["runtime"], from_layers["runtime_version"], from_layers["image_list"]) == ("k3s", "v1", ["b:2"])


def test_check_mode_writes_no_rootfs_and_refuses_the_same(images, sentinel, run_module):
    good = images.image("docker.io/library/k3s:v1", [[("bin/k3s", "file", "k3s")]])
    bad = images.image("docker.io/library/evil:v1", [[("d", "dir"), ("evil", "symlink", "d")], [("evil/.wh.f", "file")]])
    checked = run_module("cluster_image", check=True, name="k3s:v1", store=images.store.root)
    assert checked["changed"] is False and checked["digest"] == good["digest"]
    assert checked["rootfs"] == rootfs_path(images.store, good) and not os.path.exists(checked["rootfs"])
    refused = run_module("cluster_image", check=True, name="evil:v1", store=images.store.root)
    assert refused["failed"] and refused["msg"] == "layer %s: member 'evil/.wh.f' would be written through the symlink 'evil'; refused" % (
        layer_digest(images, bad, 1))
    assert rootfs_dir_entries(images) == []
    real = run_module("cluster_image", name="evil:v1", store=images.store.root)
    assert real["failed"] and real["msg"] == "image %s: %s" % (bad["digest"], refused["msg"])
    assert rootfs_dir_entries(images) == []
