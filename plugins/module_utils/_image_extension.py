# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sealer's image interchange: the manifest annotations ``sealer.image.extension`` and
``sealer.image.container.images``, and the applications an image carries. Written by the image
builder, read by cluster_image and by the app launcher; the shapes are sealer's v1
(sealerio/sealer pkg/define/image/v1/sealer_image.go, pkg/define/application/v1/application.go,
build/kubefile/parser/utils.go; docs/image-interchange.md names each field)."""

from __future__ import annotations

import json
import os
import re

EXTENSION = "sealer.image.extension"
CONTAINER_IMAGES = "sealer.image.container.images"
KUBE_INSTALLER = "kube-installer"
APP_INSTALLER = "app-installer"
TYPES = (KUBE_INSTALLER, APP_INSTALLER)
SCHEMA_VERSION = "v1alpha1"
# sealer pkg/rootfs/v1/manager.go: applications live under application/apps/<name>/ of the rootfs
APP_ROOT = "application/apps"
KUBE, HELM, SHELL = "kube", "helm", "shell"
APP_TYPES = (KUBE, HELM, SHELL)
# sealer build/kubefile/command/command.go: CNI/CSI apps are also labelled
CNI_LABEL_PREFIX = "cluster.alpha.sealer.io/kube-cni-"
CSI_LABEL_PREFIX = "cluster.alpha.sealer.io/kube-csi-"
_APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class ExtensionError(ValueError):
    """An extension or container image list that is not sealer's shape; the message says where."""


def check_app_name(name, where):
    if not isinstance(name, str) or not _APP_NAME.match(name):
        raise ExtensionError("%s: app name %r is not a name (letters, digits, '.', '_', '-'; it becomes a directory)"
                             % (where, name))
    return name


def app_dir(name):
    """The app's directory, relative to the rootfs (sealer: application/apps/<name>/)."""
    return "%s/%s" % (APP_ROOT, check_app_name(name, "app"))


def application(name, app_type, files, env=None, cmds=None):
    """A sealer v1 Application: {"name", "type", "files", "version": "v1", "env", "cmds"} (empty
    fields are left out, as Go's omitempty does)."""
    app = {"name": check_app_name(name, "application"), "version": "v1"}
    for key, value in (("type", app_type), ("files", list(files or [])), ("env", dict(env or {})), ("cmds", list(cmds or []))):
        if value:
            app[key] = value
    return app


def _is_chart_dir(path):
    return all(os.path.exists(os.path.join(path, n)) for n in ("Chart.yaml", "values.yaml", "templates"))


def detect(sources):
    """(type, files) of an APP from its local sources, as sealer's getApplicationType and
    getApplicationFiles judge them: a Helm chart (a directory holding Chart.yaml, values.yaml and
    templates, or those three given as sources) is "helm"; only .yaml/.yml files is "kube"; only
    .sh files is "shell"; anything else is "" (sealer then wants APPCMDS). Files are relative to
    the app's directory."""
    marks = 0
    for src in sources:
        if os.path.isdir(src):
            if _is_chart_dir(src):
                return HELM, None  # sealer writes the app's name as its file; the builder does too
            names = [n for n in os.listdir(src) if not os.path.isdir(os.path.join(src, n))]
        else:
            names = [os.path.basename(src)]
        for n in names:
            marks |= {"Chart.yaml": 1, "values.yaml": 2, "templates": 4}.get(n, 0)
        if not os.path.isdir(src) and os.path.basename(src) == "templates":
            marks |= 4
    if marks == 7:
        return HELM, None
    kinds, files = set(), []
    for src in sources:
        if os.path.isdir(src):
            for root, dirs, names in os.walk(src):
                dirs.sort()
                for n in sorted(names):
                    kinds.add(_file_kind(n))
                    files.append(os.path.relpath(os.path.join(root, n), src))
        else:
            kinds.add(_file_kind(src))
            files.append(os.path.basename(src))
    if kinds == {SHELL}:
        return SHELL, files[:1]  # sealer runs the first file of a shell app only
    if kinds == {KUBE}:
        return KUBE, files
    return "", None


def _file_kind(name):
    ext = os.path.splitext(name)[1].lower()
    return SHELL if ext == ".sh" else KUBE if ext in (".yaml", ".yml") else "unknown"


