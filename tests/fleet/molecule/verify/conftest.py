"""testinfra reads the inventory with `ansible-inventory --list`, which shows a Clusterfile's values
(unsafe: data, never templated) as {"__ansible_unsafe": value}; testinfra expects plain values
(ansible_host a str). Unwrap them for the verify tests, as tests/integration/test_inventory_fleet.py does."""
import json

from testinfra.utils import ansible_runner

_inventory = ansible_runner.get_ansible_inventory


def _unwrap(obj):
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


def _plain_inventory(config, inventory_file):
    return json.loads(json.dumps(_inventory(config, inventory_file)), object_hook=_unwrap)


ansible_runner.get_ansible_inventory = _plain_inventory
