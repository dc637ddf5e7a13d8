"""The HTTPS listener on 6443: k3s's supervisor endpoints and a kube-apiserver that real clients
(kubectl, the Python kubernetes client) can use: discovery (kinds.py), list / get / watch /
create / update / patch / delete of every kind discovery names, kept in the datastore under
kube-apiserver's /registry/... keys, Tables for `kubectl get`, Status errors; with the Node
lifecycle controller (Ready/NotReady from lease renewals), the k3s node-password secrets, a tiny
pod model (the packaged components, enough for drain) and pods/eviction (policy/v1).

Not modelled: controllers other than the node lifecycle one (a Deployment gets no ReplicaSet or
pods; an applied Pod stays Pending), server-side apply, aggregated discovery, OpenAPI (404, which
kubectl accepts by skipping client-side validation), admission beyond name/namespace checks.

Sources: K3S-REFERENCE.md §3 (endpoints, auth, labels), Kubernetes API conventions (Status
objects, lists, watch events, patch types), k8s.io/kubectl pkg/drain (eviction discovery)."""
from __future__ import annotations

import base64
import calendar
import copy
import hashlib
import hmac
import http.server
import json
import re
import secrets
import socketserver
import ssl
import threading
import time
import urllib.parse
import uuid

from . import crdschema, kinds, util
from .patch import PatchError, json_patch, merge_patch, strategic_merge  # noqa: F401  (re-exported)
from . import patch as patches
from .store import Conflict, StoreUnavailable

NODES = "/registry/minions/"
LEASES = "/registry/leases/kube-node-lease/"
SECRETS = "/registry/secrets/kube-system/"
PODS = "/registry/pods/"

UNREACHABLE = "node.kubernetes.io/unreachable"


