"""What a function's code shows about its ABI: a cheap static pass over its IR.

The contract of a wrapper is chosen from what its code does
(:mod:`proofs.abi_choice`), never from how well it fares against a
contract.  This module gathers that evidence with an abstract
interpretation of the lifted IR -- no solver, no paths: one state per
instruction, joined where control flow meets, in a few milliseconds.

The abstract value of a register or memory slot (:class:`Val`) is one of

* a constant (``movl $0xfc00, %ecx``; constants fold with the concrete
  interpreter's own operators, :func:`model.concrete.evaluate`);
* the entry value of a register plus a constant (``rsi + 8``, entry RSP
  minus the bytes pushed): copies, pushes and pops keep it, so that a
  pointer saved on the stack and popped into R12 is still "the caller's
  R9";
* such a pointer "or NULL" (where a path that cleared it joins one that
  did not);
* an opaque value, with what it is (``tag``: a struct field loaded through
  an entry pointer, the Nth stack argument, a TDX output register, an
  external call's result) and every entry value it depends on
  (``sources``).

Where values go is the evidence (:class:`Evidence`): which argument
registers' entry values the code uses and how (as a struct pointer, as an
instruction input moved from another register, in a branch condition, in
RAX at return), which stack arguments it reads, every access through an
entry pointer (base register, offset, size), each TDX instruction with
the abstract RAX and RCX and every register it is handed, the masks
tested against an argument (``testq $TDX_HCALL_ISSUE_STI, %rsi``), what
RAX holds at each return, and the external functions called.

Decisions recorded here:

* An argument register still holding its own entry value at a TDX
  instruction is a *pass-through* (``Evidence.passed``: the legacy
  ``__tdx_module_call`` hands RDX on untouched, but so does a wrapper that
  forgot to load RDX from its struct); every other use is a *use*
  (``Evidence.used``).  The choice treats the second as hard evidence of an
  argument, the first as soft.
* At a TDCALL whose RAX is 0 and RCX a constant, the module is handed and
  may change exactly the registers the bitmap exposes (SPEC section 6).
  At any other TDX instruction it is handed every register but RSP and
  RBP, and it may change RAX, RCX, RDX, R8-R11 and every other register
  that holds a value the wrapper put there for it; a register still
  holding an entry value (the struct pointer in RSI) is assumed kept.
  (A wrapper that relies on that wrongly is refuted by the proof; the
  evidence only has to say what the code is shaped like.)
* ``call`` to a function of the program is followed (its code is part of
  what the caller does), at most :data:`CALL_DEPTH` deep; any other call
  clobbers the caller-saved registers (memory kept, as the executor
  assumes); a call to a never-returning function ends the path.  An
  exception-table entry adds an edge to its fixup, with RAX unknown.
* Memory through the entry RSP and through each entry pointer is tracked
  by (base, offset, size); a store through any other address forgets what
  was stored through pointers (it may alias them), never the stack.
* The pass is bounded: a location reached more than :data:`VISITS` times
  stops being followed and the evidence says it is incomplete.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from grammar import ast
from grammar.source import SourceError
from model import abi, concrete, ir
from model.executor import DEFAULT_NEVER_RETURNING
from model.extable import ExceptionTable
from model.lift import lift

CALL_DEPTH = 4
"""How deep calls to functions of the program are followed."""
VISITS = 24
"""How often one instruction's state may change before the pass gives up on it."""
TDX_KINDS = ("seamcall", "tdcall")


@dataclass(frozen=True)
class Val:
    """An abstract value of ``width`` bits: ``base`` + ``offset`` (``base``
    None: the constant ``offset``), or opaque (``offset`` None) with a
    ``tag`` saying what it is; ``sources``: the entry values it depends on
    (``("reg", name)``, ``("stack", n)``, ``("field", base, offset)``,
    ``("tdx", kind, reg)``)."""

    width: int
    base: str | None = None
    offset: int | None = None
    tag: tuple | None = None
    sources: frozenset = frozenset()

    @property
    def constant(self) -> int | None:
        return self.offset if self.base is None else None

    def is_entry(self, register: str) -> bool:
        """Whether this is exactly the entry value of ``register``."""
        return self.base == register and self.offset == 0 and self.width == 64 and self.tag is None

    def registers(self) -> set[str]:
        """The entry registers this value depends on."""
        return {source[1] for source in self.sources if source[0] == "reg"}


