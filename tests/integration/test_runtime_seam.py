"""The runtime seam: a cluster image whose runtime label is `fake` is installed by the test-only
role tests/runtimes/runtime_fake, found through the roles path, with no playbook or role of the
collection edited. A 1 master + 1 node fleet goes through run.yml (each host runs the verbs its
group calls for, with the join plan the fake runtime made; a second run changes nothing) and
reset.yml (the markers and the runtime-agnostic parts are gone). An image whose runtime no role
implements is refused on the controller, naming the image and the runtime, before any host is
read or changed."""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest

import fleet
import make_rootfs
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

NAME = fleet.name_from_env("SEAL_FAKE_RUNTIME_FLEET", "fakert")
RUNTIME_LABEL = 'LABEL cluster.alpha.sealer.io/cluster-runtime-type="%s"'
MARKERS = "/var/lib/seal-fake"


def build_image(store, runtime, name):
    """The stand-in's build context (registry data and all), its runtime label (and Metadata)
    set to `runtime` and without the k3s binary, built with the collection's own builder."""
    with tempfile.TemporaryDirectory(prefix="seal-fake-image-") as ctx:
        context = make_rootfs.make("v1.25.3+k3s1", os.path.join(ctx, "rootfs"))
        os.unlink(os.path.join(context, "bin", "k3s"))
        kubefile = os.path.join(context, "Kubefile")
        with open(kubefile, encoding="utf-8") as f:
            text = f.read()
        assert RUNTIME_LABEL % "k3s" in text
        with open(kubefile, "w", encoding="utf-8") as f:
            f.write(text.replace(RUNTIME_LABEL % "k3s", RUNTIME_LABEL % runtime).replace('CMD ["k3s"]', "CMD []"))
        with open(os.path.join(context, "Metadata"), "w", encoding="utf-8") as f:
            json.dump({"version": "v1", "arch": "amd64", "ClusterRuntime": runtime}, f)
        desc, _before = Builder(Store(store), context).build(name)
    return desc["digest"]


def ssh(state, ip, command, check=True):
    return subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                          timeout=120, check=check).stdout


def fake_runtime_env(work):
    """ansible-playbook's environment: a store and HOME in work, the fake runtime on the roles path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(SEAL_IMAGE_STORE=os.path.join(work, "store"), HOME=work, ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"),
               ANSIBLE_ROLES_PATH=os.path.join(fleet.ROOT, "tests", "runtimes"))
    return env


@contextlib.contextmanager
def fake_runtime_fleet(name, nodes):
    """A fleet of one master and `nodes` nodes for image fake:v1, and fake_runtime_env in a work directory of its own."""
    work = tempfile.mkdtemp(prefix=f"seal-{name}-")
    state = fleet.up(name, masters=1, nodes=nodes, cluster_image="fake:v1")
    try:
        yield state, fake_runtime_env(work)
    finally:
        fleet.down(name)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    with fake_runtime_fleet(NAME, nodes=1) as (state, env):
        digests = {"fake": build_image(env["SEAL_IMAGE_STORE"], "fake", "fake:v1"),
                   "k0s": build_image(env["SEAL_IMAGE_STORE"], "k0s", "k0s:v1")}
        yield state, env, digests


def play(state, env, playbook, *extra):
    return subprocess.run([os.path.join(fleet.ROOT, ".venv", "bin", "ansible-playbook"), "-i",
                           os.path.join(state["dir"], "Clusterfile"), "playbooks/" + playbook, *extra],
                          cwd=fleet.ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def markers(state, ip):
    names = ssh(state, ip, f"ls {MARKERS} 2>/dev/null || true").split()
    return {n[:-len(".json")]: json.loads(ssh(state, ip, f"cat {MARKERS}/{n}")) for n in names if n.endswith(".json")}


def test_an_image_whose_runtime_no_role_implements_is_refused_before_any_host_changes(cluster):
    state, env, digests = cluster
    out = play(state, env, "run.yml", "-e", "image=k0s:v1")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode != 0
    assert f"cluster image docker.io/library/k0s:v1 ({digests['k0s']}) has runtime 'k0s' and no role runtime_k0s implements it" in text, text[-3000:]
    # the controller's first play stopped the run: no host was even read
    assert not [line for line in out.stdout.splitlines() if line.startswith(tuple(n["ip"] for n in state["nodes"]))]
    for node in state["nodes"]:
        assert ssh(state, node["ip"], "ls /var/lib/seal 2>/dev/null || true").strip() == ""


def test_run_and_reset_through_the_fake_runtime(cluster):
    state, env, digests = cluster
    master, node = state["nodes"][0]["ip"], state["nodes"][1]["ip"]
    first = play(state, env, "run.yml")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]

    on_master, on_node = markers(state, master), markers(state, node)
    assert sorted(on_master) == ["finish", "init"] and sorted(on_node) == ["join_node"]
    for verb, marker in list(on_master.items()) + list(on_node.items()):
        assert marker["verb"] == verb and marker["runtime"] == "fake"
        assert (marker["image"], marker["digest"], marker["cluster"]) == ("docker.io/library/fake:v1", digests["fake"], NAME)
        assert marker["init_host"] == master and marker["masters"] == [master] and marker["nodes"] == [node]
    assert on_master["init"]["host"] == master and on_node["join_node"]["host"] == node
    # the runtime-agnostic steps ran around the seam: the rootfs and the registry on master0
    assert ssh(state, node, f"cat /var/lib/seal/{NAME}/rootfs/.seal-digest").strip() == digests["fake"]
    assert ssh(state, master, f"systemctl is-active seal-registry-{NAME}.service").strip() == "active"
    # no k3s anywhere (prepare, outside the seam, still makes k3s's empty directories: see docs/runtimes.md)
    for ip in (master, node):
        assert ssh(state, ip, "ls /usr/local/bin/k3s /etc/rancher/k3s/config.yaml /etc/systemd/system/k3s*.service 2>&1 || true"
                   ).count("No such file") == 3

    second = play(state, env, "run.yml")
    assert second.returncode == 0, second.stdout[-4000:]
    changed = fleet.changed_by_host(second.stdout)
    assert set(changed) >= {master, node} and all(n == 0 for n in changed.values()), changed

    reset = play(state, env, "reset.yml")
    assert reset.returncode == 0, reset.stdout[-4000:] + reset.stderr[-2000:]
    for ip in (master, node):
        assert markers(state, ip) == {}
        assert ssh(state, ip, f"ls -d {MARKERS} /var/lib/seal/{NAME} 2>&1 || true").count("No such file") == 2
    assert ssh(state, master, f"systemctl is-active seal-registry-{NAME}.service", check=False).strip() != "active"
