"""Fast tests of the k3s stand-in's pure parts: config merge, flag parsing, tokens,
registries.yaml rendering, air-gap archive reading, `k3s kubectl`'s kubeconfig choice."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
import io

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "standin"))
from k3s_standin import cli, config, images, kubectl, registries, token  # noqa: E402


# ---------------------------------------------------------------- config.yaml + config.yaml.d
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_dropins_merge_last_wins_and_plus_appends(tmp_path):
    main = tmp_path / "config.yaml"
    write(str(main), "write-kubeconfig-mode: '0600'\nnode-taint: [a=1:NoSchedule]\ntls-san: [x]\n")
    write(str(tmp_path / "config.yaml.d" / "20-b.yaml"), "write-kubeconfig-mode: '0644'\nnode-taint+: [b=2:NoExecute]\n")
    write(str(tmp_path / "config.yaml.d" / "10-a.YML"), "tls-san: [y]\n")
    write(str(tmp_path / "config.yaml.d" / "30-ignored.txt"), "tls-san: [z]\n")
    os.makedirs(tmp_path / "config.yaml.d" / "sub.yaml")  # directories are skipped
    path, merged, files = config.load(["--config", str(main)], {})
    assert path == str(main)
    assert [os.path.basename(f) for f in files] == ["config.yaml", "10-a.YML", "20-b.yaml"]
    assert merged == {"write-kubeconfig-mode": "0644", "node-taint": ["a=1:NoSchedule", "b=2:NoExecute"],
                      "tls-san": ["y"]}


def test_dropins_used_without_main_file_and_env_wins(tmp_path):
    write(str(tmp_path / "other.yaml.d" / "a.yaml"), "token: abc\n")
    path, merged, _unused = config.load(["--config", "/nonexistent.yaml"], {"K3S_CONFIG_FILE": str(tmp_path / "other.yaml")})
    assert path == str(tmp_path / "other.yaml") and merged == {"token": "abc"}


def test_yaml11_octal_mode_becomes_decimal_string(tmp_path):
    write(str(tmp_path / "c.yaml"), "write-kubeconfig-mode: 0644\ncluster-init: true\n")
    _unused, merged, _unused = config.load(["-c", str(tmp_path / "c.yaml")], {})
    assert merged == {"write-kubeconfig-mode": "420", "cluster-init": "true"}


def test_server_drops_unknown_keys_agent_rejects_them(tmp_path, capsys):
    write(str(tmp_path / "c.yaml"), "cluster-init: true\nbogus-key: 1\ntls-san: [a, b]\n")
    opts, _unused, _unused = cli.resolve(cli.SERVER_FLAGS, ["--config", str(tmp_path / "c.yaml")], env={})
    assert opts["cluster-init"] is True and opts["tls-san"] == ["a", "b"]
    assert "Unknown flag --bogus-key found in config.yaml, skipping" in capsys.readouterr().err
    write(str(tmp_path / "a.yaml"), "server: https://x:6443\ntoken: t\ncluster-init: true\n")
    with pytest.raises(cli.UsageError, match="flag provided but not defined: -cluster-init"):
        cli.resolve(cli.AGENT_FLAGS, ["--config", str(tmp_path / "a.yaml")], env={}, server=False)


def test_precedence_cli_over_file_over_env(tmp_path):
    write(str(tmp_path / "c.yaml"), "node-name: fromfile\nnode-label: [f=1]\n")
    env = {"K3S_NODE_NAME": "fromenv", "K3S_TOKEN": "envtok"}
    argv = ["-c", str(tmp_path / "c.yaml"), "--node-name", "fromcli", "--node-label", "c=1"]
    opts, _unused, _unused = cli.resolve(cli.SERVER_FLAGS, argv, env=env)
    assert opts["node-name"] == "fromcli"
    assert opts["node-label"] == ["c=1"]  # a CLI list replaces the file's list
    assert opts["token"] == "envtok"
    opts, _unused, _unused = cli.resolve(cli.SERVER_FLAGS, ["-c", str(tmp_path / "c.yaml")], env=env)
    assert opts["node-name"] == "fromfile" and opts["node-label"] == ["f=1"]


def test_go_flag_syntax():
    vals, pos, _unused = cli.parse_flags(cli.SERVER_FLAGS, ["-cluster-init", "--token=a", "-t", "b", "--tls-san", "x,y", "extra"])
    assert vals == {"cluster-init": True, "token": "b", "tls-san": ["x", "y"]} and pos == ["extra"]
    with pytest.raises(cli.UsageError, match="flag needs an argument: -token"):
        cli.parse_flags(cli.SERVER_FLAGS, ["--token"])
    with pytest.raises(cli.UsageError, match='invalid boolean value "maybe"'):
        cli.parse_flags(cli.SERVER_FLAGS, ["--cluster-init=maybe"])


# ---------------------------------------------------------------- tokens
HASH = "a" * 64


@pytest.mark.parametrize("raw,user,expect", [
    (f"K10{HASH}::server:pw", "node", (HASH, "server", "pw")),
    ("K10::node:pw", "node", ("", "node", "pw")),
    ("secret", "server", ("", "server", "secret")),
    ("secret:with:colons", "node", ("", "node", "secret:with:colons")),
    ("abcdef.0123456789abcdef", "node", ("", "", "abcdef.0123456789abcdef")),
    (f"K10{HASH}::abcdef.0123456789abcdef", "node", (HASH, "", "abcdef.0123456789abcdef")),
])
def test_token_parse(raw, user, expect):
    t = token.parse(raw, user)
    assert (t.ca_hash, t.username, t.password) == expect


@pytest.mark.parametrize("raw,msg", [
    ("", "token must not be empty"),
    ("K10abc::server:pw", "invalid token CA hash length"),
    (f"K10{HASH}::nopassword", "invalid token format"),
    ("K10abc", "invalid token format"),
])
def test_token_errors(raw, msg):
    with pytest.raises(token.TokenError, match=msg):
        token.parse(raw, "node")


def test_ca_hash_single_cert_is_file_hash():
    from k3s_standin import pki

    crt, _unused = pki.new_ca("k3s-server-ca")
    assert token.ca_hash(crt) == hashlib.sha256(crt).hexdigest()
    root, rkey = pki.new_ca("root")
    inter, _unused = pki.issue(root, rkey, "intermediate")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(root).public_bytes(serialization.Encoding.DER)
    assert token.ca_hash(inter + root) == hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------- registries.yaml
REGS = {
    "mirrors": {
        "docker.io": {"endpoint": ["https://sea.hub:5000", "sea.hub:5000", "https://registry-1.docker.io"]},
        "sea.hub:5000": {"endpoint": ["https://sea.hub:5000/v2"]},
        "registry.k8s.io": {"endpoint": ["https://mirror.example/k8s"], "rewrite": {"^(.*)$": "k8s/$1"}},
        "*": {"endpoint": ["localhost:5000"]},
    },
    "configs": {
        "sea.hub:5000": {"auth": {"username": "admin", "password": "pw"},
                         "tls": {"ca_file": "/etc/seal/ca.crt", "insecure_skip_verify": False}},
    },
}


def test_hosts_toml_rendering():
    out = registries.render_hosts(registries.validate(REGS))
    assert set(out) == {"docker.io", "sea.hub:5000", "registry.k8s.io", "_default"}
    assert out["docker.io"] == (
        "# File generated by k3s. DO NOT EDIT.\n"
        'server = "https://registry-1.docker.io/v2"\n'
        'capabilities = ["pull", "resolve"]\n'
        "\n"
        '[host."https://sea.hub:5000/v2"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        '  ca = ["/etc/seal/ca.crt"]\n'
    )  # duplicate endpoint skipped, default endpoint folded into server
    assert 'server = "https://sea.hub:5000/v2"' in out["sea.hub:5000"]
    k8s = out["registry.k8s.io"]
    assert '[host."https://mirror.example/k8s"]' in k8s and "override_path = true" in k8s
    assert '[host."https://mirror.example/k8s".rewrite]' in k8s and '"^(.*)$" = "k8s/$1"' in k8s
    assert '[host."http://localhost:5000/v2"]' in out["_default"] and "server =" not in out["_default"]
    assert "admin" not in "".join(out.values())  # credentials never in hosts.toml


def test_legacy_rendering_for_old_releases():
    assert not registries.uses_certs_d("v1.25.3+k3s1") and not registries.uses_certs_d("v1.26.12+k3s1")
    assert registries.uses_certs_d("v1.26.13+k3s1") and registries.uses_certs_d("v1.30.0+k3s1")
    text = registries.render_legacy(registries.validate(REGS))
    assert '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]' in text
    assert '[plugins."io.containerd.grpc.v1.cri".registry.configs."sea.hub:5000".auth]\n  username = "admin"' in text
    assert 'ca_file = "/etc/seal/ca.crt"' in text


@pytest.mark.parametrize("doc,msg", [
    ({"mirrors": {"docker.io": {"endpoint": "https://x"}}}, "cannot unmarshal !!str `https://x` into []string"),
    ({"configs": {"x": {"tls": {"insecure_skip_verify": "yes please"}}}}, "into bool"),
    ({"mirrors": ["docker.io"]}, "cannot unmarshal !!seq"),
])
def test_registries_type_errors(doc, msg):
    with pytest.raises(registries.RegistryError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        registries.validate(doc)


def test_unknown_registry_keys_are_ignored_like_yaml_v2():
    assert registries.validate({"mirrors": {"docker.io": {"endpoint": ["a.b"], "extra": 1}}, "other": 2})["mirrors"] \
        == {"docker.io": {"endpoint": ["a.b"], "rewrite": {}}}


# ---------------------------------------------------------------- air-gap archives
def _tar(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for n, d in files.items():
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            tf.addfile(ti, io.BytesIO(d))
    return buf.getvalue()


def test_docker_archive_read_and_non_image_rejected(tmp_path):
    cfg = b'{"architecture":"amd64"}'
    good = tmp_path / "good.tar"
    good.write_bytes(_tar({"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["busybox:1"],
                                                         "Layers": ["l/layer.tar"]}]).encode(),
                           "c.json": cfg, "l/layer.tar": b"x" * 10}))
    got = images.read_archive(str(good))
    assert got[0]["ref"] == "docker.io/library/busybox:1"
    assert got[0]["id"] == "sha256:" + hashlib.sha256(cfg).hexdigest()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(_tar({"etc/hostname": b"x"}))
    with pytest.raises(images.ImportError_, match="unrecognized image format"):
        images.read_archive(str(bad))
    missing = tmp_path / "missing.tar"
    missing.write_bytes(_tar({"manifest.json": json.dumps([{"Config": "c.json", "RepoTags": ["a:1"],
                                                            "Layers": ["l/layer.tar"]}]).encode(), "c.json": cfg}))
    with pytest.raises(images.ImportError_, match="missing layer"):
        images.read_archive(str(missing))


def test_normalize_ref():
    assert images.normalize_ref("busybox") == "docker.io/library/busybox:latest"
    assert images.normalize_ref("rancher/pause:3.6") == "docker.io/rancher/pause:3.6"
    assert images.normalize_ref("sea.hub:5000/x/y:1") == "sea.hub:5000/x/y:1"


# ---------------------------------------------------------------- kubectl
NODE = {"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/master": "true"}},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.25.3+k3s1"}}}


def test_kubectl_kubeconfig_choice_follows_k3s(tmp_path, monkeypatch):
    """k3s pkg/kubectl/main.go: --kubeconfig or $KUBECONFIG win; else k3s.yaml if it exists."""
    monkeypatch.setattr(kubectl.util, "ETC_RANCHER", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert "KUBECONFIG" not in kubectl.kubeconfig_env(["get", "nodes"], {})
    (tmp_path / "k3s").mkdir()
    (tmp_path / "k3s" / "k3s.yaml").write_text("{}")
    assert kubectl.kubeconfig_env(["get", "nodes"], {})["KUBECONFIG"] == str(tmp_path / "k3s" / "k3s.yaml")
    assert kubectl.kubeconfig_env(["get", "nodes"], {"KUBECONFIG": "/x"})["KUBECONFIG"] == "/x"
    assert "KUBECONFIG" not in kubectl.kubeconfig_env(["--kubeconfig", "/y", "get", "nodes"], {})
    assert "KUBECONFIG" not in kubectl.kubeconfig_env(["--kubeconfig=/y", "get", "nodes"], {})


def test_node_status_and_roles():
    from k3s_standin import kinds

    n = json.loads(json.dumps(NODE))
    assert kinds.node_status_text(n) == "Ready" and kinds.node_roles(n) == "master"
    n["spec"] = {"unschedulable": True}
    n["status"]["conditions"][1]["status"] = "Unknown"
    assert kinds.node_status_text(n) == "NotReady,SchedulingDisabled"
    n["metadata"]["labels"] = {}
    assert kinds.node_roles(n) == "<none>"


# ---------------------------------------------------------------- certificates kept across restarts
def test_admin_certificate_kept_until_90_days_before_expiry(tmp_path):
    from k3s_standin import pki, server

    ca, ca_key = pki.new_ca("k3s-client-ca")
    srv = object.__new__(server.Server)
    srv.tls, srv.client_ca = str(tmp_path), ca
    assert srv._kept_admin_cert() == (None, None)
    crt, key = pki.issue(ca, ca_key, "system:admin", "system:masters", client=True)
    (tmp_path / "client-admin.crt").write_bytes(crt + ca)
    (tmp_path / "client-admin.key").write_bytes(key)
    assert srv._kept_admin_cert() == (crt, key)
    assert pki.valid_for(crt, 300) and not pki.valid_for(crt, 366)
    other_ca = pki.new_ca("another-ca")[0]
    srv.client_ca = other_ca
    assert srv._kept_admin_cert() == (None, None)
