"""seal.cluster.rootfs with a layered image (docs/distribution.md): the controller ships a host
only the blobs it lacks, an agent never gets the registry's data, the seed keeps every blob in
the registry storage, a damaged file or blob is healed, an upgrade moves only the changed layer,
paths a Config document wrote are left alone, and hosts fetch from a registry serving the seed's
storage (plain HTTP on loopback here; the fleet test uses the real registry with TLS and auth)."""
import http.server
import json
import os
import threading

import pytest

from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_layers as rl
from ansible_collections.seal.cluster.plugins.module_utils._image_build import Builder
from ansible_collections.seal.cluster.plugins.module_utils._image_rootfs import extract
from ansible_collections.seal.cluster.plugins.module_utils._image_store import Store
from ansible_collections.seal.cluster.plugins.plugin_utils.rootfs_layers import held_converged

KUBEFILE = "FROM scratch\nCOPY Metadata .\nCOPY bin bin\nCOPY images images\nCOPY registry registry\n"


def build(tmp_path, k3s, name):
    ctx = tmp_path / ("ctx-" + name)
    for d in ("bin", "images", "registry/docker"):
        (ctx / d).mkdir(parents=True)
    (ctx / "bin" / "k3s").write_bytes(k3s)
    os.chmod(ctx / "bin" / "k3s", 0o755)
    (ctx / "images" / "airgap.tar").write_bytes(os.urandom(50000))
    (ctx / "registry" / "docker" / "blob").write_bytes(b"registry data")
    (ctx / "Metadata").write_text('{"ClusterRuntime": "k3s"}')
    (ctx / "Kubefile").write_text(KUBEFILE)
    store = Store(str(tmp_path / "store"))
    desc, _before = Builder(store, str(ctx)).build("k3s:" + name)
    rootfs, _new = extract(store, desc)
    layers = store.manifest(desc)["layers"]
    return rootfs, desc["digest"], {top: layer["digest"] for top, layer in zip(("Metadata", "bin", "images", "registry"), layers)}


def shipped(log):
    return [os.path.basename(local) for local, _remote, _sum in log.transfers]


def hexes(*digests):
    return [d.split(":", 1)[1] for d in digests]


def test_agent_seed_heal_upgrade_and_config_paths(tmp_path, act):
    src, digest, layer = build(tmp_path, b"k3s one", "one")
    agent = tmp_path / "agent" / "rootfs"
    args = {"src": src, "digest": digest, "dest": str(agent), "role": "agent"}

    check, log = act(args, check=True)
    assert check["changed"] is True and log.transfers == [] and not agent.exists()
    done, log = act(args)
    assert done["changed"] is True and sorted(shipped(log)) == sorted(hexes(layer["Metadata"], layer["bin"]))
    assert (agent / "bin" / "k3s").read_bytes() == b"k3s one" and (agent / ".seal-digest").read_text() == digest + "\n"
    assert not (agent / "registry").exists() and not (agent / "images").exists()

    for check_mode in (True, False):
        again, log = act(args, check=check_mode)
        assert again["changed"] is False and log.transfers == [] and [m["_name"] for m in log.modules] == ["rootfs_info"]
    # what node_prepare's report read earlier in the run: the host is not asked again
    held = rl.check(str(agent), None, *rl.role_paths("agent"))
    again, log = act(dict(args, held=held))
    assert again["changed"] is False and log.modules == [] and log.transfers == []
    assert held_converged(held, src, digest) and not held_converged(held, src, digest, str(tmp_path / "storage"))
    assert not held_converged({}, src, digest) and not held_converged(held, src, "sha256:" + "0" * 64)

    (agent / "bin" / "k3s").write_bytes(b"k3s EVIL")  # same size, other bytes: the digest check heals it
    healed, log = act(args)
    assert healed["changed"] is True and shipped(log) == hexes(layer["bin"]) and healed["damaged"] == [layer["bin"]]
    assert (agent / "bin" / "k3s").read_bytes() == b"k3s one"
    (agent / "bin" / "k3s").write_bytes(b"k3s EVIL")  # a held report that shows the damage heals it too
    assert not held_converged(rl.check(str(agent), None, *rl.role_paths("agent")), src, digest)
    healed, log = act(dict(args, held=rl.check(str(agent), None, *rl.role_paths("agent"))))
    assert healed["changed"] is True and shipped(log) == hexes(layer["bin"]) and [m["_name"] for m in log.modules] == ["rootfs"]

    seed = tmp_path / "seed" / "rootfs"
    storage = tmp_path / "seed" / "registry"
    seed_args = {"src": src, "digest": digest, "dest": str(seed), "role": "registry", "storage": str(storage)}
    done, log = act(seed_args)
    assert done["changed"] is True and sorted(shipped(log)) == sorted(hexes(*layer.values()))
    assert (seed / "registry" / "docker" / "blob").read_bytes() == b"registry data"
    for d in layer.values():
        assert rl.sha256_path(rl.blob_data(str(storage), d)) == d
        assert open(rl.blob_link(str(storage), d), encoding="utf-8").read() == d
    again, log = act(seed_args)
    assert again["changed"] is False and log.transfers == []
    with open(rl.blob_data(str(storage), layer["images"]), "r+b") as f:  # a damaged blob is shipped again
        f.seek(100)
        f.write(b"XXXX")
    healed, log = act(seed_args)
    assert healed["changed"] is True and shipped(log) == hexes(layer["images"])
    assert rl.sha256_path(rl.blob_data(str(storage), layer["images"])) == layer["images"]

    server = tmp_path / "server" / "rootfs"
    server_args = {"src": src, "digest": digest, "dest": str(server), "role": "server"}
    act(server_args)
    assert (server / "images" / "airgap.tar").exists() and not (server / "registry").exists()
    airgap_inode = os.stat(server / "images" / "airgap.tar").st_ino

    (server / ".seal").mkdir()  # a Config document rewrote a file after distribution: not healed
    (server / ".seal" / "config-applied.json").write_text(json.dumps(["images/airgap.tar"]))
    (server / "images" / "airgap.tar").write_bytes(b"configured")
    again, log = act(server_args)
    assert again["changed"] is False and log.transfers == []

    src2, digest2, layer2 = build(tmp_path, b"k3s two!", "two")  # other context: bin and images differ
    assert layer2["Metadata"] == layer["Metadata"] and layer2["images"] != layer["images"]
    (server / ".seal" / "config-applied.json").unlink()
    upgraded, log = act(dict(server_args, src=src2, digest=digest2))
    assert upgraded["changed"] is True and upgraded["previous_digest"] == digest
    assert sorted(shipped(log)) == sorted(hexes(layer2["bin"], layer2["images"]))
    assert (server / "bin" / "k3s").read_bytes() == b"k3s two!" and os.stat(server / "images" / "airgap.tar").st_ino != airgap_inode


