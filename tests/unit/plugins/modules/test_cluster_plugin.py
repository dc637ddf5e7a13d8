"""cluster_plugin's HOSTNAME through its main(): the running name and /etc/hostname both become
the plugin's name; a bind-mounted /etc/hostname (a container's) is rewritten in place when
hostnamectl cannot replace it; a second call changes nothing. The fleet test renames real hosts
(tests/integration/test_cluster_docs.py)."""
import os
import socket

import pytest
from ansible.module_utils import basic

from ansible_collections.seal.cluster.plugins.modules import cluster_plugin


@pytest.fixture
def host(tmp_path, monkeypatch):
    state = {"name": "old-name", "calls": [], "hostnamectl_rc": 1}
    path = tmp_path / "hostname"
    path.write_text("old-name\n")
    monkeypatch.setattr(cluster_plugin, "HOSTNAME_FILE", str(path))
    monkeypatch.setattr(socket, "gethostname", lambda: state["name"])
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: "/bin/" + name)

    def run_command(self, argv, **kw):
        state["calls"].append(list(argv))
        if argv[0].endswith("hostnamectl"):
            return state["hostnamectl_rc"], "", "Could not set static hostname: Device or resource busy"
        if argv[0].endswith("hostname"):
            state["name"] = argv[1]
        return 0, "", ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return state, path


def _args(name="new-name"):
    return dict(name="rename", source="Clusterfile", phase="PreInit", host="10.0.0.3", type="HOSTNAME", hostname=name)


def test_the_name_changes_and_then_nothing_changes(run_main, host):
    state, path = host
    inode = os.stat(path).st_ino
    out = run_main(cluster_plugin, _args())
    assert out["changed"] is True and state["name"] == "new-name"
    assert path.read_text() == "new-name\n" and os.stat(path).st_ino == inode  # rewritten in place
    calls = len(state["calls"])
    again = run_main(cluster_plugin, _args())
    assert again["changed"] is False and len(state["calls"]) == calls


def test_a_stale_static_name_is_a_change(run_main, host):
    state, path = host
    state["name"] = "new-name"  # the running name only: the next boot would bring the old one back
    assert run_main(cluster_plugin, _args())["changed"] is True and path.read_text() == "new-name\n"


def test_check_mode_changes_nothing(run_main, host):
    state, path = host
    out = run_main(cluster_plugin, _args(), check=True)
    assert out["changed"] is True and state["calls"] == [] and path.read_text() == "old-name\n"


def test_a_name_that_is_not_a_node_name_is_refused(run_main, host):
    state, _path = host
    out = run_main(cluster_plugin, _args("Bad_Name"))
    assert out["failed"] and state["calls"] == []