def constant(value: int, width: int = 64) -> Val:
    return Val(width, None, value & ((1 << width) - 1))


def entry(register: str) -> Val:
    return Val(64, register, 0, None, frozenset({("reg", register)}))


def opaque(width: int, tag: tuple | None, *parts) -> Val:
    """An opaque value depending on what ``parts`` (values or source sets) depend on."""
    sources = set()
    for part in parts:
        sources |= part.sources if isinstance(part, Val) else set(part)
    return Val(width, None, None, tag, frozenset(sources))


def _plus(base: str | None, offset: int, width: int) -> Val:
    if base is None:
        return constant(offset, width)
    return Val(width, base, offset & ((1 << width) - 1), None, frozenset({("reg", base)}))


def signed_offset(offset: int) -> int:
    """A 64-bit offset as a signed number.

    >>> signed_offset(2**64 - 8)
    -8
    """
    return offset - (1 << 64) if offset >> 63 else offset


@dataclass(frozen=True)
class Access:
    """A memory access through an entry pointer: ``kind`` read/write,
    ``base`` the entry register, ``offset`` and ``size`` in bytes;
    ``value``: what a write stored (a read's result)."""

    kind: str
    base: str
    offset: int
    size: int
    value: Val


@dataclass(frozen=True)
class TdxUse:
    """One TDX instruction the function executes: its kind, the registers
    it is handed (``registers``: name -> value) and where it is."""

    kind: str
    registers: dict
    origin: object

    @property
    def rax(self) -> Val:
        return self.registers["rax"]

    @property
    def bitmap(self) -> int | None:
        """The TDG.VP.VMCALL exposure bitmap, when RAX is 0 and RCX a constant."""
        if self.kind == "tdcall" and self.rax.constant == abi.TDG_VP_VMCALL:
            return self.registers["rcx"].constant
        return None


@dataclass
class Evidence:
    """What :func:`gather` found in one function (see the module doc)."""

    function: str
    used: dict[str, set[str]] = field(default_factory=dict)
    """Argument register -> how its entry value is used (``pointer``,
    ``input``, ``branch``, ``stored``, ``returned``, ``call``)."""
    passed: set[str] = field(default_factory=set)
    """Argument registers handed to a TDX instruction untouched."""
    stack_arguments: dict[int, int] = field(default_factory=dict)
    """Stack argument number -> the RSP offset (from entry) it was read at."""
    masks: set[tuple[str, int]] = field(default_factory=set)
    """(argument register, mask) of each bit test of an argument's entry value."""
    at: dict[tuple, object] = field(default_factory=dict)
    """What each instruction did, by (site, what): its state changes as the
    pass goes on, and only the last (joined) one counts."""
    calls: set[str] = field(default_factory=set)
    """External functions called (never-returning ones included)."""
    followed: set[str] = field(default_factory=set)
    """Functions of the program whose code was followed through ``call``."""
    complete: bool = True

    def use(self, value: Val, how: str) -> None:
        for register in value.registers():
            if register in abi.ARGUMENT_REGISTERS:
                self.used.setdefault(register, set()).add(how)

    @property
    def arguments(self) -> set[str]:
        """Every argument register whose entry value the code uses or hands on."""
        return set(self.used) | self.passed

    def pointers(self) -> set[str]:
        """The argument registers used as a pointer to memory."""
        return {reg for reg, hows in self.used.items() if "pointer" in hows}

    def record(self, site, what: tuple, fact) -> None:
        self.at[(site,) + what] = fact

    def _facts(self, kind: type) -> list:
        return [fact for fact in self.at.values() if isinstance(fact, kind)]

    @property
    def accesses(self) -> list[Access]:
        """Every access through an entry pointer."""
        return self._facts(Access)

    @property
    def tdx(self) -> list[TdxUse]:
        """Each TDX instruction executed, in the order first reached."""
        return self._facts(TdxUse)

    @property
    def returns(self) -> list[Val]:
        """RAX at each return of the function itself."""
        return [fact for key, fact in self.at.items() if key[1] == "return"]

    def through(self, base: str) -> list[Access]:
        return [access for access in self.accesses if access.base == base]


