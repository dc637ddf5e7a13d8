"""The integration tests' fleet names: a default, or the environment variable each test names,
checked before podman sees it (the name becomes host, container and network names)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet"))
import fleet  # noqa: E402  pylint: disable=wrong-import-position


def test_default_then_the_environment(monkeypatch):
    monkeypatch.delenv("SEAL_FLEET_PREFIX", raising=False)
    monkeypatch.delenv("SEAL_STANDIN_FLEET", raising=False)
    assert fleet.name_from_env("SEAL_STANDIN_FLEET", "standin") == "standin"
    monkeypatch.setenv("SEAL_STANDIN_FLEET", "mtt-standin")
    assert fleet.name_from_env("SEAL_STANDIN_FLEET", "standin") == "mtt-standin"
    monkeypatch.setenv("SEAL_STANDIN_FLEET", "")
    assert fleet.name_from_env("SEAL_STANDIN_FLEET", "standin") == "standin"


@pytest.mark.parametrize("bad", ["Mtt", "mtt_x", "-mtt", "mtt-", "a" * 33, "mtt;rm -rf /", "m tt"])
def test_a_bad_name_is_refused_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv("SEAL_EXTERNAL_ETCD_FLEET", bad)
    with pytest.raises(ValueError, match=r"^\$SEAL_EXTERNAL_ETCD_FLEET=.* is not a fleet name"):
        fleet.name_from_env("SEAL_EXTERNAL_ETCD_FLEET", "itext")


def test_the_prefix_applies_to_defaults_not_to_names_given(monkeypatch):
    monkeypatch.delenv("SEAL_STANDIN_FLEET", raising=False)
    monkeypatch.setenv("SEAL_FLEET_PREFIX", "ci")
    assert fleet.name_from_env("SEAL_STANDIN_FLEET", "standin") == "cistandin"
    assert fleet.prefixed("mlc") == "cimlc"
    monkeypatch.setenv("SEAL_STANDIN_FLEET", "ab-standin")
    assert fleet.name_from_env("SEAL_STANDIN_FLEET", "standin") == "ab-standin"
    monkeypatch.setenv("SEAL_FLEET_PREFIX", "")
    assert fleet.prefixed("mlc") == "mlc"


@pytest.mark.parametrize("bad", ["CI", "ci_", "-", "a" * 30])
def test_a_bad_prefix_is_refused(monkeypatch, bad):
    monkeypatch.delenv("SEAL_STANDIN_FLEET", raising=False)
    monkeypatch.setenv("SEAL_FLEET_PREFIX", bad)
    with pytest.raises(ValueError, match=r"^\$SEAL_FLEET_PREFIX='.*' \+ 'standin' is not a fleet name"):
        fleet.name_from_env("SEAL_STANDIN_FLEET", "standin")
