"""TOML files whose every key and value knows where it was written, and typed reads of them.

The tool reads three kinds of TOML file: wrapper contracts
(:mod:`proofs.contracts`), ``equiv`` specs (:mod:`proofs.equiv_spec`) and a
kernel tree's ``tdxproof.toml`` (:func:`grammar.frontend.tree_options`).
All three read them here, so that every mistake in one is a
:class:`SourceError` at the line and column of the key or value it is about.

Decisions:

* **The values are tomllib's.**  :func:`read_toml` hands the text to
  ``tomllib``: the data a :class:`Document` holds is exactly what
  ``tomllib.loads`` returns, and a document it rejects is rejected (at the
  line and column tomllib names, see below).  Decoding TOML ourselves --
  with a lark grammar, say -- would be a second definition of strings,
  numbers, dates and the table rules (which key may be defined where) that
  could drift from the first; it would also put lark's import (~35 ms,
  against ~4 ms for tomllib) and a parser build in front of every
  ``tdxproof check``, which reads ``tdxproof.toml`` before its first
  preprocessor run starts.
* **Positions come from a scanner of our own** (:func:`_scan`), run on text
  tomllib has accepted.  It knows only TOML's lexical structure -- strings of
  the four kinds, comments, brackets, keys, ``=``, ``,`` -- and walks the
  statements as tomllib does, recording for each key path (table keys and
  array indices, ``("wrapper", 2, "leaf")``) where its key was written and
  where its value starts and ends.  A scalar's text is not decoded: it runs
  to the next ``,``, ``]``, ``}``, ``#`` or end of line.  Arrays of tables
  are counted as tomllib appends them, so ``[[wrapper]]`` number three is
  ``("wrapper", 2)``; a header's intermediate tables are placed at their first
  mention.  A path the scanner did not place (a bug: the fuzz test holds it
  to every path of every document) falls back to its nearest placed
  ancestor, so an error still lands near its cause rather than nowhere.
* **Rejected documents** are located from tomllib's own message
  (``(at line L, column C)`` or ``(at end of document)``).  tomllib
  reports a key defined twice (and the other table-rule violations) after
  the offending statement; the scanner, run on the text tomllib had read by
  then, moves the error to that statement's key and, for a plain duplicate,
  names the key and where it was first defined.
* **Unreadable files**: a directory, a FIFO or device (which could block),
  a missing or unreadable file is an error naming the file (it has no
  line); text that is not UTF-8 is an error at the line and column of the
  first bad byte.
* **Typed reads** (:class:`Value`, :class:`Table`): "this table must have
  keys X, may have Y", "a list of strings", "one of these names", "an
  integer in 0..2**64-1" (a boolean is not an integer).  Each says what was
  expected, what was found, and for an unknown key or name the allowed ones
  (with the closest as a suggestion).  A wrong value is reported at the
  value, an unknown key at the key, a missing key at its table.  The data
  need not come from a file: any :class:`Source` (such as the ``equiv``
  short form, whose errors name command-line options) can stand behind it.
"""
from __future__ import annotations

import datetime
import difflib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, Sequence

from grammar.compat import tomllib

from grammar.source import Origin, SourceError

KeyPath = tuple["str | int", ...]
"""Where a value sits in a document: table keys and array indices."""

U64_MAX = 2 ** 64 - 1

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SCALAR_END = frozenset(",]}#\n")


