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
import yaml
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
    state = {"calls": [], "applied": {}, "charts": [], "live": {}, "deleted": []}

    def run_command(self, argv, cwd=None, environ_update=None, **kw):
        state["calls"].append((list(argv), cwd, dict(environ_update or {})))
        if "kubectl" in argv and "get" in argv:  # the objects a file names, namespaces filled in
            with open(argv[argv.index("-f") + 1], encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for d in docs:
                d.setdefault("metadata", {}).setdefault("namespace", "default")
            return 0, json.dumps(docs[0] if len(docs) == 1 else {"apiVersion": "v1", "kind": "List", "items": docs}), ""
        if "kubectl" in argv and "delete" in argv:
            with open(argv[argv.index("-f") + 1], encoding="utf-8") as f:
                items = json.load(f)["items"]
            state["deleted"].append(items)
            gone = [i for i in items if state["live"].pop((i["kind"], i["metadata"]["name"]), None) is not None]
            return 0, "".join('%s "%s" deleted\n' % (i["kind"].lower(), i["metadata"]["name"]) for i in gone), ""
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
                for d in (json.loads(text),) if path.endswith(".json") else yaml.safe_load_all(text):
                    if d:
                        state["live"][(d["kind"], d["metadata"]["name"])] = d
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


def _keep(run_main, host, out):
    """What the role does after cluster_apps: the record keeps its apps."""
    if not os.path.exists(host["record"]):
        run_main(cluster_record, dict(path=host["record"], cluster="c1", masters=["m1"]))
    run_main(cluster_record, dict(path=host["record"], apps=out["record_apps"]))


def test_appcmds_run_as_one_line_in_the_apps_directory_with_its_env(run_main, host):
    """sealer GetAppLaunchCmd: `cd <app root> && <cmds joined by spaces>`; the env exported is the
    host's, the image's ENV over it, the app's APPENV over that, the Application config's over all."""
    ext = dict(EXTENSION, applications=EXTENSION["applications"] + [
        {"name": "tool", "version": "v1", "cmds": ["echo", "$GREETING", "&&", "true"], "env": {"GREETING": "app"}}],
        launch={"app_names": ["tool"]})
    host_dir = os.path.join(host["rootfs"], "application/apps/tool")
    os.makedirs(host_dir)
    out = run_main(cluster_apps, _args(host, extension=ext))
    assert out["changed"] is True
    assert host["state"]["calls"] == [(["/bin/sh", "-c", "echo $GREETING && true"], host_dir, {"SEAL": "1", "GREETING": "app"})]
    app = {"name": "a", "launchApps": None, "cmds": [], "configs": [{"name": "tool", "env": {"GREETING": "cfg"}, "cmds": None}]}
    run_main(cluster_apps, _args(host, extension=ext, application=app))
    assert host["state"]["calls"][-1][2] == {"SEAL": "1", "GREETING": "cfg"}


def test_a_dropped_app_is_deleted_then_nothing_changes(run_main, host):
    """The record keeps the objects each kube and helm app applied; an app of the same image that is
    no longer launched has them deleted (kubectl delete -f, last applied first) and leaves the record,
    a shell app only leaves the record; apps of another image are left alone; a re-run changes nothing."""
    first = run_main(cluster_apps, _args(host))
    _keep(run_main, host, first)
    held = {a["name"]: a for a in rec.read(host["record"])["apps"]}
    assert held["web"]["objects"] == [{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "web"}]
    assert held["demo"]["objects"] == [{"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart", "namespace": "kube-system",
                                        "name": "demo"}]
    other = run_main(cluster_apps, _args(host, image="other:v1", extension=dict(EXTENSION, launch={"app_names": []})))
    assert other["changed"] is False and host["state"]["deleted"] == []  # another image's apps stay

    app = {"name": "mine", "launchApps": ["web"], "cmds": [], "configs": []}
    second = run_main(cluster_apps, _args(host, image="app:v2", application=app))
    assert second["changed"] is True
    removed = {a["name"]: a for a in second["apps"] if "removed" in a["msg"]}
    assert sorted(removed) == ["demo", "hello"] and removed["demo"]["changed"] and not removed["hello"]["changed"]
    assert "cannot be undone" in removed["hello"]["output"]
    assert host["state"]["deleted"] == [[{"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
                                          "metadata": {"name": "demo", "namespace": "kube-system"}}]]
    assert ("HelmChart", "demo") not in host["state"]["live"] and ("ConfigMap", "web") in host["state"]["live"]
    assert [a["name"] for a in second["record_apps"]] == ["web"]
    _keep(run_main, host, second)
    third = run_main(cluster_apps, _args(host, image="app:v2", application=app))
    assert third["changed"] is False and third["record_changed"] is False and len(host["state"]["deleted"]) == 1

    nothing = run_main(cluster_apps, _args(host, image="app:v3", application=dict(app, launchApps=[""])))
    assert nothing["changed"] is True and nothing["record_apps"] == []
    assert host["state"]["deleted"][-1] == [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "default"}}]


def test_an_object_a_kept_app_no_longer_applies_is_deleted(run_main, host):
    web = os.path.join(host["rootfs"], "application/apps/web/web.yaml")
    with open(web, "a", encoding="utf-8") as f:
        f.write("---\napiVersion: v1\nkind: Secret\nmetadata: {name: old, namespace: apps}\n")
    only_web = dict(EXTENSION, launch={"app_names": ["web"]})
    _keep(run_main, host, run_main(cluster_apps, _args(host, extension=only_web)))
    assert [o["name"] for o in rec.read(host["record"])["apps"][0]["objects"]] == ["web", "old"]
    with open(web, "w", encoding="utf-8") as f:
        f.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n")
    out = run_main(cluster_apps, _args(host, extension=only_web))
    assert out["changed"] is True
    assert host["state"]["deleted"] == [[{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "old", "namespace": "apps"}}]]
    assert [o["name"] for o in out["record_apps"][0]["objects"]] == ["web"]


def test_check_mode_deletes_with_a_server_dry_run(run_main, host):
    _keep(run_main, host, run_main(cluster_apps, _args(host)))
    app = {"name": "mine", "launchApps": ["web", "hello"], "cmds": [], "configs": []}
    out = run_main(cluster_apps, _args(host, application=app), check=True)
    deletes = [c[0] for c in host["state"]["calls"] if "delete" in c[0]]
    assert out["changed"] is True and deletes and all("--dry-run=server" in d for d in deletes)


def test_a_record_with_bad_objects_is_refused(tmp_path):
    with pytest.raises(rec.RecordError, match=r"apps\[0\].objects\[0\] needs apiVersion, kind and name"):
        rec.checked_apps([{"name": "a", "objects": [{"kind": "ConfigMap", "name": ""}]}], "record")
