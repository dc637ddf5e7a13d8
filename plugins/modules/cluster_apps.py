#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_apps
short_description: Launch a cluster image's applications on a k3s server, in order
version_added: 0.1.0
description:
  - Runs on the cluster's first master, after the cluster is up, what the image's
    C(sealer.image.extension) launches (C(docs/apps.md)), as sealer's application driver does -
    the image's C(CMDS) when it has them, else each app of its C(LAUNCH), in order.
  - kube apps - C(k3s kubectl apply -f) each of the app's files.
  - helm apps - a k3s C(helm.cattle.io/v1) C(HelmChart) in C(kube-system) whose C(spec.chartContent)
    is the base64 of the app's chart directory packed as a reproducible C(.tgz); k3s's helm
    controller installs it into C(spec.targetNamespace) (the app's C(NAMESPACE) env, else C(default)).
  - shell apps, an app's C(APPCMDS) and the image's C(CMDS) - run with O(env) exported (the image's
    C(ENV), the app's C(APPENV) and the O(application)'s env over it), in the app's directory (C(CMDS)
    and an O(application)'s commands in the rootfs); once per content, since a command cannot tell
    whether it changed anything. The record (O(record)) says what ran.
  - O(application) is the Clusterfile's C(Application) document (sealer's C(launchApps), C(cmds) and
    per-app C(configs)), as sealer's application driver merges it with the image.
  - Deletion - an app of the same image repository that the record holds and this run no longer
    launches is removed - the objects it applied (kept in the record) are deleted with
    C(kubectl delete --ignore-not-found); an app that ran commands only leaves the record. Objects a
    kept app no longer applies are deleted too.
  - Every app is named with the image and digest it came from in the result's messages.
extends_documentation_fragment:
  - seal.cluster.attributes
options:
  rootfs:
    description: The image's rootfs on this host (its apps are under C(application/apps/<name>/)).
    type: path
    required: true
  extension:
    description: The image's C(sealer.image.extension) (M(seal.cluster.cluster_image)'s RV(seal.cluster.cluster_image#module:extension)).
    type: raw
    required: true
  launch:
    description: The apps to launch instead of the image's C(LAUNCH) (sealer's C(--apps)); each must be an app of the image.
    type: list
    elements: str
  image:
    description: The image's reference, for messages and the record.
    type: str
    required: true
  digest:
    description: The image's manifest digest; apps run only from an image known by digest.
    type: str
    required: true
  application:
    description:
      - The Clusterfile's C(Application) document in the inventory's form (C(seal_application) -
        C(name), C(cmds), C(launchApps), C(configs) with C(name), C(env), C(cmds)); see C(docs/apps.md).
      - Its C(cmds) replace everything launched; its C(launchApps) replace the image's C(LAUNCH) (an
        empty name is skipped); a config's C(cmds) replace that app's launch and its C(env) goes over the app's.
    type: dict
  env:
    description: The host's env (C(seal_env)), exported to shell apps and commands.
    type: dict
    default: {}
  record:
    description: The cluster's record on this host; its C(apps) say which commands already ran.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    details: >-
      kube and helm apps are applied, and dropped apps deleted, with C(--dry-run=server); commands are
      not run and report changed unless recorded.
  diff_mode:
    support: none
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Launch the apps of the cluster image
  seal.cluster.cluster_apps:
    rootfs: /var/lib/seal/my-cluster/rootfs
    extension: "{{ controller_cluster.image.extension }}"
    image: "{{ controller_cluster.image.name }}"
    digest: "{{ controller_cluster.image.digest }}"
    env: "{{ seal_env | default({}) }}"
    record: /var/lib/seal/my-cluster/applied.json
"""

RETURN = r"""
apps:
  description:
    - Each launch step, in order, with name, type, image, digest, content, objects (what a kube or helm
      app applied), changed, output and msg; then each app removed because it is no longer launched.
  returned: always
  type: list
  elements: dict
record_apps:
  description: The record's apps after this run (what M(seal.cluster.cluster_record) keeps as O(seal.cluster.cluster_record#module:apps)).
  returned: always
  type: list
  elements: dict
record_changed:
  description: Whether RV(record_apps) differs from the record's apps.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.seal.cluster.plugins.module_utils._cluster_apps import Launcher
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rootfs=dict(type="path", required=True),
            extension=dict(type="raw", required=True),
            launch=dict(type="list", elements="str"),
            application=dict(type="dict"),
            image=dict(type="str", required=True),
            digest=dict(type="str", required=True),
            env=dict(type="dict", default={}),
            record=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    try:
        result = Launcher(module).run()
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
