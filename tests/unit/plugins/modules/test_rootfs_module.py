"""The host half of seal.cluster.rootfs: a digest-marked directory unpacked from a shipped
archive through the safe extraction helper; check, apply, idempotent, changed, absent."""
import io
import os
import tarfile

from ansible_collections.seal.cluster.plugins.modules import rootfs, rootfs_info

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def archive(path, files):
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_check_apply_idempotent_changed_absent(run_main, tmp_path):
    dest = tmp_path / "cluster" / "rootfs"
    one = archive(tmp_path / "one.tar", {"bin/k3s": b"k3s one", "manifests/a.yaml": b"a: 1\n"})
    two = archive(tmp_path / "two.tar", {"bin/k3s": b"k3s two"})

    out = run_main(rootfs, {"src": one, "digest": D1, "dest": str(dest)}, check=True)
    assert out["changed"] is True and out["digest"] == D1 and out["previous_digest"] is None
    assert not os.path.exists(dest) and not os.path.exists(str(dest) + ".new")

    out = run_main(rootfs, {"src": one, "digest": D1, "dest": str(dest)})
    assert out["changed"] is True and out["transferred"] is True
    assert (dest / "bin/k3s").read_bytes() == b"k3s one" and (dest / ".seal-digest").read_text() == D1 + "\n"

    held = run_main(rootfs_info, {"dest": str(dest)})
    assert held == {"changed": False, "digest": D1, "exists": True, "overlay_inputs": None,
                    "invocation": {"module_args": {"dest": str(dest), "role": None, "storage": None}}}
    out = run_main(rootfs, {"src": one, "digest": D1, "dest": str(dest)})
    assert out["changed"] is False and out["transferred"] is False

    out = run_main(rootfs, {"src": two, "digest": D2, "dest": str(dest)})
    assert out["changed"] is True and out["previous_digest"] == D1 and out["digest"] == D2
    assert (dest / "bin/k3s").read_bytes() == b"k3s two" and not (dest / "manifests").exists()
    assert sorted(os.listdir(dest.parent)) == ["rootfs"]

    assert run_main(rootfs, {"dest": str(dest), "state": "absent"}, check=True)["changed"] is True and dest.exists()
    assert run_main(rootfs, {"dest": str(dest), "state": "absent"})["changed"] is True and not dest.exists()
    assert run_main(rootfs, {"dest": str(dest), "state": "absent"})["changed"] is False


def test_a_hostile_archive_fails_in_main_and_leaves_the_old_rootfs(run_main, tmp_path):
    dest = tmp_path / "rootfs"
    run_main(rootfs, {"src": archive(tmp_path / "ok.tar", {"bin/k3s": b"k3s"}), "digest": D1, "dest": str(dest)})
    bad = archive(tmp_path / "bad.tar", {"../escape": b"x"})
    out = run_main(rootfs, {"src": bad, "digest": D2, "dest": str(dest)})
    assert out["failed"] is True and "unpacking %s" % bad in out["msg"]
    assert not (tmp_path / "escape").exists() and not os.path.exists(str(dest) + ".new")
    assert (dest / ".seal-digest").read_text() == D1 + "\n"


def test_bad_digest_and_missing_archive_are_named(run_main, tmp_path):
    out = run_main(rootfs, {"src": str(tmp_path / "none.tar"), "digest": "sha256:xyz", "dest": str(tmp_path / "r")})
    assert out["failed"] is True and "rootfs: digest" in out["msg"]
    out = run_main(rootfs, {"src": str(tmp_path / "none.tar"), "digest": D1, "dest": str(tmp_path / "r")})
    assert out["failed"] is True and "none.tar is not on the host" in out["msg"]
