"""The README's main command, exactly as written, on a fresh copy of the repository: after the
demo's steps (fleet up, its inventory written where ansible.cfg points, the stand-in image built),
`ansible-playbook playbooks/run.yml -e image=k3s:v1.25.3` with no -i installs the cluster with
host key checking on, leaves `git status` clean, and a second run reports changed=0.

The copy is made from `git ls-files`, so a developer's own inventories/default/ is never touched."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import fleet

NAME = fleet.name_from_env("SEAL_BARE_FLEET", "bare")
BARE = ["ansible-playbook", "playbooks/run.yml", "-e", "image=k3s:v1.25.3"]


def git(repo, *argv):
    return subprocess.run(["git", "-C", repo, *argv], capture_output=True, text=True, check=True).stdout


def user_env(work):
    """A user's shell: the venv on PATH, no Ansible settings, a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SEAL_"))}
    env.update(PATH=os.path.join(fleet.ROOT, ".venv", "bin") + os.pathsep + env["PATH"], HOME=os.path.join(work, "home"),
               ANSIBLE_NOCOLOR="1")
    return env


@pytest.fixture(scope="module")
def repo():
    work = tempfile.mkdtemp(prefix="seal-bare-")
    copy = os.path.join(work, "seal.cluster")
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=fleet.ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    for rel in (f.decode() for f in files if f):
        if os.path.isfile(os.path.join(fleet.ROOT, rel)):
            os.makedirs(os.path.join(copy, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(os.path.join(fleet.ROOT, rel), os.path.join(copy, rel))
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "fresh clone")
    # what scripts/setup.sh links: the checkout as ansible_collections.seal.cluster
    os.makedirs(os.path.join(copy, ".cache", "collections", "ansible_collections", "seal"))
    os.symlink(os.path.join("..", "..", "..", ".."), os.path.join(copy, ".cache", "collections", "ansible_collections",
                                                                  "seal", "cluster"))
    os.makedirs(os.path.join(work, "home"))
    python = os.path.join(fleet.ROOT, ".venv", "bin", "python")
    store = os.path.join(copy, ".cache", "images")
    try:
        # the steps of `make demo`, with this test's fleet
        for argv in (["tests/fleet/fleet.py", "up", "--name", NAME, "--masters", "1", "--nodes", "1"],
                     ["tests/fleet/demo_inventory.py", "write", "--name", NAME, "--store", store],
                     ["tests/standin/build_image.py", "--version", "v1.25.3+k3s1", "--store", store]):
            subprocess.run([python, *argv], cwd=copy, env=user_env(work), check=True, timeout=900)
        yield {"dir": copy, "work": work, "state": fleet.load(NAME, os.path.join(copy, ".cache", "fleet", NAME))}
    finally:
        subprocess.run([python, "tests/fleet/fleet.py", "down", "--name", NAME], cwd=copy, env=user_env(work),
                       check=False, timeout=300)
        shutil.rmtree(work, ignore_errors=True)


def bare(repo, *extra, env=None):
    return subprocess.run(BARE + list(extra), cwd=repo["dir"], env=dict(user_env(repo["work"]), **(env or {})),
                          capture_output=True, text=True, timeout=900, check=False)


def test_bare_command_installs_the_demo_cluster_then_changes_nothing(repo):
    first = bare(repo)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    state = repo["state"]
    ips = sorted(n["ip"] for n in state["nodes"])
    assert sorted(host for host, _ in fleet.RECAP.findall(first.stdout) if host != "localhost") == ips
    master = next(n for n in state["nodes"] if n["role"] == "master")
    nodes = subprocess.run(fleet.ssh_argv(master["ip"], state["key"]) + ["k3s", "kubectl", "get", "nodes", "--no-headers"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert sorted(line.split()[0] for line in nodes.splitlines()) == sorted(n["name"] for n in state["nodes"])
    assert all(line.split()[1] == "Ready" for line in nodes.splitlines()), nodes
    assert os.path.isfile(os.path.join(repo["work"], "home", ".seal", NAME, "kubeconfig"))
    assert git(repo["dir"], "status", "--porcelain") == ""

    second = bare(repo)
    assert second.returncode == 0, second.stdout[-4000:]
    changed = dict(fleet.RECAP.findall(second.stdout))
    assert set(changed) == set(ips) | {"localhost"} and set(changed.values()) == {"0"}, changed


def test_host_keys_are_checked(repo):
    """The demo's hosts are reached because their keys are known, not because checking is off:
    with an empty known_hosts file (and no shared connection) the same command cannot connect."""
    empty = os.path.join(repo["work"], "empty_known_hosts")
    open(empty, "w", encoding="utf-8").close()
    out = subprocess.run(["ansible", "all", "-m", "ansible.builtin.ping", "-e",
                          "ansible_ssh_common_args='-o UserKnownHostsFile=%s'" % empty],
                         cwd=repo["dir"], env=dict(user_env(repo["work"]), ANSIBLE_SSH_ARGS="-o ControlMaster=no"),
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode != 0
    assert "Host key verification failed" in out.stdout
    unreachable = re.findall(r"^(\S+) \| UNREACHABLE!", out.stdout, re.M)
    assert sorted(unreachable) == sorted(n["ip"] for n in repo["state"]["nodes"]), out.stdout
    good = subprocess.run(["ansible", "all", "-m", "ansible.builtin.ping"], cwd=repo["dir"], env=user_env(repo["work"]),
                          capture_output=True, text=True, timeout=300, check=False)
    assert good.returncode == 0, good.stdout
