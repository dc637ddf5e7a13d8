"""The k3s release recipe end to end, offline, on stand-in files laid out exactly as a k3s release
publishes them (k3s-io/k3s .github/workflows/release.yml, scripts/package-airgap):

    k3s                              the stand-in binary (version baked in, never run here)
    k3s-airgap-images-amd64.tar.zst  `docker save` archive of small local test images, zstd
    sha256sum-amd64.txt              sha256sum lines for the three air-gap variants and k3s
    k3s-images.txt                   the image list

`seal-image build-k3s` and the shipped playbook build the image; the runtime label and version
are read back, the image's registry/ is served by a real distribution registry and every image
of the archive is found there; a wrong or missing checksum line and missing files fail naming
the file, and nothing is stored."""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import build as standin_build
import make_rootfs
import registry_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEAL_IMAGE = os.path.join(ROOT, ".venv", "bin", "seal-image")

VERSION = "v1.25.3+k3s1"
AIRGAP = "k3s-airgap-images-amd64.tar.zst"


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_release(path):
    """The files of a k3s amd64 release, named as published."""
    os.makedirs(path)
    standin_build.build(VERSION, os.path.join(path, "k3s"))
    tar = os.path.join(path, "k3s-airgap-images-amd64.tar")
    make_rootfs.docker_archive(make_rootfs.SYSTEM_IMAGES, tar)
    with open(tar, "rb") as src, open(tar + ".gz", "wb") as dest:
        dest.write(gzip.compress(src.read(), mtime=0))
    subprocess.run(["zstd", "--quiet", "-16", "--long=25", tar, "-o", tar + ".zst"], check=True)
    # release.yml: the air-gap .sha256sum (`sha256sum k3s-airgap-images-<arch>.tar*`), then k3s's
    lines = ["%s  %s\n" % (_sha(os.path.join(path, name)), name)
             for name in ("k3s-airgap-images-amd64.tar", "k3s-airgap-images-amd64.tar.gz", AIRGAP, "k3s")]
    with open(os.path.join(path, "sha256sum-amd64.txt"), "w", encoding="utf-8") as f:
        f.writelines(lines)
    with open(os.path.join(path, "k3s-images.txt"), "w", encoding="utf-8") as f:
        f.write("".join(ref + "\n" for ref in make_rootfs.SYSTEM_IMAGES))
    # a user downloads one of the three archive variants
    os.unlink(tar)
    os.unlink(tar + ".gz")
    return path


def seal_image(*argv, store):
    return subprocess.run([SEAL_IMAGE, "--store", store] + list(argv), capture_output=True, text=True, timeout=300,
                          check=False, cwd="/")


def build_k3s(release, store, *extra, tag="k3s:v1.25.3", version=VERSION):
    return seal_image("build-k3s", "-t", tag, "--k3s-version", version, *extra, release, store=store)


@pytest.fixture(scope="module")
def work():
    if not os.access(SEAL_IMAGE, os.X_OK):
        pytest.fail("%s is missing: run scripts/setup.sh (pip install -e .)" % SEAL_IMAGE)
    path = tempfile.mkdtemp(prefix="seal-k3s-release-")
    make_release(os.path.join(path, "release"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def variant(work, name, edit):
    """A copy of the release with one thing changed by edit(path)."""
    path = os.path.join(work, name)
    shutil.copytree(os.path.join(work, "release"), path)
    edit(path)
    return path


def test_release_files_build_an_image_with_its_version_and_a_registry_serving_its_images(work):
    store = os.path.join(work, "store")
    release = os.path.join(work, "release")
    built = build_k3s(release, store, "--context", os.path.join(work, "context"))
    assert built.returncode == 0, built.stderr
    info = json.loads(seal_image("inspect", "k3s:v1.25.3", store=store).stdout)
    assert info["digest"] == built.stdout.strip()
    assert info["runtime"] == "k3s" and info["runtime_version"] == VERSION and info["arch"] == "amd64"
    assert info["labels"]["cluster.alpha.sealer.io/cluster-runtime-type"] == "k3s"
    assert info["labels"]["cluster.alpha.sealer.io/cluster-runtime-version"] == VERSION
    assert info["labels"]["cluster.alpha.sealer.io/container-runtime-type"] == "containerd"
    assert info["image_list"] == sorted(make_rootfs.SYSTEM_IMAGES)
    rootfs = info["rootfs"]
    # the release's files, byte for byte, where k3s_runtime and the registry module look for them
    assert _sha(os.path.join(rootfs, "bin", "k3s")) == _sha(os.path.join(release, "k3s"))
    assert os.access(os.path.join(rootfs, "bin", "k3s"), os.X_OK)
    assert _sha(os.path.join(rootfs, "images", AIRGAP)) == _sha(os.path.join(release, AIRGAP))
    assert _sha(os.path.join(rootfs, "bin", "registry")) == _sha("/usr/bin/docker-registry")
    with open(os.path.join(rootfs, "Metadata"), encoding="utf-8") as f:
        assert json.load(f) == {"version": VERSION, "arch": "amd64", "ClusterRuntime": "k3s"}
    assert sorted(os.listdir(os.path.join(work, "context"))) == ["Kubefile", "Metadata", "bin", "images", "manifests", "registry"]

    served = registry_fixture.PlainRegistry(os.path.join(work, "served"), os.path.join(rootfs, "registry"))
    try:
        for ref in make_rootfs.SYSTEM_IMAGES:
            path = ref.split("/", 1)[1]  # docker.io dropped: where a containerd mirror of docker.io asks
            inspect = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/%s" % (served.host, path)],
                                     capture_output=True, text=True, timeout=60, check=False)
            assert inspect.returncode == 0, inspect.stderr
            assert json.loads(inspect.stdout)["Labels"]["io.seal.standin.image"] == ref
        absent = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "docker://%s/library/busybox:1.36" % served.host],
                                capture_output=True, text=True, timeout=60, check=False)
        assert absent.returncode != 0
    finally:
        served.stop()

    again = build_k3s(release, store)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == built.stdout.strip() and "(unchanged)" in again.stderr
    # the kept context is an ordinary Kubefile context: built as such, it is the same image
    rebuilt = seal_image("build", "-t", "k3s:rebuilt", os.path.join(work, "context"), store=store)
    assert rebuilt.returncode == 0 and rebuilt.stdout.strip() == built.stdout.strip(), rebuilt.stderr


