"""The intermediate representation: immutable, width-checked nodes.

An instruction lifts to one :class:`Step`: a *parallel* assignment (every
expression is read in the state before the instruction, then every effect is
written) followed by at most one control transfer.  So ``xchg`` and ``pop``
need no temporaries, and the interpreters never see partial states.

Decisions recorded here:

* Expressions are bit-vectors of a fixed width in bits; a flag is width 1.
  Constructors check widths and raise :class:`WidthError` on a mismatch.
* Registers are read and written whole (64 bits); the lifter composes the
  sub-register views (zero-extension of 32-bit writes, merge of 8/16-bit
  writes, ``%ah``) with ``Extract``/``Concat``/``ZeroExt`` in one helper.
* A value the architecture leaves undefined is :class:`Undefined`: each
  evaluation is a fresh unconstrained value (symbolically a new variable;
  concretely the interpreter reports it as undefined, never guesses).
* ``Symbol`` is the address of a label or external symbol, ``ReturnAddress``
  the address of the instruction after a ``call``; both are supplied by the
  interpreter's environment.
* Memory is byte-addressed and little-endian; ``Load``/``Store`` widths are
  multiples of 8.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union


class WidthError(ValueError):
    """An IR node built from operands of the wrong widths."""


class UnOp(enum.Enum):
    NOT = "~"
    NEG = "-"


class BinOp(enum.Enum):
    """Binary operators; comparisons yield width 1, the rest the operand width.

    Shift and rotate amounts are of the operand width and taken modulo
    nothing: the lifter masks counts as the architecture does.  (A shift by
    the width or more gives 0, or the sign for ``ASHR``; a rotation is by
    the amount modulo the width, which is what rotating means.)
    """

    ADD = "+"
    SUB = "-"
    MUL = "*"
    AND = "&"
    OR = "|"
    XOR = "^"
    SHL = "<<"
    LSHR = ">>u"
    ASHR = ">>s"
    ROL = "rol"
    ROR = "ror"
    EQ = "=="
    ULT = "<u"
    SLT = "<s"

    @property
    def is_comparison(self) -> bool:
        return self in (BinOp.EQ, BinOp.ULT, BinOp.SLT)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WidthError(message)


@dataclass(frozen=True)
class Const:
    value: int
    width: int

    def __post_init__(self) -> None:
        _check(self.width > 0, f"constant of width {self.width}")
        object.__setattr__(self, "value", self.value & ((1 << self.width) - 1))


@dataclass(frozen=True)
class Reg:
    """A whole 64-bit general-purpose register (``rax`` ... ``r15``)."""

    name: str
    width: int = 64

    def __post_init__(self) -> None:
        _check(self.width == 64, "registers are read whole (64 bits)")


@dataclass(frozen=True)
class Flag:
    """One RFLAGS bit (``cf pf af zf sf of df if``)."""

    name: str
    width: int = 1

    def __post_init__(self) -> None:
        _check(self.width == 1, "a flag is one bit")


@dataclass(frozen=True)
class Load:
    address: "Expr"
    width: int

    def __post_init__(self) -> None:
        _check(self.address.width == 64, "addresses are 64 bits")
        _check(self.width % 8 == 0 and self.width > 0, f"load of {self.width} bits")


@dataclass(frozen=True)
class Unary:
    op: UnOp
    operand: "Expr"

    @property
    def width(self) -> int:
        return self.operand.width


@dataclass(frozen=True)
class Binary:
    op: BinOp
    left: "Expr"
    right: "Expr"

    def __post_init__(self) -> None:
        _check(self.left.width == self.right.width,
               f"{self.op.name} of widths {self.left.width} and {self.right.width}")

    @property
    def width(self) -> int:
        return 1 if self.op.is_comparison else self.left.width


@dataclass(frozen=True)
class Extract:
    """Bits ``high`` down to ``low`` (inclusive) of ``operand``."""

    high: int
    low: int
    operand: "Expr"

    def __post_init__(self) -> None:
        _check(0 <= self.low <= self.high < self.operand.width,
               f"extract [{self.high}:{self.low}] of width {self.operand.width}")

    @property
    def width(self) -> int:
        return self.high - self.low + 1


@dataclass(frozen=True)
class ZeroExt:
    width: int
    operand: "Expr"

    def __post_init__(self) -> None:
        _check(self.width >= self.operand.width, "zero-extension narrows")


@dataclass(frozen=True)
class SignExt:
    width: int
    operand: "Expr"

    def __post_init__(self) -> None:
        _check(self.width >= self.operand.width, "sign-extension narrows")


@dataclass(frozen=True)
class Concat:
    """``high`` bits above ``low`` bits."""

    high: "Expr"
    low: "Expr"

    @property
    def width(self) -> int:
        return self.high.width + self.low.width


@dataclass(frozen=True)
class Ite:
    condition: "Expr"
    then: "Expr"
    otherwise: "Expr"

    def __post_init__(self) -> None:
        _check(self.condition.width == 1, "condition must be one bit")
        _check(self.then.width == self.otherwise.width, "ite arms differ in width")

    @property
    def width(self) -> int:
        return self.then.width


@dataclass(frozen=True)
class Undefined:
    """A value the SDM leaves undefined: fresh and unconstrained each time."""

    width: int
    reason: str


@dataclass(frozen=True)
class Symbol:
    """The (unknown, fixed) address of a label or external symbol."""

    name: str
    width: int = 64


@dataclass(frozen=True)
class ReturnAddress:
    """The address of the instruction after the ``call`` being executed."""

    width: int = 64


Expr = Union[Const, Reg, Flag, Load, Unary, Binary, Extract, ZeroExt, SignExt,
             Concat, Ite, Undefined, Symbol, ReturnAddress]


# --- effects (a parallel assignment) --------------------------------------

@dataclass(frozen=True)
class SetReg:
    name: str
    value: Expr

    def __post_init__(self) -> None:
        _check(self.value.width == 64, f"register {self.name} written with {self.value.width} bits")


@dataclass(frozen=True)
class SetFlag:
    name: str
    value: Expr

    def __post_init__(self) -> None:
        _check(self.value.width == 1, f"flag {self.name} written with {self.value.width} bits")


@dataclass(frozen=True)
class Store:
    address: Expr
    value: Expr

    def __post_init__(self) -> None:
        _check(self.address.width == 64, "addresses are 64 bits")
        _check(self.value.width % 8 == 0, f"store of {self.value.width} bits")


Effect = Union[SetReg, SetFlag, Store]


# --- control transfers -----------------------------------------------------

@dataclass(frozen=True)
class Jump:
    target: str


@dataclass(frozen=True)
class Branch:
    """Go to ``target`` if ``condition`` (one bit) is 1, else fall through."""

    condition: Expr
    target: str

    def __post_init__(self) -> None:
        _check(self.condition.width == 1, "branch condition must be one bit")


@dataclass(frozen=True)
class Call:
    """Transfer to ``target``; the lifter's effects already pushed the
    return address."""

    target: str


@dataclass(frozen=True)
class Return:
    """Transfer to ``address`` (read before the effects popped it)."""

    address: Expr


@dataclass(frozen=True)
class Trap:
    """An instruction that raises an exception: ``int3`` (#BP), ``ud2`` (#UD)."""

    kind: str
    vector: int


@dataclass(frozen=True)
class TdxInstruction:
    """``seamcall`` or ``tdcall``: the executor's TDX-module model decides."""

    kind: str


Control = Union[Jump, Branch, Call, Return, Trap, TdxInstruction]


@dataclass(frozen=True)
class Step:
    """The IR of one instruction: parallel effects, then optional control."""

    effects: tuple[Effect, ...]
    control: Control | None = None
