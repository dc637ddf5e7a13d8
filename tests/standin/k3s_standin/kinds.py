"""The API's resource types: what discovery serves (/api, /apis, /api/v1, /apis/<group>/<version>),
where each kind lives in the datastore (kube-apiserver's /registry/<resource>/<namespace>/<name>
layout), and the server-side Tables kubectl prints (`kubectl get`, `-o wide`).

Custom resources come from the stored CustomResourceDefinitions (apiextensions.k8s.io/v1), so a
CRD applied with kubectl makes its kind servable, as kube-apiserver's apiextensions server does.

Legacy discovery only (APIVersions, APIGroupList, APIResourceList): kubectl falls back to it when
the answer is plain application/json; aggregated discovery (apidiscovery.k8s.io/v2, served by
kube >= 1.30) is not modelled."""
from __future__ import annotations

import datetime
import hashlib
import json

VERBS_NS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
VERBS_CLUSTER = VERBS_NS


class Resource:
    def __init__(self, group: str, version: str, plural: str, kind: str, namespaced: bool,
                 short=(), singular: str = "", prefix: str = "", custom: bool = False, status: bool = False,
                 categories=()):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short, self.custom, self.status = namespaced, list(short), custom, status
        self.singular = singular or kind.lower()
        self.categories = list(categories)
        self.prefix = prefix or "/registry/" + (f"{group}/" if custom else "") + plural + "/"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """deployments.apps, configmaps: how Status messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def key(self, namespace: str | None, name: str = "") -> str:
        if self.namespaced:
            return self.prefix + (f"{namespace}/" if namespace else "") + name
        return self.prefix + name

    def api_resource(self) -> list[dict]:
        out = [{"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": list(VERBS_NS), "storageVersionHash": _hash(self)}]
        if self.short:
            out[0]["shortNames"] = list(self.short)
        if self.categories:
            out[0]["categories"] = list(self.categories)
        if self.status:
            out.append({"name": self.plural + "/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


def _hash(res: Resource) -> str:
    return hashlib.sha256(f"{res.api_version}/{res.kind}".encode()).digest()[:8].hex()


_R = Resource
BUILTIN = [
    _R("", "v1", "nodes", "Node", False, ["no"], prefix="/registry/minions/", status=True),
    _R("", "v1", "pods", "Pod", True, ["po"], status=True, categories=["all"]),
    _R("", "v1", "namespaces", "Namespace", False, ["ns"], status=True),
    _R("", "v1", "configmaps", "ConfigMap", True, ["cm"]),
    _R("", "v1", "secrets", "Secret", True),
    _R("", "v1", "services", "Service", True, ["svc"], prefix="/registry/services/specs/", status=True, categories=["all"]),
    _R("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"]),
    _R("", "v1", "endpoints", "Endpoints", True, ["ep"], prefix="/registry/services/endpoints/", singular="endpoints"),
    _R("", "v1", "events", "Event", True, ["ev"]),
    _R("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], status=True),
    _R("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"], status=True),
    _R("apps", "v1", "deployments", "Deployment", True, ["deploy"], status=True, categories=["all"]),
    _R("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], status=True, categories=["all"]),
    _R("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], status=True, categories=["all"]),
    _R("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], status=True, categories=["all"]),
    _R("batch", "v1", "jobs", "Job", True, status=True, categories=["all"]),
    _R("batch", "v1", "cronjobs", "CronJob", True, ["cj"], status=True, categories=["all"]),
    _R("coordination.k8s.io", "v1", "leases", "Lease", True),
    _R("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], status=True),
    _R("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
       ["crd", "crds"], prefix="/registry/apiextensions.k8s.io/customresourcedefinitions/", status=True),
    _R("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _R("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _R("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _R("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _R("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"], status=True),
    _R("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"]),
    _R("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"]),
]
# the pods/eviction subresource kubectl drain looks up in /api/v1 (kubectl pkg/drain CheckEvictionSupport)
EVICTION = {"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy", "version": "v1",
            "kind": "Eviction", "verbs": ["create"]}
CRDS = "/registry/apiextensions.k8s.io/customresourcedefinitions/"


def custom_resources(crds: list[dict]) -> list[Resource]:
    out = []
    for crd in crds:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        if crd.get("metadata", {}).get("deletionTimestamp"):
            continue
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            out.append(Resource(spec.get("group", ""), v["name"], names.get("plural", ""), names.get("kind", ""),
                                spec.get("scope") == "Namespaced", names.get("shortNames") or [],
                                names.get("singular", ""), custom=True,
                                status="status" in (v.get("subresources") or {}),
                                categories=names.get("categories") or []))
    return out


class Registry:
    """Every servable resource: the built-ins plus the custom resources of stored CRDs."""

    def __init__(self, crds: list[dict]):
        self.all = BUILTIN + custom_resources(crds)

    def find(self, group: str, version: str, plural: str) -> Resource | None:
        for r in self.all:
            if r.group == group and r.version == version and r.plural == plural:
                return r
        return None

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.all:
            if r.group and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    def api_versions(self) -> dict:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}

    def group_list(self) -> dict:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g, vs) for g, vs in self.groups().items()]}

    @staticmethod
    def _group(name: str, versions: list[str]) -> dict:
        vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": vs, "preferredVersion": vs[0]}

    def group(self, name: str) -> dict | None:
        vs = self.groups().get(name)
        return self._group(name, vs) if vs else None

    def resource_list(self, group: str, version: str) -> dict | None:
        res = [r for r in self.all if r.group == group and r.version == version]
        if not res:
            return None
        items = [a for r in res for a in r.api_resource()]
        if not group:
            items.append(dict(EVICTION))
        gv = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


# tables ------------------------------------------------------------------------------------
def _col(name: str, typ: str = "string", fmt: str = "", priority: int = 0, desc: str = "") -> dict:
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


def human_age(ts: str | None, now: datetime.datetime | None = None) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, as the server's table cells carry it."""
    if not ts:
        return "<unknown>"
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "<invalid>"
    now = now or datetime.datetime.now(datetime.timezone.utc)
    s = int((now - t).total_seconds())
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 60 * 3:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // 24 // 365}y{(h // 24) % 365}d"
    return f"{h // 24 // 365}y"


