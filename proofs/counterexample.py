"""Counterexamples: from a Z3 model to a concrete, replayable scenario.

A refuted obligation comes with a model of its path.  This module turns
the model into a *scenario* -- entry registers and flags, the entry memory
bytes the run reads, the addresses of symbols, and for each TDX
instruction its outcome and the registers the module returned -- and
replays it with the concrete interpreter (:mod:`model.concrete`), one
lifted instruction at a time, independently of the symbolic executor.  The
replay's final state is then judged by the same property checker through
a concrete :class:`proofs.properties.PathView`; ``confirmed`` says whether
the concrete run really violates the obligation (no spurious
counterexamples).  The JSON form (SPEC.md section 8) carries everything
needed to run the scenario again, natively (``tdxproof replay``) or here
(:func:`replay_counterexample`).

Decisions recorded here:

* Control flow in the replay is the executor's own: the replay is the
  concrete domain of :class:`model.transfers.Transfers` (inlined internal
  calls, ``__x86_return_thunk`` is ``ret``, never-returning callees end as
  panic, external calls clobber the caller-saved registers with the
  scenario's values and clear DF, faults go through the exception table or
  oops, running past the end of a function or jumping to code outside
  every function ends as ``fallthrough`` at the last instruction run, an
  external call that would fall off the end or a call of code outside
  every function as ``unsupported``), and a TDX outcome writes what
  :data:`model.tdx.EFFECTS` says.  A branch is decided by the scenario's
  values (one on an undefined flag is a :class:`ReplayDiverged`); a TDX
  instruction takes the scenario's next event, and a mismatch (another
  kind, no event left) is a :class:`ReplayDiverged`, and so is a ``ret``
  from an inlined call to another address than its caller's.  The
  executor's loop and call bounds do not apply: the replay follows one
  path and is cut off after :data:`STEP_LIMIT` instructions (``bound``).
  The fault sites it logs are those the default TDX model allows (a
  counterexample file does not say whether TDCALL may fault).  Before each instruction the replay notes what
  an interrupt would find (:class:`proofs.properties.FramePoint`, as the
  executor's ``InterruptPoint``: RBP, the entry RSP and RBP of the
  function it runs in -- an inlined callee's being the RSP and RBP right
  after its call -- and the saved-RBP slot when RBP points at it), and for
  each such point the index of the first point of its function
  (``frame_starts``: where a native replay reads that function's entry
  RSP and RBP).  A store into code needs no rule here: the
  executor ends such a path before it writes, so no counterexample's path
  holds one.
* Flags the module chooses after a TDCALL and values the SDM leaves
  undefined stay undefined (``None``) in the replay: the concrete
  interpreter never guesses them.
* The scenario's symbols, return addresses and external callees' results
  are the model's values of the path's fresh values of those kinds, as its
  provenance (:mod:`model.provenance`) says; the file keys them by the
  variables' names.
* Numbers are written as ``0x`` hex strings in JSON; memory bytes as an
  address -> byte map sorted by address.
* **A counterexample the CPU can run.**  The model assumes ordinary
  memory accesses do not fault; the CPU faults on an unmapped address
  before the violated property shows.  So a refutation's model is chosen,
  where one exists, with the entry RSP on the native harness's stack page
  (:data:`model.native.COUNTEREXAMPLE_RSP_PAGE`) and every address the path
  accesses (but those through symbols, which are the runner's own
  natively) inside the stack window the replay watches or the harness's
  data region
  (:func:`native_placement`): ``tdxproof replay`` then runs it where the
  solver put it.  When no such model exists the original one is kept and
  the counterexample says so (``native_placement``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping

import z3

from grammar import ast
from grammar.ast import GPR64
from grammar.source import Expansion, Origin
from model import abi, bv, concrete, ir
from model.concrete import ConcreteEnv, ConcreteState
from model.executor import CALLEE_RESULT_WIDTHS, Query, summands
from model.extable import Fixup, Location
from model.memory import place, region_index, select_bytes
from model.provenance import CalleeResult, ReturnAddress, Source, SymbolAddress, return_address_name
from model.native import COUNTEREXAMPLE_RSP_PAGE, DATA_BASE, DATA_SIZE, PAGE
from model.tdx import ARITHMETIC_FLAGS, Outcome, TdxModel, Transition, outcome_changes
from model.transfers import DEFAULT_NEVER_RETURNING, RET, PathEnd, Transfers
from proofs.canonical import Minimiser
from proofs.contracts import contract_from_record, contract_record
from proofs.properties import (PROPERTIES, STACK_DEPTH, AccessView, ConcreteOps, EventView, FaultView,
                               FramePoint, PathView)
from proofs.renaming import ModuleRenaming

STACK_WATCH = 512
"""Bytes beyond the function's frame (``properties.STACK_DEPTH`` below the
entry RSP) that a native replay watches on each side of the stack."""
STEP_LIMIT = 10000
"""Instructions a replay may run before it is cut off (as ``bound``)."""


class ReplayDiverged(RuntimeError):
    """The concrete run left the path the scenario describes."""


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _number(text) -> int:
    return text if isinstance(text, int) else int(text, 0)


def origin_json(origin: Origin) -> dict:
    return {"file": origin.file, "line": origin.line, "column": origin.column,
            "expansion": [frame.render() for frame in origin.expansion]}


def origin_from_json(source: Mapping) -> Origin:
    """The origin :func:`origin_json` wrote, without its expansion chain
    (which the JSON keeps as text only)."""
    return Origin(source["file"], source["line"], source["column"])


def expansion_from_json(source: Mapping) -> tuple[Expansion, ...]:
    """The expansion chain of an origin :func:`origin_json` wrote: each
    frame's text is :meth:`grammar.source.Expansion.render`'s (a macro
    name has no space, so the first `` at `` ends it).

    >>> expansion_from_json({"expansion": ["FRAME_END at a b.S:37:2"]})
    (Expansion(name='FRAME_END', file='a b.S', line=37, column=2),)
    """
    frames = []
    for text in source["expansion"]:
        name, _, place = text.partition(" at ")
        file, line, column = place.rsplit(":", 2)
        frames.append(Expansion(name, file, int(line), int(column)))
    return tuple(frames)


# --- the scenario ------------------------------------------------------------------

@dataclass
class Scenario:
    """Everything a replay needs; ``memory`` maps entry byte addresses to
    bytes, and ``read_missing`` answers (and records) bytes not in it."""

    registers: dict[str, int]
    flags: dict[str, int | None]
    memory: dict[int, int]
    events: list[dict]
    symbols: dict[str, int] = field(default_factory=dict)
    external: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    read_missing: Callable[[int], int] | None = None

    def entry_byte(self, address: int) -> int:
        if address not in self.memory:
            if self.read_missing is None:
                raise ReplayDiverged(f"the run reads memory byte {address:#x}, which the scenario lacks")
            self.memory[address] = self.read_missing(address)
        return self.memory[address]

    def entry_load(self, address: int, size: int) -> int:
        return sum(self.entry_byte((address + i) % 2**64) << 8 * i for i in range(size))


@dataclass
class TraceStep:
    """One instruction the replay ran: the registers whose value it changed
    (``changed``), every register it wrote whether or not the value changed
    (``written``), the memory it read and wrote (address, bytes), and
    whether it jumped (a ``jmp``, a taken conditional branch)."""

    origin: Origin
    text: str
    changed: dict[str, int]
    note: str = ""
    written: tuple[str, ...] = ()
    loads: tuple[tuple[int, int], ...] = ()
    stores: tuple[tuple[int, int], ...] = ()
    jumped: bool = False


@dataclass
class ConcreteRun:
    entry: ConcreteState
    final: ConcreteState
    end: str
    where: Origin | None
    events: list[EventView]
    accesses: list[AccessView]
    faults: list[FaultView]
    steps: list[TraceStep]
    points: list[FramePoint] = field(default_factory=list)
    frame_starts: list[int] = field(default_factory=list)
    returned_to: int | None = None

    def view(self, scenario: Scenario) -> PathView:
        env = ConcreteEnv(read_missing=scenario.entry_byte)
        return PathView(ConcreteOps(), self.end, self.entry.regs, self.final.regs, self.final.flags,
                        lambda address, size: self.final.read_bytes(address, size, env),
                        scenario.entry_load, tuple(self.events), tuple(self.accesses),
                        tuple(self.faults), self.where, frame_points=tuple(self.points))


@dataclass(frozen=True)
class _OpenCall:
    """An inlined call under way: where to resume, the return address it
    pushed, the callee's entry RSP and RBP, and the index of its first
    interrupt point."""

    resume: Location
    return_address: int
    rsp: int
    rbp: int
    first_point: int


@dataclass(frozen=True)
class _ReplayPath:
    """Where the replay is: the concrete domain's path (one, never forked)."""

    location: Location
    frames: tuple[_OpenCall, ...]
    state: ConcreteState
    visits: Mapping[str, int] = field(default_factory=dict)

    def with_(self, **changes) -> "_ReplayPath":
        return dataclasses.replace(self, **changes)


