"""Cluster images: references, Kubefile parsing, reproducible builds, verified store and rootfs,
runtime detection, save/load."""
import json
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _image_transfer as transfer
from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe, extract, rootfs_path
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError
from ansible_collections.seal.cluster.plugins.module_utils._kubefile import KubefileError, parse


@pytest.mark.parametrize("text, full, familiar", [
    ("k3s:v1.25.3", "docker.io/library/k3s:v1.25.3", "k3s:v1.25.3"),
    ("k3s", "docker.io/library/k3s:latest", "k3s:latest"),
    ("sealerio/kubernetes:v1.22.15", "docker.io/sealerio/kubernetes:v1.22.15", "sealerio/kubernetes:v1.22.15"),
    ("reg.example:5000/ns/k3s:v1", "reg.example:5000/ns/k3s:v1", "reg.example:5000/ns/k3s:v1"),
    ("localhost/k3s@sha256:" + "a" * 64, "localhost/k3s@sha256:" + "a" * 64, "localhost/k3s@sha256:" + "a" * 64),
])
def test_references(text, full, familiar):
    ref = Reference.parse(text)
    assert str(ref) == full and ref.familiar() == familiar


@pytest.mark.parametrize("bad", ["", "K3S:v1", "k3s:", "k3s@sha256:abc", " k3s", "a//b"])
def test_bad_references(bad):
    with pytest.raises(ReferenceError_):
        Reference.parse(bad)


@pytest.mark.parametrize("text, message", [
    ("COPY a b\n", "Kubefile:1: the first instruction must be FROM"),
    ("FROM scratch\nRUN make\n", "Kubefile:2: unknown instruction RUN"),
    ("FROM scratch\n\n# c\nADD http://x/y /bin/y\n", "Kubefile:4: ADD needs --checksum=sha256:"),
    ("FROM scratch\nCOPY bin/${OS} bin\n", "Kubefile:2: unknown variable $OS"),
    ("FROM scratch\nLABEL justkey\n", "Kubefile:2: LABEL expects key=value"),
    ("FROM scratch\nCMD [\"a\", \n", "Kubefile:2: CMD: invalid JSON array"),
    ("FROM scratch\nFROM scratch\n", "Kubefile:2: only one FROM"),
    ("FROM scratch\nCOPY \\\n  onlyone\n", "Kubefile:2: COPY needs a source and a destination"),
])
def test_kubefile_errors_name_the_line(text, message):
    with pytest.raises(KubefileError) as err:
        parse(text, "Kubefile")
    assert str(err.value).startswith(message)


def test_kubefile_arch_and_continuations():
    ins = parse("ARG V=1\nFROM scratch\nCOPY bin/${ARCH}/k3s \\\n   bin/\nLABEL a=\"b c\" d=${V}\nCMDS [\"x\"]\n",
                build_args={"ARCH": "arm64"})
    assert [i.keyword for i in ins] == ["ARG", "FROM", "COPY", "LABEL", "CMDS"]
    assert ins[2].args["sources"] == ["bin/arm64/k3s"] and ins[2].line == 3
    assert ins[3].args == [("a", "b c"), ("d", "1")]


