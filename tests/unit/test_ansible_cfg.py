"""ansible.cfg keeps host key checking at Ansible's default and names the default inventory;
tests/ansible.cfg is the same file with only the test fleet's relaxations."""
import configparser
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELAXED = ("StrictHostKeyChecking", "UserKnownHostsFile")


def read(path):
    cfg = configparser.ConfigParser(interpolation=None)
    with open(path, encoding="utf-8") as f:
        cfg.read_file(f)
    return {section: dict(cfg[section]) for section in cfg.sections()}


def test_user_facing_config_checks_host_keys():
    cfg = read(os.path.join(ROOT, "ansible.cfg"))
    assert "host_key_checking" not in cfg["defaults"]
    ssh_args = cfg["ssh_connection"].get("ssh_args", "")
    assert not any(option in ssh_args for option in RELAXED), ssh_args
    for section in cfg.values():
        assert not any(option in value for value in section.values() for option in RELAXED)


def test_bare_command_uses_the_default_inventory():
    cfg = read(os.path.join(ROOT, "ansible.cfg"))
    assert cfg["defaults"]["inventory"] == "inventories/default/Clusterfile"
    assert os.path.isfile(os.path.join(ROOT, "inventories", "default", "Clusterfile.sample"))


def test_test_config_is_the_user_config_with_only_the_fleet_relaxations():
    user = read(os.path.join(ROOT, "ansible.cfg"))
    test = read(os.path.join(ROOT, "tests", "ansible.cfg"))
    assert test["defaults"].pop("host_key_checking") == "False"
    assert "inventory" not in test["defaults"], "a test must always name its inventory with -i"
    del user["defaults"]["inventory"]
    # paths in an ansible.cfg are relative to the file's own directory
    assert os.path.normpath(os.path.join("tests", test["defaults"].pop("collections_path"))) == \
        os.path.normpath(user["defaults"].pop("collections_path"))
    user_ssh = user["ssh_connection"].pop("ssh_args")
    test_ssh = test["ssh_connection"].pop("ssh_args")
    assert test_ssh == user_ssh + " -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"
    assert test == user
