"""The x86-64 lifter: one parsed AT&T instruction -> one IR :class:`ir.Step`.

What it decides, and why:

* One semantic function per mnemonic, registered with ``@semantics(base,
  ...)`` under the parser's normalised ``base`` names; there is no catch-all.
  A base without semantics, an operand form not modelled here (indirect
  branch, segment override, 32-bit addressing, RIP-relative without a
  symbol, a prefix) raises :class:`UnsupportedInstruction` naming the
  instruction and where it came from: nothing is ever skipped silently.
* Each instruction is a *parallel* assignment: every operand is read in the
  state before the instruction (``Reg``, ``Flag``, ``Load`` nodes), then all
  effects are written.  :class:`Lifting` collects them; writes to parts of the
  same register within one instruction (``xchg %al, %ah``) compose in order.
* Sub-registers follow the architecture in the one register-write helper,
  :func:`write_register`: 32-bit writes zero bits 63..32, 8/16-bit writes
  keep the other bits, ``%ah``-style registers are bits 15..8.
* Flags CF PF AF ZF SF OF are computed as the Intel SDM defines them for
  each instruction, by helpers named after flag and family (``cf_add``,
  ``of_sub``, ...).  A flag the SDM leaves undefined is ``ir.Undefined`` (a
  fresh value), never a guess; a flag the SDM says is unaffected is simply
  not written.  Shift/rotate counts are masked to 5 bits (6 for 64-bit
  operands); a masked count of 0 leaves every flag unchanged, which for a
  ``%cl`` count is an ``Ite`` on the count.
* ``call T``: ``rsp := rsp-8``, ``[rsp-8] := ReturnAddress()``, control
  ``Call(T)``; ``ret``: ``rsp := rsp+8``, control ``Return([rsp])``;
  ``tdcall``/``seamcall``: no effects, control ``TdxInstruction``;
  ``int3``/``ud2``: control ``Trap``; ``cld``/``std`` write DF and
  ``cli``/``sti`` IF (in user mode the CPU faults on the latter two; the
  native harness plays the kernel there).
"""
from __future__ import annotations

from typing import Callable, NoReturn

from grammar import ast
from grammar.caches import CACHES
from grammar.source import SourceError
from model import ir
from model.ir import BinOp, UnOp
from model.registry import Registry


class UnsupportedInstruction(SourceError):
    """An instruction (or operand form) outside the modelled subset."""


# --- registry ----------------------------------------------------------------

_SEMANTICS = Registry("semantic functions")
"""Mnemonic base -> its semantics ``(lifting: Lifting) -> ir.Step``
(``@semantics("add", "sub")``)."""
semantics = _SEMANTICS.register


_LIFTED = CACHES.cache("lifted steps", 20_000)
"""Instruction -> its IR step: every row of every configuration lifts the
same instructions, and the parent's contract choice lifts them before the
workers fork (IR nodes are immutable, so one step serves every reader)."""


def lift(instr: ast.Instruction) -> ir.Step:
    """The IR step of ``instr``; :class:`UnsupportedInstruction` if not modelled."""
    step = _LIFTED.get(instr)
    if step is None:
        step = _LIFTED[instr] = _lift(instr)
    return step


def _lift(instr: ast.Instruction) -> ir.Step:
    if instr.base in UNSUPPORTED:
        raise UnsupportedInstruction(
            f"unsupported instruction '{instr}' ({UNSUPPORTED[instr.base]})", instr.origin)
    function = _SEMANTICS.get(instr.base)
    if function is None:
        raise UnsupportedInstruction(
            f"unsupported instruction '{instr}' (no semantics for '{instr.base}')", instr.origin)
    lifting = Lifting(instr)
    if instr.prefixes:
        lifting.unsupported(f"prefix {' '.join(instr.prefixes)!r}")
    return function(lifting)


# --- IR building blocks ------------------------------------------------------

def const(value: int, width: int) -> ir.Const:
    return ir.Const(value, width)


def binary(op: BinOp, left: ir.Expr, right: ir.Expr) -> ir.Binary:
    return ir.Binary(op, left, right)


def bit(value: ir.Expr, index: int) -> ir.Expr:
    return ir.Extract(index, index, value)


