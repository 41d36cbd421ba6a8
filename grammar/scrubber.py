"""GNU as's text rules (x86-64, 2.40): a line -> statements -> scrubbed operands.

This module decides, the way GNU as does:

* **Statements and comments.**  A line holds statements separated by ``;``;
  ``#`` starts a comment anywhere outside a string or a character constant
  (``'c``), ``/`` only where a statement begins.
* **Whitespace** (:func:`scrub`): in the operand field a run of blanks
  survives (as one space) only between two "symbol characters" (names,
  digits and x86's ``*%-([{}``), or after a string or before a quote; so
  ``M 2 +1`` passes one argument ``2+1`` and ``M 2 -1`` two; the scrubber
  also turns a character constant ``'c`` into its decimal value, so
  ``M 'a' 'b`` passes ``9798``.
* **Operands** are comma separated; commas inside strings and parentheses
  do not separate.
* **Names**: the spelling of a symbol (:data:`NAME`), of the labels that may
  open a statement and of its opcode.

It knows nothing of directives or state: every function here is a pure
function of its text.
"""
from __future__ import annotations

import re

from grammar.expressions import character_value

NAME = r"[A-Za-z_.$][\w.$]*"
"""A symbol name (GNU as: letters, digits, ``_.$``, not starting with a digit)."""

LABEL = re.compile(rf"\s*({NAME}|\d+)\s*:(?!:)")
OPCODE = re.compile(rf"\s*({NAME})")
_SYMBOL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$")
_SCRUB_KEEPS = _SYMBOL_CHARS | set("*%-([{}")


def skip_quoted(text: str, index: int) -> int:
    """Index just past the string or character constant starting at ``index``.

    A character constant is ``'c``, ``'\\c`` or either with a closing ``'``.

    >>> skip_quoted("'a'+1", 0), skip_quoted("'a+1", 0), skip_quoted('"a;b" c', 0)
    (3, 2, 5)
    """
    if text[index] == "'":
        end = min(index + (3 if text[index + 1:index + 2] == "\\" else 2), len(text))
        return end + 1 if text[end:end + 1] == "'" else end
    index += 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    return index


_SPECIAL = re.compile(r"[\"';#/]")
"""The characters :func:`split_statements` looks at: quotes, statement
separators, comments."""


def split_statements(text: str) -> list[tuple[int, str]]:
    """A line -> its statements as (0-based column, text), comment removed.

    >>> split_statements('  push %rax; mov $1, %eax # note; not a statement')
    [(2, 'push %rax'), (13, 'mov $1, %eax')]
    >>> split_statements(".ascii \\"a;#b\\" ; .byte ';")
    [(0, '.ascii "a;#b"'), (16, ".byte ';")]
    >>> split_statements("  / a comment; too"), split_statements("nop; / comment")
    ([], [(0, 'nop')])
    >>> split_statements("mov $(8/2), %eax; 'a ;x"), split_statements("a 'b")
    ([(0, 'mov $(8/2), %eax'), (18, "'a"), (22, 'x')], [(0, "a 'b")])
    """
    statements, start, index = [], 0, 0
    while (found := _SPECIAL.search(text, index)) is not None:    # the other characters are skipped at once
        index = found.start()
        char = text[index]
        if char == "/":
            if text[start:index].strip():
                index += 1              # inside a statement: a division
                continue
            char = "#"  # '/' opening a statement starts a line comment
        if char in "\"'":
            index = skip_quoted(text, index)
            continue
        statements.append((start, text[start:index]))
        if char == "#":
            start = len(text)
            break
        start = index = index + 1
    if start < len(text):
        statements.append((start, text[start:]))
    result = []
    for column, statement in statements:
        stripped = statement.strip()
        if stripped:
            result.append((column + len(statement) - len(statement.lstrip()), stripped))
    return result


def scrub(text: str) -> str:
    """GNU as's whitespace rule for one statement (opcode + operands); its
    scrubber also turns character constants into decimal numbers.

    >>> scrub("M  2 +1"), scrub("M 2 -1"), scrub("M (x) 1"), scrub("M a ,  b")
    ('M 2+1', 'M 2 -1', 'M (x)1', 'M a,b')
    >>> scrub('.ascii  "a   b"'), scrub("M 2 'a"), scrub("M 'a' 'b")
    ('.ascii "a   b"', 'M 2 97', 'M 9798')
    """
    text = text.strip()
    match = re.match(r"\S+", text)
    if match is None:
        return ""
    out = [match.group(0)]
    index = match.end()
    if index < len(text):
        out.append(" ")
    pending = keeps = False  # a blank is waiting; the last output keeps it
    while index < len(text):
        char = text[index]
        if char in " \t":
            pending = True
            index += 1
            continue
        if pending and keeps and (char in _SCRUB_KEEPS or char in "\"'"):
            out.append(" ")
        pending = False
        if char == '"':
            end = skip_quoted(text, index)
            out.append(text[index:end])
            keeps = True
        elif char == "'" and index + 1 < len(text):
            end = skip_quoted(text, index)
            out.append(str(character_value(text[index:end])))
            keeps = False
        else:
            end = index + 1
            out.append(char)
            keeps = char in _SCRUB_KEEPS
        index = end
    return "".join(out).rstrip()


def scrubbed_operands(directive: str, operands: str) -> str:
    """The operands of ``directive`` as GNU as's scrubber leaves them.

    >>> scrubbed_operands(".irp", "r ,  a b")
    'r,a b'
    """
    return scrub(f"{directive} {operands}")[len(directive) + 1:]


def split_operands(text: str) -> list[str]:
    """Comma-separated operands (commas inside strings and parentheses kept).

    >>> split_operands('1, (2, 3), "a,b"')
    ['1', '(2, 3)', '"a,b"']
    >>> split_operands("")
    []
    """
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in "\"'":
            index = skip_quoted(text, index)
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
        index += 1
    last = text[start:].strip()
    if parts or last:
        parts.append(last)
    return parts


def opcode_of(text: str) -> tuple[str | None, str]:
    """(lower-cased first word after any labels, the rest) of a statement.

    >>> opcode_of("1: done: .ENDR x"), opcode_of("2:")
    (('.endr', 'x'), (None, ''))
    """
    index = 0
    while label := LABEL.match(text, index):
        index = label.end()
    match = OPCODE.match(text, index)
    if match is None:
        return None, ""
    return match.group(1).lower(), text[match.end():].strip()
