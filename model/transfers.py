"""The control transfers of the model, defined once over a value domain.

What a ``call``, a ``jmp``, a conditional jump, a ``ret``, the return
thunk, an external callee, a trap through the exception table and a TDX
instruction do to a path, and how a path ends, is decided here and only
here.  Two interpreters read it: the symbolic executor
(:mod:`model.executor`, values are Z3 terms) and the concrete replay of
counterexamples (:mod:`proofs.counterexample`, values are Python integers
from a model).  Each is a subclass of :class:`Transfers` that supplies the
*domain*: how to evaluate an IR expression, how to decide a branch (the
concrete domain decides it, the symbolic one forks and drops an infeasible
side), what an external callee returns, what the module does at a TDX
instruction, how an inlined ``ret`` finds its caller, and what a path
records.  The native replay (:mod:`model.native`) stays apart: it is the
independent oracle both are checked against.

Decisions (the executor's module docstring gives the reasons):

* A path's state is immutable: a transfer returns its successors (none
  when the path ended, two when a branch forks).
* ``call`` of a function of the program is inlined (a :class:`Frame` per
  open call); a call or ``jmp`` to a name in ``never_returning`` ends the
  path as ``PANIC``; another external call clobbers the System V
  caller-saved registers and the arithmetic flags with the domain's
  values, clears DF and pops its return address; ``jmp
  __x86_return_thunk`` is a ``ret`` (its read of the return address is
  the function's own access); ``jmp`` to an external name is an external
  call and then a ``ret`` (that ``ret`` is the callee's).
* Going to a label counts against ``loop_bound`` and a call's nesting
  against ``call_depth`` (``None``: unbounded, the replay's choice: it
  follows one path and is cut off by its own step limit).  A label that
  is code outside every function, or running past a function's last
  item, ends the path as ``FALLTHROUGH``; a call of such code, or an
  external call that is a function's last instruction, as ``UNSUPPORTED``.
* ``ud2`` and TDX faults go through the exception table (routed, the
  fixup's RAX written, or ``OOPS``); ``int3`` is never fixed up; an
  instruction that may fault is logged as a fault site with its traps.
  What each TDX outcome writes is :data:`model.tdx.EFFECTS`.
"""
from __future__ import annotations

import dataclasses
from typing import Generic, Iterator, Mapping, TypeVar

from grammar import ast
from grammar.caches import CACHES
from grammar.compat import StrEnum
from grammar.source import Origin, SourceError
from model import abi, ir
from model.extable import ExceptionTable, Fixup, Location
from model.lift import lift
from model.tdx import ARITHMETIC_FLAGS, KINDS, Outcome, TdxModel, Transition

RETURN_THUNKS = frozenset({"__x86_return_thunk"})
DEFAULT_NEVER_RETURNING = frozenset({"__tdx_hypercall_failed"})

RET = ir.Step((ir.SetReg("rsp", ir.Binary(ir.BinOp.ADD, ir.Reg("rsp"), ir.Const(8, 64))),),
              ir.Return(ir.Load(ir.Reg("rsp"), 64)))
"""A ``ret``: what ``jmp __x86_return_thunk`` does, and a tail-called external function's return."""


class PathEnd(StrEnum):
    """Why a path finished: the one list every interpreter and report uses
    (a member is its word: the JSON reports and the native runner write it)."""

    RETURNED = "returned"
    PANIC = "panic"
    OOPS = "oops"
    BOUND = "bound"
    UNSUPPORTED = "unsupported"
    FALLTHROUGH = "fallthrough"


P = TypeVar("P")
"""A path of the domain: has ``location``, ``frames`` and ``visits`` and a
``with_(**changes)`` that makes a new one."""


