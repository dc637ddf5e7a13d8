import pytest

from ansible_collections.seal.cluster.plugins.modules.k3s_cluster import parse_taint, taint_id, taint_text


@pytest.mark.parametrize("text, parsed", [
    ("dedicated=infra:NoSchedule", {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}),
    ("node-role.kubernetes.io/master:NoExecute", {"key": "node-role.kubernetes.io/master", "value": "", "effect": "NoExecute"}),
    ("k=:PreferNoSchedule", {"key": "k", "value": "", "effect": "PreferNoSchedule"}),
])
def test_parse_taint(text, parsed):
    assert parse_taint(text) == parsed
    assert taint_id(parsed) == "%s:%s" % (parsed["key"], parsed["effect"])
    assert parse_taint(taint_text(parsed)) == parsed


@pytest.mark.parametrize("bad", ["dedicated=infra", "k=v:Sometimes", ":NoSchedule", "a b=c:NoSchedule"])
def test_bad_taints_are_refused(bad):
    with pytest.raises(ValueError, match="NoSchedule|PreferNoSchedule|NoExecute"):
        parse_taint(bad)


def test_bad_taint_fails_module_before_api(run_module):
    out = run_module("k3s_cluster", nodes=[{"name": "n1", "taints": ["oops"]}])
    assert out["failed"] is True
    assert out["msg"] == "nodes[0].taints[0]: 'oops' is not a taint (key[=value]:NoSchedule|PreferNoSchedule|NoExecute)"
