"""The kernel exception table: where a faulting instruction resumes.

An :class:`grammar.ast.ExtableEntry` names two labels.  The instruction an
entry covers is the first instruction at or after its ``from_label`` in the
function that defines the label (labels mark addresses, and the address of a
label followed by more labels is that of the next instruction).

Decisions recorded here (SPEC.md section 6):

* An entry of type ``fault`` (``_ASM_EXTABLE_FAULT``): the kernel writes the
  trap number (6 for #UD, 13 for #GP) into RAX, zero-extended to 64 bits,
  and resumes at ``to_label``; every other register and flag keeps the value
  it had before the faulting instruction.
* An entry of type ``default`` (``_ASM_EXTABLE``): the kernel resumes at
  ``to_label`` and changes no register.
* Any other entry type is not modelled: routing a fault through it raises
  :class:`ExtableError` rather than guessing what its handler does.
* No entry for a faulting instruction: :meth:`ExceptionTable.route` answers
  ``None`` and the executor ends the path as a kernel oops.
* Two entries for the same instruction are an error (the kernel's sorted
  table would pick one arbitrarily).
"""
from __future__ import annotations

from dataclasses import dataclass

from grammar import ast
from grammar.source import Origin, SourceError

FAULT, DEFAULT = "fault", "default"


class ExtableError(SourceError):
    """An exception-table entry the model cannot use (bad label, unknown type)."""


Location = tuple[str, int]
"""A program point: (function name, index into that function's items)."""


@dataclass(frozen=True)
class Fixup:
    """Where a fault resumes, and what the handler writes first.

    >>> Fixup("1f", "fault", 13, Origin("a.S", 3)).rax
    13
    >>> Fixup("1f", "default", 13, Origin("a.S", 3)).rax is None
    True
    """

    to_label: str
    kind: str
    trap: int
    origin: Origin

    @property
    def rax(self) -> int | None:
        """The value the handler writes into RAX, or ``None`` for no write."""
        return self.trap if self.kind == FAULT else None


class ExceptionTable:
    """The program's exception-table entries, keyed by the covered instruction."""

    def __init__(self, program: ast.Program):
        self._entries: dict[Location, ast.ExtableEntry] = {}
        for entry in program.extable:
            location = covered_instruction(program, entry.from_label, entry.origin)
            if location in self._entries:
                raise ExtableError(
                    f"two exception-table entries for the instruction at {entry.from_label!r}",
                    entry.origin)
            self._entries[location] = entry

    def entry(self, location: Location) -> ast.ExtableEntry | None:
        """The entry covering the instruction at ``location``, if any."""
        return self._entries.get(location)

    def route(self, location: Location, trap: int) -> Fixup | None:
        """Where a fault with ``trap`` at ``location`` resumes (``None``: oops)."""
        entry = self._entries.get(location)
        if entry is None:
            return None
        if entry.kind not in (FAULT, DEFAULT):
            raise ExtableError(
                f"exception-table entry of type {entry.kind!r} is not modelled "
                f"(only 'fault' and 'default' are)", entry.origin)
        return Fixup(entry.to_label, entry.kind, trap, entry.origin)


def covered_instruction(program: ast.Program, label: str, origin: Origin) -> Location:
    """The location of the first instruction at or after ``label``."""
    if label not in program.labels:
        raise ExtableError(f"exception-table entry names undefined label {label!r}", origin)
    function_name, index = program.labels[label]
    if function_name is None:
        raise ExtableError(f"exception-table label {label!r} is outside any function", origin)
    items = program.function(function_name).items
    for position in range(index, len(items)):
        if isinstance(items[position], ast.Instruction):
            return function_name, position
    raise ExtableError(f"exception-table label {label!r} is not followed by an instruction", origin)
