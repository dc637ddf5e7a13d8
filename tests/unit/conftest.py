"""Run a module as Ansible does: JSON arguments on stdin, JSON result on stdout."""
import json
import os
import subprocess
import sys

import pytest

MODULES = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules")


@pytest.fixture
def run_module():
    def run(module_name, check=False, diff=False, **args):
        args.update(_ansible_check_mode=check, _ansible_diff=diff)
        proc = subprocess.run([sys.executable, os.path.join(MODULES, module_name + ".py")], check=False,
                              input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
        return json.loads(proc.stdout)
    return run