def status_obj(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")


def conflict(res, name: str) -> ApiError:
    details = {"name": name, "kind": res.plural, **({"group": res.group} if res.group else {})}
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again", details)


def success(res, name: str, obj: dict) -> dict:
    details = {"name": name, "kind": res.plural, "uid": obj.get("metadata", {}).get("uid", "")}
    if res.group:
        details["group"] = res.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def unconditional_update(res) -> bool:
    """Whether PUT without metadata.resourceVersion is allowed (AllowUnconditionalUpdate)."""
    return not res.custom and res.plural not in ("customresourcedefinitions",)


def defaults(res, obj: dict) -> None:
    """The defaulting and create-time status kube-apiserver applies to the kinds clients apply."""
    meta = obj["metadata"]
    if res.group in ("apps", "batch", "policy", "networking.k8s.io", "apiextensions.k8s.io") or res.custom:
        meta["generation"] = 1
    if res.plural == "namespaces" and not res.group:
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif res.plural == "deployments":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        obj.pop("status", None)
    elif res.plural == "customresourcedefinitions":
        spec = obj.get("spec", {})
        want = f"{spec.get('names', {}).get('plural')}.{spec.get('group')}"
        if meta["name"] != want:
            raise invalid(res, meta["name"], "metadata.name", meta["name"], 'must be spec.names.plural+"."+spec.group')
        now = util.now_rfc3339()
        obj["status"] = {"acceptedNames": copy.deepcopy(spec.get("names", {})), "storedVersions": [
            v["name"] for v in spec.get("versions") or [] if v.get("storage")],
            "conditions": [{"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                            "message": "no conflicts found", "lastTransitionTime": now},
                           {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                            "message": "the initial names have been accepted", "lastTransitionTime": now}]}
    elif res.status and res.plural not in ("nodes", "pods"):
        obj.pop("status", None)
    if res.plural == "pods" and not res.group:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def not_found_res(res, name: str) -> ApiError:
    details = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details)


def invalid(res, name: str, field: str, value, detail: str) -> ApiError:
    shown = json.dumps(value) if isinstance(value, str) else value
    details = {"name": name, "kind": res.kind, "causes": [{"reason": "FieldValueInvalid", "message": f"Invalid value: {shown}: {detail}", "field": field}]}
    if res.group:
        details["group"] = res.group
    return ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: {field}: Invalid value: {shown}: {detail}', details)


DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
                 "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
             "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
# kinds whose names must be DNS-1123 labels (k8s.io/apimachinery ValidateNamespaceName, ValidateServiceName)
LABEL_NAMED = {("", "namespaces"), ("", "services")}


def validate_meta(res, obj: dict) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if (res.group, res.plural) in LABEL_NAMED:
        ok, msg, limit = DNS1123_LABEL.match(name) and len(name) <= 63, LABEL_MSG, 63
    else:
        ok, msg, limit = DNS1123_SUBDOMAIN.match(name) and len(name) <= 253, SUBDOMAIN_MSG, 253
    if len(name) > limit:
        msg = f"must be no more than {limit} characters"
    if not ok:
        raise invalid(res, name, "metadata.name", name, msg)
    for k, v in (meta.get("labels") or {}).items():
        prefix, _, key = k.rpartition("/")
        if not key or len(key) > 63 or not QUALIFIED_NAME.match(key) or (prefix and not DNS1123_SUBDOMAIN.match(prefix)):
            raise invalid(res, name, "metadata.labels", k, "name part must consist of alphanumeric characters, '-', '_' or "
                          "'.', and must start and end with an alphanumeric character")
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            raise invalid(res, name, "metadata.labels", v, "a valid label must be an empty string or consist of "
                          "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
    for k, v in (meta.get("annotations") or {}).items():
        if not isinstance(v, str):
            raise ApiError(400, "BadRequest", f"json: cannot unmarshal {type(v).__name__} into Go struct field "
                           f"ObjectMeta.metadata.annotations of type string")
    if res.plural == "nodes":
        for t in obj.get("spec", {}).get("taints") or []:
            if t.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
                raise invalid(res, name, "spec.taints[0].effect", t.get("effect"),
                              'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"')


def _selector_terms(selector: str) -> list[str]:
    """Split a label selector on the commas outside parentheses."""
    terms, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    terms.append(cur.strip())
    return [t for t in terms if t]


def match_labels(labels: dict, selector: str) -> bool:
    if not selector:
        return True
    for term in _selector_terms(selector):
        m = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            if (m.group(2) == "in") != (labels.get(m.group(1)) in values):
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = term.split("==", 1) if "==" in term else term.split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


# field selectors each kind supports (kube-apiserver's *ToSelectableFields): others are a 400
FIELDS = {
    ("", "pods"): {"spec.nodeName": ("spec", "nodeName"), "spec.restartPolicy": ("spec", "restartPolicy"),
                   "spec.schedulerName": ("spec", "schedulerName"), "spec.serviceAccountName": ("spec", "serviceAccountName"),
                   "spec.hostNetwork": ("spec", "hostNetwork"), "status.phase": ("status", "phase"),
                   "status.podIP": ("status", "podIP"), "status.nominatedNodeName": ("status", "nominatedNodeName")},
    ("", "nodes"): {"spec.unschedulable": ("spec", "unschedulable")},
    ("", "namespaces"): {"status.phase": ("status", "phase")},
    ("", "secrets"): {"type": ("type",)},
    ("", "events"): {"involvedObject.kind": ("involvedObject", "kind"), "involvedObject.name": ("involvedObject", "name"),
                     "involvedObject.namespace": ("involvedObject", "namespace"), "reason": ("reason",), "type": ("type",)},
}


def _field_value(obj: dict, path: tuple) -> str:
    cur = obj
    for p in path:
        cur = cur.get(p) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


def match_fields(res, obj: dict, selector: str) -> bool:
    for term in [t for t in (selector or "").split(",") if t]:
        if "!=" in term:
            k, v, neg = *term.split("!=", 1), True
        else:
            k, _, v = term.partition("=")
            v, neg = v.lstrip("="), False
        if k == "metadata.name":
            have = obj["metadata"].get("name", "")
        elif k == "metadata.namespace" and res.namespaced:
            have = obj["metadata"].get("namespace", "")
        elif k in FIELDS.get((res.group, res.plural), {}):
            have = _field_value(obj, FIELDS[(res.group, res.plural)][k])
        else:
            raise ApiError(400, "BadRequest", f'Unable to find "{res.group}/{res.version}, Resource={res.plural}" '
                           f'that match label selector "", field selector "{selector}": field label not supported: {k}')
        if (have == v) == neg:
            return False
    return True


def node_ready(node: dict) -> bool:
    for c in node.get("status", {}).get("conditions", []):
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def scrypt_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=2 ** 14, r=8, p=1, dklen=32)
    return "$scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(h).decode()


def scrypt_verify(password: str, stored: str) -> bool:
    try:
        _, _, salt, _ = stored.split("$")
        return hmac.compare_digest(scrypt_hash(password, base64.b64decode(salt)), stored)
    except ValueError:
        return False


class Cluster:
    """State operations on the shared datastore."""

    def __init__(self, store, ctx):
        self.store = store
        self.ctx = ctx  # the server (node name, etcd, options)
        self.grace = util.node_grace()

    # generic objects --------------------------------------------------------------------
    def _get(self, key: str):
        got = self.store.get(key)
        if not got:
            return None, None
        obj = json.loads(got[0])
        obj.setdefault("metadata", {})["resourceVersion"] = str(got[1])
        return obj, got[1]

    def _list(self, prefix: str) -> list[dict]:
        out = []
        for _k, v, rev in self.store.list(prefix):
            obj = json.loads(v)
            obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
            out.append(obj)
        return out

    @staticmethod
    def _dump(obj: dict) -> bytes:
        obj = copy.deepcopy(obj)
        obj.get("metadata", {}).pop("resourceVersion", None)
        return json.dumps(obj, sort_keys=True).encode()

    def _mutate(self, key: str, kind: str, name: str, fn, retries: int = 10):
        for _ in range(retries):
            obj, rev = self._get(key)
            if obj is None:
                raise not_found(kind, name)
            new = fn(copy.deepcopy(obj))
            if new is None or self._dump(new) == self._dump(obj):
                return obj
            try:
                nrev = self.store.update(key, self._dump(new), rev)
            except Conflict:
                continue
            new["metadata"]["resourceVersion"] = str(nrev)
            return new
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the object has been modified; please apply your changes to the latest version and try again')

    # every kind (kinds.py) --------------------------------------------------------------
    def seed_crds(self, disabled_helm: bool, version: str = util.VERSION) -> None:
        """The CRDs k3s registers at start (k3s pkg/server/context.go registerCrds): the helm
        controller's HelmChart, unless --disable-helm-controller, as the release registers it."""
        if disabled_helm:
            return
        for name in crdschema.helm_crds(version):
            crd = crdschema.load(name)
            crd["metadata"].update(uid=str(uuid.uuid5(uuid.NAMESPACE_DNS, crd["metadata"]["name"])),
                                   creationTimestamp=util.now_rfc3339(), generation=1)
            names = crd["spec"]["names"]
            crd["status"] = {"acceptedNames": {k: names[k] for k in ("kind", "listKind", "plural", "singular") if k in names},
                             "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                                             "lastTransitionTime": util.now_rfc3339()}],
                             "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")]}
            try:
                self.store.create(kinds.CRDS + crd["metadata"]["name"], self._dump(crd))
            except Conflict:
                pass

    def crd_schema(self, res):
        return crdschema.schema_of(self._list(kinds.CRDS), res.group, res.version, res.plural) if res.custom else None

    def crd_unknown_fields(self, res, body) -> list[str]:
        """fieldValidation=Strict: the fields of body the kind's CRD schema does not define."""
        schema = self.crd_schema(res)
        if not schema or not isinstance(body, dict):
            return []
        return [f'unknown field "{f}"' for f in crdschema.validate(schema, body)[2]]

    def custom_checked(self, res, obj: dict) -> dict:
        """A custom resource checked against its CRD's schema: defaulted and pruned, or refused
        with 422 Invalid naming each field, as kube-apiserver's apiextensions server does."""
        schema = self.crd_schema(res)
        if not schema:
            return obj
        out, errors, _unknown = crdschema.validate(schema, obj)
        if errors:
            name = obj.get("metadata", {}).get("name", "")
            causes = [{"reason": "FieldValueInvalid", "field": f, "message": m} for f, m in errors]
            raise ApiError(422, "Invalid", f'{res.kind}.{res.group} "{name}" is invalid: '
                           + ", ".join(f"{f}: {m}" for f, m in errors),
                           {"name": name, "group": res.group, "kind": res.kind, "causes": causes})
        return out

    def registry(self) -> kinds.Registry:
        return kinds.Registry(self._list(kinds.CRDS))

    def revision(self) -> str:
        return str(self.store.revision())

    def list_objects(self, res, ns: str | None, labels: str = "", fields: str = "") -> list[dict]:
        objs = self._list(res.key(ns) if ns or not res.namespaced else res.prefix)
        return [o for o in objs if match_labels(o["metadata"].get("labels") or {}, labels) and match_fields(res, o, fields)]

    def get_object(self, res, ns: str | None, name: str) -> dict:
        obj, _ = self._get(res.key(ns, name))
        if obj is None:
            raise not_found_res(res, name)
        return obj

    def _check_namespace(self, res, ns: str | None) -> None:
        if not res.namespaced:
            return
        nsres = kinds.BUILTIN[2]
        got, _ = self._get(nsres.key(None, ns))
        if got is None:
            raise not_found_res(nsres, ns)
        if got.get("metadata", {}).get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f'{res.qualified} "{ns}" is forbidden: unable to create new content in namespace '
                           f'{ns} because it is being terminated', {"kind": res.plural})

    def _check_type(self, res, obj: dict) -> None:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type " + res.kind + ")")
        if obj.get("apiVersion") not in (None, res.api_version) or obj.get("kind") not in (None, res.kind):
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                           f"expected API version ({res.api_version})" if obj.get("apiVersion") != res.api_version else
                           f"the kind in the data ({obj.get('kind')}) does not match the expected kind ({res.kind})")

    def create_object(self, res, ns: str | None, obj: dict, dry: bool = False) -> dict:
        self._check_type(res, obj)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
        if not meta.get("name"):
            raise ApiError(422, "Invalid", f'{res.kind} "" is invalid: metadata.name: Required value: name or generateName is required',
                           {"kind": res.kind, "causes": [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                           "message": "Required value: name or generateName is required"}]})
        validate_meta(res, obj)
        self._check_namespace(res, ns)
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = util.now_rfc3339()
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        defaults(res, obj)
        obj = self.custom_checked(res, obj)
        if dry:
            return obj
        try:
            rev = self.store.create(res.key(ns, meta["name"]), self._dump(obj))
        except Conflict:
            details = {"name": meta["name"], "kind": res.plural, **({"group": res.group} if res.group else {})}
            raise ApiError(409, "AlreadyExists", f'{res.qualified} "{meta["name"]}" already exists', details) from None
        meta["resourceVersion"] = str(rev)
        return obj

    def _write(self, res, ns, name: str, old: dict, rev: int, new: dict, sub: str | None, dry: bool) -> dict:
        """An update of old (at rev) to new through the main resource or a subresource."""
        self._check_type(res, new)
        new = copy.deepcopy(new)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace", ns) != ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        want = meta.get("resourceVersion")
        if want and str(want) != str(rev):
            raise conflict(res, name)
        # fields no update changes (ObjectMeta strategy), then the subresource split (status / spec)
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
            else:
                meta.pop(k, None)
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = ns
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        if sub == "status":
            new = {**copy.deepcopy(old), "status": new.get("status"), "metadata": meta}
            if new["status"] is None:
                new.pop("status")
        elif res.status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        if res.plural == "nodes" and sub != "status" and old.get("spec", {}).get("podCIDR"):
            for k in ("podCIDR", "podCIDRs", "providerID"):
                if k in old.get("spec", {}) and new.get("spec", {}).get(k) != old["spec"][k]:
                    raise invalid(res, name, "spec." + k, new.get("spec", {}).get(k), "field is immutable once set")
        validate_meta(res, new)
        new = self.custom_checked(res, new)
        meta = new["metadata"]
        if "generation" in old["metadata"] and {k: v for k, v in new.items() if k not in ("metadata", "status")} != \
                {k: v for k, v in old.items() if k not in ("metadata", "status")}:
            meta["generation"] = old["metadata"]["generation"] + 1
        if self._dump(new) == self._dump(old):
            return old
        if dry:
            return new
        gone = meta.get("deletionTimestamp") and not meta.get("finalizers")
        try:
            if gone:
                self.store.delete(res.key(ns, name), rev)
                self._cascade(res, ns, name, new)
                return new
            nrev = self.store.update(res.key(ns, name), self._dump(new), rev)
        except Conflict:
            raise conflict(res, name) from None
        meta["resourceVersion"] = str(nrev)
        return new

    def update_object(self, res, ns, name: str, obj: dict, sub: str | None = None, dry: bool = False) -> dict:
        old, rev = self._get(res.key(ns, name))
        if old is None:
            raise not_found_res(res, name)
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type " + res.kind + ")")
        if not (obj.get("metadata") or {}).get("resourceVersion") and not unconditional_update(res):
            raise invalid(res, name, "metadata.resourceVersion", 0, "must be specified for an update")
        return self._write(res, ns, name, old, rev, obj, sub, dry)

    def patch_object(self, res, ns, name: str, body, ctype: str, sub: str | None = None, dry: bool = False) -> dict:
        for _ in range(10):
            old, rev = self._get(res.key(ns, name))
            if old is None:
                raise not_found_res(res, name)
            try:
                new = patches.apply(old, body, ctype, res.custom)
            except PatchError as exc:
                raise ApiError(exc.code, exc.reason, exc.message) from None
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "the patch produced no object")
            if str((new.get("metadata") or {}).get("resourceVersion")) == str(rev):
                new["metadata"].pop("resourceVersion")
            elif (new.get("metadata") or {}).get("resourceVersion"):
                raise conflict(res, name)
            try:
                return self._write(res, ns, name, old, rev, new, sub, dry)
            except ApiError as exc:
                if exc.reason != "Conflict" or (body if isinstance(body, dict) else {}).get("metadata", {}).get("resourceVersion"):
                    raise
        raise conflict(res, name)

    def delete_object(self, res, ns, name: str, dry: bool = False) -> dict:
        if res.plural == "namespaces" and name in SYSTEM_NAMESPACES:
            raise ApiError(403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                           {"name": name, "kind": "namespaces"})
        for _ in range(10):
            old, rev = self._get(res.key(ns, name))
            if old is None:
                raise not_found_res(res, name)
            if dry:
                return old
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = util.now_rfc3339()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                try:
                    new["metadata"]["resourceVersion"] = str(self.store.update(res.key(ns, name), self._dump(new), rev))
                except Conflict:
                    continue
                return new
            try:
                self.store.delete(res.key(ns, name), rev)
            except Conflict:
                continue
            self._cascade(res, ns, name, old)
            return success(res, name, old)
        raise conflict(res, name)

    def _cascade(self, res, ns, name: str, obj: dict) -> None:
        """What the namespace controller and the CRD finalizer do: content goes with its container."""
        if res.plural == "namespaces" and not res.group:
            for r in self.registry().all:
                if r.namespaced:
                    for k, _v, _r in self.store.list(r.key(name)):
                        self.store.delete(k)
        elif res.plural == "nodes" and not res.group:
            self._node_gone(name)
        elif res.plural == "customresourcedefinitions":
            spec = obj.get("spec", {})
            prefix = f"/registry/{spec.get('group')}/{spec.get('names', {}).get('plural')}/"
            for k, _v, _r in self.store.list(prefix):
                self.store.delete(k)

    def ensure_namespaces(self) -> None:
        """The namespaces kube-apiserver creates at start (system namespaces controller)."""
        nsres = kinds.BUILTIN[2]
        for name in ("default",) + SYSTEM_NAMESPACES:
            if self.store.get(nsres.key(None, name)) is None:
                try:
                    self.create_object(nsres, None, {"metadata": {"name": name}})
                except ApiError:
                    pass

    # nodes ------------------------------------------------------------------------------
    def list_nodes(self, selector: str = "", field: str = "") -> list[dict]:
        return self.list_objects(kinds.BUILTIN[0], None, selector, field)

    def get_node(self, name: str) -> dict:
        return self.get_object(kinds.BUILTIN[0], None, name)

    def create_node(self, node: dict, dry: bool = False) -> dict:
        node = self.create_object(kinds.BUILTIN[0], None, node, dry)
        if not dry:
            self.ensure_daemonset_pods()
            self.schedule_pending()
        return node

    def patch_node(self, name: str, patch, ptype: str = "merge", sub: str | None = None) -> dict:
        ctype = {"json": patches.JSON_PATCH, "merge": patches.MERGE, "strategic": patches.STRATEGIC}.get(ptype, ptype)
        return self.patch_object(kinds.BUILTIN[0], None, name, patch, ctype, sub)

    def replace_node(self, name: str, node: dict, sub: str | None = None) -> dict:
        return self.update_object(kinds.BUILTIN[0], None, name, node, sub)

    def delete_node(self, name: str) -> dict:
        obj, rev = self._get(NODES + name)
        if obj is None:
            raise not_found("nodes", name)
        if obj["metadata"].get("finalizers"):
            # finalizers hold the object: it is marked and stays until the last one is removed
            # (on embedded etcd k3s's managed-etcd-controller holds every Node: etcd.py)
            def mark(o):
                o["metadata"].setdefault("deletionTimestamp", util.now_rfc3339())
                o["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                return o
            return self._mutate(NODES + name, "nodes", name, mark)
        self._finish_delete(name)
        return obj

    def _finish_delete(self, name: str) -> None:
        self.store.delete(NODES + name)
        self._node_gone(name)

    def _node_gone(self, name: str) -> None:
        """What goes with a Node (its lease, its password secret, its pods)."""
        self.store.delete(LEASES + name)
        # k3s: the node-password secret goes with the node (ownerReference / node controller)
        self.store.delete(SECRETS + name.lower() + ".node-password.k3s")
        # pod GC: pods bound to the node are deleted; controllers re-create theirs elsewhere
        for pod in self._list(PODS):
            if pod.get("spec", {}).get("nodeName") == name:
                self._delete_pod(pod, reschedule=True)

    # leases / lifecycle ----------------------------------------------------------------
    def renew_lease(self, name: str) -> None:
        lease = {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                          "renewTime": _micro_time(time.time())}}
        self.store.put(LEASES + name, json.dumps(lease).encode())

    def controller_tick(self) -> None:
        """Node lifecycle controller: Ready=Unknown + unreachable taints after the grace period."""
        leases = {}
        for _k, v, _r in self.store.list(LEASES):
            lease = json.loads(v)
            leases[lease["metadata"]["name"]] = _parse_micro_time(lease["spec"].get("renewTime"))
        now = time.time()
        for node in self._list(NODES):
            name = node["metadata"]["name"]
            renew = leases.get(name, 0)
            if now - renew > self.grace and node_ready(node) is True:
                self._mutate(NODES + name, "nodes", name, _mark_unknown)
                util.info(f"Node {name} is NotReady: kubelet stopped posting node status")
            elif node_ready(node) and any(t.get("key") == UNREACHABLE for t in node.get("spec", {}).get("taints") or []):
                self._mutate(NODES + name, "nodes", name, _clear_unreachable)
        self.ensure_daemonset_pods()
        self.schedule_pending()

    # node passwords -----------------------------------------------------------------------
    def check_node_password(self, name: str, password: str) -> bool:
        key = SECRETS + name.lower() + ".node-password.k3s"
        obj, _ = self._get(key)
        if obj is None:
            secret = {"kind": "Secret", "apiVersion": "v1", "type": "k3s.cattle.io/node-password", "immutable": True,
                      "metadata": {"name": name.lower() + ".node-password.k3s", "namespace": "kube-system"},
                      "data": {"hash": base64.b64encode(scrypt_hash(password).encode()).decode()}}
            try:
                self.store.create(key, self._dump(secret))
            except Conflict:
                return self.check_node_password(name, password)
            return True
        return scrypt_verify(password, base64.b64decode(obj["data"]["hash"]).decode())

    # pods (the packaged components k3s deploys, enough for drain) --------------------------
    def list_pods(self, namespace: str | None = None, field: str = "", selector: str = "") -> list[dict]:
        pods = self._list(PODS + (namespace + "/" if namespace else ""))
        for term in [t for t in field.split(",") if t]:
            k, _, v = term.partition("=")
            v = v.lstrip("=")
            if k == "spec.nodeName":
                pods = [p for p in pods if p.get("spec", {}).get("nodeName", "") == v]
            elif k == "metadata.name":
                pods = [p for p in pods if p["metadata"]["name"] == v]
        return [p for p in pods if match_labels(p["metadata"].get("labels", {}), selector)]

    def seed_pods(self, disabled: set[str]) -> None:
        """Once per cluster: the Deployments k3s's packaged manifests create (one replica each)."""
        self.ensure_namespaces()
        if self.store.get("/registry/standin/pods-seeded"):
            return
        self.store.put("/registry/standin/pods-seeded", b"1")
        comps = [("coredns", "coredns", {"k8s-app": "kube-dns"}, False),
                 ("local-storage", "local-path-provisioner", {"app": "local-path-provisioner"}, False),
                 ("metrics-server", "metrics-server", {"k8s-app": "metrics-server"}, True),
                 ("traefik", "traefik", {"app.kubernetes.io/name": "traefik"}, False)]
        for comp, name, labels, emptydir in comps:
            if comp in disabled:
                continue
            rs = f"{name}-{secrets.token_hex(5)[:10]}"
            self._put_controller("deployments", "Deployment", name, labels, None)
            self._put_controller("replicasets", "ReplicaSet", rs, labels, name)
            self._create_pod(name, labels, "ReplicaSet", rs, emptydir, None)
        svclb = "traefik" not in disabled and "servicelb" not in disabled
        if svclb:
            # kubectl drain looks the DaemonSet of a daemon pod up (pkg/drain/filters.go daemonSetFilter)
            self._put_controller("daemonsets", "DaemonSet", "svclb-traefik", {"app": "svclb-traefik"}, None)
        self.store.put("/registry/standin/daemonsets", json.dumps({"svclb-traefik": svclb}).encode())

    def _put_controller(self, plural: str, kind: str, name: str, labels: dict, deployment: str | None) -> None:
        """The workload objects behind the packaged components' pods (no controller runs them)."""
        meta = {"name": name, "namespace": "kube-system", "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "labels": dict(labels), "creationTimestamp": util.now_rfc3339(), "generation": 1}
        if deployment:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "controller": True,
                                        "blockOwnerDeletion": True, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, deployment))}]
        spec = {"selector": {"matchLabels": dict(labels)},
                "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"name": name, "image": "standin"}]}}}
        status = {"observedGeneration": 1}
        if kind != "DaemonSet":
            spec["replicas"] = 1
            status.update(replicas=1, readyReplicas=1, availableReplicas=1, updatedReplicas=1)
        obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec, "status": status}
        try:
            self.store.create(f"/registry/{plural}/kube-system/{name}", self._dump(obj))
        except Conflict:
            pass

    def _create_pod(self, base: str, labels: dict, owner_kind: str, owner: str, emptydir: bool, node: str | None):
        suffix = secrets.token_hex(3)[:5] if owner_kind == "DaemonSet" else secrets.token_hex(5)[:5]
        name = f"{owner}-{suffix}"
        pod = {"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": "kube-system", "uid": str(uuid.uuid4()),
                            "labels": dict(labels), "creationTimestamp": util.now_rfc3339(),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                                 "controller": True, "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, owner))}]},
               "spec": {"containers": [{"name": base, "image": f"rancher/mirrored-{base}:standin"}],
                        "volumes": [{"name": "tmp-dir", "emptyDir": {}}] if emptydir else []},
               "status": {"phase": "Pending"}}
        if node:
            pod["spec"]["nodeName"] = node
            pod["status"]["phase"] = "Running"
        self.store.put(PODS + f"kube-system/{name}", self._dump(pod))
        return pod

    def _delete_pod(self, pod: dict, reschedule: bool) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        self.store.delete(PODS + f"{ns}/{name}")
        owner = (pod["metadata"].get("ownerReferences") or [{}])[0]
        if reschedule and owner.get("kind") == "ReplicaSet":
            vols = pod["spec"].get("volumes") or []
            self._create_pod(pod["spec"]["containers"][0]["name"], pod["metadata"].get("labels", {}), "ReplicaSet",
                             owner["name"], bool(vols), None)

    def evict_pod(self, ns: str, name: str) -> None:
        obj, _ = self._get(PODS + f"{ns}/{name}")
        if obj is None:
            raise not_found("pods", name)
        if obj.get("status", {}).get("phase") == "Running" and not obj["metadata"].get("deletionTimestamp"):
            self._check_disruption_budget(obj)
        self._delete_pod(obj, reschedule=True)
        self.schedule_pending()

    def _check_disruption_budget(self, pod: dict) -> None:
        """policy/v1 eviction (pkg/registry/core/pod/storage/eviction.go): one matching
        PodDisruptionBudget at most; 429 when it allows no disruption. disruptionsAllowed is
        computed here as the disruption controller would: healthy (Running) matching pods minus
        the desired healthy (minAvailable, or expected minus maxUnavailable; % of expected)."""
        ns, labels = pod["metadata"]["namespace"], pod["metadata"].get("labels") or {}
        pdbres = next(r for r in kinds.BUILTIN if r.plural == "poddisruptionbudgets")
        pdbs = [b for b in self.list_objects(pdbres, ns) if _selects(b.get("spec", {}).get("selector"), labels)]
        if not pdbs:
            return
        if len(pdbs) > 1:
            raise ApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction "
                           "subresource does not support.")
        spec, pdb = pdbs[0].get("spec", {}), pdbs[0]["metadata"]["name"]
        pods = [p for p in self._list(PODS + ns + "/") if _selects(spec.get("selector"), p["metadata"].get("labels") or {})]
        expected = len(pods)
        healthy = sum(1 for p in pods if p.get("status", {}).get("phase") == "Running")

        def count(v):
            return -(-expected * int(str(v)[:-1]) // 100) if str(v).endswith("%") else int(v)
        if spec.get("minAvailable") is not None:
            desired = count(spec["minAvailable"])
        elif spec.get("maxUnavailable") is not None:
            desired = expected - count(spec["maxUnavailable"])
        else:
            desired = expected
        if healthy - desired < 1:
            raise ApiError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                           {"causes": [{"reason": "DisruptionBudget", "message": f"The disruption budget {pdb} needs "
                                        f"{desired} healthy pods and has {healthy} currently"}]})

    def delete_pod(self, ns: str, name: str) -> dict:
        obj, _ = self._get(PODS + f"{ns}/{name}")
        if obj is None:
            raise not_found("pods", name)
        self._delete_pod(obj, reschedule=True)
        return obj

    def schedule_pending(self) -> None:
        nodes = [n for n in self._list(NODES) if node_ready(n) and not n.get("spec", {}).get("unschedulable")
                 and not any(t.get("effect") in ("NoSchedule", "NoExecute") for t in n.get("spec", {}).get("taints") or [])]
        if not nodes:
            return
        for pod in self._list(PODS):
            if not pod["spec"].get("nodeName") and _owner_kind(pod) == "ReplicaSet":
                node = sorted(nodes, key=lambda n: n["metadata"]["name"])[hash(pod["metadata"]["name"]) % len(nodes)]
                pod["spec"]["nodeName"] = node["metadata"]["name"]
                pod["status"]["phase"] = "Running"
                self.store.put(PODS + f"{pod['metadata']['namespace']}/{pod['metadata']['name']}", self._dump(pod))

    def ensure_daemonset_pods(self) -> None:
        raw = self.store.get("/registry/standin/daemonsets")
        if not raw or not json.loads(raw[0]).get("svclb-traefik"):
            return
        have = {p["spec"].get("nodeName") for p in self._list(PODS + "kube-system/")
                if _owner_kind(p) == "DaemonSet"}
        for node in self._list(NODES):
            name = node["metadata"]["name"]
            if name not in have:
                self._create_pod("lb-tcp-80", {"app": "svclb-traefik"}, "DaemonSet", "svclb-traefik", False, name)


