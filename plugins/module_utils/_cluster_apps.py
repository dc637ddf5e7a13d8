# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launching a cluster image's applications on master0, in the order of its LAUNCH (or its
CMDS), as sealer's application driver does (sealerio/sealer pkg/application/appdriver.go),
on k3s:

- kube apps: `k3s kubectl apply -f <file>` for each file, in order;
- helm apps: a k3s HelmChart (helm.cattle.io/v1) whose spec.chartContent is the base64 of the
  chart directory packed as a .tgz (reproducibly: the same chart gives the same bytes), applied
  with kubectl; k3s's helm controller installs it (k3s-io/helm-controller
  pkg/apis/helm.cattle.io/v1/types.go, HelmChartSpec.ChartContent);
- shell apps, APPCMDS and the image's CMDS: run on master0 with the host's env exported, in the
  app's directory (CMDS: in the rootfs), once per content: the record keeps what ran.

Each step reports changed honestly: kubectl's `unchanged` (or `--dry-run=server` in check mode),
and for commands whether the record already holds the same content from the same image.

Deletion (sealer has none: its Delete launch is a TODO in pkg/application/appdriver.go): the
record keeps, for each kube and helm app, the objects it applied (apiVersion, kind, namespace,
name). An app of the same image repository that is no longer launched has its objects deleted
(`kubectl delete -f <those objects> --ignore-not-found`, last applied first) and leaves the
record; an object a kept app no longer applies is deleted too. Commands cannot be undone: such an
app only leaves the record, and the result says so."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os

from ansible_collections.seal.cluster.plugins.module_utils import _cluster_record as rec
from ansible_collections.seal.cluster.plugins.module_utils import _digest
from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext_mod
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._k3s_kube import kubectl

HELMCHART_API = "helm.cattle.io/v1"
HELMCHART_NAMESPACE = "kube-system"  # where k3s keeps its own HelmCharts (k3s manifests/traefik.yaml)
DIGEST_ANNOTATION = "seal.cluster/image-digest"
CMDS_NAME = "CMDS"


def tree_files(root):
    """[(relative path, absolute path)] of the regular files under root, sorted; symlinks that
    leave root are refused."""
    out = []
    real_root = os.path.realpath(root)
    for base, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(base, name)
            real = os.path.realpath(path)
            if not real.startswith(real_root + os.sep):
                raise ModuleFailure("%s leads out of %s; refused" % (path, root))
            out.append((os.path.relpath(path, root), path))
    return sorted(out)


