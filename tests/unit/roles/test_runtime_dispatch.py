"""The runtime seam (role runtime_dispatch), without contacting a host: the refusal of a runtime no
role implements, an unqualified runtime role found in this collection first and in the roles path
next (the test-only fake runtime), and the playbooks reaching the runtime's roles only through it."""
import glob
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
HA = os.path.join(ROOT, "inventories", "ha", "Clusterfile")
FAKE_ROLES = os.path.join(ROOT, "tests", "runtimes")
# the k3s roles behind runtime_k3s: no playbook includes them but through the seam
K3S_ROLES = {"init", "join", "finish", "upgrade", "delete", "reset", "runtime"}

PLAYBOOK = """
- hosts: master:node
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: seal.cluster.runtime_dispatch
        tasks_from: check
        apply:
          run_once: true
          any_errors_fatal: true
      vars:
        runtime_dispatch_runtime: "{{ rt }}"
        runtime_dispatch_image: "x:v1 (sha256:abc)"
      run_once: true
    - ansible.builtin.include_role:
        name: seal.cluster.runtime_dispatch
      vars:
        runtime_dispatch_verb: "{{ verb }}"
        runtime_dispatch_runtime: "{{ rt }}"
        runtime_reports: {}  # what verb query publishes; no host runs k3s here
    - ansible.builtin.copy:
        dest: "%(out)s/{{ inventory_hostname }}.json"
        content: "{{ runtime_k3s_join_plan | default(runtime_fake_plan) | to_json }}"
      delegate_to: localhost
"""


def dispatch(tmp_path, runtime, verb="plan", roles_path=FAKE_ROLES):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    playbook = tmp_path / "dispatch.yml"
    playbook.write_text(PLAYBOOK % {"out": out})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"), HOME=str(tmp_path), ANSIBLE_NOCOLOR="1")
    if roles_path:
        env["ANSIBLE_ROLES_PATH"] = roles_path
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", HA, str(playbook), "-e", "rt=" + runtime,
                           "-e", "verb=" + verb], env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc, {p.stem: json.loads(p.read_text()) for p in out.iterdir()}


def test_k3s_is_this_collections_runtime(tmp_path):
    proc, plans = dispatch(tmp_path, "k3s", roles_path=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(plans) == 5 and {p["init_host"] for p in plans.values()} == {"192.0.2.11"}
    assert "servers" in plans["192.0.2.11"]  # k3s_join_plan's, not the fake's


def test_a_runtime_role_on_the_roles_path_is_found_from_inside_the_collection(tmp_path):
    proc, plans = dispatch(tmp_path, "fake")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert plans == {h: {"init_host": "192.0.2.11"} for h in plans} and len(plans) == 5


def test_a_runtime_no_role_implements_is_refused_naming_image_and_runtime(tmp_path):
    proc, plans = dispatch(tmp_path, "fake", roles_path=None)  # the fake runtime is not on the roles path
    text = " ".join(proc.stdout.split())
    assert proc.returncode != 0 and plans == {}
    assert "cluster image x:v1 (sha256:abc) has runtime 'fake' and no role runtime_fake implements it" in text
    assert "Runtime verb fake" not in text  # no host reached the dispatch


def test_a_runtime_name_is_never_a_path(tmp_path):
    proc, plans = dispatch(tmp_path, "../runtimes/runtime_fake")
    assert proc.returncode != 0 and plans == {}
    assert "has runtime '../runtimes/runtime_fake' and no role" in " ".join(proc.stdout.split())


def test_a_verb_the_runtime_lacks_fails(tmp_path):
    proc, _plans = dispatch(tmp_path, "fake", verb="upgrade")
    assert proc.returncode != 0 and "upgrade" in proc.stdout + proc.stderr


def _includes(path):
    def walk(node):
        if isinstance(node, dict):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
                if key in node:
                    yield node[key]["name"], node.get("vars") or {}
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
    with open(path, encoding="utf-8") as f:
        yield from walk(yaml.safe_load(f))


def test_playbooks_reach_the_runtime_only_through_the_seam():
    k3s_verbs = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROOT, "roles", "runtime_k3s", "tasks", "*.yml"))}
    with open(os.path.join(ROOT, "roles", "runtime_dispatch", "meta", "argument_specs.yml"), encoding="utf-8") as f:
        choices = set(yaml.safe_load(f)["argument_specs"]["main"]["options"]["runtime_dispatch_verb"]["choices"])
    assert choices == k3s_verbs
    called = set()
    for path in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")):
        for name, variables in _includes(path):
            assert name.split(".")[-1] not in K3S_ROLES, (path, name)
            if name == "seal.cluster.runtime_dispatch" and "runtime_dispatch_verb" in variables:
                called.add(variables["runtime_dispatch_verb"])
        with open(path, encoding="utf-8") as f:
            assert not re.search(r"seal\.cluster\.k3s_(runtime|node|cluster)\b", f.read()), path
    assert called == choices


def test_k3s_verbs_skip_a_role_whole_not_task_by_task():
    """A conditional import_role would run each task as skipped and register a skipped result over
    a host's own (runtime_result, which the health gates read): a verb that runs its role on some
    hosts only includes it."""
    for path in glob.glob(os.path.join(ROOT, "roles", "runtime_k3s", "tasks", "*.yml")):
        with open(path, encoding="utf-8") as f:
            for task in yaml.safe_load(f):
                assert not ("when" in task and "ansible.builtin.import_role" in task), (path, task["name"])
