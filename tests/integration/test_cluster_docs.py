"""A Clusterfile's env, Config and Plugin documents on a stand-in k3s fleet (1 master + 2 nodes,
one fleet for the module): the image carries an env template, a YAML file a Config merges into
and a plugin of its own; the Clusterfile an env, a Config, two SHELL plugins (one on the
masters, one on the first node's IP; the second node gets neither) and a HOSTNAME plugin
(PreInit) renaming the master and the second node: their host names change, and k3s registers
their Nodes under the new names, while the first node keeps its own.

run.yml: each host's rendered template (host env over cluster env), the masters' k3s config with
the mapped network values, the merged file, the plugins' markers on exactly their hosts and the
image plugin's log line naming the image digest; a second run changes nothing; a failing plugin
(PreClean of reset.yml) stops the run with its name, host and exit code before the reset."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

import fleet
import make_rootfs
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

NAME = fleet.name_from_env("SEAL_CLUSTER_DOCS_FLEET", "itdocs")
VERSION = "v1.25.3+k3s1"
MARKERS = "/var/lib/seal-test-plugins"
RENAMED = {"master": "docs-master-renamed", "other": "docs-other-renamed"}
IMAGE_PLUGIN = """apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: from-image
spec:
  type: SHELL
  action: PostInstall
  on: master0
  data: |
    mkdir -p %s && echo "$HostIP" > %s/from-image-PostInstall
""" % (MARKERS, MARKERS)


def build_image(store):
    """The stand-in image with an env template, a YAML file and a plugin of its own."""
    with tempfile.TemporaryDirectory(prefix="seal-docs-image-") as ctx:
        context = make_rootfs.make(VERSION, os.path.join(ctx, "rootfs"))
        with open(os.path.join(context, "etc", "app.yaml"), "w", encoding="utf-8") as f:
            f.write("image: app\nreplicas: 1\n")
        # under bin/: agents receive only bin/ (docs/distribution.md), and the host env is checked on them
        with open(os.path.join(context, "bin", "seal-env.conf.tmpl"), "w", encoding="utf-8") as f:
            f.write("pod={{ .PodCIDR }}\nhost={{ .HostIP }}\nzone={{ .ZONE }}\n")
        os.makedirs(os.path.join(context, "plugins"))
        with open(os.path.join(context, "plugins", "image.yaml"), "w", encoding="utf-8") as f:
            f.write(IMAGE_PLUGIN)
        with open(os.path.join(context, "Kubefile"), "a", encoding="utf-8") as f:
            f.write("COPY plugins plugins\n")
        desc, _before = Builder(Store(store), context).build("k3s:v1.25.3")
    return desc["digest"]


def documents(node_ip, master_ip, other_ip, extra=""):
    return f"""---
apiVersion: sealer.io/v1
kind: Config
metadata:
  name: app-replicas
spec:
  path: etc/app.yaml
  strategy: merge
  data: |
    replicas: 3
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: on-masters
spec:
  type: SHELL
  action: PreInit
  on: master
  data: |
    mkdir -p {MARKERS} && echo "$HostIP $ZONE $(pwd)" > {MARKERS}/on-masters-PreInit
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: on-the-node
spec:
  type: SHELL
  action: PreInit|PostInstall
  on: {node_ip}
  data: |
    mkdir -p {MARKERS} && echo "$HostIP $ZONE" > {MARKERS}/on-the-node-$(ls {MARKERS} | wc -l)
