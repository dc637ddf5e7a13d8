"""Fixtures of the hostile-input corpus (builders in hostile.py)."""
import pytest

from hostile import Images, Sentinel


@pytest.fixture
def sentinel(tmp_path):
    """A file tree outside every target; the test fails if any case changed it."""
    s = Sentinel(str(tmp_path))
    s.start()
    yield s
    s.assert_unchanged()


@pytest.fixture
def images(tmp_path):
    return Images(str(tmp_path / "store"))