def _selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels, matchExpressions); an empty one selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) or \
                (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _owner_kind(pod: dict) -> str:
    return ((pod["metadata"].get("ownerReferences") or [{}])[0]).get("kind", "")


def _micro_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)


def _parse_micro_time(text) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    try:
        base, _, frac = (text or "").rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
    except ValueError:
        return 0.0


def _clear_unreachable(node: dict) -> dict:
    spec = node.setdefault("spec", {})
    spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE]
    if not spec["taints"]:
        spec.pop("taints")
    return node


def _mark_unknown(node: dict) -> dict:
    now = util.now_rfc3339()
    conds = node.setdefault("status", {}).setdefault("conditions", [])
    for c in conds:
        if c.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
    taints = node.setdefault("spec", {}).setdefault("taints", [])
    for effect in ("NoSchedule", "NoExecute"):
        if not any(t.get("key") == UNREACHABLE and t.get("effect") == effect for t in taints):
            taints.append({"key": UNREACHABLE, "effect": effect, "timeAdded": now} if effect == "NoExecute"
                          else {"key": UNREACHABLE, "effect": effect})
    return node


def mark_ready(node: dict) -> dict:
    now = util.now_rfc3339()
    conds = node.setdefault("status", {}).setdefault("conditions", [])
    wanted = {
        "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
    }
    for typ, (st, reason, msg) in wanted.items():
        c = next((c for c in conds if c.get("type") == typ), None)
        if c is None:
            c = {"type": typ}
            conds.append(c)
        if c.get("status") != st:
            c["lastTransitionTime"] = now
        c.update(status=st, reason=reason, message=msg, lastHeartbeatTime=now)
    spec = node.setdefault("spec", {})
    spec["taints"] = [t for t in spec.get("taints") or [] if t.get("key") != UNREACHABLE]
    if not spec["taints"]:
        spec.pop("taints")
    return node


