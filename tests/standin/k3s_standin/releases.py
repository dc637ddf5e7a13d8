"""What depends on the k3s release, in one table: each entry gives the first release of every
minor line that has the behaviour (minor -> patch) and the minor from which every release has it.

Plain data and one lookup (`has`), so that tables of other behaviours can be merged in here.
Sources (k3s-io/k3s; the release that introduced each, from the backport issues):

- "disable-default-registry-endpoint": the flag (pkg/cli/cmds/agent.go
  DisableDefaultRegistryEndpointFlag, in the agent and the server flag lists), k3s #8975 with
  backports #9132 (v1.26.13), #9133 (v1.27.10), #9134 (v1.28.6), v1.29.1 (January 2024). An agent
  or server before it exits with "flag provided but not defined".
- "critical-config-names": pkg/cluster/bootstrap.go compareConfig names each mismatched field
  ("critical configuration mismatched: <cli tag>" warnings, then the error "critical configuration
  value mismatch between servers") and secrets-encryption became critical: k3s #6409, backports
  #6446 (v1.24.8) and v1.25.4 (validated on a v1.25.3+ commit in k3s #6448). Before it, the error
  is "critical configuration value mismatch" with the values only at debug level.

`system-default-registry` is a server flag in every release (pkg/cli/cmds/server.go ServerFlags);
`k3s agent` never defines it (pkg/cli/cmds/agent.go).
"""
from __future__ import annotations

from . import util

# behaviour -> (first patch per minor, first minor where every release has it)
TABLE: dict[str, tuple[dict[int, int], int]] = {
    "disable-default-registry-endpoint": ({26: 13, 27: 10, 28: 6, 29: 1}, 30),
    "critical-config-names": ({24: 8, 25: 4}, 26),
}


def has(behaviour: str, version: str = util.VERSION) -> bool:
    """Whether the release `version` has `behaviour` (a key of TABLE)."""
    gates, floor = TABLE[behaviour]
    return util.at_least(gates, floor, version)
