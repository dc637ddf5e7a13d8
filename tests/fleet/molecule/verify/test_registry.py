"""The cluster's private registry, seen from each host: the domain resolves to the registry
hosts, the CA is trusted where skopeo and k3s look, the catalog lists every image the cluster
image lists (from every registry host with ha), credentials are enforced, TLS fails without
the CA, k3s's registries.yaml sends every mirrored registry through it, and neither the
certificates nor the registry service changed during the idempotence run."""
import hashlib
import json
import os
import ssl

import pytest
import yaml

from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference

MIRRORS = {"docker.io", "registry.k8s.io", "quay.io", "ghcr.io"}


def hv(host):
    return host.ansible.get_variables()


def settings(host):
    spec = hv(host).get("seal_registry") or {}
    local = dict(spec.get("localRegistry") or {})
    return {"domain": local.get("domain", "sea.hub"), "port": int(local.get("port", 5000)),
            "user": local.get("username"), "password": local.get("password"), "ha": bool(local.get("ha"))}


def where(host):
    s = settings(host)
    return "%s:%d" % (s["domain"], s["port"])


def ca_file(host):
    return "/etc/containers/certs.d/%s/ca.crt" % where(host)


def state_dir(host):
    return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "home", ".seal", hv(host)["seal_cluster_name"], "registry")


def registry_ips(host):
    masters = hv(host)["groups"]["master"]  # Clusterfile hosts are named by their address
    return masters if settings(host)["ha"] else masters[:1]


def wanted_images(host):
    """(repository, tag) of the cluster image's manifests/imageList, as the registry names them."""
    v = hv(host)
    # agents hold bin/ of the rootfs only (docs/distribution.md): read the list on master0
    master0 = host.get_host("ansible://" + hv(host)["groups"]["master"][0], ansible_inventory=host.backend.ansible_inventory)
    text = master0.file("%s/%s/rootfs/manifests/imageList" % (v["seal_data_root"], v["seal_cluster_name"])).content_string
    refs = [Reference.parse(line.strip()) for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return sorted((ref.repository, ref.tag) for ref in refs)


def curl(host, path, resolve_ip=None, user=None, cacert=True):
    s = settings(host)
    args = ["curl", "-sS", "-o", "/tmp/seal-verify-body", "-w", "%{http_code}"]
    if cacert:
        args += ["--cacert", ca_file(host)]
    if resolve_ip:
        args += ["--resolve", "%s:%d:%s" % (s["domain"], s["port"], resolve_ip)]
    if user:
        args += ["-u", user]
    return host.run(" ".join("'%s'" % a for a in args) + " https://%s%s" % (where(host), path))


def test_domain_resolves_to_the_registry_hosts(host):
    ips = registry_ips(host)
    own = hv(host)["ansible_host"]
    got = host.check_output("getent ahostsv4 %s | awk '{print $1}' | sort -u" % settings(host)["domain"]).split()
    assert sorted(got) == sorted([own] if own in ips else ips)


def test_ca_trusted_where_skopeo_and_k3s_look(host):
    f = host.file(ca_file(host))
    assert f.exists and f.mode == 0o644
    with open(os.path.join(state_dir(host), "ca.crt"), encoding="utf-8") as ca:
        assert f.content_string == ca.read()


def test_catalog_lists_the_cluster_image_images_from_every_registry_host(host):
    s = settings(host)
    wanted = {repo for repo, _tag in wanted_images(host)}
    assert wanted, "the test image lists images"
    for ip in registry_ips(host):
        out = curl(host, "/v2/_catalog", resolve_ip=ip, user="%s:%s" % (s["user"], s["password"]))
        assert out.stdout == "200", (ip, out.stderr)
        catalog = set(json.loads(host.file("/tmp/seal-verify-body").content_string)["repositories"])
        assert wanted <= catalog, (ip, wanted - catalog)


def test_wrong_password_is_refused_and_tls_needs_the_ca(host):
    s = settings(host)
    assert s["user"], "the scenario's Clusterfile sets registry credentials"
    assert curl(host, "/v2/_catalog", user="%s:wrong-%s" % (s["user"], s["password"])).stdout == "401"
    assert curl(host, "/v2/_catalog").stdout == "401"
    no_ca = curl(host, "/v2/", user="%s:%s" % (s["user"], s["password"]), cacert=False)
    assert no_ca.rc == 60 and no_ca.stdout == "000", no_ca.stderr


def test_skopeo_inspects_an_image_through_the_registry(host):
    s = settings(host)
    repo, tag = wanted_images(host)[0]
    out = host.run("skopeo inspect --creds '%s:%s' docker://%s/%s:%s" % (s["user"], s["password"], where(host), repo, tag))
    assert out.rc == 0, out.stderr
    assert json.loads(out.stdout)["Name"] == "%s/%s" % (where(host), repo)


def test_k3s_pulls_through_the_registry(host):
    f = host.file("/etc/rancher/k3s/registries.yaml")
    assert f.exists and f.mode == 0o600
    regs = yaml.safe_load(f.content_string)
    endpoint = "https://" + where(host)
    assert set(regs["mirrors"]) == MIRRORS | {where(host)}
    assert all(m["endpoint"] == [endpoint] for m in regs["mirrors"].values())
    config = regs["configs"][where(host)]
    assert config["tls"] == {"ca_file": ca_file(host)}
    assert config["auth"] == {"username": settings(host)["user"], "password": settings(host)["password"]}


def test_registry_service_and_certificates_unchanged_by_the_idempotence_run(host):
    """The kubeconfig is written at the end of the first converge: the certificates and the
    registry service must be older, and the registry must serve the controller's certificate."""
    kubeconfig = os.path.join(state_dir(host), "..", "kubeconfig")
    for name in ("ca.crt", "ca.key", "server.crt", "server.key", "htpasswd"):
        path = os.path.join(state_dir(host), name)
        assert os.stat(path).st_mtime < os.stat(kubeconfig).st_mtime, name
        if name.endswith(".key") or name == "htpasswd":
            assert oct(os.stat(path).st_mode & 0o777) == "0o600", name
    own = hv(host)["ansible_host"]
    if own not in registry_ips(host):
        pytest.skip("not a registry host")
    service = "seal-registry-%s" % hv(host)["seal_cluster_name"]
    assert host.service(service).is_running and host.service(service).is_enabled
    assert host.check_output("systemctl show -p NRestarts --value %s" % service) == "0"
    served = host.check_output("openssl s_client -connect 127.0.0.1:%d -servername %s </dev/null 2>/dev/null | openssl x509 -outform PEM"
                               % (settings(host)["port"], settings(host)["domain"]))
    with open(os.path.join(state_dir(host), "server.crt"), encoding="utf-8") as f:
        controller = f.read()
    digest = lambda pem: hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()  # noqa: E731
    assert digest(served) == digest(controller)
