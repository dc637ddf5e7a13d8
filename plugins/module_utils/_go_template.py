# Copyright (c) seal.cluster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small, safe renderer for the Go text/template subset sealer's env templates use (stdlib only:
it runs on hosts).

Sealer renders every ``*.tmpl`` file with Go's text/template, the env as the data and two
functions, ``b64enc`` and ``b64dec`` (sealer pkg/env/env.go RenderTemplate). Supported here:

- text outside ``{{ }}`` unchanged; trim markers ``{{- `` and `` -}}`` (Go: whitespace, a space
  after ``{{-`` and before ``-}}`` is required); comments ``{{/* ... */}}``;
- ``{{ .Key }}`` (a key of the env), ``{{ . }}`` (the current value inside ``range``), string
  literals (``"..."`` with Go's escapes, raw ```...```);
- ``b64enc X`` / ``b64dec X`` and pipelines ``X | b64enc``;
- ``if`` / ``else`` / ``else if`` / ``end`` and ``range`` / ``else`` / ``end`` over a list value
  (sealer v0.8 turns a repeated key into a list).

Values print as Go's fmt does: a string as itself, a list as ``[a b c]``. Nothing else is
supported (variables, other functions, ``define``/``template``, parentheses, numbers...): such an
action is refused with the file and line, never left in the output. A key the env does not hold
is refused where it would print (Go prints ``<no value>`` there; an image's template that needs
a value the Clusterfile does not give is an error here). No code runs: the template is data."""

from __future__ import annotations

import base64
import binascii
import re

TRIM_SPACE = " \t\r\n"
FUNCTIONS = ("b64enc", "b64dec")
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<pipe>\|)|(?P<word>[^\s|"`]+))')
_FIELD = re.compile(r"\.[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


class TemplateError(ValueError):
    """A template refused or not renderable; the message names the file and the line."""


def _go_string(text, err):
    out, i = [], 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in "xuU":
                width = {"x": 2, "u": 4, "U": 8}[nxt]
                digits = text[i + 2:i + 2 + width]
                if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                    out.append(chr(int(digits, 16)))
                    i += 2 + width
                    continue
            raise err("unsupported escape %r in a string literal" % text[i:i + 2])
        out.append(ch)
        i += 1
    return "".join(out)


def _lex(source, name):
    """[(kind, value, line)]: ("text", str) and ("action", str); trim markers applied."""
    items = []
    pos, line = 0, 1
    trim_next = False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip(TRIM_SPACE)
        if start < 0:
            items.append(("text", text, line))
            return items
        inner_start = start + 2
        trim_left = source.startswith("- ", inner_start) or source.startswith("-\t", inner_start) or \
            source.startswith("-\n", inner_start) or source.startswith("-\r", inner_start)
        if trim_left:
            text = text.rstrip(TRIM_SPACE)
            inner_start += 1
        items.append(("text", text, line))
        line += source.count("\n", pos, start)
        if source.startswith("/*", inner_start + 1 if trim_left else inner_start):
            close = source.find("*/", inner_start)
            end = source.find("}}", close + 2) if close >= 0 else -1
            if close < 0 or end < 0 or source[close + 2:end].strip(" -") != "":
                raise TemplateError("%s:%d: unclosed comment" % (name, line))
            trim_right = source[close + 2:end].strip() == "-"
            line += source.count("\n", start, end + 2)
            pos, trim_next = end + 2, trim_right
            continue
        end = _action_end(source, inner_start)
        if end < 0:
            raise TemplateError("%s:%d: unclosed action (no '}}')" % (name, line))
        inner = source[inner_start:end]
        trim_right = inner.endswith(" -") or inner.endswith("\t-") or inner.endswith("\n-") or inner.endswith("\r-")
        if trim_right:
            inner = inner[:-1]
        items.append(("action", inner.strip(), line))
        line += source.count("\n", start, end + 2)
        pos, trim_next = end + 2, trim_right


def _action_end(source, pos):
    """Index of the '}}' that closes the action at pos; quotes are skipped."""
    i = pos
    while i < len(source):
        ch = source[i]
        if ch == '"':
            i += 1
            while i < len(source) and source[i] != '"':
                if source[i] == "\n":
                    return -1
                i += 2 if source[i] == "\\" else 1
        elif ch == "`":
            close = source.find("`", i + 1)
            if close < 0:
                return -1
            i = close
        elif source.startswith("}}", i):
            return i
        i += 1
    return -1


class _Node:
    def __init__(self, kind, line, pipeline=None):
        self.kind, self.line, self.pipeline = kind, line, pipeline
        self.body, self.other = [], []


class Template:
    """A parsed template; render(env) returns the text."""

    def __init__(self, source, name="template"):
        self.name = name
        self.root = self._parse(_lex(source, name))

    def _err(self, line):
        return lambda message: TemplateError("%s:%d: %s" % (self.name, line, message))

    def _pipeline(self, text, line):
        err = self._err(line)
        commands, current, pos = [], [], 0
        text = text.strip()
        if not text:
            raise err("empty action")
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise err("unsupported template construct {{ %s }}" % text)
            pos = m.end()
            if m.group("pipe"):
                if not current:
                    raise err("empty command in pipeline {{ %s }}" % text)
                commands.append(current)
                current = []
            elif m.group("str"):
                current.append(("lit", _go_string(m.group("str"), err)))
            elif m.group("raw"):
                current.append(("lit", m.group("raw")[1:-1]))
            else:
                word = m.group("word")
                if word == ".":
                    current.append(("dot", None))
                elif _FIELD.fullmatch(word):
                    current.append(("field", word[1:]))
                elif word in FUNCTIONS:
                    current.append(("func", word))
                else:
                    raise err("unsupported template construct %r in {{ %s }} (supported: .Key, ., \"string\", "
                              "b64enc, b64dec, |, if, else, range, end)" % (word, text))
        if not current:
            raise err("empty command in pipeline {{ %s }}" % text)
        commands.append(current)
        for i, command in enumerate(commands):
            if command[0][0] == "func":
                args = len(command) - 1 + (1 if i else 0)
                if args != 1 or any(c[0] == "func" for c in command[1:]):
                    raise err("%s takes one argument, in {{ %s }}" % (command[0][1], text))
            elif len(command) != 1:
                raise err("unsupported template construct {{ %s }} (only functions take arguments)" % text)
            elif i:
                raise err("a pipeline stage must be a function, in {{ %s }}" % text)
        return commands

    def _parse(self, items):
        root = _Node("root", 1)
        stack = [root]
        branch = [root.body]
        for kind, value, line in items:
            if kind == "text":
                if value:
                    branch[-1].append(("text", value))
                continue
            word = value.split(None, 1)[0] if value else ""
            rest = value[len(word):].strip()
            err = self._err(line)
            if word in ("if", "range"):
                node = _Node(word, line, self._pipeline(rest, line))
                branch[-1].append(("node", node))
                stack.append(node)
                branch.append(node.body)
            elif word == "else":
                node = stack[-1]
                if node.kind == "root" or branch[-1] is node.other:
                    raise err("unexpected {{ else }}")
                if rest.startswith("if ") and node.kind == "if":
                    nested = _Node("if", line, self._pipeline(rest[3:], line))
                    nested.chained = True
                    node.other.append(("node", nested))
                    branch[-1] = node.other
                    stack.append(nested)
                    branch.append(nested.body)
                    continue
                if rest:
                    raise err("unsupported template construct {{ %s }}" % value)
                branch[-1] = node.other
            elif word == "end":
                if rest or len(stack) == 1:
                    raise err("unexpected {{ %s }}" % value)
                while getattr(stack[-1], "chained", False):
                    stack.pop()
                    branch.pop()
                stack.pop()
                branch.pop()
            elif word in ("with", "define", "template", "block", "break", "continue") or word.startswith("$"):
                raise err("unsupported template construct {{ %s }}" % value)
            else:
                branch[-1].append(("print", self._pipeline(value, line), line))
        if len(stack) > 1:
            raise TemplateError("%s:%d: {{ %s }} has no {{ end }}" % (self.name, stack[-1].line, stack[-1].kind))
        return root

    def render(self, env):
        out = []
        self._run(self.root.body, env, env, out)
        return "".join(out)

    def _value(self, commands, data, dot, line, printing):
        err = self._err(line)
        value = None
        for i, command in enumerate(commands):
            if command[0][0] == "func":
                arg = self._operand(command[1], data, dot, err, True) if len(command) > 1 else value
                if not isinstance(arg, str):
                    raise err("%s needs a string, got %s" % (command[0][1], _go_text(arg)))
                value = _b64enc(arg) if command[0][1] == "b64enc" else _b64dec(arg)
            else:
                value = self._operand(command[0], data, dot, err, printing or i < len(commands) - 1)
        return value

    def _operand(self, operand, data, dot, err, needed):
        kind, arg = operand
        if kind == "lit":
            return arg
        if kind == "dot":
            return dot
        if not isinstance(dot, dict):
            raise err("can't evaluate field %s in type %s" % (arg, "string" if isinstance(dot, str) else "list"))
        if arg not in dot:
            if needed:
                raise err("the env has no key %s (sealer would write '<no value>' here)" % arg)
            return None
        return dot[arg]

    def _run(self, body, data, dot, out):
        for item in body:
            if item[0] == "text":
                out.append(item[1])
            elif item[0] == "print":
                out.append(_go_text(self._value(item[1], data, dot, item[2], True)))
            else:
                node = item[1]
                value = self._value(node.pipeline, data, dot, node.line, False)
                if node.kind == "if":
                    self._run(node.body if _truth(value) else node.other, data, dot, out)
                elif isinstance(value, list):
                    if value:
                        for element in value:
                            self._run(node.body, data, element, out)
                    else:
                        self._run(node.other, data, dot, out)
                elif value is None:
                    self._run(node.other, data, dot, out)
                else:
                    raise self._err(node.line)("range can't iterate over %s" % _go_text(value))


def _truth(value):
    return bool(value)


def _go_text(value):
    if value is None:
        return "<no value>"
    if isinstance(value, list):
        return "[%s]" % " ".join(_go_text(v) for v in value)
    return str(value)


def _b64enc(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _b64dec(text):
    """As sealer's base64decode: a decoding error becomes its message (Go's wording)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "illegal base64 data at input byte %d" % _bad_byte(text)


def _bad_byte(text):
    for i, ch in enumerate(text):
        if not (ch.isascii() and (ch.isalnum() or ch in "+/=")):
            return i
    return len(text) - len(text) % 4


def render(source, env, name="template"):
    """Render a template source with env (str -> str or list of str)."""
    return Template(source, name).render(env)
