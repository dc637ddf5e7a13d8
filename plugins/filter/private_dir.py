# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a controller directory is private (read in Ansible's process, no module call)."""

from __future__ import annotations

import os
import stat


def private_dir(path):
    """True when path (on the controller, ~ expanded) is a directory, not a symlink, owned by this
    user, with mode 0700: what ansible.builtin.file state=directory mode=0700 would leave alone."""
    try:
        st = os.lstat(os.path.expanduser(str(path)))
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700


class FilterModule:
    def filters(self):
        return {"private_dir": private_dir}
