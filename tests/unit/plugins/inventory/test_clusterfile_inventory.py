"""The Clusterfile inventory plugin (plugins/inventory/clusterfile.py) as ansible-core's plugin
loader loads it (in a fresh interpreter: the loader cannot run in a process that imported the
collection from sys.path), without a fleet: which files it takes, the groups and variables it
makes in direct and config mode (constructed's keyed_groups and compose), and its errors."""
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "clusterfiles")

# Loads the plugin through inventory_loader, then verify_file() and parse() each path in argv.
LOADER = """
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
plugin = inventory_loader.get("seal.cluster.clusterfile")
out = []
for path in sys.argv[1:]:
    if not plugin.verify_file(path):
        out.append({"verified": False})
        continue
    inventory = InventoryData()
    try:
        plugin.parse(inventory, DataLoader(), path, cache=False)
    except Exception as exc:
        out.append({"verified": True, "error": "%s: %s" % (type(exc).__name__, exc)})
        continue
    out.append({"verified": True,
                "groups": {n: {"hosts": sorted(h.name for h in g.get_hosts()),
                               "children": sorted(c.name for c in g.child_groups)} for n, g in inventory.groups.items()},
                "hostvars": {n: h.vars for n, h in inventory.hosts.items()}})
print(json.dumps(out))
"""


def load(*paths):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", LOADER, *[str(p) for p in paths]], capture_output=True, text=True,
                          env=env, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


CLUSTERFILE = """\
apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: edge-1
spec:
  image: k3s:v1.25.3
  ssh: {user: root, passwd: "s3cret-pw", port: "22"}
  hosts:
    - ips: [10.0.0.2, 10.0.0.3]
      roles: [master, infra]
      labels: {zone: a}
    - ips: [10.0.0.5]
      roles: [node]
      labels: {zone: b}
      ssh: {port: "2222"}
"""


def test_takes_clusterfiles_and_its_config_only(tmp_path):
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(CLUSTERFILE)
    config = tmp_path / "inventory.clusterfile.yml"
    config.write_text("plugin: seal.cluster.clusterfile\npath: Clusterfile\n")
    other = tmp_path / "hosts.yml"
    other.write_text("all:\n  hosts:\n    a: {}\n")
    kubernetes = tmp_path / "cluster.yml"
    kubernetes.write_text("apiVersion: example.com/v1\nkind: Cluster\n")
    verified = [r["verified"] for r in load(clusterfile, config, other, kubernetes, tmp_path / "missing")]
    assert verified == [True, True, False, False, False]


def test_direct_mode_groups_and_host_variables(tmp_path):
    clusterfile = tmp_path / "Clusterfile"
    clusterfile.write_text(CLUSTERFILE)
    (inventory,) = load(clusterfile)
    groups, hostvars = inventory["groups"], inventory["hostvars"]
    assert groups["master"]["hosts"] == ["10.0.0.2", "10.0.0.3"] and groups["node"]["hosts"] == ["10.0.0.5"]
    assert groups["master0"]["hosts"] == ["10.0.0.2"] and groups["infra"]["hosts"] == ["10.0.0.2", "10.0.0.3"]
    assert groups["cluster_edge_1"]["hosts"] == ["10.0.0.2", "10.0.0.3", "10.0.0.5"]
    assert groups["server"]["children"] == ["master"] and groups["agent"]["children"] == ["node"]
    agent = hostvars["10.0.0.5"]
    assert agent["ansible_host"] == "10.0.0.5" and agent["ansible_port"] == 2222 and agent["ansible_user"] == "root"
    assert agent["seal_labels"] == {"zone": "b"} and agent["seal_cluster_name"] == "edge-1"
    assert agent["seal_clusterfile"] == str(clusterfile) and hostvars["10.0.0.3"]["ansible_port"] == 22


def test_config_mode_with_keyed_groups_and_compose(tmp_path):
    (tmp_path / "cf").mkdir()
    clusterfile = tmp_path / "cf" / "Clusterfile"
    clusterfile.write_text(CLUSTERFILE)
    config = tmp_path / "inventory.clusterfile.yml"
    config.write_text("plugin: seal.cluster.clusterfile\npath: cf/Clusterfile\n"
                      "keyed_groups:\n  - key: seal_labels.zone\n    prefix: zone\n"
                      "compose:\n  seal_zone_upper: seal_labels.zone | upper\n")
    (inventory,) = load(config)
    assert inventory["groups"]["zone_a"]["hosts"] == ["10.0.0.2", "10.0.0.3"]
    assert inventory["groups"]["zone_b"]["hosts"] == ["10.0.0.5"]
    assert inventory["hostvars"]["10.0.0.5"]["seal_zone_upper"] == "B"
    assert inventory["hostvars"]["10.0.0.5"]["seal_clusterfile"] == str(clusterfile)


def test_errors_name_the_file_and_show_no_secret(tmp_path):
    without_path, missing = tmp_path / "a.clusterfile.yml", tmp_path / "b.clusterfile.yml"
    without_path.write_text("plugin: seal.cluster.clusterfile\n")
    missing.write_text("plugin: seal.cluster.clusterfile\npath: nowhere/Clusterfile\n")
    bad = tmp_path / "Clusterfile"
    bad.write_text(CLUSTERFILE.replace('port: "2222"', 'port: "not-a-port"'))
    duplicate = os.path.join(DATA, "bad", "duplicate-ip.clusterfile")
    with open(duplicate, encoding="utf-8") as f:
        expected = f.readline().split("# expect: ", 1)[1].strip()
    errors = [r.get("error", "") for r in load(without_path, missing, bad, duplicate)]
    assert errors[0] == "AnsibleParserError: %s: config mode needs 'path' (the Clusterfile)" % without_path
    assert errors[1].startswith("AnsibleParserError: %s: cannot read the Clusterfile %s" % (missing, tmp_path / "nowhere" / "Clusterfile"))
    assert errors[2].startswith("AnsibleParserError: %s: " % bad) and "port" in errors[2] and "s3cret-pw" not in errors[2]
    assert errors[3].startswith("AnsibleParserError: ") and expected in errors[3]
