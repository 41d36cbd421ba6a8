"""The symbolic executor: every path of one function, as Z3 terms.

It runs a function of a parsed :class:`grammar.ast.Program` from its entry,
in a fully symbolic entry state, and returns one :class:`PathResult` per
(merged) path.  The pieces are kept apart, KLEE-style: :class:`Path` is the
per-path state (immutable; a fork makes new ones), :class:`Executor` the
stepping loop over a worklist and the symbolic domain of the control
transfers (:mod:`model.transfers` defines them, for the counterexample
replay too), :class:`Solver` the wrapper that times and bounds every
query, and :mod:`model.tdx` / :mod:`model.extable` the models of the
special instructions and of the kernel's exception table.

Decisions recorded here:

* **Forks** happen at conditional branches (each side kept unless the solver
  proves it infeasible: a timeout keeps it), at TDX instructions (one path
  per outcome, see :mod:`model.tdx`) and at a nested ``ret`` whose target
  may differ from the call's return address.  A path carries a *witness*,
  a model of its conditions (at entry, one of the preconditions); a side
  the witness satisfies, or a model next to it satisfies (one symbol of
  the branch condition given another value, checked by evaluation:
  :func:`_nearby_witness`), is feasible without a query.  So the solver
  is asked only for a side no such model shows feasible -- on the fixture
  forms, 20 branch queries instead of 154, 2 of them unsat -- and a side
  is dropped only on its unsat answer.
* **Merge policy.**  Paths that reach the same instruction with the same
  call stack and the same *TDX event sequence* (kind, ordinal, outcome,
  source, output set and fixup of every event so far) are merged into one:
  their path conditions are or-ed, every register, flag, memory and event
  value becomes ``If(c, a, b)`` on the condition ``c`` of the first path's
  own suffix, and their logs (trace, memory accesses, fault sites) keep a
  guard per entry saying on which of the merged paths it happened.  So a
  run of k independent diamonds is one path, and the properties can still
  ask "on the fault path ...": paths that differ in a TDX outcome are never
  merged.  Paths that end are never merged.  The worklist always steps the
  path that is earliest in program order (call stack first), so the sides
  of a diamond wait for each other at the join.
* **Loops** are bounded: a path that transfers control to the same label
  (or function entry) more than ``loop_bound`` times ends as ``BOUND``; a
  call nesting deeper than ``call_depth`` ends as ``BOUND`` too.  The bound
  is reported in the result.
* **Calls.**  ``call`` to a function of the program is inlined: the pushed
  return address is a named symbol per call site (``return_<fn>_<index>``)
  and the matching ``ret`` resumes after the call -- when no write since
  the call can have reached the slot, or the solver shows the popped value
  is that symbol; a side where it may differ ends as ``UNSUPPORTED``
  (``preconditions`` and ``regions`` let a caller rule that out, e.g. by
  keeping an argument struct off the stack).  The outermost ``ret``
  returns to whatever is at the entry RSP (``returned_to``).  A call (or
  ``jmp``) to a name in ``never_returning`` ends the path as ``PANIC``.  Any
  other external call clobbers the System V caller-saved registers and the
  arithmetic flags with fresh values, clears DF (as the ABI requires of
  the callee), pops the return address and is recorded as an assumption
  (it preserves memory, the callee-saved registers and the extended
  state).  ``jmp __x86_return_thunk`` is a ``ret``; ``jmp`` to another
  function of the program is a tail call; ``jmp`` to another external name
  is an external call followed by ``ret``.
* **Faults.**  ``seamcall``/``tdcall`` faults and ``ud2`` (#UD) go through
  the exception table: routed or, with no entry, the path ends as ``OOPS``.
  ``int3`` (#BP) is never fixed up by the kernel: ``OOPS``.  Each such
  instruction on a path is logged as a :class:`FaultSite`.  Ordinary
  memory accesses are assumed not to fault (SPEC section 7).
* **Falling through.**  A path leaves the function's code other than by
  ``ret``, the return thunk, a tail call or a never-returning call when it
  runs past the function's last item (its last instruction is not a
  transfer, or a jump goes to a label at its very end), or when a ``jmp``,
  a conditional jump or an exception-table fixup goes to a code label
  outside every function.  Such a path ends as ``FALLTHROUGH``: ``where``
  is the last instruction it ran (the place it left), ``leaves_to`` says
  where it would go (past the end of the function, naming what follows it
  in its section, or the label), and paths about to leave are never merged,
  so ``where`` is that path's own.  What runs next is not this function's
  code and is not modelled (SPEC ``no-fallthrough`` refutes the path; the
  properties judged at a path's end cannot be decided on it).  Decisions:
  a jump to a label *inside another function* is followed -- the model
  runs that code as the CPU would, and compilers jump between a function
  and its ``.cold`` part that way; ``call`` of a code label outside every
  function stays ``UNSUPPORTED`` (it expects to come back, and the model
  cannot run that code); and when the instruction that would fall off is a
  ``call`` of an external function, the path is ``UNSUPPORTED``, not a
  fall-through: that callee most likely never returns, and the model only
  knows ``never_returning`` to be such.  ``int3``/``ud2`` padding after the
  last ``ret`` is never reached; a ``ud2`` that is reached is ``OOPS``.
* **Stores into code.**  A store whose address names a label of a code
  section -- in the operand itself (``movq %rax, foo+8(%rip)``) or, once
  computed, as a summand of the address (``lea foo(%rip), %rdx; movq %rax,
  8(%rdx,%rcx,8)``) -- ends the path as ``UNSUPPORTED`` before it writes,
  naming the label and the instruction: self-modifying code is not
  modelled, so the result is unknown, never proved.  This is decided here,
  on the path, rather than when the program is loaded: an address held in
  a register is only known symbolically, and a store on an infeasible path
  is no error.  Loads from code are ordinary loads, and so is a store
  through a pointer loaded from code.
* **Unsupported** instructions (the lifter's ``UnsupportedInstruction``),
  a store into code, an exception-table entry of an unmodelled type, or a
  nested ``ret`` to an unexpected address end the path as ``UNSUPPORTED``
  with the reason in ``detail``; a property must never count such a path
  as proved.
* **Provenance.**  Every fresh value a path makes -- the entry state, an
  undefined value (``undefined<n>_<why>``), a symbol's address
  (``symbol_<name>``), a call site's return address, an external callee's
  results (``<target>_<serial>_<register>``), a TDX-module function -- is
  recorded in the path's :class:`model.provenance.Provenance`, which every
  consumer reads instead of the names.
* Every memory access is logged as a :class:`MemoryAccess` with its address,
  width and the RSP at that moment (for ``no-red-zone`` and ``frame``).
* **What an interrupt would find.**  Before every instruction a path runs,
  an :class:`InterruptPoint` logs RBP and the memory (a reference to the
  immutable chain: no load is made here) together with the entry RSP and
  RBP of the function the instruction belongs to -- the outermost one, or
  the inlined callee whose call is open (its entry RSP is the slot its
  call pushed, its entry RBP the RBP at that call) -- and whether the
  instruction is a ``call``: what the kernel's frame-pointer unwinder
  would walk from, were an interrupt or NMI taken just before the
  instruction (SPEC ``frame-pointer``).  The state after a TDX instruction
  or an exception-table fixup is the one before the next instruction, so
  it is logged too; the state after the outermost ``ret`` is the
  caller's.  One term per instruction, no solver query.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import itertools
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import z3

from grammar import ast
from grammar.source import Origin, SourceError
from model import abi, bv, ir, symbolic
from model.extable import Fixup, Location
from model.memory import Memory, Region
from model.outcomes import Verdict
from model.provenance import (NO_PROVENANCE, CalleeResult, EntryValue, Provenance, ReturnAddress, Source,
                              SymbolAddress, Undefined, callee_result_name, return_address_name, symbol_name)
from model.symbolic import SymbolicState
from model.tdx import ARITHMETIC_FLAGS, Outcome, Rewrite, TdxEvent, TdxModel, Transition, entry_extended_state
from model.transfers import (DEFAULT_NEVER_RETURNING, RET, PathEnd, Transfers, ir_expressions, past_end)

TRUE = z3.BoolVal(True)


@dataclass(frozen=True)
class ExecutorOptions:
    """How the executor behaves.

    ``tdx``: the model of the TDX instructions (:class:`model.tdx.TdxModel`).
    ``never_returning``: callees that end a path as ``PANIC``.
    ``loop_bound``: transfers to one label allowed per path; ``call_depth``:
    inlined calls allowed in one stack.  ``solver_timeout``: seconds per
    query.  ``entry_prefix`` names the entry state's symbols (``entry_rax``
    ...).  ``merge=False`` turns path merging off (one result per path).
    ``preconditions``: constraints on the entry state (terms over
    ``SymbolicState.fresh(entry_prefix)``, whose names are fixed), assumed
    from the start of every path and part of its condition -- for instance
    that an argument struct does not overlap the stack frame, without which
    an inlined callee's write-back could reach its own return-address slot.
    ``regions``: memory regions the preconditions keep apart, as
    :class:`model.memory.Memory` takes them (loads pass stores made in
    another region); with ``exclusive_frame`` the first of them is the
    function's frame, which no access through another base reaches (the
    caller asserts that of each path's accesses).
    """

    tdx: TdxModel = field(default_factory=TdxModel)
    never_returning: frozenset[str] = DEFAULT_NEVER_RETURNING
    loop_bound: int = 16
    call_depth: int = 8
    solver_timeout: float = 10.0
    entry_prefix: str = "entry"
    merge: bool = True
    preconditions: tuple[z3.BoolRef, ...] = ()
    regions: tuple[Region, ...] = ()
    exclusive_frame: bool = False

    def __post_init__(self) -> None:
        if self.loop_bound < 1 or self.call_depth < 0 or self.solver_timeout <= 0:
            raise ValueError("loop bound, call depth and solver timeout must be positive")


# --- what a path records ---------------------------------------------------

@dataclass(frozen=True, eq=False)
class MemoryAccess:
    """One memory read or write: ``width`` bits at ``address`` by an
    instruction that found RSP at ``rsp`` and left it at ``rsp_after``;
    ``guard`` says on which of the merged paths it happened."""

    kind: str
    address: z3.BitVecRef
    width: int
    rsp: z3.BitVecRef
    origin: Origin
    guard: z3.BoolRef = TRUE
    rsp_after: z3.BitVecRef | None = None

    @property
    def stack_floor(self) -> z3.BitVecRef:
        """The lower of RSP before and after the instruction: a ``push``
        writes just above its new RSP, a ``pop`` reads just above its old
        one, and neither touches the red zone (``no-red-zone`` compares
        ``address`` with this)."""
        after = self.rsp if self.rsp_after is None else self.rsp_after
        return after if after.eq(self.rsp) else z3.If(bv.ult(after, self.rsp), after, self.rsp)

    def map_terms(self, rewrite: Rewrite) -> "MemoryAccess":
        return dataclasses.replace(self, address=rewrite(self.address), rsp=rewrite(self.rsp),
                                   guard=rewrite(self.guard),
                                   rsp_after=None if self.rsp_after is None else rewrite(self.rsp_after))


@dataclass(frozen=True, eq=False)
class FaultSite:
    """An instruction that may fault: its traps, and whether the exception
    table handles every one of them (``fixup``: the label it resumes at)."""

    instruction: str
    traps: tuple[int, ...]
    handled: bool
    fixup: str | None
    origin: Origin
    guard: z3.BoolRef = TRUE

    def map_terms(self, rewrite: Rewrite) -> "FaultSite":
        return dataclasses.replace(self, guard=rewrite(self.guard))


@dataclass(frozen=True, eq=False)
class InterruptPoint:
    """The state an interrupt taken just before the instruction at
    ``origin`` would find: RBP and the memory (``rbp``, ``memory``), the RSP
    and RBP at entry to the function the instruction runs in
    (``frame_rsp``, ``frame_rbp``: the outermost function's, or an inlined
    callee's), and whether the instruction is a ``call``; ``guard`` says on
    which of the merged paths it happened."""

    origin: Origin
    rbp: z3.BitVecRef
    memory: Memory
    frame_rsp: z3.BitVecRef
    frame_rbp: z3.BitVecRef
    call: bool
    guard: z3.BoolRef = TRUE

    def map_terms(self, rewrite: Rewrite, memories: dict | None = None) -> "InterruptPoint":
        """``memories``: the chains already rewritten (shared by one path's records)."""
        return dataclasses.replace(
            self, rbp=rewrite(self.rbp), memory=self.memory.substituted(rewrite, self.memory.regions, memories),
            frame_rsp=rewrite(self.frame_rsp), frame_rbp=rewrite(self.frame_rbp), guard=rewrite(self.guard))


@dataclass(frozen=True)
class Frame:
    """An inlined call: resume at ``resume`` when ``ret`` pops ``return_address``,
    which the call pushed at ``slot`` (the callee's entry RSP) with RBP at
    ``rbp`` (the callee's entry RBP); the path's memory accesses from index
    ``first_access`` on happened after that push."""

    callee: str
    resume: Location
    return_address: z3.BitVecRef
    slot: z3.BitVecRef
    first_access: int
    rbp: z3.BitVecRef

    @property
    def key(self) -> tuple:
        """What two paths' frames must share to be merged (Z3 terms are
        hash-consed: equal terms have equal ids)."""
        return (self.callee, self.resume, self.slot.get_id(), self.rbp.get_id())


@dataclass(frozen=True, eq=False)
class PathResult:
    """One finished (possibly merged) path.

    ``trace``/``trace_guards`` are parallel: the i-th source line ran on
    the merged paths where ``trace_guards[i]`` holds (:meth:`path_in` picks
    one concrete path's lines from a model; ``points``, guarded alike,
    what an interrupt before each instruction the path ran would find).  ``detail`` says why a path
    ended (the bound, the unsupported instruction, the never-returning
    callee ...), ``where`` the source line it ended at, ``returned_to`` the
    address the final ``ret`` jumped to (``RETURNED`` only), ``leaves_to``
    where a ``FALLTHROUGH`` path goes when it leaves the function's code.
    """

    condition: z3.BoolRef
    state: SymbolicState
    entry: SymbolicState
    events: tuple[TdxEvent, ...]
    trace: tuple[Origin, ...]
    end: PathEnd
    assumptions: tuple[str, ...]
    trace_guards: tuple[z3.BoolRef, ...] = ()
    accesses: tuple[MemoryAccess, ...] = ()
    faults: tuple[FaultSite, ...] = ()
    detail: str = ""
    where: Origin | None = None
    returned_to: z3.BitVecRef | None = None
    extended: z3.ExprRef | None = None
    entry_extended: z3.ExprRef | None = None
    bound: int | None = None
    leaves_to: str = ""
    points: tuple[InterruptPoint, ...] = ()
    provenance: Provenance = NO_PROVENANCE

    def map_terms(self, rewrite: Rewrite, renamed: Mapping[str, str] = {}) -> "PathResult":
        """The same path with ``rewrite`` applied to every term of it (a
        substitution); ``renamed``: the variables it renames, by name, which
        the provenance follows."""
        memories: dict = {}

        def state(s: SymbolicState) -> SymbolicState:
            return SymbolicState({r: rewrite(v) for r, v in s.regs.items()},
                                 {f: rewrite(v) for f, v in s.flags.items()},
                                 s.memory.substituted(rewrite, s.memory.regions, memories))

        def optional(term):
            return None if term is None else rewrite(term)

        # Events and accesses first: the order the new terms are made in
        # decides the ids Z3 gives them, and the solver's models depend on those.
        events = tuple(event.map_terms(rewrite) for event in self.events)
        accesses = tuple(access.map_terms(rewrite) for access in self.accesses)
        return dataclasses.replace(
            self, condition=rewrite(self.condition), state=state(self.state), entry=state(self.entry),
            events=events, trace_guards=tuple(rewrite(g) for g in self.trace_guards), accesses=accesses,
            faults=tuple(fault.map_terms(rewrite) for fault in self.faults), returned_to=optional(self.returned_to),
            extended=optional(self.extended), entry_extended=optional(self.entry_extended),
            points=tuple(point.map_terms(rewrite, memories) for point in self.points),
            provenance=self.provenance.renamed(renamed))

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return tuple(event.outcome for event in self.events)

    def path_in(self, model: z3.ModelRef) -> tuple[Origin, ...]:
        """The source lines of the one concrete path that ``model`` takes."""
        return tuple(origin for origin, guard in zip(self.trace, self.trace_guards) if bv.value_in(model, guard))


@dataclass(frozen=True, eq=False)
class Path:
    """The per-path state of a run in progress (never mutated: a step makes
    a new one, so forked paths share nothing mutable)."""

    location: Location
    frames: tuple[Frame, ...]
    state: SymbolicState
    extended: z3.ExprRef
    conditions: tuple[z3.BoolRef, ...] = ()
    witness: z3.ModelRef | None = None
    events: tuple[TdxEvent, ...] = ()
    trace: tuple[Origin, ...] = ()
    guards: tuple[z3.BoolRef, ...] = ()
    accesses: tuple[MemoryAccess, ...] = ()
    faults: tuple[FaultSite, ...] = ()
    assumptions: tuple[str, ...] = ()
    visits: Mapping[str, int] = field(default_factory=dict)
    points: tuple[InterruptPoint, ...] = ()
    provenance: Provenance = NO_PROVENANCE

    def with_(self, **changes) -> "Path":
        """This path with some fields replaced (a copy of its fields, not
        ``dataclasses.replace``, whose ``__init__`` is the executor's most
        called function: a step makes two or three paths)."""
        unknown = changes.keys() - _PATH_FIELDS
        if unknown:
            raise TypeError(f"Path has no field {sorted(unknown)[0]!r}")
        path = object.__new__(Path)
        path.__dict__.update(self.__dict__)
        path.__dict__.update(changes)
        return path

    def assuming(self, condition: z3.BoolRef, witness: z3.ModelRef | None = None) -> "Path":
        """This path where ``condition`` holds too (``witness``: a model of
        every condition, when one is known)."""
        return self.with_(conditions=self.conditions + (condition,), witness=witness)

    def made(self, sources: Mapping[str, Source]) -> "Path":
        """This path with the sources of fresh values it made (by name) recorded."""
        return self if not sources else self.with_(provenance=self.provenance.with_(sources))

    def assume_text(self, text: str) -> "Path":
        return self if text in self.assumptions else self.with_(assumptions=self.assumptions + (text,))

    @property
    def merge_key(self) -> tuple:
        return (self.location, tuple(frame.key for frame in self.frames),
                tuple(event.merge_key for event in self.events))


_PATH_FIELDS = frozenset(item.name for item in dataclasses.fields(Path))


# --- the solver wrapper ------------------------------------------------------

SOLVER_PARAMETERS = {"random_seed": 0}
"""Every solver's parameters besides its timeout, set explicitly."""


class Query:
    """The queries of one open :meth:`Solver.scope`: calling it asks
    (:meth:`Solver._ask`: the scope's constraints with ``more``, and the
    query's own ``assuming``, which are not pushed: what the solver learns
    from the query stays for the next); :attr:`core`: the unsat core of
    the last unsat query with assumptions."""

    def __init__(self, solver: "Solver"):
        self._solver = solver

    def __call__(self, *more: z3.BoolRef, assuming: tuple[z3.BoolRef, ...] = ()
                 ) -> tuple[Verdict, z3.ModelRef | None]:
        return self._solver._ask(*more, assuming=assuming)

    @property
    def core(self) -> list[z3.BoolRef]:
        return self._solver.core

    def add(self, *constraints: z3.BoolRef) -> None:
        """``constraints`` added to the scope (which must be the innermost one open)."""
        self._solver._solver.add(*constraints)

    def constraints(self) -> list[z3.BoolRef]:
        """Everything the solver asserts now (the scopes open, their holds
        and the preconditions)."""
        return list(self._solver._solver.assertions())

    def fresh(self, constraints: tuple[z3.BoolRef, ...]) -> "Query":
        """The queries of a new solver that holds ``constraints`` alone,
        with this one's timeout and parameters."""
        return Query(Solver(self._solver.timeout_ms / 1000, constraints))


class Solver:
    """Every query the executor asks, each with a timeout; a timeout is
    ``UNKNOWN``, which callers must treat as "maybe" (never "infeasible").

    One incremental Z3 solver holds the preconditions; each query is
    asked under ``push``/``pop``.  The preconditions' 64-bit comparisons
    are bit-blasted once instead of once per query (measured: 184 queries
    of the fixture trees, 2.0 s one-shot, 0.74 s incremental).
    :meth:`shared` hands the same solver to every asker of the same
    preconditions (the prover asks after the executor), so models depend
    only on the order of the queries; :meth:`holding` keeps a path's
    context asserted for the prover's scopes of that path.

    Tried and dropped: no push or pop at all, every constraint asserted
    once for the solver's life behind a Boolean of its own (``Implies(b,
    c)``) and each query assuming the Booleans of its scopes, so that a
    term shared by many paths is taken in once.  On the fixture forms'
    check (its workers' stages timed and summed, 2026-12-03) the solver's
    checks took 2.4 s instead of 1.2 (the executor's 101 queries 0.93 s
    instead of 0.09: every constraint of every path stays in the search),
    push and pop's 0.57 s saved did not make up for it, and the reports'
    models differed.

    Z3's default parameters are kept (:data:`SOLVER_PARAMETERS` only fixes
    the seed): replayed by ``bench/solver_variants.py`` on the 1222 checks
    of the fixture forms (``check --matrix CONFIG_FRAME_POINTER``), CPU
    seconds in the checks, median of 3 interleaved rounds on the loaded
    2-core machine: default 10.5, ``model.compact=false`` 10.9 (0.70 s in
    the models, not 0.81), ``smt.bv.delay`` 11.4, ``smt.relevancy=0``
    11.5; in single rounds ``smt.relevancy=1`` and
    ``smt.phase_selection=0``/``5`` were 10-30% slower still.  None is a
    gain beyond the rounds' spread (+-15%), and
    ``z3.SolverFor("QF_BV")`` (not incremental) did not finish the replay
    in minutes."""

    _recent: dict[tuple, "Solver"] = {}

    def __init__(self, timeout: float, preconditions: tuple[z3.BoolRef, ...] = ()):
        self.timeout_ms = max(1, int(timeout * 1000))
        self.preconditions = tuple(preconditions)
        self.reason = ""
        self.core: list[z3.BoolRef] = []
        self._solver = z3.Solver()
        self._solver.set("timeout", self.timeout_ms, **SOLVER_PARAMETERS)
        self._solver.add(*self.preconditions)
        self._hold: tuple[z3.BoolRef, ...] | None = None    # holding()'s constraints past the preconditions,
        self._held = False                                  # and whether they are asserted
        self._open = 0                                      # scopes open
        self._model: z3.ModelRef | None = None              # of the preconditions alone (model())

    @classmethod
    def shared(cls, timeout: float, preconditions: tuple[z3.BoolRef, ...]) -> "Solver":
        """The solver of these preconditions and timeout (the last few kept)."""
        key = (id(z3.main_ctx()), timeout) + tuple(p.get_id() for p in preconditions)
        if key not in cls._recent:
            while len(cls._recent) >= 4:
                del cls._recent[next(iter(cls._recent))]
            cls._recent[key] = cls(timeout, preconditions)
        return cls._recent[key]

    def check(self, constraints: tuple[z3.BoolRef, ...]) -> tuple[Verdict, z3.ModelRef | None]:
        """``constraints`` with the preconditions (a leading copy of them is skipped)."""
        with self.scope(constraints) as ask:
            return ask()

    @contextlib.contextmanager
    def scope(self, constraints: tuple[z3.BoolRef, ...]) -> Iterator["Query"]:
        """``constraints`` held for several queries: ``ask(*more)`` is the
        query of them with ``more`` (each with the timeout), so that the
        later ones start from what the solver made of the first (the
        prover's queries for a natively placed model of a refutation,
        asked after the one that found it: about 40% less time in them
        on the fixture forms than asked afresh).  Scopes nest.  A leading
        copy of the preconditions, and then of what :meth:`holding`
        holds, is not added again."""
        skip = self._leading(constraints, self.preconditions)
        leads = self._hold is not None and self._leading(constraints[skip:], self._hold) == len(self._hold)
        if not self._open and leads != self._held:
            self._held = not self._held          # pushed at the first scope that starts with the hold; dropped
            if self._held:                       # by one that does not
                self._solver.push()
                self._solver.add(*self._hold)
            else:
                self._solver.pop()
                self._hold = None
        held = len(self._hold) if leads and self._held else 0
        self._solver.push()
        self._open += 1
        try:
            self._solver.add(*constraints[skip + held:])
            yield Query(self)
        finally:
            self._open -= 1
            self._solver.pop()

    @contextlib.contextmanager
    def holding(self, constraints: tuple[z3.BoolRef, ...]) -> Iterator[None]:
        """``constraints`` asserted once for the scopes opened within that
        start with them (:meth:`scope`: a path's context, for its claims,
        their refutations and their smallest models), instead of once per
        scope, which made the solver take them in again and undo them at
        its end: the fixture forms' check in one process, 9.4 s of CPU so,
        8.9 s held).  They are asserted at the first such scope (a path
        whose claims need no query costs nothing), and dropped for good at
        one, opened in no other, that does not start with them.  Not
        nested in a scope or another hold."""
        if self._open or self._hold is not None:
            raise RuntimeError("Solver.holding within a scope or another hold")
        self._hold = tuple(constraints[self._leading(constraints, self.preconditions):])
        try:
            yield
        finally:
            if self._held:
                self._solver.pop()
            self._hold, self._held = None, False

    @staticmethod
    def _leading(constraints: tuple[z3.BoolRef, ...], copy: tuple[z3.BoolRef, ...]) -> int:
        """How many of the first of ``constraints`` are those of ``copy``."""
        count = 0
        for given, held in zip(constraints, copy):
            if given is not held and not given.eq(held):
                break
            count += 1
        return count

    def _ask(self, *more: z3.BoolRef, assuming: tuple[z3.BoolRef, ...] = ()
             ) -> tuple[Verdict, z3.ModelRef | None]:
        """The query of the scope's constraints with ``more``; ``assuming``:
        assumptions of the query alone, of which an unsat answer leaves a
        subset that is unsat on its own in :attr:`core`."""
        if more:
            self._solver.push()
        try:
            self._solver.add(*more)
            answer = self._solver.check(*assuming)
            if answer == z3.sat:
                return Verdict.SAT, self._solver.model()
            if answer == z3.unsat:
                self.core = list(self._solver.unsat_core()) if assuming else []
                return Verdict.UNSAT, None
            self.reason = self._solver.reason_unknown()
            return Verdict.UNKNOWN, None
        finally:
            if more:
                self._solver.pop()

    def model(self) -> z3.ModelRef | None:
        """A model of the preconditions alone (None: unsat, or unknown),
        asked once (each configuration of a function starts from it)."""
        if self._model is None:
            verdict, self._model = self.check(self.preconditions)
        return self._model

    def may_hold(self, conditions: tuple[z3.BoolRef, ...], condition: z3.BoolRef,
                 witness: z3.ModelRef | None = None) -> tuple[bool, z3.ModelRef | None]:
        """Whether ``condition`` may hold on a path (unknown counts as yes),
        and a model of the path's conditions with it, when one is known.
        ``witness``, a model of ``conditions``, answers without a query
        when ``condition`` holds in it."""
        simple = z3.simplify(condition)
        if z3.is_false(simple):
            return False, None
        if z3.is_true(simple):
            return True, witness
        if witness is not None and z3.is_true(witness.eval(simple, model_completion=True)):
            return True, witness
        verdict, model = self.check(conditions + (simple,))
        return verdict is not Verdict.UNSAT, model

    def single_value(self, conditions: tuple[z3.BoolRef, ...], term: z3.BitVecRef,
                     witness: z3.ModelRef | None = None) -> int | None:
        """The one value ``term`` has on every model of ``conditions``, if
        the solver can show there is just one (``witness``: a model of
        ``conditions``, when one is known)."""
        simple = z3.simplify(term)
        if z3.is_bv_value(simple):
            return simple.as_long()
        model = witness
        if model is None:
            verdict, model = self.check(conditions)
            if verdict is not Verdict.SAT:
                return None
        value = model.eval(term, model_completion=True)
        if self.check(conditions + (term != value,))[0] is Verdict.UNSAT:
            return value.as_long()
        return None


# --- the symbolic interpreter's environment ---------------------------------

CALLEE_RESULT_WIDTHS = {**{reg: 64 for reg in abi.CALLER_SAVED}, **{flag: 1 for flag in ARITHMETIC_FLAGS}}
"""What an external callee leaves fresh (:class:`model.provenance.CalleeResult`), with its width in bits."""


class _Environment:
    """The values the IR leaves to the interpreter -- fresh undefined
    values, symbol addresses and the current call site's return address --
    each with its source (``sources``, for the path's provenance)."""

    def __init__(self, counter: Iterator[int], site: Location):
        self._counter = counter
        self._site = site
        self.sources: dict[str, Source] = {}

    def fresh(self, width: int, reason: str) -> z3.BitVecRef:
        tag = "".join(ch if ch.isalnum() else "_" for ch in reason)[:40]
        return self._made(f"undefined{next(self._counter)}_{tag}", width, Undefined(reason))

    def symbol(self, name: str) -> z3.BitVecRef:
        return self._made(symbol_name(name), 64, SymbolAddress(name))

    def return_address(self) -> z3.BitVecRef:
        return self._made(return_address_name(self._site), 64, ReturnAddress(self._site))

    def _made(self, name: str, width: int, source: Source) -> z3.BitVecRef:
        self.sources[name] = source
        return bv.variable(name, width)


def _conjunction(conditions: tuple[z3.BoolRef, ...]) -> z3.BoolRef:
    if not conditions:
        return TRUE
    return conditions[0] if len(conditions) == 1 else z3.And(*conditions)


def _guarded(guard: z3.BoolRef, condition: z3.BoolRef) -> z3.BoolRef:
    return condition if z3.is_true(guard) else z3.And(guard, condition)


def _shared_prefix(left: tuple, right: tuple) -> int:
    count = 0
    for a, b in zip(left, right):
        if a is not b:
            break
        count += 1
    return count


def _overlap(a: z3.BitVecRef, a_size: int, b: z3.BitVecRef, b_size: int) -> z3.BoolRef:
    """Whether the byte ranges [a, a+a_size) and [b, b+b_size) share a byte,
    addresses wrapping around as the machine's do.

    >>> meet = lambda a, n, b, m: z3.simplify(_overlap(bv.const(a, 64), n, bv.const(b, 64), m))
    >>> meet(0, 8, 7, 1), meet(0, 8, 8, 8), meet(2**64 - 2, 4, 1, 1)
    (True, False, True)
    """
    return z3.Or(bv.ult(b - a, bv.const(a_size, 64)), bv.ult(a - b, bv.const(b_size, 64)))


def _reads_memory(term: z3.ExprRef) -> bool:
    """Whether ``term`` contains an array read.

    >>> memory = z3.Array("m", z3.BitVecSort(64), z3.BitVecSort(8))
    >>> _reads_memory(memory[bv.const(0, 64)] == 1), _reads_memory(bv.const(0, 64) == 1)
    (True, False)
    """
    seen, work = set(), [term]
    while work:
        node = work.pop()
        if z3.is_select(node):
            return True
        if node.get_id() not in seen:
            seen.add(node.get_id())
            work.extend(node.children())
    return False


def _updated(state: SymbolicState, registers: Mapping[str, z3.BitVecRef] = {},
             flags: Mapping[str, z3.BitVecRef] = {}) -> SymbolicState:
    """``state`` with some registers and flags replaced."""
    return dataclasses.replace(state, regs={**state.regs, **registers},
                               flags={**state.flags, **flags})


# --- leaving the function's code -------------------------------------------

def _code_symbols(program: ast.Program) -> dict[str, str]:
    """label -> where in code it is (``section .text``), for every label of
    a code section (function names included) that a memory operand names --
    the only way an address can come from one."""
    sections = {fn.name: f"section {fn.section}" for fn in program.functions}
    places = {name: sections.get(function, "outside every function")
              for name, (function, _) in program.labels.items()}
    places.update(sections)
    named = {operand.symbol for fn in program.functions for instr in fn.instructions
             for operand in instr.operands if isinstance(operand, ast.Memory) and operand.symbol in places}
    return {name: places[name] for name in named}


# --- the stepping loop -----------------------------------------------------

class Executor(Transfers[Path]):
    """Runs functions of one program under one set of options: the
    symbolic domain of :class:`model.transfers.Transfers`."""

    def __init__(self, program: ast.Program, options: ExecutorOptions = ExecutorOptions()):
        super().__init__(program, options.tdx, options.never_returning, options.loop_bound,
                         options.call_depth)
        self.options = options
        self.solver = Solver.shared(options.solver_timeout, tuple(options.preconditions))
        self._counter = itertools.count()
        self._results: list[PathResult] = []
        self._code = _code_symbols(program)
        self._store_labels: dict[Location, tuple[str, ...]] = {}

    # public

    def run(self, name: str) -> list[PathResult]:
        """Every path of function ``name`` from its entry."""
        try:
            self.program.function(name)
        except KeyError:
            raise SourceError(f"no function named {name!r} in the input") from None
        entry = SymbolicState.fresh(self.options.entry_prefix, self.options.regions, self.options.exclusive_frame)
        entry_extended = entry_extended_state(self.options.entry_prefix)
        self._entry, self._entry_extended = entry, entry_extended
        self._results = []
        worklist = [self.settled(Path((name, 0), (), entry, entry_extended,
                                      conditions=tuple(self.options.preconditions), witness=self._entry_witness(),
                                      provenance=Provenance(_entry_sources(entry, entry_extended))))]
        while worklist:
            path = min(worklist, key=self._program_order)
            worklist.remove(path)
            if self.options.merge and not past_end(self.program.function(path.location[0]), path.location[1]):
                partners = [other for other in worklist if other.merge_key == path.merge_key]
                for other in partners:
                    worklist.remove(other)
                    path = self._merge(path, other, worklist)
            worklist.extend(self.settled(successor) for successor in self.step(path))
        return self._results

    def _entry_witness(self) -> z3.ModelRef | None:
        """A model of the preconditions (an empty one when there are none)."""
        if not self.options.preconditions:
            return z3.Model()
        return self.solver.model()              # the solver of these preconditions (Solver.shared)

    # ordering and merging

    def _program_order(self, path: Path) -> tuple:
        points = [frame.resume for frame in path.frames] + [path.location]
        return tuple((self._order[function], index) for function, index in points)

    def _merge(self, a: Path, b: Path, worklist: list[Path]) -> Path:
        shared = _shared_prefix(a.conditions, b.conditions)
        if shared == len(a.conditions) or shared == len(b.conditions):
            worklist.append(b)   # not exclusive by construction: keep both
            return a
        first = _conjunction(a.conditions[shared:])
        second = _conjunction(b.conditions[shared:])

        def choose(x, y):
            return x if x.eq(y) else z3.If(first, x, y)

        def merge_map(x: Mapping, y: Mapping) -> dict:
            return {key: choose(x[key], y[key]) for key in x}

        state = dataclasses.replace(
            a.state, regs=merge_map(a.state.regs, b.state.regs),
            flags=merge_map(a.state.flags, b.state.flags),
            memory=a.state.memory.merged(first, b.state.memory))
        events = tuple(dataclasses.replace(
            x, inputs=merge_map(x.inputs, y.inputs), outputs=merge_map(x.outputs, y.outputs),
            status=None if x.status is None else choose(x.status, y.status),
            flags=merge_map(x.flags, y.flags))
            for x, y in zip(a.events, b.events))

        def merge_log(x: tuple, y: tuple) -> tuple:
            common = _shared_prefix(x, y)
            return (x[:common]
                    + tuple(dataclasses.replace(item, guard=_guarded(item.guard, first)) for item in x[common:])
                    + tuple(dataclasses.replace(item, guard=_guarded(item.guard, second)) for item in y[common:]))

        common = min(_shared_prefix(a.trace, b.trace), _shared_prefix(a.guards, b.guards))
        trace = a.trace[:common] + a.trace[common:] + b.trace[common:]
        guards = (a.guards[:common] + tuple(_guarded(g, first) for g in a.guards[common:])
                  + tuple(_guarded(g, second) for g in b.guards[common:]))
        visits = {label: max(a.visits.get(label, 0), b.visits.get(label, 0))
                  for label in {**a.visits, **b.visits}}
        return a.with_(
            state=state, extended=choose(a.extended, b.extended),
            conditions=a.conditions[:shared] + (z3.Or(first, second),),
            events=events, trace=trace, guards=guards,
            accesses=merge_log(a.accesses, b.accesses), faults=merge_log(a.faults, b.faults),
            points=merge_log(a.points, b.points),
            assumptions=a.assumptions + tuple(t for t in b.assumptions if t not in a.assumptions),
            visits=visits, provenance=a.provenance.merged(b.provenance))

    # the symbolic domain

    def finish(self, path: Path, end: PathEnd, detail: str = "", where: Origin | None = None, *,
               returned_to: z3.BitVecRef | None = None, bound: int | None = None,
               leaves_to: str = "") -> list[Path]:
        self._results.append(PathResult(
            condition=_conjunction(path.conditions), state=path.state, entry=self._entry,
            events=path.events, trace=path.trace, end=end, assumptions=path.assumptions,
            trace_guards=path.guards, accesses=path.accesses, faults=path.faults, detail=detail,
            where=where, returned_to=returned_to, extended=path.extended,
            entry_extended=self._entry_extended, bound=bound, leaves_to=leaves_to, points=path.points,
            provenance=path.provenance))
        return []

    def last_origin(self, path: Path) -> Origin | None:
        return path.trace[-1] if path.trace else None

    def execute(self, path: Path, instr: ast.Instruction, step: ir.Step) -> list[Path]:
        env = _Environment(self._counter, path.location)
        before = path.state
        evaluation = symbolic.Evaluation(before, env)
        after = symbolic.run_effects(step, evaluation)
        rsp, rsp_after = before.regs["rsp"], after.regs["rsp"]
        accesses = tuple(MemoryAccess(kind, address, width, rsp, instr.origin, rsp_after=rsp_after)
                         for kind, address, width in self.step_accesses(step, evaluation.value))
        taken = address = None
        if isinstance(step.control, ir.Branch):
            taken = bv.to_bool(evaluation.value(step.control.condition))
        elif isinstance(step.control, ir.Return):
            address = evaluation.value(step.control.address)
        path = path.made(env.sources)
        into_code = self._store_into_code(path, step, accesses)
        if into_code is not None:
            return self.finish(path, PathEnd.UNSUPPORTED,
                               f"store into code: '{instr}' at {instr.origin.render()} writes to "
                               f"{into_code[0]!r}, a label in code ({into_code[1]}); self-modifying "
                               f"code is not modelled", instr.origin)
        control = step.control
        path = path.with_(state=after, trace=path.trace + (instr.origin,), guards=path.guards + (TRUE,),
                          accesses=path.accesses + accesses,
                          points=path.points + (self._interrupt_point(path, before, instr.origin, control),))
        return self.control(path, instr, control, taken, address)

    def _interrupt_point(self, path: Path, before: SymbolicState, origin: Origin,
                         control: ir.Control | None) -> InterruptPoint:
        if path.frames:
            frame_rsp, frame_rbp = path.frames[-1].slot, path.frames[-1].rbp
        else:
            frame_rsp, frame_rbp = self._entry.regs["rsp"], self._entry.regs["rbp"]
        return InterruptPoint(origin, before.regs["rbp"], before.memory, frame_rsp, frame_rbp,
                              isinstance(control, ir.Call))

    def _store_into_code(self, path: Path, step: ir.Step, accesses: tuple[MemoryAccess, ...]
                         ) -> tuple[str, str] | None:
        """(label, where it is) when a write of this step goes to a label of
        code: its address names the label itself, or adds the label's
        symbol (plus constants or scaled registers)."""
        if not self._code:
            return None
        location = path.location
        if location not in self._store_labels:
            self._store_labels[location] = tuple(
                node.name for effect in step.effects if isinstance(effect, ir.Store)
                for node in ir_expressions(effect.address)
                if isinstance(node, ir.Symbol) and node.name in self._code)
        if self._store_labels[location]:
            name = self._store_labels[location][0]
            return name, self._code[name]
        for access in accesses:
            if access.kind == "write":
                for name in summands(access.address):
                    source = path.provenance.of(name)
                    if isinstance(source, SymbolAddress) and source.symbol in self._code:
                        return source.symbol, self._code[source.symbol]
        return None

    def sides(self, path: Path, taken: z3.BoolRef, origin: Origin) -> list[tuple[bool, Path]]:
        """Each side the solver does not prove infeasible (a timeout keeps it).
        A side that a model of the path's conditions satisfies, or one of
        the models next to it (:func:`_nearby_witness`), needs no query."""
        taken = z3.simplify(taken)
        sides = []
        possible, witness = self._may_hold(path, taken, path.witness)
        if possible:
            sides.append((True, path if z3.is_true(taken) else path.assuming(taken, witness)))
        not_taken = z3.simplify(z3.Not(taken))
        possible, witness = (True, path.witness) if not sides else \
            self._may_hold(path, not_taken, path.witness if witness is None else witness)
        if possible:
            sides.append((False, path if z3.is_true(not_taken) else path.assuming(not_taken, witness)))
        return sides

    def _may_hold(self, path: Path, condition: z3.BoolRef, witness) -> tuple[bool, object]:
        """:meth:`Solver.may_hold` of ``condition`` on ``path``, ``witness``
        a model of its conditions (or None); first among the models next
        to ``witness``."""
        nearby = _nearby_witness(path.conditions, condition, witness)
        if nearby is not None:
            return True, nearby
        return self.solver.may_hold(path.conditions, condition, witness)

    def constant(self, value: int, width: int) -> z3.BitVecRef:
        return bv.const(value, width)

    def updated(self, path: Path, registers: Mapping[str, z3.BitVecRef] = {},
                flags: Mapping[str, z3.BitVecRef] = {}) -> Path:
        return path.with_(state=_updated(path.state, registers, flags))

    def assume(self, path: Path, text: str) -> Path:
        return path.assume_text(text)

    def callee_results(self, path: Path, target: str) -> tuple[Path, dict[str, z3.BitVecRef]]:
        """Fresh values, one set per call."""
        serial = next(self._counter)
        widths = CALLEE_RESULT_WIDTHS
        names = {register: callee_result_name(target, serial, register) for register in widths}
        path = path.made({names[register]: CalleeResult(target, serial, register) for register in widths})
        return path, {register: bv.variable(names[register], width) for register, width in widths.items()}

    def pop_return_address(self, path: Path, origin: Origin, own: bool) -> tuple[Path, z3.BitVecRef]:
        env = _Environment(self._counter, path.location)
        before = path.state
        after = symbolic.execute(RET, before, env)
        address = symbolic.evaluate(RET.control.address, before, env)
        path = path.with_(state=after)
        if own:
            rsp = before.regs["rsp"]
            path = path.with_(accesses=path.accesses + (
                MemoryAccess("read", rsp, 64, rsp, origin, rsp_after=after.regs["rsp"]),))
        return path, address

    def discard_return_address(self, path: Path) -> Path:
        return self.updated(path, {"rsp": path.state.regs["rsp"] + bv.const(8, 64)})

    def open_frame(self, path: Path, callee: str, resume: Location) -> Path:
        name = return_address_name(path.location)
        frame = Frame(callee, resume, bv.variable(name, 64), path.state.regs["rsp"],
                      len(path.accesses), path.state.regs["rbp"])
        return path.made({name: ReturnAddress(path.location)}).with_(frames=path.frames + (frame,))

    def resume_caller(self, path: Path, address: z3.BitVecRef, origin: Origin) -> list[Path]:
        """Resume after the call when the ``ret`` provably pops the call's
        return address; a side where it may not ends as ``UNSUPPORTED``."""
        frame = path.frames[-1]
        resumed = path.with_(location=frame.resume, frames=path.frames[:-1])
        if self._slot_untouched(path, frame):
            return [resumed]
        expected = address == frame.return_address
        if self.solver.may_hold(path.conditions, z3.Not(expected), path.witness)[0]:
            stray = path.assuming(z3.simplify(z3.Not(expected)))
            self.finish(stray, PathEnd.UNSUPPORTED,
                        f"ret from inlined {frame.callee} to an address other than its caller's", origin)
            possible, witness = self.solver.may_hold(path.conditions, expected, path.witness)
            if not possible:
                return []
            resumed = resumed.assuming(z3.simplify(expected), witness)
        return [resumed]

    def _slot_untouched(self, path: Path, frame: Frame) -> bool:
        """Whether the ``ret`` closing ``frame`` provably read the slot its
        call pushed, no write since reaching that slot: then it returns to
        the caller.  Writes relative to the same register are decided by
        simplification; the rest by one bit-vector query, asked only when
        their addresses do not themselves come from memory (a query the
        solver finds easy, unlike the same question about memory terms).
        When this cannot tell, the caller asks about the return address."""
        read_at = path.state.regs["rsp"] - bv.const(8, 64)
        if not z3.is_true(z3.simplify(read_at == frame.slot)):
            return False
        open_writes = []
        for access in path.accesses[frame.first_access:]:
            if access.kind == "write":
                overlap = z3.simplify(_overlap(access.address, access.width // 8, frame.slot, 8))
                if not z3.is_false(overlap):
                    open_writes.append(_guarded(access.guard, overlap))
        if not open_writes:
            return True
        if any(_reads_memory(write) for write in open_writes):
            return False
        return not self.solver.may_hold(path.conditions, z3.Or(open_writes), path.witness)[0]

    def tdx_transitions(self, path: Path, kind: str, routes: Mapping[Outcome, Fixup | None],
                        origin: Origin) -> list[Transition]:
        """Every outcome the model allows (:meth:`model.tdx.TdxModel.transitions`)."""
        index = sum(1 for event in path.events if event.kind == kind)
        return self.tdx.transitions(
            kind, index, origin, path.state.regs, path.extended, routes,
            lambda term: self.solver.single_value(path.conditions, term, path.witness))

    def fault_site(self, path: Path, instruction: str, traps: tuple[int, ...], handled: bool,
                   fixup: str | None, origin: Origin) -> Path:
        return path.with_(faults=path.faults + (FaultSite(instruction, traps, handled, fixup, origin),))

    def take(self, path: Path, transition: Transition) -> Path:
        return self.updated(path.made(transition.sources), transition.registers, transition.flags).with_(
            extended=transition.extended, events=path.events + (transition.event,))


# --- models next to a known one ---------------------------------------------

class Reinterpreted:
    """A model with some symbols given other values: constants other
    constants, uninterpreted functions constant functions.  It evaluates
    like a Z3 model (``eval(term, model_completion=True)``), exactly: a
    term is substituted and evaluated in the model, so what it says holds
    does hold in a model (the base one with those symbols reinterpreted)."""

    def __init__(self, model, constants: tuple = (), functions: tuple = ()):
        self.model = model
        self.constants = constants          # ((constant, value), ...)
        self.functions = functions          # ((declaration, constant body), ...)

    def eval(self, term: z3.ExprRef, model_completion: bool = True) -> z3.ExprRef:
        if self.constants:
            term = z3.substitute(term, *self.constants)
        if self.functions:
            term = z3.substitute_funs(term, *self.functions)
        return self.model.eval(term, model_completion=True)

    def changed(self, symbol, value: z3.BitVecRef) -> "Reinterpreted":
        """This model with ``symbol`` (a constant or a function declaration) taking ``value``."""
        if isinstance(symbol, z3.FuncDeclRef):
            functions = tuple(pair for pair in self.functions if not pair[0].eq(symbol)) + ((symbol, value),)
            return Reinterpreted(self.model, self.constants, functions)
        constants = tuple(pair for pair in self.constants if not pair[0].eq(symbol)) + ((symbol, value),)
        return Reinterpreted(self.model, constants, self.functions)


NEARBY_SYMBOLS = 3
"""How many of a condition's symbols :func:`_nearby_witness` tries changing."""
NEARBY_NODES = 48
"""How many subterms of a condition it looks through for them."""


def _nearby_witness(conditions: tuple[z3.BoolRef, ...], condition: z3.BoolRef, witness) -> Reinterpreted | None:
    """A model of ``conditions`` and ``condition`` that differs from
    ``witness`` (a model of ``conditions``) in one bit-vector symbol of
    ``condition``: a constant with a low or high bit flipped, or 0 or 1,
    or an uninterpreted function made the constant 0, 1 or all ones; None
    when none of these is one.  Each candidate is checked by evaluation, ``condition`` first,
    then every condition at once (their conjunction: an evaluation costs
    about the same whatever the term, :func:`model.bv.values_in`): it is a
    model, never a guess.  So a branch
    on a fresh value (the status a TDX instruction returns, a bit of an
    argument) needs no query for its second side."""
    if witness is None:
        return None
    base = witness if isinstance(witness, Reinterpreted) else Reinterpreted(witness)
    held = bv.conjunction(list(conditions))
    for symbol, width in _symbols(condition):
        if isinstance(symbol, z3.FuncDeclRef):
            values = (0, 1, (1 << width) - 1)
        else:
            now = base.eval(symbol).as_long()
            values = tuple(dict.fromkeys(v for v in (now ^ 1, now ^ (1 << (width - 1)), 0, 1) if v != now))
        for value in values:
            candidate = base.changed(symbol, bv.const(value, width))
            if z3.is_true(candidate.eval(condition)) and z3.is_true(candidate.eval(held)):
                return candidate
    return None


def _symbols(term: z3.ExprRef) -> list[tuple[object, int]]:
    """Up to :data:`NEARBY_SYMBOLS` bit-vector constants and uninterpreted
    functions (declarations) of ``term``, with their widths, outermost
    first, from its first :data:`NEARBY_NODES` subterms; the arguments of
    a function and the operands of an array read are not looked into
    (changing those is seldom what flips a branch, and they are the large
    part of a term)."""
    found: dict = {}
    work, looked = collections.deque([term]), 0
    while work and looked < NEARBY_NODES and len(found) < NEARBY_SYMBOLS:
        node = work.popleft()
        looked += 1
        if not z3.is_app(node):
            continue
        kind = node.decl().kind()
        if kind == z3.Z3_OP_UNINTERPRETED:
            if z3.is_bv(node):
                symbol = node if node.num_args() == 0 else node.decl()
                found.setdefault((node.decl().name(), node.num_args()), (symbol, node.size()))
        elif kind != z3.Z3_OP_SELECT:
            work.extend(node.children())
    return list(found.values())


def summands(address: z3.BitVecRef) -> list[str]:
    """The names of the variables ``address`` adds (through ``bvadd``, the
    left side of ``bvsub`` and both arms of the ``If`` of merged paths): the
    symbol's for ``foo + 8 + rcx*4``.  Walked through Z3's C API, a few
    calls a node and no Python term made (z3py's walk was about 0.2 s of
    the fixture forms' check: a refutation's placement asks it of every
    access of its path).

    >>> x, y = bv.variable("x", 64), bv.variable("y", 64)
    >>> sorted(summands(x + y * 4 - 8)), summands(x * y)
    (['x'], [])
    >>> sorted(summands(z3.If(x == 0, y + 8, x)))
    ['x', 'y']
    """
    core, context = z3.z3core, address.ctx.ref()
    names, work = [], [address.as_ast()]
    while work:
        node = work.pop()
        if core.Z3_get_ast_kind(context, node) != z3.Z3_APP_AST:
            continue
        declaration = core.Z3_get_app_decl(context, node)
        kind = core.Z3_get_decl_kind(context, declaration)
        if kind == z3.Z3_OP_UNINTERPRETED:
            if core.Z3_get_app_num_args(context, node) == 0:
                names.append(core.Z3_get_symbol_string(context, core.Z3_get_decl_name(context, declaration)))
        elif kind == z3.Z3_OP_BADD:
            work += [core.Z3_get_app_arg(context, node, i) for i in range(core.Z3_get_app_num_args(context, node))]
        elif kind == z3.Z3_OP_BSUB:
            work.append(core.Z3_get_app_arg(context, node, 0))
        elif kind == z3.Z3_OP_ITE:
            work += [core.Z3_get_app_arg(context, node, 1), core.Z3_get_app_arg(context, node, 2)]
    return names


def _entry_sources(entry: SymbolicState, extended: z3.ExprRef) -> dict[str, Source]:
    """The entry state's values, each an :class:`EntryValue`."""
    terms = {**entry.regs, **entry.flags, "memory": entry.memory.array, "extended state": extended}
    return {term.decl().name(): EntryValue(what) for what, term in terms.items()}


def execute_function(program: ast.Program, name: str,
                     options: ExecutorOptions = ExecutorOptions()) -> list[PathResult]:
    """Every path of function ``name`` of ``program``, from a fully symbolic
    entry state (see the module docstring for what a path is)."""
    return Executor(program, options).run(name)
