# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""seal: k3s clusters from cluster images, the way sealer and sealos users run them.

    seal run IMAGE --masters IP[:PORT],... [--nodes IP[:PORT],...] [--user U]
             [--pk FILE | --passwd-file FILE | --ask-pass] [-e KEY=VALUE] [--cluster NAME]
    seal run -f Clusterfile [IMAGE]          seal apply -f Clusterfile
    seal add --masters ... --nodes ...       seal delete --masters ... --nodes ... [--force] [--yes]
    seal upgrade IMAGE                       seal reset [--yes]
    seal status                              seal plan [-f Clusterfile]
    seal images|pull|push|build|build-k3s|save|load|inspect|tag|rmi ...   (as seal-image)

Every verb that changes a cluster takes --check (show what it would do, change nothing),
--output auto|plain|json (auto: a live view on a terminal, lines otherwise) and --cluster NAME
(default: the only cluster in ~/.seal, else `default`). The cluster's Clusterfile is kept in
~/.seal/<cluster>/Clusterfile (0600, directory 0700) and replaced only after a successful run.
Passwords come from --passwd-file, --ask-pass or $SEAL_SSH_PASSWORD, never from the command line.

Exit status: 0 done, 1 the run failed (the failing host, task and message, and the log's path
are printed), 2 bad input, found before any host is connected to."""

from __future__ import annotations

import argparse
import getpass
import os
import queue
import re
import sys
import threading

from ansible_collections.seal.cluster.plugins.module_utils._image_ref import DEFAULT_REGISTRY, Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile_edit as edit
from ansible_collections.seal.cluster.plugins.plugin_utils import image_cli
from ansible_collections.seal.cluster.plugins.plugin_utils import seal_api as api
from ansible_collections.seal.cluster.plugins.plugin_utils import seal_progress as progress

IMAGE_VERBS = ("images", "pull", "push", "build", "build-k3s", "save", "load", "inspect", "tag", "rmi")
PASSWORD_ENV = "SEAL_SSH_PASSWORD"
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UsageError(Exception):
    """Bad input: exit status 2, one line."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --passwd is no abbreviation of --passwd-file
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message)


def _common(p, check=True):
    p.add_argument("--cluster", help="cluster name (default: the only one in ~/.seal, else default)")
    p.add_argument("--output", choices=("auto", "plain", "json"), default="auto",
                   help="auto: a live view on a terminal, plain lines otherwise; json: one object per event")
    p.add_argument("--store", help="image store (default $SEAL_IMAGE_STORE, else ~/.cache/seal/images)")
    if check:
        p.add_argument("--check", action="store_true", help="show what would change, change nothing")


def _hosts_args(p):
    p.add_argument("--masters", default="", metavar="IP[:PORT],...", help="the servers (k3s server)")
    p.add_argument("--nodes", default="", metavar="IP[:PORT],...", help="the agents (k3s agent)")


