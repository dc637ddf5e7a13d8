#!/usr/bin/env python3
"""The demo fleet as the default inventory, so that the bare command
`ansible-playbook playbooks/run.yml -e image=k3s:v1.25.3` installs it (`make demo`).

    demo_inventory.py check                  fail unless both files are absent or the demo's
    demo_inventory.py write [--name demo]    inventories/default/Clusterfile and
                                             inventories/default/group_vars/all/demo-fleet.yml
    demo_inventory.py remove [--name demo]   remove them again (`make demo-down`)

Both files are git-ignored and begin with MARKER. A file without it is the user's own inventory:
it is never overwritten nor removed, and `write` fails saying so. The group_vars file points ssh
at the fleet's known_hosts (host keys read from the containers by fleet.py, so host key checking
stays on) and the image store at the demo's, where `make demo` builds the stand-in image.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import fleet  # noqa: E402  pylint: disable=wrong-import-position

MARKER = "# seal.cluster demo fleet inventory: written by `make demo` (tests/fleet/demo_inventory.py)"
CLUSTERFILE = os.path.join("inventories", "default", "Clusterfile")
GROUP_VARS = os.path.join("inventories", "default", "group_vars", "all", "demo-fleet.yml")


class DemoInventoryError(RuntimeError):
    pass


def _is_ours(path: str) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\n") == MARKER


def _check_free(root: str) -> None:
    for rel in (CLUSTERFILE, GROUP_VARS):
        path = os.path.join(root, rel)
        if os.path.lexists(path) and (os.path.islink(path) or not _is_ours(path)):
            raise DemoInventoryError(
                f"{rel} exists and is not the demo's (its first line is not the demo marker): it is your "
                f"inventory and is left as it is. Move it aside to run the demo with the bare command, or run "
                f"the demo fleet with -i {os.path.join('.cache', 'fleet', '<name>', 'Clusterfile')}.")


def files(state: dict, store: str) -> dict:
    """{relative path: text} of the demo inventory for a fleet state (fleet.load())."""
    known_hosts = os.path.join(state["dir"], "known_hosts")
    group_vars = (
        f"{MARKER}\n"
        "# `make demo-down` removes this file. ssh checks the fleet's host keys against the keys\n"
        "# fleet.py read from each container (host key checking stays on).\n"
        f"ansible_ssh_common_args: \"-o UserKnownHostsFile={known_hosts}\"\n"
        "# The demo's image store, where `make demo` builds the stand-in k3s:v1.25.3.\n"
        f"seal_image_store: \"{store}\"\n"
    )
    clusterfile = (
        f"{MARKER}\n"
        f"# The demo fleet {state['name']} (podman containers); `make demo-down` removes this file.\n"
        "# Your own cluster: inventories/default/Clusterfile.sample documents every line.\n"
        + fleet.clusterfile(state)
    )
    return {CLUSTERFILE: clusterfile, GROUP_VARS: group_vars}


def write(name: str = "demo", root: str = ROOT, store: str | None = None) -> list[str]:
    state = fleet.load(name)
    if not os.path.exists(os.path.join(state["dir"], "known_hosts")):
        raise DemoInventoryError(f"fleet {name} has no known_hosts: start it again with fleet.py up")
    _check_free(root)
    written = []
    for rel, text in files(state, store or os.path.join(root, ".cache", "images")).items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fleet.write_private(path + ".tmp", text)
        os.replace(path + ".tmp", path)
        written.append(rel)
    return written


def remove(root: str = ROOT) -> list[str]:
    removed = []
    for rel in (CLUSTERFILE, GROUP_VARS):
        path = os.path.join(root, rel)
        if os.path.isfile(path) and not os.path.islink(path) and _is_ours(path):
            os.unlink(path)
            removed.append(rel)
    for rel in (os.path.dirname(GROUP_VARS), os.path.dirname(os.path.dirname(GROUP_VARS))):
        with contextlib.suppress(OSError):  # only when empty: a user's group_vars stay
            os.rmdir(os.path.join(root, rel))
    return removed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("action", choices=["check", "write", "remove"])
    p.add_argument("--name", default="demo", help="the fleet (fleet.py up --name)")
    p.add_argument("--store", help="image store the demo uses (default .cache/images)")
    args = p.parse_args(argv)
    try:
        if args.action == "check":
            _check_free(ROOT)
        elif args.action == "write":
            for rel in write(args.name, store=args.store):
                print(f"demo inventory: wrote {rel}")
        else:
            for rel in remove():
                print(f"demo inventory: removed {rel}")
    except (DemoInventoryError, fleet.FleetError, OSError) as exc:
        print(f"demo inventory: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
