"""rootfs_info reads the digest marker rootfs writes last, in check mode as outside it, and
changes nothing: no rootfs, an incomplete one (no marker), a complete one."""
import os

import pytest

from ansible_collections.seal.cluster.plugins.modules import rootfs_info

D1 = "sha256:" + "1" * 64


def tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _dirs, names in os.walk(root) for f in names)


@pytest.mark.parametrize("check", [False, True])
def test_reports_the_marker_and_changes_nothing(run_main, tmp_path, check):
    dest = tmp_path / "rootfs"
    out = run_main(rootfs_info, {"dest": str(dest)}, check=check)
    assert (out["changed"], out["digest"], out["exists"]) == (False, None, False) and not dest.exists()

    (dest / "bin").mkdir(parents=True)
    (dest / "bin" / "k3s").write_text("k3s")
    out = run_main(rootfs_info, {"dest": str(dest)}, check=check)
    assert (out["changed"], out["digest"], out["exists"]) == (False, None, True)  # unpacked, not marked complete

    (dest / ".seal-digest").write_text(D1 + "\n")
    before = tree(tmp_path)
    out = run_main(rootfs_info, {"dest": str(dest)}, check=check)
    assert (out["changed"], out["digest"], out["exists"]) == (False, D1, True) and tree(tmp_path) == before


def test_a_file_where_the_rootfs_should_be_holds_no_rootfs(run_main, tmp_path):
    dest = tmp_path / "rootfs"
    dest.write_text("not a directory")
    out = run_main(rootfs_info, {"dest": str(dest)})
    assert (out["changed"], out["digest"], out["exists"]) == (False, None, True)
