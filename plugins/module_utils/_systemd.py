# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host commands and systemd services: the one place modules run systemctl and journalctl.

`Runner` is the seam between a module and the host's programs: it finds a program by name and
runs an argv list (never a shell string). Unit tests give a manager a recording runner instead."""

from __future__ import annotations

UNIT_DIR = "/etc/systemd/system"
NOT_FOUND = 127


class SystemdError(Exception):
    """A systemctl call that had to succeed failed; the message names the call."""


class Runner:
    """Runs host programs through the module (AnsibleModule.run_command / get_bin_path)."""

    def __init__(self, module):
        self.module = module

    def which(self, name):
        return self.module.get_bin_path(name)

    def run(self, argv, data=None, binary_data=False):
        return self.module.run_command(list(argv), data=data, binary_data=binary_data)

    run_command = run

    def cmd(self, name, *args, data=None, binary_data=False):
        """Run a program by name; (127, "", "") when the host has no such program."""
        exe = self.which(name)
        if not exe:
            return NOT_FOUND, "", ""
        return self.run([exe] + list(args), data=data, binary_data=binary_data)


class Systemd:
    def __init__(self, runner):
        self.runner = runner

    def systemctl(self, *args, check=True):
        """(rc, stripped stdout); raises SystemdError when check and rc != 0."""
        rc, out, err = self.runner.cmd("systemctl", *args)
        if check and rc != 0:
            detail = (err or out).strip() or ("systemctl not found" if rc == NOT_FOUND else "rc %d" % rc)
            raise SystemdError("systemctl %s failed: %s" % (" ".join(args), detail))
        return rc, out.strip()

    def state(self, unit):
        """(is-active, is-enabled) words, e.g. ("active", "enabled") or ("inactive", "disabled")."""
        _rc, active = self.systemctl("is-active", unit, check=False)
        _rc, enabled = self.systemctl("is-enabled", unit, check=False)
        return active, enabled

    def invocation(self, unit):
        """The unit's InvocationID: a new one at every start ("" when systemd does not say)."""
        return self.systemctl("show", "-p", "InvocationID", "--value", unit, check=False)[1]

    def restarts(self, unit):
        """How often systemd restarted the unit (Restart=) since it was last started by hand."""
        _rc, out = self.systemctl("show", "-p", "NRestarts", "--value", unit, check=False)
        return int(out) if out.isdigit() else 0

    def journal(self, unit, lines=30, redact=()):
        """The unit's last journal lines, each secret in redact replaced by ********."""
        rc, out, _err = self.runner.cmd("journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat")
        if rc == NOT_FOUND:
            return []
        result = []
        for line in out.splitlines():
            for secret in redact:
                if secret:
                    line = line.replace(secret, "********")
            result.append(line)
        return result
