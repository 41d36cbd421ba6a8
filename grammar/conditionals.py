"""GNU as's conditional assembly: which statements are read and which skipped.

This module decides, the way GNU as 2.40 does:

* **The directives** ``.if .ifeq .ifne .ifge .ifgt .ifle .iflt .ifdef
  .ifndef .ifnotdef .ifb .ifnb .ifc .ifnc .elseif .else .endif`` nest; a
  branch is taken when its condition holds, every enclosing branch is
  taken and no earlier branch of the same ``.if`` was; a condition inside a
  branch not taken is not evaluated.  ``.elseif`` or ``.else`` after
  ``.else``, and any of them without an ``.if``, is an error.
* **Conditions**: an expression (evaluated with the absolute symbols known
  at that point, :class:`grammar.symbols.SymbolTable`) compared with zero;
  ``.ifdef`` true for a label or an assigned symbol already defined;
  ``.ifb`` for blank (scrubbed) operands; ``.ifc`` compares two strings,
  ``'quoted''s'`` or bare text up to a comma.
* **Closing**: a macro's expansion must close the conditionals it opens
  ("end of macro inside conditional"), and so must the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from grammar.scrubber import NAME, scrubbed_operands
from grammar.source import Origin, SourceError
from grammar.symbols import SymbolTable

OPENERS = frozenset({
    ".if", ".ifeq", ".ifne", ".ifge", ".ifgt", ".ifle", ".iflt", ".ifdef", ".ifndef",
    ".ifnotdef", ".ifb", ".ifnb", ".ifc", ".ifnc"})
DIRECTIVES = OPENERS | {".elseif", ".else", ".endif"}
"""Every conditional directive: those read even inside a branch not taken."""


@dataclass
class _Conditional:
    origin: Origin
    parent_active: bool
    active: bool
    taken: bool
    seen_else: bool = False


class Conditionals:
    """The open conditionals of one file, innermost last."""

    def __init__(self, symbols: SymbolTable):
        self.symbols = symbols
        self._open: list[_Conditional] = []

    @property
    def active(self) -> bool:
        """Whether the statements here are read (every open branch taken)."""
        return not self._open or self._open[-1].active

    @property
    def depth(self) -> int:
        return len(self._open)

    def directive(self, name: str, operands: str, origin: Origin) -> None:
        """One of :data:`DIRECTIVES`."""
        if name in OPENERS:
            parent = self.active
            value = parent and self._holds(name, operands, origin)
            self._open.append(_Conditional(origin, parent, value, value))
            return
        if not self._open:
            raise SourceError(f"'{name}' without a matching '.if'", origin)
        top = self._open[-1]
        if name == ".endif":
            self._open.pop()
            return
        if top.seen_else:
            raise SourceError(f"'{name}' after '.else'", origin)
        if name == ".else":
            top.seen_else = True
            top.active = top.parent_active and not top.taken
        else:  # .elseif
            top.active = (top.parent_active and not top.taken
                          and self._holds(".if", operands, origin))
        top.taken = top.taken or top.active

    def end_macro(self, depth: int) -> None:
        """A macro expansion that began at conditional ``depth`` ends here."""
        if len(self._open) > depth:
            raise SourceError("end of macro inside conditional (missing .endif)",
                              self._open[depth].origin)

    def exit_macro(self, depth: int) -> None:
        """``.exitm``: the conditionals the expansion opened are abandoned."""
        del self._open[depth:]

    def end_file(self) -> None:
        if self._open:
            raise SourceError("unterminated conditional (missing .endif)", self._open[-1].origin)

    def _holds(self, name: str, operands: str, origin: Origin) -> bool:
        if name in (".ifdef", ".ifndef", ".ifnotdef"):
            symbol = operands.strip()
            if not re.fullmatch(NAME, symbol):
                raise SourceError(f"expected a symbol name after {name}", origin)
            return self.symbols.defined(symbol) == (name == ".ifdef")
        if name in (".ifb", ".ifnb"):
            return (scrubbed_operands(".", operands) == "") == (name == ".ifb")
        if name in (".ifc", ".ifnc"):
            left, right = ifc_strings(scrubbed_operands(".", operands), origin)
            return (left == right) == (name == ".ifc")
        if not operands:
            raise SourceError(f"expected an expression after {name}", origin)
        value = self.symbols.value(self.symbols.resolve_numeric(operands, origin), origin)
        return {".if": value != 0, ".ifne": value != 0, ".ifeq": value == 0,
                ".ifge": value >= 0, ".ifgt": value > 0, ".ifle": value <= 0,
                ".iflt": value < 0}[name]


def ifc_strings(text: str, origin: Origin) -> tuple[str, str]:
    """The two operands of ``.ifc`` (GNU as: ``'quoted''s'`` or bare text).

    >>> ifc_strings("'a''b', c", Origin("a.S", 1))
    ("a'b", 'c')
    """
    def one(index: int) -> tuple[str, int]:
        while index < len(text) and text[index] in " \t":
            index += 1
        if index < len(text) and text[index] == "'":
            out, index = [], index + 1
            while index < len(text):
                if text[index] == "'":
                    if index + 1 < len(text) and text[index + 1] == "'":
                        out.append("'")
                        index += 2
                        continue
                    return "".join(out), index + 1
                out.append(text[index])
                index += 1
            raise SourceError("unterminated quoted string in .ifc", origin)
        end = text.find(",", index)
        end = len(text) if end < 0 else end
        return text[index:end].rstrip(), end

    left, index = one(0)
    while index < len(text) and text[index] in " \t":
        index += 1
    if index >= len(text) or text[index] != ",":
        raise SourceError(".ifc needs two comma-separated operands", origin)
    right, index = one(index + 1)
    return left, right
