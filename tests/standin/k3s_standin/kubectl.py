"""`k3s kubectl` for what the collection uses: get nodes/node/pods (-o json|yaml|wide|name|
jsonpath, -l, --no-headers), cordon, uncordon, drain (kubectl's flags and refusals), delete
node, label/annotate node, taint node, patch node, wait --for=condition=Ready, version,
get --raw, cluster-info.

Kubeconfig choice (k3s pkg/kubectl/main.go, K3S-REFERENCE.md §9): --kubeconfig, $KUBECONFIG,
/etc/rancher/k3s/k3s.yaml if it exists, else ~/.kube/k3s.yaml. Messages follow kubectl."""
from __future__ import annotations

import base64
import datetime
import json
import os
import re
import sys
import time
import urllib.parse

import yaml

from . import client, util


class KubectlError(Exception):
    pass


BOOL_FLAGS = {"ignore-daemonsets", "delete-emptydir-data", "delete-local-data", "force", "disable-eviction",
              "no-headers", "overwrite", "all", "all-namespaces", "A", "wait", "ignore-not-found", "raw-flag",
              "show-labels", "insecure-skip-tls-verify", "now", "quiet", "client", "short", "local"}
GLOBAL_VALUE = {"kubeconfig", "namespace", "n", "request-timeout", "context", "server", "s", "cluster", "user"}


def _parse(argv: list[str]) -> tuple[list[str], dict]:
    pos, flags = [], {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            pos += argv[i + 1:]
            break
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if not eq:
                if name in BOOL_FLAGS:
                    val = "true"
                else:
                    if i + 1 >= len(argv):
                        raise KubectlError(f"error: flag needs an argument: --{name}")
                    i += 1
                    val = argv[i]
            flags.setdefault(name, []).append(val)
        elif a.startswith("-") and len(a) > 1 and not re.match(r"^-\d", a):
            name = a[1]
            rest = a[2:]
            if name == "A":
                flags.setdefault("all-namespaces", []).append("true")
            else:
                if rest.startswith("="):
                    rest = rest[1:]
                if not rest:
                    if i + 1 >= len(argv):
                        raise KubectlError(f"error: flag needs an argument: '{name}' in -{name}")
                    i += 1
                    rest = argv[i]
                long = {"o": "output", "l": "selector", "n": "namespace", "s": "server", "p": "patch"}.get(name, name)
                flags.setdefault(long, []).append(rest)
        else:
            pos.append(a)
        i += 1
    return pos, flags


def _flag(flags, name, default=None):
    v = flags.get(name)
    return v[-1] if v else default


def _bool(flags, name) -> bool:
    v = _flag(flags, name)
    return v is not None and v.lower() in ("true", "1", "t")


class Kube:
    def __init__(self, flags: dict):
        path = _flag(flags, "kubeconfig") or os.environ.get("KUBECONFIG")
        if not path:
            default = os.path.join(util.ETC_RANCHER, "k3s", "k3s.yaml")
            path = default if os.path.exists(default) else os.path.expanduser("~/.kube/k3s.yaml")
            if os.path.exists(default) and not os.access(default, os.R_OK):
                print(f"WARN[0000] Unable to read {default}, please start server with --write-kubeconfig-mode to "
                      "modify kube config permissions", file=sys.stderr)
        try:
            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f)
        except FileNotFoundError:
            raise KubectlError("The connection to the server localhost:8080 was refused - did you specify the right "
                               "host or port?") from None
        except PermissionError:
            raise KubectlError(f"error: error loading config file \"{path}\": open {path}: permission denied") from None
        ctxname = _flag(flags, "context") or cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctxname)
        cl = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        us = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.server = (_flag(flags, "server") or cl["server"]).rstrip("/")
        ca = base64.b64decode(cl["certificate-authority-data"]) if cl.get("certificate-authority-data") else None
        crt = base64.b64decode(us["client-certificate-data"]) if us.get("client-certificate-data") else None
        key = base64.b64decode(us["client-key-data"]) if us.get("client-key-data") else None
        self.ctx = client.context(ca, crt, key, verify=not cl.get("insecure-skip-tls-verify"))
        rt = _flag(flags, "request-timeout")
        self.timeout = util.parse_duration(rt) if rt and rt != "0" else 30

    def call(self, method: str, path: str, body=None, ctype="application/json"):
        try:
            _, data, ct = client.request(self.server + path, method, body, self.ctx, timeout=self.timeout, ctype=ctype)
        except client.HTTPFailure as exc:
            if exc.code is None:
                host = urllib.parse.urlsplit(self.server).netloc
                if "refused" in exc.body:
                    raise KubectlError(f"The connection to the server {host} was refused - did you specify the right host or port?") from None
                raise KubectlError(f"Unable to connect to the server: {exc.body}") from None
            try:
                st = json.loads(exc.body)
                raise ApiFailure(exc.code, st.get("reason", ""), st.get("message", exc.body)) from None
            except ValueError:
                raise ApiFailure(exc.code, "", exc.body.strip()) from None
        if "json" in ct:
            return json.loads(data)
        return data.decode()


