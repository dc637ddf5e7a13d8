"""Hostile Clusterfiles: every name is checked where it enters, with an error naming the file,
the document, the field path and the line; YAML anchors and aliases are refused before anything
expands; every value reaches Ansible as data, never as a template (checked end to end with
`ansible` and `ansible-inventory`, and by a file that a template would create)."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.seal.cluster.plugins.plugin_utils import clusterfile as cf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.dirname(sys.executable)

HEAD = """apiVersion: sealer.io/v2
kind: Cluster
metadata:
  name: %(name)s
spec:
  ssh: {passwd: x}
  hosts:
    - ips: [%(ip)s]
      roles: [master]
"""


def clusterfile(extra="", name="c1", ip="10.0.0.2"):
    return HEAD % {"name": name, "ip": ip} + extra


def error_of(text):
    with pytest.raises(cf.ClusterfileError) as err:
        cf.load(text, "Clusterfile")
    return str(err.value)


WHERE = "Clusterfile: document 1 (kind Cluster), "
HOST_RULE = ("is not an RFC 1123 host name (letters, digits and '-', in dot-separated labels of at most 63 "
             "characters that start and end with a letter or digit)")
LABEL_RULE = "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


@pytest.mark.parametrize("text, expected", [
    # item 8: IPv6 scope ids, hostAliases hostnames, the registry domain
    (clusterfile(ip='"fe80::1%eth0\\n# END seal.cluster c1"'),
     "spec.hosts[0].ips[0] (line 8): 'fe80::1%eth0\\n# END seal.cluster c1' is not an IP address (it holds a control character)"),
    (clusterfile(ip='"fe80::1%../x"'),
     "spec.hosts[0].ips[0] (line 8): 'fe80::1%../x' has an IPv6 scope id that is not an interface name "
     "(at most 15 letters, digits, '_', '.' or '-')"),
    (clusterfile("  hostAliases:\n    - ip: 10.0.0.9\n      hostnames: [\"evil\\n# END seal.cluster c1\"]\n"),
     "spec.hostAliases[0].hostnames[0] (line 12): 'evil\\n# END seal.cluster c1' " + HOST_RULE),
    (clusterfile("  hostAliases:\n    - ip: \"10.0.0.9\\n\"\n      hostnames: [a]\n"),
     "spec.hostAliases[0].ip (line 11): '10.0.0.9\\n' is not an IP address (it holds a control character)"),
    (clusterfile("  hostAliases:\n    - ip: 10.0.0.9\n      hostnames: []\n"),
     "spec.hostAliases[0].hostnames (line 12): each host alias needs hostnames"),
    (clusterfile("  registry:\n    localRegistry: {domain: ..}\n"),
     "spec.registry.localRegistry.domain (line 11): '..' " + HOST_RULE),
    (clusterfile("  registry:\n    externalRegistry: {domain: \"sea.hub/../..\"}\n"),
     "spec.registry.externalRegistry.domain (line 11): 'sea.hub/../..' " + HOST_RULE),
    (clusterfile("  registry:\n    localRegistry:\n      cert: {subjectAltName: {dnsNames: [\"a b\"]}}\n"),
     "spec.registry.localRegistry.cert.subjectAltName.dnsNames[0] (line 12): 'a b' " + HOST_RULE),
    # item 9: env keys and values, registry usernames, label keys, taints, cluster names, dataRoot
    (clusterfile("  env: [\"A-B=1\"]\n"),
     "spec.env[0] (line 10): 'A-B' is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    (clusterfile("  env: [\"A=1\\nB=2\"]\n"),
     "spec.env[0] (line 10): '1\\nB=2' must not hold a newline or NUL"),
    (clusterfile("      env: [\"K\\n=v\"]\n"),
     "spec.hosts[0].env[0] (line 10): 'K\\n' is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    (clusterfile("  registry:\n    localRegistry: {username: \"admin\\nroot:$2y$05$x\", password: p}\n"),
     "spec.registry.localRegistry.username (line 11): 'admin\\nroot:$2y$05$x' must not contain ':' or a control "
     "character (it is an htpasswd line)"),
    (clusterfile("      labels: {\"-rf\": x}\n"),
     "spec.hosts[0].labels.-rf (line 10): '-rf' is not a label key: its name part must be " + LABEL_RULE),
    (clusterfile("      labels: {zone: \"{{ lookup('pipe','touch /tmp/x') }}\"}\n"),
     "spec.hosts[0].labels.zone (line 10): \"{{ lookup('pipe','touch /tmp/x') }}\" is not a label value (empty, or %s)"
     % LABEL_RULE),
    (clusterfile("      labels: {zone: [a]}\n"),
     "spec.hosts[0].labels.zone (line 10): a label value is a string, not list"),
    (clusterfile("      taints: [\"-k=v:NoSchedule\"]\n"),
     "spec.hosts[0].taints[0] (line 10): '-k=v:NoSchedule' is not a taint: '-k' is not a label key: its name part must be "
     + LABEL_RULE),
    (clusterfile(name="../../etc"),
     "metadata.name (line 4): '../../etc' is not a cluster name: a DNS-1123 label (at most 63 lowercase letters, digits "
     "or '-', starting and ending with a letter or digit)"),
    (clusterfile(name='"c1\\n# END seal.cluster c1"'),
     "metadata.name (line 4): 'c1\\n# END seal.cluster c1' is not a cluster name: a DNS-1123 label (at most 63 "
     "lowercase letters, digits or '-', starting and ending with a letter or digit)"),
    (clusterfile("  dataRoot: /var/lib/seal/../..\n"),
     "spec.dataRoot (line 10): '/var/lib/seal/../..' must be an absolute, normalised path other than '/' (no '.', '..' or '//')"),
    (clusterfile(ip='"::1", "0:0::1"'),
     "spec.hosts[0].ips[1] (line 8): duplicate IP 0:0::1 (already at spec.hosts[0].ips[0])"),
])
def test_hostile_values_are_refused_naming_document_field_and_line(text, expected):
    assert error_of(text) == WHERE + expected


BILLION_LAUGHS = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize("text, expected", [
    (BILLION_LAUGHS, "Clusterfile: line 1: YAML anchor &a refused: a Clusterfile is plain data, anchors and aliases are not allowed"),
    ("apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: &m [*m]\n",
     "Clusterfile: line 3: YAML anchor &m refused: a Clusterfile is plain data, anchors and aliases are not allowed"),
    (clusterfile("  env: *nothing\n"),
     "Clusterfile: line 10: YAML alias *nothing refused: a Clusterfile is plain data, anchors and aliases are not allowed"),
    (clusterfile("      labels: &l {zone: a}\n    - ips: [10.0.0.3]\n      roles: [node]\n      labels: *l\n"),
     "Clusterfile: line 10: YAML anchor &l refused: a Clusterfile is plain data, anchors and aliases are not allowed"),
    ("[" * 5000 + "]" * 5000, "Clusterfile: nested too deeply to be a Clusterfile"),
    (clusterfile("  image: !!python/object/apply:os.system [\"touch /tmp/x\"]\n"),
     WHERE + "spec.image (line 10): YAML tag tag:yaml.org,2002:python/object/apply:os.system refused: a Clusterfile is plain data"),
    (clusterfile("  image: !!python/name:os.system\n"),
     "Clusterfile: not valid YAML (line 10): could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'"),
])
def test_yaml_anchors_aliases_and_tags_are_refused_before_anything_expands(text, expected):
    assert error_of(text) == expected


def _ansible(argv, tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_CALLBACK_RESULT_FORMAT="json",
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)


def test_every_clusterfile_value_is_data_never_a_template(tmp_path):
    """Strings that Jinja would run (a pipe lookup creating a file) reach the play verbatim, in
    plain and nested values; the file they would create never appears."""
    def evil(name):
        return "{{ lookup('pipe', 'touch %s') }}" % (tmp_path / name)
    text = (HEAD % {"name": "c1", "ip": "10.0.0.2"}).replace(
        "roles: [master]", "roles: [master, %s]" % json.dumps(evil("role"))) + (
        "  image: %s\n  env: [%s]\n  hostAliases:\n    - ip: 10.0.0.9\n      hostnames: [a]\n"
        "---\napiVersion: sealer.io/v2\nkind: Config\nmetadata: {name: k3s}\nspec: {path: etc/k3s.yaml, data: %s}\n"
        "---\napiVersion: sealer.io/v2\nkind: Application\nmetadata: {name: a}\n"
        "spec: {cmds: [%s], configs: [{name: web, env: [%s]}]}\n"
        % (json.dumps(evil("image")), json.dumps("X=" + evil("env")), json.dumps(evil("config")),
           json.dumps(evil("app")), json.dumps("Y=" + evil("appenv"))))
    path = tmp_path / "Clusterfile"
    path.write_text(text)
    out = _ansible([os.path.join(BIN, "ansible"), "-i", str(path), "10.0.0.2", "-m", "ansible.builtin.debug",
                    "-a", "msg={{ {'env': seal_env, 'image': seal_image, 'roles': group_names, "
                          "'config': seal_configs[0].spec.data, 'app': seal_application.cmds[0], "
                          "'appenv': seal_application.configs[0].env.Y} | to_json }}"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    shown = json.loads(out.stdout.split("=>", 1)[1])["msg"]
    shown = json.loads(shown)
    # a role is a group (its name sanitised), never a template
    assert "master" in shown.pop("roles")
    assert shown == {"env": {"X": evil("env"), "HostIP": "10.0.0.2"}, "image": evil("image"), "config": evil("config"),
                     "app": evil("app"), "appenv": evil("appenv")}
    assert sorted(os.listdir(tmp_path)) == ["Clusterfile", "ansible-tmp"]


def test_a_templated_label_is_refused_and_nothing_runs(tmp_path):
    path = tmp_path / "Clusterfile"
    path.write_text(clusterfile("      labels: {zone: %s}\n" % json.dumps("{{ lookup('pipe', 'touch %s') }}" % (tmp_path / "x"))))
    out = _ansible([os.path.join(BIN, "ansible-inventory"), "-i", str(path), "--list"], tmp_path)
    assert ("%s: document 1 (kind Cluster), spec.hosts[0].labels.zone (line 10): \"{{ lookup('pipe', 'touch %s') }}\" "
            "is not a label value" % (path, tmp_path / "x")) in out.stderr
    assert not (tmp_path / "x").exists()
