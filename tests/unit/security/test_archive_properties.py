"""Generated hostile archives: random mixes of names, `..`, absolute paths, symlinks, hard links,
whiteouts, special files and mode bits, applied as image layers by the one safe-archive helper.
Whatever the helper accepts or refuses, nothing outside the target changes and what it leaves
inside follows the data-filter rules. The seed is fixed and printed; the run is bounded
(max_examples) so that it takes a few seconds."""
import io
import os
import shutil
import stat
import tempfile

import pytest

from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe

from hostile import Sentinel, snapshot, tar_bytes

SEED = 150015
SENTINEL = "@SENTINEL@"  # replaced by the sentinel tree's absolute path of each example

# benign components are drawn more often, so that many archives get far before (or without) a refusal
component = st.sampled_from(["a", "b", "evil", "etc", "shadow"] * 6
                            + ["..", ".", ".wh.a", ".wh.evil", ".wh..wh..opq", ".wh...", ".wh.", "sentinel"])
name = st.builds(lambda prefix, parts: prefix + "/".join(parts),
                 st.sampled_from([""] * 8 + ["./", "/", "../"]), st.lists(component, min_size=1, max_size=3))
link_target = st.one_of(name, st.sampled_from([SENTINEL + "/etc/shadow", SENTINEL + "/etc", "../../sentinel/etc",
                                               "../../sentinel/etc/shadow", "..", ".", "a/../..", "evil/..",
                                               "a", "b", "evil", "etc/shadow", "a/b"]))
entry = st.one_of(
    st.tuples(name, st.just("file"), st.binary(max_size=8), st.sampled_from([0o644, 0o755, 0o4755, 0o2777, 0o1666, 0o070, 0])),
    st.tuples(name, st.just("dir"), st.none(), st.sampled_from([0o755, 0o1777, 0o2775, 0o700])),
    st.tuples(name, st.sampled_from(["symlink", "hardlink"]), link_target),
    st.tuples(name, st.sampled_from(["symlink", "hardlink"]), link_target),
    st.tuples(name, st.sampled_from(["fifo", "chr"])),
)
OUTCOMES = {"accepted": 0, "refused": 0}
layers = st.lists(st.lists(entry, max_size=8), min_size=1, max_size=3)


def materialize(layer, sentinel_root):
    return [tuple(v.replace(SENTINEL, sentinel_root) if isinstance(v, str) else v for v in e) for e in layer]


def check_tree(target):
    for dirpath, dirnames, filenames in os.walk(target):
        for n in dirnames + filenames:
            path = os.path.join(dirpath, n)
            mode = os.lstat(path).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode), path
            assert not stat.S_IMODE(mode) & 0o7022 or stat.S_ISLNK(mode), (path, oct(mode))
            if stat.S_ISLNK(mode):
                real = os.path.realpath(path)
                assert real == target or real.startswith(target + os.sep), (path, os.readlink(path))


def test_print_seed():
    print("hypothesis seed for test_random_layers_never_reach_outside_the_target: %d" % SEED)


@seed(SEED)
@settings(max_examples=250, deadline=None, print_blob=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(layers)
# a symlink under a directory that a later entry of the layer replaces by a file
@example([[("a/a", "symlink", "x"), ("a", "file", b"", 0o644)]])
def test_random_layers_never_reach_outside_the_target(generated):
    world = tempfile.mkdtemp(prefix="seal-hyp-")
    try:
        sentinel = Sentinel(world)
        sentinel.start()
        target = os.path.join(world, "t", "target")
        os.makedirs(target)
        concrete = [materialize(layer, sentinel.root) for layer in generated]
        view_error = extract_error = None
        try:
            safe.layered_view([(io.BytesIO(tar_bytes(layer)), "layer %d" % n) for n, layer in enumerate(concrete)],
                              lambda _name: True, 1 << 20)
        except safe.ArchiveError as exc:
            view_error = exc
        try:
            extractor = safe.Extractor(target)
            for n, layer in enumerate(concrete):
                extractor.apply(io.BytesIO(tar_bytes(layer)), "layer %d" % n, whiteouts=True)
            extractor.finish()
        except safe.ArchiveError as exc:
            extract_error = exc
        sentinel.assert_unchanged()
        assert sorted(os.listdir(world)) == ["sentinel", "t"] and os.listdir(os.path.join(world, "t")) == ["target"]
        OUTCOMES["refused" if extract_error else "accepted"] += 1
        if extract_error is None:
            check_tree(os.path.realpath(target))
            assert view_error is None, "the layered view refused what extraction accepts: %s" % view_error
        else:
            assert str(extract_error).startswith("layer ") and str(extract_error).endswith("; refused") or \
                "not a readable tar" in str(extract_error)
    finally:
        shutil.rmtree(world)


def test_the_generated_archives_are_not_all_refused():
    """Runs after the property (file order): a corpus that is refused at once tests little."""
    if not sum(OUTCOMES.values()):
        pytest.skip("the property did not run in this session")
    print("generated archives: %s" % OUTCOMES)
    assert OUTCOMES["accepted"] >= 20 and OUTCOMES["refused"] >= 20, OUTCOMES


def test_the_sentinel_comparison_sees_a_change(tmp_path):
    """The property above relies on snapshot() noticing a change outside the target."""
    sentinel = Sentinel(str(tmp_path))
    sentinel.start()
    before = snapshot(sentinel.root)
    os.link(sentinel.secret, str(tmp_path / "hardlinked"))  # only the link count changes
    assert snapshot(sentinel.root) != before