def test_the_shipped_playbook_builds_it_and_a_second_run_changes_nothing(work):
    store = os.path.join(work, "store-play")
    out = []
    for _run in range(2):
        proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", "localhost,",
                               os.path.join(ROOT, "playbooks", "build_k3s_image.yml"),
                               "-e", "k3s_release=" + os.path.join(work, "release"), "-e", "k3s_version=" + VERSION,
                               "-e", "seal_image_store=" + store],
                              cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
                              capture_output=True, text=True, timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        out.append(proc.stdout)
    assert "changed=1" in out[0] and "changed=0" in out[1]
    info = json.loads(seal_image("inspect", "k3s:v1.25.3", store=store).stdout)
    assert info["runtime_version"] == VERSION and "%d images in registry/" % len(make_rootfs.SYSTEM_IMAGES) in out[1]


def _replace_line(name, digest):
    def edit(path):
        sums = os.path.join(path, "sha256sum-amd64.txt")
        with open(sums, encoding="utf-8") as f:
            lines = f.read().splitlines()
        kept = [line for line in lines if not line.endswith("  " + name)]
        assert len(kept) == len(lines) - 1
        if digest:
            kept.append("%s  %s" % (digest, name))
        with open(sums, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
    return edit


@pytest.mark.parametrize("name, edit, message", [
    ("bad-binary-sum", _replace_line("k3s", "0" * 64),
     "/bad-binary-sum/k3s does not match its checksum: sha256sum-amd64.txt says sha256 " + "0" * 64),
    ("bad-airgap-sum", _replace_line(AIRGAP, "f" * 64), "/bad-airgap-sum/%s does not match its checksum" % AIRGAP),
    ("no-airgap-line", _replace_line(AIRGAP, None), "sha256sum-amd64.txt has no line for %s" % AIRGAP),
    ("no-binary-line", _replace_line("k3s", None), "sha256sum-amd64.txt has no line for k3s:"),
    ("no-airgap", lambda p: os.unlink(os.path.join(p, AIRGAP)),
     "no-airgap: no air-gap image archive (k3s-airgap-images-amd64.tar.zst or k3s-airgap-images-amd64.tar.gz or "
     "k3s-airgap-images-amd64.tar)"),
    ("no-sums", lambda p: os.unlink(os.path.join(p, "sha256sum-amd64.txt")),
     "no-sums: sha256sum-amd64.txt not found (the checksum file of k3s v1.25.3+k3s1 for amd64)"),
    ("no-binary", lambda p: os.unlink(os.path.join(p, "k3s")), "no-binary: k3s not found (the binary of k3s v1.25.3+k3s1 for amd64)"),
])
def test_a_bad_release_file_fails_naming_it_and_stores_nothing(work, name, edit, message):
    store = os.path.join(work, "store-" + name)
    failed = build_k3s(variant(work, name, edit), store)
    assert failed.returncode == 1 and message in failed.stderr, failed.stderr
    assert seal_image("images", store=store).stdout.splitlines()[1:] == []


def test_version_and_architecture_must_be_the_release_files(work):
    store = os.path.join(work, "store-version")
    release = os.path.join(work, "release")
    other = build_k3s(release, store, tag="k3s:v1.26.0", version="v1.26.0+k3s1")
    assert other.returncode == 1 and "/release/k3s does not carry the version v1.26.0+k3s1 (it names v1.25.3+k3s1)" in other.stderr
    tag = build_k3s(release, store, tag="k3s:v1.24.8")
    assert tag.returncode == 1 and "the image tag v1.24.8 does not match the k3s version v1.25.3+k3s1" in tag.stderr
    arch = build_k3s(release, store, "--arch", "arm64")
    assert arch.returncode == 1 and "k3s-arm64 not found" in arch.stderr and "the directory has k3s" in arch.stderr
    assert seal_image("images", store=store).stdout.splitlines()[1:] == []
