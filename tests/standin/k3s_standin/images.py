"""Air-gap image import into the (modelled) containerd image store, and the `crictl`/`ctr`
commands that list images.

k3s facts (K3S-REFERENCE.md §6): DATA/agent/images/ (non-recursive) is imported when the
agent's containerd starts, before the kubelet; accepted suffixes .tar, .tar.lz4, .tar.bz2/.tbz,
.tar.gz/.tgz, .tar.zst/.tzst (content = docker or OCI image archive); .txt = image lists to
pull; other files are not imported (logged as unhandled). Imported images land in containerd
namespace k8s.io. The store here is DATA/agent/containerd/standin-images.json."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

from . import util

SUFFIXES = (".tar", ".tar.lz4", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar.zst", ".tzst")
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class ImportError_(Exception):
    pass


def store_path(agent_dir: str) -> str:
    return os.path.join(agent_dir, "containerd", "standin-images.json")


def load_store(agent_dir: str) -> dict:
    try:
        with open(store_path(agent_dir), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_store(agent_dir: str, images: dict) -> None:
    util.write_file(store_path(agent_dir), json.dumps(images, indent=1, sort_keys=True), 0o600)


def normalize_ref(ref: str) -> str:
    """docker reference normalisation: busybox -> docker.io/library/busybox:latest."""
    name, digest = (ref.split("@", 1) + [""])[:2]
    first = name.split("/")[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        if "/" not in name:
            name = "library/" + name
        name = "docker.io/" + name
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name + ("@" + digest if digest else "")


def _open_tar(path: str) -> tarfile.TarFile:
    low = path.lower()
    if low.endswith((".tar.zst", ".tzst")):
        try:
            data = subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE).stdout
        except FileNotFoundError:
            raise ImportError_("zstd decompressor not available") from None
        except subprocess.CalledProcessError as exc:
            raise ImportError_(f"zstd: {exc.stderr.decode(errors='replace').strip()}") from None
        return tarfile.open(fileobj=io.BytesIO(data))
    if low.endswith(".tar.lz4"):
        try:
            data = subprocess.run(["lz4", "-dc", path], check=True, stdout=subprocess.PIPE).stdout
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            raise ImportError_(f"lz4: {exc}") from None
        return tarfile.open(fileobj=io.BytesIO(data))
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImportError_(f"failed to read archive: {exc}") from None


def read_archive(path: str) -> list[dict]:
    """Images in a docker-archive or OCI-layout tar; raises ImportError_ if it is neither."""
    try:
        tf = _open_tar(path)
    except tarfile.TarError as exc:
        raise ImportError_(f"failed to read archive: {exc}") from None
    with tf:
        try:
            members = {m.name.lstrip("./"): m for m in tf.getmembers() if m.isfile()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ImportError_(f"failed to read archive: {exc}") from None

        def read(name: str) -> bytes:
            m = members.get(name.lstrip("./"))
            if m is None:
                raise ImportError_(f"archive is missing {name}")
            return tf.extractfile(m).read()

        out = []
        if "index.json" in members and "oci-layout" in members:
            index = json.loads(read("index.json"))
            for desc in index.get("manifests") or []:
                algo, hexd = desc["digest"].split(":", 1)
                blob = read(f"blobs/{algo}/{hexd}")
                if hashlib.sha256(blob).hexdigest() != hexd:
                    raise ImportError_(f"digest mismatch for {desc['digest']}")
                man = json.loads(blob)
                size = sum(int(l.get("size", 0)) for l in man.get("layers") or []) + int(man.get("config", {}).get("size", 0))
                for layer in (man.get("layers") or []) + [man.get("config", {})]:
                    a, h = layer["digest"].split(":", 1)
                    if f"blobs/{a}/{h}" not in members:
                        raise ImportError_(f"content digest {layer['digest']}: not found")
                ann = desc.get("annotations") or {}
                ref = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name")
                if not ref:
                    continue
                if ":" not in ref and "/" not in ref:  # bare tag annotation
                    continue
                out.append({"ref": normalize_ref(ref), "id": man["config"]["digest"], "digest": desc["digest"],
                            "mediaType": desc.get("mediaType", OCI_MANIFEST), "size": size})
            if not out:
                raise ImportError_("no image references in OCI index")
            return out
        if "manifest.json" in members:
            try:
                manifest = json.loads(read("manifest.json"))
            except ValueError as exc:
                raise ImportError_(f"invalid manifest.json: {exc}") from None
            if not isinstance(manifest, list):
                raise ImportError_("invalid manifest.json: not a list")
            for entry in manifest:
                config = read(entry["Config"])
                size = len(config)
                for layer in entry.get("Layers") or []:
                    if layer.lstrip("./") not in members:
                        raise ImportError_(f"archive is missing layer {layer}")
                    size += members[layer.lstrip("./")].size
                cid = "sha256:" + hashlib.sha256(config).hexdigest()
                for tag in entry.get("RepoTags") or []:
                    out.append({"ref": normalize_ref(tag), "id": cid, "digest": cid,
                                "mediaType": DOCKER_MANIFEST, "size": size})
            return out
        raise ImportError_("unrecognized image format")


def import_file(agent_dir: str, path: str, images: dict) -> list[str]:
    got = read_archive(path)
    for img in got:
        images[img["ref"]] = {"id": img["id"], "digest": img["digest"], "mediaType": img["mediaType"],
                              "size": img["size"], "source": path, "imported": time.time()}
    return [i["ref"] for i in got]


def import_dir(agent_dir: str) -> None:
    d = os.path.join(agent_dir, "images")
    if not os.path.isdir(d):
        return
    images = load_store(agent_dir)
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        if not os.path.isfile(path):
            continue
        low = name.lower()
        if low.endswith(".txt"):
            util.info(f"Pulling images from {path}")
            for line in open(path, encoding="utf-8"):
                ref = line.strip()
                if ref and not ref.startswith("#") and normalize_ref(ref) not in images:
                    util.warn(f"Image {ref} from {path} is not available: the stand-in does not pull images")
            continue
        if not low.endswith(SUFFIXES):
            util.debug(f"Unhandled file type {path}")
            continue
        start = time.monotonic()
        util.info(f"Importing images from {path}")
        try:
            refs = import_file(agent_dir, path, images)
        except ImportError_ as exc:
            util.error(f"Error encountered while importing {path}: {exc}")
            continue
        util.info(f"Imported images from {path} in {time.monotonic() - start:.3f}s: {', '.join(refs)}")
    save_store(agent_dir, images)


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000
    return str(n)


def crictl(argv: list[str], data_dir: str) -> int:
    args = [a for a in argv if not a.startswith("--runtime-endpoint") and not a.startswith("--image-endpoint")]
    agent_dir = os.path.join(data_dir, "agent")
    if not args:
        print("NAME:\n   crictl - client for CRI\n\nUSAGE:\n   crictl [global options] command [command options] [arguments...]")
        return 0
    cmd, rest = args[0], args[1:]
    if cmd in ("images", "image", "img"):
        images = load_store(agent_dir)
        quiet = "-q" in rest or "--quiet" in rest
        if "-o" in rest or "--output" in rest or any(a.startswith(("--output=", "-o=")) for a in rest):
            print(json.dumps({"images": [{"id": v["id"], "repoTags": [k], "repoDigests": [], "size": str(v["size"])}
                                         for k, v in sorted(images.items())]}, indent=2))
            return 0
        if quiet:
            for v in dict.fromkeys(v["id"] for v in images.values()):
                print(v)
            return 0
        rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
        for ref, v in sorted(images.items()):
            repo, _, tag = ref.rpartition(":")
            rows.append((repo, tag, v["id"].split(":", 1)[1][:13], _human(v["size"])))
        _table(rows)
        return 0
    if cmd in ("ps", "pods"):
        _table([("CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD")] if cmd == "ps"
               else [("POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME")])
        return 0
    if cmd == "version":
        print(f"Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v{util.CONTAINERD_VERSION}\nRuntimeApiVersion:  v1")
        return 0
    print(f'crictl: No help topic for \'{cmd}\'', flush=True)
    return 1


def ctr(argv: list[str], data_dir: str) -> int:
    agent_dir = os.path.join(data_dir, "agent")
    ns = os.environ.get("CONTAINERD_NAMESPACE", "k8s.io")
    args = list(argv)
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("-n", "--namespace") and args:
            ns = args.pop(0)
        elif a.startswith(("--namespace=", "-n=")):
            ns = a.split("=", 1)[1]
        elif a in ("-a", "--address") and args:
            args.pop(0)
    if not args:
        print("NAME:\n   ctr - containerd CLI")
        return 0
    if args[0] in ("images", "image", "i"):
        sub = args[1] if len(args) > 1 else "ls"
        images = load_store(agent_dir) if ns == "k8s.io" else {}
        if sub in ("ls", "list"):
            quiet = "-q" in args or "--quiet" in args
            if quiet:
                for ref in sorted(images):
                    print(ref)
                return 0
            rows = [("REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS")]
            for ref, v in sorted(images.items()):
                rows.append((ref, v["mediaType"], v["digest"], _human(v["size"]).replace("kB", " KiB"),
                             "linux/amd64", "io.cri-containerd.image=managed"))
            _table(rows)
            return 0
        if sub == "import" and len(args) > 2:
            path = args[-1]
            store = load_store(agent_dir)
            try:
                refs = import_file(agent_dir, path, store)
            except ImportError_ as exc:
                print(f"ctr: {exc}")
                return 1
            save_store(agent_dir, store)
            for r in refs:
                print(f"unpacking {r} (sha256:...)...done")
            return 0
    print(f"ctr: unsupported command {' '.join(args[:2])} (k3s stand-in)")
    return 1


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
