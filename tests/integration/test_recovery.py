"""docs/recovery.md's commands, run as written (the page's blocks marked `recovery-test=<case>`,
extracted here, not copied), on one fleet of 3 masters (embedded etcd) + 1 node on the
stand-in of a current release:

1. backup: objects made after the install (a ConfigMap, a node label) are in the backup; the
   controller keeps snapshot, checksum, token and record 0600 in a 0700 directory; the token
   never shows in the output; `sha256sum -c` and Debian's `etcdctl snapshot status` (the page's
   check block) accept the snapshot; the servers' scheduled snapshots (seal_etcd_snapshot_* in
   the inventory's group_vars) run and are pruned;
2. restore (the newest backup) after the objects were deleted/changed and others added: the API
   of every server answers the snapshot's objects; an unknown backup name is refused first;
3. quorum loss (two servers' k3s stopped and their databases gone): the survivor's reset without
   a snapshot keeps everything; the others rejoin;
4. lost controller state: the token file comes back from a live server, and run.yml changes
   nothing on any host after all of the above.

The fleet is shared by the steps (module scope), which run in order. ~8 min on this machine."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

import build_image
import fleet

NAME = fleet.name_from_env("SEAL_RECOVERY_FLEET", "itrec")
RELEASE = "v1.33.5+k3s1"
BLOCK = re.compile(r"^```sh recovery-test=(\S+)\n(.*?)^```", re.M | re.S)
SNAPSHOTS = "/var/lib/rancher/k3s/server/db/snapshots"


def page_blocks():
    with open(os.path.join(fleet.ROOT, "docs", "recovery.md"), encoding="utf-8") as f:
        return dict(BLOCK.findall(f.read()))


def test_the_page_has_every_case():
    assert set(page_blocks()) == {"backup", "check", "restore", "quorum", "lost-state",
                                  "sqlite-backup", "sqlite-check", "sqlite-restore"}  # test_recovery_sqlite.py


def ssh(state, ip, command, check=True, stdin=None, timeout=120):
    proc = subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                          timeout=timeout, check=False, input=stdin)
    if check:
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    return proc.stdout


class Fleet:
    def __init__(self, state, work, env):
        self.state, self.work, self.env = state, work, env
        self.masters = [n["ip"] for n in state["nodes"] if n["role"] == "master"]

    def page(self, case, **variables):
        """Run the page's block `case` as written, in the Clusterfile's directory."""
        env = dict(self.env, CLUSTER=NAME, **variables)
        return subprocess.run(["bash", "-euo", "pipefail", "-c", page_blocks()[case]], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=1200, check=False)

    def kubectl(self, ip, *args, stdin=None):
        return ssh(self.state, ip, "k3s kubectl " + " ".join(args), stdin=stdin)

    def configmaps(self, ip):
        items = json.loads(self.kubectl(ip, "get", "configmaps", "-n", "default", "-o", "json"))["items"]
        return {c["metadata"]["name"]: c.get("data") for c in items if c["metadata"]["name"].startswith("seal-")}

    def label(self, ip, node):
        return json.loads(self.kubectl(ip, "get", "node", node, "-o", "json"))["metadata"]["labels"].get("seal.test/backup")

    def node_name(self, ip):
        return ssh(self.state, ip, "hostname").strip().lower()

    def state_dir(self):
        return os.path.join(self.work, ".seal", NAME)


def configmap(name, value):
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
                       "data": {"value": value}})


def install_cluster(state, work, release, group_vars="", **extra_env):
    """run.yml from a work directory holding the fleet's Clusterfile and a link to playbooks/ (as a
    user runs the recovery page), with HOME and the image store in it; returns the environment."""
    shutil.copy(os.path.join(state["dir"], "Clusterfile"), os.path.join(work, "Clusterfile"))
    os.symlink(os.path.join(fleet.ROOT, "playbooks"), os.path.join(work, "playbooks"))
    if group_vars:
        os.makedirs(os.path.join(work, "group_vars"))
        with open(os.path.join(work, "group_vars", "all.yml"), "w", encoding="utf-8") as f:
            f.write(group_vars)
    env = dict(os.environ, SEAL_IMAGE_STORE=os.path.join(work, "store"), HOME=work,
               ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"),
               PATH=os.path.join(fleet.ROOT, ".venv", "bin") + os.pathsep + os.environ.get("PATH", ""), **extra_env)
    build_image.build(release, env["SEAL_IMAGE_STORE"])
    installed = subprocess.run(["ansible-playbook", "-i", "Clusterfile", "playbooks/run.yml"], cwd=work, env=env,
                               capture_output=True, text=True, timeout=1200, check=False)
    assert installed.returncode == 0, installed.stdout[-4000:]
    return env


@pytest.fixture(scope="module")
def cluster():
    state = fleet.up(NAME, masters=3, nodes=1, cluster_image="k3s:" + RELEASE.split("+", 1)[0])
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    try:
        env = install_cluster(state, work, RELEASE, "seal_etcd_snapshot_schedule_cron: '@every 15s'\nseal_etcd_snapshot_retention: 2\n")
        yield Fleet(state, work, env)
    finally:
        fleet.down(NAME)


def test_backup_keeps_snapshot_checksum_token_and_record(cluster):
    m1, m2, _m3 = cluster.masters
    cluster.kubectl(m1, "apply", "-f", "-", stdin=configmap("seal-kept", "before"))
    cluster.kubectl(m1, "label", "node", cluster.node_name(m2), "seal.test/backup=before")
    done = cluster.page("backup")
    assert done.returncode == 0, done.stdout[-4000:]
    token = open(os.path.join(cluster.state_dir(), "token"), encoding="utf-8").read().strip()
    password = token.rsplit(":", 1)[-1]
    assert password not in done.stdout and password not in done.stderr
    backups = os.path.join(cluster.state_dir(), "backups")
    (name,) = os.listdir(backups)
    assert re.fullmatch(r"seal-backup-.+-\d{10}", name)
    where = os.path.join(backups, name)
    assert oct(os.stat(where).st_mode & 0o777) == "0o700"
    assert sorted(os.listdir(where)) == sorted([name, name + ".sha256", "token", "applied.json"])
    for f in os.listdir(where):
        assert oct(os.stat(os.path.join(where, f)).st_mode & 0o777) == "0o600", f
    assert open(os.path.join(where, "token"), encoding="utf-8").read().strip().rsplit(":", 1)[-1] == password
    checked = cluster.page("check", BACKUP=name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{name}: OK" in checked.stdout
    status = subprocess.run(["etcdctl", "snapshot", "status", os.path.join(where, name), "-w", "json"],
                            capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), check=True)
    assert json.loads(status.stdout)["totalKey"] > 10
    # the servers' own scheduled snapshots (every 15 s): named etcd-snapshot-<node>-<ts>, at most 2
    # kept; the first comes one period after k3s started, which an unloaded install may not reach
    # before this point: wait for three to have been taken (one pruned), the newest two kept
    deadline = time.monotonic() + 180
    while True:
        listed = ssh(cluster.state, m1, f"ls {SNAPSHOTS}").split()
        scheduled = sorted(f for f in listed if f.startswith("etcd-snapshot-"))
        taken = int(ssh(cluster.state, m1, "journalctl -u k3s --no-pager -o cat | grep -c 'Saving etcd snapshot to "
                                           f"{SNAPSHOTS}/etcd-snapshot-' || true").strip() or 0)
        if taken >= 3 or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert taken >= 3 and len(scheduled) == 2, (taken, listed)
    assert [f for f in listed if f.startswith("seal-backup-")] == [name]


def test_restore_brings_back_the_snapshot_objects_on_every_server(cluster):
    m1, m2, m3 = cluster.masters
    cluster.kubectl(m1, "delete", "configmap", "seal-kept")
    cluster.kubectl(m1, "apply", "-f", "-", stdin=configmap("seal-later", "after"))
    cluster.kubectl(m1, "label", "--overwrite", "node", cluster.node_name(m2), "seal.test/backup=after")
    assert cluster.configmaps(m1) == {"seal-later": {"value": "after"}}
    refused = subprocess.run(["ansible-playbook", "-i", "Clusterfile", "playbooks/restore.yml", "-e", "backup=nope"],
                             cwd=cluster.work, env=cluster.env, capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode != 0 and "no backup nope in" in refused.stdout, refused.stdout[-3000:]
    assert cluster.configmaps(m1) == {"seal-later": {"value": "after"}}  # nothing changed
    done = cluster.page("restore")
    assert done.returncode == 0, done.stdout[-5000:]
    for ip in (m1, m2, m3):
        assert cluster.configmaps(ip) == {"seal-kept": {"value": "before"}}, ip
        assert cluster.label(ip, cluster.node_name(m2)) == "before"
        assert cluster.kubectl(ip, "get", "--raw", "/readyz").strip() == "ok"
    assert ssh(cluster.state, m2, "ls -d /var/lib/rancher/k3s/server/db-*").strip()  # moved aside, not deleted


def test_quorum_loss_is_recovered_on_the_survivor_without_a_snapshot(cluster):
    m1, m2, m3 = cluster.masters
    cluster.kubectl(m1, "apply", "-f", "-", stdin=configmap("seal-quorum", "kept"))
    for ip in (m2, m3):
        ssh(cluster.state, ip, "systemctl stop k3s && rm -rf /var/lib/rancher/k3s/server/db")
    lost = subprocess.run(fleet.ssh_argv(m1, cluster.state["key"]) + ["k3s kubectl get --raw /readyz --request-timeout=10s"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert lost.returncode != 0
    done = cluster.page("quorum", SURVIVOR=m1)
    assert done.returncode == 0, done.stdout[-5000:]
    for ip in (m1, m3):
        assert cluster.configmaps(ip) == {"seal-kept": {"value": "before"}, "seal-quorum": {"value": "kept"}}, ip
        assert cluster.kubectl(ip, "get", "--raw", "/readyz").strip() == "ok"


def test_lost_controller_token_comes_back_and_run_changes_nothing(cluster):
    path = os.path.join(cluster.state_dir(), "token")
    before = open(path, encoding="utf-8").read()
    os.remove(path)
    done = cluster.page("lost-state")
    assert done.returncode == 0, done.stdout[-4000:]
    assert open(path, encoding="utf-8").read().strip().rsplit(":", 1)[-1] == before.strip().rsplit(":", 1)[-1]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    changed = fleet.changed_by_host(done.stdout)
    assert changed and all(n == 0 for host, n in changed.items() if host != "localhost"), changed
