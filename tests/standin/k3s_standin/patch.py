"""The three patch types kube-apiserver accepts on built-in kinds (JSON patch RFC 6902, JSON merge
patch RFC 7386, strategic merge patch) and the two it accepts on custom resources (no strategic
merge: 415, as apiextensions-apiserver answers).

Strategic merge follows k8s.io/apimachinery/pkg/util/strategicpatch for the lists kubectl
patches in ordinary manifests: lists with a patchMergeKey (containers, env, ports, volumes,
conditions, addresses, ...) merge by key; directives $patch (replace, delete, merge),
$setElementOrder/<list>, $deleteFromPrimitiveList/<list>, $retainKeys. Other lists are atomic
(replaced), as in the Go types (Node spec.taints has no merge strategy)."""
from __future__ import annotations

import copy


class PatchError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


# field name -> merge key of the object lists with patchStrategy "merge" in k8s.io/api
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "conditions": "type",
    "addresses": "type", "imagePullSecrets": "name", "hostAliases": "ip", "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey", "resourceClaims": "name", "images": None,
}
# primitive lists with patchStrategy "merge"
MERGE_PRIMITIVES = {"finalizers"}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _merge_key(field: str, items: list) -> str | None:
    if field == "ports":
        # container ports merge on containerPort, service ports on port (k8s.io/api core/v1 types.go)
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def strategic_merge(target, patch):
    """Apply a strategic merge patch to target (a dict) and return the result."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _clean({k: v for k, v in patch.items() if k != "$patch"})
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchError(400, "BadRequest", f"Unknown patch type: {directive}")
    out = dict(target) if isinstance(target, dict) else {}
    orders = {}
    for k, v in patch.items():
        if k == "$patch":
            continue
        if k.startswith("$setElementOrder/"):
            orders[k.split("/", 1)[1]] = v
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            out[field] = [x for x in out.get(field) or [] if x not in (v or [])]
            continue
        if k == "$retainKeys":
            continue
        if k.startswith("$"):
            raise PatchError(400, "BadRequest", f"unknown patch directive {k}")
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        elif isinstance(v, list) and k in MERGE_PRIMITIVES:
            have = list(out.get(k) or [])
            out[k] = have + [x for x in v if x not in have]
        elif isinstance(v, list) and _merge_key(k, v + list(out.get(k) or [])):
            out[k] = _merge_list(out.get(k) or [], v, _merge_key(k, v + list(out.get(k) or [])))
        else:
            out[k] = _clean(v)
    for field, order in orders.items():
        if isinstance(out.get(field), list):
            out[field] = _reorder(out[field], order, _merge_key(field, list(out[field]) + list(order)))
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        out = {k: v for k, v in out.items() if k in keep or k not in _retain_scope(target, patch)}
    return out


def _retain_scope(target, patch) -> set:
    return set(target or {}) | {k for k in patch if not k.startswith("$")}


def _clean(v):
    """A value put wholesale: drop the directives a client may have left in it."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return copy.deepcopy(v)


def _merge_list(have: list, patch: list, key: str) -> list:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_clean(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    out = [copy.deepcopy(i) for i in have]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(400, "BadRequest", f"map: {item!r} does not contain declared merge key: {key}")
        idx = next((n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(_clean(item))
        else:
            out[idx] = strategic_merge(out[idx], item)
    return out


def _reorder(items: list, order: list, key: str | None) -> list:
    def ident(i):
        return i.get(key) if key and isinstance(i, dict) else i
    pos = {ident(o) if isinstance(o, dict) or not key else o: n for n, o in enumerate(order)}
    ranked = sorted(enumerate(items), key=lambda p: (pos.get(ident(p[1]), len(pos) + p[0])))
    return [i for _, i in ranked]


def json_patch(doc, ops: list):
    if not isinstance(ops, list):
        raise PatchError(400, "BadRequest", "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(doc)
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        parent = doc
        try:
            for p in path[:-1]:
                parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(422, "Invalid", f"{op.get('op')} operation does not apply: doc is missing path: {op.get('path')}") from None
        last = path[-1] if path else None
        kind = op.get("op")
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise PatchError(422, "Invalid", f"replace operation does not apply: doc is missing key: {op['path']}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                if last not in parent:
                    raise PatchError(422, "Invalid", f"remove operation does not apply: doc is missing path: {op['path']}")
                del parent[last]
        elif kind == "test":
            cur = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if cur != op.get("value"):
                raise PatchError(422, "Invalid", f"testing value {op['path']} failed")
        else:
            raise PatchError(400, "BadRequest", f"Unexpected kind: {kind}")
    return doc


JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


def apply(obj: dict, body, ctype: str, custom: bool) -> dict:
    ctype = (ctype or "").split(";")[0].strip()
    if ctype == JSON_PATCH:
        return json_patch(obj, body)
    if ctype == MERGE:
        return merge_patch(obj, body)
    if ctype == STRATEGIC and not custom:
        return strategic_merge(obj, body)
    accepted = [JSON_PATCH, MERGE, APPLY] + ([] if custom else [STRATEGIC])
    raise PatchError(415, "UnsupportedMediaType",
                     f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}")
