"""Stand-in for the get-pip.py bootstrap that ansible-test downloads from a host this machine
cannot reach: runs pip from the wheel bundled with this Python's ensurepip, with the arguments
ansible-test passes to get-pip.py (it then installs its pinned pip from PyPI). setup.sh copies this file to
~/.ansible/test/cache/get_pip_<version>.py, where ansible-test looks before downloading."""
import glob
import os
import runpy
import sys

import ensurepip

wheels = glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl"))
if not wheels:
    sys.exit("get_pip_offline: this Python's ensurepip has no bundled pip wheel")
sys.path.insert(0, wheels[0])
# get-pip.py takes install's arguments without the command, plus options of its own.
OWN_OPTIONS = {"--no-setuptools", "--no-wheel"}
sys.argv[1:] = ["install"] + [a for a in sys.argv[1:] if a not in OWN_OPTIONS]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