def parser():
    p = _Parser(prog="seal", description="k3s clusters from OCI cluster images, offline (seal.cluster on ansible-runner).")
    sub = p.add_subparsers(dest="verb", required=True, metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="install a cluster: IMAGE with --masters/--nodes, or -f Clusterfile")
    r.add_argument("images", nargs="*", metavar="IMAGE",
                   help="the cluster image, then app-installer images to run on it (or app images alone, on the stored cluster)")
    r.add_argument("-f", "--file", metavar="CLUSTERFILE", help="the cluster's Clusterfile")
    _hosts_args(r)
    r.add_argument("--user", default="root", help="ssh user (default root)")
    auth = r.add_mutually_exclusive_group()
    auth.add_argument("--pk", metavar="FILE", help="ssh private key file")
    auth.add_argument("--passwd-file", metavar="FILE", help="file whose first line is the ssh password")
    auth.add_argument("--ask-pass", action="store_true", help="ask for the ssh password")
    r.add_argument("-e", "--env", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="an Ansible variable (kept in a 0600 file, never on a command line)")
    _common(r)

    a = sub.add_parser("apply", help="make the cluster match a Clusterfile (joins, deletions, upgrade)")
    a.add_argument("-f", "--file", required=True, metavar="CLUSTERFILE")
    a.add_argument("-e", "--env", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    _common(a)

    pl = sub.add_parser("plan", help="what apply would do (apply --check)")
    pl.add_argument("-f", "--file", metavar="CLUSTERFILE", help="default: the stored Clusterfile")
    _common(pl, check=False)

    ad = sub.add_parser("add", help="join hosts to the cluster")
    _hosts_args(ad)
    _common(ad)

    d = sub.add_parser("delete", help="remove hosts from the cluster (drain, delete the node, reset the host)")
    _hosts_args(d)
    d.add_argument("--force", action="store_true", help="also when it leaves an even etcd member count; force drains")
    d.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _common(d)

    u = sub.add_parser("upgrade", help="rolling upgrade to a new cluster image")
    u.add_argument("image", metavar="IMAGE")
    _common(u)

    rs = sub.add_parser("reset", help="remove k3s and everything seal installed from the cluster's hosts")
    rs.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _common(rs)

    s = sub.add_parser("status", help="nodes, roles, Ready, versions, image; exit 1 when not healthy")
    _common(s, check=False)

    for verb in IMAGE_VERBS:
        sub.add_parser(verb, help="as seal-image %s" % verb, add_help=False)
    return p


# --- input ----------------------------------------------------------------------------------------

def _cluster_name(args, default_from=None):
    if args.cluster:
        return args.cluster
    if default_from:
        return default_from
    home = api.seal_home()
    known = sorted(n for n in (os.listdir(home) if os.path.isdir(home) else [])
                   if os.path.isfile(os.path.join(home, n, "Clusterfile")))
    return known[0] if len(known) == 1 else "default"


def _stored(args):
    name = _cluster_name(args)
    path = api.stored_clusterfile(name)
    if not os.path.isfile(path):
        raise UsageError("cluster %s has no Clusterfile in %s: install it with seal run first" % (name, path))
    return name, path, api.read_text(path)


def _password(args):
    if getattr(args, "passwd_file", None):
        try:
            with open(args.passwd_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\r\n")
        except OSError as exc:
            raise UsageError("--passwd-file %s: %s" % (args.passwd_file, exc.strerror)) from None
        if not password:
            raise UsageError("--passwd-file %s: the first line is empty" % args.passwd_file)
        return password
    if getattr(args, "ask_pass", False):
        return getpass.getpass("SSH password: ")
    return os.environ.get(PASSWORD_ENV) or None


def _extra_vars(items):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not VAR_NAME.fullmatch(key):
            raise UsageError("-e wants KEY=VALUE with KEY a variable name, got %r" % item.split("=", 1)[0])
        out[key] = value
    return out


def _check_image(name, store):
    if not name:
        raise UsageError("no cluster image: give IMAGE (or spec.image in the Clusterfile)")
    try:
        ref = Reference.parse(name)
    except ReferenceError_ as exc:
        raise UsageError("image %r: %s" % (name, exc)) from None
    st = Store(store)
    if (not os.path.isdir(st.root) or st.resolve(ref) is None) and ref.registry == DEFAULT_REGISTRY:
        # a short name (docker.io) not in the store is unknown here; a name with a registry host is pulled by the run
        raise UsageError("image %s is not in the store %s: seal pull %s, seal load -i ARCHIVE or seal build first"
                         % (ref.familiar(), st.root, name))


def _confirm(args, question):
    if args.yes or args.check:
        return
    if not sys.stdin.isatty():
        raise UsageError("%s: give --yes to confirm (stdin is not a terminal)" % question)
    answer = input("%s [y/N] " % question)
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed: nothing changed")


# --- running with progress --------------------------------------------------------------------------

def _view(args, prog, title):
    mode = args.output
    if mode == "auto":
        mode = "live" if sys.stdout.isatty() and progress.HAS_RICH else "plain"
    if mode == "json":
        return progress.JsonView(prog, lambda line: print(line, flush=True))
    if mode == "live":
        return progress.LiveView(prog, title)
    return progress.PlainView(prog, lambda line: print(line, flush=True))


def _groups(info):
    return {"master": info["masters"], "node": info["nodes"], "master0": info["masters"][:1],
            "all": info["masters"] + info["nodes"]}


def _run_with_progress(args, title, info, operation, groups=None):
    """Run operation(on_event) in a thread; feed its events to the view from this one."""
    events = queue.Queue()
    prog = progress.Progress(dict(_groups(info), **(groups or {})))
    view = _view(args, prog, title)
    box = {}

    def target():
        try:
            box["result"] = operation(events.put)
        except BaseException as exc:  # pylint: disable=broad-exception-caught
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        while thread.is_alive() or not events.empty():
            try:
                event = events.get(timeout=0.25)
            except queue.Empty:
                view.tick()
                continue
            if event.get("event") == "secret_redacted":
                print("seal: warning: a secret was found in the run's artifacts and redacted: %s"
                      % ", ".join(event["event_data"]["files"]), file=sys.stderr)
                continue
            for rec in prog.handle(event):
                view.record(rec)
            view.tick()
    finally:
        view.close()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    if args.output == "json":
        print(progress.json.dumps({"event": "end", "rc": result.rc, "status": result.status, "log": result.log,
                                   "run_dir": result.run_dir, "failures": prog.failures}, sort_keys=True), flush=True)
    if not result.ok:
        for failure in prog.failures[:5]:
            print("seal: %s failed on %s in task %r (phase %s): %s" % (title, failure["host"], failure["task"],
                                                                       failure["phase"], failure["message"]), file=sys.stderr)
        if not prog.failures:
            print("seal: %s failed (%s, rc %s)" % (title, result.status, result.rc), file=sys.stderr)
        print("seal: full log: %s" % result.log, file=sys.stderr)
    elif args.output != "json":
        print("seal: %s done (log: %s)" % (title, result.log))
    return result


def _candidate(name, text):
    """The Clusterfile a run uses before it becomes the stored one: ~/.seal/<cluster>/Clusterfile.next (0600)."""
    path = os.path.join(api.cluster_dir(name), "Clusterfile.next")
    api.write_private(path, text)
    return path


def _finish(args, name, candidate, result, keep=True):
    """Replace the stored Clusterfile with the candidate after a successful run (not in check mode)."""
    if result.ok and keep and not getattr(args, "check", False):
        os.replace(candidate, api.stored_clusterfile(name))
    elif os.path.exists(candidate):
        os.unlink(candidate)
    return 0 if result.ok else 1


def _op_kwargs(args, extra=None):
    kwargs = {"check": bool(getattr(args, "check", False))}
    if extra:
        kwargs["vars_text"] = api.yaml_text(extra)
    return kwargs


# --- verbs ------------------------------------------------------------------------------------------

def _image_type(name, store):
    """sealer's type of an image in the local store (kube-installer, app-installer), or None when
    the store does not hold it."""
    try:
        st = Store(store)
        desc = st.resolve(Reference.parse(name)) if os.path.isdir(st.root) else None
        return describe(st, desc)["type"] if desc else None
    except (ReferenceError_, StoreError) as exc:
        raise UsageError("image %s: %s" % (name, exc)) from None


def _check_app_images(images, store):
    for image in images:
        if _image_type(image, store) != "app-installer":
            raise UsageError("%s is not an app-installer image in the store %s: apps run only from an image in the "
                             "local store (seal pull / seal load / seal build --type app-installer first)" % (image, store or "default"))


def _run_apps(args, images, extra):
    """seal run APP-IMAGE...: each app-installer image on the stored cluster, in order (run.yml
    installs only its apps); the stored Clusterfile is not changed."""
    _check_app_images(images, args.store)
    name = _cluster_name(args, None) if args.cluster else "default"
    stored = api.stored_clusterfile(name)
    if not os.path.isfile(stored):
        raise UsageError("no cluster %s (%s): run its cluster image first, then its app images" % (name, stored))
    info = edit.info(api.read_text(stored))
    # sealer runs an app image named on the command line without the Clusterfile's Application
    # document (cmd/sealer/cmd/cluster/run.go runWithArgs: ConstructApplication(nil, ...))
    app_extra = dict(extra or {}, controller_application=None)
    for image in images:
        result = _run_with_progress(args, "run %s" % image, info,
                                    lambda on_event, image=image: api.run(stored, image=image, on_event=on_event,
                                                                          **_op_kwargs(args, app_extra)))
        if not result.ok:
            return 1
    return 0


def cmd_run(args):
    extra = _extra_vars(args.extra)
    apps = list(args.images[1:])
    if args.images and not args.file and not args.masters and _image_type(args.images[0], args.store) == "app-installer":
        return _run_apps(args, args.images, extra)  # sealer: an app image runs on the existing cluster
    if apps:
        _check_app_images(apps, args.store)  # bad input before any host changes
        code = cmd_run(argparse.Namespace(**dict(vars(args), images=args.images[:1])))
        return code or _run_apps(args, apps, extra)
    image = args.images[0] if args.images else None
    if args.file:
        if args.masters or args.nodes:
            raise UsageError("-f and --masters/--nodes exclude each other: the Clusterfile lists the hosts")
        text, info = _read_clusterfile(args.file)
        if image:
            text = edit.set_image(text, image)
        name = _cluster_name(args, info["name"])
        if name != info["name"]:
            raise UsageError("--cluster %s but %s names cluster %s" % (name, args.file, info["name"]))
    else:
        if not image:
            raise UsageError("give the cluster IMAGE (or -f Clusterfile)")
        masters = edit.parse_hosts(args.masters, "--masters")
        nodes = edit.parse_hosts(args.nodes, "--nodes")
        if not masters:
            raise UsageError("--masters: at least one master is needed")
        both = {ip for ip, _p in masters} & {ip for ip, _p in nodes}
        if both:
            raise UsageError("%s is in --masters and --nodes" % ", ".join(sorted(both)))
        pk = None
        if args.pk:
            pk = os.path.abspath(os.path.expanduser(args.pk))
            if not os.path.isfile(pk) or not os.access(pk, os.R_OK):
                raise UsageError("--pk %s: no such readable key file" % args.pk)
        name = _cluster_name(args, None) if args.cluster else "default"
        try:
            text = edit.new(name, masters, nodes, user=args.user, passwd=_password(args), pk=pk, image=image)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    info = edit.info(text)
    _check_image(info["image"], args.store)
    stored = api.stored_clusterfile(info["name"])
    if os.path.isfile(stored) and not args.file:
        old = edit.info(api.read_text(stored))
        if old["image"] != info["image"]:
            raise UsageError("cluster %s runs %s: use seal upgrade %s to change its image" % (info["name"], old["image"], info["image"]))
        if (sorted(old["masters"]), sorted(old["nodes"])) != (sorted(info["masters"]), sorted(info["nodes"])):
            raise UsageError("cluster %s has other hosts (masters %s, nodes %s): use seal add / seal delete, or seal apply -f"
                             % (info["name"], ",".join(old["masters"]), ",".join(old["nodes"]) or "-"))
    candidate = _candidate(info["name"], text)
    result = _run_with_progress(args, "run %s" % info["image"], info,
                                lambda on_event: api.run(candidate, on_event=on_event, **_op_kwargs(args, extra)))
    return _finish(args, info["name"], candidate, result)


def _read_clusterfile(path):
    try:
        text = api.read_text(path)
    except OSError as exc:
        raise UsageError("%s: %s" % (path, exc.strerror)) from None
    try:
        return text, edit.info(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_apply(args, check=None):
    extra = _extra_vars(getattr(args, "extra", []))
    if check is not None:
        args.check = check
    if args.file:
        text, info = _read_clusterfile(args.file)
    else:
        _name, _path, text = _stored(args)
        info = edit.info(text)
    _check_image(info["image"], args.store)
    candidate = _candidate(info["name"], text)
    result = _run_with_progress(args, "plan" if args.check else "apply", info,
                                lambda on_event: api.apply(candidate, on_event=on_event, **_op_kwargs(args, extra)))
    return _finish(args, info["name"], candidate, result)


def cmd_plan(args):
    return cmd_apply(args, check=True)


def cmd_add(args):
    name, _path, text = _stored(args)
    masters, nodes = edit.parse_hosts(args.masters, "--masters"), edit.parse_hosts(args.nodes, "--nodes")
    try:
        new = edit.add_hosts(text, masters, nodes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    info = edit.info(new)
    _check_image(info["image"], args.store)
    candidate = _candidate(name, new)
    result = _run_with_progress(args, "add", info, lambda on_event: api.run(candidate, on_event=on_event, **_op_kwargs(args)))
    return _finish(args, name, candidate, result)


def cmd_delete(args):
    name, path, text = _stored(args)
    ips = [ip for ip, _p in edit.parse_hosts(args.masters, "--masters") + edit.parse_hosts(args.nodes, "--nodes")]
    try:
        new = edit.remove_hosts(text, ips)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _confirm(args, "delete %s from cluster %s" % (", ".join(ips), name))
    info = edit.info(text)
    candidate = _candidate(name, new)
    # delete.yml connects to (and resets) the hosts its inventory lists: run it with the Clusterfile that still lists them
    result = _run_with_progress(args, "delete", info, lambda on_event: api.delete(
        path, hosts=ips, force=args.force, on_event=on_event, **_op_kwargs(args)), groups={"seal_delete": ips})
    return _finish(args, name, candidate, result)


def cmd_upgrade(args):
    name, _path, text = _stored(args)
    _check_image(args.image, args.store)
    new = edit.set_image(text, args.image)
    info = edit.info(new)
    candidate = _candidate(name, new)
    result = _run_with_progress(args, "upgrade to %s" % args.image, info, lambda on_event: api.upgrade(
        candidate, args.image, on_event=on_event, **_op_kwargs(args)))
    return _finish(args, name, candidate, result)


def cmd_reset(args):
    name, path, text = _stored(args)
    info = edit.info(text)
    _confirm(args, "reset cluster %s (%s): k3s and its data are removed from every host"
             % (name, ", ".join(info["masters"] + info["nodes"])))
    result = _run_with_progress(args, "reset", info, lambda on_event: api.reset(path, on_event=on_event, **_op_kwargs(args)))
    if result.ok and not args.check:
        os.replace(path, path + ".reset")  # the cluster is gone; its last Clusterfile stays for reference
    return 0 if result.ok else 1


def cmd_status(args):
    _name, path, _text = _stored(args)
    st = api.status(path)
    if args.output == "json":
        print(api.dump_status(st))
    else:
        record = st["record"] or {}
        print("cluster %s: %s (API through %s)" % (st["cluster"], "healthy" if st["healthy"] else "NOT healthy",
                                                   st["api_host"] or "-"))
        if record:
            print("image %s %s, k3s %s" % (record.get("image", "-"), record.get("digest", "-"), record.get("version", "-")))
        rows = [("NAME", "ROLES", "STATUS", "VERSION", "ADDRESS", "IMAGE")]
        for node in st["nodes"]:
            roles = ",".join(r for r, flag in (("control-plane", node.get("server")), ("etcd", node.get("etcd"))) if flag) or "agent"
            digest = next((st["images"].get(a) for a in node.get("addresses") or [] if a in st["images"]), None)
            rows.append((node.get("name", ""), roles, "Ready" if node.get("ready") else "NotReady",
                         node.get("version") or "", ",".join(node.get("addresses") or []), _short_digest(digest)))
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())
        for registry in st["registries"]:
            if registry["status"]:
                print("registry on %s answers (HTTP %s)" % (registry["host"], registry["status"]))
        for problem in st["problems"]:
            print("problem: %s" % problem)
    return 0 if st["healthy"] else 1


def _short_digest(digest):
    """sha256:<first 12 hex digits>, or - when the host holds no rootfs."""
    return digest[:len("sha256:") + 12] if digest else "-"


VERBS = {"run": cmd_run, "apply": cmd_apply, "plan": cmd_plan, "add": cmd_add, "delete": cmd_delete,
         "upgrade": cmd_upgrade, "reset": cmd_reset, "status": cmd_status}


def _image_verb(argv):
    """seal <image verb> ... -> seal-image [--store S] <verb> ..."""
    store, rest, i = [], [], 1
    while i < len(argv):
        if argv[i] == "--store" and i + 1 < len(argv):
            store, i = ["--store", argv[i + 1]], i + 2
            continue
        if argv[i].startswith("--store="):
            store = ["--store", argv[i].split("=", 1)[1]]
        else:
            rest.append(argv[i])
        i += 1
    return image_cli.main(store + [argv[0]] + rest)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in IMAGE_VERBS:
        return _image_verb(argv)
    try:
        args = parser().parse_args(argv)
        if getattr(args, "store", None):
            os.environ["SEAL_IMAGE_STORE"] = os.path.abspath(args.store)
        return VERBS[args.verb](args)
    except (UsageError, edit.EditError, api.InputError) as exc:
        print("seal: %s" % exc, file=sys.stderr)
        return 2
    except api.SealError as exc:
        print("seal: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
