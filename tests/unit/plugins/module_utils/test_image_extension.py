"""APP / LAUNCH / CMDS / CNI / CSI in the Kubefile, and sealer's image interchange annotations
(sealer.image.extension, sealer.image.container.images) written by the builder and read back."""
import json
import os

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext
from ansible_collections.seal.cluster.plugins.module_utils._image_build import BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe, extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store
from ansible_collections.seal.cluster.plugins.module_utils._kubefile import KubefileError, parse

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "apps")


def _data(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def test_kubefile_app_launch_cmds_cni_csi():
    ins = parse('FROM k3s:v1\nAPP web local://web.yaml local://svc.yaml\nCNI ["calico", "local://calico"]\n'
                'CSI local-path local://lp.yaml\nLAUNCH ["web", "calico"]\n')
    assert [i.keyword for i in ins] == ["FROM", "APP", "CNI", "CSI", "LAUNCH"]
    assert ins[1].args == {"name": "web", "sources": ["web.yaml", "svc.yaml"]}
    assert ins[2].args == {"name": "calico", "sources": ["calico"]}
    assert ins[4].args == ["web", "calico"]
    assert parse('FROM k3s:v1\nCMDS ["kubectl apply -f a.yaml", "bash b.sh"]\n')[1].args == ["kubectl apply -f a.yaml", "bash b.sh"]


@pytest.mark.parametrize("text, message", [
    ("FROM a\nAPP web\n", "Kubefile:2: APP needs a name and at least one local://<path> source"),
    ("FROM a\nAPP web https://x/y.yaml\n", "Kubefile:2: APP https://x/y.yaml: remote sources are not fetched"),
    ("FROM a\nAPP web web.yaml\n", "Kubefile:2: APP: source 'web.yaml' must be local://<path in the build context>"),
    ("FROM a\nAPP ../x local://a.yaml\n", "Kubefile:2: APP: '../x' is not an app name"),
    ("FROM a\nAPP w local://a.yaml\nAPP w local://b.yaml\n", "Kubefile:3: APP: app w is defined twice"),
    ("FROM a\nLAUNCH [\"w\"]\nLABEL a=b\n", "Kubefile:3: LABEL after LAUNCH/CMDS"),
    ("FROM a\nLAUNCH [\"w\"]\nCMDS [\"x\"]\n", "Kubefile:3: CMDS after LAUNCH/CMDS"),
    ("FROM a\nCMD [\"x\"]\nLAUNCH [\"w\"]\n", "Kubefile:3: CMD and LAUNCH are mutually exclusive"),
    ("FROM a\nCMDS kubectl apply -f x\n", "Kubefile:2: CMDS takes a JSON array of commands"),
    ("FROM a\nAPPCMDS web kubectl apply\n", 'Kubefile:2: APPCMDS value should be format: APPCMDS appName ["executable"'),
    ("FROM a\nAPPCMDS web []\n", "Kubefile:2: APPCMDS web needs a command"),
    ("FROM a\nAPPCMDS [\"x\"]\n", "Kubefile:2: APPCMDS needs an app name first"),
    ("FROM a\nAPPENV web NS\n", "Kubefile:2: APPENV web: 'NS' is not KEY=value"),
    ("FROM a\nAPPENV web\n", "Kubefile:2: APPENV web needs at least one KEY=value"),
    ("FROM a\nAPPENV web 1X=2\n", "Kubefile:2: APPENV web: '1X=2' is not KEY=value"),
    ("FROM a\nLAUNCH [\"w\"]\nAPPENV w A=1\n", "Kubefile:3: APPENV after LAUNCH/CMDS"),
])
def test_kubefile_app_errors_name_the_line(text, message):
    with pytest.raises(KubefileError) as err:
        parse(text)
    assert message in str(err.value)


def test_sealer_extension_round_trip():
    """A sealer-shaped extension reads into the checked form, and writing that form back gives
    sealer's JSON again, field for field."""
    sealer_doc = json.loads(_data("sealer-extension.json"))
    parsed = ext.parse_extension(_data("sealer-extension.json"))
    assert parsed["type"] == "app-installer"
    assert [(a["name"], a["type"], a["files"]) for a in parsed["applications"]] == [
        ("nginx", "kube", ["nginx.yaml", "svc.yaml"]), ("mysql", "helm", ["mysql"]), ("init", "shell", ["init.sh"])]
    assert parsed["launch"] == {"cmds": [], "app_names": ["nginx", "mysql"]}
    written = ext.extension(parsed["type"], [ext.application(a["name"], a["type"], a["files"], a["env"], a["cmds"])
                                             for a in parsed["applications"]],
                            parsed["launch"]["app_names"], parsed["launch"]["cmds"], parsed["env"], parsed["labels"],
                            builder="v0.9.3")
    written["buildClient"]["buildahVersion"] = "1.27.1"
    assert written == sealer_doc
    assert ext.parse_extension(ext.annotations(written, [])[ext.EXTENSION]) == parsed


def test_files_of_a_directory_source_as_sealer_writes_them():
    """sealer writes the files of an APP directory with a leading "/" (TrimPrefix of the source):
    they are relative to the app's directory, as its filepath.Join makes them."""
    doc = {"applications": [{"name": "a", "type": "kube", "files": ["/x.yaml", "/sub/y.yaml"]}]}
    assert ext.parse_extension(json.dumps(doc))["applications"][0]["files"] == ["x.yaml", "sub/y.yaml"]


def test_launch_steps_follow_sealers_app_driver():
    parsed = ext.parse_extension(_data("sealer-extension.json"))
    steps = ext.launch_steps(parsed)
    assert [(s["app"], s["type"], s["dir"]) for s in steps] == [
        ("nginx", "kube", "application/apps/nginx"), ("mysql", "helm", "application/apps/mysql")]
    assert steps[1]["env"] == {"NAMESPACE": "apps", "REPLICAS": "2"}  # app env over the image's env
    assert [s["type"] for s in ext.launch_steps(parsed, ["init"])] == ["cmds"]  # APPCMDS replace the type's command
    with pytest.raises(ext.ExtensionError, match="'nope' is not one of the image's applications"):
        ext.launch_steps(parsed, ["nope"])
    cnstack = ext.parse_extension(_data("sealer-cnstack-extension.json"))  # sealer's own test document
    assert ext.launch_steps(cnstack) == [{"app": "", "type": "cmds", "dir": "", "cwd": "", "files": [], "env": {}, "cmds": [
        "bash application/apps/cnstack-acos-0.0.5-beta/cnstack-acos-0.0.5-beta-install.sh"]}]


@pytest.mark.parametrize("doc, message", [
    ({"type": "vm-installer"}, "type 'vm-installer' is not one of"),
    ({"applications": [{"name": "a", "type": "kube", "files": ["../../etc/passwd"]}]}, "leaves the app's directory"),
    ({"applications": [{"name": "a", "type": "kube", "files": ["/"]}]}, "leaves the app's directory"),
    ({"applications": [{"name": "a/b", "type": "kube"}]}, "is not a name"),
    ({"applications": [{"name": "a"}]}, "app a has no type and no cmds"),
    ({"launch": {"app_names": ["ghost"]}}, "launch.app_names names 'ghost'"),
    ({"env": {"A": 1}}, "env must be an object of strings"),
])
def test_bad_extensions_are_refused(doc, message):
    with pytest.raises(ext.ExtensionError, match=message):
        ext.parse_extension(json.dumps(doc))


def test_container_images_round_trip():
    images = ext.container_images(["docker.io/library/nginx:1.25"], "amd64", {"docker.io/library/nginx:1.25": "web"})
    assert images == [{"image": "docker.io/library/nginx:1.25", "appName": "web", "platform": {"architecture": "amd64", "os": "linux"}}]
    text = ext.annotations({}, images)[ext.CONTAINER_IMAGES]
    assert ext.parse_container_images(text) == [{"image": "docker.io/library/nginx:1.25", "app": "web", "arch": "amd64"}]


def _app_context(path):
    os.makedirs(os.path.join(path, "chart", "templates"))
    files = {"web.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
             "hello.sh": "#!/bin/sh\necho hello\n",
             "chart/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
             "chart/values.yaml": "greeting: hi\n",
             "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\n"}
    for name, text in files.items():
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write(text)
    return path


def test_app_image_from_a_base_carries_both_apps(tmp_path):
    """FROM a base image: the base's applications are carried on (sealer's processFrom), the new
    apps land under application/apps/<name>/, and LAUNCH may name apps of either."""
    store = Store(str(tmp_path / "store"))
    base_ctx = _app_context(str(tmp_path / "base"))
    with open(os.path.join(base_ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write("FROM scratch\nAPP web local://web.yaml\n")
    Builder(store, base_ctx, cache_images=False).build("base:1")
    ctx = _app_context(str(tmp_path / "ctx"))
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM base:1\nENV NS=apps\nAPP demo local://chart\nCSI hello local://hello.sh\nLAUNCH ["web", "demo", "hello"]\n')
    desc, _b = Builder(store, ctx, cache_images=False, image_type="app-installer").build("app:1")
    info = describe(store, desc)
    assert info["type"] == "app-installer"
    assert [(a["name"], a["type"], a["files"]) for a in info["extension"]["applications"]] == [
        ("demo", "helm", ["demo"]), ("hello", "shell", ["hello.sh"]), ("web", "kube", ["web.yaml"])]
    assert info["extension"]["launch"]["app_names"] == ["web", "demo", "hello"]
    assert info["extension"]["env"] == {"NS": "apps"}
    assert info["labels"]["cluster.alpha.sealer.io/kube-csi-hello"] == "true"
    rootfs, _new = extract(store, desc)
    for rel in ("application/apps/web/web.yaml", "application/apps/demo/Chart.yaml",
                "application/apps/demo/templates/cm.yaml", "application/apps/hello/hello.sh"):
        assert os.path.isfile(os.path.join(rootfs, rel)), rel
    manifest = store.manifest(desc)
    assert json.loads(manifest["annotations"][ext.EXTENSION])["schemaVersion"] == "v1alpha1"
    again, _b = Builder(Store(str(tmp_path / "other")), base_ctx, cache_images=False).build("base:1")
    assert again["digest"] == store.resolve("base:1")["digest"]  # the annotations keep builds reproducible


def test_launch_of_an_unknown_app_and_untyped_app_are_refused(tmp_path):
    store = Store(str(tmp_path / "store"))
    ctx = _app_context(str(tmp_path / "ctx"))
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM scratch\nAPP web local://web.yaml\nLAUNCH ["web", "ghost"]\n')
    with pytest.raises(BuildError, match="Kubefile:3: LAUNCH names ghost, which no APP"):
        Builder(store, ctx, cache_images=False).build("x:1")
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM scratch\nAPP mixed local://web.yaml local://hello.sh\n')
    with pytest.raises(BuildError, match="Kubefile:2: APP mixed: the app's type is neither"):
        Builder(store, ctx, cache_images=False).build("x:1")


def test_kubefile_appcmds_and_appenv_as_sealer_parses_them():
    """sealer's processAppCmds (the app, then a JSON array) and processAppEnv (parseMaybeJSONToList:
    words or a JSON array, the app first)."""
    ins = parse('FROM k3s:v1\nAPP web local://web.yaml\nAPPCMDS web ["kubectl", "apply", "-f", "web.yaml"]\n'
                'APPENV web NS=apps REPLICAS=2\nAPPENV ["web", "GREETING=hello world"]\n')
    assert [i.keyword for i in ins] == ["FROM", "APP", "APPCMDS", "APPENV", "APPENV"]
    assert ins[2].args == {"name": "web", "cmds": ["kubectl", "apply", "-f", "web.yaml"]}
    assert ins[3].args == {"name": "web", "env": {"NS": "apps", "REPLICAS": "2"}}
    assert ins[4].args == {"name": "web", "env": {"GREETING": "hello world"}}


def test_appcmds_and_appenv_are_stored_in_the_extension_as_sealer_does(tmp_path):
    """APPCMDS / APPENV land on the app in sealer.image.extension (its "cmds" and "env",
    generateResult's SetCmds / SetEnv); an app whose type is not detected is allowed with APPCMDS
    only; a derived image's APPENV replaces a base app's env, and its base cmds stay otherwise."""
    store = Store(str(tmp_path / "store"))
    base_ctx = _app_context(str(tmp_path / "base"))
    with open(os.path.join(base_ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM scratch\nAPP web local://web.yaml\nAPPENV web OLD=1\nAPP mixed local://web.yaml local://hello.sh\n'
                'APPCMDS mixed ["bash", "hello.sh", "&&", "kubectl", "apply", "-f", "web.yaml"]\n')
    Builder(store, base_ctx, cache_images=False).build("base:1")
    base = {a["name"]: a for a in describe(store, store.resolve("base:1"))["extension"]["applications"]}
    assert base["mixed"] == {"name": "mixed", "type": "", "files": [], "version": "v1",
                             "cmds": ["bash", "hello.sh", "&&", "kubectl", "apply", "-f", "web.yaml"], "env": {}}
    assert base["web"]["env"] == {"OLD": "1"} and base["web"]["cmds"] == []
    manifest = store.manifest(store.resolve("base:1"))
    raw = {a["name"]: a for a in json.loads(manifest["annotations"][ext.EXTENSION])["applications"]}
    assert raw["mixed"] == {"name": "mixed", "version": "v1", "cmds": ["bash", "hello.sh", "&&", "kubectl", "apply", "-f", "web.yaml"]}
    assert raw["web"]["env"] == {"OLD": "1"}  # sealer's JSON: "env" and "cmds" on the Application

    ctx = _app_context(str(tmp_path / "ctx"))
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write('FROM base:1\nAPPENV web NEW=2\nAPPENV web MORE=3\nAPPCMDS web ["kubectl apply -f web.yaml"]\nLAUNCH ["web", "mixed"]\n')
    desc, _b = Builder(store, ctx, cache_images=False).build("app:1")
    apps = {a["name"]: a for a in describe(store, desc)["extension"]["applications"]}
    assert apps["web"]["env"] == {"NEW": "2", "MORE": "3"}  # replaced (SetEnv), the two APPENVs merged
    assert apps["web"]["cmds"] == ["kubectl apply -f web.yaml"]
    assert apps["mixed"]["cmds"][0] == "bash"  # the base's own cmds are kept
    steps = ext.launch_steps(describe(store, desc)["extension"])
    assert [(s["app"], s["type"], s["cwd"], s["cmds"]) for s in steps] == [
        ("web", "cmds", "application/apps/web", ["kubectl apply -f web.yaml"]),
        ("mixed", "cmds", "application/apps/mixed", ["bash hello.sh && kubectl apply -f web.yaml"])]  # joined, one line


@pytest.mark.parametrize("kubefile, message", [
    ('FROM scratch\nAPP mixed local://web.yaml local://hello.sh\nLAUNCH ["mixed"]\n',
     "Kubefile:2: APP mixed: the app's type is neither .* give it APPCMDS mixed"),
    ('FROM scratch\nAPPCMDS ghost ["x"]\n', "Kubefile:2: APPCMDS names app ghost, which no APP before it"),
    ('FROM scratch\nAPPENV ghost A=1\nAPP ghost local://web.yaml\n', "Kubefile:2: APPENV names app ghost"),
])
def test_appcmds_appenv_build_errors(tmp_path, kubefile, message):
    ctx = _app_context(str(tmp_path / "ctx"))
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write(kubefile)
    with pytest.raises(BuildError, match=message):
        Builder(Store(str(tmp_path / "store")), ctx, cache_images=False).build("x:1")


def test_application_document_over_the_image_as_sealers_app_driver():
    """NewAppDriver: spec.cmds replace everything; launchApps replace LAUNCH ("" skipped, unknown
    refused); a config's launch cmds run in the rootfs instead of the app; config env over APPENV
    over ENV; a config of an app that is not launched is ignored."""
    parsed = ext.parse_extension(_data("sealer-extension.json"))
    app = {"name": "a", "cmds": [], "launchApps": ["", "init", "mysql"],
           "configs": [{"name": "mysql", "env": {"REPLICAS": "3", "X": "y"}, "cmds": None},
                       {"name": "init", "env": {}, "cmds": ["bash application/apps/init/init.sh --slow"]},
                       {"name": "nginx", "env": {"NOT": "used"}, "cmds": ["never"]}]}
    steps = ext.launch_steps(parsed, application=app)
    assert [(s["app"], s["type"], s["cwd"], s["cmds"]) for s in steps] == [
        ("init", "cmds", "", ["bash application/apps/init/init.sh --slow"]),
        ("mysql", "helm", "application/apps/mysql", [])]
    assert steps[1]["env"] == {"NAMESPACE": "apps", "REPLICAS": "3", "X": "y"}
    only_cmds = ext.launch_steps(parsed, application=dict(app, cmds=["kubectl get ns"]))
    assert [(s["app"], s["cmds"], s["cwd"]) for s in only_cmds] == [("", ["kubectl get ns"], "")]
    assert ext.launch_steps(parsed, application=dict(app, launchApps=[""], configs=[])) == []  # skip launching
    with pytest.raises(ext.ExtensionError, match="'ghost' is not one of the image's applications"):
        ext.launch_steps(parsed, application=dict(app, launchApps=["ghost"]))
    with pytest.raises(ext.ExtensionError, match="configs\\[0\\].env must be an object of strings"):
        ext.checked_application(dict(app, configs=[{"name": "x", "env": {"A": 1}}]))
