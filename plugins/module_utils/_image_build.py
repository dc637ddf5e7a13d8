# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build cluster images from a Kubefile context, reproducibly: one layer per COPY/ADD, entries
in sorted order with mtime 0, owner 0:0 and modes 0755/0644, gzip without a timestamp, JSON
without timestamps. The same context and arguments give the same digest."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat

from ansible.module_utils.urls import open_url

from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext_mod
from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import (
    REPOSITORIES, CacheError, ImageCache, cached_path, images_wanted)
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference
from ansible_collections.seal.cluster.plugins.module_utils._kubefile import APP_KEYWORDS, Instruction, KubefileError, parse

KUBEFILE_LABEL = "io.seal.cluster.kubefile"
ARCHES = ("amd64", "arm64", "arm", "s390x", "ppc64le", "riscv64")


class BuildError(ValueError):
    pass


def _norm_dest(dest):
    dest = dest.strip()
    parts = [p for p in dest.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BuildError("destination %r leaves the image root" % dest)
    return "/".join(parts)


class LayerWriter:
    """A reproducible tar layer: entries are collected, then written sorted."""

    def __init__(self):
        self.entries = {}

    def add_dirs(self, path):
        parts = path.split("/") if path else []
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), ("dir", None))

    def add_file(self, arcname, src):
        self.add_dirs(os.path.dirname(arcname))
        if os.path.islink(src):
            target = os.readlink(src)
            lexical = os.path.normpath(os.path.join(os.path.dirname(arcname), target))
            if target.startswith("/") or lexical == ".." or lexical.startswith("../"):
                raise BuildError("%s is a symlink to %r, which leaves the image root: the image could not be extracted" % (src, target))
            self.entries[arcname] = ("link", target)
        elif os.path.isdir(src):
            self.entries[arcname] = ("dir", None)
            for name in os.listdir(src):
                self.add_file(arcname + "/" + name, os.path.join(src, name))
        elif os.path.isfile(src):
            self.entries[arcname] = ("file", src)
        else:
            raise BuildError("%s is neither a file, a directory nor a symlink" % src)

    def write(self, fileobj):
        with safe.Writer(fileobj) as tar:
            for name in sorted(self.entries):
                kind, data = self.entries[name]
                if kind == "dir":
                    tar.add_dir(name, 0o755)
                elif kind == "link":
                    tar.add_symlink(name, data)
                else:
                    tar.add_file(name, data, 0o755 if os.stat(data).st_mode & stat.S_IXUSR else 0o644, 0)


def _store_layer(store, writer):
    """Write the layer to the store gzip-compressed; return its descriptor and diff id."""
    raw = store.tempfile()
    with open(raw, "wb") as f:
        writer.write(f)
    diff_id, _size = store_mod.sha256_file(raw)
    packed = store.tempfile()
    with open(raw, "rb") as src, open(packed, "wb") as out:
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6, filename="") as gz:
            shutil.copyfileobj(src, gz, 1 << 20)
    os.unlink(raw)
    digest, size = store.put_file(packed)
    return {"mediaType": store_mod.LAYER_GZIP, "digest": digest, "size": size}, diff_id