class Transfers(Generic[P]):
    """The control transfers of ``program``; a subclass supplies the value
    domain (the methods that raise ``NotImplementedError``)."""

    def __init__(self, program: ast.Program, tdx: TdxModel, never_returning: frozenset[str],
                 loop_bound: int | None = None, call_depth: int | None = None):
        self.program = program
        self.tdx = tdx
        self.never_returning = never_returning
        self.loop_bound = loop_bound
        self.call_depth = call_depth
        self.table = ExceptionTable(program)
        self._order = {function.name: position for position, function in enumerate(program.functions)}
        self._steps: dict[Location, ir.Step | SourceError] = {}

    # --- the domain ---------------------------------------------------------

    def finish(self, path: P, end: PathEnd, detail: str, where: Origin | None, *,
               returned_to=None, bound: int | None = None, leaves_to: str = "") -> list[P]:
        """End ``path`` (record it); no successors."""
        raise NotImplementedError

    def execute(self, path: P, instr: ast.Instruction, step: ir.Step) -> list[P]:
        """Run ``step`` (the lifted ``instr``) on ``path``, log what it did,
        and hand its control transfer to :meth:`control`."""
        raise NotImplementedError

    def last_origin(self, path: P) -> Origin | None:
        """The last instruction ``path`` ran, if any."""
        raise NotImplementedError

    def sides(self, path: P, taken, origin: Origin) -> list[tuple[bool, P]]:
        """The sides of a branch on ``taken`` that ``path`` may take."""
        raise NotImplementedError

    def constant(self, value: int, width: int):
        raise NotImplementedError

    def updated(self, path: P, registers: Mapping = {}, flags: Mapping = {}) -> P:
        """``path`` with some registers and flags replaced."""
        raise NotImplementedError

    def assume(self, path: P, text: str) -> P:
        """``path`` under one more assumption of the model, in words."""
        raise NotImplementedError

    def callee_results(self, path: P, target: str) -> tuple[P, dict]:
        """(``path``, what an external call of ``target`` leaves in the
        caller-saved registers and the arithmetic flags)."""
        raise NotImplementedError

    def pop_return_address(self, path: P, origin: Origin, own: bool):
        """(``path`` after a ``ret``'s pop, the address popped); ``own``:
        the read is an access of the function's (the return thunk's)."""
        raise NotImplementedError

    def discard_return_address(self, path: P) -> P:
        """``path`` after an external callee's ``ret`` (RSP 8 up)."""
        raise NotImplementedError

    def open_frame(self, path: P, callee: str, resume: Location) -> P:
        """``path`` with an inlined call of ``callee`` opened."""
        raise NotImplementedError

    def resume_caller(self, path: P, address, origin: Origin) -> list[P]:
        """A ``ret`` to ``address`` that closes the innermost open call."""
        raise NotImplementedError

    def fault_site(self, path: P, instruction: str, traps: tuple[int, ...], handled: bool,
                   fixup: str | None, origin: Origin) -> P:
        """``path`` with an instruction that may fault logged."""
        raise NotImplementedError

    def tdx_transitions(self, path: P, kind: str, routes: Mapping[Outcome, Fixup | None],
                        origin: Origin) -> list[Transition]:
        """The outcomes of the ``kind`` instruction ``path`` is at that it
        may take (``routes``: each possible fault's exception-table route)."""
        raise NotImplementedError

    def take(self, path: P, transition: Transition) -> P:
        """``path`` after ``transition`` of a TDX instruction (its registers,
        flags, extended state and event)."""
        raise NotImplementedError

    # --- stepping -----------------------------------------------------------

    def settled(self, path: P) -> P:
        """``path`` moved past label items to the instruction they label, so
        paths arriving by a jump or by falling through meet at one location."""
        function, index = path.location
        items = self.program.function(function).items
        settled = index
        while settled < len(items) and isinstance(items[settled], ast.Label):
            settled += 1
        return path if settled == index else path.with_(location=(function, settled))

    def step(self, path: P) -> list[P]:
        """Run the instruction ``path`` is at (or leave the function past its end)."""
        function, index = path.location
        code = self.program.function(function)
        if index >= len(code.items):
            last = self.last_origin(path)
            return self.fall_through(path, past_end_of(self.program, function),
                                     code.origin if last is None else last)
        instr = code.items[index]
        step = self.lifted(path.location, instr)
        if isinstance(step, SourceError):
            return self.finish(path, PathEnd.UNSUPPORTED, step.render(), instr.origin)
        return self.execute(path, instr, step)

    def step_accesses(self, step: ir.Step, address_of) -> Iterator[tuple[str, object, int]]:
        """(kind, address, width in bits) of every memory access ``step``
        makes: its loads, then its stores; ``address_of`` evaluates an
        address expression in the state before the step."""
        if id(step) not in _STEP_LOADS:
            _STEP_LOADS[id(step)] = (step, loads_of(step))
        for load in _STEP_LOADS[id(step)][1]:
            yield "read", address_of(load.address), load.width
        for effect in step.effects:
            if isinstance(effect, ir.Store):
                yield "write", address_of(effect.address), effect.value.width

    def lifted(self, location: Location, instr: ast.Instruction) -> ir.Step | SourceError:
        if location not in self._steps:
            try:
                self._steps[location] = lift(instr)
            except SourceError as error:
                self._steps[location] = error
        return self._steps[location]

    def control(self, path: P, instr: ast.Instruction, control: ir.Control | None, taken=None,
                address=None) -> list[P]:
        """The control transfer of ``instr`` from ``path`` (which has run its
        effects); ``taken``/``address``: a branch's condition and a ``ret``'s
        address, evaluated before the effects."""
        origin = instr.origin
        following = (path.location[0], path.location[1] + 1)
        if control is None:
            return [path.with_(location=following)]
        if isinstance(control, ir.Jump) and control.target in RETURN_THUNKS:
            path, address = self.pop_return_address(path, origin, own=True)
            return self.return_(path, address, origin)
        if isinstance(control, ir.Branch):
            return self.branch(path, taken, control.target, following, origin)
        if isinstance(control, ir.Jump):
            return self.jump(path, control.target, origin)
        if isinstance(control, ir.Call):
            return self.call(path, control.target, following, origin)
        if isinstance(control, ir.Return):
            return self.return_(path, address, origin)
        if isinstance(control, ir.TdxInstruction):
            return self.tdx_instruction(path, control.kind, following, origin)
        if isinstance(control, ir.Trap):
            return self.trap(path, control, instr)
        raise TypeError(f"unknown control transfer {control!r}")

    # --- the transfers --------------------------------------------------------

    def goto(self, path: P, label: str, origin: Origin, call: bool = False) -> list[P]:
        """Go to ``label`` (a label or function entry of the program),
        counting the visit against the loop bound (``call``: as a call's
        target, which may not be code outside every function)."""
        visits = path.visits
        if self.loop_bound is not None:
            count = path.visits.get(label, 0) + 1
            if count > self.loop_bound:
                return self.finish(path, PathEnd.BOUND, f"{label!r} reached more than {self.loop_bound} times",
                                   origin, bound=self.loop_bound)
            visits = {**path.visits, label: count}
        location = self.resolve(label)
        if location is None and call:
            return self.finish(path, PathEnd.UNSUPPORTED,
                               f"call to {label!r}, which is code outside every function", origin)
        if location is None:
            return self.fall_through(path, outside_label(label), origin)
        return [path.with_(location=location, visits=visits)]

    def resolve(self, label: str) -> Location | None:
        """Where ``label`` is in a function's code (``None``: outside every function)."""
        if label in self.program.labels:
            function, index = self.program.labels[label]
            return None if function is None else (function, index)
        if label in self._order:
            return label, 0
        return None

    def is_internal(self, label: str) -> bool:
        return label in self.program.labels or label in self._order

    def fall_through(self, path: P, leaves_to: str, where: Origin) -> list[P]:
        """``path`` leaves its function's code after the instruction at ``where``."""
        function = path.location[0]
        return self.finish(path, PathEnd.FALLTHROUGH,
                           f"execution leaves the code of {function!r} after {where.render()}: "
                           f"it goes {leaves_to}", where, leaves_to=leaves_to)

    def branch(self, path: P, taken, target: str, following: Location, origin: Origin) -> list[P]:
        successors = []
        for is_taken, side in self.sides(path, taken, origin):
            if is_taken:
                successors += self.goto(side, target, origin)
            else:
                successors.append(side.with_(location=following))
        return successors

    def jump(self, path: P, target: str, origin: Origin) -> list[P]:
        if target in self.never_returning:
            return self.finish(path, PathEnd.PANIC, f"tail call to never-returning {target}", origin)
        if self.is_internal(target):
            return self.goto(path, target, origin)
        path = self.external_call(path, target, origin, "tail call")
        path, address = self.pop_return_address(path, origin, own=False)
        return self.return_(path, address, origin)

    def call(self, path: P, target: str, following: Location, origin: Origin) -> list[P]:
        if target in self.never_returning:
            return self.finish(path, PathEnd.PANIC, f"call to never-returning {target}", origin)
        if not self.is_internal(target):
            if past_end(self.program.function(following[0]), following[1]):
                return self.finish(path, PathEnd.UNSUPPORTED, _last_call(target, origin), origin)
            path = self.external_call(path, target, origin, "call")
            return [self.discard_return_address(path).with_(location=following)]
        if self.call_depth is not None and len(path.frames) >= self.call_depth:
            return self.finish(path, PathEnd.BOUND, f"call to {target} nested deeper than {self.call_depth}",
                               origin, bound=self.call_depth)
        return self.goto(self.open_frame(path, target, following), target, origin, call=True)

    def external_call(self, path: P, target: str, origin: Origin, how: str) -> P:
        """An external function ran: caller-saved registers and arithmetic
        flags are the callee's, DF is clear (the ABI's rule for a returning callee)."""
        path, results = self.callee_results(path, target)
        flags = {flag: results[flag] for flag in ARITHMETIC_FLAGS}
        flags["df"] = self.constant(0, 1)
        path = self.updated(path, {reg: results[reg] for reg in abi.CALLER_SAVED}, flags)
        return self.assume(path, f"external {how} to {target} at {origin.render()} changes only the "
                                 f"caller-saved registers and flags (memory, callee-saved registers and "
                                 f"extended state preserved)")

    def return_(self, path: P, address, origin: Origin) -> list[P]:
        """A ``ret`` (RSP already popped) to ``address``."""
        if not path.frames:
            return self.finish(path, PathEnd.RETURNED, "returned", origin, returned_to=address)
        return self.resume_caller(path, address, origin)

    def tdx_instruction(self, path: P, kind: str, following: Location, origin: Origin) -> list[P]:
        if kind not in KINDS:
            return self.finish(path, PathEnd.UNSUPPORTED, f"unknown TDX instruction {kind!r}", origin)
        faults = [outcome for outcome in self.tdx.possible_outcomes(kind) if outcome.is_fault]
        try:
            routes = {outcome: self.table.route(path.location, outcome.trap) for outcome in faults}
            transitions = self.tdx_transitions(path, kind, routes, origin)
        except SourceError as error:
            return self.finish(path, PathEnd.UNSUPPORTED, error.render(), origin)
        if faults:
            fixups = {None if fixup is None else fixup.to_label for fixup in routes.values()}
            path = self.fault_site(path, kind, tuple(outcome.trap for outcome in faults),
                                   None not in routes.values(), fixups.pop() if len(fixups) == 1 else None,
                                   origin)
        successors = []
        for transition in transitions:
            successors += self.after_tdx(path, transition, following, origin)
        return successors

    def after_tdx(self, path: P, transition: Transition, following: Location, origin: Origin) -> list[P]:
        event = transition.event
        path = self.assume(self.take(path, transition), transition.assumption)
        if transition.oops:
            return self.finish(path, PathEnd.OOPS,
                               f"{event.kind} {event.outcome.value} with no exception-table entry", origin)
        if transition.resume is not None:
            return self.goto(path, transition.resume, origin)
        return [path.with_(location=following)]

    def trap(self, path: P, trap: ir.Trap, instr: ast.Instruction) -> list[P]:
        origin = instr.origin
        if trap.vector != abi.TRAP_UD:
            return self.finish(path, PathEnd.OOPS, f"{instr.base} raises {trap.kind}, never fixed up", origin)
        try:
            fixup = self.table.route(path.location, trap.vector)
        except SourceError as error:
            return self.finish(path, PathEnd.UNSUPPORTED, error.render(), origin)
        path = self.fault_site(path, instr.base, (trap.vector,), fixup is not None,
                               None if fixup is None else fixup.to_label, origin)
        if fixup is None:
            return self.finish(path, PathEnd.OOPS, f"{instr.base} raises {trap.kind} with no exception-table entry",
                               origin)
        if fixup.rax is not None:
            path = self.updated(path, {"rax": self.constant(fixup.rax, 64)})
        return self.goto(path, fixup.to_label, origin)


