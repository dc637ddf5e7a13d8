# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documents of `kind: Config` (sealer types/api/v1/config_types.go, sealos
pkg/types/v1beta1/config.go): checked where the Clusterfile is read, and turned on the controller
into the files they make in the rootfs.

The content is computed from the cluster image's own file (the controller's rootfs cache, the
same content every host got by digest), never from a host's copy, so applying twice gives the
same file and a new image's file is merged again. Strategies:

- ``merge`` (sealer pkg/config/config.go getMergeConfigData; sealos the same): the data is a
  YAML mapping merged deeply into every document of the YAML file (``---`` separated); the data's
  values override, maps merge, an empty value (null, "", 0, false, [], {}) does not override
  (mergo.Merge WithOverride, which sealer calls);
- ``overwrite`` (sealer: any strategy but merge) and ``override`` (sealos): the data is the file;
- ``insert`` / ``append`` (sealos pkg/config/config.go getAppendOrInsertConfigData): the data,
  a newline and the file, or the file, a newline and the data.

A file the image does not have gets the data as it is, whatever the strategy (sealer WriteFiles:
a missing file is written with the data). Several Configs on one path apply in document order,
each to the previous one's result (sealer writes them one after the other)."""

from __future__ import annotations

import yaml

from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe_archive

STRATEGIES = ("merge", "overwrite", "override", "insert", "append")
API_VERSIONS = ("sealer.io/v1", "sealer.aliyun.com/v1alpha1", "sealer.io/v2", "apps.sealos.io/v1beta1")
SPEC_KEYS = {"path": str, "data": str, "strategy": str, "process": str, "appName": str, "match": str}
RESERVED = (".seal", ".seal-digest")
MAX_FILE = 4 << 20


class ConfigError(ValueError):
    pass


def check_path(path, where="spec.path"):
    """A path inside the rootfs: relative, no '..', not seal.cluster's own files. Returns it normalised."""
    if not isinstance(path, str) or not path.strip():
        raise ConfigError("%s: a path inside the rootfs is required" % where)
    try:
        parts = safe_archive.member_parts(path, "rootfs", where)
    except safe_archive.ArchiveError as exc:
        raise ConfigError("%s: %s (a Config writes inside the rootfs only)" % (where, exc)) from None
    if not parts:
        raise ConfigError("%s: %r names the rootfs itself, not a file in it" % (where, path))
    if parts[0] in RESERVED:
        raise ConfigError("%s: %r is seal.cluster's own state in the rootfs; refused" % (where, path))
    return "/".join(parts)


def check(value):
    """Validate one Config document's value (a dict); return its normalised form
    {name, path, data, strategy}. Errors name the field."""
    meta = value.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError("metadata.name: a Config needs a name")
    if value.get("apiVersion") not in API_VERSIONS:
        raise ConfigError("apiVersion: %r is not a Config apiVersion (%s)" % (value.get("apiVersion"), ", ".join(API_VERSIONS)))
    spec = value.get("spec")
    if not isinstance(spec, dict):
        raise ConfigError("spec: a Config needs spec.path and spec.data")
    for key, item in spec.items():
        if key not in SPEC_KEYS:
            raise ConfigError("spec.%s: unknown key (allowed: %s)" % (key, ", ".join(sorted(SPEC_KEYS))))
        if item is not None and not isinstance(item, SPEC_KEYS[key]):
            raise ConfigError("spec.%s: must be a string, not %s" % (key, type(item).__name__))
    for key, why in (("process", "sealer's processors (value|toJson|toBase64|toSecret) are not supported"),
                     ("appName", "paths relative to an app (issue 19 part 4) are not supported yet"),
                     ("match", "sealos' match (an image name) is not supported")):
        if spec.get(key):
            raise ConfigError("spec.%s: %s" % (key, why))
    strategy = spec.get("strategy") or "overwrite"
    if strategy not in STRATEGIES:
        raise ConfigError("spec.strategy: %r is not one of %s" % (strategy, ", ".join(STRATEGIES)))
    path = check_path(spec.get("path"))
    data = spec.get("data")
    if data is None:
        raise ConfigError("spec.data: a Config needs data")
    if strategy == "merge":
        _mapping(data, "spec.data")
    return {"name": name, "path": path, "data": data, "strategy": strategy}


def _mapping(text, where):
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("%s: not YAML (strategy merge): %s" % (where, getattr(exc, "problem", exc))) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("%s: strategy merge needs a YAML mapping, not %s" % (where, type(value).__name__))
    return value


def _empty(value):
    return value is None or value is False or (not isinstance(value, bool) and value in ("", 0, 0.0)) or value in ([], {})


def merge_maps(dest, src):
    """mergo.Merge(&dest, &src, WithOverride) for YAML mappings: maps merge deeply, every other
    non-empty src value replaces dest's."""
    out = dict(dest)
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_maps(out[key], value)
        elif not _empty(value) or key not in out:
            out[key] = value
    return out


def apply(strategy, data, content, label="config"):
    """The file after one Config: content is the current text or None (absent)."""
    if content is None or strategy in ("overwrite", "override"):
        return data
    if strategy == "insert":
        return data + "\n" + content
    if strategy == "append":
        return content + "\n" + data
    src = _mapping(data, label + " spec.data")
    docs = []
    for i, raw in enumerate(content.split("---\n")):
        try:
            dest = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError("%s: the file's document %d is not YAML, strategy merge needs YAML: %s"
                              % (label, i + 1, getattr(exc, "problem", exc))) from None
        if dest is None:
            dest = {}
        if not isinstance(dest, dict):
            raise ConfigError("%s: the file's document %d is not a YAML mapping; strategy merge needs one" % (label, i + 1))
        docs.append(yaml.safe_dump(merge_maps(dest, src), default_flow_style=False, sort_keys=True))
    return "---\n".join(docs)


def files(configs, image_rootfs):
    """[{path, content, configs}] the Configs make, from the image's files under image_rootfs
    (the controller's cache). configs: check()ed values, in document order."""
    out = {}
    for config in configs:
        path = config["path"]
        if path not in out:
            try:
                raw = safe_archive.read_regular(image_rootfs, path, MAX_FILE, "cluster image rootfs") if image_rootfs else None
            except safe_archive.ArchiveError as exc:
                raise ConfigError("Config %s: spec.path: %s" % (config["name"], exc)) from None
            try:
                base = None if raw is None else raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError("Config %s: spec.path: the image's %s is not UTF-8 text" % (config["name"], path)) from None
            out[path] = {"path": path, "content": base, "configs": []}
        label = "Config %s (%s)" % (config["name"], path)
        out[path]["content"] = apply(config["strategy"], config["data"], out[path]["content"], label)
        out[path]["configs"].append(config["name"])
    return list(out.values())
