"""Which images a cluster image needs cached, where they go in registry/, what the layers
already hold, and what happens when the tools for caching are missing."""
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder, scan_layers
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import CacheError, ImageCache, cached_path, images_wanted
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference
from ansible_collections.seal.cluster.plugins.module_utils._image_registry import api_host, is_loopback
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

DEPLOY = """apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
        - image: quay.io/coreos/etcd:v3.5.0   # pinned
      containers:
        - name: app
          image: "nginx:1.25"
        - name: templated
          image: {{ .Values.image }}
        - name: env
          image: ${IMAGE}
"""


def test_images_from_image_list_and_image_fields_sorted_and_unique():
    wanted = images_wanted({
        "manifests/imageList": "# comment\n\nbusybox:1.36\ndocker.io/library/nginx:1.25  # also in deploy\n",
        "manifests/deploy.yaml": DEPLOY,
        "manifests/README.md": "image: not-a-manifest:1\n",
    })
    assert [str(ref) for ref, _where in wanted] == [
        "docker.io/library/busybox:1.36", "docker.io/library/nginx:1.25", "quay.io/coreos/etcd:v3.5.0"]
    assert dict((str(r), w) for r, w in wanted)["quay.io/coreos/etcd:v3.5.0"] == "manifests/deploy.yaml:7"
    assert dict((str(r), w) for r, w in wanted)["docker.io/library/nginx:1.25"] == "manifests/deploy.yaml:10"


def test_a_bad_image_list_line_names_file_and_line():
    with pytest.raises(CacheError, match=r"^manifests/imageList:3: invalid image reference 'Bad/Image:1'"):
        images_wanted({"manifests/imageList": "a:1\n\nBad/Image:1\n"})


@pytest.mark.parametrize("text, path", [
    ("busybox:1.36", "registry/docker/registry/v2/repositories/library/busybox/_manifests/tags/1.36/current/link"),
    ("quay.io/coreos/etcd:v3.5.0", "registry/docker/registry/v2/repositories/coreos/etcd/_manifests/tags/v3.5.0/current/link"),
    ("reg:5000/a/b@sha256:" + "c" * 64, "registry/docker/registry/v2/repositories/a/b/_manifests/revisions/sha256/" + "c" * 64 + "/link"),
])
def test_cached_path_drops_the_registry_domain(text, path):
    assert cached_path(Reference.parse(text)) == path


def _context(path, image_list, registry_link=None, whiteout=False):
    os.makedirs(os.path.join(path, "manifests"))
    with open(os.path.join(path, "manifests", "imageList"), "w", encoding="utf-8") as f:
        f.write(image_list)
    lines = ["FROM scratch", "COPY manifests manifests"]
    if registry_link:
        link = os.path.join(path, "registry", os.path.dirname(registry_link[len("registry/"):]))
        os.makedirs(link)
        with open(os.path.join(link, "link"), "w", encoding="utf-8") as f:
            f.write("sha256:" + "d" * 64)
        lines.append("COPY registry registry")
    if whiteout:
        os.makedirs(os.path.join(path, "wh", "manifests"))
        open(os.path.join(path, "wh", "manifests", ".wh.imageList"), "w", encoding="utf-8").close()
        lines.append("COPY wh/manifests manifests")
    with open(os.path.join(path, "Kubefile"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def test_scan_layers_sees_the_merged_rootfs(tmp_path):
    store = Store(str(tmp_path / "store"))
    link = cached_path(Reference.parse("busybox:1.36"))
    desc, _b = Builder(store, _context(str(tmp_path / "a"), "busybox:1.36\n", link)).build("a:1")
    files, cached = scan_layers(store, store.manifest(desc)["layers"])
    assert files == {"manifests/imageList": "busybox:1.36\n"} and cached == {link}
    desc, _b = Builder(store, _context(str(tmp_path / "b"), "busybox:1.36\n", whiteout=True)).build("b:1")
    files, _cached = scan_layers(store, store.manifest(desc)["layers"])
    assert "manifests/imageList" not in files  # deleted by the upper layer's whiteout


def test_a_build_that_must_cache_without_the_tools_says_which_are_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no skopeo here
    monkeypatch.setattr("shutil.which", lambda name, path=None: None)
    with pytest.raises(BuildError, match="caching the images of manifests/imageList needs skopeo and docker-registry"):
        Builder(Store(str(tmp_path / "store")), _context(str(tmp_path / "c"), "busybox:1.36\n")).build("c:1")
    # the same context builds when caching is off, and when registry/ already holds the image
    Builder(Store(str(tmp_path / "store")), str(tmp_path / "c"), cache_images=False).build("c:1")
    link = cached_path(Reference.parse("busybox:1.36"))
    Builder(Store(str(tmp_path / "store")), _context(str(tmp_path / "d"), "busybox:1.36\n", link)).build("d:1")


def test_source_registry_entries_need_a_name():
    with pytest.raises(CacheError, match="needs registry"):
        ImageCache("/bin/skopeo", "/bin/registry", sources=[{"username": "u"}])


@pytest.mark.parametrize("host, loop", [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.8.9.1", True), ("[::1]:5000", True),
    ("localhost.example:5000", False), ("10.0.0.1:5000", False), ("sea.hub:5000", False),
])
def test_loopback_registries(host, loop):
    assert is_loopback(host) is loop


def test_docker_hub_api_host():
    assert api_host("docker.io") == "registry-1.docker.io" and api_host("reg:5000") == "reg:5000"
