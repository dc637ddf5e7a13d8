"""Clusterfile parsing: a corpus of good files (sealer's documentation examples among them)
and a corpus of bad ones, each with the exact error it must give (first line: `# expect: ...`)."""
import glob
import os

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "clusterfiles")


def load(path):
    with open(path, encoding="utf-8") as f:
        return cf.load(f.read(), os.path.basename(path))


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(DATA, "bad", "*.clusterfile"))), ids=os.path.basename)
def test_bad_clusterfiles_give_their_exact_error(path):
    with open(path, encoding="utf-8") as f:
        expected = f.readline().split("# expect: ", 1)[1].strip()
    with pytest.raises(cf.ClusterfileError) as err:
        load(path)
    assert str(err.value).startswith(os.path.basename(path) + ": ")
    assert expected in str(err.value)


def test_errors_never_show_secrets():
    text = open(os.path.join(DATA, "good", "sealer-doc-env-ssh.clusterfile"), encoding="utf-8").read()
    with pytest.raises(cf.ClusterfileError) as err:
        cf.load(text.replace("password: s3cret", "password: s3cret\n      bogus: 1"), "Clusterfile")
    assert "spec.registry.localRegistry.bogus" in str(err.value) and "s3cret" not in str(err.value)


def test_sealer_basic_example():
    (doc,) = load(os.path.join(DATA, "good", "sealer-doc-basic.clusterfile"))
    hosts = cf.hosts_of(doc)
    assert [h[0] for h in hosts] == ["192.168.0.2", "192.168.0.3", "192.168.0.4", "192.168.0.5"]
    ip, hv, groups = hosts[0]
    assert groups == ["master", "cluster_default_kubernetes_cluster", "master0"]
    assert hv["ansible_password"] == "xxx" and hv["ansible_port"] == 22 and hv["ansible_user"] == "root"
    assert hv["seal_registry"] == {"localRegistry": {"domain": "sea.hub", "port": 5000}}
    assert hv["seal_data_root"] == "/var/lib/seal"
    # the first master is group master0, never a variable; a host's roles are its groups
    assert not {"seal_master0", "seal_master0_host", "seal_roles"} & {k for _ip, h, _g in hosts for k in h}
    assert hosts[3][2] == ["node", "cluster_default_kubernetes_cluster"]


def test_per_host_ssh_env_labels_taints_and_runtime_documents():
    docs = load(os.path.join(DATA, "good", "sealer-doc-env-ssh.clusterfile"))
    cluster = [d for d in docs if d.kind == "Cluster"][0]
    hosts = dict((ip, (hv, groups)) for ip, hv, groups in cf.hosts_of(cluster, [d for d in docs if d.kind != "Cluster"]))
    master, _groups = hosts["192.168.0.2"]
    assert master["ansible_port"] == 2222 and master["ansible_user"] == "xxx"
    # HostIP: sealer adds the host's address (pkg/infradriver/ssh_infradriver.go GetHostEnv)
    assert master["seal_env"] == {"key1": "override", "key2": "value2;value3", "key3": ["value4", "value5"],
                                  "HostIP": "192.168.0.2"}
    assert master["seal_cluster_env"]["key1"] == "value1"
    node, groups = hosts["192.168.0.3"]
    assert groups == ["node", "db", "cluster_my_cluster"]
    assert node["ansible_port"] == 22 and node["seal_env"]["key1"] == "value1"
    assert node["seal_labels"] == {"zone": "a", "example.com/tier": "gold"}
    assert node["seal_taints"] == ["dedicated=infra:NoSchedule", "special:NoExecute"]
    assert node["seal_registry"]["localRegistry"] == {"domain": "reg.local", "port": 5000, "username": "admin",
                                                      "password": "s3cret", "ha": True}
    assert node["seal_data_root"] == "/data/seal"
    assert node["seal_configs"][0]["kind"] == "Config"


def test_writer_round_trips():
    text = cf.write("demo", ["10.0.0.2", "10.0.0.3", "10.0.0.4"], ["10.0.0.5"], passwd="pw", port=2222, image="k3s:v1.25.3")
    (doc,) = cf.load(text)
    hosts = cf.hosts_of(doc)
    assert [(ip, hv["ansible_port"]) for ip, hv, _g in hosts][0] == ("10.0.0.2", 2222)
    assert hosts[-1][2][0] == "node" and doc.value["spec"]["image"] == "k3s:v1.25.3"
    with pytest.raises(cf.ClusterfileError, match="duplicate IP"):
        cf.write("demo", ["10.0.0.2"], ["10.0.0.2"])