def msb(value: ir.Expr) -> ir.Expr:
    return bit(value, value.width - 1)


def lsb(value: ir.Expr) -> ir.Expr:
    return bit(value, 0)


def negate(value: ir.Expr) -> ir.Expr:
    return ir.Unary(UnOp.NOT, value)


def ite(condition: ir.Expr, then: ir.Expr, otherwise: ir.Expr) -> ir.Expr:
    """``Ite``, decided at lift time when the condition is a constant
    (an immediate shift count)."""
    if isinstance(condition, ir.Const):
        return then if condition.value else otherwise
    return ir.Ite(condition, then, otherwise)


def equals(value: ir.Expr, number: int) -> ir.Expr:
    """``value == number``, folded when ``value`` is a constant."""
    if isinstance(value, ir.Const):
        return const(int(value.value == number), 1)
    return binary(BinOp.EQ, value, const(number, value.width))


def truncate(value: ir.Expr, width: int) -> ir.Expr:
    return value if value.width == width else ir.Extract(width - 1, 0, value)


def flag(name: str) -> ir.Flag:
    return ir.Flag(name)


# --- flags per the SDM, named after flag and family -----------------------------

def cf_add(a: ir.Expr, b: ir.Expr, result: ir.Expr) -> ir.Expr:
    """Carry out of ``a + b``: the sum wrapped below ``a``.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> a, b = const(0xF0, 8), const(0x20, 8)
    >>> value(cf_add(a, b, binary(BinOp.ADD, a, b)))
    1
    """
    return binary(BinOp.ULT, result, a)


def cf_adc(a: ir.Expr, b: ir.Expr, carry: ir.Expr) -> ir.Expr:
    """Carry out of ``a + b + carry``: bit ``width`` of the widened sum.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> value(cf_adc(const(0xFF, 8), const(0, 8), const(1, 1)))
    1
    """
    wide = a.width + 1
    total = binary(BinOp.ADD, binary(BinOp.ADD, ir.ZeroExt(wide, a), ir.ZeroExt(wide, b)),
                   ir.ZeroExt(wide, carry))
    return bit(total, a.width)