class ApiFailure(KubectlError):
    def __init__(self, code, reason, message):
        self.code, self.reason, self.message = code, reason, message
        super().__init__(f"Error from server ({reason or code}): {message}")


# ------------------------------------------------------------------ formatting
def _age(ts: str) -> str:
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if s < 120:
        return f"{max(s, 0)}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def node_status(n: dict) -> str:
    ready = next((c for c in n.get("status", {}).get("conditions", []) if c.get("type") == "Ready"), None)
    st = "Ready" if ready and ready.get("status") == "True" else ("NotReady" if ready else "Unknown")
    if n.get("spec", {}).get("unschedulable"):
        st += ",SchedulingDisabled"
    return st


def node_roles(n: dict) -> str:
    roles = sorted(k.split("/", 1)[1] for k in n["metadata"].get("labels", {})
                   if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1])
    return ",".join(roles) or "<none>"


def _table(rows: list[list[str]], headers: bool = True) -> str:
    if not headers:
        rows = rows[1:]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows) + "\n"


def _jsonpath(template: str, obj) -> str:
    """kubectl's JSONPath subset: fields, [n], [*], [?(@.a=="b")], range/end, quoted literals."""
    tokens = re.findall(r"\{((?:[^{}\"']|\"[^\"]*\"|'[^']*')*)\}|([^{}]+)", template)
    out = []

    def run(toks, cur):
        i = 0
        while i < len(toks):
            expr, text = toks[i]
            if text:
                out.append(text)
            else:
                expr = expr.strip()
                if expr.startswith("range "):
                    depth, j = 1, i + 1
                    while j < len(toks):
                        e = toks[j][0].strip()
                        if e.startswith("range "):
                            depth += 1
                        elif e == "end":
                            depth -= 1
                            if depth == 0:
                                break
                        j += 1
                    for item in _eval(expr[6:].strip(), cur):
                        run(toks[i + 1:j], item)
                    i = j
                elif expr.startswith('"') or expr.startswith("'"):
                    out.append(expr[1:-1].encode().decode("unicode_escape"))
                elif expr != "end":
                    vals = _eval(expr, cur)
                    out.append(" ".join(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in vals))
            i += 1

    run(tokens, obj)
    return "".join(out)