---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: rename
spec:
  type: HOSTNAME
  action: PreInit
  data: |
    {master_ip} {RENAMED["master"]}
    {other_ip} {RENAMED["other"]}
{extra}"""


def write_clusterfile(state, work, **kwargs):
    master_ip = [n["ip"] for n in state["nodes"] if n["role"] == "master"][0]
    node_ip, other_ip = [n["ip"] for n in state["nodes"] if n["role"] == "node"]
    env = ["PodCIDR=10.52.0.0/16", "SvcCIDR=10.53.0.0/16", "CertSANs=api.docs.test,10.9.9.9",
           "DNSDomain=docs.local", "ZONE=a"]
    text = fleet.clusterfile(state).replace("  ssh:\n", "  env: %s\n  ssh:\n" % json.dumps(env), 1)
    path = os.path.join(work, "Clusterfile")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + documents(node_ip, master_ip, other_ip, **kwargs))
    return path


def ssh(state, ip, command):
    return subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                          timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def cluster():
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    state = fleet.up(NAME, masters=1, nodes=2, host_extra={"node": {"env": ["ZONE=b"]}})
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(SEAL_IMAGE_STORE=os.path.join(work, "store"), HOME=work, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"))
        digest = build_image(env["SEAL_IMAGE_STORE"])
        yield state, env, work, digest
    finally:
        fleet.down(NAME)
        shutil.rmtree(work, ignore_errors=True)


def play(env, clusterfile, playbook="run.yml"):
    """ansible-playbook; its output also goes to <work>/<playbook>.<n>.log (to follow a slow run)."""
    work = os.path.dirname(clusterfile)
    log = os.path.join(work, "%s.%d.log" % (playbook, len([n for n in os.listdir(work) if n.endswith(".log")])))
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.run([os.path.join(fleet.ROOT, ".venv", "bin", "ansible-playbook"), "-i", clusterfile, "playbooks/" + playbook],
                              cwd=fleet.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=1800, check=False)
    with open(log, encoding="utf-8") as f:
        proc.stdout, proc.stderr = f.read(), ""
    return proc


def changes(proc):
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return fleet.changed_by_host(proc.stdout)


def test_env_config_and_plugins(cluster):
    state, env, work, digest = cluster
    master = [n["ip"] for n in state["nodes"] if n["role"] == "master"][0]
    node, other = [n["ip"] for n in state["nodes"] if n["role"] == "node"]
    rootfs = f"/var/lib/seal/{NAME}/rootfs"
    first = play(env, write_clusterfile(state, work))
    changes(first)

    for ip in (master, node, other):
        zone = "a" if ip == master else "b"
        assert ssh(state, ip, f"cat {rootfs}/bin/seal-env.conf") == f"pod=10.52.0.0/16\nhost={ip}\nzone={zone}\n"
        assert yaml.safe_load(ssh(state, ip, f"cat {rootfs}/etc/app.yaml")) == {"image": "app", "replicas": 3}
        assert json.loads(ssh(state, ip, f"cat {rootfs}/.seal/config-applied.json")) == ["bin/seal-env.conf", "etc/app.yaml"]
        config = yaml.safe_load(ssh(state, ip, "cat /etc/rancher/k3s/config.yaml"))
        if ip == master:
            assert (config["cluster-cidr"], config["service-cidr"], config["cluster-domain"]) == \
                ("10.52.0.0/16", "10.53.0.0/16", "docs.local")
            assert {"api.docs.test", "10.9.9.9", master} <= set(config["tls-san"])
        else:
            assert not {"cluster-cidr", "service-cidr", "cluster-domain", "tls-san"} & set(config)
        marks = ssh(state, ip, f"ls {MARKERS} 2>/dev/null || true").split()
        expected = {master: ["from-image-PostInstall", "on-masters-PreInit"], node: ["on-the-node-0", "on-the-node-1"],
                    other: []}[ip]
        assert sorted(marks) == expected, (ip, marks)
    assert ssh(state, master, f"cat {MARKERS}/on-masters-PreInit") == f"{master} a {rootfs}\n"
    assert ssh(state, node, f"cat {MARKERS}/on-the-node-1") == f"{node} b\n"
    assert f"from-image (image docker.io/library/k3s:v1.25.3@{digest} plugins/image.yaml)" in first.stdout

    # HOSTNAME (PreInit, before k3s starts): the running name and /etc/hostname are the new ones,
    # and k3s named each Node after its host (pkg/util/net.go GetHostnameAndIPs: the host name,
    # lower-cased, without node-name); the first node kept its own name
    first_node = [n["name"] for n in state["nodes"] if n["ip"] == node][0]
    for ip, want in ((master, RENAMED["master"]), (other, RENAMED["other"]), (node, first_node)):
        assert ssh(state, ip, "hostname; cat /etc/hostname").split() == [want, want], ip
    nodes = ssh(state, master, "k3s kubectl get nodes -o jsonpath='{.items[*].metadata.name}'").split()
    assert sorted(nodes) == sorted([RENAMED["master"], RENAMED["other"], first_node.lower()])
    assert "(item=rename (Clusterfile))" in first.stdout


def test_a_second_run_changes_nothing(cluster):
    state, env, work, _digest = cluster
    second = changes(play(env, write_clusterfile(state, work)))
    assert second and all(n == 0 for n in second.values()), (second, second_changes(second, work))


def second_changes(recap, work):
    """The changed tasks of the last run (its log stays in the work directory while the fleet lives)."""
    logs = sorted(n for n in os.listdir(work) if n.endswith(".log"))
    with open(os.path.join(work, logs[-1]), encoding="utf-8") as f:
        text = f.read()
    blocks = text.split("\nTASK [")[1:]
    return [b.split("]", 1)[0] + ": " + ", ".join(re.findall(r"^changed: \[([^\]]+)\]", b, re.M))
            for b in blocks if "\nchanged: [" in b]


def test_a_failing_plugin_stops_the_run_with_its_name(cluster):
    state, env, work, _digest = cluster
    node = [n["ip"] for n in state["nodes"] if n["role"] == "node"][0]
    failing = ("---\napiVersion: sealer.io/v1\nkind: Plugin\nmetadata:\n  name: refuse-clean\nspec:\n  type: SHELL\n"
               "  action: PreClean\n  on: %s\n  data: |\n    echo cannot clean; exit 3\n" % node)
    out = play(env, write_clusterfile(state, work, extra=failing), "reset.yml")
    assert out.returncode != 0
    text = " ".join(out.stdout.split())
    assert f"plugin refuse-clean (Clusterfile, PreClean) on host {node} failed with exit code 3" in text, out.stdout[-4000:]
    assert "cannot clean" in text
    # the phase failed for every host: the reset happened nowhere
    for host in state["nodes"]:
        unit = "k3s" if host["role"] == "master" else "k3s-agent"
        assert ssh(state, host["ip"], f"systemctl is-active {unit}").strip() == "active"
