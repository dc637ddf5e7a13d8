import os
import stat

from ansible_collections.seal.cluster.plugins.module_utils._files import FileState, write_atomic


def test_write_atomic_sets_mode_and_content(tmp_path):
    path = tmp_path / "token"
    write_atomic(str(path), "secret\n", 0o600)
    assert path.read_text() == "secret\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]


def test_file_state_detects_content_and_mode(tmp_path):
    path = str(tmp_path / "f")
    state = FileState(path, "a\n", 0o644)
    assert state.changed and state.apply()
    assert not FileState(path, "a\n", 0o644).changed
    os.chmod(path, 0o666)
    again = FileState(path, "a\n", 0o644)
    assert again.changed and again.apply()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_secret_diff_hides_content(tmp_path):
    path = str(tmp_path / "registries.yaml")
    state = FileState(path, "password: hunter2\n", 0o600, secret=True)
    diff = state.diff()
    assert "hunter2" not in diff["after"] and "hunter2" not in diff["before"]
    assert "0o600" in diff["after_header"]
