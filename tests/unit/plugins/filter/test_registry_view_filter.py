"""registry_view: who serves the registry, each host's hosts entries, SANs and registries.yaml."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.filter.registry_view import registry_view

HOSTVARS = {"m0": {"ansible_host": "10.0.0.2"}, "m1": {"ansible_host": "10.0.0.3"},
            "m2": {"ansible_host": "10.0.0.4"}, "n0": {"ansible_host": "10.0.0.9"}}
MASTERS = ["m0", "m1", "m2"]


def test_default_local_registry_on_master0():
    node = registry_view({}, MASTERS, HOSTVARS, "n0")
    assert node["servers"] == ["m0"] and not node["is_server"]
    assert node["hosts_entries"] == [{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}]
    assert node["ca_file"] == "/etc/containers/certs.d/sea.hub:5000/ca.crt"
    regs = node["registries"]
    assert set(regs["mirrors"]) == {"docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "sea.hub:5000"}
    assert regs["mirrors"]["docker.io"] == {"endpoint": ["https://sea.hub:5000"]}
    assert regs["configs"] == {"sea.hub:5000": {"tls": {"ca_file": node["ca_file"]}}}
    assert node["auth"] == {}
    assert registry_view({}, MASTERS, HOSTVARS, "m0")["is_server"]


def test_ha_every_master_serves_itself_and_sans_cover_them():
    spec = {"localRegistry": {"domain": "reg.local", "port": 5443, "ha": True, "username": "admin", "password": "pw",
                              "cert": {"subjectAltName": {"ips": ["10.0.0.100"], "dnsNames": ["reg.example"]}}}}
    m1 = registry_view(spec, MASTERS, HOSTVARS, "m1")
    assert m1["servers"] == MASTERS and m1["is_server"]
    assert m1["hosts_entries"] == [{"ip": "10.0.0.3", "hostnames": ["reg.local"]}]
    assert m1["cert_sans"] == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "reg.example", "10.0.0.100"]
    node = registry_view(spec, MASTERS, HOSTVARS, "n0")
    assert [e["ip"] for e in node["hosts_entries"]] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert node["auth"] == {"reg.local:5443": {"username": "admin", "password": "pw"}}
    assert "auth" not in node["registries"]["configs"]["reg.local:5443"]


def test_external_registry_runs_nothing_and_has_no_hosts_entry():
    spec = {"localRegistry": {"domain": "sea.hub"}, "externalRegistry": {"domain": "harbor.corp", "port": 443}}
    node = registry_view(spec, MASTERS, HOSTVARS, "m0")
    assert node["mode"] == "external" and node["servers"] == [] and not node["is_server"]
    assert node["hosts_entries"] == [] and node["host"] == "harbor.corp"
    assert node["registries"]["mirrors"]["docker.io"] == {"endpoint": ["https://harbor.corp"]}


def test_insecure_registry_has_no_ca():
    node = registry_view({"localRegistry": {"insecure": True, "port": 5000}}, MASTERS, HOSTVARS, "n0")
    assert node["ca_file"] is None and node["endpoint"] == "http://sea.hub:5000"
    assert "configs" not in node["registries"]


def test_bad_spec_names_the_field():
    with pytest.raises(AnsibleFilterError, match=r"spec.registry.localRegistry.port: 70000"):
        registry_view({"localRegistry": {"port": 70000}}, MASTERS, HOSTVARS, "n0")
