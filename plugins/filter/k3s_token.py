# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster token on the controller: where the servers keep it, its password, its secure form."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_token as k3s_token
from ansible_collections.seal.cluster.plugins.plugin_utils.k3s_plan import token_sources


def k3s_token_sources(masters, reports):
    """From the masters' k3s_runtime_info results (runtime_reports): who holds DATA/server/token
    (live servers first), who holds server data, who was checked."""
    try:
        return token_sources(masters, reports)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def k3s_token_password(token):
    try:
        return k3s_token.password(token)
    except k3s_token.TokenError as exc:
        raise AnsibleFilterError("the cluster token is not one k3s accepts: %s" % exc) from None


def k3s_token_secure(token, ca_hash):
    """ca_hash: the hash, or a secure token (e.g. the one k3s wrote) whose hash is taken."""
    try:
        if str(ca_hash or "").startswith(k3s_token.PREFIX):
            ca_hash = k3s_token.parse(ca_hash)[0]
        return k3s_token.secure(ca_hash, token)
    except k3s_token.TokenError as exc:
        raise AnsibleFilterError("cannot make the secure token: %s" % exc) from None


def k3s_agent_token(agent_token, cluster_token):
    """The token an agent gets when the cluster has a separate agent token: its secure form
    K10<CA hash>::node:<password>, with the CA hash cluster_token carries; as given while the
    cluster token has no hash (no server ran yet)."""
    try:
        own_hash = k3s_token.parse(agent_token)[0]
        ca_hash = k3s_token.parse(cluster_token)[0] if cluster_token else ""
    except k3s_token.TokenError as exc:
        raise AnsibleFilterError("the agent token or the cluster token is not one k3s accepts: %s" % exc) from None
    if own_hash and ca_hash and own_hash != ca_hash:
        raise AnsibleFilterError("the agent token names CA hash %s but the cluster's CA hash is %s: k3s agents would "
                                 "refuse the server" % (own_hash, ca_hash))
    ca_hash = ca_hash or own_hash
    return k3s_token.secure(ca_hash, agent_token, k3s_token.AGENT_USER) if ca_hash else agent_token.strip()


class FilterModule:
    def filters(self):
        return {"k3s_token_sources": k3s_token_sources, "k3s_token_password": k3s_token_password,
                "k3s_token_secure": k3s_token_secure, "k3s_agent_token": k3s_agent_token}
