"""testinfra reads the inventory through `ansible-inventory --list`, which shows every value the
Clusterfile plugin sets (unsafe by design: a Clusterfile is data, never templated) as
{"__ansible_unsafe": value}. testinfra expects plain values (its ansible_host must be a str), so
the verify tests read the inventory with that wrapping taken off.

testinfra's SSH backend takes ssh_args from ansible.cfg but not host_key_checking = false: the
throw-away fleet's containers get new host keys for addresses other fleets used before, so the
verify tests pass the same options as tests/ansible.cfg (no known_hosts, no strict checking)."""
import testinfra.utils.ansible_runner as ansible_runner

_inventory = ansible_runner.get_ansible_inventory


def plain(value):
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return plain(value["__ansible_unsafe"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


FLEET_SSH_ARGS = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"


def _plain_inventory(*args, **kwargs):
    inventory = plain(_inventory(*args, **kwargs))
    for hostvars in inventory.get("_meta", {}).get("hostvars", {}).values():
        hostvars.setdefault("ansible_ssh_extra_args", FLEET_SSH_ARGS)
    return inventory


ansible_runner.get_ansible_inventory = _plain_inventory
