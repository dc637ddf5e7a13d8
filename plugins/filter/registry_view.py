# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.seal.cluster.plugins.module_utils import _registry_view as rc


def registry_view(spec, masters, hostvars, host):
    """Everything one host needs about the cluster's registry (see registry_view.yml)."""
    try:
        settings = rc.resolve(spec)
    except rc.RegistrySpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    masters = list(masters or [])
    servers = rc.registry_servers(settings, masters)
    addresses = [str(hostvars[name].get("ansible_host", name)) for name in servers]
    own = str(hostvars[host].get("ansible_host", host)) if host in hostvars else None
    ca_file = None if settings["insecure"] else rc.ca_file(settings["host"])
    return dict(
        settings,
        endpoint=rc.endpoint(settings),
        servers=servers,
        server_addresses=addresses,
        cert_sans=addresses + [n for n in settings["sans"] if n not in addresses],
        is_server=host in servers,
        hosts_entries=rc.hosts_entries(settings, addresses, own),
        ca_file=ca_file,
        registries=rc.render_registries(settings, ca_file=ca_file, with_auth=False),
        auth=rc.registry_auth(settings),
    )


class FilterModule:
    def filters(self):
        return {"registry_view": registry_view}
