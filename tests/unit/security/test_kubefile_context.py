"""Kubefile COPY/ADD sources (issue 15 item 4): checked by real path, so a symlinked component
cannot lead out of the build context; links copied into the image must stay inside its root."""
import hashlib
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store


def context(tmp_path, kubefile):
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "file").write_text("inside\n")
    (ctx / "Kubefile").write_text(kubefile)
    return ctx


def build(tmp_path, ctx):
    store = Store(str(tmp_path / "store"))
    return store, Builder(store, str(ctx), cache_images=False)


def test_copy_through_a_symlinked_directory_out_of_the_context_is_refused(tmp_path, sentinel):
    ctx = context(tmp_path, "FROM scratch\nCOPY evil/shadow x\n")
    (ctx / "evil").symlink_to(os.path.join(sentinel.root, "etc"))
    store, builder = build(tmp_path, ctx)
    with pytest.raises(BuildError) as err:
        builder.build("evil:1")
    assert str(err.value) == "%s:2: evil/shadow is outside the build context %s (its real path is %s)" % (
        ctx / "Kubefile", ctx, os.path.join(sentinel.root, "etc", "shadow"))
    assert store.images() == []


def test_add_of_a_symlinked_file_out_of_the_context_is_refused(tmp_path, sentinel):
    checksum = "sha256:" + hashlib.sha256(open(sentinel.secret, "rb").read()).hexdigest()
    ctx = context(tmp_path, "FROM scratch\nADD --checksum=%s up/etc/shadow /x\n" % checksum)
    (ctx / "up").symlink_to("../sentinel")
    _store, builder = build(tmp_path, ctx)
    with pytest.raises(BuildError) as err:
        builder.build("evil:1")
    assert str(err.value) == "%s:2: up/etc/shadow is outside the build context %s (its real path is %s)" % (
        ctx / "Kubefile", ctx, sentinel.secret)


def test_a_copied_link_that_leaves_the_image_root_is_refused_at_build(tmp_path, sentinel):
    ctx = context(tmp_path, "FROM scratch\nCOPY sub sub\n")
    (ctx / "sub" / "out").symlink_to("../../../sentinel/etc/shadow")
    _store, builder = build(tmp_path, ctx)
    with pytest.raises(BuildError) as err:
        builder.build("evil:1")
    assert str(err.value) == ("%s is a symlink to '../../../sentinel/etc/shadow', which leaves the image root: "
                              "the image could not be extracted" % (ctx / "sub" / "out"))


def test_symlinked_components_inside_the_context_are_fine(tmp_path, sentinel):
    ctx = context(tmp_path, "FROM scratch\nCOPY alias/file bin/file\nCOPY sub sub\n")
    (ctx / "alias").symlink_to("sub")
    (ctx / "sub" / "same").symlink_to("file")
    store, builder = build(tmp_path, ctx)
    desc, _before = builder.build("ok:1")
    root, _new = extract(store, desc)
    assert open(os.path.join(root, "bin", "file"), encoding="utf-8").read() == "inside\n"
    assert os.readlink(os.path.join(root, "sub", "same")) == "file"
