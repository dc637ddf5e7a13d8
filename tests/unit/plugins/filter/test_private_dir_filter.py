"""private_dir: true exactly where ansible.builtin.file state=directory mode=0700 would change nothing."""
import os

from ansible_collections.seal.cluster.plugins.filter.private_dir import private_dir


def test_only_a_0700_directory_of_this_user_is_private(tmp_path):
    d = tmp_path / "state"
    assert private_dir(str(d)) is False  # missing
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    assert private_dir(str(d)) is True
    os.chmod(d, 0o750)
    assert private_dir(str(d)) is False
    os.chmod(d, 0o700)
    link = tmp_path / "link"
    link.symlink_to(d)
    assert private_dir(str(link)) is False
    f = tmp_path / "file"
    f.write_text("x")
    os.chmod(f, 0o700)
    assert private_dir(str(f)) is False


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".seal").mkdir(mode=0o700)
    os.chmod(tmp_path / ".seal", 0o700)
    assert private_dir("~/.seal") is True
