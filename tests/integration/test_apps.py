"""Apps (issue 19, parts 4-5): an app-installer image built FROM the k3s test image with a YAML
app, a Helm chart and a shell app, run with run.yml on a running 1-master fleet cluster. The
applied objects are read back from the API with the Python kubernetes client: the YAML app's
objects, and the k3s HelmChart whose spec.chartContent is the chart packed in the image (the
stand-in validated it against k3s's HelmChart CRD). The shell app ran once on master0 with the
Clusterfile's env; the record names the image digest of each app; a second run changes nothing.
Then app:v2 (web, and an untyped app with APPCMDS and APPENV) runs with a Clusterfile whose
Application document launches only the new app, with env of its own: the dropped apps are
removed (their objects deleted from the API, the shell app off the record), the new one ran its
APPCMDS with the Application's env over its APPENV; a second run changes nothing.
One shared fleet (SEAL_APPS_FLEET)."""
import base64
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

import pytest

import build_image
from k3s_standin import crdschema
import fleet
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store

pytestmark = pytest.mark.fleet
NAME = fleet.name_from_env("SEAL_APPS_FLEET", "apps")
FILES = {
    "web.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: seal-apps}\n---\n"
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: seal-apps}\ndata: {greeting: hello}\n",
    "demo/Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    "demo/values.yaml": "replicas: 1\n",
    "demo/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\ndata: {r: \"{{ .Values.replicas }}\"}\n",
    "hello.sh": "#!/bin/bash\nset -eu\necho \"$GREETING $(pwd)\" >> /root/seal-app-hello\n",
}
KUBEFILE = ('FROM k3s:v1.25.3\nAPP web local://web.yaml\nAPP demo local://demo\nAPP hello local://hello.sh\n'
            'LAUNCH ["web", "demo", "hello"]\n')


# an app whose type is not detected (a .txt file): APPCMDS is its launch, joined into one command
# line run in its directory (sealer GetAppLaunchCmd); APPENV its own env
KUBEFILE_V2 = ('FROM k3s:v1.25.3\nAPP web local://web.yaml\nAPP tool local://tool.txt\n'
               'APPCMDS tool ["cat", "tool.txt", ">>", "/root/seal-app-tool", "&&", "echo", "\\"$TOOL_MSG $TOOL_OTHER\\"",'
               ' ">>", "/root/seal-app-tool"]\nAPPENV tool TOOL_MSG=from-appenv TOOL_OTHER=appenv\nLAUNCH ["web", "tool"]\n')
APPLICATION = """---
apiVersion: sealer.io/v2
kind: Application
metadata:
  name: seal-apps
spec:
  launchApps: [tool]
  configs:
    - name: tool
      env: [TOOL_MSG=from-clusterfile]
"""


def build_app(store, work, kubefile=KUBEFILE, tag="app:v1"):
    ctx = os.path.join(work, tag.replace(":", "-"))
    for rel, text in dict(FILES, **{"tool.txt": "tool-file\n"}).items():
        os.makedirs(os.path.dirname(os.path.join(ctx, rel)), exist_ok=True)
        with open(os.path.join(ctx, rel), "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(ctx, "Kubefile"), "w", encoding="utf-8") as f:
        f.write(kubefile)
    desc, _b = Builder(Store(store), ctx, cache_images=False, image_type="app-installer").build(tag)
    return desc


def ssh(state, ip, command):
    return subprocess.run(fleet.ssh_argv(ip, state["key"]) + [command], capture_output=True, text=True,
                          timeout=120, check=False).stdout


def play(state, env, *extra, clusterfile="Clusterfile"):
    return subprocess.run([os.path.join(fleet.ROOT, ".venv", "bin", "ansible-playbook"), "-i",
                           os.path.join(state["dir"], clusterfile), "playbooks/run.yml", *extra],
                          cwd=fleet.ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture(scope="module")
def cluster():
    work = tempfile.mkdtemp(prefix=f"seal-{NAME}-")
    state = fleet.up(NAME, masters=1, nodes=0, spec_extra={"env": ["GREETING=hi-from-env"]})
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
        env.update(SEAL_IMAGE_STORE=os.path.join(work, "store"), HOME=work, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_CONFIG=os.path.join(fleet.ROOT, "tests", "ansible.cfg"))
        build_image.build("v1.25.3+k3s1", env["SEAL_IMAGE_STORE"])
        installed = play(state, env)
        assert installed.returncode == 0, installed.stdout[-4000:] + installed.stderr[-2000:]
        desc = build_app(env["SEAL_IMAGE_STORE"], work)
        yield state, env, desc, work
    finally:
        fleet.down(NAME)
        shutil.rmtree(work, ignore_errors=True)


def api(work):
    from kubernetes import client, config  # pylint: disable=import-outside-toplevel

    return client, config.new_client_from_config(config_file=os.path.join(work, ".seal", NAME, "kubeconfig"))


def test_an_app_image_installs_its_apps_in_order_on_the_running_cluster(cluster):
    state, env, desc, work = cluster
    master = state["nodes"][0]["ip"]
    out = play(state, env, "-e", "image=app:v1")
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    # only the apps: no runtime verb ran, and the log names the image digest of each app
    for app in ("web", "demo", "hello"):
        assert f"app {app} " in out.stdout and desc["digest"] in out.stdout
    assert not re.search(r"TASK \[seal\.cluster\.runtime_k3s : ", out.stdout), "an app image ran a runtime verb"

    client, conn = api(work)
    cm = client.CoreV1Api(conn).read_namespaced_config_map("web", "seal-apps")
    assert cm.data == {"greeting": "hello"}
    chart = client.CustomObjectsApi(conn).get_namespaced_custom_object("helm.cattle.io", "v1", "kube-system", "helmcharts", "demo")
    # k3s v1.25.3 registered the HelmChart CRD without a schema of its own (k3s#7310; the stand-in
    # models it): nothing defaulted here. The object still has to be what helm-controller's schema
    # (every later release's) accepts, field for field.
    assert chart["spec"]["targetNamespace"] == "default" and "failurePolicy" not in chart["spec"]
    structural = crdschema.load(crdschema.HELM_CRD_STRUCTURAL)
    checked, errors, unknown = crdschema.validate(
        crdschema.schema_of([structural], "helm.cattle.io", "v1", "helmcharts"), chart)
    assert errors == [] and unknown == [] and checked["spec"]["failurePolicy"] == "reinstall"
    assert chart["metadata"]["annotations"]["seal.cluster/image-digest"] == desc["digest"]
    # the chart content is the chart packed in the image, file for file
    rootfs, _new = extract(Store(env["SEAL_IMAGE_STORE"]), desc)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(chart["spec"]["chartContent"])), mode="r:gz") as tar:
        packed = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    in_image = {}
    for base, _dirs, names in os.walk(os.path.join(rootfs, "application", "apps", "demo")):
        for n in names:
            path = os.path.join(base, n)
            with open(path, "rb") as f:
                in_image["demo/" + os.path.relpath(path, os.path.join(rootfs, "application", "apps", "demo"))] = f.read()
    assert packed == in_image and sorted(packed) == ["demo/Chart.yaml", "demo/templates/cm.yaml", "demo/values.yaml"]
    # the shell app ran on master0, in its directory, with the Clusterfile's env
    hex_digest = desc["digest"].split(":", 1)[1]
    assert ssh(state, master, "cat /root/seal-app-hello").splitlines() == [
        f"hi-from-env /var/lib/seal/{NAME}/apps/{hex_digest}/application/apps/hello"]
    record = json.loads(ssh(state, master, f"cat /var/lib/seal/{NAME}/applied.json"))
    assert [(a["name"], a["type"], a["digest"]) for a in record["apps"]] == [
        ("web", "kube", desc["digest"]), ("demo", "helm", desc["digest"]), ("hello", "shell", desc["digest"])]
    assert record["image"] == "docker.io/library/k3s:v1.25.3"  # the cluster's image stays the cluster image


