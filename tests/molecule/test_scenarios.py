"""Every Molecule scenario (molecule/*/molecule.yml) as one group of tests, so that the suite
runs the scenarios side by side with each other and with the integration modules (pytest-xdist,
`--dist loadgroup`: tests/conftest.py makes each scenario a group of its own and starts the
longest first). A scenario passes when `molecule test` does, its verify step ran at least one
passing test (Molecule skips a verifier with no tests and still succeeds), and no password its
fleet.yml sets appears in its output. The output is kept in .cache/molecule-<scenario>.log.

The platforms' fleet names take $SEAL_FLEET_PREFIX (molecule.yml), so a run under a prefix
touches no other checkout's fleets."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
import fleet  # noqa: E402  pylint: disable=wrong-import-position

SCENARIOS = sorted(d for d in os.listdir(os.path.join(ROOT, "molecule"))
                   if os.path.isfile(os.path.join(ROOT, "molecule", d, "molecule.yml")))
# Minutes each takes on an idle machine: the suite starts the longest first (a new scenario
# counts as long until it is listed here).
MINUTES = {"lifecycle": 8, "ha": 5, "default": 4}
TIMEOUT = float(os.environ.get("SEAL_MOLECULE_TIMEOUT", "3600"))


def scenario_params():
    return [pytest.param(s, id=s, marks=pytest.mark.minutes(MINUTES.get(s, 10))) for s in SCENARIOS]


def secrets(node) -> list[str]:
    """Every value of a key named password (at any depth) in a scenario's fleet.yml."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower() == "password" and isinstance(value, str) and value:
                found.append(value)
            else:
                found += secrets(value)
    elif isinstance(node, list):
        for value in node:
            found += secrets(value)
    return found


def fleet_name(scenario: str) -> str:
    with open(os.path.join(ROOT, "molecule", scenario, "molecule.yml"), encoding="utf-8") as f:
        first = yaml.safe_load(f)["platforms"][0]["name"]
    return re.sub(r"-[mn][0-9]+$", "", first.replace("${SEAL_FLEET_PREFIX}", os.environ.get("SEAL_FLEET_PREFIX", "")))


@pytest.fixture(scope="module", params=scenario_params())
def scenario(request):
    """Run `molecule test -s <scenario>` once; its exit code and output."""
    name = request.param
    log = os.path.join(ROOT, ".cache", f"molecule-{name}.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "tests", "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"), ANSIBLE_FORCE_COLOR="0",
               PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"])
    with open(log, "wb") as out:
        proc = subprocess.Popen(["molecule", "test", "-s", name], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = f"killed after {TIMEOUT:.0f}s"
        finally:  # on a timeout, and when the suite is stopped (tests/conftest.py)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                fleet.down(fleet_name(name))
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    return {"name": name, "rc": rc, "log": log, "text": text}


def tail(run, lines: int = 80) -> str:
    return f"{run['log']} (last {lines} lines):\n" + "\n".join(run["text"].splitlines()[-lines:])


def test_molecule_test_passes(scenario):
    assert scenario["rc"] == 0, f"molecule test -s {scenario['name']}: {scenario['rc']}; " + tail(scenario)


def test_verify_ran_passing_tests(scenario):
    assert "Skipping, no tests found" not in scenario["text"], tail(scenario)
    assert re.search(r"\b[1-9][0-9]* passed\b", scenario["text"]), "verify ran no passing test; " + tail(scenario)


def test_no_password_in_output(scenario):
    with open(os.path.join(ROOT, "molecule", scenario["name"], "fleet.yml"), encoding="utf-8") as f:
        passwords = secrets(yaml.safe_load(f))
    if not passwords:
        pytest.skip("the scenario's fleet.yml sets no password")
    leaked = [n for n, line in enumerate(scenario["text"].splitlines(), 1) if any(p in line for p in passwords)]
    assert not leaked, f"a password from fleet.yml appears in {scenario['log']} on lines {leaked[:20]}"