def test_upgrade_moves_only_the_changed_layer(tmp_path, act):
    src, digest, layer = build(tmp_path, b"k3s one", "one")
    store = Store(str(tmp_path / "store"))
    server = tmp_path / "server" / "rootfs"
    act({"src": src, "digest": digest, "dest": str(server), "role": "server"})
    inode = os.stat(server / "images" / "airgap.tar").st_ino
    # the same context with only the binary changed: the images layer is the same blob
    ctx = tmp_path / "ctx-one"
    (ctx / "bin" / "k3s").write_bytes(b"k3s two")
    desc, _before = Builder(store, str(ctx)).build("k3s:two")
    rootfs2, _new = extract(store, desc)
    layers2 = store.manifest(desc)["layers"]
    assert layers2[2]["digest"] == layer["images"] and layers2[1]["digest"] != layer["bin"]
    upgraded, log = act({"src": rootfs2, "digest": desc["digest"], "dest": str(server), "role": "server"})
    assert upgraded["changed"] is True and shipped(log) == hexes(layers2[1]["digest"])
    assert (server / "bin" / "k3s").read_bytes() == b"k3s two"
    assert os.stat(server / "images" / "airgap.tar").st_ino == inode  # reused, not sent again


class _Blobs(http.server.BaseHTTPRequestHandler):
    storage = None
    corrupt = False

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        prefix = "/v2/%s/blobs/" % rl.REPOSITORY
        path = rl.blob_data(self.storage, self.path[len(prefix):]) if self.path.startswith(prefix) else None
        if not path or not os.path.isfile(path):
            self.send_response(404)
            self.end_headers()
            return
        data = open(path, "rb").read()
        if self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def registry(tmp_path):
    handler = type("Blobs", (_Blobs,), {"storage": str(tmp_path / "seed" / "registry")})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, server.server_address[1]
    server.shutdown()


def test_hosts_fetch_from_the_registry_by_digest(tmp_path, act, registry):
    handler, port = registry
    src, digest, layer = build(tmp_path, b"k3s one", "one")
    act({"src": src, "digest": digest, "dest": str(tmp_path / "seed" / "rootfs"), "role": "registry",
         "storage": str(tmp_path / "seed" / "registry")})
    reg = {"address": "127.0.0.1", "port": port, "domain": "localhost", "tls": False}
    agent = tmp_path / "agent" / "rootfs"
    args = {"src": src, "digest": digest, "dest": str(agent), "role": "agent", "source": "registry", "registry": reg}

    handler.corrupt = True
    bad, log = act(args)
    assert bad.get("failed") and "hash to" in bad["msg"] and not agent.exists() and log.transfers == []
    handler.corrupt = False
    done, log = act(args)
    assert done["changed"] is True and log.transfers == [] and sorted(done["fetched"]) == sorted([layer["Metadata"], layer["bin"]])
    assert (agent / "bin" / "k3s").read_bytes() == b"k3s one" and not (agent / "registry").exists()
    again, log = act(args)
    assert again["changed"] is False

    down = dict(args, dest=str(tmp_path / "other" / "rootfs"), registry=dict(reg, port=1))
    failed, _log = act(down)
    assert failed.get("failed") and "the cluster registry at 127.0.0.1:1 (localhost) did not serve layer" in failed["msg"]
    assert "a re-run fetches what is missing" in failed["msg"]
