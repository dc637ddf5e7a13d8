"""Builders of the hostile-input corpus: a sentinel file tree outside every target (compared
before and after each case), crafted tar archives, layers and images."""
import hashlib
import io
import json
import os
import stat
import tarfile

from ansible_collections.seal.cluster.plugins.module_utils import _image_store as store_mod
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store


def snapshot(root):
    """Every entry under root (not following symlinks): type, mode, size, content hash, link target."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entry = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_nlink]
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    entry += [st.st_size, hashlib.sha256(f.read()).hexdigest()]
            elif stat.S_ISLNK(st.st_mode):
                entry.append(os.readlink(path))
            seen[os.path.relpath(path, root)] = entry
    return seen


class Sentinel:
    """A tree of files that no case may touch: a 'secret', a directory of them, and a cached
    rootfs of another image in the store (what `.wh...` used to wipe)."""

    def __init__(self, base):
        self.root = os.path.join(base, "sentinel")
        os.makedirs(os.path.join(self.root, "etc"))
        self.secret = os.path.join(self.root, "etc", "shadow")
        with open(self.secret, "w", encoding="utf-8") as f:
            f.write("root:secret-hash:19000::::::\n")
        os.chmod(self.secret, 0o640)
        with open(os.path.join(self.root, "etc", "f"), "w", encoding="utf-8") as f:
            f.write("victim of a whiteout\n")
        os.makedirs(os.path.join(self.root, "x"))
        with open(os.path.join(self.root, "x", "f"), "w", encoding="utf-8") as f:
            f.write("victim of an opaque whiteout\n")
        self.before = None

    def extra(self, path):
        """Add another directory (e.g. the store's other cached rootfs) to the watched set."""
        self.watched.append(path)
        self.before[path] = snapshot(path)

    def start(self):
        self.watched = [self.root]
        self.before = {self.root: snapshot(self.root)}

    def assert_unchanged(self):
        for path in self.watched:
            assert snapshot(path) == self.before[path], "the sentinel tree %s changed" % path


def tar_bytes(entries, gzip=False):
    """A tar from [(name, kind, value, mode)]: kind file (value bytes), dir, symlink/hardlink
    (value = link target), fifo, chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind = entry[0], entry[1]
            value = entry[2] if len(entry) > 2 else None
            info = tarfile.TarInfo(name)
            info.mode = entry[3] if len(entry) > 3 else (0o755 if kind == "dir" else 0o644)
            if kind == "file":
                data = value if isinstance(value, bytes) else (value or "").encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = value
            tar.addfile(info)
    return buf.getvalue()


def write_tar(path, entries):
    with open(path, "wb") as f:
        f.write(tar_bytes(entries))
    return str(path)


class Images:
    """Builds images straight into a store from crafted layers (no Kubefile, no checks)."""

    def __init__(self, root):
        self.store = Store(root)
        self.store.ensure()

    def image(self, name, layers, labels=None, metadata=None):
        layer_descs = []
        for entries in layers:
            digest, size = self.store.put_bytes(tar_bytes(entries))
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Labels": labels if labels is not None else {"cluster.alpha.sealer.io/cluster-runtime-type": "k3s"}},
                  "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descs]}}
        cdigest, csize = self.store.put_bytes(store_mod.canonical_json(config))
        manifest = {"schemaVersion": 2, "mediaType": store_mod.MANIFEST,
                    "config": {"mediaType": store_mod.CONFIG, "digest": cdigest, "size": csize}, "layers": layer_descs}
        return self.raw_manifest(name, manifest)

    def raw_manifest(self, name, manifest):
        mdigest, msize = self.store.put_bytes(json.dumps(manifest).encode())
        self.store.tag(name, mdigest, msize)
        return {"mediaType": store_mod.MANIFEST, "digest": mdigest, "size": msize}