def make_context(path, metadata=True, label=True):
    os.makedirs(os.path.join(path, "bin"))
    with open(os.path.join(path, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\necho k3s\n")
    os.chmod(os.path.join(path, "bin", "k3s"), 0o755)
    os.makedirs(os.path.join(path, "manifests"))
    with open(os.path.join(path, "manifests", "imageList"), "w", encoding="utf-8") as f:
        f.write("docker.io/library/busybox:1.36\n")
    # already cached in registry/ (registry-v2 layout): the build has nothing to copy
    link = os.path.join(path, "registry", "docker", "registry", "v2", "repositories", "library", "busybox",
                        "_manifests", "tags", "1.36", "current")
    os.makedirs(link)
    with open(os.path.join(link, "link"), "w", encoding="utf-8") as f:
        f.write("sha256:" + "b" * 64)
    if metadata:
        with open(os.path.join(path, "Metadata"), "w", encoding="utf-8") as f:
            json.dump({"version": "v1.25.3+k3s1", "arch": "amd64", "ClusterRuntime": "k3s"}, f)
    lines = ["FROM scratch", "COPY bin bin", "COPY registry registry", "COPY manifests manifests"] + (["COPY Metadata ."] if metadata else [])
    if label:
        lines += ['LABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"',
                  'LABEL cluster.alpha.sealer.io/cluster-runtime-version="v1.25.3+k3s1"']
    with open(os.path.join(path, "Kubefile"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines + ['CMD ["k3s"]']) + "\n")
    return path


def test_same_context_builds_the_same_digest_and_dedups(tmp_path):
    ctx = make_context(str(tmp_path / "ctx"))
    store = Store(str(tmp_path / "store"))
    first, before = Builder(store, ctx).build("k3s:v1.25.3")
    os.utime(os.path.join(ctx, "bin", "k3s"), (1, 1))  # mtimes do not matter
    second, again = Builder(Store(str(tmp_path / "other")), ctx).build("k3s:v1.25.3")
    assert first["digest"] == second["digest"] and before is None and again is None
    blobs = len(os.listdir(str(tmp_path / "store" / "blobs" / "sha256")))
    Builder(store, ctx).build("k3s:copy")
    assert len(os.listdir(str(tmp_path / "store" / "blobs" / "sha256"))) == blobs


def test_runtime_from_label_or_metadata_or_error(tmp_path):
    store = Store(str(tmp_path / "store"))
    labelled, _b = Builder(store, make_context(str(tmp_path / "a"), metadata=False)).build("a:1")
    legacy, _b = Builder(store, make_context(str(tmp_path / "b"), label=False)).build("b:1")
    bare, _b = Builder(store, make_context(str(tmp_path / "c"), metadata=False, label=False)).build("c:1")
    info = describe(store, labelled, extract(store, labelled)[0])
    assert (info["runtime"], info["runtime_version"], info["arch"]) == ("k3s", "v1.25.3+k3s1", "amd64")
    info = describe(store, legacy, extract(store, legacy)[0])
    assert (info["runtime"], info["runtime_version"]) == ("k3s", "v1.25.3+k3s1")
    assert info["image_list"] == ["docker.io/library/busybox:1.36"]
    assert describe(store, bare, extract(store, bare)[0])["runtime"] is None


def test_tampered_or_truncated_blob_is_refused_by_digest(tmp_path):
    store = Store(str(tmp_path / "store"))
    desc, _b = Builder(store, make_context(str(tmp_path / "ctx"))).build("k3s:v1")
    layer = store.manifest(desc)["layers"][0]["digest"]
    path = store.blob_path(layer)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 3)
    with pytest.raises(StoreError, match=layer):
        extract(store, desc)
    assert not os.path.exists(rootfs_path(store, desc))
    rootfs_dir = os.path.join(store.root, "rootfs")
    assert not os.path.isdir(rootfs_dir) or not [n for n in os.listdir(rootfs_dir) if "partial" in n]


def test_extract_is_complete_and_cached(tmp_path):
    store = Store(str(tmp_path / "store"))
    desc, _b = Builder(store, make_context(str(tmp_path / "ctx"))).build("k3s:v1")
    root, new = extract(store, desc)
    assert new and os.access(os.path.join(root, "bin", "k3s"), os.X_OK)
    assert extract(store, desc) == (root, False)


def test_build_errors_name_file_and_line(tmp_path):
    ctx = make_context(str(tmp_path / "ctx"))
    with open(os.path.join(ctx, "Kubefile"), "a", encoding="utf-8") as f:
        f.write("COPY missing dir\n")
    with pytest.raises(BuildError, match=r"Kubefile:\d+: missing not found in the build context"):
        Builder(Store(str(tmp_path / "store")), ctx).build("x:1")
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write("FROM scratch\nCOPY ../etc/passwd x\n")
    with pytest.raises(BuildError, match="outside the build context"):
        Builder(Store(str(tmp_path / "store")), ctx).build("x:1")


def test_save_load_round_trip_and_gc(tmp_path):
    store = Store(str(tmp_path / "store"))
    desc, _b = Builder(store, make_context(str(tmp_path / "ctx"))).build("k3s:v1")
    archive = str(tmp_path / "k3s.oci.tar")
    transfer.save(store, Reference.parse("k3s:v1"), desc, archive)
    other = Store(str(tmp_path / "other"))
    other.ensure()
    (ref, loaded), = transfer.load(other, archive)
    assert str(ref) == "docker.io/library/k3s:v1" and loaded["digest"] == desc["digest"]
    other.untag("k3s:v1")
    assert other.gc() == 1 + 1 + len(store.manifest(desc)["layers"])


def _build_in_child(args):
    store, ctx, name = args
    return Builder(Store(store), ctx).build(name)[0]["digest"]


def test_concurrent_builds_into_one_store_lose_no_reference(tmp_path):
    import multiprocessing
    store = str(tmp_path / "store")
    contexts = []
    for n in range(6):
        ctx = make_context(str(tmp_path / ("ctx%d" % n)))
        with open(os.path.join(ctx, "bin", "k3s"), "a", encoding="utf-8") as f:
            f.write("# %d\n" % n)  # a different image each
        contexts.append((store, ctx, "k3s:v%d" % n))
    with multiprocessing.get_context("fork").Pool(6) as pool:
        digests = pool.map(_build_in_child, contexts)
    images = dict(Store(store).images())
    assert sorted(images) == ["docker.io/library/k3s:v%d" % n for n in range(6)]
    assert [images["docker.io/library/k3s:v%d" % n]["digest"] for n in range(6)] == digests and len(set(digests)) == 6
    for name in images:
        extract(Store(store), images[name])  # every blob of every image is there and verifies
