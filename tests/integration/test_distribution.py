"""Distribution (docs/distribution.md) on one 1 master + 2 nodes fleet, through run.yml with the
test-only `fake` runtime (distribution is runtime-agnostic, and the fake runtime is quick): the
seed keeps the layer blobs in its registry's storage, an agent never receives the registry's data,
a corrupted copy (an agent's file, a seed's blob) is healed on the next run by digest, and a
registry host down while a host fetches fails with a clear message, after which a re-run completes."""
import re

import pytest

import fleet
from test_runtime_seam import build_image, fake_runtime_fleet, play, ssh

NAME = fleet.name_from_env("SEAL_DIST_FLEET", "dist")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", re.M)
ROOTFS = f"/var/lib/seal/{NAME}/rootfs"
LAYERS = f"/var/lib/seal/{NAME}/registry/docker/registry/v2"


@pytest.fixture(scope="module")
def cluster():
    with fake_runtime_fleet(NAME, nodes=2) as (state, env):
        digest = build_image(env["SEAL_IMAGE_STORE"], "fake", "fake:v1")
        first = play(state, env, "run.yml")
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
        yield state, env, digest


def changed(out):
    return {host: int(n) for host, n, _failed in RECAP.findall(out.stdout)}


def test_an_agent_never_receives_the_registrys_data(cluster):
    state, _env, digest = cluster
    master, node = state["nodes"][0]["ip"], state["nodes"][1]["ip"]
    assert ssh(state, node, f"cat {ROOTFS}/.seal-digest").strip() == digest
    # .seal: seal.cluster's own state (what the Clusterfile's overlay was made from), not image content
    assert sorted(ssh(state, node, f"ls -A {ROOTFS}").split()) == [".seal", ".seal-digest", ".seal-layers.json", "Metadata", "bin"]
    assert "registry/" not in ssh(state, node, f"cat {ROOTFS}/.seal-layers.json")
    # the seed has it all, and keeps the blobs where its registry serves them
    assert ssh(state, master, f"test -d {ROOTFS}/registry && test -d {ROOTFS}/manifests && echo yes").strip() == "yes"
    kept = ssh(state, master, f"ls {LAYERS}/repositories/seal/rootfs-layers/_layers/sha256").split()
    assert len(kept) >= 5 and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in kept)


def test_a_corrupted_copy_is_healed_on_the_next_run(cluster):
    state, env, _digest = cluster
    master, node = state["nodes"][0]["ip"], state["nodes"][1]["ip"]
    good = ssh(state, master, f"sha256sum {ROOTFS}/bin/registry").split()[0]
    ssh(state, node, f"printf 'XXXX' | dd of={ROOTFS}/bin/registry bs=1 seek=1000 conv=notrunc status=none")
    assert ssh(state, node, f"sha256sum {ROOTFS}/bin/registry").split()[0] != good
    blob = ssh(state, master, f"ls {LAYERS}/repositories/seal/rootfs-layers/_layers/sha256").split()[0]
    data = f"{LAYERS}/blobs/sha256/{blob[:2]}/{blob}/data"
    ssh(state, master, f"printf 'XXXX' | dd of={data} bs=1 seek=10 conv=notrunc status=none")

    healed = play(state, env, "run.yml")
    assert healed.returncode == 0, healed.stdout[-4000:]
    assert ssh(state, node, f"sha256sum {ROOTFS}/bin/registry").split()[0] == good
    assert ssh(state, master, f"sha256sum {data}").split()[0] == blob
    again = play(state, env, "run.yml")
    assert again.returncode == 0 and set(changed(again).values()) == {0}, again.stdout[-3000:]


def test_a_registry_host_down_fails_clearly_and_the_rerun_completes(cluster):
    state, env, digest = cluster
    master, other = state["nodes"][0], state["nodes"][2]
    ssh(state, master["ip"], f"systemctl stop seal-registry-{NAME}.service")
    ssh(state, other["ip"], f"rm -rf {ROOTFS}")
    down = play(state, env, "run.yml")
    text = " ".join(down.stdout.split())
    assert down.returncode != 0
    assert re.search(r"the cluster registry at \S+ \(\S+\) did not serve layer sha256:[0-9a-f]{64}", text), text[-3000:]
    assert "a re-run fetches what is missing" in text
    rerun = play(state, env, "run.yml")
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert ssh(state, other["ip"], f"cat {ROOTFS}/.seal-digest").strip() == digest
