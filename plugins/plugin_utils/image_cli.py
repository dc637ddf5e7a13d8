# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""seal-image: cluster images from the command line, the way sealer users expect them.

    seal-image build -t k3s:v1.25.3 [-f Kubefile] [--build-arg ARCH=arm64] [--sources FILE] CONTEXT
    seal-image build-k3s -t k3s:v1.25.3 --k3s-version v1.25.3+k3s1 [--arch arm64] [--registry-bin F] [--context DIR] RELEASE_DIR
    seal-image pull|push [--username U --password-stdin] [--ca-file F] [--insecure] [--plain-http] NAME
    seal-image save -o FILE NAME       seal-image load -i FILE
    seal-image inspect NAME            seal-image images            seal-image rmi NAME...
    seal-image tag SOURCE TARGET

The store is --store, else $SEAL_IMAGE_STORE, else ~/.cache/seal/images (the same one the
cluster_image module uses). Registry passwords come from --password-stdin or
$SEAL_REGISTRY_PASSWORD, never from the command line. Exit status 0 on success, 1 on an error
(printed on stderr as `seal-image: <message>`), 2 on a usage error."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ansible_collections.seal.cluster.plugins.module_utils import _image_registry as registry
from ansible_collections.seal.cluster.plugins.module_utils import _image_transfer as transfer
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_release as k3s_release
from ansible_collections.seal.cluster.plugins.module_utils._image_build import ARCHES, BuildError, Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_cache import CacheError, ImageCache
from ansible_collections.seal.cluster.plugins.module_utils._image_ref import Reference, ReferenceError_
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import describe, extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store, StoreError


class CliError(Exception):
    pass


def _say(message):
    print(message, file=sys.stderr, flush=True)


def _human(size):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024.0
    return str(size)


def _resolve(store, name):
    desc = store.resolve(Reference.parse(name))
    if desc is None:
        raise CliError("image %s is not in the store %s" % (Reference.parse(name), store.root))
    return desc


def _creds(args):
    password = os.environ.get("SEAL_REGISTRY_PASSWORD")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    username = args.username or os.environ.get("SEAL_REGISTRY_USERNAME")
    if password and not username:
        raise CliError("a password needs --username (or $SEAL_REGISTRY_USERNAME)")
    if not registry.HAS_ORAS:
        raise CliError("pull and push need the oras Python library (pip install oras)")
    return {"username": username, "password": password, "ca_file": args.ca_file, "insecure": args.insecure,
            "plain_http": args.plain_http}


def cmd_build(store, args):
    build_args = {}
    for item in args.build_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError("--build-arg wants NAME=VALUE, got %r" % item)
        build_args[key] = value
    arch = build_args.get("ARCH") or args.arch
    sources = []
    if args.sources:
        with open(args.sources, encoding="utf-8") as f:
            sources = json.load(f)
        if not isinstance(sources, list):
            raise CliError("%s: expected a JSON list of {registry, username, password, ca_file, insecure}" % args.sources)
    cache = None
    if not args.no_cache_images:
        try:
            cache = ImageCache.find(arch, sources, progress=_say)
        except CacheError:
            cache = None  # an error only if some image really has to be cached
    kubefile = args.file if args.file is None or os.path.isabs(args.file) else os.path.abspath(args.file)
    builder = Builder(store, args.context, kubefile, arch, build_args, cache_images=not args.no_cache_images,
                      image_cache=cache, progress=_say, image_type=args.type)
    desc, before = builder.build(Reference.parse(args.tag))
    _say("built %s %s%s" % (Reference.parse(args.tag).familiar(), desc["digest"], " (unchanged)" if before == desc["digest"] else ""))
    print(desc["digest"])


def cmd_build_k3s(store, args):
    ref = Reference.parse(args.tag)
    desc, before = k3s_release.build(store, ref, args.release, args.k3s_version, args.arch, args.registry_bin, args.context,
                                     progress=_say)
    _say("built %s %s%s" % (ref.familiar(), desc["digest"], " (unchanged)" if before == desc["digest"] else ""))
    print(desc["digest"])


def cmd_pull(store, args):
    ref = Reference.parse(args.name)
    with store.lock():
        desc = registry.pull(store, ref, arch=args.arch, **_creds(args))
    print(desc["digest"])


def cmd_push(store, args):
    ref = Reference.parse(args.name)
    desc = _resolve(store, args.name)
    print(registry.push(store, ref, desc, **_creds(args)))


def cmd_save(store, args):
    ref = Reference.parse(args.name)
    transfer.save(store, ref, _resolve(store, args.name), args.output)
    _say("saved %s to %s" % (ref.familiar(), args.output))


def cmd_load(store, args):
    with store.lock():
        tagged = transfer.load(store, args.input)
    for ref, desc in tagged:
        print("%s %s" % (ref.familiar(), desc["digest"]))


def cmd_inspect(store, args):
    desc = _resolve(store, args.name)
    rootfs, _new = extract(store, desc)
    info = describe(store, desc, rootfs)
    info.update(name=str(Reference.parse(args.name)), rootfs=rootfs)
    print(json.dumps(info, indent=2, sort_keys=True))