class Builder:
    def __init__(self, store, context, kubefile=None, arch="amd64", build_args=None, fetch=None,
                 cache_images=True, image_cache=None, progress=None, image_type=None):
        if arch not in ARCHES:
            raise BuildError("unknown architecture %r (one of %s)" % (arch, ", ".join(ARCHES)))
        self.store = store
        self.context = os.path.abspath(context)
        self.kubefile = kubefile or os.path.join(self.context, "Kubefile")
        self.arch = arch
        self.args = dict(build_args or {})
        self.args.setdefault("ARCH", arch)
        self.fetch = fetch or open_url
        self.cache_images = cache_images
        self.image_cache = image_cache
        self.progress = progress or (lambda message: None)
        self.image_type = image_type or ext_mod.KUBE_INSTALLER  # sealer build --type's default
        if self.image_type not in ext_mod.TYPES:
            raise BuildError("unknown image type %r (one of %s)" % (image_type, ", ".join(ext_mod.TYPES)))

    def source(self, name, where):
        """The path of a COPY/ADD source, checked by real path: symlinks on the way (the source
        itself included) must not lead out of the build context."""
        context = os.path.realpath(self.context)
        path = os.path.join(context, name)
        real = os.path.realpath(path)
        if real != context and not real.startswith(context + os.sep):
            raise BuildError("%s: %s is outside the build context %s (its real path is %s)" % (where, name, self.context, real))
        if not os.path.lexists(path):
            raise BuildError("%s: %s not found in the build context %s" % (where, name, self.context))
        return os.path.normpath(path)

    def copy_layer(self, ins, where):
        writer = LayerWriter()
        dest = _norm_dest(ins.args["dest"])
        into_dir = ins.args["dest"].endswith("/") or dest == "" or len(ins.args["sources"]) > 1
        for name in ins.args["sources"]:
            src = self.source(name, where)
            if os.path.isdir(src) and not os.path.islink(src):
                writer.add_dirs(dest)
                for child in os.listdir(src):
                    writer.add_file((dest + "/" if dest else "") + child, os.path.join(src, child))
            else:
                target = (dest + "/" if dest else "") + os.path.basename(src) if into_dir else dest
                writer.add_file(target, src)
        return writer

    def add_layer(self, ins, where, tmpdir):
        src, checksum = ins.args["sources"][0], ins.args["options"]["checksum"]
        local = os.path.join(tmpdir, os.path.basename(src.rstrip("/")) or "download")
        h = hashlib.sha256()
        if "://" in src:
            try:
                with self.fetch(src) as resp, open(local, "wb") as out:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        h.update(chunk)
                        out.write(chunk)
            except OSError as exc:
                raise BuildError("%s: ADD %s failed: %s" % (where, src, exc)) from exc
        else:
            shutil.copyfile(self.source(src, where), local)
            with open(local, "rb") as f:
                h.update(f.read())
        if "sha256:" + h.hexdigest() != checksum:
            raise BuildError("%s: ADD %s: checksum mismatch, expected %s, got sha256:%s" % (where, src, checksum, h.hexdigest()))
        os.chmod(local, 0o644)
        writer = LayerWriter()
        dest = _norm_dest(ins.args["dest"])
        writer.add_file(dest + "/" + os.path.basename(local) if ins.args["dest"].endswith("/") or not dest else dest, local)
        return writer

    def app_layer(self, ins, where):
        """The layer of an APP/CNI/CSI: its sources under application/apps/<name>/ (sealer's
        COPY <sources> <approot>/<name>/), and the app as sealer's v1 Application."""
        name = ins.args["name"]
        copy = Instruction("COPY", {"sources": ins.args["sources"], "dest": ext_mod.app_dir(name) + "/", "options": {}},
                           ins.line, ins.raw)
        writer = self.copy_layer(copy, where)
        app_type, files = ext_mod.detect([self.source(src, where) for src in ins.args["sources"]])
        # no type: the app needs APPCMDS (checked once the whole Kubefile is read, as sealer does)
        return writer, ext_mod.application(name, app_type, [name] if app_type == ext_mod.HELM else files)

    def wanted_images(self, layers):
        """(wanted [(ref, where)], cached registry/ link paths) of the merged layers."""
        files, cached = scan_layers(self.store, layers)
        try:
            return images_wanted(files), cached
        except CacheError as exc:
            raise BuildError(str(exc)) from exc

    def cache_layer(self, layers, tmpdir, wanted, cached):
        """A layer with registry/ holding the images that manifests/ name and the image lacks;
        (descriptor, diff id, count), or None when nothing is missing."""
        missing = [(ref, where) for ref, where in wanted if cached_path(ref) not in cached]
        if not missing:
            return None
        storage = os.path.join(tmpdir, "registry")
        try:
            cache = self.image_cache or ImageCache.find(self.arch, progress=self.progress)
            cache.fill([ref for ref, _where in missing], storage, {str(ref): where for ref, where in missing})
        except CacheError as exc:
            raise BuildError(str(exc)) from exc
        writer = LayerWriter()
        writer.add_file("registry", storage)
        desc, diff_id = _store_layer(self.store, writer)
        return desc, diff_id, len(missing)

    def build(self, ref):
        """Build, tag ref; return (manifest descriptor, previous digest or None)."""
        ref = Reference.parse(ref) if isinstance(ref, str) else ref
        try:
            with open(self.kubefile, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise BuildError("cannot read the Kubefile %s: %s" % (self.kubefile, exc)) from exc
        try:
            instructions = parse(text, self.kubefile, self.args)
        except KubefileError as exc:
            raise BuildError(str(exc)) from exc
        layers, diff_ids, history = [], [], []
        config = {"Labels": {}, "Env": []}
        apps, launch, cmds, env = {}, [], [], {}
        app_lines, app_cmds, app_env = {}, {}, {}
        tmpdir = os.path.join(self.store.root, "blobs", ".build-%d" % os.getpid())
        with self.store.lock():
            os.makedirs(tmpdir, exist_ok=True)
            try:
                for ins in instructions:
                    where = "%s:%d" % (self.kubefile, ins.line)
                    if ins.keyword == "FROM" and ins.args[0] != "scratch":
                        base = self.store.resolve(ins.args[0])
                        if base is None:
                            raise BuildError("%s: base image %s is not in the store %s (pull it first)" % (where, ins.args[0], self.store.root))
                        manifest = self.store.manifest(base)
                        base_config = self.store.read_json(manifest["config"]["digest"], manifest["config"].get("size"))
                        layers += manifest.get("layers", [])
                        diff_ids += base_config.get("rootfs", {}).get("diff_ids", [])
                        history += base_config.get("history", [])
                        config.update({k: v for k, v in base_config.get("config", {}).items() if k in ("Labels", "Env", "Cmd")})
                        config["Labels"] = dict(config.get("Labels") or {})
                        config["Env"] = list(config.get("Env") or [])
                        apps.update((a["name"], a) for a in base_applications(manifest, where))
                    elif ins.keyword in APP_KEYWORDS:
                        writer, app = self.app_layer(ins, where)
                        desc, diff_id = _store_layer(self.store, writer)
                        layers.append(desc)
                        diff_ids.append(diff_id)
                        history.append({"created_by": ins.raw})
                        apps[app["name"]] = app
                        app_lines[app["name"]] = (where, ins.keyword)
                        if ins.keyword != "APP":
                            prefix = ext_mod.CNI_LABEL_PREFIX if ins.keyword == "CNI" else ext_mod.CSI_LABEL_PREFIX
                            config["Labels"][prefix + app["name"]] = "true"
                    elif ins.keyword in ("COPY", "ADD"):
                        writer = self.copy_layer(ins, where) if ins.keyword == "COPY" else self.add_layer(ins, where, tmpdir)
                        desc, diff_id = _store_layer(self.store, writer)
                        layers.append(desc)
                        diff_ids.append(diff_id)
                        history.append({"created_by": ins.raw})
                    elif ins.keyword == "LABEL":
                        config["Labels"].update(dict(ins.args))
                    elif ins.keyword == "ENV":
                        env.update(dict(ins.args))
                        config["Env"] = [e for e in config["Env"] if e.split("=", 1)[0] not in dict(ins.args)]
                        config["Env"] += ["%s=%s" % kv for kv in ins.args]
                    elif ins.keyword == "CMD":
                        config["Cmd"] = ins.args
                    elif ins.keyword in ("APPCMDS", "APPENV"):
                        name = ins.args["name"]
                        if name not in apps:
                            raise BuildError("%s: %s names app %s, which no APP before it or in the base image defines (%s)"
                                             % (where, ins.keyword, name, ", ".join(sorted(apps)) or "none"))
                        if ins.keyword == "APPCMDS":
                            app_cmds[name] = ins.args["cmds"]  # sealer: the last APPCMDS of an app wins
                        else:
                            app_env.setdefault(name, {}).update(ins.args["env"])  # sealer: APPENVs of an app merge
                    elif ins.keyword == "LAUNCH":
                        unknown = [n for n in ins.args if n not in apps]
                        if unknown:
                            raise BuildError("%s: LAUNCH names %s, which no APP of this image or its base defines (%s)"
                                             % (where, ", ".join(unknown), ", ".join(sorted(apps)) or "none"))
                        launch = ins.args
                    elif ins.keyword == "CMDS":
                        cmds = ins.args
                apps = with_app_cmds_env(apps, app_cmds, app_env, app_lines, self.kubefile)
                try:
                    wanted, cached_links = self.wanted_images(layers)
                except BuildError:
                    if self.cache_images:
                        raise
                    wanted, cached_links = [], set()  # not caching: the image list is then left out
                if self.cache_images:
                    cached = self.cache_layer(layers, tmpdir, wanted, cached_links)
                    if cached:
                        layers.append(cached[0])
                        diff_ids.append(cached[1])
                        history.append({"created_by": "seal.cluster: cache %d images of manifests/ into registry/" % cached[2]})
                config["Labels"][KUBEFILE_LABEL] = text
                image_config = {"architecture": self.arch, "os": "linux", "config": config,
                                "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
                cdigest, csize = self.store.put_bytes(store_mod.canonical_json(image_config))
                extension = ext_mod.extension(self.image_type, [apps[n] for n in sorted(apps)], launch, cmds, env)
                images = ext_mod.container_images(sorted({str(ref) for ref, _where in wanted}), self.arch)
                manifest = {"schemaVersion": 2, "mediaType": store_mod.MANIFEST,
                            "config": {"mediaType": store_mod.CONFIG, "digest": cdigest, "size": csize},
                            "layers": layers, "annotations": ext_mod.annotations(extension, images)}
                mdigest, msize = self.store.put_bytes(store_mod.canonical_json(manifest))
                before = self.store.resolve(ref)
                self.store.tag(ref, mdigest, msize)
            finally:
                shutil.rmtree(tmpdir, ignore_errors=True)
        return {"mediaType": store_mod.MANIFEST, "digest": mdigest, "size": msize}, before["digest"] if before else None


def with_app_cmds_env(apps, app_cmds, app_env, app_lines, kubefile):
    """The applications with this Kubefile's APPCMDS and APPENV set, as sealer's generateResult
    does: an APPENV replaces the app's env (SetEnv), an APPCMDS its cmds (SetCmds), a base image's
    app keeps its own otherwise; an app whose type was not detected needs APPCMDS."""
    out = {}
    for name, app in apps.items():
        cmds = app_cmds.get(name, app.get("cmds") or [])
        if not app.get("type") and not cmds:
            where, keyword = app_lines.get(name, (kubefile, "APP"))
            raise BuildError("%s: %s %s: the app's type is neither a Helm chart (Chart.yaml, values.yaml, templates/), "
                             "only .yaml/.yml files, nor only .sh files: give it APPCMDS %s [\"command\", ...] "
                             "(sealer: app %s need to specify APPCMDS if no app type detected)" % (where, keyword, name, name, name))
        out[name] = ext_mod.application(name, app.get("type") or "", app.get("files") or [],
                                        app_env.get(name, app.get("env")), cmds)
    return out


def base_applications(manifest, where):
    """The applications of a base image (its sealer.image.extension; none when it has none),
    which an image built FROM it carries on, as sealer's processFrom does."""
    text = (manifest.get("annotations") or {}).get(ext_mod.EXTENSION)
    if not text:
        return []
    try:
        parsed = ext_mod.parse_extension(text, "%s: base image's %s" % (where, ext_mod.EXTENSION))
        return [ext_mod.application(a["name"], a["type"], a["files"], a["env"], a["cmds"]) for a in parsed["applications"]]
    except ext_mod.ExtensionError as exc:
        raise BuildError(str(exc)) from exc


def scan_layers(store, layers):
    """What the merged rootfs of layers holds that image caching needs: {path: text} of the files
    under manifests/, and the set of registry/ repository link files. Blobs are verified; layers
    are read (not extracted) with the safe archive helper's rules."""
    def wanted(name):
        return name.startswith("manifests/") or (name.startswith(REPOSITORIES) and name.endswith("/link"))

    paths = [(store.verify_blob(layer["digest"], layer.get("size")), "layer %s" % layer["digest"]) for layer in layers]
    try:
        view = safe.layered_view(paths, wanted, 8 << 20)
    except safe.ArchiveError as exc:
        raise BuildError(str(exc)) from exc
    files = {name: entry.data.decode("utf-8", errors="replace") for name, entry in view.items()
             if name.startswith("manifests/") and entry.kind == "file" and entry.data is not None}
    cached = {name for name in view if name.startswith(REPOSITORIES)}
    return files, cached
