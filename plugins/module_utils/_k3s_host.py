# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What k3s on this host has and runs, read without changing anything: the one home of the
reading k3s_runtime does before it changes a host and k3s_runtime_info reports."""

from __future__ import annotations

import os

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_token as k3s_token
from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils._files import list_dir, read_text


def server_token_path(data_dir):
    """Where k3s keeps the cluster token on a server (written at its first start, secure form)."""
    return os.path.join(data_dir, "server", "token")


def server_token(data_dir):
    """The token k3s wrote to DATA/server/token, or None before it did."""
    text = read_text(server_token_path(data_dir))
    return text.strip() if text and text.strip() else None


def ca_hash(token):
    """The CA hash of a secure token (None for the short form or a malformed one)."""
    if not token:
        return None
    try:
        return k3s_token.parse(token)[0] or None
    except k3s_token.TokenError:
        return None


def config_value(config_path, key):
    """A top-level scalar of the config.yaml seal.cluster wrote (None when absent)."""
    for line in (read_text(config_path) or "").splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip().strip('"') or None
    return None


def version(runner, k3s_bin):
    """`k3s --version`'s version (v1.25.3+k3s1), None when the binary is not installed."""
    if not os.path.exists(k3s_bin):
        return None
    rc, out, _err = runner.run([k3s_bin, "--version"])
    first = out.splitlines()[0].split() if rc == 0 and out else []
    return first[2] if len(first) > 2 else None


def report(systemd, runner, host, role, data_dir):
    """What k3s on this host reports (k3s_runtime_info's result, without `changed`)."""
    service = layout.service_name(role)
    active, enabled = systemd.state(service)
    db = os.path.join(data_dir, "server", "db")
    tls = os.path.join(data_dir, "server", "tls")
    held = server_token(data_dir) if role == "server" else None
    installed = version(runner, host.k3s_bin)
    return dict(
        role=role, service=service, installed=installed is not None, version=installed,
        live=active == "active", enabled=enabled == "enabled",
        node_name=names.node_name(config_value(host.config, "node-name")),
        config_server=config_value(host.config, "server"),
        has_data=os.path.isdir(os.path.join(db, "etcd")) or os.path.exists(os.path.join(db, "state.db")),
        holds_data=bool(list_dir(db) or list_dir(tls)),
        has_token=held is not None, token_ca_hash=ca_hash(held),
    )
