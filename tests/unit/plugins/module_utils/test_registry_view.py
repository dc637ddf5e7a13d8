"""Registry settings from spec.registry, registry hosts, /etc/hosts entries and the exact
registries.yaml content for k3s."""
import pytest
import yaml

from ansible_collections.seal.cluster.plugins.module_utils import _registry_view as rcl
from ansible_collections.seal.cluster.plugins.module_utils._yaml_emit import dump

LOCAL = {"localRegistry": {"domain": "sea.hub", "port": 5000, "username": "admin", "password": "pw", "ha": True,
                           "cert": {"subjectAltName": {"dnsNames": ["reg.example"], "ips": ["10.9.9.9"]}}}}
CA = "/etc/seal/c1/registry/ca.crt"


def test_resolve_local_defaults():
    s = rcl.resolve({"localRegistry": {"domain": "sea.hub", "port": 5000}})
    assert s == {"mode": "local", "domain": "sea.hub", "port": 5000, "host": "sea.hub:5000", "username": None,
                 "password": None, "ha": False, "insecure": False, "sans": []}
    assert rcl.resolve(None)["host"] == "sea.hub:5000"
    assert rcl.resolve({})["mode"] == "local"


def test_resolve_local_full_and_string_port():
    s = rcl.resolve({"localRegistry": dict(LOCAL["localRegistry"], port="5443")})
    wanted = (5443, "sea.hub:5443", True, "admin", ["reg.example", "10.9.9.9"])
    assert (s["port"], s["host"], s["ha"], s["username"], s["sans"]) == wanted


def test_external_wins_and_has_no_ha():
    external = {"domain": "harbor.example", "port": 443, "username": "u", "password": "p"}
    s = rcl.resolve({"localRegistry": {"ha": True}, "externalRegistry": external})
    assert (s["mode"], s["host"], s["ha"]) == ("external", "harbor.example", False)
    assert rcl.registry_servers(s, ["m1", "m2"]) == []
    assert rcl.hosts_entries(s, ["10.0.0.2"], "10.0.0.5") == []


@pytest.mark.parametrize("spec, message", [
    ({"localRegistry": {"port": "x"}}, r"spec.registry.localRegistry.port: 'x' is not a port number"),
    ({"localRegistry": {"port": 70000}}, r"spec.registry.localRegistry.port: 70000 is not a port number"),
    ({"localRegistry": {"domain": "sea.hub:5000"}}, r"spec.registry.localRegistry.domain: 'sea.hub:5000' is not an RFC 1123 host name"),
    ({"localRegistry": {"domain": ".."}}, r"spec.registry.localRegistry.domain: '\.\.' is not an RFC 1123 host name"),
    ({"externalRegistry": {"domain": "h.example", "username": "u"}}, r"spec.registry.externalRegistry: username 'u' is set without a password"),
    ({"localRegistry": {"username": "a:b", "password": "p"}}, r"must not contain ':'"),
])
def test_resolve_errors_name_the_field(spec, message):
    with pytest.raises(rcl.RegistrySpecError, match=message):
        rcl.resolve(spec)


def test_registry_servers_master0_or_every_master():
    assert rcl.registry_servers(rcl.resolve({}), ["m1", "m2", "m3"]) == ["m1"]
    assert rcl.registry_servers(rcl.resolve(LOCAL), ["m1", "m2", "m3"]) == ["m1", "m2", "m3"]
    assert rcl.registry_servers(rcl.resolve({}), []) == []


def test_hosts_entries_self_on_registry_hosts_all_elsewhere():
    s = rcl.resolve(LOCAL)
    servers = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert rcl.hosts_entries(s, servers, "10.0.0.3") == [{"ip": "10.0.0.3", "hostnames": ["sea.hub"]}]
    assert rcl.hosts_entries(s, servers, "10.0.0.9") == [{"ip": ip, "hostnames": ["sea.hub"]} for ip in servers]
    assert rcl.hosts_entries(rcl.resolve({}), ["10.0.0.2"], "10.0.0.9") == [{"ip": "10.0.0.2", "hostnames": ["sea.hub"]}]


def test_render_registries_exact_yaml():
    s = rcl.resolve(LOCAL)
    out = dump(rcl.render_registries(s, ca_file=CA))
    assert out == (
        'mirrors:\n'
        '  docker.io:\n'
        '    endpoint:\n'
        '      - "https://sea.hub:5000"\n'
        '  registry.k8s.io:\n'
        '    endpoint:\n'
        '      - "https://sea.hub:5000"\n'
        '  quay.io:\n'
        '    endpoint:\n'
        '      - "https://sea.hub:5000"\n'
        '  ghcr.io:\n'
        '    endpoint:\n'
        '      - "https://sea.hub:5000"\n'
        '  "sea.hub:5000":\n'
        '    endpoint:\n'
        '      - "https://sea.hub:5000"\n'
        'configs:\n'
        '  "sea.hub:5000":\n'
        '    auth:\n'
        '      username: "admin"\n'
        '      password: "pw"\n'
        '    tls:\n'
        '      ca_file: "/etc/seal/c1/registry/ca.crt"\n'
    )
    assert yaml.safe_load(out) == {
        "mirrors": {name: {"endpoint": ["https://sea.hub:5000"]}
                    for name in ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "sea.hub:5000")},
        "configs": {"sea.hub:5000": {"auth": {"username": "admin", "password": "pw"}, "tls": {"ca_file": CA}}},
    }


def test_render_registries_without_auth_and_auth_apart():
    s = rcl.resolve(LOCAL)
    assert rcl.render_registries(s, ca_file=CA, with_auth=False)["configs"] == {"sea.hub:5000": {"tls": {"ca_file": CA}}}
    assert rcl.registry_auth(s) == {"sea.hub:5000": {"username": "admin", "password": "pw"}}
    assert rcl.registry_auth(rcl.resolve({})) == {}


def test_render_registries_no_auth_no_ca_has_no_configs():
    assert rcl.render_registries(rcl.resolve({})) == {
        "mirrors": {name: {"endpoint": ["https://sea.hub:5000"]}
                    for name in ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "sea.hub:5000")}}


def test_render_registries_external_on_443_and_insecure_http():
    ext = rcl.resolve({"externalRegistry": {"domain": "harbor.example", "port": 443}})
    out = rcl.render_registries(ext, ca_file="/etc/seal/c1/registry/ca.crt")
    assert out["mirrors"]["harbor.example"] == {"endpoint": ["https://harbor.example"]}
    assert out["configs"] == {"harbor.example": {"tls": {"ca_file": "/etc/seal/c1/registry/ca.crt"}}}
    insecure = rcl.resolve({"localRegistry": {"insecure": True, "port": 5000}})
    out = rcl.render_registries(insecure, ca_file=CA)
    assert out["mirrors"]["docker.io"] == {"endpoint": ["http://sea.hub:5000"]} and "configs" not in out
