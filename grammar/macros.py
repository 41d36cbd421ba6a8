"""GNU as's macros: definitions, argument binding and substitution (macro.c).

This module decides, the way GNU as 2.40 does:

* **Definitions** (``.macro NAME FORMALS``/``.endm``, ``.purgem``): names are
  case-insensitive; a macro defined twice is an error; parameters take
  ``:req``, ``:vararg`` and ``=default`` (GNU as's ``do_formals``).
* **Arguments** are split exactly as GNU as's ``get_any_string`` does (blank
  or comma separated, a leading ``"string"`` loses its quotes, ``key=value``
  arguments, a positional argument after a keyword one is an error, a
  required parameter must get a value).
* **Substitution**: in the body ``\\param``, ``\\()`` and ``\\@`` (GNU as's
  count of macro expansions so far, which ``.irp``/``.rept`` do not advance
  and do not substitute) are replaced; a substituted statement longer than
  the ``statement-bytes`` limit is an error before it exists.
* **Repetition values**: ``.irp sym, values...`` splits its values as macro
  arguments, ``.irpc sym, chars`` takes one character at a time.

Where an expansion's statements go, and how deep expansions may nest, is
the reader's (:mod:`grammar.reader`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from grammar.limits import Limits
from grammar.scrubber import NAME, OPCODE, scrub, scrubbed_operands, split_operands
from grammar.source import Origin, SourceError
from grammar.statements import RawStatement

_SEPARATORS = set(" \t,\";()<>")

Rewrite = Callable[[str, Origin], str]
"""A body statement's text (at its origin in the expansion) -> the text run."""


@dataclass
class Macro:
    name: str
    formals: list[tuple[str, str, str]]  # (name, kind: "" | "req" | "vararg", default)
    body: list[RawStatement]
    origin: Origin


class MacroTable:
    """The macros defined so far in one file, and the count of expansions."""

    def __init__(self) -> None:
        self._macros: dict[str, Macro] = {}
        self.expansions = 0
        """Macro expansions so far (what ``\\@`` is replaced by)."""

    def find(self, opcode: str) -> Macro | None:
        """The macro named ``opcode`` (lower-cased), if one is defined."""
        return self._macros.get(opcode)

    def define(self, operands: str, body: Sequence[RawStatement], origin: Origin) -> None:
        """``.macro OPERANDS`` with ``body`` up to its ``.endm``."""
        text = scrubbed_operands(".macro", operands)
        match = re.match(rf"({NAME})\s*,?\s*", text)
        if match is None:
            raise SourceError("expected a macro name after .macro", origin)
        name = match.group(1)
        if name.lower() in self._macros:
            raise SourceError(f"macro '{name}' was already defined", origin)
        formals = _parse_formals(text[match.end():], name, origin)
        self._macros[name.lower()] = Macro(name, formals, list(body), origin)

    def purge(self, operands: str) -> None:
        """``.purgem NAMES`` (a name not defined is no error)."""
        for macro in split_operands(scrubbed_operands(".purgem", operands)):
            self._macros.pop(macro.lower(), None)

    def expansion(self, macro: Macro, statement: RawStatement, limit: int) -> Rewrite:
        """The rewriting of ``macro``'s body for the invocation ``statement``
        (its arguments bound, the next expansion number taken); ``limit`` is
        the ``statement-bytes`` limit."""
        scrubbed = scrub(statement.text)
        values = _bind_arguments(macro, scrubbed[OPCODE.match(scrubbed).end():], statement.origin)
        number = self.expansions
        self.expansions += 1
        return lambda text, origin: substitute(text, values, number, origin, limit)


def repetition_values(kind: str, operands: str, origin: Origin) -> tuple[str, list[str]]:
    """``.irp``/``.irpc`` operands -> (the symbol, its values in order).

    >>> repetition_values(".irp", "r, a, b c", Origin("a.S", 1)), repetition_values(".irpc", "c xy", Origin("a.S", 1))
    (('r', ['a', 'b', 'c']), ('c', ['x', 'y']))
    """
    scrubbed = scrubbed_operands(".irp", operands)
    match = re.match(rf"({NAME})\s*,?", scrubbed)
    if match is None:
        raise SourceError(f"expected a symbol name after {kind}", origin)
    symbol, rest = match.group(1), scrubbed[match.end():]
    if kind == ".irp":
        return symbol, _irp_values(rest) or [""]
    _, string = _get_any_string(rest, 0)
    return symbol, list(string) or [""]