@dataclass
class _State:
    regs: dict[str, Val]
    flags: dict[str, Val]
    stack: dict[tuple[int, int], Val]
    memory: dict[tuple[str, int, int], Val]

    def copy(self) -> "_State":
        return _State(dict(self.regs), dict(self.flags), dict(self.stack), dict(self.memory))

    def key(self) -> tuple:
        return (tuple(sorted(self.regs.items())), tuple(sorted(self.flags.items())),
                tuple(sorted(self.stack.items())), tuple(sorted(self.memory.items())))


def _entry_state() -> _State:
    return _State({reg: entry(reg) for reg in ast.GPR64},
                  {flag: opaque(1, ("entry flag", flag)) for flag in abi.FLAGS}, {}, {})


def _join_values(a: Val, b: Val) -> Val:
    """``a`` where both paths agree; a pointer on one and NULL on the other
    stays that pointer "or NULL" (the failure path of a wrapper that clears
    its output pointer and joins the completion path); else opaque."""
    if a == b:
        return a
    for pointer, null in ((a, b), (b, a)):
        if pointer.base is not None and pointer.offset is not None and null.constant == 0:
            return Val(pointer.width, pointer.base, pointer.offset, ("or null",), pointer.sources)
    return opaque(a.width, None, a, b)


def _join_maps(a: dict, b: dict) -> dict:
    return {key: value for key, value in a.items() if b.get(key) == value}


def _join(a: _State, b: _State) -> _State:
    regs = {reg: _join_values(a.regs[reg], b.regs[reg]) for reg in a.regs}
    flags = {name: _join_values(a.flags[name], b.flags[name]) for name in a.flags}
    stack = _join_maps(a.stack, b.stack) if regs["rsp"].base == "rsp" else {}
    return _State(regs, flags, stack, _join_maps(a.memory, b.memory))


def _overlaps(offset: int, size: int, other: int, other_size: int) -> bool:
    return offset < other + other_size and other < offset + size