# --- leaving the function's code -------------------------------------------

def past_end(function: ast.Function, index: int) -> bool:
    """Whether execution at item ``index`` of ``function`` has left its code
    (nothing but labels from there on)."""
    items = function.items
    return all(isinstance(items[i], ast.Label) for i in range(index, len(items)))   # stops at the first instruction


def past_end_of(program: ast.Program, name: str) -> str:
    """Where a path that runs past the end of function ``name`` goes, in words."""
    functions = program.functions
    position = next(i for i, fn in enumerate(functions) if fn.name == name)
    section = functions[position].section
    following = next((fn.name for fn in functions[position + 1:] if fn.section == section), None)
    after = f"; the next function there is {following!r}" if following else ""
    return f"past the end of {name!r} into what follows it in section {section}{after}"


def outside_label(label: str) -> str:
    """Where a path that jumps to ``label``, code outside every function, goes."""
    return f"to {label!r}, code outside every function"


def _last_call(target: str, origin: Origin) -> str:
    """Why a path whose last instruction calls external ``target`` is not judged."""
    return (f"the call to {target} at {origin.render()} is the function's last instruction: "
            f"{target} presumably never returns, but it is not declared never-returning "
            f"(were it to return, execution would fall off the end)")


_STEP_LOADS = CACHES.cache("step loads", 20_000)
"""id of a lifted step -> (the step, kept so that its id is not reused
while the entry exists; :func:`loads_of` it): a step is lifted once per
instruction (:func:`model.lift.lift`), and every run over it (each
path, configuration and concrete replay) asks for its loads."""


