# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubefile: sealer's Dockerfile-like recipe for cluster images.

    FROM scratch | <image>
    COPY <src>... <dest>                 (${ARCH} and other build args are substituted)
    ADD --checksum=sha256:<hex> <url|path> <dest>
    LABEL key="value" ...
    ENV KEY=value ...
    ARG NAME[=default]
    CMD  ["json", "array"] or shell form
    APP <name> local://<path>...         an application (k8s YAML, Helm chart dir, shell script)
    CNI / CSI <name> local://<path>...   an APP that is the cluster's CNI / CSI (also a label)
    APPCMDS <app> ["executable", "arg", ...]   the app's launch command (one command line)
    APPENV <app> KEY=value ...           the app's own env (or a JSON array: ["app", "K=v"])
    LAUNCH ["app", ...]                  the apps run after the cluster is up, in order (last line)
    CMDS ["command", ...]                commands run instead of the apps (last line)

APP, CNI, CSI, APPCMDS, APPENV, LAUNCH and CMDS are sealer's (sealerio/sealer
build/kubefile/parser/kubefile.go processAppCmds/processAppEnv, app_handler.go; docs/apps.md). Comments (#), blank lines and `\\` continuations as in
Dockerfiles. Errors name file:line."""

from __future__ import annotations

import json
import re
import shlex

INSTRUCTIONS = ("FROM", "COPY", "ADD", "LABEL", "ENV", "ARG", "CMD", "APP", "CNI", "CSI", "APPCMDS", "APPENV", "LAUNCH", "CMDS")
APP_KEYWORDS = ("APP", "CNI", "CSI")
LAST_ONLY = ("LAUNCH", "CMDS")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class KubefileError(ValueError):
    pass


class Instruction:
    def __init__(self, keyword, args, line, raw):
        self.keyword = keyword
        self.args = args
        self.line = line
        self.raw = raw

    def __repr__(self):
        return "Instruction(%s, %r, line %d)" % (self.keyword, self.args, self.line)


def _logical_lines(text):
    start, parts = None, []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not parts and (not stripped or stripped.startswith("#")):
            continue
        if parts and stripped.startswith("#"):
            continue
        if start is None:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        yield start, " ".join(p for p in parts if p)
        start, parts = None, []
    if parts:
        yield start, " ".join(parts)


def substitute(text, args, where):
    def repl(match):
        name = match.group(1) or match.group(2)
        if name not in args:
            raise KubefileError("%s: unknown variable $%s (declare it with ARG or pass it as a build arg)" % (where, name))
        return args[name]
    return _VAR.sub(repl, text)


def _shell_words(rest, where, keyword):
    try:
        return shlex.split(rest)
    except ValueError as exc:
        raise KubefileError("%s: %s: %s" % (where, keyword, exc)) from exc


def _pairs(rest, where, keyword):
    words = _shell_words(rest, where, keyword)
    pairs = []
    for word in words:
        if "=" not in word:
            raise KubefileError("%s: %s expects key=value, got %r" % (where, keyword, word))
        key, value = word.split("=", 1)
        if not key:
            raise KubefileError("%s: %s has an empty key" % (where, keyword))
        pairs.append((key, value))
    if not pairs:
        raise KubefileError("%s: %s needs at least one key=value" % (where, keyword))
    return pairs


def _json_strings(rest, where, keyword):
    try:
        value = json.loads(rest)
    except ValueError as exc:
        raise KubefileError("%s: %s: invalid JSON array: %s" % (where, keyword, exc)) from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KubefileError("%s: %s: expected a JSON array of strings" % (where, keyword))
    return value


def _command(rest, where, keyword):
    if rest.startswith("["):
        return _json_strings(rest, where, keyword)
    if not rest:
        raise KubefileError("%s: %s needs a command" % (where, keyword))
    return ["/bin/sh", "-c", rest]


def parse(text, filename="Kubefile", build_args=None):
    """Return the list of instructions, variables substituted; raise KubefileError naming file:line."""
    args = dict(build_args or {})
    out = []
    for line, logical in _logical_lines(text):
        where = "%s:%d" % (filename, line)
        keyword, _sep, rest = logical.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword not in INSTRUCTIONS:
            raise KubefileError("%s: unknown instruction %s (expected one of %s)" % (where, keyword, ", ".join(INSTRUCTIONS)))
        if not out and keyword not in ("FROM", "ARG"):
            raise KubefileError("%s: the first instruction must be FROM, not %s" % (where, keyword))
        if keyword == "FROM" and any(i.keyword == "FROM" for i in out):
            raise KubefileError("%s: only one FROM is allowed" % where)
        if keyword == "ARG":
            name, _eq, default = rest.partition("=")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise KubefileError("%s: ARG needs a name, got %r" % (where, rest))
            args.setdefault(name, default)
            out.append(Instruction(keyword, [name, args[name]], line, logical))
            continue
        if any(i.keyword in LAST_ONLY for i in out):
            raise KubefileError("%s: %s after LAUNCH/CMDS: LAUNCH or CMDS must be the last instruction (as sealer's)"
                                % (where, keyword))
        if keyword in ("LABEL", "ENV"):
            value = [(k, substitute(v, args, where)) for k, v in _pairs(rest, where, keyword)]
        elif keyword == "CMD":
            value = _command(rest, where, keyword)
        elif keyword in APP_KEYWORDS:
            value = _app(substitute(rest, args, where), where, keyword, out)
        elif keyword == "APPCMDS":
            value = _app_cmds(rest, where)
        elif keyword == "APPENV":
            value = _app_env(rest, where)
        elif keyword == "LAUNCH":
            value = _launch(rest, where, out)
        elif keyword == "CMDS":
            value = _cmds(rest, where)
        else:
            value = _copy_args(keyword, substitute(rest, args, where), where)
        out.append(Instruction(keyword, value, line, logical))
    if not any(i.keyword == "FROM" for i in out):
        raise KubefileError("%s: no FROM instruction" % filename)
    return out


def _words(rest, where, keyword):
    """sealer's parseMaybeJSONToList: a JSON array of strings, or whitespace-separated words."""
    if rest.startswith("["):
        return [v.strip() for v in _json_strings(rest, where, keyword)]
    return rest.split()


def _app(rest, where, keyword, out):
    words = _words(rest, where, keyword)
    if len(words) < 2:
        raise KubefileError("%s: %s needs a name and at least one local://<path> source" % (where, keyword))
    name, sources = words[0], words[1:]
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", name):
        raise KubefileError("%s: %s: %r is not an app name (letters, digits, '.', '_', '-')" % (where, keyword, name))
    if any(i.keyword in APP_KEYWORDS and i.args["name"] == name for i in out):
        raise KubefileError("%s: %s: app %s is defined twice" % (where, keyword, name))
    paths = []
    for src in sources:
        if src.startswith(("http://", "https://")):
            raise KubefileError("%s: %s %s: remote sources are not fetched at build (offline, unverified); "
                                "ADD it with --checksum=sha256:... and name the local copy" % (where, keyword, src))
        if not src.startswith("local://") or not src[len("local://"):]:
            raise KubefileError("%s: %s: source %r must be local://<path in the build context>" % (where, keyword, src))
        paths.append(src[len("local://"):])
    return {"name": name, "sources": paths}


def _app_name(name, where, keyword):
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", name or ""):
        raise KubefileError("%s: %s needs an app name first, got %r" % (where, keyword, name))
    return name


def _app_cmds(rest, where):
    """APPCMDS <app> [json array]: sealer's processAppCmds takes the first word as the app and the
    rest as a JSON array of strings; at launch they are joined with spaces into one command line
    run in the app's directory (pkg/define/application/v1/application.go GetAppLaunchCmd)."""
    name, _sep, text = rest.partition(" ")
    name, text = _app_name(name, where, "APPCMDS"), text.strip()
    if not text.startswith("["):
        raise KubefileError('%s: APPCMDS value should be format: APPCMDS appName ["executable","param1","param2","..."]' % where)
    cmds = _json_strings(text, where, "APPCMDS")
    if not cmds or not "".join(cmds).strip():
        raise KubefileError("%s: APPCMDS %s needs a command" % (where, name))
    return {"name": name, "cmds": cmds}


def _app_env(rest, where):
    """APPENV <app> KEY=value ...: sealer's processAppEnv (parseMaybeJSONToList: a JSON array, the
    app first, or whitespace-separated words). sealer skips a word without '='; it is refused here."""
    words = _words(rest, where, "APPENV")
    if not words:
        raise KubefileError("%s: APPENV needs an app name and KEY=value pairs" % where)
    name, env = _app_name(words[0], where, "APPENV"), {}
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise KubefileError("%s: APPENV %s: %r is not KEY=value (KEY: [A-Za-z_][A-Za-z0-9_]*)" % (where, name, word))
        if "\0" in value:
            raise KubefileError("%s: APPENV %s: the value of %s holds a NUL" % (where, name, key))
        env[key] = value
    if not env:
        raise KubefileError("%s: APPENV %s needs at least one KEY=value" % (where, name))
    return {"name": name, "env": env}


def _launch(rest, where, out):
    if any(i.keyword == "CMD" for i in out):
        raise KubefileError("%s: CMD and LAUNCH are mutually exclusive (as in sealer)" % where)
    names = _words(rest, where, "LAUNCH")
    if not names:
        raise KubefileError("%s: LAUNCH needs at least one app name" % where)
    return names


def _cmds(rest, where):
    if not rest.startswith("["):
        raise KubefileError("%s: CMDS takes a JSON array of commands, e.g. CMDS [\"kubectl apply -f app.yaml\"]" % where)
    cmds = _words(rest, where, "CMDS")
    if not cmds or not all(cmds):
        raise KubefileError("%s: CMDS needs non-empty commands" % where)
    return cmds


def _copy_args(keyword, rest, where):
    words = _shell_words(rest, where, keyword)
    if keyword == "FROM":
        if len(words) != 1:
            raise KubefileError("%s: FROM takes one image (or scratch), got %r" % (where, rest))
        return words
    options = {}
    while words and words[0].startswith("--"):
        key, _eq, value = words.pop(0)[2:].partition("=")
        options[key] = value
    if len(words) < 2:
        raise KubefileError("%s: %s needs a source and a destination" % (where, keyword))
    if keyword == "ADD":
        checksum = options.pop("checksum", "")
        if not re.match(r"^sha256:[a-f0-9]{64}$", checksum):
            raise KubefileError("%s: ADD needs --checksum=sha256:<64 hex> so that the download can be verified" % where)
        if len(words) != 2:
            raise KubefileError("%s: ADD takes one source and a destination" % where)
        options["checksum"] = checksum
    if options and keyword == "COPY":
        raise KubefileError("%s: COPY does not take options (%s)" % (where, ", ".join(sorted(options))))
    return {"sources": words[:-1], "dest": words[-1], "options": options}