def test_names_ipv6_and_aliases_example():
    (doc,) = load(os.path.join(DATA, "good", "names-ipv6-aliases.clusterfile"))
    hosts = cf.hosts_of(doc)
    assert [h[0] for h in hosts] == ["2001:db8::2", "fe80::3%eth0"]
    _ip, hv, groups = hosts[0]
    assert groups == ["master", "cluster_v6_cluster", "master0"]
    assert hv["seal_labels"] == {"topology.kubernetes.io/zone": "eu-1a", "edge": "true", "empty": ""}
    assert hv["seal_env"] == {"HTTP_PROXY": "http://proxy.local:3128", "_X": "", "HostIP": "2001:db8::2"}
    assert hv["seal_data_root"] == "/srv/seal"


ETCD_SNAPSHOT = """apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: snap}
spec:
  etcdSnapshot: %s
  hosts:
    - ips: [192.168.0.2, 192.168.0.3, 192.168.0.4]
      roles: [master]
"""


@pytest.mark.parametrize("schedule", ["0 */6 * * *", "30 2 * * sun", "0 0 1-15/2 JAN-jun ?", "@daily", "@every 90m",
                                      "@every 1h30m", "CRON_TZ=UTC 0 3 * * *", "*/5 * * * 1-5", "0 0,12 * * *"])
def test_etcd_snapshot_field_sets_the_snapshot_variables(schedule):
    (doc,) = cf.load(ETCD_SNAPSHOT % ("{schedule: '%s', retention: 10}" % schedule), "Clusterfile")
    hostvars = [hv for _ip, hv, _g in cf.hosts_of(doc)]
    assert all(hv["seal_etcd_snapshot_schedule_cron"] == schedule and hv["seal_etcd_snapshot_retention"] == 10
               for hv in hostvars)


def test_etcd_snapshot_keys_absent_leave_the_variables_to_group_vars():
    (doc,) = cf.load(ETCD_SNAPSHOT % "{retention: 3}", "Clusterfile")
    hostvars = cf.hosts_of(doc)[0][1]
    assert hostvars["seal_etcd_snapshot_retention"] == 3 and "seal_etcd_snapshot_schedule_cron" not in hostvars
    (doc,) = cf.load((ETCD_SNAPSHOT % "{}").replace("  etcdSnapshot: {}\n", ""), "Clusterfile")
    assert not {k for k in cf.hosts_of(doc)[0][1] if k.startswith("seal_etcd_snapshot")}


def test_application_document_becomes_seal_application():
    """sealer's Application (pkg/clusterfile/decoder_test.go): launchApps, per-app env and launch
    cmds; the Cluster's spec.appNames and spec.cmd go over it (ConstructApplication)."""
    docs = load(os.path.join(DATA, "good", "sealer-application.clusterfile"))
    cluster = docs[0]
    (_ip, hv, _groups), = cf.hosts_of(cluster, docs[1:])
    assert hv["seal_application"] == {
        "name": "my-apps", "cmds": [], "launchApps": ["app1", "", "app2"],
        "configs": [{"name": "app2", "env": {"NAMESPACE": "apps", "REPLICAS": "3"}, "cmds": ["kubectl get pods -A"]}]}
    assert "seal_application" not in [d.get("kind") for d in hv["seal_runtime_config"]]
    spec = dict(cluster.value["spec"], appNames=["app2"], cmd=["bash x.sh"])
    cluster.value["spec"] = spec
    (_ip, hv, _groups), = cf.hosts_of(cluster, docs[1:])
    assert hv["seal_application"]["launchApps"] == ["app2"] and hv["seal_application"]["cmds"] == ["bash x.sh"]
    alone = dict(cluster.value, spec={k: v for k, v in spec.items() if k != "cmd"})
    cluster.value = alone
    (_ip, hv, _groups), = cf.hosts_of(cluster, [])
    assert hv["seal_application"] == {"name": "", "cmds": [], "launchApps": ["app2"], "configs": []}
    cluster.value = dict(alone, spec={k: v for k, v in spec.items() if k not in ("cmd", "appNames")})
    (_ip, hv, _groups), = cf.hosts_of(cluster, [])
    assert hv["seal_application"] is None
