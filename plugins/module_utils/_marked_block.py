# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A block of lines between BEGIN/END marker comments in a text file (e.g. /etc/hosts),
owned by one cluster, so that reset removes exactly what install added."""

from __future__ import annotations


def markers(owner):
    return "# BEGIN seal.cluster %s" % owner, "# END seal.cluster %s" % owner


def replace_block(text, owner, lines):
    """Return text with owner's block set to lines; lines=None (or empty) removes the block.
    A new block goes at the end; an existing one is replaced where it stands."""
    begin, end = markers(owner)
    kept, block_at, inside = [], None, False
    for line in (text or "").splitlines():
        if line.strip() == begin:
            inside, block_at = True, len(kept)
            continue
        if inside:
            if line.strip() == end:
                inside = False
            continue
        kept.append(line)
    if inside:
        raise ValueError("marker %r has no matching %r" % (begin, end))
    if lines:
        block = [begin] + list(lines) + [end]
        at = len(kept) if block_at is None else block_at
        kept[at:at] = block
    return "\n".join(kept) + "\n" if kept else ""


def hosts_lines(entries):
    """Render [{'ip': .., 'hostnames': [..]}] as /etc/hosts lines, in the given order."""
    return ["%s %s" % (e["ip"], " ".join(e["hostnames"])) for e in entries]
