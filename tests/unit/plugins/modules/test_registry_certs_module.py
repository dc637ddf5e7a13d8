"""registry_certs run as Ansible runs it: check mode writes nothing, no key or password in
the result, a second run is unchanged."""
import json
import os


def test_check_then_apply_then_unchanged(tmp_path, run_module):
    d = str(tmp_path / "state" / "registry")
    args = dict(path=d, cluster="c1", domain="sea.hub", sans=["10.0.0.2"], username="admin", password="pa55word")
    check = run_module("registry_certs", check=True, **args)
    assert check["changed"] is True and check["issued"] == ["ca", "cert", "htpasswd"], check
    assert not os.path.exists(d)
    first = run_module("registry_certs", **args)
    assert first["changed"] is True and sorted(os.listdir(d)) == ["ca.crt", "ca.key", "htpasswd", "server.crt", "server.key"]
    text = json.dumps(first)
    assert "PRIVATE KEY" not in text and "pa55word" not in text and "$2b$" not in text
    second = run_module("registry_certs", **args)
    assert second["changed"] is False and second["issued"] == []
    assert second["cert_fingerprint"] == first["cert_fingerprint"] and second["ca_fingerprint"] == first["ca_fingerprint"]


def test_half_ca_fails_naming_the_file(tmp_path, run_module):
    d = tmp_path / "registry"
    run_module("registry_certs", path=str(d), cluster="c1")
    (d / "ca.crt").unlink()
    result = run_module("registry_certs", path=str(d), cluster="c1")
    assert result["failed"] and "%s is missing" % (d / "ca.crt") in result["msg"]
    assert not (d / "ca.crt").exists()


def test_username_needs_password(tmp_path, run_module):
    result = run_module("registry_certs", path=str(tmp_path / "r"), cluster="c1", username="admin")
    assert result["failed"] and "password" in result["msg"]
