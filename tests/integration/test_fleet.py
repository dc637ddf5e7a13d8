"""The test fleet itself: nodes answer over SSH with the key and the password it wrote,
and `down` leaves no container, network or volume behind."""
import json
import os
import stat
import subprocess

import pytest

import fleet

NAME = fleet.name_from_env("SEAL_FLEET_TEST_FLEET", "itfleet")


def podman_ids(*what):
    return fleet.podman(*what, "-q", "--filter", f"label={fleet.LABEL}={NAME}").split()


@pytest.fixture(scope="module")
def state():
    st = fleet.up(NAME, masters=1, nodes=1)
    yield st
    fleet.down(NAME)


def test_nodes_answer_with_key(state):
    for node in state["nodes"]:
        out = subprocess.run(fleet.ssh_argv(node["ip"], state["key"]) + ["systemctl", "is-system-running", "--wait"],
                             capture_output=True, text=True, timeout=60, check=False)
        assert out.stdout.strip() in ("running", "degraded"), out
        hostname = subprocess.run(fleet.ssh_argv(node["ip"], state["key"]) + ["hostname"],
                                  capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        assert hostname == node["name"]


def test_nodes_answer_with_password(state):
    node = state["nodes"][-1]
    argv = ["sshpass", "-e", "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "PubkeyAuthentication=no", f"root@{node['ip']}", "id", "-u"]
    out = subprocess.run(argv, env=dict(os.environ, SSHPASS=state["password"]), capture_output=True, text=True,
                         timeout=30, check=False)
    assert out.stdout.strip() == "0", out.stderr
    wrong = subprocess.run(argv, env=dict(os.environ, SSHPASS="wrong"), capture_output=True, text=True,
                           timeout=30, check=False)
    assert wrong.returncode != 0


def test_outputs_are_private_and_describe_the_nodes(state):
    for name in ("Clusterfile", "Clusterfile.passwd", "hosts.yml", "state.json", "id_ed25519"):
        assert stat.S_IMODE(os.stat(os.path.join(state["dir"], name)).st_mode) == 0o600, name
    with open(os.path.join(state["dir"], "Clusterfile"), encoding="utf-8") as f:
        text = f.read()
    assert "kind: Cluster" in text and all(n["ip"] in text for n in state["nodes"])
    with open(os.path.join(state["dir"], "state.json"), encoding="utf-8") as f:
        assert [n["role"] for n in json.load(f)["nodes"]] == ["master", "node"]


def test_up_again_replaces_and_down_leaves_nothing():
    fleet.up(NAME, masters=1)
    assert len(podman_ids("ps", "-a")) == 1
    fleet.down(NAME)
    assert podman_ids("ps", "-a") == []
    assert podman_ids("network", "ls") == []
    assert podman_ids("volume", "ls") == []
    assert not os.path.exists(fleet.state_dir(NAME))
