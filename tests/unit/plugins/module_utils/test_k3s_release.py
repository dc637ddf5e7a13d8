"""The facts of a k3s release that the recipe checks without running anything: checksum lines,
version and tag, ELF machine, the version string a binary carries, the archive's image names."""
import io
import json
import os
import tarfile

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_release as rel
from ansible_collections.seal.cluster.plugins.module_utils._kubefile import parse

HEX_A, HEX_B = "a" * 64, "B" * 64


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_checksum_lines_in_sha256sum_text_and_binary_form(tmp_path):
    path = _write(tmp_path / "sha256sum-amd64.txt",
                  ("%s  k3s\n%s *k3s-airgap-images-amd64.tar.zst\n\n%s  k3s\n" % (HEX_A, HEX_B, HEX_A)).encode())
    assert rel.parse_checksums(path) == {"k3s": HEX_A, "k3s-airgap-images-amd64.tar.zst": HEX_B.lower()}


@pytest.mark.parametrize("text, error", [
    ("%s k3s\n" % HEX_A, ":1: not a sha256sum line"),
    ("%s  k3s\nabc  k3s-arm64\n" % HEX_A, ":2: not a sha256sum line"),
    ("%s  k3s\n%s  k3s\n" % (HEX_A, "c" * 64), ":2: a second, different checksum for k3s"),
])
def test_a_malformed_checksum_file_names_file_and_line(tmp_path, text, error):
    path = _write(tmp_path / "sha256sum-amd64.txt", text.encode())
    with pytest.raises(rel.ReleaseError) as err:
        rel.parse_checksums(path)
    assert str(err.value).startswith(path + error)


@pytest.mark.parametrize("version, tag", [
    ("v1.25.3+k3s1", None), ("v1.25.3+k3s1", "v1.25.3"), ("v1.25.3+k3s1", "v1.25.3-k3s1"),
    ("v1.25.3+k3s1", "v1.25.3+k3s1"), ("v1.30.0-rc2+k3s1", "latest"), ("v1.25.3+k3s2", "prod"),
])
def test_versions_and_tags_that_agree(version, tag):
    rel.check_version(version, tag)


@pytest.mark.parametrize("version, tag, error", [
    ("1.25.3+k3s1", None, "does not look like a k3s release"),
    ("v1.25.3", None, "does not look like a k3s release"),
    ("v1.25.3-k3s1", None, "does not look like a k3s release"),
    ("v1.25.3+k3s1", "v1.26.0", "the image tag v1.26.0 does not match the k3s version v1.25.3+k3s1"),
    ("v1.25.3+k3s2", "v1.25.3-k3s1", "does not match"),
])
def test_versions_and_tags_that_do_not(version, tag, error):
    with pytest.raises(rel.ReleaseError) as err:
        rel.check_version(version, tag)
    assert error in str(err.value)


def _elf(machine, little=True):
    order = "little" if little else "big"
    return b"\x7fELF" + bytes([2, 1 if little else 2, 1]) + b"\0" * 9 + (2).to_bytes(2, order) + machine.to_bytes(2, order)


def test_elf_machine_read_from_the_header(tmp_path):
    assert rel.elf_machine(_write(tmp_path / "a", _elf(62) + b"rest")) == 62
    assert rel.elf_machine(_write(tmp_path / "b", _elf(22, little=False))) == 22
    assert rel.elf_machine(_write(tmp_path / "c", b"#!/usr/bin/python3\n" + b"x" * 40)) is None
    assert rel.elf_machine(_write(tmp_path / "d", b"\x7fELF")) is None


def test_version_strings_found_across_read_chunks(tmp_path):
    data = b"x" * ((1 << 20) - 5) + b"v1.25.3+k3s1\0" + b"y" * 100 + b"v1.24.8+k3s2 v1.2.3-k3s1"
    assert rel.versions_in(_write(tmp_path / "k3s", data)) == {"v1.25.3+k3s1", "v1.24.8+k3s2"}


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_archive_images_from_manifest_json_repo_tags(tmp_path):
    manifest = [{"RepoTags": ["rancher/mirrored-pause:3.6", "docker.io/rancher/klipper-lb:v0.3.5"]},
                {"RepoTags": ["docker.io/rancher/mirrored-pause:3.6"]}, {"RepoTags": None}]
    path = _tar(tmp_path / "a.tar", {"manifest.json": json.dumps(manifest).encode(), "index.json": b"{}"})
    assert [str(r) for r in rel.archive_images(path)] == ["docker.io/rancher/klipper-lb:v0.3.5", "docker.io/rancher/mirrored-pause:3.6"]


