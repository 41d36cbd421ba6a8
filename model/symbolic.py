"""The symbolic interpreter of the IR, over Z3 bit-vectors.

The same IR the concrete interpreter runs, evaluated to Z3 terms, so that
the executor and the prover reason about all entry states at once.
Decisions:

* A state holds the sixteen GPRs as 64-bit terms, the flags as 1-bit terms
  and memory as a :class:`model.memory.Memory`: stores over a Z3 array from
  64-bit addresses to bytes (little-endian, addresses wrap), read over
  write when loaded.  States are immutable by convention: :func:`execute`
  returns a new one.
* :class:`ir.Undefined` becomes ``env.fresh(width, reason)``: a new
  unconstrained variable at every evaluation, so nothing can depend on the
  value the SDM leaves undefined.
* ``Symbol`` and ``ReturnAddress`` come from the environment.
* Every Z3 term is built through :mod:`model.bv`; one evaluator per IR node
  class (``@evaluates``) and one writer per effect class (``@applies``),
  checked complete by a test.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import z3

from grammar.ast import GPR64
from grammar.caches import CACHES
from model import bv, ir
from model.abi import FLAGS
from model.memory import Memory, Region
from model.registry import Registry


@dataclass(frozen=True)
class SymbolicState:
    """Registers (64-bit terms), flags (1-bit terms), memory (a :class:`Memory`)."""

    regs: Mapping[str, z3.BitVecRef]
    flags: Mapping[str, z3.BitVecRef]
    memory: Memory

    @classmethod
    def fresh(cls, prefix: str, regions: tuple[Region, ...] = (), exclusive_frame: bool = False
              ) -> "SymbolicState":
        """A fully symbolic state: every register, flag and memory byte a
        variable named after ``prefix`` (``entry_rax``, ``entry_cf``,
        ``entry_mem``); ``regions`` and ``exclusive_frame`` as
        :class:`Memory` takes them.  (The variables of a prefix are made
        once: Z3 would make the same terms again.)"""
        key = (id(z3.main_ctx()), prefix)
        if key not in _VARIABLES:
            _VARIABLES[key] = ({name: bv.variable(f"{prefix}_{name}", 64) for name in GPR64},
                               {name: bv.variable(f"{prefix}_{name}", 1) for name in FLAGS},
                               z3.Array(f"{prefix}_mem", z3.BitVecSort(64), z3.BitVecSort(8)))
        regs, flags, array = _VARIABLES[key]
        return cls(dict(regs), dict(flags), Memory.of_array(array, regions, exclusive_frame))

    def load(self, address: z3.BitVecRef, size: int) -> z3.BitVecRef:
        """``size`` bytes at ``address``, little-endian."""
        return self.memory.load(address, size)


_VARIABLES = CACHES.cache("state variables", 1_000)
"""(Z3 context id, prefix) -> the registers, flags and memory array of
:meth:`SymbolicState.fresh`."""


class SymbolicEnv:
    """A plain environment: numbered fresh variables, one variable per
    symbol name (or the given terms), a symbolic return address."""

    def __init__(self, prefix: str = "undef", symbols: Mapping[str, z3.BitVecRef] | None = None,
                 return_address: z3.BitVecRef | None = None):
        self._prefix = prefix
        self._counter = itertools.count()
        self._symbols = dict(symbols or {})
        self._return_address = return_address

    def fresh(self, width: int, reason: str) -> z3.BitVecRef:
        tag = re.sub(r"\W+", "_", reason).strip("_")
        return bv.variable(f"{self._prefix}{next(self._counter)}_{tag}", width)

    def symbol(self, name: str) -> z3.BitVecRef:
        if name not in self._symbols:
            self._symbols[name] = bv.variable(f"symbol_{name}", 64)
        return self._symbols[name]

    def return_address(self) -> z3.BitVecRef:
        if self._return_address is None:
            self._return_address = bv.variable("return_address", 64)
        return self._return_address


# --- operators ---------------------------------------------------------------

BINARY: dict[ir.BinOp, Callable[[z3.BitVecRef, z3.BitVecRef], z3.BitVecRef]] = {
    ir.BinOp.ADD: bv.add,
    ir.BinOp.SUB: bv.sub,
    ir.BinOp.MUL: bv.mul,
    ir.BinOp.AND: bv.bitand,
    ir.BinOp.OR: bv.bitor,
    ir.BinOp.XOR: bv.bitxor,
    ir.BinOp.SHL: bv.shl,
    ir.BinOp.LSHR: bv.lshr,
    ir.BinOp.ASHR: bv.ashr,
    ir.BinOp.ROL: bv.rol,
    ir.BinOp.ROR: bv.ror,
    ir.BinOp.EQ: lambda a, b: bv.from_bool(bv.eq(a, b)),
    ir.BinOp.ULT: lambda a, b: bv.from_bool(bv.ult(a, b)),
    ir.BinOp.SLT: lambda a, b: bv.from_bool(bv.slt(a, b)),
}

UNARY: dict[ir.UnOp, Callable[[z3.BitVecRef], z3.BitVecRef]] = {
    ir.UnOp.NOT: lambda a: ~a,
    ir.UnOp.NEG: lambda a: -a,
}


# --- evaluation ----------------------------------------------------------------

EVALUATORS = Registry("symbolic evaluators")
"""IR expression type -> its evaluator ``(evaluation, expr) -> z3.BitVecRef``
(``@evaluates(ir.Const)``)."""
evaluates = EVALUATORS.register


class Evaluation:
    """Evaluation in one state; a node object shared by several effects
    (the lifter reuses a result in several flags) is evaluated once, and
    so is one the caller evaluates again (a step's addresses and control,
    after :func:`run_effects`)."""

    def __init__(self, state: SymbolicState, env: SymbolicEnv):
        self.state = state
        self.env = env
        self._cache: dict[int, z3.BitVecRef] = {}

    def value(self, expr: ir.Expr) -> z3.BitVecRef:
        key = id(expr)
        if key not in self._cache:
            self._cache[key] = EVALUATORS[type(expr)](self, expr)
        return self._cache[key]


@evaluates(ir.Const)
def _const(ev: Evaluation, node: ir.Const) -> z3.BitVecRef:
    return bv.const(node.value, node.width)


@evaluates(ir.Reg)
def _reg(ev: Evaluation, node: ir.Reg) -> z3.BitVecRef:
    return ev.state.regs[node.name]


@evaluates(ir.Flag)
def _flag(ev: Evaluation, node: ir.Flag) -> z3.BitVecRef:
    return ev.state.flags[node.name]


@evaluates(ir.Load)
def _load(ev: Evaluation, node: ir.Load) -> z3.BitVecRef:
    return ev.state.load(ev.value(node.address), node.width // 8)


@evaluates(ir.Unary)
def _unary(ev: Evaluation, node: ir.Unary) -> z3.BitVecRef:
    return UNARY[node.op](ev.value(node.operand))


@evaluates(ir.Binary)
def _binary(ev: Evaluation, node: ir.Binary) -> z3.BitVecRef:
    return BINARY[node.op](ev.value(node.left), ev.value(node.right))


@evaluates(ir.Extract)
def _extract(ev: Evaluation, node: ir.Extract) -> z3.BitVecRef:
    return bv.extract(node.high, node.low, ev.value(node.operand))


@evaluates(ir.ZeroExt)
def _zero_ext(ev: Evaluation, node: ir.ZeroExt) -> z3.BitVecRef:
    return bv.zext_to(node.width, ev.value(node.operand))


@evaluates(ir.SignExt)
def _sign_ext(ev: Evaluation, node: ir.SignExt) -> z3.BitVecRef:
    return bv.sext_to(node.width, ev.value(node.operand))


@evaluates(ir.Concat)
def _concat(ev: Evaluation, node: ir.Concat) -> z3.BitVecRef:
    return bv.concat(ev.value(node.high), ev.value(node.low))


@evaluates(ir.Ite)
def _ite(ev: Evaluation, node: ir.Ite) -> z3.BitVecRef:
    return bv.ite(bv.to_bool(ev.value(node.condition)), ev.value(node.then),
                  ev.value(node.otherwise))


@evaluates(ir.Undefined)
def _undefined(ev: Evaluation, node: ir.Undefined) -> z3.BitVecRef:
    return ev.env.fresh(node.width, node.reason)


@evaluates(ir.Symbol)
def _symbol(ev: Evaluation, node: ir.Symbol) -> z3.BitVecRef:
    return ev.env.symbol(node.name)


@evaluates(ir.ReturnAddress)
def _return_address(ev: Evaluation, node: ir.ReturnAddress) -> z3.BitVecRef:
    return ev.env.return_address()


def evaluate(expr: ir.Expr, state: SymbolicState, env: SymbolicEnv) -> z3.BitVecRef:
    """The Z3 term of ``expr`` in ``state``."""
    return Evaluation(state, env).value(expr)


# --- effects -----------------------------------------------------------------------

class _Writes:
    """The new state being built by one step."""

    def __init__(self, state: SymbolicState):
        self.regs = dict(state.regs)
        self.flags = dict(state.flags)
        self.memory = state.memory


APPLIERS = Registry("symbolic appliers")
"""IR effect type -> its writer ``(ev, effect, new: _Writes) -> None``
(``@applies(ir.SetReg)``): it evaluates in the old state (``ev``) and
writes into ``new``."""
applies = APPLIERS.register


@applies(ir.SetReg)
def _set_reg(ev: Evaluation, effect: ir.SetReg, new: _Writes) -> None:
    new.regs[effect.name] = ev.value(effect.value)


@applies(ir.SetFlag)
def _set_flag(ev: Evaluation, effect: ir.SetFlag, new: _Writes) -> None:
    new.flags[effect.name] = ev.value(effect.value)


@applies(ir.Store)
def _store(ev: Evaluation, effect: ir.Store, new: _Writes) -> None:
    new.memory = new.memory.store(ev.value(effect.address), ev.value(effect.value))


def execute(step: ir.Step, state: SymbolicState, env: SymbolicEnv) -> SymbolicState:
    """The state after ``step``'s effects, evaluated in parallel in ``state``
    (its control is the caller's)."""
    return run_effects(step, Evaluation(state, env))


def run_effects(step: ir.Step, ev: Evaluation) -> SymbolicState:
    """:func:`execute` in the state of ``ev``, whose values the caller reads too."""
    new = _Writes(ev.state)
    for effect in step.effects:
        APPLIERS[type(effect)](ev, effect, new)
    return SymbolicState(new.regs, new.flags, new.memory)
