"""Filters the playbooks use to find, check and shape the cluster token."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.filter.k3s_token import (
    k3s_token_password, k3s_token_secure, k3s_token_sources)

HASH = "c" * 64


def test_sources_live_holders_first_and_unreachable_not_checked():
    reports = {  # k3s_runtime_info results (runtime_reports); m5 unreachable, m6 not in the play
        "m1": {"role": "server", "has_token": True, "live": False, "holds_data": True},
        "m2": {"role": "server", "has_token": True, "live": True, "holds_data": True},
        "m3": {"role": "server", "has_token": False, "live": False, "holds_data": True},
        "m4": {"role": "server", "has_token": False, "live": False, "holds_data": False},
        "m5": {"unreachable": True, "changed": False, "msg": "timed out"},
    }
    out = k3s_token_sources(["m1", "m2", "m3", "m4", "m5", "m6"], reports)
    assert out == {"file": "/var/lib/rancher/k3s/server/token", "holders": ["m2", "m1"],
                   "holding_data": ["m1", "m2", "m3"], "checked": ["m1", "m2", "m3", "m4"],
                   "unread": ["m5", "m6"]}


def test_hostvars_passed_as_the_reports_fails_loudly():
    hostvars = {"m1": {"ansible_host": "10.0.0.1", "k3s_info": {"role": "server", "has_token": True}}}
    with pytest.raises(AnsibleFilterError, match="m1 has keys ansible_host, k3s_info"):
        k3s_token_sources(["m1"], hostvars)


def test_password_and_secure_form():
    held = "K10%s::server:%s" % (HASH, "9" * 32)
    assert k3s_token_password(held) == "9" * 32 == k3s_token_password("9" * 32)
    assert k3s_token_secure("9" * 32, held) == held == k3s_token_secure(held, HASH)
    with pytest.raises(AnsibleFilterError, match="invalid token CA hash length") as err:
        k3s_token_password("K10abc::server:secret-pw")
    assert "secret-pw" not in str(err.value)
    with pytest.raises(AnsibleFilterError, match="64 lowercase hex"):
        k3s_token_secure("pw", "nothash")


def test_agent_token_secure_with_the_clusters_hash_and_user_node():
    from ansible_collections.seal.cluster.plugins.filter.k3s_token import k3s_agent_token

    cluster = "K10%s::server:%s" % (HASH, "9" * 32)
    assert k3s_agent_token("a" * 32, cluster) == "K10%s::node:%s" % (HASH, "a" * 32)
    assert k3s_agent_token("K10%s::node:%s" % (HASH, "a" * 32), cluster) == "K10%s::node:%s" % (HASH, "a" * 32)
    assert k3s_agent_token(" %s\n" % ("a" * 32), "9" * 32) == "a" * 32  # no server ran yet: no hash to add
    with pytest.raises(AnsibleFilterError, match="names CA hash " + "d" * 64) as err:
        k3s_agent_token("K10%s::node:%s" % ("d" * 64, "a" * 32), cluster)
    assert "a" * 32 not in str(err.value)