def node_status_text(node: dict) -> str:
    ready = next((c.get("status") for c in node.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), None)
    out = "Ready" if ready == "True" else "NotReady" if ready is not None else "Unknown"
    if node.get("spec", {}).get("unschedulable"):
        out += ",SchedulingDisabled"
    return out


def node_roles(node: dict) -> str:
    labels = node.get("metadata", {}).get("labels", {}) or {}
    roles = sorted({k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
                   | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role") else set()))
    return ",".join(r for r in roles if r) or "<none>"


def _node_row(n: dict) -> list:
    st = n.get("status", {})
    info = st.get("nodeInfo", {})
    addr = {}
    for a in st.get("addresses", []):
        addr.setdefault(a.get("type"), a.get("address"))
    return [n["metadata"]["name"], node_status_text(n), node_roles(n), human_age(n["metadata"].get("creationTimestamp")),
            info.get("kubeletVersion", ""), addr.get("InternalIP", "<none>"), addr.get("ExternalIP", "<none>"),
            info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
            info.get("containerRuntimeVersion", "<unknown>")]


def _pod_row(p: dict) -> list:
    cs = p.get("spec", {}).get("containers", [])
    statuses = p.get("status", {}).get("containerStatuses", [])
    ready = sum(1 for s in statuses if s.get("ready"))
    if not statuses and p.get("status", {}).get("phase") == "Running":
        ready = len(cs)
    reason = p.get("status", {}).get("phase", "Unknown")
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [p["metadata"]["name"], f"{ready}/{len(cs)}", reason,
            sum(s.get("restartCount", 0) for s in statuses), human_age(p["metadata"].get("creationTimestamp")),
            p.get("status", {}).get("podIP", "<none>"), p.get("spec", {}).get("nodeName", "<none>"), "<none>", "<none>"]


def _deploy_row(d: dict) -> list:
    st, spec = d.get("status", {}), d.get("spec", {})
    cs = spec.get("template", {}).get("spec", {}).get("containers", [])
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector", {}).get("matchLabels") or {}).items()))
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), human_age(d["metadata"].get("creationTimestamp")),
            ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs), sel or "<none>"]


