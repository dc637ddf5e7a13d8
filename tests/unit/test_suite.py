"""The suite runner (scripts/suite.py) and the fleet test groups it relies on (tests/conftest.py)."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


suite = load("seal_suite", "scripts/suite.py")
groups = load("seal_tests_conftest", "tests/conftest.py")


def test_a_module_is_one_group_and_each_molecule_scenario_is_its_own():
    assert groups.fleet_group("tests/integration/test_fleet.py::test_up") == "tests/integration/test_fleet.py"
    assert groups.fleet_group("tests/integration/test_x.py::test_y[a-b]") == "tests/integration/test_x.py"
    assert groups.fleet_group("tests/integration/test_x.py::TestC::test_y") == "tests/integration/test_x.py"
    assert (groups.fleet_group("tests/molecule/test_scenarios.py::test_molecule_test_passes[lifecycle]")
            == "tests/molecule/test_scenarios.py[lifecycle]")
    assert (groups.fleet_group("tests/molecule/test_scenarios.py::test_no_password_in_output[lifecycle]")
            == groups.fleet_group("tests/molecule/test_scenarios.py::test_verify_ran_passing_tests[lifecycle]"))


def test_default_jobs_follow_cores_and_memory(monkeypatch):
    monkeypatch.setattr(suite.os, "cpu_count", lambda: 2)
    jobs = suite.default_jobs()
    with open("/proc/meminfo", encoding="utf-8") as f:
        gib = int(f.readline().split()[1]) >> 20
    assert jobs == max(1, min(4, gib // suite.GIB_PER_WORKER))
    monkeypatch.setattr(suite.os, "cpu_count", lambda: 64)
    assert suite.default_jobs() == max(1, gib // suite.GIB_PER_WORKER)


def test_a_part_reads_pytest_closing_line_and_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "LOGS", str(tmp_path))
    part = suite.Part("fleet")
    with open(part.log, "w", encoding="utf-8") as f:
        f.write("...\n\x1b[31m===== 2 failed, 75 passed, 1 skipped, 1 error in 600.12s (0:10:00) =====\x1b[0m\n")
    assert part.closing() == "2 failed, 75 passed, 1 skipped, 1 error in 600.12s (0:10:00)"
    assert part.counts() == (75, 3)
    lint = suite.Part("lint")
    with open(lint.log, "w", encoding="utf-8") as f:
        f.write("Passed: 0 failure(s), 0 warning(s) in 342 files\n")
    assert lint.closing().startswith("Passed: 0 failure(s)")
    assert lint.counts() == (0, 0)
