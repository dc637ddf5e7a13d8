"""cluster_record and cluster_record_info: the record written, pruned and read back as a node's
untrusted file, through the modules' main() as Ansible runs them."""
import json
import os

import pytest
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.seal.cluster.plugins.modules import cluster_record, cluster_record_info

ARGS = {"cluster": "c1", "image": "k3s:v1.25.3", "digest": "sha256:" + "a" * 64, "version": "v1.25.3+k3s1",
        "masters": ["m1", "m2"], "nodes": ["n1"], "addresses": {"m1": "10.0.0.1", "m2": "10.0.0.2", "n1": None}}
RECORD = dict(ARGS, clusterfile=None, apps=[])


def _mode(path):
    return os.stat(path).st_mode & 0o7777


def test_check_apply_idempotent_changed_then_pruned(run_main, tmp_path):
    path = tmp_path / "seal" / "c1" / "applied.json"
    args = dict(ARGS, path=str(path))

    check = run_main(cluster_record, args, check=True, diff=True)
    assert check["changed"] is True and check["record"] == RECORD
    assert check["diff"]["before"] == "" and json.loads(check["diff"]["after"]) == RECORD
    assert not path.exists() and not path.parent.exists()

    applied = run_main(cluster_record, args)
    assert applied["changed"] is True and applied["record"] == RECORD
    assert json.loads(path.read_text()) == RECORD and _mode(path) == 0o600 and _mode(path.parent) == 0o700

    again = run_main(cluster_record, args, diff=True)
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"] == path.read_text()

    os.chmod(path, 0o644)
    assert run_main(cluster_record, args, check=True)["changed"] is True and _mode(path) == 0o644
    assert run_main(cluster_record, args)["changed"] is True and _mode(path) == 0o600

    grown = dict(args, nodes=["n1", "n2"], addresses=dict(ARGS["addresses"], n2="10.0.0.4"))
    changed = run_main(cluster_record, grown, diff=True)
    assert changed["changed"] is True and json.loads(path.read_text())["nodes"] == ["n1", "n2"]
    assert '"n2": "10.0.0.4"' in changed["diff"]["after"] and '"n2"' not in changed["diff"]["before"]

    prune = {"path": str(path), "state": "absent", "hosts": ["m2", "n2", "not-there"]}
    before = path.read_text()
    predicted = run_main(cluster_record, prune, check=True)
    assert predicted["changed"] is True and path.read_text() == before
    pruned = run_main(cluster_record, prune)
    assert pruned["changed"] is True and pruned["record"] == dict(RECORD, masters=["m1"], addresses={"m1": "10.0.0.1", "n1": None})
    assert json.loads(path.read_text()) == pruned["record"] and _mode(path) == 0o600
    assert run_main(cluster_record, prune)["changed"] is False

    read = run_main(cluster_record_info, {"path": str(path)}, check=True)
    assert read == {"changed": False, "exists": True, "record": pruned["record"], "invocation": read["invocation"]}

    gone = run_main(cluster_record, {"path": str(path), "state": "absent"}, check=True)
    assert gone["changed"] is True and path.exists()
    assert run_main(cluster_record, {"path": str(path), "state": "absent"})["changed"] is True and not path.exists()
    assert run_main(cluster_record, {"path": str(path), "state": "absent"})["changed"] is False
    assert run_main(cluster_record, prune)["changed"] is False and not path.exists()
    assert run_main(cluster_record_info, {"path": str(path)})["exists"] is False


def test_a_record_ansible_wrote_reads_back_unchanged(run_main, tmp_path):
    """Records written by the role's former copy task (to_nice_json) stay as they are: no change on upgrade."""
    path = tmp_path / "applied.json"
    path.write_text(to_nice_json(RECORD) + "\n")
    os.chmod(path, 0o600)
    assert run_main(cluster_record, dict(ARGS, path=str(path)))["changed"] is False


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not JSON"),
    ("[]", "a record is a JSON object, not list"),
    ('{"masters": "m1"}', "masters must be a list, not str"),
    ('{"masters": [1]}', "masters[0] must be a string, not int"),
    ('{"nodes": [""]}', "nodes[0] is empty"),
    ('{"addresses": {"m1": 5}}', "addresses[m1] must be a string, not int"),
    ('{"digest": "sha256:a\\nb"}', "digest 'sha256:a\\nb' has a control character"),
    ("x" * (1 << 20) + "y", "larger than 1048576 bytes"),
    (b"\xff\xfe", "not UTF-8 text"),
])
def test_an_untrusted_record_is_refused_naming_the_file(run_main, tmp_path, content, problem):
    path = tmp_path / "applied.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    for module, args in ((cluster_record_info, {"path": str(path)}),
                         (cluster_record, {"path": str(path), "state": "absent", "hosts": ["m1"]})):
        out = run_main(module, args)
        assert out["failed"] is True and out["msg"].startswith(str(path) + ": ") and problem in out["msg"], out["msg"]


def test_only_a_regular_file_is_read(run_main, tmp_path):
    fifo, link = tmp_path / "fifo", tmp_path / "link"
    os.mkfifo(fifo)  # reading would block
    (tmp_path / "real.json").write_text(json.dumps(RECORD))
    os.symlink(tmp_path / "real.json", link)
    assert "not a regular file" in run_main(cluster_record_info, {"path": str(fifo)})["msg"]
    assert "cannot be read" in run_main(cluster_record_info, {"path": str(link)})["msg"]


def test_a_directory_is_never_taken_for_the_record(run_main, tmp_path):
    (tmp_path / "applied.json" / "keep").mkdir(parents=True)
    for args in (dict(ARGS, path=str(tmp_path / "applied.json")), {"path": str(tmp_path / "applied.json"), "state": "absent"}):
        out = run_main(cluster_record, args)
        assert out["failed"] is True and out["msg"] == "%s: is a directory, not a record" % (tmp_path / "applied.json")
    assert (tmp_path / "applied.json" / "keep").is_dir()


def test_the_writer_replaces_what_is_not_a_record(run_main, tmp_path):
    path = tmp_path / "applied.json"
    path.write_text("garbage")
    out = run_main(cluster_record, dict(ARGS, path=str(path)), diff=True)
    assert out["changed"] is True and out["diff"]["before"] == "garbage"
    assert json.loads(path.read_text()) == RECORD


@pytest.mark.parametrize("args, problem", [
    (dict(ARGS, path="relative/applied.json"), "path: 'relative/applied.json' must be an absolute"),
    (dict(ARGS, path="/x/applied.json", cluster="Not_A_Label"), "cluster: 'Not_A_Label'"),
    (dict(ARGS, path="/x/applied.json", masters=["m\n1"]), "arguments: masters[0] 'm\\n1' has a control character"),
    (dict(ARGS, path="/x/applied.json", hosts=["m1"]), "hosts: goes with state=absent"),
])
def test_bad_arguments_are_refused_before_any_write(run_main, args, problem):
    out = run_main(cluster_record, args)
    assert out["failed"] is True and problem in out["msg"], out["msg"]
