"""Run a module's main() in this process with its manager pointed at a temporary host root and
at a recording runner instead of the host's programs (systemctl, ip, iptables, k3s)."""
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class FakeRunner:
    """The host's programs, as a table: answers[(name, *args)] -> (rc, out, err) or a callable
    taking the argv; every call is recorded in `calls` (argv lists, program by name)."""

    def __init__(self, answers=None, programs=("systemctl", "journalctl", "ip", "umount", "iptables-save",
                                               "iptables-restore", "ip6tables-save", "ip6tables-restore")):
        self.answers = dict(answers or {})
        self.programs = set(programs)
        self.calls = []
        self.inputs = []

    def which(self, name):
        return "/fake/bin/" + name if name in self.programs else None

    def run(self, argv, data=None, binary_data=False):
        argv = [a.rsplit("/", 1)[-1] if a.startswith("/fake/bin/") else a for a in argv]
        self.calls.append(argv)
        self.inputs.append(data)
        for key in (tuple(argv), argv[0], "*"):
            if key in self.answers:
                answer = self.answers[key]
                return answer(argv) if callable(answer) else answer
        return 0, "", ""

    run_command = run

    def cmd(self, name, *args, data=None, binary_data=False):
        if name not in self.programs:
            return 127, "", ""
        return self.run([name] + list(args), data=data, binary_data=binary_data)

    def called(self, *prefix):
        return [c for c in self.calls if tuple(c[:len(prefix)]) == prefix]


class FakeUnits:
    """systemctl as a module sees it: is-active and is-enabled answer from the state that start,
    restart, enable and disable --now set; on_start(argv) runs at each start and may return a
    failure (rc, out, err)."""

    def __init__(self, on_start=None):
        self.active, self.enabled = "inactive", "disabled"
        self.on_start = on_start

    def systemctl(self, argv):
        verb = argv[1]
        if verb == "is-active":
            return (0 if self.active == "active" else 3), self.active + "\n", ""
        if verb == "is-enabled":
            return (0 if self.enabled == "enabled" else 1), self.enabled + "\n", ""
        if verb in ("start", "restart"):
            failure = self.on_start(argv) if self.on_start else None
            if failure:
                return failure
            self.active = "active"
        if verb == "enable":
            self.enabled = "enabled"
        if argv[1:3] == ["disable", "--now"]:
            self.active, self.enabled = "inactive", "disabled"
        return 0, "", ""


@pytest.fixture
def fake_units():
    """The FakeUnits class."""
    return FakeUnits


@pytest.fixture
def run_main(monkeypatch, capsys):
    """run_main(module, args, check=False, diff=False) -> the result main() printed."""
    def run(module, args, check=False, diff=False):
        args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
        capsys.readouterr()
        with pytest.raises(SystemExit):
            module.main()
        return json.loads(capsys.readouterr().out)
    return run


@pytest.fixture
def fake_runner():
    """The FakeRunner class (tests build one per run)."""
    return FakeRunner
