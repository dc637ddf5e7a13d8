"""The CRDs k3s registers at start, and custom resources checked against their CRD's structural
schema as kube-apiserver's apiextensions server does: types, enum, required, int32/int64 ranges,
x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields, additionalProperties, defaults
applied and unknown fields pruned (or refused with fieldValidation=Strict). CEL rules
(x-kubernetes-validations) are not evaluated.

k3s registers the helm controller's CRDs at server start unless --disable-helm-controller (k3s
pkg/server/context.go registerCrds/crds). Which HelmChart CRD depends on the release
(releases.py "helm-crd-schema"): before k3s#7310 it had no schema of its own (wrangler's
placeholder: spec preserved as it is, nothing checked or defaulted), from then on helm-controller's
structural schema. Both are vendored test data (tests/standin/testdata/crds/, citations in the
files); the build bundles them as JSON (build.py), and a run from the source tree reads the YAML."""
from __future__ import annotations

import copy
import json
import os
import pkgutil

from . import releases

HELM_CRD_STRUCTURAL = "helm.cattle.io_helmcharts"
HELM_CRD_UNSTRUCTURED = "helm.cattle.io_helmcharts-unstructured"
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
_RANGES = {"int32": (-(1 << 31), (1 << 31) - 1), "int64": (-(1 << 63), (1 << 63) - 1)}


def helm_crds(version: str) -> tuple[str, ...]:
    """The vendored HelmChart CRD the k3s release registers at start."""
    return (HELM_CRD_STRUCTURAL if releases.has("helm-crd-schema", version) else HELM_CRD_UNSTRUCTURED,)


def load(name: str) -> dict:
    """A vendored CRD: bundled JSON in the built stand-in, else the YAML of the source tree."""
    try:
        data = pkgutil.get_data(__package__, f"crds/{name}.json")
    except (OSError, ValueError):
        data = None
    if data:
        return json.loads(data)
    import yaml  # pylint: disable=import-outside-toplevel  (source tree only: the venv has it)

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "crds", name + ".yaml")
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def schema_of(crds: list[dict], group: str, version: str, plural: str) -> dict | None:
    for crd in crds:
        spec = crd.get("spec", {})
        if spec.get("group") != group or spec.get("names", {}).get("plural") != plural:
            continue
        for v in spec.get("versions") or []:
            if v.get("name") == version:
                return (v.get("schema") or {}).get("openAPIV3Schema")
    return None


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _type_ok(typ: str, value) -> bool:
    if typ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(typ, object))


def check(schema: dict, value, path: str, errors: list, unknown: list):
    """value with defaults applied and unknown fields pruned; errors and unknown collect
    (field, message) and field paths."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _type_ok("integer", value)):
            errors.append((path, f'Invalid value: "{_type_name(value)}": {path} in body must be of type integer,string: "{_type_name(value)}"'))
        return value
    typ = schema.get("type")
    if value is None:
        if not schema.get("nullable"):
            errors.append((path, f'Invalid value: "null": {path} in body must be of type {typ or "object"}: "null"'))
        return value
    if typ and not _type_ok(typ, value):
        errors.append((path, f'Invalid value: "{_type_name(value)}": {path} in body must be of type {typ}: "{_type_name(value)}"'))
        return value
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(e) for e in schema["enum"])
        errors.append((path, f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"))
    if typ == "integer" and schema.get("format") in _RANGES:
        lo, hi = _RANGES[schema["format"]]
        if not lo <= value <= hi:
            errors.append((path, f"Invalid value: {value}: {path} in body should be less than or equal to {hi}"))
    if isinstance(value, dict) and typ in ("object", None):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = {}
        for key, sub in value.items():
            where = f"{path}.{key}" if path else key
            if key in props:
                out[key] = check(props[key], sub, where, errors, unknown)
            elif isinstance(extra, dict):
                out[key] = check(extra, sub, where, errors, unknown)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = sub
            else:
                unknown.append(where)
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        for key in schema.get("required") or []:
            if key not in out:
                where = f"{path}.{key}" if path else key
                errors.append((where, "Required value"))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [check(schema["items"], item, f"{path}[{i}]", errors, unknown) for i, item in enumerate(value)]
    return value


def validate(schema: dict, obj: dict) -> tuple[dict, list, list]:
    """(the object defaulted and pruned, [(field, message)], [unknown field]); metadata, apiVersion
    and kind are kube-apiserver's own and kept as they are."""
    errors: list = []
    unknown: list = []
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    sub = dict(schema, properties={k: v for k, v in (schema.get("properties") or {}).items()
                                   if k not in ("metadata", "apiVersion", "kind")})
    out = check(sub, body, "", errors, unknown)
    out = dict(out) if isinstance(out, dict) else {}
    for k in ("apiVersion", "kind", "metadata"):
        if k in obj:
            out[k] = obj[k]
    return out, errors, unknown
