"""Clusterfile edits of the seal command: --masters/--nodes parsing, new, add, remove, image."""
import pytest
import yaml

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile_edit as edit


def hosts_of(text):
    doc = next(d for d in cf.load(text) if d.kind == "Cluster")
    return [(ip, hv["ansible_port"], groups) for ip, hv, groups in cf.hosts_of(doc)]


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.2", [("10.0.0.2", None)]),
    ("10.0.0.2,10.0.0.3:2222", [("10.0.0.2", None), ("10.0.0.3", 2222)]),
    (" 10.0.0.2 , ,10.0.0.3 ", [("10.0.0.2", None), ("10.0.0.3", None)]),
    ("fd00::2", [("fd00::2", None)]),
    ("[fd00::2]:2200", [("fd00::2", 2200)]),
    ("", []),
])
def test_parse_hosts(text, expected):
    assert edit.parse_hosts(text) == expected


@pytest.mark.parametrize("text, message", [
    ("10.0.0.300", "--masters: '10.0.0.300': "),
    ("10.0.0.2:0", "port '0' is not a number in 1-65535"),
    ("10.0.0.2:65536", "port '65536' is not a number in 1-65535"),
    ("10.0.0.2:ssh", "port 'ssh' is not a number"),
    ("10.0.0.2,10.0.0.2:2222", "10.0.0.2 is listed twice"),
    ("host.example", "is not an IP address"),
    ("[fd00::2]x", "is not IP[:PORT]"),
])
def test_parse_hosts_refuses_with_the_flag_and_entry(text, message):
    with pytest.raises(edit.EditError) as err:
        edit.parse_hosts(text, "--masters")
    assert message in str(err.value)
    assert str(err.value).startswith("--masters: ")


def test_new_writes_a_valid_clusterfile_with_per_host_ports():
    text = edit.new("c1", [("10.0.0.2", None), ("10.0.0.3", 2222)], [("10.0.0.4", 2222), ("10.0.0.5", 2222)],
                    user="admin", pk="/k/id", image="k3s:v1.25.3")
    value = yaml.safe_load(text)
    assert value["metadata"]["name"] == "c1"
    assert value["spec"]["image"] == "k3s:v1.25.3"
    assert value["spec"]["ssh"] == {"user": "admin", "port": "2222", "pk": "/k/id"}
    assert hosts_of(text) == [("10.0.0.2", 22, ["master", "cluster_c1", "master0"]),
                              ("10.0.0.3", 2222, ["master", "cluster_c1"]),
                              ("10.0.0.4", 2222, ["node", "cluster_c1"]),
                              ("10.0.0.5", 2222, ["node", "cluster_c1"])]


def test_new_keeps_the_password_in_the_file_and_secrets_finds_it():
    text = edit.new("c1", [("10.0.0.2", None)], passwd="s3cret-pw")
    assert yaml.safe_load(text)["spec"]["ssh"]["passwd"] == "s3cret-pw"
    assert edit.secrets(text) == ["s3cret-pw"]


def test_info():
    text = edit.new("c1", [("10.0.0.2", None)], [("10.0.0.4", None)], image="k3s:v1.25.3")
    assert edit.info(text) == {"name": "c1", "image": "k3s:v1.25.3", "masters": ["10.0.0.2"], "nodes": ["10.0.0.4"],
                               "data_root": "/var/lib/seal"}


def test_add_hosts_appends_groups_and_refuses_a_known_host():
    text = edit.new("c1", [("10.0.0.2", None)], [("10.0.0.4", None)], image="k3s:v1.25.3")
    added = edit.add_hosts(text, masters=[("10.0.0.3", None)], nodes=[("10.0.0.5", 2200)])
    assert edit.info(added)["masters"] == ["10.0.0.2", "10.0.0.3"]
    assert edit.info(added)["nodes"] == ["10.0.0.4", "10.0.0.5"]
    assert ("10.0.0.5", 2200, ["node", "cluster_c1"]) in hosts_of(added)
    with pytest.raises(edit.EditError, match="10.0.0.4 is already in cluster c1"):
        edit.add_hosts(text, nodes=[("10.0.0.4", None)])
    with pytest.raises(edit.EditError, match="give --masters and/or --nodes"):
        edit.add_hosts(text)


def test_remove_hosts_drops_empty_groups_and_keeps_the_rest():
    text = edit.new("c1", [("10.0.0.2", None), ("10.0.0.3", None)], [("10.0.0.4", None)], image="k3s:v1.25.3")
    left = edit.remove_hosts(text, ["10.0.0.4"])
    assert edit.info(left)["nodes"] == []
    assert [h["roles"] for h in yaml.safe_load(left)["spec"]["hosts"]] == [["master"]]
    assert edit.info(edit.remove_hosts(text, ["10.0.0.3"]))["masters"] == ["10.0.0.2"]


def test_remove_hosts_refuses_the_last_master_and_unknown_hosts():
    text = edit.new("c1", [("10.0.0.2", None)], [("10.0.0.4", None)], image="k3s:v1.25.3")
    with pytest.raises(edit.EditError, match="would remove the last master of cluster c1: use seal reset"):
        edit.remove_hosts(text, ["10.0.0.2"])
    with pytest.raises(edit.EditError, match="10.0.0.9 is not in cluster c1"):
        edit.remove_hosts(text, ["10.0.0.9"])


def test_set_image_keeps_other_documents():
    text = edit.new("c1", [("10.0.0.2", None)], image="k3s:v1.25.3")
    text += "---\napiVersion: k3s.cattle.io/v1\nkind: K3sConfig\nspec: {}\n"
    new = edit.set_image(text, "k3s:v1.26.0")
    docs = cf.load(new)
    assert [d.kind for d in docs] == ["Cluster", "K3sConfig"]
    assert edit.info(new)["image"] == "k3s:v1.26.0"