def key_text(path: Sequence[str | int]) -> str:
    """A key path as a user would write it: dotted keys, ``[i]`` for array items.

    >>> key_text(("wrapper", 2, "leaf"))
    'wrapper[2].leaf'
    >>> key_text(("relation", "equal", 0))
    'relation.equal[0]'
    >>> key_text(("a b", "c"))
    '"a b".c'
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if part and set(part) <= _BARE else '"' + part.replace("\\", "\\\\").replace('"', '\\"') + '"'
            text += ("." if text else "") + name
    return text


def parse_key_text(text: str) -> KeyPath:
    """The key path :func:`key_text` wrote (inverse of it).

    >>> parse_key_text('relation.equal[0]')
    ('relation', 'equal', 0)
    >>> parse_key_text('"a b".c')
    ('a b', 'c')
    """
    path: list[str | int] = []
    for match in re.finditer(r'\[(\d+)\]|"((?:[^"\\]|\\.)*)"|([^.\[\]"]+)', text):
        index, quoted, bare = match.groups()
        if index is not None:
            path.append(int(index))
        elif quoted is not None:
            path.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            path.append(bare)
    return tuple(path)


# --- the position index -------------------------------------------------------------------

@dataclass
class _Index:
    """What :func:`_scan` records, as offsets into the (CRLF-normalised) text."""

    keys: dict[KeyPath, int] = field(default_factory=dict)
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    statements: dict[int, tuple[int, KeyPath]] = field(default_factory=dict)
    """End offset of a key/value pair (after its value) or a header (after its
    key) -> where it starts and the key path it defines."""
    unterminated: int | None = None
    """Where the first string that does not end (before its line does, or the
    text) starts."""
    unclosed: tuple[int, str] | None = None
    """Where the first array or inline table without its closing bracket
    starts, and which of the two it is."""


class _Scanner:
    """TOML's statements, walked as tomllib walks them, recording positions.

    Every step either advances or stops at the end of the text, so the
    scanner ends on any input; it is meant for text tomllib accepted (or
    the prefix of a rejected text that tomllib had read without a syntax
    error), where it never meets anything unexpected.
    """

    def __init__(self, src: str):
        self.src = src
        self.index = _Index()

    def char(self, pos: int) -> str:
        return self.src[pos] if pos < len(self.src) else ""

    def skip(self, pos: int, chars: str = " \t") -> int:
        while pos < len(self.src) and self.src[pos] in chars:
            pos += 1
        return pos

    def skip_blank(self, pos: int) -> int:
        """Whitespace, newlines and comments (inside an array)."""
        while True:
            pos = self.skip(pos, " \t\n")
            if self.char(pos) != "#":
                return pos
            pos = self.comment(pos)

    def comment(self, pos: int) -> int:
        end = self.src.find("\n", pos)
        return len(self.src) if end < 0 else end

    def string(self, pos: int) -> int:
        """The end of the string starting at ``pos`` (one of the four kinds)."""
        quote = self.src[pos]
        if self.src.startswith(quote * 3, pos):
            start, pos = pos, pos + 3
            while pos < len(self.src):
                if quote == '"' and self.src[pos] == "\\":
                    pos += 2
                elif self.src.startswith(quote * 3, pos):
                    pos += 3
                    # Up to two more quotes belong to the content.
                    for _ in range(2):
                        if self.char(pos) == quote:
                            pos += 1
                    return pos
                else:
                    pos += 1
            return self.open_string(start, len(self.src))
        start, pos = pos, pos + 1
        while pos < len(self.src) and self.src[pos] not in (quote, "\n"):
            pos += 2 if quote == '"' and self.src[pos] == "\\" else 1
        if self.char(pos) != quote:
            return self.open_string(start, pos)
        return pos + 1

    def open_string(self, start: int, end: int) -> int:
        if self.index.unterminated is None:
            self.index.unterminated = start
        return end

    def key(self, pos: int) -> tuple[int, list[tuple[str, int]]]:
        """A dotted key at ``pos``: the offset after it (and the blanks after
        it) and its parts with their offsets."""
        parts = []
        while True:
            start = pos
            if self.char(pos) in ("'", '"'):
                pos = self.string(pos)
                name = self.quoted_key(self.src[start:pos])
            else:
                pos = self.skip_to_end_of_bare(pos)
                name = self.src[start:pos]
            if pos == start:
                return pos, parts
            parts.append((name, start))
            pos = self.skip(pos)
            if self.char(pos) != ".":
                return pos, parts
            pos = self.skip(pos + 1)

    @staticmethod
    def quoted_key(raw: str) -> str:
        """A quoted key part's name, decoded as tomllib decodes it."""
        try:
            return tomllib.loads(f"k = {raw}")["k"]
        except tomllib.TOMLDecodeError:
            return raw          # only in text tomllib rejected

    def skip_to_end_of_bare(self, pos: int) -> int:
        while pos < len(self.src) and self.src[pos] in _BARE:
            pos += 1
        return pos

    def place_key(self, path: KeyPath, offset: int, value_start: int | None = None) -> None:
        """Where ``path``'s key was first written (and, for a table made by
        mentioning it, its value: the same place)."""
        self.index.keys.setdefault(path, offset)
        if value_start is None:
            self.index.values.setdefault(path, (offset, offset))
        else:
            self.index.values[path] = (value_start, value_start)

    def document(self) -> None:
        pos, header, arrays = 0, (), {}
        while pos < len(self.src):
            pos = self.skip(pos)
            char = self.char(pos)
            if char == "\n":
                pos += 1
            elif char == "#":
                pos = self.comment(pos)
            elif char == "[":
                pos, header = self.header(pos, arrays)
            elif char:
                pos = self.key_value(pos, header)
                if pos < len(self.src) and self.src[pos] not in " \t\n#":
                    return
            else:
                return

    def header(self, start: int, arrays: dict[KeyPath, int]) -> tuple[int, KeyPath]:
        """``[table]`` or ``[[array]]`` at ``start``: the offset after it and
        the path of the table it opens."""
        array = self.src.startswith("[[", start)
        end, parts = self.key(self.skip(start + (2 if array else 1)))
        path: KeyPath = ()
        for number, (name, offset) in enumerate(parts):
            path += (name,)
            last = number == len(parts) - 1
            if last and array:
                count = arrays.get(path, 0)
                arrays[path] = count + 1
                self.place_key(path, offset, None if count else start)
                path += (count,)
                self.place_key(path, start, start)
            elif last:
                self.place_key(path, offset, start)
            else:
                self.place_key(path, offset)
                if path in arrays:
                    path += (arrays[path] - 1,)
        if parts:
            self.index.statements[end] = (start, path)
        closing = "]]" if array else "]"
        if self.src.startswith(closing, end):
            end += len(closing)
        return end, path

    def key_value(self, start: int, table: KeyPath) -> int:
        """``key = value`` at ``start`` in ``table``: the offset after the value."""
        pos, parts = self.key(start)
        if not parts or self.char(pos) != "=":
            return max(pos, start + 1)
        path = table
        for name, offset in parts[:-1]:
            path += (name,)
            self.place_key(path, offset)
        path += (parts[-1][0],)
        self.index.keys.setdefault(path, parts[-1][1])
        end = self.value(self.skip(pos + 1), path)
        self.index.statements.setdefault(end, (start, path))    # the innermost
        return end

    def value(self, start: int, path: KeyPath) -> int:
        """The value at ``start`` (at ``path``): the offset after it."""
        char = self.char(start)
        if char in ("'", '"'):
            end = self.string(start)
        elif char == "[":
            end = self.array(start, path)
        elif char == "{":
            end = self.inline_table(start, path)
        else:
            end = start
            while end < len(self.src) and self.src[end] not in _SCALAR_END:
                end += 1
            end = start + len(self.src[start:end].rstrip(" \t"))
        self.index.values[path] = (start, end)
        return end

    def array(self, start: int, path: KeyPath) -> int:
        pos, number = self.skip_blank(start + 1), 0
        while pos < len(self.src) and self.src[pos] != "]":
            after = self.value(pos, path + (number,))
            self.index.keys.setdefault(path + (number,), pos)
            number += 1
            pos = self.skip_blank(after)
            if self.char(pos) != ",":
                break
            pos = self.skip_blank(pos + 1)
        return pos + 1 if self.char(pos) == "]" else self.open_bracket(start, pos, "array")

    def inline_table(self, start: int, path: KeyPath) -> int:
        pos = self.skip(start + 1)
        while pos < len(self.src) and self.src[pos] != "}":
            after = self.key_value(pos, path)
            if after <= pos:
                break
            pos = self.skip(after)
            if self.char(pos) != ",":
                break
            pos = self.skip(pos + 1)
        return pos + 1 if self.char(pos) == "}" else self.open_bracket(start, pos, "inline table")

    def open_bracket(self, start: int, end: int, kind: str) -> int:
        if self.index.unclosed is None:
            self.index.unclosed = (start, kind)
        return end


