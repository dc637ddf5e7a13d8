# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small YAML writer for the config files k3s reads (config.yaml, registries.yaml).

Modules run on hosts that may lack PyYAML. Strings are always double-quoted (JSON escapes are
valid YAML), so that values such as "0644", "on" or "1.20" keep their type in k3s's YAML 1.1
parser; keys keep the order they were given in, so equal input gives byte-equal files.
"""

from __future__ import annotations

import json


def _scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(str(value), ensure_ascii=False)


def _lines(value, indent):
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out = []
        for key, item in value.items():
            head = "%s%s:" % (pad, _scalar(key) if _needs_quotes(key) else key)
            if isinstance(item, (dict, list)) and item:
                out.append(head)
                out.extend(_lines(item, indent + 1))
            else:
                out.append("%s %s" % (head, _inline(item)))
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = _lines(item, indent + 1)
                out.append("%s- %s" % (pad, nested[0].lstrip()))
                out.extend(nested[1:])
            else:
                out.append("%s- %s" % (pad, _inline(item)))
        return out
    return [pad + _scalar(value)]


def _inline(value):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def _needs_quotes(key):
    text = str(key)
    safe = all(c.isalnum() or c in "-_.+/" for c in text)
    return not (text and safe and not text[0].isdigit() and text.lower() not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null"))


def dump(value):
    """Serialise dicts, lists and scalars to block-style YAML text ending in a newline."""
    return "\n".join(_lines(value, 0)) + "\n"
