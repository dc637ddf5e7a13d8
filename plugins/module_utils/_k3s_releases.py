# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What depends on the k3s release, in one table: for each behaviour, the first release of every
minor line that has it (minor -> patch) and the minor from which every release has it. A plain
table and one lookup, like the stand-in's tests/standin/k3s_standin/releases.py.

- "disable-default-registry-endpoint": the flag exists (k3s pkg/cli/cmds/agent.go
  DisableDefaultRegistryEndpointFlag; k3s #8975, backports #9132 v1.26.13, #9133 v1.27.10,
  #9134 v1.28.6, and v1.29.1). A release before it exits on the key: "flag provided but not
  defined" (agent) -- K3S-REFERENCE §10."""

from __future__ import annotations

import re

# behaviour -> (first patch per minor, first minor where every release has it)
TABLE = {
    "disable-default-registry-endpoint": ({26: 13, 27: 10, 28: 6, 29: 1}, 30),
}
# config keys that only some releases define -> the behaviour of TABLE that names them
FLAGS = {"disable-default-registry-endpoint": "disable-default-registry-endpoint"}

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def version_tuple(version):
    """(major, minor, patch) of "v1.25.3+k3s1"; ValueError when it is not a k3s version."""
    match = _VERSION.match(version or "")
    if not match:
        raise ValueError("%r is not a k3s version (v1.25.3+k3s1)" % (version,))
    return tuple(int(part) for part in match.groups())


def has(behaviour, version):
    """Whether the k3s release `version` has `behaviour` (a key of TABLE)."""
    gates, floor = TABLE[behaviour]
    _major, minor, patch = version_tuple(version)
    if minor in gates:
        return patch >= gates[minor]
    return minor >= floor


def since(behaviour):
    """The first releases that have `behaviour`, for messages: "v1.26.13, v1.27.10, ..."."""
    gates, floor = TABLE[behaviour]
    firsts = ["v1.%d.%d" % (minor, patch) for minor, patch in sorted(gates.items())]
    return ", ".join(firsts + ["every v1.%d and later" % floor])