# --- the concrete replay -------------------------------------------------------------

class _Replay(Transfers[_ReplayPath]):
    """The concrete domain of :class:`model.transfers.Transfers`: a branch
    is decided by the scenario's values, an external callee returns the
    scenario's values, a TDX instruction takes the scenario's next event."""

    def __init__(self, program: ast.Program, scenario: Scenario, never_returning=DEFAULT_NEVER_RETURNING):
        super().__init__(program, TdxModel(), never_returning)
        self.scenario = scenario
        self.entry = ConcreteState(dict(scenario.registers), dict(scenario.flags), {})
        self.events: list[EventView] = []
        self.access_log: list[AccessView] = []
        self.faults: list[FaultView] = []
        self.steps: list[TraceStep] = []
        self.points: list[FramePoint] = []
        self.frame_starts: list[int] = []
        self.external_calls: dict[str, int] = {}
        self._ended: tuple[ConcreteState, PathEnd, Origin | None, int | None] | None = None

    def _env(self, site) -> ConcreteEnv:
        return_address = self.scenario.symbols.get(return_address_name(site), 0xC0DE000000000000 + 16 * site[1])
        symbols = {name[len("symbol_"):]: value for name, value in self.scenario.symbols.items()
                   if name.startswith("symbol_")}
        return ConcreteEnv(symbols, return_address, self.scenario.entry_byte)

    def run(self, name: str) -> ConcreteRun:
        path = self.settled(_ReplayPath((name, 0), (), ConcreteState(dict(self.entry.regs),
                                                                      dict(self.entry.flags), {})))
        for _ in range(STEP_LIMIT):
            successors = self.step(path)
            if not successors:
                return self._run(*self._ended)
            (path,) = successors
            path = self.settled(path)
        return self._run(path.state, PathEnd.BOUND, None)

    def _run(self, state: ConcreteState, end: PathEnd, where: Origin | None, returned_to: int | None = None
             ) -> ConcreteRun:
        return ConcreteRun(self.entry, state, end, where, self.events, self.access_log, self.faults,
                           self.steps, self.points, self.frame_starts, returned_to)

    # the concrete domain

    def finish(self, path: _ReplayPath, end: PathEnd, detail: str, where: Origin | None, *,
               returned_to: int | None = None, **_) -> list:
        self._ended = (path.state, end, where, returned_to)
        return []

    def last_origin(self, path: _ReplayPath) -> Origin | None:
        return self.steps[-1].origin if self.steps else None

    def execute(self, path: _ReplayPath, instr: ast.Instruction, step: ir.Step) -> list[_ReplayPath]:
        state, control = path.state, step.control
        env = self._env(path.location)
        self._interrupt_point(state, path.frames, instr.origin, isinstance(control, ir.Call), env)
        pending = list(self.step_accesses(step, lambda address: concrete.evaluate(address, state, env)))
        new = concrete.execute(step, state, env)
        self.access_log += [AccessView(kind, address, width // 8, state.regs["rsp"], new.regs["rsp"],
                                       instr.origin, True) for kind, address, width in pending]
        self.steps.append(TraceStep(instr.origin, str(instr),
                                    {r: v for r, v in new.regs.items() if v != state.regs[r]}, "",
                                    tuple(e.name for e in step.effects if isinstance(e, ir.SetReg)),
                                    tuple((a, w // 8) for kind, a, w in pending if kind == "read"),
                                    tuple((a, w // 8) for kind, a, w in pending if kind == "write")))
        taken = address = None
        if isinstance(control, ir.Branch):
            taken = concrete.evaluate(control.condition, state, env)
            self.steps[-1].jumped = bool(taken)
        elif isinstance(control, ir.Jump):
            self.steps[-1].jumped = True
        elif isinstance(control, ir.Return):
            address = concrete.evaluate(control.address, state, env)
        return self.control(path.with_(state=new), instr, control, taken, address)

    def _interrupt_point(self, state: ConcreteState, frames: tuple[_OpenCall, ...], origin: Origin,
                         call: bool, env: ConcreteEnv) -> None:
        """What an interrupt before the next instruction would find."""
        if frames:
            frame_rsp, frame_rbp, first = frames[-1].rsp, frames[-1].rbp, frames[-1].first_point
        else:
            frame_rsp, frame_rbp, first = self.entry.regs["rsp"], self.entry.regs["rbp"], 0
        slot = (frame_rsp - 8) % 2**64
        rbp = state.regs["rbp"]
        saved = state.read_bytes(slot, 8, env) if rbp == slot else None
        self.points.append(FramePoint(origin, rbp, saved, frame_rsp, frame_rbp, call, True))
        self.frame_starts.append(first)

    def sides(self, path: _ReplayPath, taken: int | None, origin: Origin) -> list[tuple[bool, _ReplayPath]]:
        if taken is None:
            raise ReplayDiverged(f"branch on an undefined flag at {origin.render()}")
        return [(bool(taken), path)]

    def constant(self, value: int, width: int) -> int:
        return value & concrete.mask(width)

    def updated(self, path: _ReplayPath, registers: Mapping = {}, flags: Mapping = {}) -> _ReplayPath:
        state = path.state
        return path.with_(state=ConcreteState({**state.regs, **registers}, {**state.flags, **flags},
                                              state.memory))

    def assume(self, path: _ReplayPath, text: str) -> _ReplayPath:
        return path

    def callee_results(self, path: _ReplayPath, target: str) -> tuple[_ReplayPath, dict[str, int | None]]:
        """The scenario's values of this call of ``target`` (registers it
        lacks are 0, flags undefined)."""
        calls = self.scenario.external.get(target, [])
        count = self.external_calls.get(target, 0)
        self.external_calls[target] = count + 1
        values = calls[count] if count < len(calls) else {}
        results: dict[str, int | None] = {reg: values.get(reg, 0) for reg in abi.CALLER_SAVED}
        results.update({flag: values.get(flag) for flag in ARITHMETIC_FLAGS})
        return path, results

    def pop_return_address(self, path: _ReplayPath, origin: Origin, own: bool) -> tuple[_ReplayPath, int]:
        env = self._env(path.location)
        before = path.state
        address = concrete.evaluate(RET.control.address, before, env)
        after = concrete.execute(RET, before, env)
        if own:
            rsp = before.regs["rsp"]
            self.access_log.append(AccessView("read", rsp, 8, rsp, after.regs["rsp"], origin, True))
        return path.with_(state=after), address

    def discard_return_address(self, path: _ReplayPath) -> _ReplayPath:
        return self.updated(path, {"rsp": self.constant(path.state.regs["rsp"] + 8, 64)})

    def open_frame(self, path: _ReplayPath, callee: str, resume: Location) -> _ReplayPath:
        state = path.state
        call = _OpenCall(resume, self._env(path.location).return_address(), state.regs["rsp"],
                         state.regs["rbp"], len(self.points))
        return path.with_(frames=path.frames + (call,))

    def resume_caller(self, path: _ReplayPath, address: int, origin: Origin) -> list[_ReplayPath]:
        call = path.frames[-1]
        if address != call.return_address:
            raise ReplayDiverged(f"ret at {origin.render()} to {address:#x}, "
                                 f"not the caller's {call.return_address:#x}")
        return [path.with_(location=call.resume, frames=path.frames[:-1])]

    def fault_site(self, path: _ReplayPath, instruction: str, traps: tuple[int, ...], handled: bool,
                   fixup: str | None, origin: Origin) -> _ReplayPath:
        self.faults.append(FaultView(instruction, handled, origin, True))
        return path

    def tdx_transitions(self, path: _ReplayPath, kind: str, routes: Mapping[Outcome, Fixup | None],
                        origin: Origin) -> list[Transition]:
        """The scenario's next event, which must be of this kind (a fault
        the TDX model did not count as possible is routed all the same)."""
        position = len(self.events)
        if position >= len(self.scenario.events) or self.scenario.events[position]["kind"] != kind:
            raise ReplayDiverged(f"{kind} at {origin.render()} is not the scenario's next TDX event")
        script = self.scenario.events[position]
        outcome = Outcome(script["outcome"])
        fixup = None
        if outcome.is_fault:
            fixup = routes[outcome] if outcome in routes else self.table.route(path.location, outcome.trap)
        completes = outcome is Outcome.COMPLETION
        registers, flags = outcome_changes(
            kind, outcome, self.constant, fixup,
            outputs={reg: _number(value) for reg, value in script["registers"].items()},
            status=_number(script["status"]) if completes else None,
            module_flags={flag: None for flag in ARITHMETIC_FLAGS})
        inputs = path.state.regs
        outputs = {**inputs, **registers}
        event = EventView(kind, outcome, origin, dict(inputs), outputs, outputs["rax"] if completes else None)
        return [Transition(event, registers, flags, None, "",
                           resume=None if fixup is None else fixup.to_label,
                           oops=outcome.is_fault and fixup is None)]

    def take(self, path: _ReplayPath, transition: Transition) -> _ReplayPath:
        event = transition.event
        self.events.append(event)
        self.steps[-1].changed = {r: v for r, v in event.after.items() if v != event.inputs[r]}
        self.steps[-1].note = f"{event.kind}: {event.outcome.value}"
        self.steps[-1].written = tuple(transition.registers)
        return self.updated(path, transition.registers, transition.flags)


def replay(program: ast.Program, name: str, scenario: Scenario) -> ConcreteRun:
    """Run function ``name`` concretely on ``scenario``."""
    return _Replay(program, scenario).run(name)


# --- from a model ------------------------------------------------------------------------

def native_placement(path, rename=None) -> z3.BoolRef:
    """That ``path`` runs natively where the model puts it: its entry RSP
    on the harness's counterexample stack page and every memory access not
    through a symbol either in the stack window ``tdxproof replay`` watches
    (the frame and :data:`STACK_WATCH` bytes on each side) or in the
    harness's data region (on the merged paths where it happens).
    ``rename``: the module renaming of a relational check, whose second run
    accesses the renamed addresses too.

    The first page of the data region is left out: ``tdxproof replay``
    keeps it free between relocated windows.

    An access inside a struct the assumptions keep apart (the memory
    regions past the frame) needs only that the struct is not NULL: the
    struct's own condition puts all of it in the data region unless it is
    NULL, and a NULL struct's bytes are in neither place.  (The same
    models, with a 64-bit comparison and two subtractions fewer per
    access in every query that asks for a placed model.)  An access at the
    entry RSP plus a constant is in the stack window or not whatever the
    RSP: its distance to the window is that constant, so the condition is
    left out or is the data region's alone, not a subtraction and a
    comparison (and a function's configurations that differ in a push
    have the same placement)."""
    rsp = path.entry.regs["rsp"]
    conditions = [z3.Extract(63, 12, rsp) == COUNTEREXAMPLE_RSP_PAGE >> 12]
    accesses = [a for a in path.accesses
                if not any(isinstance(path.provenance.of(name), SymbolAddress) for name in summands(a.address))]
    addresses = [a.address for a in accesses]
    if rename is not None:
        accesses, addresses = accesses * 2, addresses + rename(addresses)
    stack_low = rsp - bv.const(STACK_DEPTH + STACK_WATCH, 64)

    def in_data(address, size: int) -> z3.BoolRef:
        return bv.ule(address - bv.const(DATA_BASE + PAGE, 64), bv.const(DATA_SIZE - PAGE - size, 64))

    lowest_elsewhere = min(DATA_BASE + PAGE, COUNTEREXAMPLE_RSP_PAGE - STACK_DEPTH - STACK_WATCH)
    structs = tuple((base, low, end) for base, low, end in path.entry.memory.regions[1:]
                    if 0 <= low <= end <= lowest_elsewhere)

    def inside(address, size: int) -> z3.BoolRef | None:
        """The access in the stack window or the data region (None: it is,
        whatever the RSP)."""
        struct = region_index(address, size, structs)
        if struct is not None:
            return z3.Not(bv.eq(structs[struct][0], bv.const(0, 64)))
        where, room = place(address), STACK_DEPTH + 2 * STACK_WATCH - size
        if where is not None and where.base_id == rsp.get_id():      # a constant distance to the window
            in_window = (where.offset + STACK_DEPTH + STACK_WATCH) % 2**64 <= room
            return None if in_window else in_data(address, size)
        return bv.disjunction([bv.ule(address - stack_low, bv.const(room, 64)), in_data(address, size)])

    for access, address in zip(accesses, addresses):
        condition = inside(address, access.width // 8)
        if condition is not None:
            conditions.append(condition if z3.is_true(access.guard) else z3.Implies(access.guard, condition))
    for base, low, end in path.entry.memory.regions[1:]:
        # The structs the assumptions keep apart (the frame is the first
        # region): the replay watches them, accessed or not (NULL stays NULL).
        conditions.append(bv.disjunction([bv.eq(base, bv.const(0, 64)),
                                          in_data(base + bv.const(low, 64), end - low)]))
    return bv.conjunction(conditions)


def _event_terms(events, rename=None) -> list[tuple[dict, z3.BitVecRef | None]]:
    """Each TDX event's output registers (by name, sorted) and status
    (``rename``: as the independent module of a relational check has them)."""
    out = []
    for event in events:
        outputs, status = dict(sorted(event.outputs.items())), event.status
        if rename is not None:
            names = list(outputs)
            terms = rename([outputs[n] for n in names] + ([status] if status is not None else []))
            outputs = dict(zip(names, terms))
            status = terms[-1] if status is not None else None
        out.append((outputs, status))
    return out


def _events(model, events, rename=None) -> list[dict]:
    out = []
    for event, (outputs, status) in zip(events, _event_terms(events, rename)):
        values = bv.values_in(model, [*outputs.values(), *([status] if status is not None else [])])
        out.append({"kind": event.kind, "index": event.index, "outcome": event.outcome.value,
                    "source": origin_json(event.origin),
                    "registers": {reg: _hex(value) for reg, value in zip(outputs, values)},
                    "status": None if status is None else _hex(values[-1])})
    return out


def _named_values(path) -> list[tuple[Source, z3.BitVecRef]]:
    """The path's symbol addresses, return addresses and external callees'
    results, each with its variable, in the order the path made them."""
    named = []
    for name, source in path.provenance:
        if isinstance(source, (SymbolAddress, ReturnAddress)):
            named.append((source, bv.variable(name, 64)))
        elif isinstance(source, CalleeResult):
            named.append((source, bv.variable(name, CALLEE_RESULT_WIDTHS[source.register])))
    return named


def scenario_from_model(model: z3.ModelRef, path, varied: bool = False) -> Scenario:
    """The scenario of ``path`` in ``model`` (``varied``: the independent
    module of a relational check)."""
    entry = path.entry
    registers = {reg: bv.value_in(model, entry.regs[reg]) for reg in GPR64}
    flags = {flag: bv.value_in(model, term) for flag, term in entry.flags.items()}
    symbols, callers = {}, {}
    for source, term in _named_values(path):
        if isinstance(source, CalleeResult):
            callers.setdefault(source.target, {}).setdefault(source.serial, {})[source.register] = \
                bv.value_in(model, term)
        else:
            symbols[source.name] = bv.value_in(model, term)
    external = {target: [calls[serial] for serial in sorted(calls)] for target, calls in callers.items()}
    rename = ModuleRenaming(path.provenance).rename if varied else None
    return Scenario(registers, flags, {}, _events(model, path.events, rename), symbols, external,
                    _byte_reader(model, entry.memory.array))


def shown_terms(path, relational: bool) -> tuple[list[z3.ExprRef], dict[int, int]]:
    """The terms whose values a counterexample of ``path`` shows, but for
    memory, in the order :func:`canonical_witness` makes them smallest --
    the entry registers, the entry flags, the symbols and return addresses
    and external callees' results, each TDX event's outputs and status
    (and the independent module's, ``relational``) -- and the values
    preferred to 0 (by term id): where :func:`native_placement` would put
    the entry RSP and each struct the assumptions keep apart (the bottom
    of the stack page, the start of the data region past its first page)."""
    entry = path.entry
    terms = [entry.regs[reg] for reg in GPR64] + list(entry.flags.values())
    terms += [term for _, term in _named_values(path)]
    renames = [None] + ([ModuleRenaming(path.provenance).rename] if relational else [])
    for rename in renames:
        for outputs, status in _event_terms(path.events, rename):
            terms += list(outputs.values()) + ([status] if status is not None else [])
    preferred = {entry.regs["rsp"].get_id(): COUNTEREXAMPLE_RSP_PAGE}
    for base, low, _ in entry.memory.regions[1:]:
        preferred.setdefault(base.get_id(), (DATA_BASE + PAGE - low) % 2**64)
    return terms, preferred


def canonical_witness(replays: "Replays", contract, pid: str, obligations: list[tuple[str, list]], query: Query,
                      model: z3.ModelRef, path) -> tuple[z3.ModelRef, list]:
    """The smallest model (:mod:`proofs.canonical`) of the constraints of
    the solver scope of ``query`` (the path, the violation of each of
    ``obligations`` of property ``pid`` -- (detail, its claims on the
    path), of each of which one is violated -- and the placement), of which
    ``model`` is one, and, for each obligation, the first of its claims it
    violates.  The order: the terms the scenario shows
    (:func:`shown_terms`), then the entry memory bytes the replay and its
    judgement read, by address (replayed until it reads no new byte; the
    judgement states every claim of the property, so the first detail's
    reads are every detail's), then each violated claim's expected and
    actual values (which the others determine, but for values the
    architecture leaves undefined).  The path's branches are then decided
    by the values, as the replay decides them."""
    minimiser = Minimiser(query, model)
    minimiser.lower(*shown_terms(path, PROPERTIES[pid].relational))
    read: set[int] = set()
    while True:
        scenarios = _replayed(replays, contract, pid, obligations[0][0], minimiser.model, path)[0]
        new = sorted(set(scenarios[0].memory) - read)
        if not new:
            break
        read.update(new)
        minimiser.lower(select_bytes(path.entry.memory.array, bv.const(address, 64), 1) for address in new)
    values = iter(bv.values_in(minimiser.model, [c.violated for _, claims in obligations for c in claims]))
    held = [[(claim, next(values)) for claim in claims] for _, claims in obligations]
    violated = [next((claim for claim, value in pairs if value), pairs[0][0]) for pairs in held]
    minimiser.lower(value for claim in violated for value in (claim.expected, claim.actual)
                    if isinstance(value, z3.ExprRef))
    return minimiser.model, violated


def _byte_reader(model: z3.ModelRef, array: z3.ArrayRef) -> Callable[[int], int]:
    """The entry memory's byte at an address, as ``model`` has it: read off
    the model's value of the whole array (stores over a constant array)
    once, instead of a model evaluation per byte; an array value of any
    other shape is evaluated byte by byte."""
    value, stored = model.eval(array, model_completion=True), {}
    while z3.is_store(value) and z3.is_bv_value(value.arg(1)) and z3.is_bv_value(value.arg(2)):
        stored.setdefault(value.arg(1).as_long(), value.arg(2).as_long())
        value = value.arg(0)
    if z3.is_const_array(value) and z3.is_bv_value(value.arg(0)):
        default = value.arg(0).as_long()
        return lambda address: stored.get(address, default)
    return lambda address: bv.value_in(model, z3.Select(array, z3.BitVecVal(address, 64)))


def _render(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (int, bool)):
        return _hex(int(value)) if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return str(value)


def _evaluated(model, value):
    if isinstance(value, z3.ExprRef):
        return _hex(bv.value_in(model, value)) if z3.is_bv(value) else str(model.eval(value))
    return _render(value)


def confirm(program: ast.Program, name: str, contract, pid: str, detail: str, runs: list[ConcreteRun],
            scenarios: list[Scenario]) -> bool:
    """Whether the concrete run(s) violate obligation (pid, detail)."""
    prop = PROPERTIES[pid]
    views = [run.view(scenario) for run, scenario in zip(runs, scenarios)]
    claims = prop.check(*views, contract) if prop.relational else prop.check(views[0], contract)
    return any(claim.detail == detail and claim.violated is True for claim in claims)


class Replays:
    """The concrete replays of function ``name`` of ``program``: the
    scenario(s) of a path in a model and their runs, each made once (the
    obligations of a group share their smallest model, and the last
    replay :func:`canonical_witness` made to find the memory it reads is
    usually of that model too)."""

    def __init__(self, program: ast.Program, name: str):
        self.program, self.name = program, name
        self._made: dict[tuple[int, int, bool], tuple] = {}

    def of(self, model: z3.ModelRef, path, relational: bool) -> tuple[list[Scenario], list[ConcreteRun], str]:
        """The scenario of ``path`` in ``model`` (``relational``: and the
        independent module's, on the same memory), their runs (none when
        one failed) and why the replay failed ("" when it did not)."""
        key = (id(model), id(path), relational)
        if key not in self._made:
            scenarios = [scenario_from_model(model, path)]
            if relational:
                scenarios.append(scenario_from_model(model, path, varied=True))
                scenarios[1].memory = scenarios[0].memory
            runs, problem = [], ""
            try:
                runs = [replay(self.program, self.name, scenario) for scenario in scenarios]
            except (ReplayDiverged, concrete.UndefinedValue, concrete.MissingSymbol) as error:
                problem = str(error)
            self._made[key] = (model, path, scenarios, runs, problem)    # model and path kept: ids not reused
        return self._made[key][2:]


def _replayed(replays: Replays, contract, pid, detail, model, path
              ) -> tuple[list[Scenario], list[ConcreteRun], bool, str]:
    """The scenario(s) of ``path`` in ``model`` replayed and judged: the
    scenarios, their runs, whether they violate obligation (pid, detail)
    and, when the replay failed, why.  (Judging reads the same memory
    whatever the detail: the property states every claim.)"""
    scenarios, runs, problem = replays.of(model, path, PROPERTIES[pid].relational)
    confirmed = False
    if not problem:
        try:
            confirmed = confirm(replays.program, replays.name, contract, pid, detail, runs, scenarios)
        except (ReplayDiverged, concrete.UndefinedValue, concrete.MissingSymbol) as error:
            problem = str(error)
    return scenarios, runs, confirmed, problem


def build_counterexample(replays: Replays, config, contract, pid, detail, model, path, claim, views,
                         settings) -> dict:
    """The JSON form of a refutation (SPEC.md section 8), replayed
    (:class:`Replays`: of its function) and checked."""
    program, name = replays.program, replays.name
    relational = PROPERTIES[pid].relational
    scenarios, runs, confirmed, problem = _replayed(replays, contract, pid, detail, model, path)
    cex = {
        "property": pid, "detail": detail, "function": name, "config": config,
        "files": list(program.files), "firmware": settings.firmware,
        "contract": contract.key if contract else None,
        **({"abi": contract_record(contract)} if contract else {}),
        "entry": {"registers": {reg: _hex(v) for reg, v in scenarios[0].registers.items()},
                  "flags": scenarios[0].flags},
        "memory": {_hex(a): _hex(b) for a, b in sorted(scenarios[0].memory.items())},
        "symbols": {n: _hex(v) for n, v in sorted(scenarios[0].symbols.items())},
        "external_calls": {t: [{r: _hex(v) for r, v in call.items()} for call in calls]
                           for t, calls in sorted(scenarios[0].external.items())},
        "tdx": scenarios[0].events,
        "path": [origin_json(origin) for origin in path.path_in(model)],
        "end": path.end,
        "where": origin_json(claim.origin) if claim.origin else None,
        "expected": _evaluated(model, claim.expected),
        "actual": _evaluated(model, claim.actual),
        "confirmed": confirmed,
    }
    if relational:
        cex["varied_tdx"] = scenarios[1].events
    if problem:
        cex["replay_problem"] = problem
    if runs:
        cex["trace"] = [trace_step_json(step) for step in runs[0].steps]
    return cex


def trace_step_json(step: TraceStep) -> dict:
    """A trace step as the counterexample holds it (``written``, ``loads``,
    ``stores`` and ``jumped`` only where the step has them)."""
    data = {"source": origin_json(step.origin), "instruction": step.text,
            "changed": {r: _hex(v) for r, v in step.changed.items()}, "note": step.note}
    if step.written:
        data["written"] = list(step.written)
    for key in ("loads", "stores"):
        if getattr(step, key):
            data[key] = [{"address": _hex(address), "size": size} for address, size in getattr(step, key)]
    if step.jumped:
        data["jumped"] = True
    return data


def scenario_from_json(cex: Mapping, varied: bool = False) -> Scenario:
    """The scenario a counterexample describes -- one just built, or a file
    :mod:`proofs.cex_file` validated (memory it lacks reads as a
    :class:`ReplayDiverged`)."""
    external = {t: [{r: _number(v) for r, v in call.items()} for call in calls]
                for t, calls in cex.get("external_calls", {}).items()}
    return Scenario({r: _number(v) for r, v in cex["entry"]["registers"].items()},
                    dict(cex["entry"]["flags"]),
                    {_number(a): _number(b) for a, b in cex["memory"].items()},
                    list(cex["varied_tdx"] if varied else cex["tdx"]),
                    {n: _number(v) for n, v in cex.get("symbols", {}).items()}, external)


def replay_counterexample(program: ast.Program, cex: Mapping) -> bool:
    """Replay a counterexample file concretely; whether it violates its
    property (judged by the contract it carries, ``abi``)."""
    contract = contract_from_record(cex["abi"], "the counterexample's abi") if cex.get("abi") else None
    relational = PROPERTIES[cex["property"]].relational
    scenarios = [scenario_from_json(cex)] + ([scenario_from_json(cex, varied=True)] if relational else [])
    runs = [replay(program, cex["function"], scenario) for scenario in scenarios]
    return confirm(program, cex["function"], contract, cex["property"], cex["detail"], runs, scenarios)