def _scan(src: str) -> _Index:
    scanner = _Scanner(src)
    scanner.document()
    return scanner.index


# --- documents --------------------------------------------------------------------------

class Source(Protocol):
    """What stands behind a :class:`Value`: it turns a message about a key
    path into the error to raise (``at`` is ``"key"`` or ``"value"``)."""

    def error(self, where: KeyPath, message: str, at: str = "value") -> SourceError: ...


def _origin(file: str, text: str, offset: int) -> Origin:
    line = text.count("\n", 0, offset) + 1
    return Origin(file, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


@dataclass(frozen=True)
class Document:
    """A TOML file read: its name, its text (CRLF as LF, as tomllib reads
    it), tomllib's data and where each key path was written."""

    file: str
    text: str
    data: dict
    keys: Mapping[KeyPath, int]
    values: Mapping[KeyPath, tuple[int, int]]

    def origin(self, where: KeyPath, at: str = "value") -> Origin:
        """Where the key (``at="key"``) or the value of ``where`` was written;
        for a path not placed, its nearest placed ancestor; the document's
        start for the document itself."""
        table = self.keys if at == "key" else self.values
        for length in range(len(where), 0, -1):
            found = table.get(tuple(where[:length]))
            if found is not None:
                return _origin(self.file, self.text, found if at == "key" else found[0])
        return Origin(self.file, 1, 1)

    def error(self, where: KeyPath, message: str, at: str = "value") -> SourceError:
        return SourceError(message, self.origin(where, at))

    def root(self) -> "Table":
        return Table(self.data, (), self)


def parse_toml(text: str, file: str) -> Document:
    """``text`` (the contents of ``file``) as a :class:`Document`; a located
    :class:`SourceError` when it is not valid TOML.

    >>> parse_toml('a = 1\\n[t]\\nb = "x"\\n', "c.toml").root()["t"]["b"].error("bad").render()
    'c.toml:3:5: error: bad'
    >>> def show(text):
    ...     try:
    ...         parse_toml(text, "c.toml")
    ...     except SourceError as error:
    ...         print(error.render())
    >>> show('a = 1\\nb = [1,\\n')
    c.toml:2:5: error: not valid TOML: unclosed array (it starts here)
    >>> show('[t]\\na = 1\\n\\n[t]\\n')
    c.toml:4:1: error: not valid TOML: 't' is defined twice (first at line 1)
    >>> show('a = 1\\nb = { x = 1, x = 2 }\\n')
    c.toml:2:14: error: not valid TOML: 'b.x' is defined twice (first at line 2)
    """
    src = text.replace("\r\n", "\n")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _rejected(src, file, error) from None
    index = _scan(src)
    return Document(file, src, data, index.keys, index.values)


_AT = re.compile(r" \(at (?:line (\d+), column (\d+)|end of document)\)$")
_OPEN_STRING = ("Unterminated string", "Expected \"'", "Illegal character '\\n'",
                "Found invalid character '\\n'")
_OPEN_BRACKET = ("Unclosed array", "Unclosed inline table")
_TABLE_RULES = ("Cannot overwrite a value", "Cannot declare", "Cannot redefine namespace",
                "Cannot mutate immutable namespace", "Duplicate inline table key")


def _rejected(src: str, file: str, error: tomllib.TOMLDecodeError) -> SourceError:
    """tomllib's complaint about ``src`` as a located error."""
    message = str(error)
    where = _AT.search(message)
    if where is None:
        return SourceError(f"not valid TOML: {message}", Origin(file, 1, 1))
    message = message[:where.start()]
    if where.group(1):
        line, column = int(where.group(1)), int(where.group(2))
        offset = (0 if line == 1 else _nth_line_start(src, line)) + column - 1
    else:
        offset = len(src)
    at_end = where.group(1) is None
    if at_end or message.startswith(_OPEN_STRING + _OPEN_BRACKET):
        # A string or a bracket left open is the cause of the complaint
        # about what follows it (or about the end of the text).
        index = _scan(src)
        open_string = index.unterminated if at_end or message.startswith(_OPEN_STRING) else None
        if open_string is not None and open_string <= offset:
            return SourceError("not valid TOML: unterminated string (it starts here)", _origin(file, src, open_string))
        if index.unclosed is not None and (at_end or message.startswith(_OPEN_BRACKET)) \
                and index.unclosed[0] <= offset:
            return SourceError(f"not valid TOML: unclosed {index.unclosed[1]} (it starts here)",
                               _origin(file, src, index.unclosed[0]))
    if message.startswith(_TABLE_RULES):
        # tomllib names the place after the statement; point at its key.
        index = _scan(src[:offset])
        found = index.statements.get(offset)
        if found is not None:
            start, path = found
            if isinstance(path[-1], int):
                path = path[:-1]            # an array of tables names the key it appends to
            first = index.keys.get(path)
            if first is not None and first < start:
                message = f"'{key_text(path)}' is defined twice (first at line {_origin(file, src, first).line})"
            return SourceError(f"not valid TOML: {message}", _origin(file, src, start))
    return SourceError(f"not valid TOML: {message}", _origin(file, src, min(offset, len(src))))


def _nth_line_start(src: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = src.index("\n", offset) + 1
    return offset


def read_toml(path: str, what: str = "TOML file") -> Document:
    """The TOML file at ``path``; every failure (cannot read it, not UTF-8,
    not valid TOML) a :class:`SourceError` (``what`` names the file's role
    in messages)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path):
            # A FIFO or a device would block or never end.
            raise SourceError(f"cannot read {what} {path}: not a regular file")
        raw = Path(path).read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read {what} {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        before = raw[:error.start]
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        raise SourceError(f"{what} is not UTF-8 text (byte {raw[error.start]:#04x})",
                          Origin(path, before.count(b"\n") + 1, column)) from None
    return parse_toml(text, path)


# --- typed reads --------------------------------------------------------------------------

def describe(value: Any) -> str:
    """A found value in words, for "must be X, not Y".

    >>> describe("eax"), describe(6), describe(True), describe([]), describe({"a": 1})
    ("the string 'eax'", 'the integer 6', 'true', 'an empty list', 'a table')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value[:60]!r}" + ("..." if len(value) > 60 else "")
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the float {value}"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    return "a time"


def _closest(name: str, known: Sequence[str]) -> str | None:
    """The name of ``known`` that ``name`` most likely misspells, if any.

    >>> _closest("RDI", ("rdi", "rsi")), _closest("unifed", ("unified", "legacy")), _closest("x", ("rdi",))
    ('rdi', 'unified', None)
    """
    folded = {item.lower(): item for item in known}
    close = difflib.get_close_matches(name.lower(), list(folded), 1, cutoff=0.75)
    return folded[close[0]] if close else None


def _allowed(name: str, known: Sequence[str]) -> str:
    """``(did you mean 'x'? allowed: ...)`` for an unknown ``name``."""
    close = _closest(name, known)
    hint = f"did you mean {close!r}? " if close else ""
    return f"({hint}allowed: {', '.join(known) or 'none'})"


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


class Value:
    """One value of a document, where it sits, and typed reads of it.

    ``context`` (set by :meth:`Table.named`) heads every message about it
    and its children, whose keys are then named relative to the named table.
    """

    def __init__(self, value: Any, where: KeyPath, source: Source, context: str = "", base: int = 0):
        self.value = value
        self.where = where
        self.source = source
        self.context = context
        self.base = base

    @property
    def name(self) -> str:
        """This value's key, quoted, as messages name it (``'outputs[2]'``)."""
        return f"'{key_text(self.where[self.base:])}'"

    def error(self, message: str, at: str = "value") -> SourceError:
        """A :class:`SourceError` about this value (at its key with ``at="key"``)."""
        return self.source.error(self.where, f"{self.context}: {message}" if self.context else message, at)

    def expected(self, what: str) -> SourceError:
        return self.error(f"{self.name} must be {what}, not {describe(self.value)}")

    def child(self, key: str | int, value: Any) -> "Value":
        cls = Table if isinstance(value, dict) else Value
        return cls(value, self.where + (key,), self.source, self.context, self.base)

    def string(self, what: str = "a string") -> str:
        if not isinstance(self.value, str):
            raise self.expected(what)
        return self.value

    def name_string(self, what: str) -> str:
        """A non-empty string without blanks (a function, variant or macro name)."""
        text = self.string(what)
        if not text or not text.isprintable() or any(c.isspace() for c in text):
            raise self.expected(what)
        return text

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.expected("true or false")
        return self.value

    def integer(self, low: int = 0, high: int = U64_MAX) -> int:
        """An integer in ``low..high`` (a boolean is not one)."""
        bounds = f"an integer from {low} to {high:#x}" if high == U64_MAX else f"an integer from {low} to {high}"
        if isinstance(self.value, bool) or not isinstance(self.value, int) or not low <= self.value <= high:
            raise self.expected(bounds)
        return self.value

    def choice(self, choices: Sequence[str], noun: str = "") -> str:
        """One of ``choices`` (``noun`` names what they are: "register")."""
        if not isinstance(self.value, str):
            raise self.expected(f"{_a(noun)} name ({', '.join(choices)})" if noun else f"one of {', '.join(choices)}")
        if self.value not in choices:
            if noun:
                raise self.error(f"unknown {noun} {self.value!r} in {self.name} {_allowed(self.value, choices)}")
            close = _closest(self.value, choices)
            raise self.error(f"{self.name} must be one of {', '.join(choices)}, not {describe(self.value)}"
                             + (f" (did you mean {close!r}?)" if close else ""))
        return self.value

    def list(self, what: str = "a list") -> list["Value"]:
        if not isinstance(self.value, list):
            raise self.expected(what)
        return [self.child(number, item) for number, item in enumerate(self.value)]

    def strings(self, what: str = "", nonempty: bool = False) -> tuple[str, ...]:
        """A list of strings (each non-empty with ``nonempty``); a wrong
        item is reported at the item."""
        what = what or ("a list of non-empty strings" if nonempty else "a list of strings")
        items = self.list(what)
        for item in items:
            if not isinstance(item.value, str) or (nonempty and not item.value):
                raise item.error(f"{self.name} must be {what}; item {item.where[-1]} is {describe(item.value)}")
        return tuple(item.value for item in items)

    def choices(self, choices: Sequence[str], noun: str, unique: bool = True) -> tuple[str, ...]:
        """A list of names from ``choices`` (each at most once with ``unique``)."""
        items = self.list(f"a list of {noun} names")
        seen: dict[str, Value] = {}
        for item in items:
            name = item.choice(choices, noun)
            if unique and name in seen:
                raise item.error(f"{self.name} names {noun} {name!r} twice")
            seen[name] = item
        return tuple(seen) if unique else tuple(item.value for item in items)

    def table(self, required: Sequence[str] = (), optional: Sequence[str] | None = (),
              what: str = "a table") -> "Table":
        """This value as a :class:`Table` that has every ``required`` key and
        no key outside ``required`` + ``optional`` (any key if ``optional``
        is None)."""
        if not isinstance(self.value, dict):
            raise self.expected(what)
        table = Table(self.value, self.where, self.source, self.context, self.base)
        if optional is not None:
            known = tuple(required) + tuple(optional)
            for name in table.value:
                if name not in known:
                    item = table[name]
                    raise item.error(f"unknown key {item.name} {_allowed(name, known)}", at="key")
        for name in required:
            if name not in table.value:
                raise table.error(f"missing required key '{key_text(table.where[table.base:] + (name,))}'")
        return table


class Table(Value):
    """A table of a document; ``table[key]`` gives the value of a key it has."""

    value: dict

    def __getitem__(self, key: str) -> Value:
        return self.child(key, self.value[key])

    def __contains__(self, key: str) -> bool:
        return key in self.value

    def items(self) -> Iterator[tuple[str, Value]]:
        for key, value in self.value.items():
            yield key, self.child(key, value)

    def optional(self, key: str, read, default):
        """``read(self[key])``, or ``default`` when the key is absent."""
        return read(self[key]) if key in self.value else default

    def named(self, context: str) -> "Table":
        """This table with ``context`` heading every message about it or its
        keys (which messages then name relative to it)."""
        return Table(self.value, self.where, self.source, context, len(self.where))
