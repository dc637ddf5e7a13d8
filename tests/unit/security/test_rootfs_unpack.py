"""Host-side rootfs unpack (issue 15 item 3) and the controller's rootfs tar: the module refuses
what the controller refuses (one helper, one set of rules), checks hard links against the target
root, and the controller reuses an existing tar only after verifying it."""
import os

import pytest

from ansible.errors import AnsibleActionFail

from ansible_collections.seal.cluster.plugins.action.rootfs import archive_of
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import StoreError, sha256_file

from hostile import write_tar

DIGEST = "sha256:" + "c" * 64


def unpack(run_module, tmp_path, entries):
    archive = write_tar(tmp_path / "rootfs.tar", entries)
    dest = str(tmp_path / "host" / "rootfs")
    os.makedirs(os.path.dirname(dest))
    return archive, dest, run_module("rootfs", src=archive, digest=DIGEST, dest=dest)


def hostile(s):
    return [
        # the case: checked against the member's directory, this looked inside
        ([("a/b/c/d/e/x", "hardlink", "../../../../../etc/shadow"), ("a/b/c/d/e/x", "file", "pwned")],
         "hard link target of 'a/b/c/d/e/x': '../../../../../etc/shadow' leaves the target ('..'); refused"),
        ([("x", "hardlink", s + "/etc/shadow")], "member 'x' is a hard link to the absolute path %r; refused" % (s + "/etc/shadow")),
        ([("l", "symlink", s + "/etc")], "member 'l' is a symlink to the absolute path %r; refused" % (s + "/etc")),
        ([("d", "dir"), ("l", "symlink", "d"), ("l/f", "file", "x")], "member 'l/f' would be written through the symlink 'l'; refused"),
        ([("up", "symlink", "../../../sentinel/etc")], "member 'up' is a symlink to '../../../sentinel/etc', outside the target; refused"),
        ([("/etc/passwd", "file", "x")], "member '/etc/passwd' is an absolute path; refused"),
        ([("zero", "chr")], "member 'zero' is a character device; refused"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_host_unpack_refuses_like_the_controller(run_module, images, tmp_path, sentinel, index):
    entries, reason = hostile(sentinel.root)[index]
    archive, dest, result = unpack(run_module, tmp_path, entries)
    assert result["failed"]
    assert result["msg"] == "rootfs: unpacking %s into %s failed: rootfs archive %s: %s" % (archive, dest, archive, reason)
    assert not os.path.lexists(dest) and not os.path.lexists(dest + ".new")
    # the same archive as an image layer is refused by the controller with the same words
    desc = images.image("same:%d" % index, [entries])
    with pytest.raises(StoreError) as err:
        extract(images.store, desc)
    assert str(err.value).endswith(reason)


def test_hard_links_resolve_against_the_target_root(run_module, tmp_path, sentinel):
    _archive, dest, result = unpack(run_module, tmp_path, [
        ("etc/shadow", "file", "inside"), ("a/b/c/d/e/x", "hardlink", "etc/shadow"), ("bin/k3s", "file", "k3s", 0o4755)])
    assert result["changed"] and result["digest"] == DIGEST
    with open(os.path.join(dest, "a/b/c/d/e/x"), encoding="utf-8") as f:
        assert f.read() == "inside"
    assert os.stat(os.path.join(dest, "bin/k3s")).st_mode & 0o7777 == 0o755


def test_host_refuses_a_digest_that_is_not_sha256(run_module, tmp_path):
    archive = write_tar(tmp_path / "r.tar", [("f", "file", "x")])
    result = run_module("rootfs", src=archive, digest="sha256:../../x", dest=str(tmp_path / "d"))
    assert result["failed"] and result["msg"] == "rootfs: digest: invalid digest 'sha256:../../x' (expected sha256:<64 lowercase hex>)"


def rootfs_tree(tmp_path):
    src = tmp_path / "rootfs" / ("a" * 64)
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "k3s").write_text("k3s\n")
    (src / "bin" / "kubectl").symlink_to("k3s")
    return str(src)


def test_controller_tar_is_reused_only_when_it_verifies(tmp_path):
    src = rootfs_tree(tmp_path)
    archive = archive_of(src, DIGEST)
    assert archive == src + ".sha256-" + "c" * 64 + ".tar"
    good = sha256_file(archive)
    with open(archive + ".sha256", encoding="utf-8") as f:
        assert f.read() == "%s %d\n" % good
    inode = os.stat(archive).st_ino
    assert archive_of(src, DIGEST) == archive and os.stat(archive).st_ino == inode  # verified, reused
    with open(archive, "r+b") as f:  # damaged (same size): made again
        f.seek(600)
        f.write(b"X")
    archive_of(src, DIGEST)
    assert sha256_file(archive) == good and os.stat(archive).st_ino != inode
    os.unlink(archive + ".sha256")  # a tar with no record (an older run's): made again
    inode = os.stat(archive).st_ino
    archive_of(src, DIGEST)
    assert sha256_file(archive) == good and os.stat(archive).st_ino != inode


def test_controller_tar_name_takes_only_a_valid_digest(tmp_path):
    with pytest.raises(AnsibleActionFail, match=r"rootfs: rootfs digest: invalid digest 'sha256:\.\./x'"):
        archive_of(rootfs_tree(tmp_path), "sha256:../x")
