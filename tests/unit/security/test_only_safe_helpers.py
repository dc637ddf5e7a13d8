"""The helpers are the only way in (issue 15): tar archives are read and written only by
module_utils/_safe_archive.py, and a digest becomes a path only in module_utils/_image_store.py
(after module_utils/_digest.py checked it). These walk the syntax trees of plugins/."""
import ast
import os

import pytest

PLUGINS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins")
ARCHIVE_HELPERS = {"module_utils/_safe_archive.py"}
DIGEST_HELPERS = {"module_utils/_digest.py", "module_utils/_image_store.py"}
PATH_CALLS = {"os.path.join", "open", "os.open", "os.unlink", "os.remove", "os.rename", "os.replace", "os.makedirs",
              "os.mkdir", "os.symlink", "os.link", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.path.exists",
              "os.path.lexists", "os.path.isfile", "os.path.isdir"}


def sources():
    for dirpath, _dirs, files in os.walk(PLUGINS):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, PLUGINS).replace(os.sep, "/")
                with open(path, encoding="utf-8") as f:
                    yield rel, ast.parse(f.read(), path)


def dotted(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted(node.value)
        return inner + "." + node.attr if inner else None
    return None


STORE_HELPERS = {"blob_path", "rootfs_path", "rootfs_archive", "hex_of"}


def mentions_digest(node):
    """Whether node uses a digest, other than through one of the store's validated helpers."""
    if isinstance(node, ast.Call) and (dotted(node.func) or "").rsplit(".", 1)[-1] in STORE_HELPERS:
        return False
    own = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else \
        node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
    return "digest" in own.lower() or any(mentions_digest(child) for child in ast.iter_child_nodes(node))


def hex_slice(node):
    """[7:] or [len("sha256:"):], the ways of cutting the hex out of a digest by hand."""
    lower = node.slice.lower if isinstance(node.slice, ast.Slice) else None
    return (isinstance(lower, ast.Constant) and lower.value == 7) or (isinstance(lower, ast.Call) and dotted(lower.func) == "len")


def archive_bypasses(tree):
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in ("tarfile", "zipfile")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("tarfile", "zipfile"):
            found.append(node.module)
        elif isinstance(node, ast.Constant) and node.value in ("tarfile", "zipfile"):
            found.append("%r (dynamic import)" % node.value)
        elif isinstance(node, ast.Attribute) and node.attr == "unpack_archive":
            found.append("shutil.unpack_archive")
    return found


def digest_paths(tree):
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Call, ast.Subscript)):
            continue
        if isinstance(node, ast.Subscript):
            if hex_slice(node) and mentions_digest(node.value):
                found.append(ast.unparse(node))
            continue
        name = dotted(node.func) or ""
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("split", "rsplit", "partition", "rpartition", "replace") \
                and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == ":" and mentions_digest(node.func.value):
            found.append(ast.unparse(node))
        elif name in PATH_CALLS and any(mentions_digest(arg) for arg in node.args):
            found.append(ast.unparse(node))
    return found


SOURCES = dict(sources())


@pytest.mark.parametrize("rel", sorted(set(SOURCES) - ARCHIVE_HELPERS))
def test_no_archive_module_outside_the_safe_helper(rel):
    assert archive_bypasses(SOURCES[rel]) == [], "%s reads or writes archives without _safe_archive" % rel


@pytest.mark.parametrize("rel", sorted(set(SOURCES) - DIGEST_HELPERS))
def test_no_digest_becomes_a_path_outside_the_store(rel):
    assert digest_paths(SOURCES[rel]) == [], "%s turns a digest into a path without _image_store" % rel


def test_the_helpers_exist_and_the_checks_can_fail():
    assert ARCHIVE_HELPERS | DIGEST_HELPERS <= set(SOURCES)
    assert archive_bypasses(SOURCES["module_utils/_safe_archive.py"])  # the helper itself is seen importing tarfile
    assert digest_paths(SOURCES["module_utils/_image_store.py"])  # ... and the store joining a digest into a path
    bad = ast.parse('import tarfile\nfrom zipfile import ZipFile\nshutil.unpack_archive(a, b)\n'
                    'os.path.join(root, desc["digest"].split(":", 1)[1])\nx = layer_digest[7:]\nopen(digest)\n')
    assert archive_bypasses(bad) == ["tarfile", "zipfile", "shutil.unpack_archive"]
    assert sorted(digest_paths(bad)) == sorted(['os.path.join(root, desc[\'digest\'].split(\':\', 1)[1])',
                                                "desc['digest'].split(':', 1)", "layer_digest[7:]", "open(digest)"])
    assert digest_paths(ast.parse("os.unlink(store.blob_path(desc['digest']))\nfingerprint[i:i + 2]\n")) == []
