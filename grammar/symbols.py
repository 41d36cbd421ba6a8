"""Labels and assigned symbols as GNU as knows them while it reads a file.

This module decides, the way GNU as 2.40 does:

* **Labels**: ``name:`` and numeric ``N:``.  The k-th definition of ``N``
  is named ``.Lnum.N.k`` (a local name GNU as accepts and never emits to the
  symbol table), ``Nb`` is the latest definition so far and ``Nf`` the next
  one; references are rewritten in the text (not inside strings) before
  anything parses it.  A label defined twice is an error.
* **Symbols** ``.set``/``.equ``/``name = expr`` (redefinable), ``.equiv``
  and ``name == expr`` (not redefinable): a value that is absolute now is
  recorded for later expressions; one that is not (it involves a label or
  ``.``) is left for GNU as to compute and has no value for us.
* **Defined** (what ``.ifdef`` tests): a label or an assigned symbol,
  absolute or not, already defined.

Expressions are parsed and evaluated by :mod:`grammar.expressions` with the
absolute symbols known at that point.
"""
from __future__ import annotations

import re

from grammar.expressions import evaluate, parse_expression, symbols_of
from grammar.scrubber import skip_quoted
from grammar.source import Origin, SourceError

_NUMERIC_REF = re.compile(r"(?:(?<=[^\w.$]\$)|(?<=^\$)|(?<![\w.$]))(\d+)([fb])(?![\w.$])")


def numeric_label_name(number: str, instance: int) -> str:
    """The unique name of the ``instance``-th definition of local label ``number``.

    >>> numeric_label_name("01", 3)
    '.Lnum.1.3'
    """
    return f".Lnum.{int(number)}.{instance}"


def numeric_label_spelling(name: str) -> str | None:
    """The ``Nf`` reference a never-defined unique name came from, if any.

    >>> numeric_label_spelling(".Lnum.1.3"), numeric_label_spelling(".Lnum.2.1__1")
    ('1f', '2f')
    >>> numeric_label_spelling(".Lout") is None
    True
    """
    match = re.fullmatch(r"\.Lnum\.(\d+)\.\d+(__\d+)?", name)
    return f"{match.group(1)}f" if match else None


class SymbolTable:
    """The labels and symbols of one file so far; ``absolute`` (shared with
    the :class:`grammar.statements.Assembly`) holds the absolute values."""

    def __init__(self, absolute: dict[str, int]):
        self.absolute = absolute
        self.numeric_labels: dict[str, int] = {}
        """Local label number -> how many times it has been defined so far."""
        self.labels: set[str] = set()
        self.relative: set[str] = set()
        """Assigned symbols whose value GNU as computes (not absolute when assigned)."""

    def define_label(self, name: str, origin: Origin) -> str:
        """Define label ``name`` here; its unique name (numeric labels get one)."""
        if name.isdigit():
            count = self.numeric_labels.get(str(int(name)), 0) + 1
            self.numeric_labels[str(int(name))] = count
            name = numeric_label_name(name, count)
        elif self.defined(name):
            raise SourceError(f"symbol '{name}' is already defined", origin)
        self.labels.add(name)
        return name

    def resolve_numeric(self, text: str, origin: Origin) -> str:
        """Rewrite ``Nf``/``Nb`` references to unique label names (not in strings)."""
        def replace(match: re.Match) -> str:
            number, direction = str(int(match.group(1))), match.group(2)
            count = self.numeric_labels.get(number, 0)
            if direction == "b":
                if count == 0:
                    raise SourceError(f"undefined label '{match.group(0)}' (no earlier "
                                      f"'{number}:')",
                                      origin.at_column(origin.column + match.start()))
                return numeric_label_name(number, count)
            return numeric_label_name(number, count + 1)

        out, index, start = [], 0, 0
        while (index := text.find('"', index)) >= 0:
            out.append(_NUMERIC_REF.sub(replace, text[start:index]))
            end = skip_quoted(text, index)
            out.append(text[index:end])
            start = index = end
        out.append(_NUMERIC_REF.sub(replace, text[start:]))
        return "".join(out)

    def value(self, text: str, origin: Origin) -> int:
        """The value of expression ``text``, which must be absolute now."""
        return evaluate(parse_expression(text, origin), self.absolute, origin)

    def assign(self, name: str, text: str, origin: Origin, directive: str) -> str:
        """``directive name, text`` (``.set``, ``.equ`` or ``.equiv``); the
        expression as GNU as is to see it (numeric references resolved)."""
        if name in self.labels:
            raise SourceError(f"symbol '{name}' is already defined as a label", origin)
        if directive == ".equiv" and self.defined(name):
            raise SourceError(f"symbol '{name}' is already defined (.equiv)", origin)
        text = self.resolve_numeric(text, origin)
        if text.strip().startswith("%"):
            raise SourceError(f"unsupported: symbol '{name}' set to the register {text.strip()} (a register "
                              "alias; tdxproof's expressions have numbers only)", origin)
        expr = parse_expression(text, origin)
        if symbols_of(expr) - set(self.absolute):
            # Not absolute now (it involves a label or '.'): GNU as computes it;
            # it has no value for our expressions.
            self.absolute.pop(name, None)
            self.relative.add(name)
        else:
            self.absolute[name] = evaluate(expr, self.absolute, origin)
            self.relative.discard(name)
        return text

    def defined(self, name: str) -> bool:
        return name in self.labels or name in self.absolute or name in self.relative
