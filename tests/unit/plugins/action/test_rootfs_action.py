"""The controller half of seal.cluster.rootfs (plugins/action/rootfs.py), run without a connection:
the task and the connection's shell are plain objects, "transferring" copies into a local directory
that stands for the host's tmp, and the host half is the real module run as Ansible runs it. Check
mode makes no tar and ships nothing, apply ships <rootfs>.sha256-<hex>.tar with its recorded sha256,
a converged host gets no copy, a new digest ships a new tar, and a tampered tar is made again."""
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._image_store import sha256_file

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def rootfs_dir(tmp_path, digest, k3s):
    src = tmp_path / "store" / "rootfs" / digest.split(":", 1)[1]
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "k3s").write_text(k3s)
    os.chmod(src / "bin" / "k3s", 0o755)
    (src / "bin" / "kubectl").symlink_to("k3s")
    return str(src)


def recorded(tar):
    with open(tar + ".sha256", encoding="utf-8") as f:
        return f.read()


def test_check_ship_converged_new_digest_and_a_tampered_tar(tmp_path, act):
    dest = tmp_path / "host" / "rootfs"
    one = rootfs_dir(tmp_path, D1, "k3s one\n")
    tar_one = one + ".sha256-" + "1" * 64 + ".tar"
    args = {"src": one, "digest": D1, "dest": str(dest)}

    check, log = act(args, check=True)
    assert check["changed"] is True and check["transferred"] is False and check["digest"] == D1
    assert check["diff"]["after"] == "digest %s\n" % D1 and D1 not in check["diff"]["before"]
    assert [m["_name"] for m in log.modules] == ["rootfs_info"] and log.modules[0] == {"_name": "rootfs_info", "dest": str(dest)}
    assert log.transfers == [] and not os.path.exists(tar_one) and not dest.exists()

    applied, log = act(args)
    assert applied["changed"] is True and applied["transferred"] is True and applied["digest"] == D1
    assert [m["_name"] for m in log.modules] == ["rootfs_info", "rootfs"]  # what the host holds, then the module (present)
    remote = str(tmp_path / "host-tmp" / "rootfs.tar")
    assert log.modules[1]["src"] == remote and log.modules[1].get("state") is None
    assert [(local, to) for local, to, _sum in log.transfers] == [(tar_one, remote)]
    digest, size = sha256_file(tar_one)
    assert log.transfers[0][2] == (digest, size) and recorded(tar_one) == "%s %d\n" % (digest, size)
    assert (dest / "bin" / "k3s").read_text() == "k3s one\n" and os.readlink(dest / "bin" / "kubectl") == "k3s"
    assert (dest / ".seal-digest").read_text() == D1 + "\n"
    assert log.removed == [str(tmp_path / "host-tmp")]
    assert applied["diff"]["after"] == "digest %s\n" % D1

    for check_mode in (True, False):
        again, log = act(args, check=check_mode)
        assert again["changed"] is False and again["digest"] == D1 and again["previous_digest"] == D1
        assert [m["_name"] for m in log.modules] == ["rootfs_info"] and log.transfers == [] and log.removed == []

    two = rootfs_dir(tmp_path, D2, "k3s two\n")
    tar_two = two + ".sha256-" + "2" * 64 + ".tar"
    newer = {"src": two, "digest": D2, "dest": str(dest)}
    changed, log = act(newer)
    assert changed["changed"] is True and changed["previous_digest"] == D1 and changed["digest"] == D2
    assert changed["diff"] == {"before": "digest %s\n" % D1, "after": "digest %s\n" % D2}
    assert [t[0] for t in log.transfers] == [tar_two] and (dest / "bin" / "k3s").read_text() == "k3s two\n"
    good = sha256_file(tar_two)

    with open(tar_two, "r+b") as f:  # damaged after it was recorded: never shipped as it is
        f.seek(600)
        f.write(b"X")
    assert sha256_file(tar_two) != good
    other_host = {"src": two, "digest": D2, "dest": str(tmp_path / "host2" / "rootfs")}
    shipped, log = act(other_host)
    assert shipped["changed"] is True and [t[0] for t in log.transfers] == [tar_two]
    assert log.transfers[0][2] == good and sha256_file(tar_two) == good and recorded(tar_two) == "%s %d\n" % good
    assert (tmp_path / "host2" / "rootfs" / "bin" / "k3s").read_text() == "k3s two\n"


def test_without_digest_or_src_nothing_is_asked(tmp_path, act):
    from ansible.errors import AnsibleActionFail
    with pytest.raises(AnsibleActionFail, match="rootfs: digest is required"):
        act({"src": rootfs_dir(tmp_path, D1, "k3s\n"), "dest": str(tmp_path / "d")})
    with pytest.raises(AnsibleActionFail, match="is neither a rootfs directory nor an archive on the controller"):
        act({"src": str(tmp_path / "none"), "digest": D1, "dest": str(tmp_path / "d")})
