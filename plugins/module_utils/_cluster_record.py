# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster's record (``<data_root>/<cluster>/applied.json`` on every master): what run.yml
applied, read back by apply.yml and delete.yml. Its schema, its text and its checks live here
only; the modules cluster_record (writes), cluster_record_info and k3s_cluster_info (read) use it.

A record on a node is not trusted: it is read with a size limit, from a regular file only, and
every field is type-checked; anything else is an error that names the file."""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.seal.cluster.plugins.module_utils._errors import ModuleFailure
from ansible_collections.seal.cluster.plugins.module_utils._names import CONTROL

MODE = 0o600
# A record of thousands of hosts is a few hundred KiB; more is not a record.
MAX_BYTES = 1 << 20

# field -> (JSON type, default). Hosts are inventory names; addresses map a host to its ansible_host.
TEXT_FIELDS = ("cluster", "image", "digest", "version")
SCHEMA = {
    "cluster": "",
    "image": "",
    "digest": "",
    "version": "",
    "masters": [],
    "nodes": [],
    "addresses": {},
    "clusterfile": None,
    "apps": [],
}
# one launched app (or an image's CMDS, named CMDS): which image it came from and what it was,
# and the objects it applied (kube and helm apps), which a later run deletes when the app is dropped
APP_FIELDS = ("name", "type", "image", "digest", "content")
OBJECT_FIELDS = ("apiVersion", "kind", "namespace", "name")


class RecordError(ModuleFailure):
    """A record that cannot be read or is not a record; the message names the file."""


def _text(value, where, nullable=False):
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise RecordError("%s must be a string, not %s" % (where, type(value).__name__))
    if CONTROL.search(value):
        raise RecordError("%s %r has a control character" % (where, value))
    return value


def _host(value, where):
    if not _text(value, where):
        raise RecordError("%s is empty" % where)
    return value


def checked(data, source="record"):
    """The record with every field of SCHEMA, type-checked (unknown fields dropped). `source`
    prefixes every message (the file, or "record" for module arguments)."""
    if not isinstance(data, dict):
        raise RecordError("%s: a record is a JSON object, not %s" % (source, type(data).__name__))

    def field(key):
        value = data.get(key)
        return SCHEMA[key] if value is None else value

    out = {}
    for key in TEXT_FIELDS:
        out[key] = _text(field(key), "%s: %s" % (source, key))
    for key in ("masters", "nodes"):
        hosts = field(key)
        if not isinstance(hosts, list):
            raise RecordError("%s: %s must be a list, not %s" % (source, key, type(hosts).__name__))
        out[key] = [_host(h, "%s: %s[%d]" % (source, key, i)) for i, h in enumerate(hosts)]
    addresses = field("addresses")
    if not isinstance(addresses, dict):
        raise RecordError("%s: addresses must be an object, not %s" % (source, type(addresses).__name__))
    out["addresses"] = {_host(h, "%s: addresses key" % source): _text(a, "%s: addresses[%s]" % (source, h), nullable=True)
                        for h, a in addresses.items()}
    out["clusterfile"] = _text(data.get("clusterfile"), "%s: clusterfile" % source, nullable=True)
    out["apps"] = checked_apps(field("apps"), source)
    return out


def checked_apps(apps, source):
    if not isinstance(apps, list):
        raise RecordError("%s: apps must be a list, not %s" % (source, type(apps).__name__))
    out = []
    for i, app in enumerate(apps):
        if not isinstance(app, dict):
            raise RecordError("%s: apps[%d] must be an object" % (source, i))
        entry = {key: _text(app.get(key, ""), "%s: apps[%d].%s" % (source, i, key)) for key in APP_FIELDS}
        objects = app.get("objects") or []
        if not isinstance(objects, list):
            raise RecordError("%s: apps[%d].objects must be a list, not %s" % (source, i, type(objects).__name__))
        entry["objects"] = []
        for j, obj in enumerate(objects):
            where = "%s: apps[%d].objects[%d]" % (source, i, j)
            if not isinstance(obj, dict):
                raise RecordError("%s must be an object" % where)
            ref = {key: _text(obj.get(key, ""), "%s.%s" % (where, key)) for key in OBJECT_FIELDS}
            if not ref["kind"] or not ref["name"] or not ref["apiVersion"]:
                raise RecordError("%s needs apiVersion, kind and name" % where)
            entry["objects"].append(ref)
        out.append(entry)
    return out


def options():
    """The record's fields as a module's argument spec (state=present requires cluster and masters)."""
    spec = {key: dict(type="str", default="") for key in TEXT_FIELDS}
    spec.update(cluster=dict(type="str"), masters=dict(type="list", elements="str"),
                nodes=dict(type="list", elements="str", default=[]), addresses=dict(type="dict", default={}),
                clusterfile=dict(type="str"), apps=dict(type="list", elements="dict"))
    return spec


def render(record):
    """The record's file content (the form ansible's to_nice_json gave it, so records written
    before this module read back unchanged)."""
    return json.dumps(record, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"


def read_text(path):
    """The file's text, or None when there is none; refuses what is not a regular file or is
    larger than MAX_BYTES, and never blocks on a FIFO or follows a final symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordError("%s: cannot be read: %s" % (path, exc.strerror or exc)) from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RecordError("%s: not a regular file" % path)
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise RecordError("%s: larger than %d bytes, not a record" % (path, MAX_BYTES))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("%s: not UTF-8 text: %s" % (path, exc)) from exc


def parse(text, path):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecordError("%s: not JSON: %s" % (path, exc)) from exc
    return checked(data, path)


def read(path):
    """The checked record at path, or {} when there is none."""
    text = read_text(path) if path else None
    return {} if text is None else parse(text, path)


def without_hosts(record, hosts):
    """The record with hosts dropped from masters, nodes and addresses."""
    gone = set(hosts)
    return dict(record, masters=[h for h in record["masters"] if h not in gone],
                nodes=[h for h in record["nodes"] if h not in gone],
                addresses={h: a for h, a in record["addresses"].items() if h not in gone})