def _eval(expr: str, obj) -> list:
    expr = expr.strip()
    if expr.startswith("$"):
        expr = expr[1:]
    if expr in ("", "@"):
        return [obj]
    parts = re.findall(r"\.((?:\\\.|[^.\[])+)|\[([^\]]*\]?)\]", expr)
    cur = [obj]
    for field, idx in parts:
        nxt = []
        for c in cur:
            if field:
                key = field.replace("\\.", ".")
                if key == "*":
                    nxt += list(c.values()) if isinstance(c, dict) else list(c) if isinstance(c, list) else []
                elif isinstance(c, dict) and key in c:
                    nxt.append(c[key])
                elif isinstance(c, list):
                    nxt += [x[key] for x in c if isinstance(x, dict) and key in x]
            else:
                if idx == "*":
                    nxt += c if isinstance(c, list) else list(c.values()) if isinstance(c, dict) else []
                elif idx.startswith("?("):
                    m = re.match(r"\?\(@((?:\.[\w\-/\\.]+)+)\s*(==|!=)\s*[\"']?([^\"')]*)[\"']?\)", idx)
                    if not m or not isinstance(c, list):
                        raise KubectlError(f"error: error parsing jsonpath {expr}: unsupported filter (k3s stand-in)")
                    for x in c:
                        got = _eval(m.group(1), x)
                        val = got[0] if got else None
                        sval = val if isinstance(val, str) else json.dumps(val)
                        if (m.group(2) == "==") == (sval == m.group(3)):
                            nxt.append(x)
                elif re.fullmatch(r"-?\d+", idx):
                    if isinstance(c, list) and -len(c) <= int(idx) < len(c):
                        nxt.append(c[int(idx)])
                elif idx[:1] in "'\"":
                    key = idx.strip("'\"")
                    if isinstance(c, dict) and key in c:
                        nxt.append(c[key])
                else:
                    raise KubectlError(f"error: error parsing jsonpath {expr}: unsupported (k3s stand-in)")
        cur = nxt
    return cur


