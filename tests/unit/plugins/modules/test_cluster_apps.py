"""cluster_apps through its main(): the launch order, the HelmChart it applies (chartContent is
the chart directory packed), commands run once per content, the record's apps, and check mode.
kubectl and bash are a recording fake; the real ones judge in tests/integration/test_apps.py."""
import base64
import gzip
import io
import json
import os
import tarfile

import pytest
from ansible.module_utils import basic

from ansible_collections.seal.cluster.plugins.module_utils import _cluster_apps
from ansible_collections.seal.cluster.plugins.module_utils import _cluster_record as rec
from ansible_collections.seal.cluster.plugins.modules import cluster_apps, cluster_record

DIGEST = "sha256:" + "c" * 64
EXTENSION = {"type": "app-installer", "schemaVersion": "v1alpha1",
             "applications": [{"name": "web", "type": "kube", "files": ["web.yaml"], "version": "v1"},
                              {"name": "demo", "type": "helm", "files": ["demo"], "version": "v1"},
                              {"name": "hello", "type": "shell", "files": ["hello.sh"], "version": "v1"}],
             "launch": {"app_names": ["web", "demo", "hello"]}, "env": {"GREETING": "hi"}}


@pytest.fixture
def host(tmp_path, monkeypatch):
    rootfs = tmp_path / "rootfs"
    apps = rootfs / "application" / "apps"
    (apps / "web").mkdir(parents=True)
    (apps / "web" / "web.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    (apps / "demo" / "templates").mkdir(parents=True)
    (apps / "demo" / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (apps / "demo" / "values.yaml").write_text("a: 1\n")
    (apps / "demo" / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    (apps / "hello").mkdir()
    (apps / "hello" / "hello.sh").write_text("echo hello\n")
    state = {"calls": [], "applied": {}, "charts": []}

    def run_command(self, argv, cwd=None, environ_update=None, **kw):
        state["calls"].append((list(argv), cwd, dict(environ_update or {})))
        if "kubectl" in argv:
            path = argv[argv.index("-f") + 1]
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if path.endswith(".json"):
                state["charts"].append(json.loads(text))
            dry = "--dry-run=server" in argv
            word = "unchanged" if state["applied"].get(os.path.basename(path)) == text else "created"
            if not dry:
                state["applied"][os.path.basename(path)] = text
            return 0, "x/%s %s%s\n" % (os.path.basename(path), word, " (server dry run)" if dry else ""), ""
        return 0, "ran\n", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    record = tmp_path / "applied.json"
    return {"rootfs": str(rootfs), "record": str(record), "state": state}


def _args(host, **kw):
    return dict(dict(rootfs=host["rootfs"], extension=EXTENSION, image="app:v1", digest=DIGEST,
                     env={"SEAL": "1"}, record=host["record"]), **kw)


def test_launch_in_order_then_nothing_changes(run_main, host):
    first = run_main(cluster_apps, _args(host))
    assert first["changed"] is True
    assert [(a["name"], a["type"], a["changed"]) for a in first["apps"]] == [
        ("web", "kube", True), ("demo", "helm", True), ("hello", "shell", True)]
    assert all(DIGEST in a["msg"] and "app:v1" in a["msg"] for a in first["apps"])  # the log names the digest
    bash = [c for c in host["state"]["calls"] if c[0][0] == "bash"]
    assert bash == [(["bash", os.path.join(host["rootfs"], "application/apps/hello/hello.sh")],
                     os.path.join(host["rootfs"], "application/apps/hello"), {"SEAL": "1", "GREETING": "hi"})]
    chart = host["state"]["charts"][0]
    assert chart["apiVersion"] == "helm.cattle.io/v1" and chart["kind"] == "HelmChart"
    assert chart["metadata"]["namespace"] == "kube-system" and chart["spec"]["targetNamespace"] == "default"
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(chart["spec"]["chartContent"])), mode="r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers() if m.isfile())
        assert names == ["demo/Chart.yaml", "demo/templates/cm.yaml", "demo/values.yaml"]
        assert tar.extractfile("demo/values.yaml").read() == b"a: 1\n"

    # the role keeps the record with cluster_record (after finish wrote it)
    run_main(cluster_record, dict(path=host["record"], cluster="c1", masters=["m1"]))
    kept = run_main(cluster_record, dict(path=host["record"], apps=first["record_apps"]))
    assert kept["changed"] is True and [a["name"] for a in rec.read(host["record"])["apps"]] == ["web", "demo", "hello"]
    again_record = run_main(cluster_record, dict(path=host["record"], cluster="c1", masters=["m1"]))
    assert again_record["changed"] is False  # finish's rewrite keeps the apps

    calls = len(host["state"]["calls"])
    second = run_main(cluster_apps, _args(host))
    assert second["changed"] is False and second["record_changed"] is False
    assert not [c for c in host["state"]["calls"][calls:] if c[0][0] == "bash"]  # the shell app ran once
    assert host["state"]["charts"][0] == host["state"]["charts"][1]  # the same chart, the same bytes


def test_check_mode_dry_runs_and_runs_no_command(run_main, host):
    out = run_main(cluster_apps, _args(host), check=True)
    assert out["changed"] is True
    assert all("--dry-run=server" in c[0] for c in host["state"]["calls"])
    assert not [c for c in host["state"]["calls"] if c[0][0] == "bash"]


def test_cmds_replace_the_apps_and_launch_overrides(run_main, host):
    ext = dict(EXTENSION, launch={"cmds": ["kubectl get nodes"], "app_names": ["web"]})
    out = run_main(cluster_apps, _args(host, extension=ext))
    assert [a["name"] for a in out["apps"]] == ["CMDS"]
    assert host["state"]["calls"][0][:2] == (["/bin/sh", "-c", "kubectl get nodes"], host["rootfs"])
    only = run_main(cluster_apps, _args(host, extension=ext, launch=["web"]))
    assert [a["name"] for a in only["apps"]] == ["web"]


@pytest.mark.parametrize("kw, message", [
    ({"digest": "latest"}, "apps run only from an image referenced by digest"),
    ({"launch": ["ghost"]}, "'ghost' is not one of the image's applications"),
    ({"extension": {"applications": [{"name": "x", "type": "kube", "files": ["../../etc/shadow"]}]}},
     "leaves the app's directory"),
])
def test_refusals(run_main, host, kw, message):
    out = run_main(cluster_apps, _args(host, **kw))
    assert out["failed"] and message in out["msg"]
    assert host["state"]["calls"] == []


def test_chart_archive_is_reproducible(tmp_path):
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("name: c\n")
    first = _cluster_apps.chart_tgz(str(chart), "c")
    os.utime(chart / "Chart.yaml", (1, 1))
    assert _cluster_apps.chart_tgz(str(chart), "c") == first
    assert gzip.decompress(first)  # a gzip stream
