"""cluster_image run as Ansible runs it: check mode changes nothing, diff shows digests, changed
only when the store (or archive) changed, errors name what is wrong."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

MODULE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "cluster_image.py")


@pytest.fixture
def run_module():
    """Like conftest's run_module, but the module's own option is called name."""
    def run(_module, check=False, diff=False, **args):
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        proc = subprocess.run([sys.executable, MODULE], check=False, input=json.dumps({"ANSIBLE_MODULE_ARGS": args}),
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        return json.loads(proc.stdout)
    return run


@pytest.fixture
def ctx(tmp_path):
    path = tmp_path / "ctx"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "k3s").write_text("#!/bin/sh\n")
    (path / "Kubefile").write_text('FROM scratch\nCOPY bin bin\nLABEL cluster.alpha.sealer.io/cluster-runtime-type="k3s"\n'
                                   'LABEL cluster.alpha.sealer.io/cluster-runtime-version="v1.25.3+k3s1"\n')
    return str(path)


def test_build_check_mode_then_build_then_idempotent(run_module, ctx, tmp_path):
    store = str(tmp_path / "store")
    checked = run_module("cluster_image", check=True, diff=True, name="k3s:v1", state="built", path=ctx, store=store)
    assert checked["changed"] is True and not os.path.exists(os.path.join(store, "index.json"))
    assert checked["diff"] == {"before": "docker.io/library/k3s:v1: absent\n", "after": "docker.io/library/k3s:v1: absent\n"}
    built = run_module("cluster_image", diff=True, name="k3s:v1", state="built", path=ctx, store=store)
    assert built["changed"] is True and built["runtime"] == "k3s" and built["runtime_version"] == "v1.25.3+k3s1"
    assert built["diff"]["after"] == "docker.io/library/k3s:v1: %s\n" % built["digest"]
    assert os.path.isfile(os.path.join(built["rootfs"], "bin", "k3s")) and built["arch"] == "amd64"
    again = run_module("cluster_image", name="k3s:v1", state="built", path=ctx, store=store)
    assert again["changed"] is False and again["digest"] == built["digest"]
    present = run_module("cluster_image", name="k3s:v1", store=store, pull="never")
    assert present["changed"] is False and present["digest"] == built["digest"]


def test_archive_load_absent_round_trip(run_module, ctx, tmp_path):
    store, other, archive = str(tmp_path / "store"), str(tmp_path / "other"), str(tmp_path / "k3s.oci.tar")
    built = run_module("cluster_image", name="k3s:v1", state="built", path=ctx, store=store)
    assert run_module("cluster_image", check=True, name="k3s:v1", state="archived", archive=archive, store=store)["changed"]
    assert not os.path.exists(archive)
    assert run_module("cluster_image", name="k3s:v1", state="archived", archive=archive, store=store)["changed"] is True
    assert run_module("cluster_image", name="k3s:v1", state="archived", archive=archive, store=store)["changed"] is False
    assert run_module("cluster_image", check=True, name="k3s:v1", state="loaded", archive=archive, store=other)["changed"] is True
    assert not os.path.exists(os.path.join(other, "index.json"))
    loaded = run_module("cluster_image", name="k3s:v1", state="loaded", archive=archive, store=other)
    assert loaded["changed"] is True and loaded["digest"] == built["digest"] and loaded["runtime"] == "k3s"
    assert run_module("cluster_image", name="k3s:v1", state="loaded", archive=archive, store=other)["changed"] is False
    wrong = run_module("cluster_image", name="k3s:v2", state="loaded", archive=archive, store=other)
    assert wrong["failed"] and "does not hold docker.io/library/k3s:v2 (it holds docker.io/library/k3s:v1)" in wrong["msg"]
    assert run_module("cluster_image", check=True, name="k3s:v1", state="absent", store=other)["changed"] is True
    removed = run_module("cluster_image", name="k3s:v1", state="absent", store=other)
    assert removed["changed"] is True and removed["blobs_removed"] == 3
    assert not os.listdir(os.path.join(other, "blobs", "sha256")) and not os.listdir(os.path.join(other, "rootfs"))
    assert run_module("cluster_image", name="k3s:v1", state="absent", store=other)["changed"] is False


def test_errors_say_what_is_wrong(run_module, ctx, tmp_path):
    store = str(tmp_path / "store")
    bad = run_module("cluster_image", name="K3S:v1", store=store)
    assert bad["failed"] and "invalid image reference 'K3S:v1'" in bad["msg"]
    missing = run_module("cluster_image", name="k3s:v9", store=store, pull="never")
    assert missing["failed"] and "is not in the store" in missing["msg"] and "pull=never" in missing["msg"]
    with open(os.path.join(ctx, "Kubefile"), "a", encoding="utf-8") as f:
        f.write("RUN make\n")
    broken = run_module("cluster_image", name="k3s:v1", state="built", path=ctx, store=store)
    assert broken["failed"] and broken["msg"].endswith("Kubefile:5: unknown instruction RUN (expected one of FROM, COPY, ADD, "
                                                       "LABEL, ENV, ARG, CMD, APP, CNI, CSI, APPCMDS, APPENV, LAUNCH, CMDS)")


def test_image_without_runtime_is_refused(run_module, tmp_path):
    ctx = tmp_path / "bare"
    ctx.mkdir()
    (ctx / "x").write_text("x")
    (ctx / "Kubefile").write_text("FROM scratch\nCOPY x x\n")
    result = run_module("cluster_image", name="bare:1", state="built", path=str(ctx), store=str(tmp_path / "store"))
    assert result["failed"]
    assert "names no cluster runtime: neither the label cluster.alpha.sealer.io/cluster-runtime-type nor a Metadata file" in result["msg"]


def test_password_is_not_logged(run_module, tmp_path):
    result = run_module("cluster_image", name="127.0.0.1:1/k3s:v1", store=str(tmp_path / "s"), username="u",
                        password="s3cret-value", pull="always")
    assert result["failed"] and "cannot reach the registry 127.0.0.1:1" in result["msg"]
    assert "s3cret-value" not in json.dumps(result)


def _k3s_release(path, binary=b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x02\x00\x3e\x00" + b"\0v1.25.3+k3s1\0"):
    """A k3s amd64 release directory: an ELF x86-64 binary carrying its version, an air-gap archive, checksums."""
    path.mkdir()
    (path / "k3s").write_bytes(binary)
    (path / "k3s-airgap-images-amd64.tar").write_bytes(b"not checked here")
    (path / "sha256sum-amd64.txt").write_text("".join(
        "%s  %s\n" % (hashlib.sha256((path / name).read_bytes()).hexdigest(), name)
        for name in ("k3s-airgap-images-amd64.tar", "k3s")))
    return str(path)


def test_k3s_release_check_mode_verifies_the_files_and_changes_nothing(run_module, tmp_path):
    store, release = str(tmp_path / "store"), _k3s_release(tmp_path / "rel")
    args = dict(name="k3s:v1.25.3", state="built", store=store, k3s_release=dict(path=release, version="v1.25.3+k3s1"))
    checked = run_module("cluster_image", check=True, **args)
    assert checked["changed"] is True and not checked.get("failed") and not os.path.exists(os.path.join(store, "index.json"))
    with open(os.path.join(release, "k3s"), "ab") as f:
        f.write(b"tampered")
    failed = run_module("cluster_image", check=True, **args)
    assert failed["failed"] and failed["msg"].startswith(os.path.join(release, "k3s") + " does not match its checksum")
    wrong_tag = run_module("cluster_image", check=True, **dict(args, name="k3s:v1.26.0"))
    assert wrong_tag["failed"] and "the image tag v1.26.0 does not match the k3s version v1.25.3+k3s1" in wrong_tag["msg"]


def test_k3s_release_and_path_are_exclusive(run_module, ctx, tmp_path):
    result = run_module("cluster_image", name="k3s:v1", state="built", path=ctx, store=str(tmp_path / "store"),
                        k3s_release=dict(path=str(tmp_path), version="v1.25.3+k3s1"))
    assert result["failed"] and "mutually exclusive: path|k3s_release" in result["msg"]


def _store_files(store):
    """relative path -> bytes of every regular file of the store but its lock."""
    out = {}
    for dirpath, _dirs, files in os.walk(store):
        for name in files:
            path = os.path.join(dirpath, name)
            if name != ".lock" and os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, store)] = f.read()
    return out


def test_built_check_apply_idempotent_then_a_changed_file_gives_a_new_digest(run_module, ctx, tmp_path, monkeypatch):
    store = tmp_path / "env-store"
    monkeypatch.setenv("SEAL_IMAGE_STORE", str(store))  # no store option: the module's default
    args = dict(name="k3s:v1", state="built", path=ctx)

    check = run_module("cluster_image", check=True, diff=True, **args)
    assert check["changed"] is True and not store.exists()

    built = run_module("cluster_image", diff=True, **args)
    assert built["changed"] is True and built["digest"].startswith("sha256:")
    assert built["diff"] == {"before": "docker.io/library/k3s:v1: absent\n",
                             "after": "docker.io/library/k3s:v1: %s\n" % built["digest"]}
    assert built["rootfs"] == str(store / "rootfs" / built["digest"].split(":", 1)[1])
    assert (store / "rootfs" / built["digest"].split(":", 1)[1] / "bin" / "k3s").read_text() == "#!/bin/sh\n"
    with open(store / "index.json", encoding="utf-8") as f:
        index = json.load(f)
    assert [(m["digest"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]] == \
        [(built["digest"], "docker.io/library/k3s:v1")]
    manifest = store / "blobs" / "sha256" / built["digest"].split(":", 1)[1]
    assert "sha256:" + hashlib.sha256(manifest.read_bytes()).hexdigest() == built["digest"]
    files = _store_files(store)

    again = run_module("cluster_image", diff=True, **args)
    assert again["changed"] is False and again["digest"] == built["digest"]
    assert again["diff"]["before"] == again["diff"]["after"] == "docker.io/library/k3s:v1: %s\n" % built["digest"]
    assert _store_files(store) == files

    with open(os.path.join(ctx, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\necho v2\n")
    changed = run_module("cluster_image", diff=True, **args)
    assert changed["changed"] is True and changed["digest"] != built["digest"]
    assert changed["diff"] == {"before": "docker.io/library/k3s:v1: %s\n" % built["digest"],
                               "after": "docker.io/library/k3s:v1: %s\n" % changed["digest"]}
    assert open(os.path.join(changed["rootfs"], "bin", "k3s"), encoding="utf-8").read() == "#!/bin/sh\necho v2\n"
    with open(store / "index.json", encoding="utf-8") as f:
        assert [m["digest"] for m in json.load(f)["manifests"]] == [changed["digest"]]
    assert run_module("cluster_image", **args)["changed"] is False

    with open(os.path.join(ctx, "bin", "k3s"), "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n")
    back = run_module("cluster_image", **args)  # the same context gives the same digest again
    assert back["changed"] is True and back["digest"] == built["digest"]