def content_digest(root, extra):
    """sha256 over the files of root (names and bytes) and extra (the commands and env)."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for rel, path in tree_files(root) if root and os.path.isdir(root) else []:
        h.update(rel.encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return "sha256:" + h.hexdigest()


def chart_tgz(chart_dir, name):
    """The chart directory as a .tgz with one top directory (helm's archive form); reproducible
    (mtime 0, owner 0:0, sorted, gzip without a timestamp)."""
    raw = io.BytesIO()
    with safe.Writer(raw) as tar:
        tar.add_dir(name)
        seen = {name}
        for rel, path in tree_files(chart_dir):
            parts = rel.split(os.sep)
            for i in range(1, len(parts)):
                d = "/".join([name] + parts[:i])
                if d not in seen:
                    tar.add_dir(d)
                    seen.add(d)
            tar.add_file("/".join([name] + parts), path, 0o644)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def helmchart(name, tgz, digest, target_namespace="default"):
    """The HelmChart object k3s's helm controller installs the chart from."""
    return {"apiVersion": HELMCHART_API, "kind": "HelmChart",
            "metadata": {"name": name, "namespace": HELMCHART_NAMESPACE, "annotations": {DIGEST_ANNOTATION: digest}},
            "spec": {"chartContent": base64.b64encode(tgz).decode("ascii"), "targetNamespace": target_namespace}}


def repository(image):
    """The image's repository (no tag, no digest): which recorded apps a run of it may delete."""
    try:
        return Reference.parse(image).name
    except ReferenceError_:
        return image


def object_refs(text, where):
    """[{apiVersion, kind, namespace, name}] of `kubectl get -o json` output (one object or a List)."""
    try:
        doc = json.loads(text or "{}")
    except ValueError as exc:
        raise ModuleFailure("%s: kubectl get -o json gave no JSON: %s" % (where, exc)) from exc
    items = doc.get("items") if isinstance(doc, dict) and "items" in doc else [doc] if doc else []
    out = []
    for item in items or []:
        meta = item.get("metadata") or {} if isinstance(item, dict) else {}
        ref = {"apiVersion": item.get("apiVersion") or "", "kind": item.get("kind") or "",
               "namespace": meta.get("namespace") or "", "name": meta.get("name") or ""}
        if all(isinstance(ref[k], str) for k in ref) and ref["kind"] and ref["name"] and ref not in out:
            out.append(ref)
    return out


def ref_list(refs):
    """A v1 List of the bare objects, for `kubectl delete -f` (kind, name and namespace are all it reads)."""
    items = []
    for ref in refs:
        meta = {"name": ref["name"]}
        if ref["namespace"]:
            meta["namespace"] = ref["namespace"]
        items.append({"apiVersion": ref["apiVersion"], "kind": ref["kind"], "metadata": meta})
    return {"apiVersion": "v1", "kind": "List", "items": items}


def ref_text(ref):
    return "%s/%s%s" % (ref["kind"], ref["namespace"] + "/" if ref["namespace"] else "", ref["name"])


def applied_changed(out):
    """Whether `kubectl apply` changed anything: a line other than `<kind>/<name> unchanged`."""
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    return any(" unchanged" not in line for line in lines)


class Launcher:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.temp_count = 0

    def kubectl_apply(self, path, where):
        args = ["apply", "-f", path] + (["--dry-run=server"] if self.check else [])
        rc, out, err = kubectl(self.module, *args)
        if rc != 0:
            raise ModuleFailure("%s: kubectl apply -f %s failed (rc %d): %s" % (where, path, rc, (err or out).strip()),
                                rc=rc, stdout=out, stderr=err)
        return applied_changed(out), out.strip()

    def kubectl_objects(self, path, where):
        """The objects a manifest file names, as the API holds them (their namespaces filled in)."""
        rc, out, err = kubectl(self.module, "get", "-f", path, "-o", "json")
        if rc != 0:
            raise ModuleFailure("%s: kubectl get -f %s failed (rc %d): %s" % (where, path, rc, (err or out).strip()),
                                rc=rc, stdout=out, stderr=err)
        return object_refs(out, where)

    def temp_json(self, name, obj):
        self.temp_count += 1
        path = os.path.join(self.module.tmpdir, "%d-%s" % (self.temp_count, name))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        return path

    def delete_objects(self, refs, where):
        """(changed, output) of deleting refs, last applied first; absent objects are not an error."""
        if not refs:
            return False, ""
        path = self.temp_json("delete.json", ref_list(list(reversed(refs))))
        try:
            args = ["delete", "-f", path, "--ignore-not-found"] + (["--dry-run=server"] if self.check else [])
            rc, out, err = kubectl(self.module, *args)
        finally:
            os.unlink(path)
        if rc != 0:
            what = ", ".join(ref_text(r) for r in refs)
            raise ModuleFailure("%s: kubectl delete %s failed (rc %d): %s" % (where, what, rc, (err or out).strip()),
                                rc=rc, stdout=out, stderr=err)
        return bool(out.strip()), out.strip()

    def run_cmd(self, argv, cwd, env, where):
        rc, out, err = self.module.run_command(argv, cwd=cwd, environ_update=env)
        if rc != 0:
            raise ModuleFailure("%s failed (rc %d): %s" % (where, rc, (err or out).strip()[-2000:]), rc=rc, stdout=out, stderr=err)
        return out

    def step(self, step, rootfs, before, content, where):
        """(changed, output, objects) of one launch step; before is the record's entry of this app.
        objects: what the step applied, None when it cannot be known (commands; check mode)."""
        app_root = os.path.join(rootfs, step["dir"]) if step["dir"] else rootfs
        cwd = os.path.join(rootfs, step["cwd"]) if step.get("cwd") else rootfs
        env = dict(self.p["env"], **step["env"])
        same = bool(before) and before["content"] == content
        if step["type"] == ext_mod.KUBE:
            changed, lines, objects = False, [], None
            for f in step["files"]:
                c, out = self.kubectl_apply(os.path.join(app_root, f), where)
                changed, lines = changed or c, lines + [out]
            if same and not changed and before.get("objects"):
                objects = before["objects"]  # the same files, nothing changed: the same objects
            elif not self.check:
                objects = []
                for f in step["files"]:
                    objects += [r for r in self.kubectl_objects(os.path.join(app_root, f), where) if r not in objects]
            return changed, "\n".join(lines), objects
        if step["type"] == ext_mod.HELM:
            obj = helmchart(step["app"], chart_tgz(app_root, step["app"]), self.p["digest"],
                            env.get("NAMESPACE") or "default")
            path = self.temp_json("helmchart-%s.json" % step["app"], obj)
            try:
                changed, out = self.kubectl_apply(path, where)
            finally:
                os.unlink(path)
            return changed, out, [{"apiVersion": HELMCHART_API, "kind": "HelmChart", "namespace": HELMCHART_NAMESPACE,
                                   "name": step["app"]}]
        # shell apps and commands run once per content; the record says what ran
        if same:
            return False, "", None
        if self.check:
            return True, "", None
        if step["type"] == ext_mod.SHELL:
            outs = [self.run_cmd(["bash", os.path.join(app_root, f)], app_root, env, where) for f in step["files"]]
        else:
            outs = [self.run_cmd(["/bin/sh", "-c", cmd], cwd, env, where + ": " + cmd) for cmd in step["cmds"]]
        return True, "".join(outs).strip(), None

    def remove(self, app, where):
        """(changed, output) of taking an app that is no longer launched off the cluster."""
        if not app.get("objects"):
            return False, "nothing to delete: commands cannot be undone (sealer has no delete commands); dropped from the record"
        return self.delete_objects(app["objects"], where)

    def run(self):
        try:
            extension = ext_mod.parse_extension(self.p["extension"], "image %s: %s" % (self.p["image"], ext_mod.EXTENSION))
            steps = ext_mod.launch_steps(extension, self.p["launch"], self.p["application"])
        except ext_mod.ExtensionError as exc:
            raise ModuleFailure(str(exc)) from exc
        try:
            _digest.check(self.p["digest"], "digest")
        except _digest.DigestError as exc:
            raise ModuleFailure("apps run only from an image referenced by digest: %s" % exc) from exc
        recorded = rec.read(self.p["record"]).get("apps", [])
        rootfs = self.p["rootfs"]
        names = {st["app"] or CMDS_NAME for st in steps}
        repo = repository(self.p["image"])
        dropped = [a for a in recorded if a["name"] not in names and repository(a["image"]) == repo]
        if steps and not os.path.isdir(rootfs) and self.check:  # its distribution was only checked too
            results = [{"name": st["app"] or CMDS_NAME, "type": st["type"], "changed": True,
                        "msg": "app %s of image %s@%s: would be launched" % (st["app"] or CMDS_NAME, self.p["image"], self.p["digest"])}
                       for st in steps]
            results += [{"name": a["name"], "type": a["type"], "changed": bool(a.get("objects")),
                         "msg": "app %s (%s) of image %s: would be removed" % (a["name"], a["type"], a["image"])} for a in dropped]
            return {"changed": True, "apps": results, "record_apps": recorded, "record_changed": True}
        if steps and not os.path.isdir(rootfs):
            raise ModuleFailure("%s: the image's rootfs is not on this host" % rootfs)
        previous = {a["name"]: a for a in recorded}
        entries, results, changed = [], [], False
        for step in steps:
            name = step["app"] or CMDS_NAME
            where = "app %s (%s) of image %s@%s" % (name, step["type"], self.p["image"], self.p["digest"])
            content = content_digest(os.path.join(rootfs, step["dir"]) if step["dir"] else None,
                                     {"cmds": step["cmds"], "files": step["files"], "env": step["env"], "type": step["type"],
                                      "cwd": step.get("cwd", step["dir"])})
            before = previous.get(name)
            step_changed, out, objects = self.step(step, rootfs, before, content, where)
            known = (before or {}).get("objects") or []
            stale = [r for r in known if r not in objects] if objects is not None else []
            if stale:  # objects the app applied before and applies no more
                pruned, pruned_out = self.delete_objects(stale, where)
                step_changed, out = step_changed or pruned, "\n".join(x for x in (out, pruned_out) if x)
            changed = changed or step_changed
            entry = {"name": name, "type": step["type"], "image": self.p["image"], "digest": self.p["digest"],
                     "content": content, "objects": known if objects is None else objects}
            entries.append(entry)
            results.append(dict(entry, changed=step_changed, output=out,
                                msg="%s: %s" % (where, "applied" if step_changed else "unchanged")))
        for app in dropped:
            where = "app %s (%s) of image %s@%s" % (app["name"], app["type"], app["image"], app["digest"])
            removed, out = self.remove(app, where)
            changed = changed or removed
            results.append(dict(app, changed=removed, output=out, msg="%s: removed (no longer launched)" % where))
        record = [a for a in recorded if a["name"] not in names and a not in dropped] + entries
        return {"changed": changed, "apps": results, "record_apps": record, "record_changed": record != recorded}
