"""`ansible-galaxy collection build` ships the collection and none of the test tooling."""
import os
import subprocess
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOT_SHIPPED = (".venv/", ".cache/", ".ansible/", ".git/", "tests/fleet/", "tests/standin/",
               "tests/integration/", "tests/unit/", "molecule/", "scripts/", "__pycache__")


def test_build_holds_collection_only(tmp_path):
    subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), ROOT],
                   check=True, capture_output=True, text=True)
    (tarball,) = tmp_path.glob("seal-cluster-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "MANIFEST.json" in names
    assert "plugins/modules/node_prepare.py" in names
    assert "roles/prepare/meta/argument_specs.yml" in names
    leaked = [n for n in names if any(n.startswith(p) or p in n for p in NOT_SHIPPED)]
    assert leaked == []
