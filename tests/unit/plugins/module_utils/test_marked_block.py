import pytest

from ansible_collections.seal.cluster.plugins.module_utils._marked_block import hosts_lines, replace_block

HOSTS = "127.0.0.1 localhost\n::1 localhost\n"


def test_adds_block_at_end():
    out = replace_block(HOSTS, "c1", ["10.0.0.2 sea.hub"])
    assert out == HOSTS + "# BEGIN seal.cluster c1\n10.0.0.2 sea.hub\n# END seal.cluster c1\n"


def test_replaces_block_in_place_and_is_stable():
    first = replace_block(HOSTS, "c1", ["10.0.0.2 sea.hub"]) + "192.168.1.1 other\n"
    second = replace_block(first, "c1", ["10.0.0.3 sea.hub"])
    assert second.splitlines()[3] == "10.0.0.3 sea.hub"
    assert second.endswith("192.168.1.1 other\n")
    assert replace_block(second, "c1", ["10.0.0.3 sea.hub"]) == second


def test_blocks_of_two_clusters_are_independent():
    both = replace_block(replace_block(HOSTS, "a", ["1.1.1.1 a"]), "b", ["2.2.2.2 b"])
    only_b = replace_block(both, "a", None)
    assert "1.1.1.1 a" not in only_b and "2.2.2.2 b" in only_b


def test_remove_restores_original():
    assert replace_block(replace_block(HOSTS, "c1", ["10.0.0.2 x"]), "c1", None) == HOSTS
    assert replace_block(HOSTS, "c1", []) == HOSTS


def test_unterminated_block_is_an_error():
    with pytest.raises(ValueError, match="no matching"):
        replace_block(HOSTS + "# BEGIN seal.cluster c1\n1.2.3.4 x\n", "c1", None)


def test_hosts_lines():
    assert hosts_lines([{"ip": "10.0.0.2", "hostnames": ["sea.hub", "reg"]}]) == ["10.0.0.2 sea.hub reg"]