def render(objs: list[dict], single: bool, fmt: str, kind: str, headers: bool, show_labels: bool = False) -> str:
    if fmt in ("json", "yaml"):
        doc = objs[0] if single else {"apiVersion": "v1", "items": objs, "kind": "List",
                                      "metadata": {"resourceVersion": ""}}
        return json.dumps(doc, indent=4) + "\n" if fmt == "json" else yaml.safe_dump(doc, sort_keys=True)
    if fmt == "name":
        return "".join(f"{'node' if kind == 'nodes' else 'pod'}/{o['metadata']['name']}\n" for o in objs)
    if fmt.startswith("jsonpath=") or fmt.startswith("jsonpath-as-json="):
        tpl = fmt.split("=", 1)[1]
        doc = objs[0] if single else {"apiVersion": "v1", "items": objs, "kind": "List"}
        return _jsonpath(tpl, doc)
    if fmt.startswith("custom-columns="):
        cols = [c.split(":", 1) for c in fmt.split("=", 1)[1].split(",")]
        rows = [[c[0] for c in cols]]
        for o in objs:
            rows.append([" ".join(str(v) for v in _eval(c[1], o)) or "<none>" for c in cols])
        return _table(rows, headers)
    wide = fmt == "wide"
    if fmt not in ("", "wide"):
        raise KubectlError(f'error: unable to match a printer suitable for the output format "{fmt}", allowed formats '
                           "are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,"
                           "jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml")
    if kind == "nodes":
        rows = [["NAME", "STATUS", "ROLES", "AGE", "VERSION"]]
        if wide:
            rows[0] += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        if show_labels:
            rows[0].append("LABELS")
        for n in objs:
            st = n.get("status", {})
            r = [n["metadata"]["name"], node_status(n), node_roles(n), _age(n["metadata"].get("creationTimestamp")),
                 st.get("nodeInfo", {}).get("kubeletVersion", "")]
            if wide:
                addrs = {a["type"]: a["address"] for a in st.get("addresses", [])}
                ni = st.get("nodeInfo", {})
                r += [addrs.get("InternalIP", "<none>"), addrs.get("ExternalIP", "<none>"), ni.get("osImage", ""),
                      ni.get("kernelVersion", ""), ni.get("containerRuntimeVersion", "")]
            if show_labels:
                r.append(",".join(f"{k}={v}" for k, v in sorted(n["metadata"].get("labels", {}).items())))
            rows.append(r)
        return _table(rows, headers)
    rows = [["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]]
    if wide:
        rows[0] += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    for p in objs:
        phase = p.get("status", {}).get("phase", "Pending")
        r = [p["metadata"]["namespace"], p["metadata"]["name"], "1/1" if phase == "Running" else "0/1", phase, "0",
             _age(p["metadata"].get("creationTimestamp"))]
        if wide:
            r += ["10.42.0.10", p.get("spec", {}).get("nodeName") or "<none>", "<none>", "<none>"]
        rows.append(r)
    return _table(rows, headers)


# ------------------------------------------------------------------ commands
NODE_KINDS = {"node", "nodes", "no"}
POD_KINDS = {"pod", "pods", "po"}
KNOWN_FLAGS = {
    "get": {"output", "selector", "no-headers", "show-labels", "namespace", "all-namespaces", "raw", "field-selector",
            "ignore-not-found", "watch", "sort-by"},
    "cordon": {"selector", "dry-run"}, "uncordon": {"selector", "dry-run"},
    "drain": {"ignore-daemonsets", "delete-emptydir-data", "delete-local-data", "force", "grace-period", "timeout",
              "disable-eviction", "pod-selector", "skip-wait-for-delete-timeout", "dry-run", "selector",
              "chunk-size"},
    "delete": {"wait", "ignore-not-found", "now", "force", "grace-period", "timeout", "selector", "all"},
    "label": {"overwrite", "selector", "all", "dry-run", "output", "list", "resource-version"},
    "annotate": {"overwrite", "selector", "all", "dry-run", "output", "list", "resource-version"},
    "taint": {"overwrite", "selector", "all", "dry-run", "output", "validate"},
    "patch": {"patch", "type", "output", "dry-run"},
    "wait": {"for", "timeout", "selector", "all"},
    "version": {"client", "short", "output"},
    "cluster-info": set(),
}
GLOBAL_FLAGS = {"kubeconfig", "namespace", "request-timeout", "context", "server", "cluster", "user",
                "insecure-skip-tls-verify", "v"}


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except ApiFailure as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KubectlError as exc:
        print(str(exc), file=sys.stderr)
        return 1


def _main(argv: list[str]) -> int:
    if util.version_tuple(util.VERSION)[1] < 27:
        BOOL_FLAGS.add("delete-local-data")
    pos, flags = _parse(argv)
    if not pos:
        print("kubectl controls the Kubernetes cluster manager.\n\nUsage:\n  kubectl [flags] [options]")
        return 0
    cmd, args = pos[0], pos[1:]
    if cmd not in KNOWN_FLAGS:
        raise KubectlError(f'error: unknown command "{cmd}" for "kubectl"\n\nDid you mean this?\n\tget\n\n'
                           f"Run 'kubectl --help' for usage." if cmd not in _REAL_KUBECTL else
                           f"error: `kubectl {cmd}` is not modelled by the k3s stand-in")
    removed = {"delete-local-data"} if util.version_tuple(util.VERSION)[1] >= 27 else set()  # gone in kubectl 1.27
    for f in flags:
        if f not in (KNOWN_FLAGS[cmd] | GLOBAL_FLAGS) - removed:
            raise KubectlError(f"error: unknown flag: --{f}\nSee 'kubectl {cmd} --help' for usage.")
    if "delete-local-data" in flags:
        print("Flag --delete-local-data has been deprecated, This option is deprecated and will be deleted. "
              "Use --delete-emptydir-data.", file=sys.stderr)
        flags.setdefault("delete-emptydir-data", []).append(_flag(flags, "delete-local-data"))
    if cmd == "version":
        if _bool(flags, "client"):
            print(f"Client Version: {util.VERSION}\nKustomize Version: v4.5.7")
            return 0
        k = Kube(flags)
        v = k.call("GET", "/version")
        print(f"Client Version: {util.VERSION}\nKustomize Version: v4.5.7\nServer Version: {v['gitVersion']}")
        return 0
    k = Kube(flags)
    return globals()["cmd_" + cmd.replace("-", "_")](k, args, flags)


_REAL_KUBECTL = {"apply", "create", "describe", "logs", "exec", "edit", "rollout", "scale", "top", "config",
                 "api-resources", "explain", "run", "expose", "set", "auth", "certificate", "port-forward", "proxy",
                 "cp", "debug", "events", "replace", "kustomize", "plugin", "completion", "diff", "attach", "autoscale"}


def _kind_names(args):
    if not args:
        raise KubectlError("error: You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.")
    kinds_names = []
    if "/" in args[0]:
        for a in args:
            kind, _, name = a.partition("/")
            kinds_names.append((kind, name))
        kind = kinds_names[0][0]
        names = [n for _, n in kinds_names]
    else:
        kind, names = args[0], args[1:]
    if kind in NODE_KINDS:
        return "nodes", names
    if kind in POD_KINDS:
        return "pods", names
    raise KubectlError(f'error: the server doesn\'t have a resource type "{kind}"')


def cmd_get(k: Kube, args, flags) -> int:
    raw = _flag(flags, "raw")
    if raw:
        out = k.call("GET", raw)
        sys.stdout.write(out if isinstance(out, str) else json.dumps(out))
        return 0
    kind, names = _kind_names(args)
    fmt = _flag(flags, "output", "")
    sel = _flag(flags, "selector", "")
    if kind == "nodes":
        if names:
            objs, errs = [], []
            for n in names:
                try:
                    objs.append(k.call("GET", f"/api/v1/nodes/{n}"))
                except ApiFailure as exc:
                    if exc.code == 404 and _bool(flags, "ignore-not-found"):
                        continue
                    errs.append(str(exc))
            sys.stdout.write(render(objs, len(names) == 1 and len(objs) == 1, fmt, kind,
                                    not _bool(flags, "no-headers"), _bool(flags, "show-labels")) if objs else "")
            for e in errs:
                print(e, file=sys.stderr)
            return 1 if errs else 0
        q = "?labelSelector=" + urllib.parse.quote(sel) if sel else ""
        objs = k.call("GET", "/api/v1/nodes" + q)["items"]
    else:
        ns = None if _bool(flags, "all-namespaces") else _flag(flags, "namespace", "default")
        path = "/api/v1/pods" if ns is None else f"/api/v1/namespaces/{ns}/pods"
        params = {}
        if sel:
            params["labelSelector"] = sel
        if _flag(flags, "field-selector"):
            params["fieldSelector"] = _flag(flags, "field-selector")
        objs = k.call("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))["items"]
        if names:
            objs = [o for o in objs if o["metadata"]["name"] in names]
            if not objs:
                raise ApiFailure(404, "NotFound", f'pods "{names[0]}" not found')
        if not objs and fmt in ("", "wide"):
            print(f"No resources found in {ns} namespace." if ns else "No resources found", file=sys.stderr)
            return 0
        if ns is not None and fmt in ("", "wide"):
            rows = [r.split("   ", 1)[1].lstrip() if "   " in r else r
                    for r in render(objs, False, fmt, kind, True).splitlines()]
            sys.stdout.write("\n".join(rows[0 if not _bool(flags, "no-headers") else 1:]) + "\n")
            return 0
    if not objs and fmt in ("", "wide"):
        print("No resources found", file=sys.stderr)
        return 0
    sys.stdout.write(render(objs, False, fmt, kind, not _bool(flags, "no-headers"), _bool(flags, "show-labels")))
    return 0


def _nodes_for(k: Kube, args, flags) -> list[str]:
    names = [a.split("/", 1)[1] if a.startswith(("node/", "nodes/", "no/")) else a for a in args
             if a not in NODE_KINDS]
    sel = _flag(flags, "selector")
    if sel:
        names += [n["metadata"]["name"] for n in k.call("GET", "/api/v1/nodes?labelSelector=" + urllib.parse.quote(sel))["items"]]
    if not names:
        raise KubectlError("error: USAGE: cordon NODE [flags]\nSee 'kubectl cordon -h' for help and examples")
    return names


def _set_unschedulable(k: Kube, name: str, value: bool) -> str:
    node = k.call("GET", f"/api/v1/nodes/{name}")
    cur = bool(node.get("spec", {}).get("unschedulable"))
    if cur == value:
        return f"node/{name} already {'cordoned' if value else 'uncordoned'}"
    k.call("PATCH", f"/api/v1/nodes/{name}", {"spec": {"unschedulable": True if value else None}},
           "application/strategic-merge-patch+json")
    return f"node/{name} {'cordoned' if value else 'uncordoned'}"


def cmd_cordon(k, args, flags) -> int:
    for n in _nodes_for(k, args, flags):
        print(_set_unschedulable(k, n, True))
    return 0


def cmd_uncordon(k, args, flags) -> int:
    for n in _nodes_for(k, args, flags):
        print(_set_unschedulable(k, n, False))
    return 0


def cmd_drain(k, args, flags) -> int:
    names = _nodes_for(k, args, flags)
    timeout = util.parse_duration(_flag(flags, "timeout", "0s"))
    rc = 0
    for name in names:
        print(_set_unschedulable(k, name, True))
        pods = k.call("GET", "/api/v1/pods?fieldSelector=" + urllib.parse.quote(f"spec.nodeName={name}"))["items"]
        psel = _flag(flags, "pod-selector")
        if psel:
            from .apiserver import match_labels

            pods = [p for p in pods if match_labels(p["metadata"].get("labels", {}), psel)]
        ds, local, unmanaged, evict = [], [], [], []
        for p in pods:
            ref = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            owner = (p["metadata"].get("ownerReferences") or [{}])[0].get("kind")
            if owner == "DaemonSet":
                ds.append(ref)
                continue
            if owner is None:
                unmanaged.append(ref)
            if any("emptyDir" in v for v in p.get("spec", {}).get("volumes") or []):
                local.append(ref)
            evict.append(p)
        errors = []
        if ds and not _bool(flags, "ignore-daemonsets"):
            errors.append("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): " + ", ".join(ds))
        if unmanaged and not _bool(flags, "force"):
            errors.append("cannot delete Pods declare no controller (use --force to override): " + ", ".join(unmanaged))
        if local and not _bool(flags, "delete-emptydir-data"):
            errors.append("cannot delete Pods with local storage (use --delete-emptydir-data to override): " + ", ".join(local))
        if errors:
            print(f"error: unable to drain node \"{name}\" due to error:[{', '.join(errors)}], continuing command...",
                  file=sys.stderr)
            print(f"There are pending nodes to be drained:\n {name}", file=sys.stderr)
            for e in errors:
                print(f"error: {e}", file=sys.stderr)
            rc = 1
            continue
        if ds:
            print("Warning: ignoring DaemonSet-managed Pods: " + ", ".join(ds), file=sys.stderr)
        start = time.monotonic()
        for p in evict:
            ns, pn = p["metadata"]["namespace"], p["metadata"]["name"]
            print(f"evicting pod {ns}/{pn}")
            if _bool(flags, "disable-eviction"):
                k.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{pn}")
            else:
                k.call("POST", f"/api/v1/namespaces/{ns}/pods/{pn}/eviction",
                       {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pn, "namespace": ns}})
            if timeout and time.monotonic() - start > timeout:
                print(f"error: unable to drain node \"{name}\" due to error: global timeout reached: "
                      f"{_flag(flags, 'timeout')}, continuing command...", file=sys.stderr)
                rc = 1
                break
            print(f"pod/{pn} evicted")
        else:
            print(f"node/{name} drained")
    return rc


def cmd_delete(k, args, flags) -> int:
    kind, names = _kind_names(args)
    if kind != "nodes":
        ns = _flag(flags, "namespace", "default")
        for n in names:
            k.call("DELETE", f"/api/v1/namespaces/{ns}/pods/{n}")
            print(f'pod "{n}" deleted')
        return 0
    if not names and _flag(flags, "selector"):
        names = _nodes_for(k, [], flags)
    if not names:
        raise KubectlError("error: resource(s) were provided, but no name was specified")
    rc = 0
    deleted = []
    for n in names:
        try:
            k.call("DELETE", f"/api/v1/nodes/{n}")
            print(f'node "{n}" deleted')
            deleted.append(n)
        except ApiFailure as exc:
            if exc.code == 404 and _bool(flags, "ignore-not-found"):
                continue
            print(str(exc), file=sys.stderr)
            rc = 1
    if deleted and _flag(flags, "wait", "true") != "false":
        # kubectl waits until the objects are gone (finalizers): --timeout, 0 meaning a week
        timeout = util.parse_duration(_flag(flags, "timeout", "0s")) or 168 * 3600
        deadline = time.monotonic() + timeout
        for n in deleted:
            while True:
                try:
                    k.call("GET", f"/api/v1/nodes/{n}")
                except ApiFailure as exc:
                    if exc.code == 404:
                        break
                    raise
                if time.monotonic() > deadline:
                    print(f"error: timed out waiting for the condition on nodes/{n}", file=sys.stderr)
                    return 1
                time.sleep(1)
    return rc


def _split_targets(args) -> tuple[list[str], list[str]]:
    """kubectl label/taint/annotate: `node NAME... specs...` or `node/NAME specs...`."""
    if not args:
        raise KubectlError("error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
    if "/" in args[0] and args[0].split("/", 1)[0] in NODE_KINDS:
        names = []
        rest = list(args)
        while rest and "/" in rest[0] and rest[0].split("/", 1)[0] in NODE_KINDS:
            names.append(rest.pop(0).split("/", 1)[1])
        return names, rest
    if args[0] not in NODE_KINDS:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{args[0]}"')
    names, specs = [], []
    for a in args[1:]:
        (specs if ("=" in a or a.endswith("-") or ":" in a) else names).append(a)
    return names, specs


def _meta_cmd(k, args, flags, field: str, verb: str) -> int:
    names, specs = _split_targets(args)
    if _flag(flags, "selector"):
        names += _nodes_for(k, [], flags)
    if not specs:
        raise KubectlError(f"error: at least one {field[:-1]} update is required")
    overwrite = _bool(flags, "overwrite")
    for name in names:
        node = k.call("GET", f"/api/v1/nodes/{name}")
        cur = node["metadata"].get(field, {}) or {}
        patch = {}
        for s in specs:
            if s.endswith("-") and "=" not in s:
                key = s[:-1]
                if key in cur:
                    patch[key] = None
                else:
                    print(f'{field[:-1]} "{key}" not found.', file=sys.stderr)
                continue
            key, _, val = s.partition("=")
            if field == "labels" and not re.fullmatch(r"([a-z0-9A-Z][-a-zA-Z0-9_.]*/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?", key):
                raise KubectlError(f"error: invalid label spec: {s}")
            if field == "labels" and val and not re.fullmatch(r"[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?", val):
                raise KubectlError(f"error: invalid label value: \"{s}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
            if key in cur and cur[key] != val and not overwrite:
                raise KubectlError(f"error: '{key}' already has a value ({cur[key]}), and --overwrite is false")
            if cur.get(key) != val:
                patch[key] = val
        if patch:
            k.call("PATCH", f"/api/v1/nodes/{name}", {"metadata": {field: patch}}, "application/merge-patch+json")
            print(f"node/{name} {verb}")
        else:
            print(f"node/{name} not {verb}")
    return 0


def cmd_label(k, args, flags) -> int:
    return _meta_cmd(k, args, flags, "labels", "labeled")


def cmd_annotate(k, args, flags) -> int:
    return _meta_cmd(k, args, flags, "annotations", "annotated")


TAINT_RE = re.compile(r"^([a-zA-Z0-9][-a-zA-Z0-9_./]*)(?:=([^:]*))?(?::(NoSchedule|PreferNoSchedule|NoExecute))?(-)?$")


def cmd_taint(k, args, flags) -> int:
    names, specs = _split_targets(args)
    if _flag(flags, "selector"):
        names += _nodes_for(k, [], flags)
    if not specs:
        raise KubectlError("error: at least one taint update is required")
    adds, removes = [], []
    for s in specs:
        m = TAINT_RE.match(s)
        if not m:
            raise KubectlError(f'error: invalid taint spec: {s}, invalid taint effect' if ":" in s else
                               f"error: unknown taint spec: {s}")
        key, val, effect, minus = m.groups()
        if minus:
            removes.append((key, effect))
        else:
            if not effect:
                raise KubectlError(f"error: invalid taint spec: {s}, unknown taint effect")
            t = {"key": key, "effect": effect}
            if val:
                t["value"] = val
            adds.append(t)
    overwrite = _bool(flags, "overwrite")
    for name in names:
        node = k.call("GET", f"/api/v1/nodes/{name}")
        taints = list(node.get("spec", {}).get("taints") or [])
        changed_add, changed_rm = False, False
        for t in adds:
            same = [x for x in taints if x["key"] == t["key"] and x["effect"] == t["effect"]]
            if same and not overwrite:
                raise KubectlError(f"error: node {name} already has {t['key']} taint(s) with same effect(s) and "
                                   "--overwrite is false")
            if same and same[0].get("value") == t.get("value"):
                continue
            taints = [x for x in taints if not (x["key"] == t["key"] and x["effect"] == t["effect"])] + [t]
            changed_add = True
        for key, effect in removes:
            hit = [x for x in taints if x["key"] == key and (effect is None or x["effect"] == effect)]
            if not hit:
                raise KubectlError(f'error: taint "{key}{":" + effect if effect else ""}" not found')
            taints = [x for x in taints if x not in hit]
            changed_rm = True
        if not (changed_add or changed_rm):
            print(f"node/{name} not modified")
            continue
        k.call("PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": taints or None}},
               "application/strategic-merge-patch+json")
        print(f"node/{name} {'modified' if changed_add and changed_rm else 'tainted' if changed_add else 'untainted'}")
    return 0


def cmd_patch(k, args, flags) -> int:
    kind, names = _kind_names(args)
    if kind != "nodes" or not names:
        raise KubectlError("error: the stand-in patches nodes only")
    ptype = _flag(flags, "type", "strategic")
    body = _flag(flags, "patch")
    if body is None:
        raise KubectlError("error: must specify --patch or --patch-file containing the contents of the patch")
    try:
        doc = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise KubectlError(f"error: unable to parse \"{body}\": {exc}") from None
    ctype = {"json": "application/json-patch+json", "merge": "application/merge-patch+json"}.get(
        ptype, "application/strategic-merge-patch+json")
    for n in names:
        before = k.call("GET", f"/api/v1/nodes/{n}")
        after = k.call("PATCH", f"/api/v1/nodes/{n}", doc, ctype)
        same = before["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
        print(f"node/{n} {'patched (no change)' if same else 'patched'}")
    return 0


def cmd_wait(k, args, flags) -> int:
    cond = _flag(flags, "for")
    if not cond or not cond.startswith("condition="):
        raise KubectlError("error: the stand-in supports only --for=condition=<Type>[=<status>]")
    ctype, _, want = cond[len("condition="):].partition("=")
    want = want or "True"
    timeout = util.parse_duration(_flag(flags, "timeout", "30s"))
    if args and args[0] in NODE_KINDS:
        names = args[1:]
    else:
        names = [a.split("/", 1)[1] for a in args if "/" in a]
    if _bool(flags, "all") or _flag(flags, "selector"):
        q = "?labelSelector=" + urllib.parse.quote(_flag(flags, "selector", ""))
        names += [n["metadata"]["name"] for n in k.call("GET", "/api/v1/nodes" + q)["items"]]
    deadline = time.monotonic() + timeout
    rc = 0
    for n in names:
        while True:
            try:
                node = k.call("GET", f"/api/v1/nodes/{n}")
                c = next((c for c in node.get("status", {}).get("conditions", []) if c.get("type", "").lower() == ctype.lower()), None)
                if c and c.get("status", "").lower() == want.lower():
                    print(f"node/{n} condition met")
                    break
            except ApiFailure as exc:
                if exc.code != 404:
                    raise
                raise KubectlError(f'Error from server (NotFound): nodes "{n}" not found') from None
            if time.monotonic() > deadline:
                print(f"error: timed out waiting for the condition on nodes/{n}", file=sys.stderr)
                rc = 1
                break
            time.sleep(1)
    return rc


def cmd_cluster_info(k, args, flags) -> int:
    k.call("GET", "/version")
    print(f"Kubernetes control plane is running at {k.server}\nCoreDNS is running at {k.server}/api/v1/namespaces/"
          "kube-system/services/kube-dns:dns/proxy\n\nTo further debug and diagnose cluster problems, use "
          "'kubectl cluster-info dump'.")
    return 0
