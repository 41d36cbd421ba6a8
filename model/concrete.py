"""The concrete interpreter of the IR, over Python integers.

It gives the IR a meaning on one concrete state, so that co-simulation
against the CPU and counterexample replay are cheap.  Decisions:

* Values are unsigned integers of the node's width.  A value the IR marks
  :class:`ir.Undefined` evaluates to ``None`` and ``None`` propagates through
  every operator (except the arm of an ``Ite`` that is not taken): the
  interpreter never guesses an undefined value.  Only flags may become
  undefined; an undefined value written to a register or memory, or used as
  an address, raises :class:`UndefinedValue`.
* Memory is byte-addressed and little-endian; a byte absent from the state
  is asked of ``env.read_missing(address)`` (the default raises
  :class:`MissingMemory`).  Addresses wrap modulo 2**64.
* :func:`execute` applies a step's effects in parallel: all expressions are
  evaluated in the old state, then registers, flags and stores (in order)
  are written to a copy.  Control transfers are left to the caller, which
  evaluates ``Branch.condition``/``Return.address`` with :func:`evaluate`.
* One evaluator per IR node class, registered with ``@evaluates``; a test
  checks that every node class has one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from model import ir
from model.abi import FLAGS
from model.registry import Registry
from grammar.ast import GPR64


class UndefinedValue(ValueError):
    """An undefined value reached a register, memory or an address."""


class MissingMemory(LookupError):
    """A byte was read that the concrete state does not hold."""


class MissingSymbol(LookupError):
    """A symbol or return address the environment does not know."""


def mask(width: int) -> int:
    """The all-ones value of ``width`` bits.

    >>> hex(mask(8))
    '0xff'
    """
    return (1 << width) - 1


def signed(value: int, width: int) -> int:
    """The two's-complement reading of an unsigned ``value``.

    >>> signed(0xff, 8), signed(0x7f, 8)
    (-1, 127)
    """
    return value - (1 << width) if value >> (width - 1) & 1 else value


@dataclass
class ConcreteState:
    """Registers (the 16 GPRs, unsigned 64-bit), flags (``None`` =
    undefined) and memory (byte address -> byte)."""

    regs: dict[str, int]
    flags: dict[str, int | None]
    memory: dict[int, int] = field(default_factory=dict)

    @classmethod
    def zero(cls) -> "ConcreteState":
        """All registers and flags 0, memory empty."""
        return cls({name: 0 for name in GPR64}, {name: 0 for name in FLAGS}, {})

    def read_bytes(self, address: int, size: int, env: "ConcreteEnv") -> int:
        """``size`` bytes at ``address``, little-endian."""
        value = 0
        for offset in reversed(range(size)):
            location = (address + offset) & mask(64)
            byte = self.memory.get(location)
            if byte is None:
                byte = env.read_missing(location)
            value = value << 8 | byte
        return value


class ConcreteEnv:
    """What the state does not hold: symbol addresses, the return address of
    the ``call`` being executed, and memory bytes the state lacks."""

    def __init__(self, symbols: Mapping[str, int] | None = None, return_address: int | None = None,
                 read_missing: Callable[[int], int] | None = None):
        self._symbols = dict(symbols or {})
        self._return_address = return_address
        self._read_missing = read_missing

    def symbol(self, name: str) -> int:
        if name not in self._symbols:
            raise MissingSymbol(f"no address for symbol {name!r}")
        return self._symbols[name]

    def return_address(self) -> int:
        if self._return_address is None:
            raise MissingSymbol("no return address for this call")
        return self._return_address

    def read_missing(self, address: int) -> int:
        if self._read_missing is None:
            raise MissingMemory(f"memory byte {address:#x} is not in the state")
        return self._read_missing(address)


# --- operators ---------------------------------------------------------------

def _shift_left(a: int, b: int, width: int) -> int:
    return (a << b) & mask(width) if b < width else 0


def _shift_right_logical(a: int, b: int, width: int) -> int:
    return a >> b if b < width else 0


def _shift_right_arithmetic(a: int, b: int, width: int) -> int:
    return (signed(a, width) >> min(b, width)) & mask(width)


def _rotate_left(a: int, b: int, width: int) -> int:
    """Rotation is modulo the width.

    >>> hex(_rotate_left(0x81, 9, 8))
    '0x3'
    """
    n = b % width
    return ((a << n) | (a >> (width - n))) & mask(width)


def _rotate_right(a: int, b: int, width: int) -> int:
    return _rotate_left(a, width - b % width, width)


BINARY: dict[ir.BinOp, Callable[[int, int, int], int]] = {
    ir.BinOp.ADD: lambda a, b, w: (a + b) & mask(w),
    ir.BinOp.SUB: lambda a, b, w: (a - b) & mask(w),
    ir.BinOp.MUL: lambda a, b, w: (a * b) & mask(w),
    ir.BinOp.AND: lambda a, b, w: a & b,
    ir.BinOp.OR: lambda a, b, w: a | b,
    ir.BinOp.XOR: lambda a, b, w: a ^ b,
    ir.BinOp.SHL: _shift_left,
    ir.BinOp.LSHR: _shift_right_logical,
    ir.BinOp.ASHR: _shift_right_arithmetic,
    ir.BinOp.ROL: _rotate_left,
    ir.BinOp.ROR: _rotate_right,
    ir.BinOp.EQ: lambda a, b, w: int(a == b),
    ir.BinOp.ULT: lambda a, b, w: int(a < b),
    ir.BinOp.SLT: lambda a, b, w: int(signed(a, w) < signed(b, w)),
}
"""Each binary operator on unsigned operands of width ``w``."""

UNARY: dict[ir.UnOp, Callable[[int, int], int]] = {
    ir.UnOp.NOT: lambda a, w: ~a & mask(w),
    ir.UnOp.NEG: lambda a, w: -a & mask(w),
}


# --- evaluation ----------------------------------------------------------------

EVALUATORS = Registry("concrete evaluators")
"""IR expression type -> its evaluator ``(evaluation, expr) -> int | None``
(``@evaluates(ir.Const)``)."""
evaluates = EVALUATORS.register


class _Evaluation:
    """Evaluation of expressions in one state; shared sub-expressions (the
    lifter reuses a result node in several flags) are evaluated once."""

    def __init__(self, state: ConcreteState, env: ConcreteEnv):
        self.state = state
        self.env = env
        self._cache: dict[int, int | None] = {}

    def known(self, values: Iterable[tuple[ir.Expr, int]]) -> None:
        """Take each of these expressions to have its value (:func:`fold`)."""
        self._cache.update((id(expr), value) for expr, value in values)

    def value(self, expr: ir.Expr) -> int | None:
        key = id(expr)
        if key not in self._cache:
            self._cache[key] = EVALUATORS[type(expr)](self, expr)
        return self._cache[key]

    def defined(self, expr: ir.Expr, role: str) -> int:
        value = self.value(expr)
        if value is None:
            raise UndefinedValue(f"undefined value used as {role}")
        return value


@evaluates(ir.Const)
def _const(ev: _Evaluation, node: ir.Const) -> int:
    return node.value


@evaluates(ir.Reg)
def _reg(ev: _Evaluation, node: ir.Reg) -> int:
    return ev.state.regs[node.name]


@evaluates(ir.Flag)
def _flag(ev: _Evaluation, node: ir.Flag) -> int | None:
    return ev.state.flags[node.name]


@evaluates(ir.Load)
def _load(ev: _Evaluation, node: ir.Load) -> int:
    return ev.state.read_bytes(ev.defined(node.address, "an address"), node.width // 8, ev.env)


@evaluates(ir.Unary)
def _unary(ev: _Evaluation, node: ir.Unary) -> int | None:
    operand = ev.value(node.operand)
    return None if operand is None else UNARY[node.op](operand, node.width)


@evaluates(ir.Binary)
def _binary(ev: _Evaluation, node: ir.Binary) -> int | None:
    left, right = ev.value(node.left), ev.value(node.right)
    if left is None or right is None:
        return None
    return BINARY[node.op](left, right, node.left.width)


@evaluates(ir.Extract)
def _extract(ev: _Evaluation, node: ir.Extract) -> int | None:
    operand = ev.value(node.operand)
    return None if operand is None else operand >> node.low & mask(node.width)


@evaluates(ir.ZeroExt)
def _zero_ext(ev: _Evaluation, node: ir.ZeroExt) -> int | None:
    return ev.value(node.operand)


@evaluates(ir.SignExt)
def _sign_ext(ev: _Evaluation, node: ir.SignExt) -> int | None:
    operand = ev.value(node.operand)
    return None if operand is None else signed(operand, node.operand.width) & mask(node.width)


@evaluates(ir.Concat)
def _concat(ev: _Evaluation, node: ir.Concat) -> int | None:
    high, low = ev.value(node.high), ev.value(node.low)
    if high is None or low is None:
        return None
    return high << node.low.width | low


@evaluates(ir.Ite)
def _ite(ev: _Evaluation, node: ir.Ite) -> int | None:
    condition = ev.value(node.condition)
    if condition is None:
        return None
    return ev.value(node.then if condition else node.otherwise)


@evaluates(ir.Undefined)
def _undefined(ev: _Evaluation, node: ir.Undefined) -> None:
    return None


@evaluates(ir.Symbol)
def _symbol(ev: _Evaluation, node: ir.Symbol) -> int:
    return ev.env.symbol(node.name) & mask(64)


@evaluates(ir.ReturnAddress)
def _return_address(ev: _Evaluation, node: ir.ReturnAddress) -> int:
    return ev.env.return_address() & mask(64)


_NOTHING_READ = ConcreteState.zero()
_NOTHING_KNOWN = ConcreteEnv()
""":func:`fold`'s state and environment, which its evaluations never read
(every operand's value is given; nothing writes a state as it evaluates)."""


def evaluate(expr: ir.Expr, state: ConcreteState, env: ConcreteEnv) -> int | None:
    """The value of ``expr`` in ``state`` (``None`` when undefined)."""
    return _Evaluation(state, env).value(expr)


def fold(expr: ir.Expr, operands: Iterable[tuple[ir.Expr, int]]) -> int | None:
    """The value of ``expr``, an operation on other expressions, when those
    (``operands``: each with its value) have the values given: as
    :func:`evaluate` makes it, without a state to read (the evidence pass
    folds constants thousands of times; it rebuilt each node over constants
    and evaluated it in a fresh zero state).

    >>> x, y = ir.Reg("rax", 64), ir.Reg("rcx", 64)
    >>> fold(ir.Binary(ir.BinOp.SUB, x, y), [(x, 1), (y, 2)]) == 2**64 - 1
    True
    """
    evaluation = _Evaluation(_NOTHING_READ, _NOTHING_KNOWN)
    evaluation.known(operands)
    return evaluation.value(expr)


# --- effects -----------------------------------------------------------------------

APPLIERS = Registry("concrete appliers")
"""IR effect type -> its writer ``(ev, effect, new: ConcreteState) -> None``
(``@applies(ir.SetReg)``): it evaluates in the old state (``ev``) and
writes into the new one."""
applies = APPLIERS.register


@applies(ir.SetReg)
def _set_reg(ev: _Evaluation, effect: ir.SetReg, new: ConcreteState) -> None:
    new.regs[effect.name] = ev.defined(effect.value, f"the value of {effect.name}")


@applies(ir.SetFlag)
def _set_flag(ev: _Evaluation, effect: ir.SetFlag, new: ConcreteState) -> None:
    new.flags[effect.name] = ev.value(effect.value)


@applies(ir.Store)
def _store(ev: _Evaluation, effect: ir.Store, new: ConcreteState) -> None:
    address = ev.defined(effect.address, "an address")
    value = ev.defined(effect.value, "a stored value")
    for offset in range(effect.value.width // 8):
        new.memory[(address + offset) & mask(64)] = value >> (8 * offset) & 0xFF


def execute(step: ir.Step, state: ConcreteState, env: ConcreteEnv) -> ConcreteState:
    """The state after ``step``'s effects (its control is the caller's).

    Every expression is evaluated in ``state``; the writes go to a copy, so
    the effects are a parallel assignment.
    """
    ev = _Evaluation(state, env)
    new = ConcreteState(dict(state.regs), dict(state.flags), dict(state.memory))
    for effect in step.effects:
        APPLIERS[type(effect)](ev, effect, new)
    return new
