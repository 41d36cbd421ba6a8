"""Sections, and the data a section may hold: where each statement goes.

This module decides, the way GNU as 2.40 does where it matters to us:

* **Sections** ``.text``/``.data``/``.bss`` (subsection 0 only),
  ``.section NAME[, "FLAGS"]``, ``.pushsection``, ``.popsection``,
  ``.previous``.  A section holds code when its flags contain ``x``, or,
  without flags, when GNU as would make it executable by name (``.text``,
  ``.text.*``, ``.init``, ``.fini``); its kind is fixed at its first mention.
* **Data** (:data:`DATA_DIRECTIVES`) outside code is kept for re-emission.
  In a code section only ``.byte`` runs spelling TDCALL (``66 0f 01 cc``) or
  SEAMCALL (``66 0f 01 cf``) are accepted (:data:`TDX_ENCODINGS`) and become
  instructions, and NOP padding (``.nops N``, ``.skip N, 0x90``,
  ``.fill N, 1, 0x90``) is kept like alignment (:data:`ALIGN_DIRECTIVES`);
  any other data in code is an error: it would be code we cannot model.
"""
from __future__ import annotations

import re
from typing import Callable

from grammar.parser import parse_instruction
from grammar.scrubber import split_operands
from grammar.source import Origin, SourceError
from grammar.statements import DataStatement, Directive, InstructionStatement, Statement

TDX_ENCODINGS: dict[tuple[int, ...], str] = {
    (0x66, 0x0F, 0x01, 0xCC): "tdcall",
    (0x66, 0x0F, 0x01, 0xCF): "seamcall",
}
"""Raw byte spellings of the TDX instructions that kernel files emit as data."""

DATA_DIRECTIVES = frozenset({
    ".byte", ".word", ".short", ".value", ".hword", ".2byte", ".long", ".int", ".4byte",
    ".quad", ".8byte", ".octa", ".ascii", ".asciz", ".string", ".skip", ".space", ".zero",
    ".fill", ".uleb128", ".sleb128", ".nops"})
"""Directives that emit bytes; kept as written for re-emission."""

ALIGN_DIRECTIVES = frozenset({".align", ".balign", ".p2align", ".balignw", ".balignl",
                              ".p2alignw", ".p2alignl"})

NOP = 0x90
_CODE_SECTION_NAMES = re.compile(r"^(\.text(\..*)?|\.init|\.fini)$")

Value = Callable[[str, Origin], int]
"""An expression's absolute value now (:meth:`grammar.symbols.SymbolTable.value`)."""


class Sections:
    """The current section of one file, the previous one, the
    ``.pushsection`` stack and which sections hold code (``code``, shared
    with the :class:`grammar.statements.Assembly`)."""

    def __init__(self, code: set[str]):
        self.current = ".text"
        self.previous = ".text"
        self._stack: list[tuple[str, str]] = []
        self.code = code
        self.code.add(".text")
        self._known: set[str] = {".text"}

    @property
    def in_code(self) -> bool:
        return self.current in self.code

    def simple(self, name: str, operands: str, origin: Origin) -> Directive:
        """``.text``, ``.data`` or ``.bss`` (subsection 0)."""
        if operands.strip() not in ("", "0"):
            raise SourceError(f"subsections are not supported ('{name} {operands.strip()}')", origin)
        self._switch(name, None)
        return Directive(name, "", origin, self.current)

    def section(self, name: str, operands: str, origin: Origin) -> Directive:
        """``.section`` or ``.pushsection`` ``NAME[, "FLAGS"]``."""
        parts = split_operands(operands)
        if not parts or not parts[0]:
            raise SourceError(f"expected a section name after {name}", origin)
        section = parts[0].strip('"')
        flags = None
        if len(parts) > 1:
            if not (parts[1].startswith('"') and parts[1].endswith('"')):
                if name == ".pushsection" and len(parts) == 2 and parts[1] in ("", "0"):
                    parts = parts[:1]
                else:
                    raise SourceError(f"unsupported section flags '{parts[1]}'", origin)
            else:
                flags = parts[1][1:-1]
        if name == ".pushsection":
            self._stack.append((self.current, self.previous))
        self._switch(section, flags)
        return Directive(name, operands.strip(), origin, self.current)

    def pop(self, name: str, origin: Origin) -> Directive:
        """``.popsection`` or ``.previous``."""
        if name == ".popsection":
            if not self._stack:
                raise SourceError(".popsection without a matching .pushsection", origin)
            self.current, self.previous = self._stack.pop()
        else:
            self.current, self.previous = self.previous, self.current
        return Directive(name, "", origin, self.current)

    def _switch(self, section: str, flags: str | None) -> None:
        """Make ``section`` current; its kind is fixed at its first mention."""
        if section not in self._known:
            self._known.add(section)
            if ("x" in flags) if flags is not None else _CODE_SECTION_NAMES.match(section):
                self.code.add(section)
        self.previous, self.current = self.current, section

    def data(self, name: str, text: str, origin: Origin, value: Value) -> list[Statement]:
        """The statements of data directive ``name`` with operands ``text``
        (numeric label references resolved) in the current section."""
        values = tuple(split_operands(text))
        if not self.in_code:
            return [DataStatement(name, values, origin, self.current)]
        if name == ".byte":
            return [InstructionStatement(parse_instruction(mnemonic, origin, {}), self.current)
                    for mnemonic in _tdx_instructions(values, origin, value, self.current)]
        if _nop_padding(name, values, origin, value):
            return [Directive(name, text.strip(), origin, self.current)]
        raise SourceError(f"data ('{name}') in code section '{self.current}' is not "
                          "an instruction we can model", origin)


def _nop_padding(name: str, values: tuple[str, ...], origin: Origin, value: Value) -> bool:
    """``.nops N``, ``.skip N, 0x90`` or ``.fill N, 1, 0x90``: NOP bytes.

    The length may involve labels (the kernel's ALTERNATIVE pads the
    original instruction to the replacement's length); GNU as computes it.
    """
    if name == ".nops":
        return True
    if name == ".fill":  # .fill repeat, size, value
        return (len(values) == 3 and value(values[1], origin) == 1
                and value(values[2], origin) & 0xFF == NOP)
    return (name in (".skip", ".space") and len(values) == 2
            and value(values[1], origin) & 0xFF == NOP)


def _tdx_instructions(values: tuple[str, ...], origin: Origin, value: Value, section: str) -> list[str]:
    """The mnemonics that the ``.byte`` run ``values`` in code spells, in order."""
    data = tuple(value(item, origin) & 0xFF for item in values)
    mnemonics, position = [], 0
    while position < len(data):
        for encoding, mnemonic in TDX_ENCODINGS.items():
            if data[position:position + len(encoding)] == encoding:
                mnemonics.append(mnemonic)
                position += len(encoding)
                break
        else:
            spelled = " ".join(f"{byte:02x}" for byte in data)
            raise SourceError(f"raw bytes in code section '{section}' ({spelled}) are "
                              "not a known instruction encoding (only TDCALL 66 0f 01 cc "
                              "and SEAMCALL 66 0f 01 cf are decoded)", origin)
    return mnemonics
