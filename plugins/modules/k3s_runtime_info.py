#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k3s_runtime_info
short_description: Report what k3s (server or agent) a host has and runs
version_added: 0.1.0
description:
  - Reads, without changing anything, what M(seal.cluster.k3s_runtime) installs and k3s keeps on
    the host - whether the binary is installed and its version, whether the service runs, the node
    name and C(server) of the current C(config.yaml), whether the host holds a datastore, and
    whether k3s wrote the cluster token (C(<data_dir>/server/token)) and its CA hash.
  - The playbooks read every host with it before they plan (who initialises, whom to join through,
    where the token is, what to upgrade) and pass the results to the planning filters as one
    dictionary, host to result (see C(seal_runtime_reports) in the playbooks).
author:
  - seal.cluster developers (@seal-cluster)
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.info_module
options:
  role:
    description:
      - V(server) reads C(k3s.service) and the server's data; V(agent) reads C(k3s-agent.service)
        (the server data and token are then reported absent).
    type: str
    choices: [server, agent]
    required: true
  data_dir:
    description: k3s data directory (C(data-dir)).
    type: path
    default: /var/lib/rancher/k3s
notes:
  - The node name is C(node-name) from the current C(config.yaml), else the host name, as k3s chooses it.
"""

EXAMPLES = r"""
- name: Read what k3s the masters run
  seal.cluster.k3s_runtime_info:
    role: server
  register: k3s_info

- name: Fail unless the server runs
  ansible.builtin.assert:
    that: k3s_info.live
"""

RETURN = r"""
role:
  description: V(server) or V(agent), as asked.
  returned: always
  type: str
service:
  description: The systemd service name.
  returned: always
  type: str
installed:
  description: Whether the k3s binary is installed (it answers C(k3s --version)).
  returned: always
  type: bool
version:
  description: Version of the installed k3s binary (C(k3s --version)), e.g. V(v1.25.3+k3s1); V(null) when not installed.
  returned: always
  type: str
live:
  description: Whether the service is active.
  returned: always
  type: bool
enabled:
  description: Whether the service is enabled.
  returned: always
  type: bool
node_name:
  description: The node's name in the cluster (C(node-name) of the current config.yaml, else the host name).
  returned: always
  type: str
config_server:
  description: The C(server) value of the current config.yaml, if any.
  returned: always
  type: str
has_data:
  description: Whether this server already holds a datastore (embedded etcd or sqlite) under the data dir.
  returned: always
  type: bool
holds_data:
  description: Whether this host holds server state (C(<data_dir>/server/db) or C(<data_dir>/server/tls) not empty).
  returned: always
  type: bool
has_token:
  description: Whether k3s wrote C(<data_dir>/server/token) on this server.
  returned: always
  type: bool
token_ca_hash:
  description:
    - The CA hash of the secure token k3s wrote to C(<data_dir>/server/token) (the SHA-256 of its
      CA certificate), or V(null) before k3s wrote it. Not secret.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils import _k3s_host as k3s_host
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_layout as layout
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._systemd import Runner, Systemd, SystemdError


class K3sRuntimeInfo:
    """Reads only; `host` and `runner` let tests point it at a temporary root."""

    def __init__(self, module, host=None, runner=None):
        self.p = module.params
        self.host = host or layout.Layout()
        self.runner = runner or Runner(module)

    def run(self):
        try:
            report = k3s_host.report(Systemd(self.runner), self.runner, self.host, self.p["role"], self.p["data_dir"])
        except SystemdError as exc:
            raise ModuleFailure(str(exc)) from exc
        return dict(report, changed=False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            role=dict(type="str", required=True, choices=["server", "agent"]),
            data_dir=dict(type="path", default=layout.DATA_DIR),
        ),
        supports_check_mode=True,
    )
    try:
        result = K3sRuntimeInfo(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
