# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Clusterfile's `kind: Application` document (sealer types/api/v2/application_types.go,
read by pkg/clusterfile/decoder.go, merged with the image by pkg/application/appdriver.go
NewAppDriver): checked where the Clusterfile is read, and turned into the launch settings
cluster_apps takes (module_utils/_image_extension.py checked_application).

    apiVersion: sealer.io/v2
    kind: Application
    metadata: {name: my-apps}
    spec:
      cmds: ["kubectl apply -f a.yaml"]     # replace everything the image launches
      launchApps: [web, demo]                # replace the image's LAUNCH ("" entries are skipped)
      configs:
        - name: web
          env: [NAMESPACE=web]               # over the app's APPENV and the image's ENV
          launch: {cmds: ["bash x.sh"]}      # replace the app's launch (command lines, in the rootfs)

The Cluster document's `spec.cmd` and `spec.appNames` override `cmds` and `launchApps` (sealer
cmd/sealer/cmd/utils/application.go ConstructApplication). `configs[].files` (sealer's app file
processors) is refused: not supported yet."""

from __future__ import annotations

from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext_mod
from ansible_collections.seal.cluster.plugins.module_utils import _names as names

API_VERSION = "sealer.io/v2"  # sealer types/api/v2/groupversion_info.go: Application is registered there
SPEC_KEYS = ("cmds", "launchApps", "configs")
CONFIG_KEYS = ("name", "env", "launch", "files")


class ApplicationError(ValueError):
    """The message starts with the field path, then ': '."""


def _strings(value, where, allow_empty_items=False):
    if not isinstance(value, list):
        raise ApplicationError("%s: must be a list of strings, not %s" % (where, type(value).__name__))
    for i, item in enumerate(value):
        if not isinstance(item, str) or (not item.strip() and not allow_empty_items):
            raise ApplicationError("%s[%d]: must be a non-empty string, not %r" % (where, i, item))
    return list(value)


def _env(value, where):
    """[K=V] into a map, later keys winning (sealer utils/strings ConvertStringSliceToMap); an entry
    without '=' is refused here (sealer skips it)."""
    out = {}
    for i, item in enumerate(_strings(value, where)):
        key, eq, val = item.partition("=")
        try:
            names.check_env_key(key)
            names.check_env_value(val)
        except names.InvalidName as exc:
            raise ApplicationError("%s[%d]: %s" % (where, i, exc.reason)) from None
        if not eq:
            raise ApplicationError("%s[%d]: env entries are KEY=VALUE strings, got %r" % (where, i, item))
        out[key] = val
    return out


def check(value):
    """One Application document's value, checked; its launch settings
    {name, cmds, launchApps, configs: [{name, env, cmds}]}. Errors name the field."""
    if value.get("apiVersion") != API_VERSION:
        raise ApplicationError("apiVersion: %r is not sealer's Application apiVersion (%s)" % (value.get("apiVersion"), API_VERSION))
    for key in value:
        if key not in ("apiVersion", "kind", "metadata", "spec"):
            raise ApplicationError("%s: unknown key (allowed: apiVersion, kind, metadata, spec)" % key)
    meta = value.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("metadata.name: an Application needs a name")
    spec = value.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise ApplicationError("spec: must be a mapping")
    for key in spec:
        if key not in SPEC_KEYS:
            raise ApplicationError("spec.%s: unknown key (allowed: %s)" % (key, ", ".join(SPEC_KEYS)))
    out = {"name": name, "cmds": [], "launchApps": None, "configs": []}
    if spec.get("cmds") is not None:
        out["cmds"] = _strings(spec["cmds"], "spec.cmds")
    if spec.get("launchApps") is not None:
        out["launchApps"] = _launch_apps(spec["launchApps"], "spec.launchApps")
    configs = spec.get("configs")
    if configs is None:
        configs = []
    if not isinstance(configs, list):
        raise ApplicationError("spec.configs: must be a list, not %s" % type(configs).__name__)
    seen = {}
    for i, config in enumerate(configs):
        at = "spec.configs[%d]" % i
        if not isinstance(config, dict):
            raise ApplicationError("%s: must be a mapping" % at)
        for key in config:
            if key not in CONFIG_KEYS:
                raise ApplicationError("%s.%s: unknown key (allowed: %s)" % (at, key, ", ".join(CONFIG_KEYS)))
        app = _app_name(config.get("name"), at + ".name")  # sealer: "application configs name could not be nil"
        if app in seen:
            raise ApplicationError("%s.name: app %s is configured twice (first at %s)" % (at, app, seen[app]))
        seen[app] = at
        if config.get("files"):
            raise ApplicationError("%s.files: sealer's app file processors (overwrite, merge) are not supported yet" % at)
        cmds = None
        launch = config.get("launch")
        if launch is not None:
            if not isinstance(launch, dict) or set(launch) - {"cmds"}:
                raise ApplicationError("%s.launch: must be a mapping with cmds only" % at)
            if launch.get("cmds") is None:  # sealer parseLaunchCmds: "failed to get launchCmds from application configs"
                raise ApplicationError("%s.launch.cmds: a launch needs cmds" % at)
            cmds = _strings(launch["cmds"], at + ".launch.cmds")
            if not cmds:
                raise ApplicationError("%s.launch.cmds: a launch needs at least one command" % at)
        out["configs"].append({"name": app, "env": _env(config.get("env") or [], at + ".env"), "cmds": cmds})
    return out


def _app_name(value, where):
    try:
        return ext_mod.check_app_name(value, where)
    except ext_mod.ExtensionError:
        raise ApplicationError("%s: %r is not an app name (letters, digits, '.', '_', '-')" % (where, value)) from None


def _launch_apps(value, where):
    """App names to launch, in order; an empty name is kept (sealer skips it)."""
    names = _strings(value, where, allow_empty_items=True)
    for i, app in enumerate(names):
        if app:
            _app_name(app, "%s[%d]" % (where, i))
    return names


def with_cluster_spec(application, spec):
    """The Application with the Cluster document's spec.cmd and spec.appNames over it (sealer
    ConstructApplication: cmds when not empty, appNames when given); None when neither says anything."""
    out = dict(application) if application else {"name": "", "cmds": [], "launchApps": None, "configs": []}
    if spec.get("cmd"):
        out["cmds"] = _strings(spec["cmd"], "spec.cmd")
    if spec.get("appNames") is not None:
        out["launchApps"] = _launch_apps(spec["appNames"], "spec.appNames")
    if not application and not out["cmds"] and out["launchApps"] is None:
        return None
    return out


def check_against(application, extension, where):
    """Every app the Application names is one of the image's (sealer NewAppDriver: "app name `x`
    is not found in [...]"); a config of an app that is not launched is ignored, as sealer does."""
    if not application:
        return
    apps = [a["name"] for a in extension.get("applications") or []]
    for i, app in enumerate(application.get("launchApps") or []):
        if app and app not in apps:
            raise ApplicationError("%s: launchApps[%d]: app %s is not found in the image's applications (%s)"
                                   % (where, i, app, ", ".join(apps) or "none"))