# ---------------------------------------------------------------------------------------------
class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, ssl_ctx, app):
        self.ssl_ctx = ssl_ctx
        self.app = app
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(conn, client_address, self)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k3s-standin"

    def log_message(self, fmt, *args):  # quiet; errors are logged explicitly
        util.debug("http: " + fmt % args)

    # helpers -------------------------------------------------------------------------------
    def _send(self, code: int, body, ctype: str = "application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _status(self, code: int, reason: str, message: str, details=None):
        self._send(code, status_obj(code, reason, message, details))

    def _body(self):
        raw = self._raw
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid JSON in request body") from None

    def _basic(self):
        h = self.headers.get("Authorization", "")
        if h.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                return user, pw
            except (ValueError, UnicodeDecodeError):
                return None
        return None

    def _client_cert(self):
        try:
            cert = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not cert:
            return None
        cn, orgs = "", []
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
                elif k == "organizationName":
                    orgs.append(v)
        return cn, orgs

    # routing -------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self):
        # the whole body is read before routing: an answer that does not need it (401, 403, 404)
        # must not leave it in the connection, where it would be read as the next request
        n = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(n) if n > 0 else b""
        app = self.server.app
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if path == "/cacerts":
                return self._send(200, app.server_ca, "text/plain")
            if path == "/ping":
                return self._send(200, "pong", "text/plain")
            if path.startswith("/v1-k3s/") or path == "/db/info":
                return self._supervisor(app, path, q)
            return self._kube(app, path, q)
        except ApiError as exc:
            self._status(exc.code, exc.reason, exc.message, exc.details)
        except StoreUnavailable as exc:
            util.error(f"datastore unavailable: {exc}")
            self._status(500, "InternalError", f"Internal error occurred: etcdserver: request timed out ({exc})")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # supervisor (k3s) ----------------------------------------------------------------------
    def _supervisor(self, app, path, q):
        creds = self._basic()
        cert = self._client_cert()
        user = app.check_password(*creds) if creds else None
        groups = set()
        if user == "server":
            groups = {"k3s:server", "k3s:agent"}
        elif user == "node":
            groups = {"k3s:agent"}
        if cert and "system:nodes" in cert[1]:
            groups.add("system:nodes")
        if cert and "system:masters" in cert[1]:
            groups.add("k3s:server")
        server_paths = ("/v1-k3s/server-bootstrap", "/v1-k3s/token", "/v1-k3s/encrypt/status",
                        "/v1-k3s/encrypt/config", "/v1-k3s/cert/cacerts", "/db/info")
        if path in server_paths:
            if "k3s:server" not in groups:
                return self._status(401, "Unauthorized", "Unauthorized")
        elif not groups:
            return self._status(401, "Unauthorized", "Unauthorized")
        if path == "/v1-k3s/server-bootstrap":
            if app.datastore_kind != "etcd":
                util.info(f"Received HTTP bootstrap request from {self.client_address[0]}, but embedded etcd is not enabled.")
                return self._send(400, "etcd disabled", "text/plain")
            return self._send(200, app.bootstrap_for_joiner())
        if path == "/db/info":
            if app.datastore_kind != "etcd":
                return self._send(400, "etcd disabled", "text/plain")
            return self._send(200, {"members": app.etcd_members()})
        if path == "/v1-k3s/readyz":
            ok, _ = app.ready()
            return self._send(200 if ok else 503, "ok" if ok else "runtime core not ready", "text/plain")
        if path == "/v1-k3s/apiservers":
            return self._send(200, app.apiservers())
        if path == "/v1-k3s/config":
            return self._send(200, app.agent_config())
        if path in ("/v1-k3s/client-kubelet.crt", "/v1-k3s/serving-kubelet.crt"):
            name = self.headers.get("K3s-Node-Name", "")
            pw = self.headers.get("K3s-Node-Password", "")
            if not name or not pw:
                return self._status(400, "BadRequest", "missing node name or password header")
            if not app.cluster.check_node_password(name, pw):
                util.error(f"Node password validation failed for '{name}', using passwd file 'nodepassword'")
                return self._status(403, "Forbidden", "unable to verify password for node " + name)
            crt, key = app.issue_kubelet_cert(name, self.headers.get("K3s-Node-IP", ""))
            return self._send(200, crt + key, "text/plain")
        if path in ("/v1-k3s/server-ca.crt", "/v1-k3s/client-ca.crt"):
            return self._send(200, app.server_ca if "server" in path else app.client_ca, "text/plain")
        return self._status(404, "NotFound", "the server could not find the requested resource")

    # kube-apiserver ------------------------------------------------------------------------
    def _kube(self, app, path, q):
        cert = self._client_cert()
        if not cert:
            return self._status(401, "Unauthorized", "Unauthorized")
        cn, orgs = cert
        admin = "system:masters" in orgs
        node_name = cn[len("system:node:"):] if cn.startswith("system:node:") and "system:nodes" in orgs else None
        if path in ("/readyz", "/healthz", "/livez"):
            ok, checks = app.ready(path != "/livez")
            if "verbose" in q:
                body = "".join(f"[{'+' if c_ok else '-'}]{c} {'ok' if c_ok else 'failed: reason withheld'}\n" for c, c_ok in checks)
                body += f"{path[1:]} check {'passed' if ok else 'failed'}\n"
            else:
                body = "ok" if ok else "".join(f"[-]{c} failed: reason withheld\n" for c, c_ok in checks if not c_ok) + f"{path[1:]} check failed"
            return self._send(200 if ok else 500, body, "text/plain; charset=utf-8")
        if path == "/version":
            return self._send(200, app.version_info())
        if not app.datastore_ok():
            raise StoreUnavailable("datastore health check failed")
        parts = path.strip("/").split("/")
        reg = app.cluster.registry()
        # discovery (legacy documents; kubectl falls back to them from aggregated discovery)
        if path == "/api":
            return self._send(200, reg.api_versions())
        if path == "/apis":
            return self._send(200, reg.group_list())
        if parts == ["api", "v1"] or (parts[0] == "apis" and len(parts) == 3):
            doc = reg.resource_list(*(("", "v1") if parts[0] == "api" else (parts[1], parts[2])))
            return self._send(200, doc) if doc else self._not_found()
        if parts[0] == "apis" and len(parts) == 2:
            doc = reg.group(parts[1])
            return self._send(200, doc) if doc else self._not_found()
        if parts[:2] == ["openapi", "v3"]:
            doc = (kinds.openapi_index(reg) if len(parts) == 2 else
                   kinds.openapi_doc(reg, *(("", parts[3]) if parts[2] == "api" and len(parts) == 4 else
                                            (parts[3], parts[4]) if parts[2] == "apis" and len(parts) == 5 else ("-", "-"))))
            return self._send(200, doc) if doc else self._not_found()
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return self._not_found()
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return self._not_found()
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
        res = reg.find(group, version, plural)
        if res is None or (ns is not None and not res.namespaced):
            return self._not_found()
        if sub and not ((sub == "status" and res.status) or (res.plural == "pods" and not res.group and sub == "eviction")
                        or (res.plural == "namespaces" and sub == "finalize")):
            return self._not_found()
        verb = {"GET": "list" if name is None else "get", "HEAD": "get", "POST": "create", "PUT": "update",
                "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[self.command]
        if verb == "list" and q.get("watch") in ("1", "t", "T", "TRUE", "true", "True"):  # strconv.ParseBool
            verb = "watch"
        if not self._allowed(admin, node_name, verb, res, ns, name):
            return self._forbidden(cn, verb, res, ns, name, sub)
        return self._rest(app, res, verb, ns, name, sub, q)

    def _rest(self, app, res, verb, ns, name, sub, q):
        c = app.cluster
        dry = q.get("dryRun") == "All"
        if verb == "patch" and "apply-patch" in self.headers.get("Content-Type", ""):
            raise ApiError(415, "UnsupportedMediaType", "server-side apply (application/apply-patch+yaml) is not modelled "
                           "by the k3s stand-in")
        if "protobuf" in self.headers.get("Content-Type", ""):
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media "
                           "types include: application/json, application/yaml (protobuf request bodies are not modelled "
                           "by the k3s stand-in)")
        body = self._body() if verb in ("create", "update", "patch") else None
        if q.get("fieldValidation") == "Strict" and verb in ("create", "update", "patch") and sub != "eviction":
            bad = kinds.unknown_fields(res, body) or (c.crd_unknown_fields(res, body) if res.custom else [])
            if bad:
                raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(bad))
        table = kinds.wants_table(self.headers.get("Accept", ""))
        node, pod = res.plural == "nodes" and not res.group, res.plural == "pods" and not res.group
        if verb == "watch":
            return self._watch(app, res, ns, q, table)
        if verb == "list":
            items = c.list_objects(res, ns, q.get("labelSelector", ""), q.get("fieldSelector", ""))
            rv = c.revision()
            if table:
                return self._send(200, kinds.table(res, items, rv, q.get("includeObject", "Metadata")))
            return self._send(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                    "metadata": {"resourceVersion": rv}, "items": items})
        if verb == "get":
            obj = c.get_object(res, ns, name)
            if table:
                return self._send(200, kinds.table(res, [obj], obj["metadata"]["resourceVersion"], q.get("includeObject", "Metadata")))
            return self._send(200, obj)
        if verb == "create" and sub == "eviction":
            body = body or {}
            if body.get("kind") not in (None, "Eviction") or body.get("apiVersion") not in (None, "policy/v1", "policy/v1beta1"):
                raise ApiError(400, "BadRequest", f"unsupported eviction type: {body.get('apiVersion')}/{body.get('kind')}")
            if (body.get("metadata") or {}).get("name") != name:
                raise ApiError(400, "BadRequest", "name in URL does not match name in Eviction object")
            c.evict_pod(ns, name)
            return self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
        if verb == "create":
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the object provided is unrecognized (must be of type " + res.kind + ")")
            obj = c.create_node(body, dry) if node else c.create_object(res, ns, body, dry)
            return self._send(201, obj)
        if verb == "update":
            if res.plural == "leases" and res.group == "coordination.k8s.io" and ns == "kube-node-lease":
                c.renew_lease(name)
                return self._send(200, c.get_object(res, ns, name))
            return self._send(200, c.update_object(res, ns, name, body, sub, dry))
        if verb == "patch":
            return self._send(200, c.patch_object(res, ns, name, body, self.headers.get("Content-Type", ""), sub, dry))
        if verb == "delete":
            self._body()
            if node and not dry:
                # kube-apiserver: an object finalizers hold comes back marked (200, the object, so
                # that kubectl waits on its uid); one deleted at once as a Status naming its uid
                out = c.delete_node(name)
                # k3s's managed-etcd-controller releases a Node it has nothing to do for (or whose
                # member it removed) within moments; the answer follows what the store holds then
                deadline = time.monotonic() + 5
                while out["metadata"].get("finalizers") and time.monotonic() < deadline:
                    time.sleep(0.2)
                    held, _rev = c._get(NODES + name)  # pylint: disable=protected-access
                    if held is None or held["metadata"].get("uid") != out["metadata"].get("uid"):
                        break
                    out = held
                else:
                    if out["metadata"].get("finalizers"):
                        return self._send(200, out)
                return self._send(200, success(res, name, out))
            if pod and not dry:
                c.delete_pod(ns, name)
                return self._send(200, success(res, name, {}))
            out = c.delete_object(res, ns, name, dry)
            return self._send(202 if out.get("kind") != "Status" and not dry else 200, out)
        if verb == "deletecollection":
            self._body()
            items = c.list_objects(res, ns, q.get("labelSelector", ""), q.get("fieldSelector", ""))
            for o in items:
                try:
                    c.delete_object(res, o["metadata"].get("namespace"), o["metadata"]["name"], dry)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            return self._send(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                    "metadata": {"resourceVersion": c.revision()}, "items": items})
        return self._status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _watch(self, app, res, ns, q, table):
        """A watch stream (chunked JSON events) by polling the datastore: ADDED / MODIFIED / DELETED,
        from the given resourceVersion, until timeoutSeconds."""
        c = app.cluster
        labels, fields = q.get("labelSelector", ""), q.get("fieldSelector", "")
        since = q.get("resourceVersion", "")
        timeout = min(float(q.get("timeoutSeconds") or 1800), 1800)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        first = [True]

        def emit(kind, obj):
            if table:
                out = kinds.table(res, [obj], obj["metadata"].get("resourceVersion", ""), q.get("includeObject", "Metadata"))
                if not first[0]:
                    out["columnDefinitions"] = []
                first[0] = False
                obj = out
            data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def snapshot():
            return {(o["metadata"].get("namespace"), o["metadata"]["name"]): o
                    for o in c.list_objects(res, ns, labels, fields)}

        try:
            seen = snapshot()
            for o in seen.values():
                if since in ("", "0") or int(o["metadata"]["resourceVersion"]) > int(since or 0):
                    emit("ADDED", o)
            while time.monotonic() < deadline:
                time.sleep(0.25)
                try:
                    now = snapshot()
                except StoreUnavailable:
                    continue
                for k, o in now.items():
                    if k not in seen:
                        emit("ADDED", o)
                    elif o["metadata"]["resourceVersion"] != seen[k]["metadata"]["resourceVersion"]:
                        emit("MODIFIED", o)
                for k, o in seen.items():
                    if k not in now:
                        emit("DELETED", o)
                seen = now
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    @staticmethod
    def _allowed(admin, node_name, verb, res, ns, name) -> bool:
        """RBAC for admins (system:masters), the Node authorizer for kubelets (system:node:<name>)."""
        if admin:
            return True
        if not node_name:
            return False
        if res.group == "" and res.plural == "nodes":
            return verb in ("get", "list", "watch") or (verb in ("create", "patch", "update") and (name in (None, node_name)))
        if res.group == "" and res.plural == "pods":
            return verb in ("get", "list", "watch")
        if res.group == "coordination.k8s.io" and res.plural == "leases" and ns == "kube-node-lease":
            return name == node_name or verb == "create"
        return False

    def _not_found(self):
        return self._status(404, "NotFound", "the server could not find the requested resource", {})

    def _forbidden(self, user, verb, res, ns=None, name=None, sub=None):
        what = res.plural + (f"/{sub}" if sub else "")
        scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
        msg = (f'{res.qualified} {json.dumps(name) + " " if name else ""}is forbidden: User "{user}" cannot {verb} '
               f'resource "{what}" in API group "{res.group}" {scope}')
        details = {"kind": res.plural, **({"name": name} if name else {}), **({"group": res.group} if res.group else {})}
        return self._status(403, "Forbidden", msg, details)


def serve(app, host: str, port: int, certfile: str, keyfile: str, client_ca: str) -> TLSServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    srv = TLSServer((host, port), Handler, ctx, app)
    t = threading.Thread(target=srv.serve_forever, name="https", daemon=True)
    t.start()
    return srv
