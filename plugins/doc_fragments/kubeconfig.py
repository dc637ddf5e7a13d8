# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The server's kubeconfig, for the modules that talk to the cluster's API."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description: Kubeconfig of the server.
    type: path
    default: /etc/rancher/k3s/k3s.yaml
"""