@pytest.mark.parametrize("members, error", [
    ({"index.json": b"{}"}, "has no manifest.json: not a docker/OCI image archive"),
    ({"manifest.json": b"{\"RepoTags\": []}"}, "manifest.json is not a list of images"),
    ({"manifest.json": b"[{\"RepoTags\": []}]"}, "manifest.json names no image (RepoTags)"),
    ({"manifest.json": b"[{\"RepoTags\": [\"Bad Name\"]}]"}, "manifest.json names 'Bad Name'"),
    ({"manifest.json": b"not json"}, "cannot read its manifest.json"),
])
def test_archive_images_refuses_what_is_not_an_image_archive(tmp_path, members, error):
    path = _tar(tmp_path / "a.tar", members)
    with pytest.raises(rel.ReleaseError) as err:
        rel.archive_images(path, "k3s-airgap-images-amd64.tar.zst")
    assert str(err.value).startswith("k3s-airgap-images-amd64.tar.zst") and error in str(err.value)


def test_release_of_an_unknown_architecture_or_a_missing_directory(tmp_path):
    with pytest.raises(rel.ReleaseError, match="k3s publishes no release for architecture 'mips'"):
        rel.Release(str(tmp_path), "v1.25.3+k3s1", "mips")
    with pytest.raises(rel.ReleaseError, match="is not a directory"):
        rel.Release(str(tmp_path / "nope"), "v1.25.3+k3s1").verify()


def _release(tmp_path, binary, arch="arm64"):
    names = {"amd64": "k3s", "arm64": "k3s-arm64", "arm": "k3s-armhf"}
    _write(tmp_path / names[arch], binary)
    airgap = _write(tmp_path / ("k3s-airgap-images-%s.tar.gz" % arch), b"gz")
    sums = "".join("%s  %s\n" % (rel.sha256_file(p), os.path.basename(p)) for p in (str(tmp_path / names[arch]), airgap))
    _write(tmp_path / ("sha256sum-%s.txt" % arch), sums.encode())
    return rel.Release(str(tmp_path), "v1.25.3+k3s1", arch)


def test_the_binary_must_be_for_the_architecture_and_carry_the_version(tmp_path):
    good = _release(tmp_path, _elf(183) + b"\0v1.25.3+k3s1\0")
    assert good.verify() == {"binary": str(tmp_path / "k3s-arm64"), "airgap": str(tmp_path / "k3s-airgap-images-arm64.tar.gz"),
                             "checksums": str(tmp_path / "sha256sum-arm64.txt")}
    wrong_machine = _release(tmp_path, _elf(62) + b"\0v1.25.3+k3s1\0")
    with pytest.raises(rel.ReleaseError, match=r"k3s-arm64 is an ELF binary for machine 62, not for arm64 \(183\)"):
        wrong_machine.verify()
    other_version = _release(tmp_path, _elf(183) + b"\0v1.24.8+k3s1\0")
    with pytest.raises(rel.ReleaseError, match=r"does not carry the version v1.25.3\+k3s1 \(it names v1.24.8\+k3s1\)"):
        other_version.verify()


def test_the_registry_binary_must_be_for_the_architecture_too(tmp_path):
    (tmp_path / "rel").mkdir()
    release = _release(tmp_path / "rel", _elf(183) + b"v1.25.3+k3s1")
    registry_bin = _write(tmp_path / "registry", _elf(62))
    os.chmod(registry_bin, 0o755)
    with pytest.raises(rel.ReleaseError, match=r"registry is an ELF binary for machine 62, not for arm64 \(183\): give a registry"):
        release.write_context(str(tmp_path / "ctx"), registry_bin)
    assert not os.path.exists(tmp_path / "ctx")


def test_the_kubefile_labels_the_runtime_with_the_version_build_argument():
    labels = {}
    for ins in parse(rel.KUBEFILE, "Kubefile", {"VERSION": "v1.25.3+k3s1", "ARCH": "amd64"}):
        if ins.keyword == "LABEL":
            labels.update(dict(ins.args))
    assert labels == {"cluster.alpha.sealer.io/cluster-runtime-type": "k3s",
                      "cluster.alpha.sealer.io/cluster-runtime-version": "v1.25.3+k3s1",
                      "cluster.alpha.sealer.io/container-runtime-type": "containerd"}