def test_the_second_run_changes_nothing(cluster):
    state, env, _desc, _work = cluster
    master = state["nodes"][0]["ip"]
    again = play(state, env, "-e", "image=app:v1")
    assert again.returncode == 0, again.stdout[-4000:]
    changed = fleet.changed_by_host(again.stdout)
    assert changed.get(master) == 0 and all(n == 0 for n in changed.values()), changed
    assert len(ssh(state, master, "cat /root/seal-app-hello").splitlines()) == 1  # the shell app ran once


def with_application(state):
    """A copy of the fleet's Clusterfile with the Application document (the inventory plugin reads it)."""
    with open(os.path.join(state["dir"], "Clusterfile"), encoding="utf-8") as f:
        text = f.read()
    with open(os.path.join(state["dir"], "Clusterfile-apps"), "w", encoding="utf-8") as f:
        f.write(text.rstrip("\n") + "\n" + APPLICATION)
    return "Clusterfile-apps"


def test_the_application_launches_apps_and_dropped_apps_are_removed(cluster):
    state, env, _desc, work = cluster
    master = state["nodes"][0]["ip"]
    desc = build_app(env["SEAL_IMAGE_STORE"], work, KUBEFILE_V2, "app:v2")
    out = play(state, env, "-e", "image=app:v2", clusterfile=with_application(state))
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-2000:]
    assert re.search(r"app demo \(helm\) of image \S+@sha256:[0-9a-f]{64}:\s+removed", out.stdout)
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel

    client, conn = api(work)
    for read in (lambda: client.CoreV1Api(conn).read_namespaced_config_map("web", "seal-apps"),
                 lambda: client.CustomObjectsApi(conn).get_namespaced_custom_object(
                     "helm.cattle.io", "v1", "kube-system", "helmcharts", "demo")):
        with pytest.raises(ApiException) as gone:
            read()
        assert gone.value.status == 404
    # the untyped app ran its APPCMDS once, in its directory, the Application's env over its APPENV
    assert ssh(state, master, "cat /root/seal-app-tool").splitlines() == ["tool-file", "from-clusterfile appenv"]
    record = json.loads(ssh(state, master, f"cat /var/lib/seal/{NAME}/applied.json"))
    assert [(a["name"], a["type"], a["digest"]) for a in record["apps"]] == [("tool", "cmds", desc["digest"])]
    assert len(ssh(state, master, "cat /root/seal-app-hello").splitlines()) == 1  # a shell app is not undone


def test_the_run_after_a_removal_changes_nothing(cluster):
    state, env, _desc, _work = cluster
    master = state["nodes"][0]["ip"]
    again = play(state, env, "-e", "image=app:v2", clusterfile="Clusterfile-apps")
    assert again.returncode == 0, again.stdout[-4000:]
    changed = fleet.changed_by_host(again.stdout)
    assert changed.get(master) == 0 and all(n == 0 for n in changed.values()), changed
    assert len(ssh(state, master, "cat /root/seal-app-tool").splitlines()) == 2  # APPCMDS ran once