def cmd_images(store, _args):
    rows = [("IMAGE", "TAG", "DIGEST", "SIZE")]
    for name, desc in store.images():
        ref = Reference.parse(name)
        try:
            manifest = store.manifest(desc)
            size = desc.get("size", 0) + manifest["config"].get("size", 0) + sum(layer.get("size", 0) for layer in manifest.get("layers", []))
            size_text = _human(size)
        except StoreError:
            size_text = "(damaged)"
        familiar = ref.familiar()
        repo = familiar.rsplit(":", 1)[0] if ref.tag else familiar.split("@", 1)[0]
        rows.append((repo, ref.tag or "<none>", desc["digest"][:19], size_text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def cmd_rmi(store, args):
    with store.lock():
        for name in args.names:
            if not store.untag(Reference.parse(name)):
                raise CliError("image %s is not in the store %s" % (Reference.parse(name), store.root))
            print("untagged %s" % Reference.parse(name).familiar())
        removed = store.gc()
    _say("removed %d unreferenced blobs" % removed)


def cmd_tag(store, args):
    desc = _resolve(store, args.source)
    with store.lock():
        store.tag(Reference.parse(args.target), desc["digest"], desc["size"], desc.get("mediaType") or "application/vnd.oci.image.manifest.v1+json")


def _registry_options(parser):
    parser.add_argument("--username", "-u", help="registry user (or $SEAL_REGISTRY_USERNAME)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin (or $SEAL_REGISTRY_PASSWORD)")
    parser.add_argument("--ca-file", help="CA bundle for the registry's TLS certificate")
    parser.add_argument("--insecure", action="store_true", help="do not verify the registry's TLS certificate")
    parser.add_argument("--plain-http", action="store_true", help="talk HTTP (loopback registries without TLS need not say so)")


def parser():
    p = argparse.ArgumentParser(prog="seal-image", description="Cluster images (OCI) in the seal.cluster store.")
    p.add_argument("--store", help="image store (default $SEAL_IMAGE_STORE, else ~/.cache/seal/images)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build an image from a Kubefile context")
    b.add_argument("-t", "--tag", required=True, help="name of the image")
    b.add_argument("-f", "--file", help="Kubefile (default CONTEXT/Kubefile)")
    b.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE", help="ARG value (ARCH picks the architecture)")
    b.add_argument("--arch", default="amd64", choices=ARCHES, help="architecture (default amd64)")
    b.add_argument("--sources", metavar="FILE", help="JSON list of source registries for image caching: "
                   "[{registry, username, password, ca_file, insecure}]")
    b.add_argument("--type", choices=["kube-installer", "app-installer"], default="kube-installer",
                   help="sealer's image type: an app-installer image run on a cluster installs only its apps")
    b.add_argument("--no-cache-images", action="store_true", help="do not copy the images of manifests/imageList into registry/")
    b.add_argument("context", help="build context directory")
    b.set_defaults(func=cmd_build)

    k = sub.add_parser("build-k3s", help="build a k3s image from the files of a k3s release (binary, air-gap images, checksums)")
    k.add_argument("-t", "--tag", required=True, help="name of the image")
    k.add_argument("--k3s-version", required=True, metavar="VERSION", help="the release's version, e.g. v1.25.3+k3s1")
    k.add_argument("--arch", default="amd64", choices=sorted(k3s_release.BINARIES), help="architecture (default amd64)")
    k.add_argument("--registry-bin", metavar="FILE", help="registry binary for bin/registry (default: the controller's docker-registry)")
    k.add_argument("--context", metavar="DIR", help="write the build context here (a new directory) and keep it")
    k.add_argument("release", metavar="RELEASE_DIR", help="directory holding the release's files as published")
    k.set_defaults(func=cmd_build_k3s)

    for name, func, text in (("pull", cmd_pull, "pull an image from its registry"), ("push", cmd_push, "push an image to its registry")):
        c = sub.add_parser(name, help=text)
        _registry_options(c)
        if name == "pull":
            c.add_argument("--arch", default="amd64", help="architecture to pick from a multi-architecture index")
        c.add_argument("name")
        c.set_defaults(func=func)

    s = sub.add_parser("save", help="write an image to an OCI archive")
    s.add_argument("-o", "--output", required=True, help="archive file")
    s.add_argument("name")
    s.set_defaults(func=cmd_save)

    lo = sub.add_parser("load", help="load the images of an OCI archive")
    lo.add_argument("-i", "--input", required=True, help="archive file")
    lo.set_defaults(func=cmd_load)

    i = sub.add_parser("inspect", help="show digest, labels, runtime, architecture, Kubefile and cached images (JSON)")
    i.add_argument("name")
    i.set_defaults(func=cmd_inspect)

    im = sub.add_parser("images", help="list the images in the store")
    im.set_defaults(func=cmd_images)

    r = sub.add_parser("rmi", help="remove images and the blobs no other image uses")
    r.add_argument("names", nargs="+", metavar="NAME")
    r.set_defaults(func=cmd_rmi)

    t = sub.add_parser("tag", help="give an image another name")
    t.add_argument("source")
    t.add_argument("target")
    t.set_defaults(func=cmd_tag)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    store = Store(args.store)
    try:
        store.ensure()
        args.func(store, args)
    except (CliError, StoreError, BuildError, CacheError, ReferenceError_, k3s_release.ReleaseError, OSError) as exc:
        _say("seal-image: %s" % exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
