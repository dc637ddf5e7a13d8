"""Registry host helpers: config and unit text, merging an image's registry storage into the
registry's data (add, update the image's tags, never delete, blobs linked), missing images."""
import os

import yaml

from ansible_collections.seal.cluster.plugins.module_utils import _registry_server as rs
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference

V2 = "docker/registry/v2"
BLOB = "a" * 64
BLOB2 = "b" * 64


def storage(root, repo="library/busybox", tag="1.36", manifest=BLOB):
    files = {
        "%s/blobs/sha256/%s/%s/data" % (V2, manifest[:2], manifest): "manifest-" + manifest,
        "%s/repositories/%s/_manifests/revisions/sha256/%s/link" % (V2, repo, manifest): "sha256:" + manifest,
        "%s/repositories/%s/_manifests/tags/%s/current/link" % (V2, repo, tag): "sha256:" + manifest,
        "%s/repositories/%s/_manifests/tags/%s/index/sha256/%s/link" % (V2, repo, tag, manifest): "sha256:" + manifest,
    }
    for rel, text in files.items():
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return files


def test_config_with_tls_and_auth_parses():
    text = rs.render_config("/var/lib/seal/c1/registry", 5000, "/etc/seal/c1/registry/tls.crt",
                            "/etc/seal/c1/registry/tls.key", "/etc/seal/c1/registry/htpasswd")
    cfg = yaml.safe_load(text)
    assert cfg["storage"]["filesystem"]["rootdirectory"] == "/var/lib/seal/c1/registry"
    assert cfg["storage"]["delete"] == {"enabled": False}
    assert cfg["http"]["addr"] == ":5000"
    assert cfg["http"]["tls"] == {"certificate": "/etc/seal/c1/registry/tls.crt", "key": "/etc/seal/c1/registry/tls.key"}
    assert cfg["auth"] == {"htpasswd": {"realm": "seal-registry", "path": "/etc/seal/c1/registry/htpasswd"}}


def test_config_plain_http_without_auth():
    cfg = yaml.safe_load(rs.render_config("/d", 5001))
    assert "tls" not in cfg["http"] and "auth" not in cfg and cfg["http"]["addr"] == ":5001"


def test_unit():
    unit = rs.render_unit("c1", "/var/lib/seal/c1/bin/seal-registry", "/etc/seal/c1/registry/config.yml")
    assert "ExecStart=/var/lib/seal/c1/bin/seal-registry serve /etc/seal/c1/registry/config.yml\n" in unit
    assert "Restart=always" in unit and "WantedBy=multi-user.target" in unit


def test_merge_adds_then_nothing(tmp_path):
    src, dst = tmp_path / "rootfs-registry", tmp_path / "data"
    files = storage(src)
    plan = rs.merge_plan(str(src), str(dst))
    assert sorted(plan) == sorted((rel, "add") for rel in files)
    rs.merge_apply(str(src), str(dst), plan)
    for rel, text in files.items():
        assert (dst / rel).read_text() == text
    blob = "%s/blobs/sha256/aa/%s/data" % (V2, BLOB)
    assert os.stat(dst / blob).st_ino == os.stat(src / blob).st_ino  # blob data linked, not copied
    link = "%s/repositories/library/busybox/_manifests/tags/1.36/current/link" % V2
    assert os.stat(dst / link).st_ino != os.stat(src / link).st_ino  # links are copies
    assert rs.merge_plan(str(src), str(dst)) == []
    assert not [n for n in os.listdir(dst / os.path.dirname(link)) if n.startswith(".seal")]


def test_newer_image_keeps_pushed_images_and_sets_its_tags(tmp_path):
    old, new, dst = tmp_path / "old", tmp_path / "new", tmp_path / "data"
    storage(old)
    rs.merge_apply(str(old), str(dst), rs.merge_plan(str(old), str(dst)))
    pushed = storage(dst, repo="team/app", tag="v1", manifest="c" * 64)  # a user's push
    storage(new, manifest=BLOB2)  # the newer image moves busybox:1.36 to another manifest
    plan = dict((rel, action) for rel, action in rs.merge_plan(str(new), str(dst)))
    link = "%s/repositories/library/busybox/_manifests/tags/1.36/current/link" % V2
    assert plan[link] == "update"
    assert sum(1 for a in plan.values() if a == "add") == 3
    rs.merge_apply(str(new), str(dst), list(plan.items()))
    assert (dst / link).read_text() == "sha256:" + BLOB2
    assert (dst / V2 / "blobs/sha256/aa" / BLOB / "data").exists()  # old content kept
    for rel, text in pushed.items():
        assert (dst / rel).read_text() == text


def test_merge_of_missing_source_is_empty(tmp_path):
    assert rs.merge_plan(str(tmp_path / "none"), str(tmp_path / "data")) == []


class FakeClient:
    def __init__(self, repos):
        self.repos = repos

    def catalog(self):
        return list(self.repos)

    def tags(self, repo):
        return self.repos.get(repo, [])

    def has_manifest(self, repo, ref):
        return ref == "sha256:" + "d" * 64


def test_missing_images_names_each():
    client = FakeClient({"library/busybox": ["1.36"], "rancher/mirrored-pause": ["3.6"]})
    refs = [Reference.parse(r) for r in ("docker.io/library/busybox:1.36", "busybox:1.35", "rancher/mirrored-pause:3.6",
                                         "quay.io/coreos/etcd:v3.5", "ghcr.io/x/y@sha256:" + "d" * 64,
                                         "rancher/mirrored-pause@sha256:" + "d" * 64,
                                         "rancher/mirrored-pause@sha256:" + "e" * 64)]
    assert rs.missing_images(client, refs) == [
        "docker.io/library/busybox:1.35", "quay.io/coreos/etcd:v3.5", "ghcr.io/x/y@sha256:" + "d" * 64,
        "docker.io/rancher/mirrored-pause@sha256:" + "e" * 64]


def test_config_is_accepted_by_the_real_registry(tmp_path):
    """The distribution registry (Debian's docker-registry, installed by setup.sh) starts with
    the rendered config and answers /v2/ - a config it rejects makes the service crash-loop."""
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config.yml"
    config.write_text(rs.render_config(str(tmp_path / "data"), port))
    log = open(tmp_path / "registry.log", "wb")
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "registry.log").read_text()
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "registry.log").read_text()
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
