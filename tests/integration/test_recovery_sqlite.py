"""docs/recovery.md's sqlite section, its blocks run as written (`recovery-test=sqlite-*`), on a
fleet of 1 master (sqlite: no cluster-init) + 1 node: backup.yml keeps a copy of the live
server's state.db (Debian's sqlite3 finds it whole, and it holds the object made before), its
checksum, the token and the record 0600; after the object is deleted and another made,
restore.yml brings the backup's objects back through the API, the old server/db is kept aside,
the agent's Node is Ready again, and run.yml then changes nothing."""
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

import fleet
from test_recovery import configmap, install_cluster, page_blocks, ssh

pytestmark = pytest.mark.fleet
NAME = fleet.name_from_env("SEAL_RECOVERY_SQLITE_FLEET", "itsql")
RELEASE = "v1.33.5+k3s1"


@pytest.fixture(scope="module")
def cluster():
    state = fleet.up(NAME, masters=1, nodes=1, cluster_image="k3s:" + RELEASE.split("+", 1)[0])
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    try:
        env = install_cluster(state, work, RELEASE, CLUSTER=NAME)
        yield state, work, env
    finally:
        fleet.down(NAME)
        shutil.rmtree(work, ignore_errors=True)


def page(work, env, case, **variables):
    return subprocess.run(["bash", "-euo", "pipefail", "-c", page_blocks()[case]], cwd=work, env=dict(env, **variables),
                          capture_output=True, text=True, timeout=1200, check=False)


def configmaps(state, ip):
    items = json.loads(ssh(state, ip, "k3s kubectl get configmaps -n default -o json"))["items"]
    return {c["metadata"]["name"]: c.get("data") for c in items if c["metadata"]["name"].startswith("seal-")}


def test_sqlite_backup_and_restore_as_the_page_says(cluster):
    state, work, env = cluster
    master = next(n["ip"] for n in state["nodes"] if n["role"] == "master")
    assert ssh(state, master, "test -f /var/lib/rancher/k3s/server/db/state.db && "
                              "test ! -e /var/lib/rancher/k3s/server/db/etcd && echo sqlite").strip() == "sqlite"
    ssh(state, master, "k3s kubectl apply -f -", stdin=configmap("seal-kept", "before"))
    done = page(work, env, "sqlite-backup")
    assert done.returncode == 0, done.stdout[-4000:]
    token = open(os.path.join(work, ".seal", NAME, "token"), encoding="utf-8").read().strip()
    assert token.rsplit(":", 1)[-1] not in done.stdout + done.stderr
    backups = os.path.join(work, ".seal", NAME, "backups")
    (name,) = os.listdir(backups)
    assert re.fullmatch(r"seal-backup-.+-\d{10}", name)
    where = os.path.join(backups, name)
    assert sorted(os.listdir(where)) == sorted([name, name + ".sha256", "token", "applied.json"])
    assert all(os.stat(os.path.join(where, f)).st_mode & 0o777 == 0o600 for f in os.listdir(where))
    checked = page(work, env, "sqlite-check", BACKUP=name)
    assert checked.returncode == 0 and f"{name}: OK" in checked.stdout and "\nok\n" in checked.stdout + "\n", \
        checked.stdout + checked.stderr
    kept = subprocess.run(["sqlite3", os.path.join(where, name), "select count(*) from kine where name like "
                           "'/registry/configmaps/default/seal-kept'"], capture_output=True, text=True, check=True)
    assert int(kept.stdout.strip()) >= 1

    ssh(state, master, "k3s kubectl delete configmap seal-kept -n default")
    ssh(state, master, "k3s kubectl apply -f -", stdin=configmap("seal-later", "after"))
    assert configmaps(state, master) == {"seal-later": {"value": "after"}}
    done = page(work, env, "sqlite-restore")
    assert done.returncode == 0, done.stdout[-5000:]
    assert configmaps(state, master) == {"seal-kept": {"value": "before"}}
    assert ssh(state, master, "ls -d /var/lib/rancher/k3s/server/db-*").strip()  # the old db kept aside
    nodes = json.loads(ssh(state, master, "k3s kubectl get nodes -o json"))["items"]
    assert len(nodes) == 2 and all(
        [c["status"] for c in n["status"]["conditions"] if c["type"] == "Ready"] == ["True"] for n in nodes)
    again = subprocess.run(["ansible-playbook", "-i", "Clusterfile", "playbooks/run.yml"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=1200, check=False)
    assert again.returncode == 0, again.stdout[-4000:]
    changed = fleet.changed_by_host(again.stdout)
    assert changed and all(n == 0 for host, n in changed.items() if host != "localhost"), changed
    refused = subprocess.run(["ansible-playbook", "-i", "Clusterfile", "playbooks/restore.yml", "-e", "survivor=" + master],
                             cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert refused.returncode != 0 and "no etcd quorum to lose" in refused.stdout, refused.stdout[-3000:]
