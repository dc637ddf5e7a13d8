# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: clusterfile
short_description: A sealer-style Clusterfile as the Ansible inventory
version_added: 0.1.0
author:
  - seal.cluster developers (@seal-cluster)
description:
  - Reads a Clusterfile (C(apiVersion sealer.io/v2), C(kind Cluster), plus optional runtime
    documents in the same file) and makes its hosts, groups and variables the inventory.
  - Direct mode, C(-i Clusterfile), recognises the file by its content (a document of kind
    Cluster); enable the plugin in C(ansible.cfg) (C([inventory] enable_plugins)). Config mode
    takes a YAML file whose O(plugin) is V(seal.cluster.clusterfile), and O(path).
  - Groups are the roles (V(master), V(node) and every free-form role, sanitised), V(server)
    (parent of V(master)) and V(agent) (parent of V(node)) as k3s names them, V(master0) (the
    first master), and C(cluster_<name>) per cluster, so that several Clusterfiles can share one inventory.
  - Host names are the IP addresses. Host variables are C(ansible_host), C(ansible_port),
    C(ansible_user), C(ansible_password) or C(ansible_ssh_private_key_file) (with C(pkPasswd),
    the key content and its passphrase), C(seal_labels), C(seal_taints), and the cluster's
    C(seal_cluster_name), C(seal_image), C(seal_registry) (with defaults V(sea.hub) and V(5000)),
    C(seal_host_aliases), C(seal_data_root). A host's roles are its groups; the first master is
    group V(master0).
  - C(seal_env) (the cluster env overridden per host, with sealer's C(HostIP), C(KubeSvcIP),
    C(DNSSvcIP)), C(seal_cluster_env) (the cluster env alone), C(seal_configs) and C(seal_plugins)
    (the C(Config) and C(Plugin) documents, checked like the Cluster; docs/config.md,
    docs/plugin.md), C(seal_application) (the C(Application) document's launch settings, with the
    Cluster's C(spec.cmd) and C(spec.appNames) over them; docs/apps.md) and C(seal_runtime_config)
    (any other documents).
  - A Clusterfile is data, as it is for sealer - every value read from it (nested ones too) is
    marked unsafe and never rendered as a template, so a label such as C({{ lookup(...) }}) stays
    that text. Use a normal inventory to template variables.
  - YAML anchors and aliases are refused (nothing expands). Names are checked where they enter -
    cluster name, IPs, host names, registry domain and user, label keys and values, taints,
    env keys and values, data root - see C(docs/security.md).
  - Passwords and key passphrases never appear in errors.
  - The file is validated before anything runs; errors name the file, the document, the field path and the line.
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin (config mode).
    type: str
    choices: [seal.cluster.clusterfile]
  path:
    description:
      - The Clusterfile (config mode). A relative path is relative to the directory of the
        config file, after following symlinks to it.
    type: str
"""

EXAMPLES = r"""
# Direct mode:  ansible-inventory -i Clusterfile --graph
# Config mode (inventory.clusterfile.yml):
plugin: seal.cluster.clusterfile
path: ./Clusterfile
keyed_groups:
  - key: seal_labels.zone | default('none')
    prefix: zone
"""

import os
import re

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf

CLUSTER_KIND = re.compile(r"^kind:\s*['\"]?Cluster['\"]?\s*$", re.MULTILINE)


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "seal.cluster.clusterfile"

    def verify_file(self, path):
        if not super().verify_file(path) or not os.path.isfile(path):
            return False
        try:
            with open(path, encoding="utf-8") as f:
                head = f.read(1 << 16)
        except (OSError, UnicodeDecodeError):
            return False
        if re.search(r"^plugin:\s*['\"]?seal\.cluster\.clusterfile['\"]?\s*$", head, re.MULTILINE):
            return True
        return bool(CLUSTER_KIND.search(head)) and "sealer.io/" in head

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        clusterfile = path
        if re.search(r"^plugin:", text, re.MULTILINE):
            self._read_config_data(path)
            target = self.get_option("path")
            if not target:
                raise AnsibleParserError("%s: config mode needs 'path' (the Clusterfile)" % path)
            clusterfile = os.path.join(os.path.dirname(os.path.realpath(path)), os.path.expanduser(target))
            try:
                with open(clusterfile, encoding="utf-8") as f:
                    text = f.read()
            except OSError as exc:
                raise AnsibleParserError("%s: cannot read the Clusterfile %s: %s" % (path, clusterfile, exc)) from None
        try:
            docs = cf.load(text, clusterfile)
        except cf.ClusterfileError as exc:
            raise AnsibleParserError(str(exc)) from None
        runtime_docs = [d for d in docs if d.kind != "Cluster"]
        strict = self.get_option("strict") if self._options else False
        for doc in docs:
            if doc.kind != "Cluster":
                continue
            for name, hostvars, groups in cf.hosts_of(doc, runtime_docs):
                self.add_host(name, hostvars, groups, os.path.abspath(clusterfile), strict)

    def add_host(self, name, hostvars, groups, clusterfile, strict):
        inventory = self.inventory
        for group in groups:
            inventory.add_group(group)
        inventory.add_group("server")
        inventory.add_group("agent")
        if "master" in groups:
            inventory.add_child("server", "master")
        if "node" in groups:
            inventory.add_child("agent", "node")
        inventory.add_host(name, group=groups[0])
        for group in groups[1:]:
            inventory.add_host(name, group=group)
        # A Clusterfile is data: every value (nested ones too) is marked unsafe, never templated.
        hostvars = wrap_var(dict(hostvars, seal_clusterfile=clusterfile))
        for key, value in hostvars.items():
            inventory.set_variable(name, key, value)
        if self._options:
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)