def loads_of(step: ir.Step) -> tuple[ir.Load, ...]:
    """The loads a step makes: in its effects, a branch's condition, a
    ``ret``'s address; outermost first, a load node the lifter shares
    between several expressions once per place it occurs (each node's
    loads are found once, so a shared subexpression costs one walk)."""
    roots = list(step.effects)
    if isinstance(step.control, (ir.Branch, ir.Return)):
        roots.append(step.control)
    found: dict[int, tuple[ir.Load, ...]] = {}

    def within(node) -> tuple[ir.Load, ...]:
        key = id(node)
        if key not in found:
            loads = (node,) if isinstance(node, ir.Load) else ()
            for child in _children(node):
                loads += within(child)
            found[key] = loads
        return found[key]

    return tuple(load for root in roots for load in within(root))


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}
_IS_NODE: dict[type, bool] = {}


def _children(node) -> Iterator:
    """The IR nodes ``node`` holds directly (the fields that are dataclass instances)."""
    kind = type(node)
    if kind not in _CHILD_FIELDS:
        _CHILD_FIELDS[kind] = tuple(item.name for item in dataclasses.fields(node))
    for name in _CHILD_FIELDS[kind]:
        child = getattr(node, name)
        held = type(child)
        if held not in _IS_NODE:
            _IS_NODE[held] = dataclasses.is_dataclass(held)
        if _IS_NODE[held]:
            yield child


def ir_expressions(node) -> Iterator:
    """The IR sub-expressions of ``node`` (itself included), outermost first."""
    yield node
    for child in _children(node):
        yield from ir_expressions(child)