TABLES = {
    ("", "nodes"): ([_col("Name", fmt="name"), _col("Status"), _col("Roles"), _col("Age"), _col("Version"),
                     _col("Internal-IP", priority=1), _col("External-IP", priority=1), _col("OS-Image", priority=1),
                     _col("Kernel-Version", priority=1), _col("Container-Runtime", priority=1)], _node_row),
    ("", "pods"): ([_col("Name", fmt="name"), _col("Ready"), _col("Status"), _col("Restarts", "string"), _col("Age"),
                    _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
                    _col("Readiness Gates", priority=1)], _pod_row),
    ("", "namespaces"): ([_col("Name", fmt="name"), _col("Status"), _col("Age")],
                         lambda o: [o["metadata"]["name"], o.get("status", {}).get("phase", "Active"),
                                    human_age(o["metadata"].get("creationTimestamp"))]),
    ("", "configmaps"): ([_col("Name", fmt="name"), _col("Data", "integer"), _col("Age")],
                         lambda o: [o["metadata"]["name"], len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                    human_age(o["metadata"].get("creationTimestamp"))]),
    ("apps", "deployments"): ([_col("Name", fmt="name"), _col("Ready"), _col("Up-to-date", "integer"),
                               _col("Available", "integer"), _col("Age"), _col("Containers", priority=1),
                               _col("Images", priority=1), _col("Selector", priority=1)], _deploy_row),
}
DEFAULT_TABLE = ([_col("Name", fmt="name"), _col("Created At", "date")],
                 lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")])


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


def table(res: Resource, objs: list[dict], rv: str, include: str = "Metadata") -> dict:
    cols, row = TABLES.get((res.group, res.plural), DEFAULT_TABLE)
    rows = []
    for o in objs:
        if include == "None":
            ref = None
        elif include == "Object":
            ref = o
        else:
            ref = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata", {})}
        rows.append({"cells": row(o), "object": ref})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": cols, "rows": rows}


def dumps(obj) -> bytes:
    return json.dumps(obj).encode()


# OpenAPI v3 ------------------------------------------------------------------------------------
# kubectl (apply, create, replace) asks /openapi/v3 whether a kind supports server-side field
# validation (k8s.io/cli-runtime resource.QueryParamVerifierV3: a schema carrying the kind's
# x-kubernetes-group-version-kind) and then sends fieldValidation=Strict instead of validating
# on the client with the OpenAPI v2 protobuf. The documents here carry those markers and no
# schemas. cli-runtime's verifier looks for the kind's PATCH operation (its own
# x-kubernetes-group-version-kind, a single object) with a fieldValidation query parameter; the
# operations name no request body, so kubectl's apply finds no strategic-merge schema here and
# computes strategic merge patches from its built-in Go types (JSON merge for custom resources).
def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_index(reg: Registry) -> dict:
    out = {}
    for gv in sorted({(r.group, r.version) for r in reg.all}):
        doc = openapi_doc(reg, *gv)
        h = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()
        out[_gv_path(*gv)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(*gv)}?hash={h}"}
    return {"paths": out}


def openapi_doc(reg: Registry, group: str, version: str) -> dict | None:
    res = [r for r in reg.all if r.group == group and r.version == version]
    if not res:
        return None
    schemas, paths = {}, {}
    for r in res:
        base = "/" + _gv_path(group, version) + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}/{{name}}"
        paths[base] = {"patch": {"operationId": f"patch{r.kind}", "x-kubernetes-action": "patch",
                                 "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                                 "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string",
                                                 "uniqueItems": True}}],
                                 "responses": {"200": {"description": "OK"}}}}
        pkg = r.group.split(".")[0] if r.group else "core"
        name = (".".join(r.group.split(".")[::-1]) + f".{r.version}.{r.kind}" if r.custom
                else f"io.k8s.api.{pkg}.{r.version}.{r.kind}")
        schemas[name] = {"type": "object", "x-kubernetes-group-version-kind": [
            {"group": r.group, "version": r.version, "kind": r.kind}]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"}, "paths": paths,
            "components": {"schemas": schemas}}


# strict field validation (fieldValidation=Strict): the top-level fields of each kind and the
# fields of ObjectMeta; deeper fields are not checked (no schemas here)
OBJECT_META = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
               "ownerReferences", "finalizers", "managedFields"}
TYPE_META = {"apiVersion", "kind", "metadata"}
TOP_FIELDS = {
    "ConfigMap": {"data", "binaryData", "immutable"},
    "Secret": {"data", "stringData", "type", "immutable"},
    "ServiceAccount": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "Endpoints": {"subsets"},
    "Role": {"rules"}, "ClusterRole": {"rules", "aggregationRule"},
    "RoleBinding": {"subjects", "roleRef"}, "ClusterRoleBinding": {"subjects", "roleRef"},
    "StorageClass": {"provisioner", "parameters", "reclaimPolicy", "mountOptions", "allowVolumeExpansion",
                     "volumeBindingMode", "allowedTopologies"},
    "Lease": {"spec"},
}
UNCHECKED = {"Event"}


def unknown_fields(res: Resource, obj: dict) -> list[str]:
    if res.custom or res.kind in UNCHECKED or not isinstance(obj, dict):
        return []
    allowed = TYPE_META | TOP_FIELDS.get(res.kind, {"spec", "status"})
    bad = [f'unknown field "{k}"' for k in obj if k not in allowed]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        bad += [f'unknown field "metadata.{k}"' for k in meta if k not in OBJECT_META]
    return bad
