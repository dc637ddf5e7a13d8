# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over a Clusterfile's Config and Plugin documents and its env (controller side)."""

from __future__ import annotations

import os

import yaml
from ansible.errors import AnsibleFilterError
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.seal.cluster.plugins.module_utils import _image_extension as ext_mod
from ansible_collections.seal.cluster.plugins.module_utils import _k3s_config as k3s_config
from ansible_collections.seal.cluster.plugins.module_utils import _safe_archive as safe_archive
from ansible_collections.seal.cluster.plugins.module_utils import _rootfs_overlay as overlay
from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf
from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_application
from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_config
from ansible_collections.seal.cluster.plugins.plugin_utils import sealer_plugins

PLUGIN_DIR = "plugins"
MAX_PLUGIN_FILE = 1 << 20


def _plain(value):
    """Unsafe-marked inventory data as plain Python values (they are only ever data here)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def config_files(configs, image_rootfs):
    """The files the Config documents make, from the image's own files (the controller's rootfs cache)."""
    checked = []
    for i, config in enumerate(_plain(configs or [])):
        try:
            checked.append(sealer_config.check(config))
        except sealer_config.ConfigError as exc:
            raise AnsibleFilterError("Config document %d (%s): %s" % (i + 1, (config.get("metadata") or {}).get("name"), exc)) from None
    try:
        return wrap_var(sealer_config.files(checked, str(image_rootfs) if image_rootfs else None))
    except sealer_config.ConfigError as exc:
        raise AnsibleFilterError(str(exc)) from None


def cluster_application(application, extension=None):
    """The Application document's launch settings, checked (a plain inventory may set
    seal_application) and, when an image is known (extension not None), against its apps, before
    any host changes; None without one."""
    plain = _plain(application)
    if not plain:
        return None
    try:
        checked = ext_mod.checked_application(plain, "Application")
        if extension is not None:
            sealer_application.check_against(checked, _plain(extension), "Application %s" % (checked["name"] or "(Cluster spec)"))
    except (ext_mod.ExtensionError, sealer_application.ApplicationError) as exc:
        raise AnsibleFilterError(str(exc)) from None
    return wrap_var(checked)


def _image_plugin_files(rootfs):
    directory = os.path.join(rootfs, PLUGIN_DIR)
    if os.path.islink(directory) or not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if n.endswith((".yaml", ".yml")))


def image_plugins(rootfs, image):
    """The Plugin documents an image carries in plugins/*.yaml (sealer pkg/plugin/plugins.go Load)."""
    out = []
    for name in _image_plugin_files(rootfs):
        rel = "%s/%s" % (PLUGIN_DIR, name)
        try:
            raw = safe_archive.read_regular(rootfs, rel, MAX_PLUGIN_FILE, "cluster image %s" % image)
        except safe_archive.ArchiveError as exc:
            raise AnsibleFilterError(str(exc)) from None
        if raw is None:
            continue
        label = "cluster image %s %s" % (image, rel)
        try:
            docs = [cf._Doc(label, i, node) for i, node in enumerate(yaml.compose_all(raw.decode("utf-8"), Loader=cf._DataLoader))
                    if node is not None]  # pylint: disable=protected-access
        except (cf.ClusterfileError, yaml.YAMLError, UnicodeDecodeError, cf._Refused) as exc:  # pylint: disable=protected-access
            raise AnsibleFilterError("%s: not a Plugin file: %s" % (label, exc)) from None
        for doc in docs:
            if not isinstance(doc.value, dict) or doc.value.get("kind") != "Plugin":
                continue
            try:
                out.append(sealer_plugins.check(doc.value, "image %s %s" % (image, rel)))
            except sealer_plugins.PluginError as exc:
                raise doc.error("", str(exc)) from None
    return out


def cluster_plugins(plugins, image_rootfs=None, image=None, trusted=False):
    """The Clusterfile's Plugins (checked again: a plain inventory may set seal_plugins) followed by
    the image's. An image's plugins are refused unless the image is referenced by digest or was in
    the local store before this run (trusted)."""
    out = []
    for i, plugin in enumerate(_plain(plugins or [])):
        source = plugin.get("source", "Clusterfile") if isinstance(plugin, dict) else "Clusterfile"
        try:
            if isinstance(plugin, dict) and "actions" in plugin:
                plugin = {"apiVersion": "sealer.io/v1", "kind": "Plugin", "metadata": {"name": plugin.get("name")},
                          "spec": {"type": plugin.get("type"), "action": "|".join(plugin.get("actions") or []),
                                   "on": plugin.get("on"), "data": plugin.get("data")}}
            out.append(sealer_plugins.check(plugin, source))
        except (sealer_plugins.PluginError, AttributeError) as exc:
            raise AnsibleFilterError("Plugin %d: %s" % (i + 1, exc)) from None
    if image_rootfs:
        try:
            found = image_plugins(str(image_rootfs), str(image))
        except cf.ClusterfileError as exc:
            raise AnsibleFilterError(str(exc)) from None
        if found and not trusted:
            raise AnsibleFilterError(
                "cluster image %s carries plugins (%s) that would run on the hosts, but it was pulled by tag in this run: "
                "reference it by digest (name@sha256:...) or put it in the local store first (seal pull / cluster_image)"
                % (image, ", ".join(sorted({p["source"].rsplit(" ", 1)[-1] for p in found}))))
        out.extend(found)
    return wrap_var(out)  # Clusterfile and image text stays data: never rendered as a template


def plugin_runs(plugins, phase, host, hostvars, groups, hosts=None):
    """What `host` runs in `phase`: [{name, type, source, data, hostname}] in plugin order.
    hosts: the hosts the phase concerns (default every inventory host); only those are selected."""
    candidates = [h for h in (hosts if hosts is not None else groups.get("all", [])) if h in hostvars]
    out = []
    for plugin in plugins or []:
        if plugin["type"] in ("LABEL", "TAINT"):
            continue
        if host not in sealer_plugins.select(plugin, phase, candidates, hostvars, groups):
            continue
        run = {"name": plugin["name"], "type": plugin["type"], "source": plugin["source"], "data": plugin["data"]}
        if plugin["type"] == "HOSTNAME":
            run["hostname"] = sealer_plugins.host_value(plugin, host, hostvars)
        out.append(run)
    return wrap_var(out)


def plugin_node_specs(specs, plugins):
    """Node specs (k3s_node_specs) with the labels and taints of LABEL and TAINT plugins added."""
    out = []
    for spec in specs:
        spec = dict(spec, labels=dict(spec.get("labels") or {}), taints=list(spec.get("taints") or []))
        for plugin in plugins or []:
            if plugin["type"] not in ("LABEL", "TAINT"):
                continue
            value = sealer_plugins.host_value(plugin, spec["host"], {spec["host"]: {"ansible_host": spec["address"]}})
            if plugin["type"] == "LABEL":
                spec["labels"].update(value)
            else:
                spec["taints"].extend(t for t in value if t not in spec["taints"])
        out.append(spec)
    return wrap_var(out)


def k3s_env_config(env):
    """k3s server config from the cluster env's network keys (PodCIDR, SvcCIDR, CertSANs, DNSDomain)."""
    try:
        return k3s_config.from_sealer_env(_plain(env or {}))
    except ModuleFailure as exc:
        raise AnsibleFilterError(exc.msg) from None


def rootfs_overlay_inputs(files, env, digest):
    """The inputs digest rootfs_config records for these files, env and image digest: equal to the
    host's (rootfs_info's overlay_inputs), the overlay there is already this one."""
    return overlay.inputs_digest(_plain(files or []), _plain(env or {}), digest)


class FilterModule:
    def filters(self):
        return {"config_files": config_files, "cluster_application": cluster_application, "cluster_plugins": cluster_plugins, "plugin_runs": plugin_runs,
                "plugin_node_specs": plugin_node_specs, "k3s_env_config": k3s_env_config,
                "rootfs_overlay_inputs": rootfs_overlay_inputs}
