"""Config documents: checks and the sealer / sealos strategies."""

import pytest
import yaml

from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_config as sc


def doc(spec, api="sealer.io/v1", name="c1"):
    return {"apiVersion": api, "kind": "Config", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("path,message", [
    ("/etc/passwd", "absolute path"),
    ("../../etc/passwd", "leaves the target"),
    ("etc/../../x", "leaves the target"),
    (".seal/config-applied.json", "seal.cluster's own state"),
    (".seal-digest", "seal.cluster's own state"),
    (".", "names the rootfs itself"),
    ("", "a path inside the rootfs is required"),
])
def test_paths_escaping_the_rootfs_are_refused(path, message):
    with pytest.raises(sc.ConfigError, match="spec.path: .*" + message):
        sc.check(doc({"path": path, "data": "x"}))


@pytest.mark.parametrize("spec,message", [
    ({"path": "a", "data": "x", "strategy": "replace"}, "spec.strategy"),
    ({"path": "a", "data": "x", "process": "toJson"}, "spec.process"),
    ({"path": "a", "data": "x", "appName": "mysql"}, "spec.appName"),
    ({"path": "a"}, "spec.data"),
    ({"path": "a", "data": "- a list", "strategy": "merge"}, "spec.data: strategy merge needs a YAML mapping"),
    ({"path": "a", "data": "x", "extra": 1}, "spec.extra: unknown key"),
])
def test_bad_documents_name_the_field(spec, message):
    with pytest.raises(sc.ConfigError, match=message):
        sc.check(doc(spec))


def test_defaults_and_api_versions():
    assert sc.check(doc({"path": "./etc/a.yaml", "data": "x"}))["strategy"] == "overwrite"
    assert sc.check(doc({"path": "etc/a", "data": "x"}, api="sealer.aliyun.com/v1alpha1"))["path"] == "etc/a"
    assert sc.check(doc({"path": "etc/a", "data": "x", "strategy": "override"}, api="apps.sealos.io/v1beta1"))
    with pytest.raises(sc.ConfigError, match="apiVersion"):
        sc.check(doc({"path": "a", "data": "x"}, api="v1"))


def test_merge_is_sealers_deep_merge_on_every_document():
    base = "a: 1\nnested:\n  keep: k\n  over: old\nlist: [1, 2]\n---\nb: 2\n"
    out = sc.apply("merge", "nested:\n  over: new\nlist: [3]\nempty: ''\na: 0\n", base)
    first, second = (yaml.safe_load(d) for d in out.split("---\n"))
    # mergo WithOverride: maps merge, non-empty values replace (lists too), empty ones do not
    assert first == {"a": 1, "nested": {"keep": "k", "over": "new"}, "list": [3], "empty": ""}
    assert second == {"b": 2, "nested": {"over": "new"}, "list": [3], "empty": "", "a": 0}


def test_overwrite_insert_append_and_missing_files():
    assert sc.apply("overwrite", "new\n", "old\n") == "new\n"
    assert sc.apply("override", "new\n", "old\n") == "new\n"
    assert sc.apply("insert", "top", "old") == "top\nold"  # sealos: data, "\n", file
    assert sc.apply("append", "end", "old") == "old\nend"  # sealos: file, "\n", data
    for strategy in sc.STRATEGIES:
        assert sc.apply(strategy, "a: 1\n", None) == "a: 1\n"  # sealer: a missing file gets the data


def test_merge_into_a_file_that_is_not_yaml_is_refused():
    with pytest.raises(sc.ConfigError, match="not a YAML mapping"):
        sc.apply("merge", "a: 1", "just text\n", "Config x (etc/x)")


def test_files_come_from_the_image_and_chain_in_order(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.yaml").write_text("replicas: 1\nimage: app\n")
    configs = [sc.check(doc({"path": "etc/app.yaml", "data": "replicas: 3\n", "strategy": "merge"}, name="one")),
               sc.check(doc({"path": "etc/app.yaml", "data": "# tuned", "strategy": "append"}, name="two")),
               sc.check(doc({"path": "etc/new.conf", "data": "x=1\n"}, name="three"))]
    files = {f["path"]: f for f in sc.files(configs, str(tmp_path))}
    assert files["etc/app.yaml"]["content"] == "image: app\nreplicas: 3\n\n# tuned"
    assert files["etc/app.yaml"]["configs"] == ["one", "two"]
    assert files["etc/new.conf"]["content"] == "x=1\n"
    # the same result again: the image's file is the base, never a merged copy
    assert sc.files(configs, str(tmp_path)) == list(files.values())


def test_a_symlink_in_the_image_is_not_followed(tmp_path):
    (tmp_path / "etc").symlink_to("/etc")
    with pytest.raises(sc.ConfigError, match="symlink"):
        sc.files([sc.check(doc({"path": "etc/passwd", "data": "x", "strategy": "append"}))], str(tmp_path))