def cf_sub(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    """Borrow of ``a - b``."""
    return binary(BinOp.ULT, a, b)


def cf_sbb(a: ir.Expr, b: ir.Expr, borrow: ir.Expr) -> ir.Expr:
    """Borrow of ``a - (b + borrow)``, compared one bit wider.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> value(cf_sbb(const(5, 8), const(0xFF, 8), const(1, 1)))
    1
    """
    wide = a.width + 1
    return binary(BinOp.ULT, ir.ZeroExt(wide, a),
                  binary(BinOp.ADD, ir.ZeroExt(wide, b), ir.ZeroExt(wide, borrow)))


def of_add(a: ir.Expr, b: ir.Expr, result: ir.Expr) -> ir.Expr:
    """Signed overflow of an addition: the result's sign differs from both operands'.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> a, b = const(0x7F, 8), const(1, 8)
    >>> value(of_add(a, b, binary(BinOp.ADD, a, b)))
    1
    """
    return msb(binary(BinOp.AND, binary(BinOp.XOR, a, result), binary(BinOp.XOR, b, result)))


def of_sub(a: ir.Expr, b: ir.Expr, result: ir.Expr) -> ir.Expr:
    """Signed overflow of a subtraction: operands' signs differ and the result's
    sign differs from ``a``'s.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> a, b = const(0x80, 8), const(1, 8)
    >>> value(of_sub(a, b, binary(BinOp.SUB, a, b)))
    1
    """
    return msb(binary(BinOp.AND, binary(BinOp.XOR, a, b), binary(BinOp.XOR, a, result)))


def af_arith(a: ir.Expr, b: ir.Expr, result: ir.Expr) -> ir.Expr:
    """Carry or borrow out of bit 3 (add and subtract families alike).

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> a, b = const(0x0F, 8), const(1, 8)
    >>> value(af_arith(a, b, binary(BinOp.ADD, a, b))), value(af_arith(a, b, binary(BinOp.SUB, a, b)))
    (1, 0)
    """
    return bit(binary(BinOp.XOR, binary(BinOp.XOR, a, b), result), 4)


def zf_result(result: ir.Expr) -> ir.Expr:
    return equals(result, 0)


def sf_result(result: ir.Expr) -> ir.Expr:
    return msb(result)


def pf_result(result: ir.Expr) -> ir.Expr:
    """1 when the low byte of ``result`` has an even number of set bits.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState.zero(), ConcreteEnv())
    >>> value(pf_result(const(0x103, 16))), value(pf_result(const(0x07, 16)))
    (1, 0)
    """
    parity = bit(result, 0)
    for index in range(1, 8):
        parity = binary(BinOp.XOR, parity, bit(result, index))
    return negate(parity)


def result_flags(result: ir.Expr) -> dict[str, ir.Expr]:
    """ZF, SF and PF: set from the result by every arithmetic and logic op."""
    return {"zf": zf_result(result), "sf": sf_result(result), "pf": pf_result(result)}


def undefined(name: str, why: str) -> ir.Undefined:
    return ir.Undefined(1, f"{name} {why}")


# --- condition codes ----------------------------------------------------------

def _signed_less() -> ir.Expr:
    return binary(BinOp.XOR, flag("sf"), flag("of"))


_CONDITIONS: dict[str, Callable[[], ir.Expr]] = {
    "o": lambda: flag("of"),
    "b": lambda: flag("cf"),
    "e": lambda: flag("zf"),
    "be": lambda: binary(BinOp.OR, flag("cf"), flag("zf")),
    "s": lambda: flag("sf"),
    "p": lambda: flag("pf"),
    "l": _signed_less,
    "le": lambda: binary(BinOp.OR, flag("zf"), _signed_less()),
}
"""The eight positive x86 condition codes, as functions of the flags."""

_NEGATIONS: dict[str, str] = {
    "no": "o", "ae": "b", "ne": "e", "a": "be", "ns": "s", "np": "p", "ge": "l", "g": "le"}
"""The other eight: each the negation of a positive one."""

CONDITION_CODES: tuple[str, ...] = tuple(_CONDITIONS) + tuple(_NEGATIONS)
"""The canonical condition spellings (the parser maps every alias, ``jz``,
``cmovnae``, ``setpo``..., to one of these)."""


def condition(code: str) -> ir.Expr:
    """The one-bit condition ``code`` (canonical spelling) over the flags.

    >>> from model.printer import text
    >>> text(condition("a")), text(condition("l"))
    ('~(cf | zf)', '(sf ^ of)')
    """
    if code in _NEGATIONS:
        return negate(_CONDITIONS[_NEGATIONS[code]]())
    return _CONDITIONS[code]()


# --- one instruction being lifted ----------------------------------------------

def read_register(register: ast.Register) -> ir.Expr:
    """The architectural view of ``register`` (``%eax``, ``%ah``, ...)."""
    whole = ir.Reg(register.family)
    if register.width == 64:
        return whole
    return ir.Extract(register.offset + register.width - 1, register.offset, whole)


def write_register(register: ast.Register, value: ir.Expr, current: ir.Expr) -> ir.Expr:
    """The new 64-bit value of ``register``'s family after writing ``value``
    to ``register``, when the family held ``current``.

    The one place for the sub-register rules: 32-bit writes zero-extend,
    16/8-bit writes merge, ``%ah``-style writes replace bits 15..8.

    >>> from model.concrete import evaluate, ConcreteState, ConcreteEnv
    >>> value = lambda e: evaluate(e, ConcreteState({'rax': 0x1122334455667788}, {}), ConcreteEnv())
    >>> hex(value(write_register(ast.Register("ah"), const(0xAB, 8), ir.Reg("rax"))))
    '0x112233445566ab88'
    >>> hex(value(write_register(ast.Register("eax"), const(1, 32), ir.Reg("rax"))))
    '0x1'
    """
    if value.width != register.width:
        raise ir.WidthError(f"%{register.name} written with {value.width} bits")
    if register.width == 64:
        return value
    if register.width == 32:
        return ir.ZeroExt(64, value)
    low = register.offset
    high = low + register.width
    merged = ir.Concat(ir.Extract(63, high, current), value)
    if low:
        merged = ir.Concat(merged, ir.Extract(low - 1, 0, current))
    return merged


class Lifting:
    """The instruction being lifted and the effects collected so far."""

    def __init__(self, instr: ast.Instruction):
        self.instr = instr
        self._registers: dict[str, ir.Expr] = {}
        self._flags: dict[str, ir.Expr] = {}
        self._stores: list[ir.Store] = []

    # errors
    def unsupported(self, why: str) -> NoReturn:
        raise UnsupportedInstruction(f"unsupported instruction '{self.instr}': {why}",
                                     self.instr.origin)

    # operands
    def operands(self, count: int) -> tuple[ast.Operand, ...]:
        if len(self.instr.operands) != count:
            self.unsupported(f"expected {count} operand(s), got {len(self.instr.operands)}")
        return self.instr.operands

    def width(self, *operands: ast.Operand) -> int:
        """The operation size: the instruction's, else the first sized operand's."""
        if self.instr.width is not None:
            return self.instr.width
        for operand in operands:
            if isinstance(operand, ast.Register):
                return operand.width
            if isinstance(operand, ast.Memory) and operand.width is not None:
                return operand.width
        self.unsupported("operation size unknown")

    def operand_width(self, operand: ast.Operand) -> int:
        if isinstance(operand, ast.Register):
            return operand.width
        if isinstance(operand, ast.Memory) and operand.width is not None:
            return operand.width
        return self.width(operand)

    def address(self, memory: ast.Memory) -> ir.Expr:
        """The effective address of a memory operand (64-bit addressing only)."""
        if memory.segment is not None:
            self.unsupported(f"segment override %{memory.segment}")
        terms: list[ir.Expr] = []
        if memory.base is not None and memory.base.name == "rip":
            if memory.symbol is None:
                self.unsupported("RIP-relative operand without a symbol")
            terms.append(ir.Symbol(memory.symbol))
        else:
            if memory.symbol is not None:
                terms.append(ir.Symbol(memory.symbol))
            if memory.base is not None:
                if memory.base.width != 64:
                    self.unsupported("32-bit addressing")
                terms.append(ir.Reg(memory.base.family))
        if memory.index is not None:
            if memory.index.width != 64 or memory.index.name == "rip":
                self.unsupported(f"index register %{memory.index.name}")
            index: ir.Expr = ir.Reg(memory.index.family)
            if memory.scale != 1:
                index = binary(BinOp.MUL, index, const(memory.scale, 64))
            terms.append(index)
        if memory.disp or not terms:
            terms.append(const(memory.disp, 64))
        address = terms[0]
        for term in terms[1:]:
            address = binary(BinOp.ADD, address, term)
        return address

    def read(self, operand: ast.Operand, width: int | None = None) -> ir.Expr:
        """The value of a source operand (an immediate takes ``width``)."""
        if isinstance(operand, ast.Register):
            if operand.name == "rip":
                self.unsupported("%rip as an operand")
            return read_register(operand)
        if isinstance(operand, ast.Immediate):
            return const(operand.value, width if width is not None else self.width())
        if isinstance(operand, ast.Memory):
            return ir.Load(self.address(operand), self.operand_width(operand))
        self.unsupported(f"operand {operand} is not a value")

    def write(self, operand: ast.Operand, value: ir.Expr) -> None:
        """Write a destination operand (register or memory)."""
        if isinstance(operand, ast.Register) and operand.name != "rip":
            current = self._registers.get(operand.family, ir.Reg(operand.family))
            self._registers[operand.family] = write_register(operand, value, current)
        elif isinstance(operand, ast.Memory):
            self.store(self.address(operand), value)
        else:
            self.unsupported(f"operand {operand} is not writable")

    def set_register(self, name: str, value: ir.Expr) -> None:
        self.write(ast.Register(name), value)

    def store(self, address: ir.Expr, value: ir.Expr) -> None:
        self._stores.append(ir.Store(address, value))

    def set_flags(self, **values: ir.Expr) -> None:
        for name, value in values.items():
            self._flags[name] = value

    def target(self, operand: ast.Operand) -> str:
        if not isinstance(operand, ast.Target):
            self.unsupported("indirect or computed branch target")
        return operand.label

    def step(self, control: ir.Control | None = None) -> ir.Step:
        effects: list[ir.Effect] = [ir.SetReg(name, value) for name, value in self._registers.items()]
        effects += [ir.SetFlag(name, value) for name, value in self._flags.items()]
        effects += self._stores
        return ir.Step(tuple(effects), control)

    # shared shapes
    def source_destination(self) -> tuple[ir.Expr, ir.Expr, ast.Operand, int]:
        """For two-operand ALU forms: (source value, destination value,
        destination operand, width)."""
        source, destination = self.operands(2)
        width = self.width(destination, source)
        return self.read(source, width), self.read(destination, width), destination, width

    def shift_count(self) -> tuple[ir.Expr, ast.Operand, int]:
        """(masked count at the operand width, destination, width) for
        shifts and rotates: ``op dst``, ``op $n, dst`` or ``op %cl, dst``."""
        if len(self.instr.operands) == 1:
            destination = self.instr.operands[0]
            count_operand: ast.Operand = ast.Immediate(1)
        else:
            count_operand, destination = self.operands(2)
        width = self.width(destination)
        mask = 0x3F if width == 64 else 0x1F
        if isinstance(count_operand, ast.Immediate):
            return const(count_operand.value & mask, width), destination, width
        if not (isinstance(count_operand, ast.Register) and count_operand.name == "cl"):
            self.unsupported("shift count must be an immediate or %cl")
        masked = binary(BinOp.AND, read_register(count_operand), const(mask, 8))
        count = masked if width == 8 else ir.ZeroExt(width, masked)
        return count, destination, width


# --- data movement ---------------------------------------------------------

@semantics("mov", "movabs")
def mov(x: Lifting) -> ir.Step:
    source, destination = x.operands(2)
    x.write(destination, x.read(source, x.width(destination, source)))
    return x.step()


@semantics("movzx")
def movzx(x: Lifting) -> ir.Step:
    source, destination = x.operands(2)
    x.write(destination, ir.ZeroExt(x.operand_width(destination), x.read(source)))
    return x.step()


@semantics("movsx", "movsxd")
def movsx(x: Lifting) -> ir.Step:
    source, destination = x.operands(2)
    x.write(destination, ir.SignExt(x.operand_width(destination), x.read(source)))
    return x.step()


@semantics("lea")
def lea(x: Lifting) -> ir.Step:
    source, destination = x.operands(2)
    if not isinstance(source, ast.Memory) or not isinstance(destination, ast.Register):
        x.unsupported("lea needs a memory source and a register destination")
    x.write(destination, truncate(x.address(source), destination.width))
    return x.step()


@semantics("xchg")
def xchg(x: Lifting) -> ir.Step:
    first, second = x.operands(2)
    width = x.width(first, second)
    a, b = x.read(first, width), x.read(second, width)
    x.write(first, b)
    x.write(second, a)
    return x.step()


def _stack_width(x: Lifting, operand: ast.Operand) -> int:
    width = x.instr.width
    if width is None:
        width = operand.width if isinstance(operand, ast.Register) else 64
    if width not in (16, 64):
        x.unsupported(f"{width}-bit stack operation")
    return width


@semantics("push")
def push(x: Lifting) -> ir.Step:
    (source,) = x.operands(1)
    width = _stack_width(x, source)
    slot = binary(BinOp.SUB, ir.Reg("rsp"), const(width // 8, 64))
    x.set_register("rsp", slot)
    x.store(slot, x.read(source, width))
    return x.step()


@semantics("pop")
def pop(x: Lifting) -> ir.Step:
    (destination,) = x.operands(1)
    width = _stack_width(x, destination)
    if isinstance(destination, ast.Memory) and "rsp" in (
            getattr(destination.base, "family", None), getattr(destination.index, "family", None)):
        x.unsupported("pop to a memory operand addressed through %rsp")
    value = ir.Load(ir.Reg("rsp"), width)
    x.set_register("rsp", binary(BinOp.ADD, ir.Reg("rsp"), const(width // 8, 64)))
    x.write(destination, value)  # after the increment: ``pop %rsp`` loads the value
    return x.step()


@semantics(*("cmov" + code for code in CONDITION_CODES))
def cmovcc(x: Lifting) -> ir.Step:
    source, destination = x.operands(2)
    if not isinstance(destination, ast.Register):
        x.unsupported("cmov needs a register destination")
    width = x.width(destination)
    # The destination is written either way: a 32-bit cmov zero-extends even
    # when the condition is false.
    x.write(destination, ir.Ite(condition(x.instr.base[4:]), x.read(source, width),
                                x.read(destination, width)))
    return x.step()


@semantics(*("set" + code for code in CONDITION_CODES))
def setcc(x: Lifting) -> ir.Step:
    (destination,) = x.operands(1)
    if x.operand_width(destination) != 8:
        x.unsupported("setcc writes a byte")
    x.write(destination, ir.ZeroExt(8, condition(x.instr.base[3:])))
    return x.step()


# --- arithmetic ------------------------------------------------------------

@semantics("add")
def add(x: Lifting) -> ir.Step:
    b, a, destination, _ = x.source_destination()
    result = binary(BinOp.ADD, a, b)
    x.write(destination, result)
    x.set_flags(cf=cf_add(a, b, result), of=of_add(a, b, result), af=af_arith(a, b, result),
                **result_flags(result))
    return x.step()


@semantics("adc")
def adc(x: Lifting) -> ir.Step:
    b, a, destination, width = x.source_destination()
    carry = flag("cf")
    result = binary(BinOp.ADD, binary(BinOp.ADD, a, b), ir.ZeroExt(width, carry))
    x.write(destination, result)
    x.set_flags(cf=cf_adc(a, b, carry), of=of_add(a, b, result), af=af_arith(a, b, result),
                **result_flags(result))
    return x.step()


def _subtract(x: Lifting, write: bool) -> ir.Step:
    b, a, destination, _ = x.source_destination()
    result = binary(BinOp.SUB, a, b)
    if write:
        x.write(destination, result)
    x.set_flags(cf=cf_sub(a, b), of=of_sub(a, b, result), af=af_arith(a, b, result),
                **result_flags(result))
    return x.step()


@semantics("sub")
def sub(x: Lifting) -> ir.Step:
    return _subtract(x, write=True)


@semantics("cmp")
def cmp(x: Lifting) -> ir.Step:
    return _subtract(x, write=False)


@semantics("sbb")
def sbb(x: Lifting) -> ir.Step:
    b, a, destination, width = x.source_destination()
    borrow = flag("cf")
    result = binary(BinOp.SUB, binary(BinOp.SUB, a, b), ir.ZeroExt(width, borrow))
    x.write(destination, result)
    x.set_flags(cf=cf_sbb(a, b, borrow), of=of_sub(a, b, result), af=af_arith(a, b, result),
                **result_flags(result))
    return x.step()


@semantics("neg")
def neg(x: Lifting) -> ir.Step:
    (destination,) = x.operands(1)
    width = x.width(destination)
    zero, value = const(0, width), x.read(destination, width)
    result = binary(BinOp.SUB, zero, value)
    x.write(destination, result)
    x.set_flags(cf=negate(equals(value, 0)), of=of_sub(zero, value, result),
                af=af_arith(zero, value, result), **result_flags(result))
    return x.step()


def _step_by_one(x: Lifting, op: BinOp) -> ir.Step:
    """``inc``/``dec``: add/subtract 1, CF unaffected."""
    (destination,) = x.operands(1)
    width = x.width(destination)
    a, one = x.read(destination, width), const(1, width)
    result = binary(op, a, one)
    x.write(destination, result)
    overflow = of_add(a, one, result) if op is BinOp.ADD else of_sub(a, one, result)
    x.set_flags(of=overflow, af=af_arith(a, one, result), **result_flags(result))
    return x.step()


@semantics("inc")
def inc(x: Lifting) -> ir.Step:
    return _step_by_one(x, BinOp.ADD)


@semantics("dec")
def dec(x: Lifting) -> ir.Step:
    return _step_by_one(x, BinOp.SUB)


# --- logic -------------------------------------------------------------------

def _logic(x: Lifting, op: BinOp, write: bool) -> ir.Step:
    b, a, destination, _ = x.source_destination()
    result = binary(op, a, b)
    if write:
        x.write(destination, result)
    x.set_flags(cf=const(0, 1), of=const(0, 1), af=undefined("af", f"after {x.instr.base}"),
                **result_flags(result))
    return x.step()


@semantics("and")
def and_(x: Lifting) -> ir.Step:
    return _logic(x, BinOp.AND, write=True)


@semantics("or")
def or_(x: Lifting) -> ir.Step:
    return _logic(x, BinOp.OR, write=True)


@semantics("xor")
def xor(x: Lifting) -> ir.Step:
    return _logic(x, BinOp.XOR, write=True)


@semantics("test")
def test(x: Lifting) -> ir.Step:
    return _logic(x, BinOp.AND, write=False)


test.__test__ = False  # a semantic function, not a pytest test


@semantics("not")
def not_(x: Lifting) -> ir.Step:
    (destination,) = x.operands(1)
    x.write(destination, negate(x.read(destination, x.width(destination))))
    return x.step()


# --- shifts and rotates -------------------------------------------------------

def _unless_zero_count(count: ir.Expr, **values: ir.Expr) -> dict[str, ir.Expr]:
    """Each flag's new value, or its old value when the masked count is 0."""
    zero = equals(count, 0)
    return {name: ite(zero, flag(name), value) for name, value in values.items()}


def _shift(x: Lifting, op: BinOp) -> ir.Step:
    count, destination, width = x.shift_count()
    value = x.read(destination, width)
    result = binary(op, value, count)
    x.write(destination, result)
    name = x.instr.base
    one = const(1, width)
    if op is BinOp.SHL:
        carry = lsb(binary(BinOp.LSHR, value, binary(BinOp.SUB, const(width, width), count)))
    else:  # the last bit shifted out is bit count-1
        carry = lsb(binary(op, value, binary(BinOp.SUB, count, one)))
    if op is not BinOp.ASHR and width < 32:
        # the SDM leaves CF undefined for SHL/SHR counts >= the operand size
        carry = ite(binary(BinOp.ULT, count, const(width, width)), carry,
                    undefined("cf", f"after {name} by the operand size or more"))
    if op is BinOp.SHL:
        one_bit_overflow = binary(BinOp.XOR, msb(result), carry)
    elif op is BinOp.LSHR:
        one_bit_overflow = msb(value)
    else:
        one_bit_overflow = const(0, 1)
    overflow = ite(equals(count, 1), one_bit_overflow,
                   undefined("of", f"after {name} by more than 1"))
    x.set_flags(**_unless_zero_count(
        count, cf=carry, of=overflow, af=undefined("af", f"after {name}"), **result_flags(result)))
    return x.step()


@semantics("shl", "sal")
def shl(x: Lifting) -> ir.Step:
    return _shift(x, BinOp.SHL)


@semantics("shr")
def shr(x: Lifting) -> ir.Step:
    return _shift(x, BinOp.LSHR)


@semantics("sar")
def sar(x: Lifting) -> ir.Step:
    return _shift(x, BinOp.ASHR)


def _rotate(x: Lifting, op: BinOp) -> ir.Step:
    count, destination, width = x.shift_count()
    result = binary(op, x.read(destination, width), count)
    x.write(destination, result)
    if op is BinOp.ROL:
        carry = lsb(result)
        one_bit_overflow = binary(BinOp.XOR, msb(result), carry)
    else:
        carry = msb(result)
        one_bit_overflow = binary(BinOp.XOR, msb(result), bit(result, width - 2))
    overflow = ite(equals(count, 1), one_bit_overflow,
                   undefined("of", f"after {x.instr.base} by more than 1"))
    x.set_flags(**_unless_zero_count(count, cf=carry, of=overflow))
    return x.step()


@semantics("rol")
def rol(x: Lifting) -> ir.Step:
    return _rotate(x, BinOp.ROL)


@semantics("ror")
def ror(x: Lifting) -> ir.Step:
    return _rotate(x, BinOp.ROR)


@semantics("bt")
def bt(x: Lifting) -> ir.Step:
    offset, base = x.operands(2)
    width = x.width(base)
    if isinstance(base, ast.Memory) and not isinstance(offset, ast.Immediate):
        x.unsupported("bt with a register bit offset into memory (bit-string addressing)")
    if isinstance(offset, ast.Immediate):
        position: ir.Expr = const(offset.value % width, width)
    else:
        position = binary(BinOp.AND, x.read(offset, width), const(width - 1, width))
    carry = lsb(binary(BinOp.LSHR, x.read(base, width), position))
    why = "after bt"
    x.set_flags(cf=carry, of=undefined("of", why), sf=undefined("sf", why),
                af=undefined("af", why), pf=undefined("pf", why))  # ZF unaffected
    return x.step()


# --- control transfer -----------------------------------------------------------

@semantics("jmp")
def jmp(x: Lifting) -> ir.Step:
    (target,) = x.operands(1)
    return x.step(ir.Jump(x.target(target)))


@semantics(*("j" + code for code in CONDITION_CODES))
def jcc(x: Lifting) -> ir.Step:
    (target,) = x.operands(1)
    return x.step(ir.Branch(condition(x.instr.base[1:]), x.target(target)))


@semantics("call")
def call(x: Lifting) -> ir.Step:
    (target,) = x.operands(1)
    label = x.target(target)
    slot = binary(BinOp.SUB, ir.Reg("rsp"), const(8, 64))
    x.set_register("rsp", slot)
    x.store(slot, ir.ReturnAddress())
    return x.step(ir.Call(label))


@semantics("ret")
def ret(x: Lifting) -> ir.Step:
    x.operands(0)
    x.set_register("rsp", binary(BinOp.ADD, ir.Reg("rsp"), const(8, 64)))
    return x.step(ir.Return(ir.Load(ir.Reg("rsp"), 64)))


@semantics("int3")
def int3(x: Lifting) -> ir.Step:
    x.operands(0)
    return x.step(ir.Trap("#BP", 3))


@semantics("ud2")
def ud2(x: Lifting) -> ir.Step:
    x.operands(0)
    return x.step(ir.Trap("#UD", 6))


@semantics("tdcall", "seamcall")
def tdx_instruction(x: Lifting) -> ir.Step:
    x.operands(0)
    return x.step(ir.TdxInstruction(x.instr.base))


# --- no architectural effect we model ---------------------------------------------

@semantics("nop")
def nop(x: Lifting) -> ir.Step:
    """``nop`` and the long forms ``nopl``/``nopw`` with a memory operand
    (which is never accessed)."""
    if x.instr.operands and not isinstance(x.instr.operands[0], (ast.Memory, ast.Register)):
        x.unsupported("nop operand")
    return x.step()


@semantics("endbr64")
def endbr64(x: Lifting) -> ir.Step:
    x.operands(0)
    return x.step()


@semantics("lfence", "mfence", "sfence")
def fence(x: Lifting) -> ir.Step:
    """Ordering only: no effect on a single thread's registers, flags or memory."""
    x.operands(0)
    return x.step()


@semantics("pause")
def pause(x: Lifting) -> ir.Step:
    x.operands(0)
    return x.step()


# --- flag instructions ------------------------------------------------------------

def _set_flag(x: Lifting, name: str, value: int) -> ir.Step:
    x.operands(0)
    x.set_flags(**{name: const(value, 1)})
    return x.step()


@semantics("clc")
def clc(x: Lifting) -> ir.Step:
    return _set_flag(x, "cf", 0)


@semantics("stc")
def stc(x: Lifting) -> ir.Step:
    return _set_flag(x, "cf", 1)


@semantics("cmc")
def cmc(x: Lifting) -> ir.Step:
    x.operands(0)
    x.set_flags(cf=negate(flag("cf")))
    return x.step()


@semantics("cld")
def cld(x: Lifting) -> ir.Step:
    return _set_flag(x, "df", 0)


@semantics("std")
def std(x: Lifting) -> ir.Step:
    return _set_flag(x, "df", 1)


@semantics("cli")
def cli(x: Lifting) -> ir.Step:
    return _set_flag(x, "if", 0)


@semantics("sti")
def sti(x: Lifting) -> ir.Step:
    return _set_flag(x, "if", 1)


SUPPORTED: frozenset[str] = frozenset(_SEMANTICS)
"""Every instruction base with semantics."""

UNSUPPORTED: dict[str, str] = {
    "hlt": "privileged; halts the processor",
    "cpuid": "results depend on the processor model",
}
"""Bases the parser accepts that are deliberately not modelled, and why."""
