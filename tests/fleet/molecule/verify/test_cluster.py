"""The installed cluster, seen from each host: services, files and their modes, secrets kept
out of units and configs, the cluster's nodes Ready with the Clusterfile's labels and taints,
and no service restarted by the idempotence run."""
import json
import os

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile



def version(host):
    """The stand-in release of the scenario's cluster image: k3s:v1.25.3 -> v1.25.3+k3s1."""
    return hv(host)["seal_image"].rsplit(":", 1)[1] + "+k3s1"


def hv(host):
    return host.ansible.get_variables()


def role(host):
    return "server" if "master" in hv(host)["group_names"] else "agent"


def is_master0(host):
    return "master0" in hv(host)["group_names"]


def service(host):
    return "k3s" if role(host) == "server" else "k3s-agent"


def test_service_runs_the_image_version(host):
    assert host.service(service(host)).is_running
    assert host.service(service(host)).is_enabled
    assert host.check_output("k3s --version").splitlines()[0].startswith("k3s version " + version(host))
    for link in ("kubectl", "crictl", "ctr"):
        assert host.file("/usr/local/bin/" + link).linked_to == "/usr/local/bin/k3s"


@pytest.mark.parametrize("path", ["/etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/token"])
def test_secret_files_are_0600(host, path):
    f = host.file(path)
    assert f.exists and f.mode == 0o600 and f.user == "root"


def test_token_only_in_its_file(host):
    token = host.file("/etc/rancher/k3s/token").content_string.strip()
    assert len(token) >= 32
    name = service(host)
    for path in ("/etc/rancher/k3s/config.yaml", "/etc/systemd/system/%s.service" % name,
                 "/etc/systemd/system/%s.service.env" % name):
        assert token not in host.file(path).content_string, path
    assert host.file("/etc/systemd/system/%s.service.env" % name).mode == 0o600
    assert "token-file" in host.file("/etc/rancher/k3s/config.yaml").content_string
    assert token not in host.check_output("ps -eo args")


def test_nodes_ready_with_labels_and_taints(host):
    if not is_master0(host):
        pytest.skip("checked once, from master0")
    nodes = json.loads(host.check_output("k3s kubectl get nodes -o json"))["items"]
    with open(hv(host)["seal_clusterfile"], encoding="utf-8") as f:
        docs = clusterfile.load(f.read())
    members = [h for d in docs if d.kind == "Cluster" for h in clusterfile.hosts_of(d)]
    assert len(nodes) == len(members)
    masters = sum(1 for _ip, _vars, groups in members if "master" in groups)
    for node in nodes:
        labels = node["metadata"]["labels"]
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], node["metadata"]["name"]
        assert node["status"]["nodeInfo"]["kubeletVersion"] == version(host)
        taints = [(t["key"], t.get("value"), t["effect"]) for t in node["spec"].get("taints", [])]
        if labels.get("node-role.kubernetes.io/control-plane") == "true":
            assert labels["tier"] == "control"
            assert (labels.get("node-role.kubernetes.io/etcd") == "true") == (masters > 1)
        else:
            assert labels["zone"] == "a"
            assert ("dedicated", "infra", "NoSchedule") in taints


def test_no_restart_during_the_idempotence_run(host):
    """converge started the service once; idempotence and check must not have (re)started it.
    Counted in the host's journal rather than by comparing clocks: the controller's wall
    clock may be stepped between converge and verify."""
    kubeconfig = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "home", ".seal", hv(host)["seal_cluster_name"], "kubeconfig")
    assert oct(os.stat(kubeconfig).st_mode & 0o777) == "0o600"
    journal = host.check_output("journalctl -b --no-pager -o cat -u %s" % service(host)).splitlines()
    starts = [line for line in journal if line.startswith("Starting %s.service" % service(host))]
    assert len(starts) == 1, journal
    assert host.check_output("systemctl show -p NRestarts --value %s" % service(host)) == "0"


def test_check_diff_on_the_converged_cluster_changes_nothing_and_shows_no_secret(host):
    """run.yml --check --diff from the controller, as a user would run it: every host reports
    changed=0, and neither the cluster token nor the registry password is in the output."""
    if not is_master0(host):
        pytest.skip("run once, for master0")
    import re
    import subprocess
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    env = dict(os.environ, HOME=os.path.join(ephemeral, "home"), SEAL_IMAGE_STORE=os.path.join(ephemeral, "images"),
               ANSIBLE_CONFIG=os.path.join(project, "tests", "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    run = subprocess.run(["ansible-playbook", "-i", hv(host)["seal_clusterfile"], os.path.join(project, "playbooks", "run.yml"),
                          "--check", "--diff", "-v"], env=env, cwd=project, capture_output=True, text=True, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    recap = re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M)
    assert len(recap) == len(hv(host)["groups"]["cluster_" + hv(host)["seal_cluster_name"].replace("-", "_")]) + 1, out[-4000:]
    assert all(r[1:] == ("0", "0", "0") for r in recap), recap
    with open(os.path.join(env["HOME"], ".seal", hv(host)["seal_cluster_name"], "token"), encoding="utf-8") as f:
        token = f.read().strip()
    registry = (hv(host).get("seal_registry") or {}).get("localRegistry") or {}
    password = registry.get("password")
    password = password.get("__ansible_unsafe") if isinstance(password, dict) else password
    assert len(token) >= 32 and password
    assert token not in out and password not in out
