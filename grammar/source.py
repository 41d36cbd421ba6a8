"""Source locations and the one error type for bad input.

Every node the front end produces carries an :class:`Origin`: the file, line
and column of the original source text (after mapping the C preprocessor's
line markers back) and the chain of macro expansions that produced it,
outermost first.  Every error the tool reports about its input is a
:class:`SourceError`; the CLI renders it as one paragraph and exits 2.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expansion:
    """One macro expansion step: macro ``name`` invoked at file:line:column.

    ``name`` is the GNU-as macro name, or a directive for repetition blocks
    (``.irp``, ``.irpc``, ``.rept``).
    """

    name: str
    file: str
    line: int
    column: int = 1

    def render(self) -> str:
        """Macro name and invocation site, as errors print them.

        >>> Expansion("TDX_MODULE_CALL", "tdxcall.S", 12, 2).render()
        'TDX_MODULE_CALL at tdxcall.S:12:2'
        """
        return f"{self.name} at {self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Origin:
    """Where a piece of text came from."""

    file: str
    line: int
    column: int = 1
    expansion: tuple[Expansion, ...] = ()

    def at_column(self, column: int) -> "Origin":
        return Origin(self.file, self.line, column, self.expansion)

    def within(self, frame: Expansion) -> "Origin":
        """This origin, seen through one more (outer) expansion frame."""
        return Origin(self.file, self.line, self.column, (frame,) + self.expansion)

    def render(self) -> str:
        """File:line:column, then the expansion chain (outermost first).

        >>> Origin("a.S", 3, 5).render()
        'a.S:3:5'
        >>> Origin("m.S", 7, 1, (Expansion("M", "a.S", 3, 1),)).render()
        'm.S:7:1 (in expansion of M at a.S:3:1)'
        """
        text = f"{self.file}:{self.line}:{self.column}"
        if self.expansion:
            chain = " -> ".join(frame.render() for frame in self.expansion)
            text += f" (in expansion of {chain})"
        return text


class SourceError(Exception):
    """Bad input: a message plus, where known, the origin it is about.

    Raised by every stage for anything it does not accept or support (an
    unknown instruction, an unterminated macro, an undefined symbol, ...).
    The CLI turns it into exit status 2.
    """

    def __init__(self, message: str, origin: Origin | None = None):
        super().__init__(message)
        self.message = message
        self.origin = origin

    def render(self) -> str:
        """One paragraph: location first, then the message.

        >>> SourceError("unknown instruction 'foo'", Origin("a.S", 2, 1)).render()
        "a.S:2:1: error: unknown instruction 'foo'"
        """
        if self.origin is None:
            return f"error: {self.message}"
        return f"{self.origin.render()}: error: {self.message}"
