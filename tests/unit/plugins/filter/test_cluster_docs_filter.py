"""Filters over the Clusterfile's env, Config and Plugin documents (controller side)."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.filter import cluster_docs as cd

PLUGIN_FILE = """apiVersion: sealer.io/v1
kind: Plugin
metadata: {name: from-image}
spec: {type: SHELL, action: PostInstall, 'on': master0, data: "touch /tmp/x"}
"""


def image_rootfs(tmp_path, text=PLUGIN_FILE):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "a.yaml").write_text(text)
    return str(tmp_path)


def test_image_plugins_run_only_from_a_trusted_image(tmp_path):
    rootfs = image_rootfs(tmp_path)
    found = cd.cluster_plugins([], rootfs, "docker.io/library/k3s:v1@sha256:" + "a" * 64, trusted=True)
    assert [(p["name"], p["source"]) for p in found] == [
        ("from-image", "image docker.io/library/k3s:v1@sha256:%s plugins/a.yaml" % ("a" * 64))]
    with pytest.raises(AnsibleFilterError, match=r"carries plugins \(plugins/a.yaml\) .* pulled by tag"):
        cd.cluster_plugins([], rootfs, "k3s:v1@sha256:" + "a" * 64, trusted=False)


def test_image_plugin_files_are_plain_data(tmp_path):
    rootfs = image_rootfs(tmp_path, "a: &x 1\nb: *x\n")
    with pytest.raises(AnsibleFilterError, match="anchor"):
        cd.cluster_plugins([], rootfs, "img", trusted=True)


def test_a_bad_image_plugin_names_file_and_field(tmp_path):
    rootfs = image_rootfs(tmp_path, PLUGIN_FILE.replace("SHELL", "ETCD"))
    with pytest.raises(Exception, match=r"plugins/a.yaml: document 1 \(kind Plugin\).*spec.type"):
        cd.cluster_plugins([], rootfs, "img", trusted=True)


def test_label_and_taint_plugins_join_the_node_specs():
    plugins = cd.cluster_plugins([
        {"apiVersion": "sealer.io/v1", "kind": "Plugin", "metadata": {"name": "l"},
         "spec": {"type": "LABEL", "action": "PreGuest", "data": "10.0.0.2 ssd=true"}},
        {"apiVersion": "sealer.io/v1", "kind": "Plugin", "metadata": {"name": "t"},
         "spec": {"type": "TAINT", "action": "PostInstall", "data": "10.0.0.2-10.0.0.3 k=v:NoSchedule"}}])
    specs = [{"host": "m", "address": "10.0.0.2", "labels": {"a": "b"}, "taints": []},
             {"host": "n", "address": "10.0.0.3", "labels": {}, "taints": ["k=v:NoSchedule"]}]
    out = cd.plugin_node_specs(specs, plugins)
    assert out[0]["labels"] == {"a": "b", "ssd": "true"} and out[0]["taints"] == ["k=v:NoSchedule"]
    assert out[1]["taints"] == ["k=v:NoSchedule"]
    assert cd.plugin_runs(plugins, "PreGuest", "m", {"m": {"ansible_host": "10.0.0.2"}}, {"all": ["m"]}) == []


def test_env_network_keys_become_k3s_server_config():
    assert cd.k3s_env_config({"PodCIDR": "10.52.0.0/16", "SvcCIDR": "10.53.0.0/16,fd00::/108",
                              "CertSANs": "api.x,10.9.9.9", "DNSDomain": "docs.local", "Other": "x"}) == {
        "cluster-cidr": "10.52.0.0/16", "service-cidr": "10.53.0.0/16,fd00::/108",
        "tls-san": ["api.x", "10.9.9.9"], "cluster-domain": "docs.local"}
    assert cd.k3s_env_config({}) == {}
    # k3s parses with net.ParseCIDR (pkg/cli/server/server.go): host bits pass, a non-CIDR does not
    assert cd.k3s_env_config({"PodCIDR": "10.52.0.1/16"}) == {"cluster-cidr": "10.52.0.1/16"}
    with pytest.raises(AnsibleFilterError, match="env PodCIDR: '10.52.0.0' is not a network in CIDR form"):
        cd.k3s_env_config({"PodCIDR": "10.52.0.0"})


def test_config_files_name_the_document():
    with pytest.raises(AnsibleFilterError, match=r"Config document 1 \(c\): spec.path"):
        cd.config_files([{"apiVersion": "sealer.io/v1", "kind": "Config", "metadata": {"name": "c"},
                          "spec": {"path": "/etc/shadow", "data": "x"}}], None)


def test_the_application_is_checked_against_the_image_before_any_host_changes():
    extension = {"applications": [{"name": "web"}, {"name": "demo"}]}
    app = {"name": "my-apps", "cmds": [], "launchApps": ["web", ""], "configs": [{"name": "ghost", "env": {}, "cmds": None}]}
    assert cd.cluster_application(app, extension)["launchApps"] == ["web", ""]  # a config of another app is ignored
    assert cd.cluster_application(None, extension) is None
    with pytest.raises(AnsibleFilterError, match=r"Application my-apps: launchApps\[1\]: app nope is not found in the "
                                                 r"image's applications \(web, demo\)"):
        cd.cluster_application(dict(app, launchApps=["web", "nope"]), extension)
    with pytest.raises(AnsibleFilterError, match="Application: launchApps must be a list of strings"):
        cd.cluster_application(dict(app, launchApps="web"), extension)


def test_the_application_stays_data():
    """The Application's commands come back as they were written (tests/unit/security checks that
    the play never renders them)."""
    app = {"name": "a", "cmds": ["echo {{ lookup('pipe', 'id') }}"], "launchApps": None, "configs": []}
    out = cd.cluster_application(app, {"applications": []})
    assert out["cmds"] == ["echo {{ lookup('pipe', 'id') }}"]


def test_without_an_image_the_application_is_only_checked_for_shape():
    """reset.yml and delete.yml may resolve no image: the Application is not held against one."""
    app = {"name": "a", "cmds": [], "launchApps": ["web"], "configs": []}
    assert cd.cluster_application(app, None)["launchApps"] == ["web"]
    with pytest.raises(AnsibleFilterError, match="app web is not found"):
        cd.cluster_application(app, {})
