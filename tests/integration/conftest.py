"""The integration tests import the fleet helpers (tests/fleet) and the stand-ins (tests/standin);
this directory (registry_fixture) is on the path by pytest's rootdir-less test import."""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _helpers in ("fleet", "standin"):
    if os.path.join(TESTS, _helpers) not in sys.path:
        sys.path.insert(0, os.path.join(TESTS, _helpers))