def extension(image_type, applications, launch_apps, cmds, env, labels=None, builder="seal.cluster"):
    """The extension document, in sealer's ImageExtension JSON shape."""
    if image_type not in TYPES:
        raise ExtensionError("image type %r is not one of %s" % (image_type, ", ".join(TYPES)))
    doc = {"buildClient": {"sealerVersion": builder, "buildahVersion": ""}, "schemaVersion": SCHEMA_VERSION,
           "type": image_type, "launch": {}}
    if applications:
        doc["applications"] = list(applications)
    if labels:
        doc["labels"] = dict(labels)
    if env:
        doc["env"] = dict(env)
    if cmds:
        doc["launch"]["cmds"] = list(cmds)
    if launch_apps:
        doc["launch"]["app_names"] = list(launch_apps)
    return doc


def _strings(value, where):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExtensionError("%s must be a list of strings" % where)
    return value


def _string_map(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ExtensionError("%s must be an object of strings" % where)
    return dict(value)


def parse_extension(text, where="sealer.image.extension"):
    """The extension, checked: {"type", "applications": [{"name", "type", "files", "env", "cmds"}],
    "launch": {"cmds", "app_names"}, "env", "labels", "schemaVersion", "buildClient"}. A LAUNCH
    name must be one of the applications."""
    try:
        doc = json.loads(text) if isinstance(text, (str, bytes)) else text
    except ValueError as exc:
        raise ExtensionError("%s: not JSON: %s" % (where, exc)) from exc
    if not isinstance(doc, dict):
        raise ExtensionError("%s: not a JSON object" % where)
    image_type = doc.get("type") or ""
    if image_type and image_type not in TYPES:
        raise ExtensionError("%s: type %r is not one of %s" % (where, image_type, ", ".join(TYPES)))
    apps = []
    for i, app in enumerate(doc.get("applications") or []):
        at = "%s: applications[%d]" % (where, i)
        if not isinstance(app, dict):
            raise ExtensionError("%s: not an object" % at)
        app_type = app.get("type") or ""
        if app_type not in APP_TYPES + ("",):
            raise ExtensionError("%s: type %r is not one of %s" % (at, app_type, ", ".join(APP_TYPES)))
        # sealer joins each file to the app's directory (filepath.Join), and writes the files of a
        # directory source with a leading "/" (getApplicationFiles' TrimPrefix): relative here
        files = [f.lstrip("/") for f in _strings(app.get("files"), at + ".files")]
        for f in files:
            if not f or ".." in f.replace("\\", "/").split("/"):
                raise ExtensionError("%s.files: %r leaves the app's directory" % (at, f))
        cmds = _strings(app.get("cmds"), at + ".cmds")
        if not app_type and not cmds:
            raise ExtensionError("%s: app %s has no type and no cmds" % (at, app.get("name")))
        apps.append({"name": check_app_name(app.get("name"), at), "type": app_type, "files": files,
                     "version": app.get("version") or "v1", "env": _string_map(app.get("env"), at + ".env"),
                     "cmds": cmds})
    names = [a["name"] for a in apps]
    launch = doc.get("launch") or {}
    if not isinstance(launch, dict):
        raise ExtensionError("%s: launch must be an object" % where)
    app_names = _strings(launch.get("app_names"), where + ": launch.app_names")
    for name in app_names:
        if name not in names:
            raise ExtensionError("%s: launch.app_names names %r, which is not one of the applications (%s)"
                                 % (where, name, ", ".join(names) or "none"))
    return {"type": image_type or KUBE_INSTALLER, "schemaVersion": doc.get("schemaVersion") or "",
            "buildClient": doc.get("buildClient") or {}, "applications": apps,
            "launch": {"cmds": _strings(launch.get("cmds"), where + ": launch.cmds"), "app_names": app_names},
            "env": _string_map(doc.get("env"), where + ": env"), "labels": _string_map(doc.get("labels"), where + ": labels")}


def container_images(refs, arch, app_names=None, os_name="linux"):
    """sealer's ContainerImage list: [{"image", "appName"?, "platform": {...}}]."""
    out = []
    for ref in refs:
        entry = {"image": str(ref), "platform": {"architecture": arch, "os": os_name}}
        if app_names and app_names.get(str(ref)):
            entry["appName"] = app_names[str(ref)]
        out.append(entry)
    return out


def parse_container_images(text, where="sealer.image.container.images"):
    """[{"image", "app", "arch"}] from the annotation (None or "" is an empty list)."""
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ExtensionError("%s: not JSON: %s" % (where, exc)) from exc
    if not isinstance(doc, list):
        raise ExtensionError("%s: not a JSON list" % where)
    out = []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not entry["image"]:
            raise ExtensionError("%s[%d]: needs an image" % (where, i))
        platform = entry.get("platform") or {}
        out.append({"image": entry["image"], "app": entry.get("appName") or "",
                    "arch": platform.get("architecture", "") if isinstance(platform, dict) else ""})
    return out


def annotations(ext, images):
    """The manifest annotations that carry the extension and the container image list (canonical
    JSON, so the same build gives the same manifest digest)."""
    out = {EXTENSION: json.dumps(ext, sort_keys=True, separators=(",", ":"))}
    if images:
        out[CONTAINER_IMAGES] = json.dumps(images, sort_keys=True, separators=(",", ":"))
    return out


def checked_application(value, where="application"):
    """The launch settings of a Clusterfile's Application document, in the form
    plugin_utils/sealer_application.py gives them: {"name", "cmds": [...], "launchApps": [...] or
    None, "configs": [{"name", "env": {...}, "cmds": [...] or None}]}; None or {} is no document."""
    if not value:
        return {"name": "", "cmds": [], "launchApps": None, "configs": []}
    if not isinstance(value, dict):
        raise ExtensionError("%s must be an object" % where)
    launch_apps = value.get("launchApps")
    configs = []
    for i, config in enumerate(value.get("configs") or []):
        at = "%s: configs[%d]" % (where, i)
        if not isinstance(config, dict):
            raise ExtensionError("%s must be an object" % at)
        cmds = config.get("cmds")
        configs.append({"name": check_app_name(config.get("name"), at + ".name"), "env": _string_map(config.get("env"), at + ".env"),
                        "cmds": None if cmds is None else _strings(cmds, at + ".cmds")})
    return {"name": str(value.get("name") or ""), "cmds": _strings(value.get("cmds"), where + ": cmds"),
            "launchApps": None if launch_apps is None else _strings(launch_apps, where + ": launchApps"), "configs": configs}


def launch_steps(ext, launch_apps=None, application=None):
    """What a launch runs, in order, as sealer's application driver does
    (pkg/application/appdriver.go NewAppDriver, formatImageExtension, GetImageLaunchCmds), each
    step {"app", "type", "dir", "cwd", "files", "cmds", "env"}:

    - the Application's spec.cmds, else the image's CMDS: one step "cmds", each a command line run
      in the rootfs; they replace the apps;
    - else each launched app, in order: launch_apps (the role's override, which here also wins over
      the image's CMDS), else the Application's launchApps ("" entries skipped, as sealer does),
      else the image's LAUNCH. An app runs the Application config's launch.cmds (command lines, in
      the rootfs), else its APPCMDS (one command line: the array joined by spaces, in the app's
      directory, GetAppLaunchCmd), else what its type means. Its env: the image's ENV, its APPENV
      over it, the config's env over that (mapUtils.Merge keeps the first map's keys).

    Every launched name must be an application of the image."""
    app = checked_application(application)
    apps = {a["name"]: a for a in ext["applications"]}
    for name in [n for n in (app["launchApps"] or []) if n] + ([] if launch_apps is None else list(launch_apps)):
        if name not in apps:
            raise ExtensionError("app %r is not one of the image's applications (%s)" % (name, ", ".join(sorted(apps)) or "none"))
    global_cmds = app["cmds"] or ([] if launch_apps is not None else ext["launch"]["cmds"])
    if global_cmds:
        return [{"app": "", "type": "cmds", "dir": "", "cwd": "", "files": [], "cmds": list(global_cmds), "env": dict(ext["env"])}]
    if launch_apps is not None:
        names = list(launch_apps)
    elif app["launchApps"] is not None:
        names = [n for n in app["launchApps"] if n]
    else:
        names = ext["launch"]["app_names"]
    configs = {c["name"]: c for c in app["configs"]}
    steps = []
    for name in names:
        entry, config = apps[name], configs.get(name) or {"env": {}, "cmds": None}
        env = dict(ext["env"], **entry["env"])
        env.update(config["env"])
        step = {"app": name, "type": entry["type"], "dir": app_dir(name), "cwd": app_dir(name), "files": entry["files"],
                "cmds": [], "env": env}
        if config["cmds"]:
            step.update(type="cmds", cwd="", cmds=list(config["cmds"]))
        elif entry["cmds"]:
            step.update(type="cmds", cmds=[" ".join(entry["cmds"])])
        steps.append(step)
    return steps
