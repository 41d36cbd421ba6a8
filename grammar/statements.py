"""The statements of the GNU-as layer: as read from the text, and as produced.

A :class:`RawStatement` is what the reader takes in (one statement's text,
comment removed, and its :class:`Origin`, with the chain of expansions that
made it, outermost first).  What the layer produces for the rest of the
front end (:mod:`grammar.program`, :mod:`grammar.emit`) is an
:class:`Assembly`: one of the four kinds of :data:`Statement` for each
label, instruction, data directive and re-emitted directive, in source
order, each tagged with the section it is in.  Numeric label references in
a produced statement are already resolved (:mod:`grammar.symbols`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from grammar import ast
from grammar.source import Origin


@dataclass(frozen=True)
class RawStatement:
    """A statement as read: text (comment removed, numeric refs unresolved)."""

    text: str
    origin: Origin


@dataclass(frozen=True)
class LabelDefinition:
    name: str
    origin: Origin
    section: str


@dataclass(frozen=True)
class InstructionStatement:
    instruction: ast.Instruction
    section: str

    @property
    def origin(self) -> Origin:
        return self.instruction.origin


@dataclass(frozen=True)
class DataStatement:
    """``.long a - ., b`` -> directive ``.long``, values ``("a - .", "b")``."""

    directive: str
    values: tuple[str, ...]
    origin: Origin
    section: str


@dataclass(frozen=True)
class Directive:
    """A directive re-emitted as written (numeric label references resolved):
    section switches, alignment, symbol directives, assignments."""

    name: str
    operands: str
    origin: Origin
    section: str


Statement = Union[LabelDefinition, InstructionStatement, DataStatement, Directive]


@dataclass
class Assembly:
    """One input file after the GNU-as layer: statements in source order."""

    file: str
    statements: list[Statement] = field(default_factory=list)
    symbols: dict[str, int] = field(default_factory=dict)
    """Absolute values of assigned symbols (the last assignment wins)."""
    code_sections: set[str] = field(default_factory=set)
