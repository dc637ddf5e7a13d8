#!/usr/bin/python
# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: registry_certs
short_description: Keep a cluster's registry CA, serving certificate and htpasswd on the controller
version_added: 0.1.0
description:
  - Meant to run on the controller (C(delegate_to=localhost), C(run_once=true)). Keeps in O(path)
    the cluster's registry CA (C(ca.crt), C(ca.key)), the registry's serving certificate
    (C(server.crt), C(server.key)) and, with O(username), an htpasswd file with a bcrypt hash.
    Keys and the htpasswd are mode 0600, the directory 0700.
  - The CA is made once and never regenerated. A CA with only one of its two files, a key that
    does not match, or an expired CA stops the run with the file named; a new CA happens only
    when both files are removed on purpose.
  - The serving certificate (SANs O(domain), O(sans)) is re-issued from the same CA, with a new
    key, only when it lacks a wanted SAN, was not issued by the CA, or expires within 30 days.
    SANs it has beyond those wanted are kept, so removing a host does not re-issue it.
  - The htpasswd is rewritten only when it does not verify O(username) and O(password).
  - Returns the certificates (public) and their SHA-256 fingerprints, never a key, the password
    or the htpasswd content. Read C(server.key) and C(htpasswd) with M(ansible.builtin.slurp)
    and C(no_log=true) to hand them to M(seal.cluster.registry).
extends_documentation_fragment:
  - seal.cluster.attributes
  - seal.cluster.attributes.CONTROLLER_IN_PROCESS
options:
  path:
    description: The cluster's registry directory on the controller, e.g. C(~/.seal/<cluster>/registry).
    type: path
    required: true
  cluster:
    description: Cluster name, written into the CA's common name.
    type: str
    required: true
  domain:
    description: The registry's domain; the certificate's common name and first SAN.
    type: str
    default: sea.hub
  sans:
    description: More SANs (DNS names or IP addresses), e.g. the registry hosts' addresses.
    type: list
    elements: str
    default: []
  username:
    description: User of the htpasswd file (no C(:) or control character); without it no htpasswd is kept.
    type: str
  password:
    description: Password of O(username); required with it.
    type: str
attributes:
  check_mode:
    support: full
    details: In check mode new certificates and keys are made in memory only and the certificates it would write are returned.
  diff_mode:
    support: none
requirements:
  - cryptography (on the controller)
  - bcrypt (on the controller, with O(username))
author:
  - seal.cluster developers (@seal-cluster)
"""

EXAMPLES = r"""
- name: Registry CA, certificate and htpasswd on the controller
  seal.cluster.registry_certs:
    path: "{{ lookup('env', 'HOME') }}/.seal/my-cluster/registry"
    cluster: my-cluster
    domain: sea.hub
    sans: [192.168.0.2, 192.168.0.3]
    username: admin
    password: "{{ registry_password }}"
  delegate_to: localhost
  run_once: true
  register: certs
"""

RETURN = r"""
ca_cert:
  description: PEM of the CA certificate.
  returned: always
  type: str
cert:
  description: PEM of the serving certificate.
  returned: always
  type: str
ca_fingerprint:
  description: SHA-256 fingerprint of the CA certificate.
  returned: always
  type: str
  sample: "3A:5F:...:C1"
cert_fingerprint:
  description: SHA-256 fingerprint of the serving certificate.
  returned: always
  type: str
sans:
  description: SANs of the serving certificate (DNS names, then IP addresses).
  returned: always
  type: list
  elements: str
issued:
  description: What this run made, among V(ca), V(cert), V(htpasswd).
  returned: always
  type: list
  elements: str
reasons:
  description: Why each item of RV(issued) was made.
  returned: always
  type: dict
  sample: {cert: "it lacks the SAN(s) 10.0.0.4"}
path:
  description: The directory.
  returned: always
  type: str
ca_cert_path:
  description: Path of C(ca.crt).
  returned: always
  type: str
cert_path:
  description: Path of C(server.crt).
  returned: always
  type: str
key_path:
  description: Path of C(server.key) (mode 0600).
  returned: always
  type: str
htpasswd_path:
  description: Path of C(htpasswd) (mode 0600), V(null) without O(username).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.seal.cluster.plugins.module_utils import _names as names
from ansible_collections.seal.cluster.plugins.module_utils import _registry_certs as rc
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure, exit_module


def check_args(p):
    """The user name becomes an htpasswd line; the domain and SANs go into the certificate."""
    names.check_cluster_name(p["cluster"], "cluster")
    names.check_domain(p["domain"], "domain")
    for i, san in enumerate(p["sans"]):
        san = san.strip()
        if not san:
            continue
        try:
            names.check_ip(san)
        except names.InvalidName:
            names.check_hostname(san[2:] if san.startswith("*.") else san, "sans[%d]" % i)
    if p["username"] is not None:
        names.check_registry_username(p["username"], "username")


MODULE_ARGS = dict(
    argument_spec=dict(
        path=dict(type="path", required=True),
        cluster=dict(type="str", required=True),
        domain=dict(type="str", default="sea.hub"),
        sans=dict(type="list", elements="str", default=[]),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
    ),
    required_by={"username": "password"},
    supports_check_mode=True,
)


def run_module(module):
    """The module's result for module (AnsibleModule, or plugin_utils.controller_module's in-process
    stand-in for it); ModuleFailure on failure."""
    p = module.params
    try:
        check_args(p)
    except names.InvalidName as exc:
        raise ModuleFailure(str(exc)) from exc
    if not rc.HAS_CRYPTOGRAPHY:
        raise ModuleFailure(missing_required_lib("cryptography"), exception=rc.CRYPTOGRAPHY_IMPORT_ERROR)
    if p["username"] and not rc.HAS_BCRYPT:
        raise ModuleFailure(missing_required_lib("bcrypt"), exception=rc.BCRYPT_IMPORT_ERROR)
    try:
        certs = rc.RegistryCerts(p["path"], p["cluster"], p["domain"], p["sans"], p["username"], p["password"])
    except rc.MaterialError as exc:
        raise ModuleFailure(str(exc)) from exc
    if certs.changed and not module.check_mode:
        try:
            certs.apply()
        except OSError as exc:
            raise ModuleFailure("cannot write %s: %s" % (p["path"], exc)) from exc
    return dict(changed=certs.changed, **certs.summary())


def main():
    exit_module(AnsibleModule(**MODULE_ARGS), run_module)


if __name__ == "__main__":
    main()
