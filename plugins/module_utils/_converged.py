# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converged record: what a runtime module (k3s_runtime) leaves on a host after it brought
the host to a set of inputs. It holds the controller's digest of those inputs, the stat
fingerprint of every path the module owns, and the service it runs. A later run reads it in the
host's first module call (node_prepare's report) and skips the runtime module when the inputs
are the same, no owned path changed since and the service is active and enabled: a no-op run
then costs one module call per host. Any doubt (no record, another digest, a path touched, the
service down) runs the module, which checks everything itself."""

from __future__ import annotations

import json
import os

from ansible_collections.seal.cluster.plugins.module_utils._files import write_atomic
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_layers import fingerprint

VERSION = 1


def _fingerprints(paths):
    out = {}
    for path in paths:
        try:
            out[path] = fingerprint(os.lstat(path))
        except OSError:
            out[path] = None
    return out


def write_record(path, inputs, owned, service):
    """Record inputs (the controller's digest) and the fingerprints of the owned paths (0600)."""
    record = {"version": VERSION, "inputs": inputs, "service": service, "paths": _fingerprints(sorted(set(owned)))}
    write_atomic(path, json.dumps(record, sort_keys=True) + "\n", 0o600)


def read_record(path):
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("version") != VERSION or not isinstance(record.get("paths"), dict):
        return None
    return record


def remove_record(path):
    if os.path.lexists(path):
        os.unlink(path)


def record_report(path, systemd):
    """{inputs, intact, active}: intact when every owned path has the fingerprint recorded;
    active when the recorded service is active and enabled. No record: inputs None."""
    record = read_record(path)
    if record is None:
        return {"inputs": None, "intact": False, "active": False}
    intact = _fingerprints(record["paths"]) == record["paths"]
    active = False
    service = record.get("service")
    if intact and isinstance(service, str) and service:
        active = systemd.state(service) == ("active", "enabled")
    return {"inputs": record.get("inputs"), "intact": intact, "active": active}
