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


def _snapshot(d):
    """name -> (bytes, mode) of every file in d."""
    return {name: ((d / name).read_bytes(), os.stat(d / name).st_mode & 0o7777) for name in sorted(os.listdir(d))}


def _issued_by(cert_pem, ca_pem):
    from cryptography import x509
    x509.load_pem_x509_certificate(cert_pem.encode()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca_pem.encode()))  # raises when it was not
    return True


def test_check_apply_idempotent_then_a_new_san_reissues_from_the_same_ca(tmp_path, run_module):
    import bcrypt
    d = tmp_path / "state" / "registry"
    args = dict(path=str(d), cluster="c1", domain="sea.hub", sans=["10.0.0.2"], username="admin", password="pa55word")

    check = run_module("registry_certs", check=True, **args)
    assert check["changed"] is True and check["issued"] == ["ca", "cert", "htpasswd"]
    assert check["reasons"] == {"ca": "no CA yet", "cert": "no server certificate yet", "htpasswd": "no htpasswd yet"}
    assert check["sans"] == ["sea.hub", "10.0.0.2"] and _issued_by(check["cert"], check["ca_cert"])
    assert not os.path.exists(tmp_path / "state")

    first = run_module("registry_certs", **args)
    assert first["changed"] is True and first["issued"] == ["ca", "cert", "htpasswd"]
    files = _snapshot(d)
    assert {name: mode for name, (_b, mode) in files.items()} == {
        "ca.crt": 0o644, "ca.key": 0o600, "htpasswd": 0o600, "server.crt": 0o644, "server.key": 0o600}
    assert os.stat(d).st_mode & 0o777 == 0o700
    assert files["ca.crt"][0].decode() == first["ca_cert"] and files["server.crt"][0].decode() == first["cert"]
    assert b"PRIVATE KEY" in files["ca.key"][0] and b"PRIVATE KEY" in files["server.key"][0]
    user, hashed = files["htpasswd"][0].decode().strip().split(":", 1)
    assert user == "admin" and bcrypt.checkpw(b"pa55word", hashed.encode())
    assert first["sans"] == ["sea.hub", "10.0.0.2"] and _issued_by(first["cert"], first["ca_cert"])
    assert (first["key_path"], first["htpasswd_path"]) == (str(d / "server.key"), str(d / "htpasswd"))

    again = run_module("registry_certs", **args)
    assert again["changed"] is False and again["issued"] == [] and again["reasons"] == {}
    assert (again["ca_fingerprint"], again["cert_fingerprint"]) == (first["ca_fingerprint"], first["cert_fingerprint"])
    assert _snapshot(d) == files

    wider = dict(args, sans=["10.0.0.2", "10.0.0.3", "registry.example"])
    predicted = run_module("registry_certs", check=True, **wider)
    assert predicted["changed"] is True and predicted["issued"] == ["cert"]
    assert predicted["reasons"] == {"cert": "it lacks the SAN(s) registry.example, 10.0.0.3"}
    assert _snapshot(d) == files
    reissued = run_module("registry_certs", **wider)
    assert reissued["changed"] is True and reissued["issued"] == ["cert"]
    assert reissued["ca_fingerprint"] == first["ca_fingerprint"] and reissued["cert_fingerprint"] != first["cert_fingerprint"]
    assert reissued["sans"] == ["sea.hub", "registry.example", "10.0.0.2", "10.0.0.3"]
    assert _issued_by(reissued["cert"], first["ca_cert"])
    now = _snapshot(d)
    for kept in ("ca.crt", "ca.key", "htpasswd"):
        assert now[kept] == files[kept], kept
    assert now["server.key"][0] != files["server.key"][0] and now["server.key"][1] == 0o600
    assert now["server.crt"][0].decode() == reissued["cert"]
    assert run_module("registry_certs", **wider)["changed"] is False
