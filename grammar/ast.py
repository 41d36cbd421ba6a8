"""The parsed program: the nodes the front end hands to the model.

Decisions recorded here:

* Registers are named by their AT&T name without ``%``, lower case; each
  knows its 64-bit family, its width in bits and its bit offset inside the
  family (8 for ``ah``/``bh``/``ch``/``dh``, else 0).  ``REGISTERS`` is the
  one table of x86-64 general-purpose register names.
* Operands are in AT&T order (sources first, destination last).
* Every operand knows its width in bits once size inference has run
  (``Memory.width`` is ``None`` only for operands whose size is meaningless,
  such as the operand of ``lea``).
* ``Instruction.base`` is the operation without size suffix or condition
  alias spelled out by the parser (``movq`` -> ``mov``, ``movzbl`` ->
  ``movzx``, ``jz`` -> ``je``, ``retq`` -> ``ret``); ``Instruction.mnemonic``
  is the mnemonic as written after macro expansion, lower case.
* Raw ``.byte`` encodings of TDCALL/SEAMCALL in code become instructions with
  base ``tdcall``/``seamcall`` and the ``.byte`` line as their origin.
* Branch targets are :class:`Target` nodes naming a resolved label: numeric
  local labels (``1f``/``1b``) are already resolved to the unique name of
  the definition they refer to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from grammar.source import Origin

_GPR64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
          "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

GPR64: tuple[str, ...] = _GPR64
"""The sixteen 64-bit general-purpose registers in encoding order."""


def _register_table() -> dict[str, tuple[str, int, int]]:
    table: dict[str, tuple[str, int, int]] = {}
    legacy = {"rax": "a", "rcx": "c", "rdx": "d", "rbx": "b"}
    pointer = {"rsp": "sp", "rbp": "bp", "rsi": "si", "rdi": "di"}
    for full in _GPR64:
        table[full] = (full, 64, 0)
        if full in legacy:
            letter = legacy[full]
            table[f"e{letter}x"] = (full, 32, 0)
            table[f"{letter}x"] = (full, 16, 0)
            table[f"{letter}l"] = (full, 8, 0)
            table[f"{letter}h"] = (full, 8, 8)
        elif full in pointer:
            stem = pointer[full]
            table[f"e{stem}"] = (full, 32, 0)
            table[stem] = (full, 16, 0)
            table[f"{stem}l"] = (full, 8, 0)
        else:
            table[f"{full}d"] = (full, 32, 0)
            table[f"{full}w"] = (full, 16, 0)
            table[f"{full}b"] = (full, 8, 0)
            table[f"{full}l"] = (full, 8, 0)  # Intel-style alias; GNU as 2.40 rejects it (the parser does too)
    table["rip"] = ("rip", 64, 0)
    return table


REGISTERS: dict[str, tuple[str, int, int]] = _register_table()
"""AT&T register name -> (64-bit family, width in bits, bit offset)."""


@dataclass(frozen=True)
class Register:
    """A general-purpose register operand, e.g. ``Register("r8d")``."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in REGISTERS:
            raise ValueError(f"not a register: {self.name!r}")

    @property
    def family(self) -> str:
        """The 64-bit register this name is a view of.

        >>> Register("ah").family
        'rax'
        """
        return REGISTERS[self.name][0]

    @property
    def width(self) -> int:
        """Width of the view in bits.

        >>> Register("r9w").width
        16
        """
        return REGISTERS[self.name][1]

    @property
    def offset(self) -> int:
        """Bit offset of the view inside its family.

        >>> Register("ah").offset, Register("al").offset
        (8, 0)
        """
        return REGISTERS[self.name][2]

    @property
    def needs_rex(self) -> bool:
        """Byte registers only encodable with a REX prefix (``%sil`` ...)."""
        return self.name in ("spl", "bpl", "sil", "dil") or (
            self.family not in ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "rip")
            and self.width == 8)

    def __str__(self) -> str:
        return f"%{self.name}"


@dataclass(frozen=True)
class Immediate:
    """``$expr``: the expression's value as evaluated (a Python int)."""

    value: int

    def __str__(self) -> str:
        """As GNU as reads it back (signed: the re-emitted assembly,
        :func:`grammar.parser.format_instruction`)."""
        return f"${self.value:#x}" if self.value >= 0 else f"$-{-self.value:#x}"

    def unsigned(self, width: int | None) -> str:
        """As reports show it: the value the instruction uses, unsigned at
        its operation ``width`` in bits (64 when it has none).

        >>> Immediate(-0x7fff010000000000).unsigned(64)
        '$0x8000ff0000000000'
        >>> Immediate(-16).unsigned(8), Immediate(-1).unsigned(32), Immediate(13).unsigned(None)
        ('$0xf0', '$0xffffffff', '$0xd')
        """
        return f"${self.value % (1 << (width or 64)):#x}"