def _skip_white(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t":
        index += 1
    return index


def _skip_comma(text: str, index: int) -> int:
    index = _skip_white(text, index)
    if index < len(text) and text[index] == ",":
        index = _skip_white(text, index + 1)
    return index


def _get_any_string(text: str, index: int) -> tuple[int, str]:
    """One macro argument starting at ``index`` -> (next index, argument).

    >>> _get_any_string('"a b" c', 0), _get_any_string("(a b),c", 0), _get_any_string("x y", 0)
    ((5, 'a b'), (5, '(a b)'), (1, 'x'))
    """
    index = _skip_white(text, index)
    out: list[str] = []
    if index < len(text) and text[index] == '"':
        while index < len(text) and text[index] == '"':
            index += 1
            escaped = False
            while index < len(text):
                escaped = (not escaped) if text[index - 1] == "\\" else False
                if not escaped and text[index] == '"':
                    index += 1
                    if index >= len(text) or text[index] != '"':
                        break
                out.append(text[index])
                index += 1
        return index, "".join(out)
    brackets: list[str] = []
    while index < len(text) and (brackets or text[index] not in " \t") and text[index] != ",":
        char = text[index]
        if char in "\"'":
            out.append(char)
            index += 1
            while index < len(text) and text[index] != char:
                out.append(text[index])
                index += 1
            if index >= len(text):
                return index, "".join(out)
        elif char in "([":
            brackets.append(char)
        elif char == ")" and brackets and brackets[-1] == "(":
            brackets.pop()
        elif char == "]" and brackets and brackets[-1] == "[":
            brackets.pop()
        out.append(char)
        index += 1
    return index, "".join(out)


def _irp_values(text: str) -> list[str]:
    """``.irp`` values, split as macro arguments are."""
    values, index = [], _skip_white(text, 0)
    while index < len(text):
        index, value = _get_any_string(text, index)
        values.append(value)
        index = _skip_comma(text, index)
    return values


def _parse_formals(text: str, macro: str, origin: Origin) -> list[tuple[str, str, str]]:
    """``a, b:req c=1 d:vararg`` -> [(name, kind, default)], as GNU as's do_formals."""
    formals: list[tuple[str, str, str]] = []
    index = _skip_white(text, 0)
    while index < len(text):
        match = re.compile(NAME).match(text, index)
        if match is None:
            raise SourceError(f"bad parameter list for macro '{macro}' near "
                              f"'{text[index:]}'", origin)
        name, index = match.group(0), _skip_white(text, match.end())
        kind, default = "", ""
        if index < len(text) and text[index] == ":":
            qualifier = re.compile(r"\s*(\w*)").match(text, index + 1)
            kind, index = qualifier.group(1), _skip_white(text, qualifier.end())
            if kind not in ("req", "vararg"):
                raise SourceError(f"'{kind}' is not a valid parameter qualifier for '{name}' "
                                  f"in macro '{macro}'", origin)
        if index < len(text) and text[index] == "=":
            index, default = _get_any_string(text, index + 1)
            index = _skip_white(text, index)
            if kind == "req":
                default = ""
        if any(formal[0] == name for formal in formals):
            raise SourceError(f"a parameter named '{name}' already exists for macro "
                              f"'{macro}'", origin)
        formals.append((name, kind, default))
        if kind == "vararg":
            break
        before = index
        index = _skip_comma(text, index)
        if index != before and index >= len(text):
            break
    if index < len(text):
        raise SourceError(f"junk after the parameters of macro '{macro}': '{text[index:]}'",
                          origin)
    return formals


def _bind_arguments(macro: Macro, text: str, origin: Origin) -> dict[str, str]:
    """Invocation text -> parameter values, as GNU as's macro_expand."""
    names = [formal[0] for formal in macro.formals]
    actual: dict[str, str] = {name: "" for name in names}
    position, keyword_seen = 0, False
    index = _skip_white(text, 0)
    while index < len(text):
        scan = index
        while scan < len(text) and text[scan] not in _SEPARATORS and text[scan] != "=":
            scan += 1
        if scan < len(text) and text[scan] == "=":
            keyword_seen = True
            key = text[index:scan]
            if key not in actual:
                raise SourceError(f"parameter named '{key}' does not exist for macro "
                                  f"'{macro.name}'", origin)
            index, actual[key] = _get_any_string(text, scan + 1)
        else:
            if keyword_seen:
                raise SourceError(f"can't mix positional and keyword arguments (macro "
                                  f"'{macro.name}')", origin)
            if position >= len(names):
                raise SourceError(f"too many positional arguments for macro '{macro.name}'",
                                  origin)
            name, kind, _ = macro.formals[position]
            if kind == "vararg":
                actual[name], index = text[index:], len(text)
            else:
                index, actual[name] = _get_any_string(text, index)
            position += 1
        index = _skip_comma(text, index)
    values = {}
    for name, kind, default in macro.formals:
        if kind == "req" and not actual[name]:
            raise SourceError(f"missing value for required parameter '{name}' of macro "
                              f"'{macro.name}'", origin)
        values[name] = actual[name] or default
    return values


_PARAMETER_NAME = re.compile(r"[\w.$]*")
"""What may follow a backslash in a macro body as a parameter's name."""


def substitute(text: str, values: dict[str, str], number: int | None, origin: Origin,
               limit: int | None = None) -> str:
    """Macro body text with ``\\param``, ``\\()`` and ``\\@`` replaced; a
    result longer than ``limit`` is the ``statement-bytes`` limit error.

    >>> o = Origin("a.S", 1)
    >>> substitute(r".Lout\\@: mov \\reg\\()d, \\x", {"reg": "%r8"}, 4, o)
    '.Lout4: mov %r8d, \\\\x'
    >>> substitute(r"\\a\\a\\a", {"a": "xyz"}, None, o, 8)
    Traceback (most recent call last):
    grammar.source.SourceError: a statement of more than 8 bytes exceeds the limit of 8 bytes (raise it with --limit statement-bytes=N)
    """
    out, index, size = [], 0, 0
    while index < len(text):
        if text[index] != "\\":
            end = text.find("\\", index)            # the text up to the next backslash, as it is
            end = len(text) if end < 0 else end
            piece, index = text[index:end], end
        elif text[index + 1:index + 2] == "(":
            end = text.find(")", index + 1)
            if end < 0:
                raise SourceError("missing ')' after '\\('", origin)
            piece, index = text[index + 2:end], end + 1
        elif text[index + 1:index + 2] == "@" and number is not None:
            piece, index = str(number), index + 2
        else:
            match = _PARAMETER_NAME.match(text, index + 1)
            name = match.group(0)
            piece, index = values[name] if name in values else "\\" + name, match.end()
        out.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            raise Limits(statement_bytes=limit).exceeded(
                "statement_bytes", f"a statement of more than {limit} bytes", origin)
    return "".join(out)
