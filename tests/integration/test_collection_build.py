"""`ansible-galaxy collection build` ships the collection, its runtime dependency files and its
example inventories, and none of the test tooling nor the user's own inventory."""
import os
import shutil
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOT_SHIPPED = (".venv/", ".cache/", ".ansible/", ".git/", "tests/fleet/", "tests/standin/",
               "tests/integration/", "tests/unit/", "molecule/", "scripts/", "__pycache__",
               "inventories/default/", "requirements-dev.txt", "tests/ansible.cfg")


def build(source, out):
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(source)],
                   check=True, capture_output=True, text=True)
    (tarball,) = out.glob("seal-cluster-*.tar.gz")
    with tarfile.open(tarball) as tar:
        return tar.getnames()


def test_build_holds_collection_only(tmp_path):
    names = build(ROOT, tmp_path)
    assert "MANIFEST.json" in names
    assert "plugins/modules/node_prepare.py" in names
    assert "roles/prepare/meta/argument_specs.yml" in names
    assert {"requirements.txt", "bindep.txt", "meta/execution-environment.yml"} <= set(names)
    assert {"inventories/ha/Clusterfile", "inventories/estate/hosts.yml"} <= set(names)
    leaked = [n for n in names if any(n.startswith(p) or p in n for p in NOT_SHIPPED)]
    assert leaked == []
    # nothing git does not track (caches such as .hypothesis/, build output) is ever shipped
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    untracked = [n for n in names if n not in tracked and n not in ("MANIFEST.json", "FILES.json")
                 and not any(t.startswith(n + "/") for t in tracked)]
    assert untracked == []


def test_a_users_default_inventory_is_never_packed(tmp_path):
    """In a copy of the checkout (never the developer's own inventories/default/)."""
    copy = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    for rel in (f.decode() for f in files if f):
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(copy / os.path.dirname(rel), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), copy / rel)
    secret = "ssh:\n  passwd: do-not-ship\n"
    (copy / "inventories" / "default" / "Clusterfile").write_text(secret)
    (copy / "inventories" / "default" / "group_vars" / "all").mkdir(parents=True)
    (copy / "inventories" / "default" / "group_vars" / "all" / "vault.yml").write_text(secret)
    out = tmp_path / "out"
    out.mkdir()
    names = build(copy, out)
    assert [n for n in names if n.startswith("inventories/default")] == []
    with tarfile.open(next(out.glob("*.tar.gz"))) as tar:
        for member in tar.getmembers():
            if member.isfile():
                assert b"do-not-ship" not in tar.extractfile(member).read(), member.name