@dataclass(frozen=True)
class Memory:
    """``segment:disp(base, index, scale)`` or ``symbol+disp(%rip)``.

    ``symbol`` is set only for a RIP-relative reference to a label or
    external symbol (its address is not a constant the front end knows);
    ``width`` is the access size in bits after size inference.
    """

    disp: int = 0
    base: Register | None = None
    index: Register | None = None
    scale: int = 1
    segment: str | None = None
    symbol: str | None = None
    width: int | None = None

    def __str__(self) -> str:
        text = f"%{self.segment}:" if self.segment else ""
        if self.symbol is not None:
            text += self.symbol
            if self.disp:
                text += f"{self.disp:+#x}"
        elif self.disp or (self.base is None and self.index is None):
            text += f"{self.disp:#x}" if self.disp >= 0 else f"-{-self.disp:#x}"
        if self.base is not None or self.index is not None:
            text += "("
            if self.base is not None:
                text += str(self.base)
            if self.index is not None:
                text += f",{self.index},{self.scale}"
            text += ")"
        return text


@dataclass(frozen=True)
class Target:
    """A direct branch/call target: a (resolved) label or external symbol.

    ``relocation`` is a GNU-as symbol modifier such as ``PLT`` (``call
    foo@PLT`` in compiler output): it changes the relocation, not where the
    branch goes.
    """

    label: str
    relocation: str = ""

    def __str__(self) -> str:
        return f"{self.label}@{self.relocation}" if self.relocation else self.label


@dataclass(frozen=True)
class Indirect:
    """``*operand`` of an indirect ``jmp``/``call`` (parsed, never modelled)."""

    operand: Union[Register, Memory]

    def __str__(self) -> str:
        return f"*{self.operand}"


Operand = Union[Register, Immediate, Memory, Target, Indirect]


@dataclass(frozen=True)
class Instruction:
    """One machine instruction, operands in AT&T order."""

    mnemonic: str
    base: str
    operands: tuple[Operand, ...]
    origin: Origin
    width: int | None = None
    """Operation size in bits (from the suffix or inferred), ``None`` where
    the instruction has no operation size (``ret``, ``jmp``, ``nop``...)."""
    prefixes: tuple[str, ...] = ()

    def __str__(self) -> str:
        """As reports show it: the mnemonic as written, immediates unsigned
        (:meth:`Immediate.unsigned`)."""
        ops = ", ".join(op.unsigned(self.width) if isinstance(op, Immediate) else str(op) for op in self.operands)
        head = " ".join(self.prefixes + (self.mnemonic,))
        return f"{head} {ops}" if ops else head


@dataclass(frozen=True)
class Label:
    """A label definition; numeric local labels carry their unique name."""

    name: str
    origin: Origin


Item = Union[Instruction, Label]


@dataclass(frozen=True)
class Function:
    """A function: the items between its start and end markers.

    ``kind`` is ``"function"`` for a C-callable function, ``"code"`` for a
    unit of code that does not follow the C calling convention (the
    kernel's ``SYM_CODE_START`` ... ``SYM_CODE_END``, typed ``STT_NOTYPE``):
    it is run where a path jumps into it, never checked on its own."""

    name: str
    origin: Origin
    section: str
    items: tuple[Item, ...]
    kind: str = "function"

    @property
    def instructions(self) -> tuple[Instruction, ...]:
        return tuple(item for item in self.items if isinstance(item, Instruction))


@dataclass(frozen=True)
class ExtableEntry:
    """A kernel exception-table entry: a fault at ``from_label`` resumes at
    ``to_label``.  ``kind`` is ``"fault"`` for ``_ASM_EXTABLE_FAULT``,
    ``"default"`` for ``_ASM_EXTABLE``, else the type's name or number."""

    from_label: str
    to_label: str
    kind: str
    origin: Origin


@dataclass(frozen=True)
class Program:
    """Everything the model needs from the front end.

    ``labels`` maps every label defined in a code section to
    ``(function name or None, index into that function's items)``;
    ``symbols`` holds the absolute values defined by ``.set``/``.equ``/``=``;
    ``never_returning`` is left to the model's options, not the front end.
    """

    files: tuple[str, ...]
    functions: tuple[Function, ...]
    extable: tuple[ExtableEntry, ...] = ()
    labels: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    symbols: dict[str, int] = field(default_factory=dict)
    globals: frozenset[str] = frozenset()

    @property
    def c_functions(self) -> tuple[Function, ...]:
        """The functions that follow the C calling convention: the ones a check checks."""
        return tuple(fn for fn in self.functions if fn.kind == "function")

    def function(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(name)
