"""Config files and env templates in a host's rootfs (module rootfs_config's manager)."""

import json
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_overlay import Overlay

DIGEST = "sha256:" + "a" * 64


def rootfs(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "manifests").mkdir()
    (root / "etc" / "app.yaml").write_text("replicas: 1\n")
    (root / "manifests" / "cni.yaml.tmpl").write_text("cidr: {{ .PodCIDR }}\nhost: {{ .HostIP }}\n")
    return root


def test_configs_then_templates_and_a_second_run_changes_nothing(tmp_path):
    root = rootfs(tmp_path)
    files = [{"path": "etc/app.yaml", "content": "replicas: 3\n"}, {"path": "etc/extra.yaml.tmpl", "content": "x: {{ .A }}\n"}]
    env = {"PodCIDR": "10.42.0.0/16", "HostIP": "10.0.0.2", "A": "1"}
    result = Overlay(str(root), files, env, DIGEST).run(False)
    assert result["changed"] and result["written"] == ["etc/app.yaml", "etc/extra.yaml", "etc/extra.yaml.tmpl", "manifests/cni.yaml"]
    assert (root / "manifests" / "cni.yaml").read_text() == "cidr: 10.42.0.0/16\nhost: 10.0.0.2\n"
    assert (root / "etc" / "extra.yaml").read_text() == "x: 1\n"
    applied = json.loads((root / ".seal" / "config-applied.json").read_text())
    assert applied == ["etc/app.yaml", "etc/extra.yaml", "etc/extra.yaml.tmpl", "manifests/cni.yaml"]
    assert Overlay(str(root), files, env, DIGEST).run(False) == {"changed": False, "written": [], "applied": applied}
    # a change of env is a change: only the rendered file is rewritten
    env["PodCIDR"] = "10.50.0.0/16"
    again = Overlay(str(root), files, env, DIGEST).run(False)
    assert again["written"] == ["manifests/cni.yaml"]


def test_check_mode_writes_nothing(tmp_path):
    root = rootfs(tmp_path)
    result = Overlay(str(root), [], {"PodCIDR": "x", "HostIP": "y"}, DIGEST).run(True)
    assert result["changed"] and not (root / "manifests" / "cni.yaml").exists()


def test_a_config_taken_out_gives_the_images_file_back(tmp_path):
    root = rootfs(tmp_path)
    env = {"PodCIDR": "p", "HostIP": "h"}
    Overlay(str(root), [{"path": "etc/app.yaml", "content": "replicas: 3\n"}, {"path": "etc/new", "content": "n"}], env, DIGEST).run(False)
    result = Overlay(str(root), [], env, DIGEST).run(False)
    assert set(result["written"]) == {"etc/app.yaml", "etc/new"}
    assert (root / "etc" / "app.yaml").read_text() == "replicas: 1\n" and not (root / "etc" / "new").exists()
    assert json.loads((root / ".seal" / "config-applied.json").read_text()) == ["manifests/cni.yaml"]


def test_a_template_error_names_the_file_and_line(tmp_path):
    root = rootfs(tmp_path)
    (root / "etc" / "bad.conf.tmpl").write_text("ok\n{{ printf .A }}\n")
    with pytest.raises(ModuleFailure, match=r"etc/bad.conf.tmpl:2: unsupported template construct 'printf'"):
        Overlay(str(root), [], {"PodCIDR": "p", "HostIP": "h"}, DIGEST).run(False)
    assert not (root / "etc" / "bad.conf").exists() and not (root / "manifests" / "cni.yaml").exists()


def test_nothing_is_written_through_a_symlink(tmp_path):
    root = rootfs(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), str(root / "link"))
    with pytest.raises(ModuleFailure, match="symlink"):
        Overlay(str(root), [{"path": "link/x", "content": "x"}], {"PodCIDR": "p", "HostIP": "h"}, DIGEST).run(False)
    assert not (outside / "x").exists()
    with pytest.raises(ModuleFailure, match="leaves the target"):
        Overlay(str(root), [{"path": "../x", "content": "x"}], {}, DIGEST)
    (outside / "evil.tmpl").write_text("{{ .A }}")
    result = Overlay(str(root), [], {"PodCIDR": "p", "HostIP": "h"}, DIGEST).run(False)
    assert "link/evil" not in result["written"] and not (outside / "evil").exists()


def test_the_inputs_digest_lets_the_controller_skip_an_overlay_in_place(tmp_path):
    """rootfs_config records what it was made from; rootfs_info reports it; the controller's filter
    computes the same digest from the same inputs, and another for any changed input."""
    from ansible_collections.seal.cluster.plugins.filter.cluster_docs import rootfs_overlay_inputs
    from ansible_collections.seal.cluster.plugins.modules.rootfs_info import rootfs_report

    root = rootfs(tmp_path)
    files = [{"path": "etc/app.yaml", "content": "replicas: 3\n"}]
    env = {"PodCIDR": "10.42.0.0/16", "HostIP": "10.0.0.2", "Ports": [1, 2]}
    assert rootfs_report(str(root))["overlay_inputs"] is None
    Overlay(str(root), files, env, DIGEST).run(True)
    assert rootfs_report(str(root))["overlay_inputs"] is None  # check mode records nothing
    Overlay(str(root), files, env, DIGEST).run(False)
    held = rootfs_report(str(root))["overlay_inputs"]
    assert held == rootfs_overlay_inputs(files, env, DIGEST)
    assert held != rootfs_overlay_inputs(files, dict(env, HostIP="10.0.0.3"), DIGEST)
    assert held != rootfs_overlay_inputs([{"path": "etc/app.yaml", "content": "replicas: 4\n"}], env, DIGEST)
    assert held != rootfs_overlay_inputs(files, env, "sha256:" + "b" * 64)
