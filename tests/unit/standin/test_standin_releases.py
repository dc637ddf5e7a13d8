"""The stand-in is as strict as the k3s release it is built for (issue 22 item 5): agent flags by
release, node-ip must be an IP, and a joining server's critical configuration must be the
cluster's (tests/standin/k3s_standin/releases.py holds what depends on the release)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "standin"))
from k3s_standin import agent, cli, config, releases, util  # noqa: E402


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


@pytest.mark.parametrize("version, known", [
    ("v1.25.3+k3s1", False), ("v1.25.16+k3s4", False), ("v1.26.0+k3s1", False), ("v1.26.12+k3s1", False),
    ("v1.26.13+k3s1", True), ("v1.27.9+k3s1", False), ("v1.27.10+k3s1", True), ("v1.28.6+k3s2", True),
    ("v1.29.0+k3s1", False), ("v1.29.1+k3s2", True), ("v1.33.1+k3s1", True),
])
def test_disable_default_registry_endpoint_exists_from_january_2024(tmp_path, version, known):
    assert releases.has("disable-default-registry-endpoint", version) is known
    write(str(tmp_path / "a.yaml"), "server: https://x:6443\ntoken: t\ndisable-default-registry-endpoint: true\n")
    args = ["--config", str(tmp_path / "a.yaml")]
    if known:
        opts, _pos, _info = cli.resolve(cli.agent_flags(version), args, env={}, server=False)
        assert opts["disable-default-registry-endpoint"] is True
    else:
        with pytest.raises(cli.UsageError, match="flag provided but not defined: -disable-default-registry-endpoint"):
            cli.resolve(cli.agent_flags(version), args, env={}, server=False)


def test_system_default_registry_is_a_server_flag_only(tmp_path):
    write(str(tmp_path / "c.yaml"), "system-default-registry: sea.hub:5000\n")
    args = ["--config", str(tmp_path / "c.yaml")]
    for version in ("v1.25.3+k3s1", "v1.33.1+k3s1"):
        opts, _pos, _info = cli.resolve(cli.server_flags(version), args, env={})
        assert opts["system-default-registry"] == "sea.hub:5000"
        with pytest.raises(cli.UsageError, match="flag provided but not defined: -system-default-registry"):
            cli.resolve(cli.agent_flags(version), args + ["--server", "https://x:6443"], env={}, server=False)


@pytest.mark.parametrize("ips, bad", [(["node-1.example"], "node-1.example"), (["10.0.0.1", "m1"], "m1"),
                                      (["fe80::1%eth0"], "fe80::1%eth0"), (["[::1]"], "[::1]")])
def test_node_ip_must_be_an_ip(ips, bad, capsys):
    with pytest.raises(util.Fatal):
        agent.node_identity({"node-ip": ips})
    assert f'level=fatal msg="invalid node-ip: invalid ip format \'{bad}\'"' in capsys.readouterr().err


def test_node_identity_keeps_the_domain_and_lower_cases(monkeypatch, capsys):
    monkeypatch.setattr(util.socket, "gethostname", lambda: "Node-1.Example.COM")
    assert agent.node_identity({"node-ip": ["10.0.0.7"]}) == ("node-1.example.com", "10.0.0.7")
    assert agent.node_identity({"node-name": "Worker-A.lan", "node-ip": ["fd00::7"]}) == ("worker-a.lan", "fd00::7")
    with pytest.raises(util.Fatal):
        agent.node_identity({"node-ip": ["10.0.0.7"], "node-external-ip": ["edge.example"]})
    assert "invalid node-external-ip: invalid ip format 'edge.example'" in capsys.readouterr().err


OLD, NEW = "v1.25.3+k3s1", "v1.26.0+k3s1"


def test_critical_defaults_agree_and_are_normalised():
    default = config.critical_args({}, OLD)
    assert default["cluster-dns"] == ["10.43.0.10"] and default["cluster-cidr"] == ["10.42.0.0/16"]
    spelled = config.critical_args({"cluster-cidr": ["10.42.0.1/16"], "service-cidr": ["10.43.0.0/16"],
                                    "cluster-dns": ["10.43.0.10"], "flannel-backend": "vxlan",
                                    "disable": ["traefik", "local-storage"]}, OLD)
    assert config.critical_mismatch(spelled, default, OLD) is None  # disable: traefik is not critical
    assert "secrets-encryption" not in default and "secrets-encryption" in config.critical_args({}, NEW)


@pytest.mark.parametrize("change", [{"cluster-cidr": ["10.52.0.0/16"]}, {"service-cidr": ["10.53.0.0/16"]},
                                    {"disable": ["servicelb"]}, {"disable": ["coredns"]},
                                    {"flannel-backend": "host-gw"}, {"disable-network-policy": True},
                                    {"cluster-domain": "corp.local"}, {"egress-selector-mode": "pod"}])
def test_critical_mismatch_text_depends_on_the_release(change, capsys):
    cluster = config.critical_args({}, OLD)
    assert config.critical_mismatch(config.critical_args(change, OLD), cluster, OLD) == "critical configuration value mismatch"
    assert "critical configuration mismatched" not in capsys.readouterr().err
    cluster = config.critical_args({}, NEW)
    assert (config.critical_mismatch(config.critical_args(change, NEW), cluster, NEW)
            == "critical configuration value mismatch between servers")
    assert "critical configuration mismatched: " in capsys.readouterr().err


def test_secrets_encryption_is_critical_from_v1_25_4(capsys):
    cluster = config.critical_args({"secrets-encryption": True}, NEW)
    assert config.critical_mismatch(config.critical_args({}, NEW), cluster, NEW) is not None
    assert "critical configuration mismatched: secrets-encryption" in capsys.readouterr().err
    assert config.critical_mismatch(config.critical_args({}, OLD), config.critical_args({"secrets-encryption": True}, OLD), OLD) is None


def test_down_level_server_without_egress_mode_is_not_a_mismatch():
    cluster = config.critical_args({}, NEW)
    del cluster["egress-selector-mode"]
    assert config.critical_mismatch(config.critical_args({"egress-selector-mode": "pod"}, NEW), cluster, NEW) is None


@pytest.mark.parametrize("version, structural", [
    ("v1.24.8+k3s1", False), ("v1.25.3+k3s1", False), ("v1.26.0+k3s1", False), ("v1.27.1+k3s1", False),
    ("v1.27.2+k3s1", True), ("v1.26.10+k3s1", True), ("v1.28.0+k3s1", True), ("v1.33.5+k3s1", True),
    ("v1.35.2+k3s1", True), ("v1.36.4+k3s1", True),
])
def test_the_helmchart_crd_is_the_releases(version, structural):
    """Which HelmChart CRD each release of the test matrix registers (k3s#7310): the placeholder
    schema checks nothing; helm-controller's refuses a boolean where a value must be a string and
    defaults failurePolicy."""
    from k3s_standin import crdschema  # pylint: disable=import-outside-toplevel

    (name,) = crdschema.helm_crds(version)
    crd = crdschema.load(name)
    schema = crdschema.schema_of([crd], "helm.cattle.io", "v1", "helmcharts")
    out, errors, _unknown = crdschema.validate(schema, {"spec": {"set": {"installCRDs": True}}})
    assert bool(errors) is structural
    assert (out["spec"].get("failurePolicy") == "reinstall") is structural
