import pytest
import yaml

from ansible_collections.seal.cluster.plugins.module_utils._yaml_emit import dump

CASES = [
    {"write-kubeconfig-mode": "0644", "cluster-init": True, "tls-san": ["10.0.0.2", "sea.hub"], "https-listen-port": 6443},
    {"node-taint+": ["a=b:NoSchedule"], "disable": [], "node-label": {}},
    {"mirrors": {"docker.io": {"endpoint": ["https://sea.hub:5000"]}, "*": {"endpoint": ["https://x:1"]}},
     "configs": {"sea.hub:5000": {"auth": {"username": "admin", "password": "p'a\"s:s #1"},
                                  "tls": {"ca_file": "/etc/ca.crt", "insecure_skip_verify": False}}}},
    {"list-of-maps": [{"a": 1, "b": [1, 2]}, {"c": None}], "yes": "on", "1.20": "1.20"},
]


@pytest.mark.parametrize("data", CASES)
def test_round_trips_through_a_yaml_1_1_parser(data):
    assert yaml.safe_load(dump(data)) == data


def test_mode_strings_stay_strings_and_order_is_kept():
    text = dump({"b": "0644", "a": "on"})
    assert text == 'b: "0644"\na: "on"\n'


def test_equal_input_gives_equal_bytes():
    assert dump(CASES[2]) == dump(dict(CASES[2]))
