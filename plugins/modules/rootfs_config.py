#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rootfs_config
short_description: Write a Clusterfile's Config files and render the env templates in a host's rootfs
version_added: 0.2.0
description:
  - Runs after the cluster image's rootfs arrived (M(seal.cluster.rootfs)). Writes the files of the
    Clusterfile's C(kind Config) documents (O(files), computed on the controller by the filter
    C(seal.cluster.config_files) from the image's own files), then renders every C(*.tmpl) file of
    the rootfs with O(env) into the file without C(.tmpl), as sealer does (C(pkg/env/env.go)).
  - Templates are Go text/template style, a safe subset (C({{ .Key }}), C(b64enc), C(b64dec),
    C(if), C(range)); any other construct, and a key the env does not hold, fail the task with the
    file and the line; nothing is executed.
  - Lists every file it wrote, rootfs-relative, in C(<rootfs>/.seal/config-applied.json). A
    Config taken out gives the image's file back (a copy is kept under C(.seal/config-base/)).
  - Every path stays inside O(dest); nothing is read or written through a symlink.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  dest:
    description: The rootfs on the host.
    type: path
    required: true
  digest:
    description: The cluster image's digest (the image's copies of replaced files are kept per digest).
    type: str
    required: true
  files:
    description: The Config files, in order (C(path) rootfs-relative, C(content) their text).
    type: list
    elements: dict
    default: []
  env:
    description: The host's env (the cluster's C(spec.env) overridden by the host's C(env)); a list value is a repeated key.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Config files and env templates
  seal.cluster.rootfs_config:
    dest: /var/lib/seal/my-cluster/rootfs
    digest: sha256:4f2c...
    files: [{path: etc/app.yaml, content: "replicas: 3\n"}]
    env: {PodCIDR: 10.42.0.0/16}
"""

RETURN = r"""
written:
  description: Rootfs-relative paths written (or removed) by this run.
  returned: always
  type: list
  elements: str
applied:
  description: Every rootfs-relative path this module owns now (the content of C(.seal/config-applied.json)).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._rootfs_overlay import Overlay


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            digest=dict(type="str", required=True),
            files=dict(type="list", elements="dict", default=[]),
            env=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    try:
        result = Overlay(module.params["dest"], module.params["files"], module.params["env"],
                         module.params["digest"]).run(module.check_mode)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