class _Pass:
    """The abstract interpretation of one function (and what it calls)."""

    def __init__(self, program: ast.Program):
        self.program = program
        self.table = ExceptionTable(program)
        self.evidence: Evidence | None = None
        self._steps: dict[tuple[str, int], ir.Step | None] = {}
        self._fresh = itertools.count()
        self._step_values: dict[int, Val] | None = None   # of the step being executed, by node id (value())

    def _step(self, function: str, index: int, instr: ast.Instruction) -> ir.Step | None:
        key = (function, index)
        if key not in self._steps:
            try:
                self._steps[key] = lift(instr)
            except SourceError:
                self._steps[key] = None
        return self._steps[key]

    # --- expressions -------------------------------------------------------------

    def value(self, expr: ir.Expr, state: _State, site) -> Val:
        """The abstract value of ``expr`` in ``state``; within a step
        (:meth:`execute`) each node once, since its effects read the same
        state and share nodes (a flag's expression repeats the result's:
        evaluated again, they were half of the pass's time)."""
        known = self._step_values
        if known is None:
            return self._value(expr, state, site)
        found = known.get(id(expr))
        if found is None:
            found = known[id(expr)] = self._value(expr, state, site)
        return found

    def _value(self, expr: ir.Expr, state: _State, site) -> Val:
        kind = type(expr)
        if kind is ir.Const:
            return constant(expr.value, expr.width)
        if kind is ir.Reg:
            return state.regs[expr.name]
        if kind is ir.Flag:
            return state.flags[expr.name]
        if kind is ir.Load:
            return self.load(self.value(expr.address, state, site), expr.width // 8, state, site)
        if kind in (ir.Undefined, ir.Symbol, ir.ReturnAddress):
            return opaque(expr.width, (kind.__name__, next(self._fresh)))
        operands = _operands(expr)
        parts = [self.value(part, state, site) for part in operands]
        if all(part.constant is not None for part in parts):
            folded = concrete.fold(expr, [(operand, part.constant) for operand, part in zip(operands, parts)])
            if folded is not None:
                return constant(folded, expr.width)
        if kind is ir.Binary:
            return self._binary(expr, parts[0], parts[1])
        if kind is ir.Ite:
            condition, then, otherwise = parts
            if then == otherwise:
                return then
            if condition.constant is not None:
                return then if condition.constant else otherwise
            return opaque(expr.width, None, *parts)
        if kind is ir.Extract and parts[0].tag is None and parts[0].base is not None and expr.low == 0:
            return opaque(expr.width, ("part", parts[0].base, parts[0].offset), parts[0])
        if kind in (ir.ZeroExt, ir.SignExt) and parts[0].tag is not None and parts[0].tag[0] == "load":
            return Val(expr.width, None, None, parts[0].tag, parts[0].sources)
        return opaque(expr.width, None, *parts)

    def _binary(self, expr: ir.Binary, left: Val, right: Val) -> Val:
        op, width = expr.op, expr.width
        if op in (ir.BinOp.XOR, ir.BinOp.SUB) and expr.left == expr.right:
            return constant(0, width)               # the zeroing idiom: xorl %esi, %esi
        if op is ir.BinOp.ADD and left.offset is not None and right.offset is not None and \
                (left.base is None or right.base is None):
            return _plus(left.base or right.base, left.offset + right.offset, width)
        if op is ir.BinOp.SUB and left.offset is not None and right.base is None and right.offset is not None:
            return _plus(left.base, left.offset - right.offset, width)
        if op is ir.BinOp.AND and right.constant is not None:
            self._mask(left, right.constant)
        elif op is ir.BinOp.AND and left.constant is not None:
            self._mask(right, left.constant)
        return opaque(width, None, left, right)

    def _mask(self, value: Val, mask: int) -> None:
        """A bit test of an argument: ``testq $2, %rsi`` (also of its low part)."""
        base = value.base if value.tag is None else value.tag[1] if value.tag[0] == "part" else None
        offset = value.offset if value.tag is None else value.tag[2] if value.tag[0] == "part" else None
        if base in abi.ARGUMENT_REGISTERS and offset == 0:
            self.evidence.masks.add((base, mask))

    def load(self, address: Val, size: int, state: _State, site) -> Val:
        evidence = self.evidence
        if address.offset is None:
            evidence.use(address, "pointer")
            return opaque(size * 8, None, address)
        offset = signed_offset(address.offset)
        if address.base == "rsp":
            found = state.stack.get((offset, size))
            if found is not None:
                return found
            if offset >= 8 and offset % 8 == 0 and size == 8 and not any(
                    _overlaps(offset, size, o, s) for o, s in state.stack):
                number = offset // 8
                evidence.stack_arguments.setdefault(number, offset)
                return opaque(64, ("stack", number), {("stack", number)})
            return opaque(size * 8, ("frame", offset))
        if address.base is None:
            return opaque(size * 8, None)
        evidence.use(address, "pointer")
        found = state.memory.get((address.base, offset, size))
        value = found if found is not None else opaque(size * 8, ("load", address.base, offset, size),
                                                        {("field", address.base, offset)})
        evidence.record(site, ("read", address.base, offset, size),
                        Access("read", address.base, offset, size, value))
        return value

    def store(self, address: Val, value: Val, state: _State, site) -> None:
        size = value.width // 8
        if address.offset is None or address.base is None:
            self.evidence.use(address, "pointer")
            state.memory.clear()
            return
        offset = signed_offset(address.offset)
        if address.base == "rsp":
            for key in [k for k in state.stack if _overlaps(offset, size, *k)]:
                del state.stack[key]
            state.stack[(offset, size)] = value
            return
        self.evidence.use(address, "pointer")
        self.evidence.use(value, "stored")
        for key in [k for k in state.memory if k[0] == address.base and _overlaps(offset, size, k[1], k[2])]:
            del state.memory[key]
        state.memory[(address.base, offset, size)] = value
        self.evidence.record(site, ("write", address.base, offset, size),
                             Access("write", address.base, offset, size, value))

    # --- steps -------------------------------------------------------------------

    def execute(self, step: ir.Step, state: _State, site) -> _State:
        """The state after ``step``'s effects (a parallel assignment)."""
        self._step_values = {}
        try:
            registers = [(e.name, self.value(e.value, state, site)) for e in step.effects if isinstance(e, ir.SetReg)]
            flags = [(e.name, self.value(e.value, state, site)) for e in step.effects if isinstance(e, ir.SetFlag)]
            stores = [(self.value(e.address, state, site), self.value(e.value, state, site))
                      for e in step.effects if isinstance(e, ir.Store)]
        finally:
            self._step_values = None
        new = state.copy()
        for name, value in registers:
            new.regs[name] = value
        for name, value in flags:
            new.flags[name] = value
        for address, value in stores:
            self.store(address, value, new, site)
        if new.regs["rsp"].base != "rsp":
            new.stack.clear()
        return new

    def tdx(self, kind: str, state: _State, origin, site) -> _State:
        use = TdxUse(kind, dict(state.regs), origin)
        self.evidence.record(site, ("tdx",), use)
        bitmap = use.bitmap
        handed = abi.exposed_registers(bitmap) if bitmap is not None else tuple(
            reg for reg in ast.GPR64 if reg not in ("rax", "rsp", "rbp"))
        for reg in ("rax",) + handed:
            value = state.regs[reg]
            if not value.is_entry(reg):
                self.evidence.use(value, "input")
            elif reg in abi.ARGUMENT_REGISTERS:
                self.evidence.passed.add(reg)
        new = state.copy()
        if bitmap is not None:
            changed = abi.exposed_registers(bitmap)
        else:
            changed = tuple(reg for reg in ast.GPR64 if reg not in ("rax", "rsp", "rbp") and (
                reg in abi.MODULE_CALL_OUTPUTS or state.regs[reg].base is None))
        for reg in changed:
            new.regs[reg] = opaque(64, ("tdx", kind, reg, site), {("tdx", kind, reg)})
        new.regs["rax"] = opaque(64, ("tdx", kind, "status", site), {("tdx", kind, "status")})
        for flag in ("cf", "pf", "af", "zf", "sf", "of"):
            new.flags[flag] = opaque(1, ("tdx flag", kind, flag, site))
        return new

    def external_call(self, target: str, state: _State) -> _State:
        self.evidence.calls.add(target)
        for reg in abi.ARGUMENT_REGISTERS:
            if not state.regs[reg].is_entry(reg):      # an argument left as it came is not passed on
                self.evidence.use(state.regs[reg], "call")
        new = state.copy()
        for reg in abi.CALLER_SAVED:
            new.regs[reg] = opaque(64, ("call", target, reg))
        for flag in abi.FLAGS:
            if flag not in ("df", "if"):
                new.flags[flag] = opaque(1, ("call", target, flag))
        new.flags["df"] = constant(0, 1)
        return new

    # --- a function ----------------------------------------------------------------

    def run(self, name: str, start: _State, depth: int, active: tuple[str, ...]) -> _State | None:
        """Every path of function ``name`` from ``start``: the join of its
        states after its returns (None when none returns)."""
        function = self.program.function(name)
        items = function.items
        states: dict[int, _State] = {0: start}
        visits: dict[int, int] = {}
        work = [0]
        returned: _State | None = None

        def flow(index: int, state: _State) -> None:
            if index >= len(items):
                return                              # past the end: the proof judges that
            old = states.get(index)
            new = state if old is None else _join(old, state)
            if old is not None and new.key() == old.key():
                return
            visits[index] = visits.get(index, 0) + 1
            if visits[index] > VISITS:
                self.evidence.complete = False
                return
            states[index] = new
            work.append(index)

        def target(label: str) -> int | None:
            where = self.program.labels.get(label)
            return where[1] if where is not None and where[0] == name else None

        while work:
            index = work.pop()
            state = states[index]
            item = items[index]
            if isinstance(item, ast.Label):
                flow(index + 1, state)
                continue
            step = self._step(name, index, item)
            if step is None:
                self.evidence.complete = False
                continue
            site = (name, index)
            entry_ = self.table.entry(site)
            if entry_ is not None and target(entry_.to_label) is not None:
                fault = state.copy()
                fault.regs["rax"] = opaque(64, ("trap", site))
                flow(target(entry_.to_label), fault)
            after = self.execute(step, state, site)
            control = step.control
            if control is None:
                flow(index + 1, after)
            elif isinstance(control, ir.Branch):
                self.evidence.use(self.value(control.condition, state, site), "branch")
                if target(control.target) is not None:
                    flow(target(control.target), after)
                flow(index + 1, after)
            elif isinstance(control, ir.Jump):
                if control.target in DEFAULT_NEVER_RETURNING:
                    self.evidence.calls.add(control.target)
                elif target(control.target) is not None:
                    flow(target(control.target), after)
                elif control.target not in self.program.labels or self._defined(control.target):
                    done = self.tail_call(control.target, after, depth, active + (name,))
                    if done is not None:
                        self._returned(done, depth, site)
                        returned = done if returned is None else _join(returned, done)
            elif isinstance(control, ir.Call):
                resumed = self.call(control.target, after, depth, active + (name,))
                if resumed is not None:
                    flow(index + 1, resumed)
            elif isinstance(control, ir.Return):
                self._returned(after, depth, site)
                returned = after if returned is None else _join(returned, after)
            elif isinstance(control, ir.TdxInstruction):
                flow(index + 1, self.tdx(control.kind, state, item.origin, site))
            # ir.Trap: the path ends (an oops, or a fixup the exception-table edge took)
        return returned

    def _defined(self, name: str) -> bool:
        return any(fn.name == name for fn in self.program.functions)

    def _returned(self, state: _State, depth: int, site) -> None:
        if depth == 0:
            self.evidence.record(site, ("return",), state.regs["rax"])
            self.evidence.use(state.regs["rax"], "returned")

    def call(self, callee: str, state: _State, depth: int, active: tuple[str, ...]) -> _State | None:
        if callee in DEFAULT_NEVER_RETURNING:
            self.evidence.calls.add(callee)
            return None
        if not self._defined(callee) or callee in active or depth >= CALL_DEPTH:
            if self._defined(callee):
                self.evidence.complete = False
            done = self.external_call(callee, state)
            done.regs["rsp"] = self._popped(state.regs["rsp"])
            return done
        self.evidence.followed.add(callee)
        return self.run(callee, state, depth + 1, active)

    def tail_call(self, callee: str, state: _State, depth: int, active: tuple[str, ...]) -> _State | None:
        """A ``jmp`` to a function: it returns for us (the state after its ``ret``)."""
        if self._defined(callee) and callee not in active and depth < CALL_DEPTH:
            self.evidence.followed.add(callee)
            return self.run(callee, state, depth + 1, active)
        if self._defined(callee):
            self.evidence.complete = False
        done = self.external_call(callee, state)
        done.regs["rsp"] = self._popped(state.regs["rsp"])
        return done

    @staticmethod
    def _popped(rsp: Val) -> Val:
        return _plus(rsp.base, rsp.offset + 8, 64) if rsp.offset is not None else rsp


def _operands(expr: ir.Expr) -> tuple[ir.Expr, ...]:
    if isinstance(expr, ir.Unary):
        return (expr.operand,)
    if isinstance(expr, ir.Binary):
        return (expr.left, expr.right)
    if isinstance(expr, (ir.Extract, ir.ZeroExt, ir.SignExt)):
        return (expr.operand,)
    if isinstance(expr, ir.Concat):
        return (expr.high, expr.low)
    if isinstance(expr, ir.Ite):
        return (expr.condition, expr.then, expr.otherwise)
    raise TypeError(f"no operands for {type(expr).__name__}")


def gather(program: ast.Program, name: str) -> Evidence:
    """The evidence of function ``name`` of ``program`` (see the module doc)."""
    analysis = _Pass(program)
    analysis.evidence = Evidence(name)
    analysis.run(name, _entry_state(), 0, ())
    return analysis.evidence
