"""Refactoring equivalence: do two implementations look the same to a caller?

Given an :class:`proofs.equiv_spec.EquivSpec`, it runs both functions with
the symbolic executor from two entry states tied by the spec's relation,
pairs their paths, and proves the observables equal on every feasible pair
-- or builds a counterexample: one concrete entry state per side, the TDX
module's behaviour, both paths, and the first observable that differs.

Decisions recorded here:

* **One caller, one module.**  Both sides are called by the same caller:
  the same entry RSP and the same memory (the right side's ``right_rsp`` and
  ``right_mem`` are replaced by the left's), and the same calling context
  as ``check``'s (:mod:`proofs.assumptions`; an access through a pointer
  other than RSP lies clear of the frame and the return-address slot,
  asserted per pair of paths).  The module is one and the same: both
  executors use the namespace ``module``, so a module output is the same
  uninterpreted function of the same registers on both sides
  (:mod:`model.tdx`'s reads: the spec's ``module.reads``, else, for a
  TDG.VP.VMCALL with a known RCX bitmap, RAX, RCX and the registers it
  exposes -- a register the VMM is not handed cannot change its answers
  -- else every GPR but RSP).  Its *outcome* (completion,
  VMfailInvalid, #UD, #GP) is such a function too (``module_<kind>_outcome``):
  a side may only see another outcome than the other if it handed the
  module other inputs.  Everything else free on the right -- the values
  its provenance says are its own run's (undefined flag values, external
  callees' results, return addresses of call sites) -- is renamed
  ``right.<name>``: the two sides share no accidental values.
* **Relation and structs.**  The relation is asserted; each register
  equation ``left.X == right.Y`` is also substituted into the right side's
  terms (same solutions, far easier queries).  A contradictory relation is
  a spec error.  Every declared struct is assumed non-NULL (unless
  ``nullable``), 8-byte aligned, not wrapping, and clear of the callee's
  frame and the return-address slot; two structs are one object when the
  relation equates their pointers, otherwise they do not overlap.  All of
  it is printed with the verdict.
* **Pairing.**  Every left path is tried against every right path under
  the assumptions, the relation and both path conditions, each query
  through one :class:`model.executor.Solver` of the assumptions and the
  relation (with the user's timeout; unknown is never "infeasible").  An
  infeasible pair says nothing.  A feasible pair whose TDX instruction sequences
  differ (another number or order of kinds) is a difference
  (``tdx-sequence``), and so is one whose outcomes differ
  (``tdx-outcome``).  Otherwise the observables are compared in a fixed
  order, and the first that can differ is the one reported: ``end``
  (returned vs panicked vs oops), ``returned-to``, the observed registers
  in the spec's order, the spec's ``observe.equal`` terms, then
  ``memory``.  Panic and oops paths observe only how they ended.
* **Memory outside the frame.**  Both final memories are the shared entry
  memory under each side's stores, so they can only differ at an address
  some store of either side wrote: one claim per stored byte, outside the
  callee's frame (``properties.STACK_DEPTH`` bytes below the entry RSP;
  the return-address slot is outside) and, with
  ``outside-frame-and-structs``, outside every declared struct (those are
  compared field by field through ``observe.equal``).
* **Verdicts** as for ``check``: a difference refutes -- when its
  counterexample replays concretely: one that does not is a bug of ours,
  and its pair counts as unknown (never DIFFERENT); otherwise a pair
  whose query is unknown, or a feasible pair with a path that ended at a
  bound or on something unsupported, makes the verdict unknown; only all
  pairs settled makes it equivalent.
* **Counterexamples** reuse :mod:`proofs.counterexample`: each side's
  scenario comes from the same Z3 model -- one in which both sides run
  natively where it puts them, when there is one, and of those the
  smallest (:mod:`proofs.canonical`, :func:`_smallest_model`), so that the
  counterexample is the same bytes whatever the solver was asked before --
  and is replayed with the concrete interpreter; ``confirmed`` says whether the replays really differ in the
  reported observable.  Each side's part has the shape of a ``check``
  counterexample (entry, memory, symbols, external calls, TDX events, path,
  trace) plus its files, front-end options and source digests (the file
  format is :mod:`proofs.cex_file`'s), and the spec's struct pointers are
  recorded with it, so ``tdxproof replay`` can run either side natively
  without reading the spec again.  For every TDX event the inputs the sides gave
  the module are listed, with those that can differ and where each side
  got them (an entry register, a struct field).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import z3

from grammar import ast
from grammar.ast import GPR64
from grammar.caches import CACHES
from grammar.frontend import FrontEndOptions, load_program
from model import bv, concrete
from model.executor import ExecutorOptions, PathEnd, PathResult, Solver, execute_function
from model.memory import Memory, place, select_bytes
from model.symbolic import SymbolicState
from model.outcomes import Verdict
from model.tdx import Outcome, TdxModel
from proofs import TOOL, VERSION
from proofs.assumptions import (LEFT, RIGHT, caller_assumptions, formulas, frame_region, pointer_accesses_off_frame,
                                struct_region)
from proofs.assumptions import texts as assumption_texts
from proofs.cex_file import front_end_json, source_digests
from proofs.canonical import Minimiser
from proofs.counterexample import (ReplayDiverged, Scenario, shown_terms, native_placement, origin_json,
                                   replay, scenario_from_model)
from proofs.equiv_spec import EquivSpec, Equation, Side, SpecError, Term
from proofs.listing import program_text
from proofs.outcomes import Equivalence, unconfirmed_reason
from proofs.properties import STACK_DEPTH

RENAMED = "right."
"""Prefix of the right side's own free values (see the module docstring)."""
OUTCOME_CODES = {outcome: code for code, outcome in enumerate(Outcome)}


@dataclass
class EquivResult:
    """The verdict, the printed assumptions and, for ``different``, the
    counterexample (a JSON-ready dict); ``reasons`` say why ``unknown``."""

    verdict: Equivalence
    spec: str
    sides: dict[str, dict]
    assumptions: list[str]
    observables: list[str]
    feasible_pairs: int
    pairs: int
    reasons: list[str] = field(default_factory=list)
    counterexample: dict | None = None


# --- the two runs ------------------------------------------------------------------

def _path_terms(path: PathResult) -> Iterator:
    yield path.condition
    yield from path.state.regs.values()
    yield from path.state.flags.values()
    yield path.state.memory.array
    for event in path.events:
        yield from event.inputs.values()
        yield from event.outputs.values()
        yield from event.flags.values()
        if event.status is not None:
            yield event.status
    yield from path.trace_guards
    for access in path.accesses:
        yield access.address
        yield access.guard
    for fault in path.faults:
        yield fault.guard
    if path.returned_to is not None:
        yield path.returned_to


def _caller_pairs(spec: EquivSpec) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """What the right side's entry variables become: the left's RSP and
    memory (one caller), and the left register each ``left.X == right.Y``
    of the relation equates it with (the relation is asserted too, so this
    only spares the solver the detour)."""
    pairs = [(bv.variable("right_rsp", 64), bv.variable("left_rsp", 64)),
             (_memory_array(RIGHT), _memory_array(LEFT))]
    replaced = {"rsp"}
    for equation in spec.relation:
        terms = {t.side: t for t in (equation.left, equation.right)}
        if equation.op != "==" or set(terms) != {LEFT, RIGHT} or not all(t.register for t in terms.values()):
            continue
        if terms[RIGHT].register not in replaced:
            replaced.add(terms[RIGHT].register)
            pairs.append((bv.variable(f"right_{terms[RIGHT].register}", 64),
                          bv.variable(f"left_{terms[LEFT].register}", 64)))
    return pairs


def _share_caller(paths: list[PathResult], pairs: list[tuple[z3.ExprRef, z3.ExprRef]]) -> list[PathResult]:
    """The right side's paths with ``pairs`` substituted and the values of
    its own run (``per_run`` in their provenance) renamed (module docstring)."""
    found: dict[str, z3.ExprRef] = {}
    seen: set[int] = set()
    for path in paths:
        for name, node in bv.free_constants(_path_terms(path), seen).items():
            found.setdefault(name, node)
    sources = {name: source for path in paths for name, source in path.provenance}
    own = {name: node for name, node in found.items() if name in sources and sources[name].per_run}
    renamed = {name: RENAMED + name for name in own}
    pairs = list(pairs) + [(own[name], z3.Const(renamed[name], own[name].sort())) for name in sorted(own)]
    rewrite = bv.substitution(pairs)
    return [path.map_terms(rewrite, renamed) for path in paths]


def _memory_array(side: str) -> z3.ArrayRef:
    return z3.Array(f"{side}_mem", z3.BitVecSort(64), z3.BitVecSort(8))


def _entries(pairs: list[tuple[z3.ExprRef, z3.ExprRef]]) -> tuple[dict, dict]:
    """The two entry states as the executor names them (for the relation),
    and as the proofs see them (the right one under ``pairs``)."""
    named = {side: SymbolicState.fresh(side) for side in (LEFT, RIGHT)}
    right = named[RIGHT]
    shared = SymbolicState({r: z3.substitute(v, *pairs) for r, v in right.regs.items()}, right.flags,
                           Memory.of_array(_memory_array(LEFT)))
    named[RIGHT] = SymbolicState(right.regs, right.flags, Memory.of_array(_memory_array(LEFT)))
    return named, {LEFT: named[LEFT], RIGHT: shared}


# --- terms, assumptions, relation ------------------------------------------------------

def term_value(term: Term, entries: Mapping[str, SymbolicState], finals: Mapping[str, SymbolicState] | None
               ) -> z3.BitVecRef:
    """A spec term at entry (``finals`` None) or at the end."""
    if term.constant is not None:
        return bv.const(term.constant % 2**64, 64)
    state = (finals or entries)[term.side]
    if term.register is not None:
        return state.regs[term.register]
    pointer = entries[term.side].regs[term.struct.register]
    return state.load(pointer + bv.const(term.struct.fields[term.field], 64), 8)


def _equation(equation: Equation, entries, finals=None) -> z3.BoolRef:
    a, b = term_value(equation.left, entries, finals), term_value(equation.right, entries, finals)
    return a == b if equation.op == "==" else a != b


def _distinct_structs(spec: EquivSpec, entries, solver: Solver) -> tuple[list[z3.BoolRef], list[str]]:
    """Two declared structs are one object when the relation equates their
    pointers (under the ``solver``'s assumptions), else distinct objects
    that do not overlap."""
    formulas, texts = [], []
    structs = spec.structs
    for position, a in enumerate(structs):
        for b in structs[position + 1:]:
            (a0, a1), (b0, b1) = struct_region(a, entries), struct_region(b, entries)
            if solver.check((a0 != b0,))[0] is Verdict.UNSAT:
                texts.append(f"structs {a.side}.{a.name} and {b.side}.{b.name} are one object "
                             f"(the relation equates their pointers)")
            else:
                formulas.append(z3.Or(bv.ule(a1, b0), bv.ule(b1, a0)))
                texts.append(f"structs {a.side}.{a.name} and {b.side}.{b.name} are distinct objects "
                             f"and do not overlap")
    return formulas, texts


def _relation(spec: EquivSpec, entries, solver: Solver) -> list[z3.BoolRef]:
    """The relation's formulas; a contradictory relation (under the
    ``solver``'s assumptions) is a spec error naming the keys of a minimal
    unsatisfiable core (each equation dropped that the contradiction
    does not need)."""
    formulas = [_equation(equation, entries) for equation in spec.relation]
    if solver.check(tuple(formulas))[0] is Verdict.UNSAT:
        needed = list(zip(spec.relation, formulas))
        for item in list(needed):
            if solver.check(tuple(f for other, f in needed if other is not item[0]))[0] is Verdict.UNSAT:
                needed.remove(item)
        core = sorted(equation.key for equation, _ in needed)
        texts = "; ".join(e.text for e in spec.relation if e.key in core)
        raise SpecError(spec.path, ", ".join(core) or "relation",
                        f"the relation is contradictory ({texts or 'with the assumptions'}): "
                        f"no two entry states satisfy it")
    return formulas


def _side_regions(spec: EquivSpec, name: str) -> tuple:
    """The regions one side's executor may keep apart, in its own names:
    its frame and its first non-NULL struct (the assumptions keep the two
    apart; two structs of one side may be one object)."""
    entry = SymbolicState.fresh(name).regs
    regions = [frame_region(entry["rsp"])]
    structs = [struct for struct in spec.structs if struct.side == name and not struct.nullable]
    if structs:
        regions.append((entry[structs[0].register], 0, structs[0].size))
    return tuple(regions)


def _regions(spec: EquivSpec, entries, solver: Solver) -> tuple:
    """Memory regions the assumptions (the ``solver``'s) keep apart, for
    read-over-write resolution: the frame, and every non-NULL struct
    provably not at the address of another one already chosen."""
    regions = [frame_region(entries[LEFT].regs["rsp"])]
    chosen: list[z3.BitVecRef] = []
    for struct in spec.structs:
        pointer = entries[struct.side].regs[struct.register]
        if struct.nullable or any(pointer.eq(other) for other in chosen):
            continue
        if not chosen or solver.check((z3.Or([pointer == other for other in chosen]),))[0] is Verdict.UNSAT:
            chosen.append(pointer)
            regions.append((pointer, 0, struct.size))
    return tuple(regions)


# --- observables -------------------------------------------------------------------------

@dataclass(frozen=True)
class Observable:
    """One thing the caller may see differ: ``violated`` (a formula, or
    ``True`` when the pair's feasibility alone shows it), and how to read
    the two sides' values from a model."""

    name: str
    kind: str
    violated: object
    left: object = None
    right: object = None
    bytes: tuple = ()
    equation: Equation | None = None


def _outcome_constraints(path: PathResult) -> list[z3.BoolRef]:
    """Each event's outcome as the module's outcome function of its inputs."""
    constraints = []
    for event in path.events:
        domain = [z3.BitVecSort(64)] * (1 + len(event.reads))
        function = z3.Function(f"module_{event.kind}_outcome", *domain, z3.BitVecSort(8))
        value = function(bv.const(event.index, 64), *[event.inputs[r] for r in event.reads])
        constraints.append(value == bv.const(OUTCOME_CODES[event.outcome], 8))
    return constraints


def _sequence(path: PathResult) -> str:
    return ", ".join(event.kind for event in path.events) or "no TDX instruction"


def _observables(spec: EquivSpec, left: PathResult, right: PathResult, entries, regions: tuple
                 ) -> list[Observable]:
    if [e.kind for e in left.events] != [e.kind for e in right.events]:
        return [Observable("tdx-sequence", "tdx", True, _sequence(left), _sequence(right))]
    for position, (a, b) in enumerate(zip(left.events, right.events)):
        if a.outcome is not b.outcome:
            return [Observable(f"tdx-outcome #{position}", "tdx", True, a.outcome.value, b.outcome.value)]
    observables = []
    if left.end is not right.end:
        return [Observable("end", "end", True, left.end, right.end)] if spec.observe_end else []
    if left.end is not PathEnd.RETURNED:
        return []
    if spec.observe_end:
        observables.append(Observable("returned-to", "returned-to", left.returned_to != right.returned_to,
                                      left.returned_to, right.returned_to))
    for name in spec.observed_registers:
        bank = "regs" if name in GPR64 else "flags"
        a, b = getattr(left.state, bank)[name], getattr(right.state, bank)[name]
        observables.append(Observable(name, "register" if bank == "regs" else "flag", a != b, a, b))
    finals = {name: dataclasses.replace(path.state, memory=path.state.memory.substituted(_same, regions))
              for name, path in ((LEFT, left), (RIGHT, right))}
    for equation in spec.observed_equal:
        a, b = term_value(equation.left, entries, finals), term_value(equation.right, entries, finals)
        violated = a != b if equation.op == "==" else a == b
        observables.append(Observable(equation.text, "term", violated, a, b, equation=equation))
    if spec.memory != "none":
        observables.append(_memory_observable(spec, left, right, entries, finals))
    return observables


def _same(term: z3.ExprRef) -> z3.ExprRef:
    return term


def _memory_observable(spec: EquivSpec, left: PathResult, right: PathResult, entries, finals
                       ) -> Observable:
    rsp = entries[LEFT].regs["rsp"]
    low = rsp - bv.const(STACK_DEPTH, 64)
    excluded = [(low, rsp)]
    known = [(rsp, -STACK_DEPTH, 0)]
    if spec.memory == "outside-frame-and-structs":
        excluded += [struct_region(struct, entries) for struct in spec.structs]
        known += [(entries[s.side].regs[s.register], 0, s.size) for s in spec.structs]
    claims = []
    for path in (left, right):
        for access in path.accesses:
            if access.kind != "write":
                continue
            at = place(access.address)
            for offset in range(access.width // 8):
                if at is not None and at.base is not None and any(
                        at.base.eq(variable) and low_offset <= at.signed_offset + offset < end
                        for variable, low_offset, end in known):
                    continue     # inside the frame or an excluded struct: nothing to compare
                address = access.address + bv.const(offset, 64)
                outside = z3.And([z3.Not(z3.And(bv.ule(start, address), bv.ult(address, end)))
                                  for start, end in excluded])
                a, b = finals[LEFT].load(address, 1), finals[RIGHT].load(address, 1)
                claims.append((z3.And(access.guard, outside, a != b), address, a, b, access.origin))
    violated = z3.Or([claim[0] for claim in claims]) if claims else z3.BoolVal(False)
    return Observable("memory", "memory", violated, bytes=tuple(claims))


# --- deciding ------------------------------------------------------------------------------

_PATHS = CACHES.cache("equiv executor runs", 64)
"""Executor runs by (the program's full listing, function, options, side):
specs that differ only in what they observe or relate (``strict.toml`` next
to ``equiv.toml``) share them; a changed input never hits a stale entry.
Bounded: ``mutate`` asks one run per surviving mutant."""


@dataclass
class _Run:
    """One side's run: ``files`` are what the front end read (each ``.c``
    of the spec compiled to assembly)."""

    side: Side
    files: list[str]
    program: ast.Program
    front_end: FrontEndOptions
    paths: list[PathResult]


def _run_side(spec: EquivSpec, side: Side, configs: Mapping[str, bool], firmware: str, timeout: float,
              loop_bound: int, pairs: list) -> _Run:
    front_end = dataclasses.replace(side.front_end, configs={**side.front_end.configs, **configs})
    files = side.assembly_files()
    program = load_program(files, front_end)
    names = [fn.name for fn in program.functions]
    if side.function not in names:
        raise SpecError(spec.path, f"{side.name}.function",
                        f"no function named {side.function!r} in {', '.join(side.files)} "
                        f"(functions: {', '.join(names) or 'none'})")
    tdx = TdxModel(firmware=firmware, module_outputs=spec.module_outputs, module_reads=spec.module_reads,
                   tdcall_may_fault=spec.tdcall_may_fault)
    options = ExecutorOptions(tdx=tdx, solver_timeout=timeout, loop_bound=loop_bound, entry_prefix=side.name,
                              regions=_side_regions(spec, side.name), exclusive_frame=True)
    key = (program_text(program), side.function, tdx.firmware,
           tuple(sorted(tdx.module_outputs.items())), tuple(sorted(tdx.module_reads.items())),
           tdx.tdcall_may_fault, options.solver_timeout, options.loop_bound, side.name,
           tuple((str(variable), low, end) for variable, low, end in options.regions))
    if key not in _PATHS:
        _PATHS[key] = execute_function(program, side.function, options)
    paths = _PATHS[key]
    return _Run(side, files, program, front_end, _share_caller(paths, pairs) if side.name == RIGHT else paths)


@dataclass
class Comparison:
    """Both sides run under one caller and one module: what every question
    about a pair of their paths needs (the spec, the runs, the entry
    states as the proofs see them, the solver of the assumptions and the
    relation, the memory regions they keep apart) and the printed
    assumptions."""

    spec: EquivSpec
    runs: dict[str, _Run]
    entries: dict[str, SymbolicState]
    solver: Solver
    regions: tuple
    assumptions: list[str]
    made: tuple = field(default=(), repr=False)
    """The terms made on the way (the entry states as the executors name
    them, the relation, the stated assumptions), kept alive as long as the
    comparison: Z3 reuses the ids of freed terms, and which model a query
    finds depends on them (the counterexamples stay those of one run)."""

    def pairs(self) -> Iterator[tuple[PathResult, PathResult]]:
        """Every left path with every right path, in order."""
        for left in self.runs[LEFT].paths:
            for right in self.runs[RIGHT].paths:
                yield left, right

    def constraints(self, left: PathResult, right: PathResult) -> tuple[z3.BoolRef, ...]:
        """What a pair of paths assumes: both path conditions, the pointer
        accesses clear of the frame, each TDX outcome the module's."""
        rsp = self.entries[LEFT].regs["rsp"]
        return (left.condition, right.condition, *pointer_accesses_off_frame(left.accesses, rsp),
                *pointer_accesses_off_frame(right.accesses, rsp), *_outcome_constraints(left),
                *_outcome_constraints(right))

    def observables(self, left: PathResult, right: PathResult) -> list[Observable]:
        """What the caller compares on a pair, in the order of the module docstring."""
        return _observables(self.spec, left, right, self.entries, self.regions)

    def counterexample(self, left: PathResult, right: PathResult, constraints: tuple, model: z3.ModelRef,
                       observable: Observable, observables: list[Observable]) -> dict:
        """The counterexample of ``observable`` on a pair, from a model of
        ``constraints`` (the pair's and the violation's), replayed."""
        return _counterexample(self.spec, self.runs, left, right, self.entries, self.solver, constraints, model,
                               observable, observables)


def prepare(spec: EquivSpec, configs: Mapping[str, bool] | None = None, firmware: str | None = None,
            timeout: float = 10.0, loop_bound: int = 16) -> Comparison:
    """Both sides of ``spec`` run, their entry states tied by the relation
    (checked: a contradictory one is a spec error), and the assumptions."""
    configs = dict(configs or {})
    firmware = firmware or spec.firmware
    pairs = _caller_pairs(spec)
    named, entries = _entries(pairs)
    one_caller = named[RIGHT].regs["rsp"] == named[LEFT].regs["rsp"]
    stated = caller_assumptions(spec, named)
    texts = assumption_texts(stated)
    relation = _relation(spec, named, Solver(timeout, (*formulas(stated), one_caller)))
    assumed = formulas(caller_assumptions(spec, entries)) + [one_caller]
    distinct, distinct_texts = _distinct_structs(spec, named, Solver(timeout, (*assumed, *relation)))
    texts += distinct_texts
    runs = {side.name: _run_side(spec, side, configs, firmware, timeout, loop_bound, pairs)
            for side in spec.sides}
    texts.insert(0, f"firmware: {firmware}")
    for name, run in runs.items():
        label = ",".join(f"{k}={'y' if v else 'n'}" for k, v in run.front_end.configs.items()) or "default"
        texts.append(f"{name} configuration: {label}")
        for path in run.paths:
            for text in path.assumptions:
                if f"{name}: {text}" not in texts:
                    texts.append(f"{name}: {text}")
    solver = Solver(timeout, (*assumed, *distinct, *relation))
    return Comparison(spec, runs, entries, solver, _regions(spec, entries, solver), texts,
                      (pairs, named, one_caller, stated, relation, assumed, distinct))


def check_equivalence(spec: EquivSpec, configs: Mapping[str, bool] | None = None, firmware: str | None = None,
                      timeout: float = 10.0, loop_bound: int = 16) -> EquivResult:
    """Decide whether the spec's two sides are equivalent (module docstring)."""
    comparison = prepare(spec, configs, firmware, timeout, loop_bound)
    runs = comparison.runs
    sides = {name: {"files": list(run.side.files), "function": run.side.function} for name, run in runs.items()}
    result = EquivResult(Equivalence.EQUIVALENT, spec.path, sides, comparison.assumptions, [], 0, 0)
    result.observables = (["end", "returned-to"] if spec.observe_end else []) + list(spec.observed_registers) \
        + [e.text for e in spec.observed_equal] + ([f"memory ({spec.memory})"] if spec.memory != "none" else [])
    for left, right in comparison.pairs():
        result.pairs += 1
        found = _decide_pair(comparison, left, right, result)
        if found is not None and not found["confirmed"]:
            result.reasons.append(f"pair ({describe_path(left)}; {describe_path(right)}): "
                                  f"{found['difference']['observable']} may differ, but "
                                  + unconfirmed_reason(found.get("replay_problem")))
        elif found is not None:
            result.verdict, result.counterexample = Equivalence.DIFFERENT, found
            return result
    if result.reasons:
        result.verdict = Equivalence.UNKNOWN
    return result


def feasible_pair(comparison: Comparison, left: PathResult, right: PathResult, reasons: list[str]
                  ) -> tuple[tuple, z3.ModelRef | None]:
    """The constraints of a pair and, when the pair is feasible, a model
    of them (else None, with the reason in ``reasons`` when that is not
    "infeasible": an unknown query)."""
    pair = comparison.constraints(left, right)
    answer, model = comparison.solver.check(pair)
    if answer is Verdict.UNKNOWN:
        reasons.append(f"pair ({describe_path(left)}; {describe_path(right)}): feasibility unknown "
                       f"({comparison.solver.reason})")
    return pair, model


def unmodelled_end(left: PathResult, right: PathResult) -> str | None:
    """Why a pair says nothing about what the caller sees: a path that
    ended at a bound or on something unsupported (what follows is not
    modelled); None when both are modelled to their end."""
    for path, name in ((left, LEFT), (right, RIGHT)):
        if path.end in (PathEnd.BOUND, PathEnd.UNSUPPORTED, PathEnd.FALLTHROUGH):
            where = f" at {path.where.render()}" if path.where else ""
            return f"a {name} path ended ({path.end}){where}: {path.detail}"
    return None


def _decide_pair(comparison: Comparison, left: PathResult, right: PathResult, result: EquivResult) -> dict | None:
    pair, model = feasible_pair(comparison, left, right, result.reasons)
    if model is None:
        return None
    solver = comparison.solver
    result.feasible_pairs += 1
    unmodelled = unmodelled_end(left, right)
    if unmodelled:
        result.reasons.append(unmodelled)
        return None
    observables = comparison.observables(left, right)
    for observable in observables:
        if observable.violated is True:
            return comparison.counterexample(left, right, pair, model, observable, observables)
        violated = z3.simplify(observable.violated)
        if z3.is_false(violated):
            continue
        answer, model = solver.check(pair + (violated,))
        if answer is Verdict.SAT:
            return comparison.counterexample(left, right, pair + (violated,), model, observable, observables)
        if answer is Verdict.UNKNOWN:
            result.reasons.append(f"{observable.name} on pair ({describe_path(left)}; {describe_path(right)}): "
                                  f"solver {solver.reason}")
    return None


def _native_model(solver: Solver, constraints: tuple, model: z3.ModelRef, left: PathResult, right: PathResult
                  ) -> tuple[tuple, z3.ModelRef]:
    """``constraints`` (satisfied by ``model``) with both sides running
    natively where the model puts them
    (:func:`proofs.counterexample.native_placement`), and a model of that,
    if there is one; else ``constraints`` and ``model``."""
    placed = constraints + (native_placement(left), native_placement(right))
    answer, found = solver.check(placed)
    return (placed, found) if answer is Verdict.SAT else (constraints, model)


def describe_path(path: PathResult) -> str:
    """How a path ended, after which TDX events."""
    events = ", ".join(e.describe() for e in path.events) or "no TDX instruction"
    return f"{path.end} after {events}"


# --- counterexamples -------------------------------------------------------------------------

def _hex(model: z3.ModelRef, term) -> str:
    return f"{model.eval(term, model_completion=True).as_long():#x}"


def _sources(solver: Solver, constraints: tuple, model: z3.ModelRef, value: z3.BitVecRef, side: str, register: str,
             entries, spec: EquivSpec) -> list[str]:
    """Where ``value`` provably comes from (under ``constraints``, of which
    ``model`` is one): the entry register of that name or a struct field
    of that name at entry."""
    candidates = [(f"entry {register}", entries[side].regs[register])]
    for struct in spec.sides[0 if side == LEFT else 1].structs.values():
        if register in struct.fields:
            term = Term(f"{side}.{struct.name}.{register}", side, struct=struct, field=register)
            candidates.append((f"{struct.name}->{register} at entry", term_value(term, entries, None)))
    return [text for text, candidate in candidates
            if not solver.may_hold(constraints, value != candidate, model)[0]]


def _differing_inputs(left, right, solver: Solver, constraints: tuple, model: z3.ModelRef
                      ) -> tuple[list[tuple], tuple, z3.ModelRef]:
    """Per paired event, the module inputs that can differ under
    ``constraints`` (of which ``model`` is one: a register it already
    tells apart needs no query), and the constraints with all of them
    differing at once, when they can, with a model of those."""
    rows, differing = [], []
    for a, b in zip(left.events, right.events):
        if a.kind != b.kind:
            break
        may_differ = [reg for reg in a.reads if solver.may_hold(constraints, a.inputs[reg] != b.inputs[reg], model)[0]]
        differing += [a.inputs[reg] != b.inputs[reg] for reg in may_differ]
        rows.append((a, b, may_differ))
    if differing and not all(z3.is_true(model.eval(d, model_completion=True)) for d in differing):
        answer, apart = solver.check(constraints + tuple(differing))
        if answer is Verdict.SAT:
            return rows, constraints + tuple(differing), apart
    return rows, constraints, model


def _module_events(spec, rows, entries, solver: Solver, constraints: tuple, model: z3.ModelRef) -> list[dict]:
    """The module's inputs per paired event (``rows`` of
    :func:`_differing_inputs`) in ``model``, with where each side got
    those that can differ."""
    return [{"kind": a.kind, "index": a.index, "reads": list(a.reads),
             "inputs": {reg: {LEFT: _hex(model, a.inputs[reg]), RIGHT: _hex(model, b.inputs[reg])}
                        for reg in a.reads},
             "may_differ": [{"register": reg,
                             "left_source": _sources(solver, constraints, model, a.inputs[reg], LEFT, reg, entries,
                                                     spec),
                             "right_source": _sources(solver, constraints, model, b.inputs[reg], RIGHT, reg,
                                                      entries, spec)}
                            for reg in may_differ]}
            for a, b, may_differ in rows]


def _side_json(run: _Run, path: PathResult, scenario: Scenario, model: z3.ModelRef, concrete_run) -> dict:
    part = {
        "function": run.side.function, "files": list(run.files), "sources": list(run.side.files),
        "front_end": front_end_json(run.front_end),
        "digests": source_digests(run.files, run.front_end, run.side.files),
        "entry": {"registers": {reg: f"{value:#x}" for reg, value in scenario.registers.items()},
                  "flags": scenario.flags},
        "memory": {},
        "symbols": {n: f"{v:#x}" for n, v in sorted(scenario.symbols.items())},
        "external_calls": {t: [{r: f"{v:#x}" for r, v in call.items()} for call in calls]
                           for t, calls in sorted(scenario.external.items())},
        "tdx": scenario.events,
        "path": [origin_json(origin) for origin in path.path_in(model)],
        "end": path.end,
    }
    if concrete_run is not None:
        part["trace"] = [{"source": origin_json(step.origin), "instruction": step.text,
                          "changed": {r: f"{v:#x}" for r, v in step.changed.items()}, "note": step.note}
                         for step in concrete_run.steps]
        part["final"] = {"registers": {r: f"{v:#x}" for r, v in concrete_run.final.regs.items()},
                         "end": concrete_run.end}
    return part


def _concrete_values(observable: Observable, runs: dict, scenarios: dict, difference: dict):
    """The observable's two values in the concrete replays (None: not
    comparable concretely)."""
    if observable.kind == "register":
        return tuple(runs[s].final.regs[observable.name] for s in (LEFT, RIGHT))
    if observable.kind == "flag":
        return tuple(runs[s].final.flags[observable.name] for s in (LEFT, RIGHT))
    if observable.kind == "end":
        return tuple(runs[s].end for s in (LEFT, RIGHT))
    if observable.kind == "returned-to":
        return tuple(runs[s].returned_to for s in (LEFT, RIGHT))
    if observable.kind == "tdx":
        return tuple(", ".join(f"{e.kind} {e.outcome.value}" for e in runs[s].events) for s in (LEFT, RIGHT))
    if observable.kind == "memory":
        address = int(difference["address"], 16)
        return tuple(runs[s].view(scenarios[s]).load(address, 1) for s in (LEFT, RIGHT))
    if observable.kind == "term":
        return tuple(_concrete_term(term, runs, scenarios) for term in (observable.equation.left,
                                                                        observable.equation.right))
    return None


def _concrete_term(term: Term, runs: dict, scenarios: dict) -> int:
    """A spec term in a side's concrete final state."""
    if term.constant is not None:
        return term.constant % 2**64
    if term.register is not None:
        return runs[term.side].final.regs[term.register]
    pointer = scenarios[term.side].registers[term.struct.register]
    return runs[term.side].view(scenarios[term.side]).load(pointer + term.struct.fields[term.field], 8)


def _smallest_model(runs: dict[str, _Run], left: PathResult, right: PathResult, solver: Solver,
                    constraints: tuple, model: z3.ModelRef, observable: Observable) -> z3.ModelRef:
    """The smallest model (:mod:`proofs.canonical`) of ``constraints``, of
    which ``model`` is one: its values are then a function of the
    difference, not of the queries asked before.  The order: each side's
    shown terms, the left's first (:func:`proofs.counterexample.shown_terms`:
    the entry registers and flags, symbols, callees' results, the module's
    outputs, the entry RSP and structs preferred where the native placement
    puts them); then the shared entry memory bytes the two replays read, by
    address (replayed until they read no new byte); then the observable's
    two values."""
    with solver.scope(constraints) as query:
        minimiser = Minimiser(query, model)
        for path in (left, right):
            minimiser.lower(*shown_terms(path, relational=False))
        read: set[int] = set()
        while True:
            new: set[int] = set()
            for side, path in ((LEFT, left), (RIGHT, right)):
                scenario = scenario_from_model(minimiser.model, path)
                try:
                    replay(runs[side].program, runs[side].side.function, scenario)
                except (ReplayDiverged, concrete.UndefinedValue, concrete.MissingSymbol):
                    pass                        # reported with the counterexample
                new.update(set(scenario.memory) - read)
            if not new:
                break
            read.update(new)
            minimiser.lower(select_bytes(_memory_array(LEFT), bv.const(address, 64), 1) for address in sorted(new))
        values = [value for _, _, a, b, _ in observable.bytes for value in (a, b)] if observable.kind == "memory" \
            else [observable.left, observable.right]
        minimiser.lower(value for value in values if isinstance(value, z3.ExprRef))
        return minimiser.model


def _counterexample(spec, runs, left, right, entries, solver, constraints, model, observable, observables) -> dict:
    """The counterexample of ``observable`` on a pair, from a model of
    ``constraints`` (the pair's and the violation's)."""
    rows, constraints, model = _differing_inputs(left, right, solver, constraints, model)
    constraints, model = _native_model(solver, constraints, model, left, right)
    model = _smallest_model(runs, left, right, solver, constraints, model, observable)
    events = _module_events(spec, rows, entries, solver, constraints, model)
    difference = {"observable": observable.name, "kind": observable.kind}
    if observable.kind == "memory":
        for violated, address, a, b, origin in observable.bytes:
            if z3.is_true(model.eval(violated, model_completion=True)):
                difference.update(address=_hex(model, address), left=_hex(model, a), right=_hex(model, b),
                                  written_at=origin_json(origin))
                break
    elif isinstance(observable.left, z3.ExprRef):
        difference.update(left=_hex(model, observable.left), right=_hex(model, observable.right))
    else:
        difference.update(left=observable.left, right=observable.right)
    also = [o.name for o in observables if o is not observable and o.violated is not True
            and z3.is_true(model.eval(o.violated, model_completion=True))]
    scenarios = {LEFT: scenario_from_model(model, left), RIGHT: scenario_from_model(model, right)}
    concrete_runs, problem = {}, ""
    try:
        for side, path in ((LEFT, left), (RIGHT, right)):
            concrete_runs[side] = replay(runs[side].program, runs[side].side.function, scenarios[side])
    except (ReplayDiverged, concrete.UndefinedValue, concrete.MissingSymbol) as error:
        problem = f"{side}: {error}"
    values = None if problem else _concrete_values(observable, concrete_runs, scenarios, difference)
    memory_bytes = {**scenarios[LEFT].memory, **scenarios[RIGHT].memory}
    cex = {
        "kind": "equiv", "spec": spec.path, "difference": difference, "also_differ": also,
        "module": events,
        LEFT: _side_json(runs[LEFT], left, scenarios[LEFT], model, concrete_runs.get(LEFT)),
        RIGHT: _side_json(runs[RIGHT], right, scenarios[RIGHT], model, concrete_runs.get(RIGHT)),
        "structs": [{"side": s.side, "name": s.name, "register": s.register, "size": s.size}
                    for s in spec.structs],
        "confirmed": bool(values is not None and (values[0] != values[1]) == (
            observable.equation is None or observable.equation.op == "==")),
    }
    for side in (LEFT, RIGHT):
        cex[side]["memory"] = {f"{a:#x}": f"{b:#x}" for a, b in sorted(memory_bytes.items())}
    if problem:
        cex["replay_problem"] = problem
    return cex


# --- reports -------------------------------------------------------------------------------------

def json_result(result: EquivResult) -> dict:
    """The deterministic JSON form of a run."""
    return {"tool": TOOL, "version": VERSION, "spec": result.spec, "verdict": result.verdict,
            "left": result.sides[LEFT], "right": result.sides[RIGHT], "observables": result.observables,
            "pairs": {"total": result.pairs, "feasible": result.feasible_pairs},
            "assumptions": result.assumptions, "unknown": result.reasons,
            "counterexample": result.counterexample}


def _source(source: dict) -> str:
    text = f"{source['file']}:{source['line']}"
    if source["expansion"]:
        text += " (in " + " -> ".join(source["expansion"]) + ")"
    return text


def text_result(result: EquivResult) -> str:
    """The human-readable form: verdict, assumptions, counterexample."""
    lines = [f"{result.verdict.upper()}: {result.sides[LEFT]['function']} ({', '.join(result.sides[LEFT]['files'])})"
             f" vs {result.sides[RIGHT]['function']} ({', '.join(result.sides[RIGHT]['files'])})",
             f"  observed: {', '.join(result.observables)}",
             f"  path pairs: {result.pairs} ({result.feasible_pairs} feasible)", "", "Assumptions:"]
    lines += [f"  - {text}" for text in result.assumptions]
    for reason in result.reasons:
        lines.append(f"UNKNOWN: {reason}")
    cex = result.counterexample
    if cex is None:
        return "\n".join(lines) + "\n"
    difference = cex["difference"]
    lines += ["", f"DIFFERENCE in {difference['observable']}: left {difference.get('left')}, "
                  f"right {difference.get('right')}"
              + (f" (byte {difference['address']}, written at {_source(difference['written_at'])})"
                 if "address" in difference else "")
]
    if cex["also_differ"]:
        lines.append(f"  also different in this counterexample: {', '.join(cex['also_differ'])}")
    for event in cex["module"]:
        lines.append(f"  module {event['kind']} #{event['index']} reads {', '.join(event['reads'])}"
                     + ("; inputs that can differ:" if event["may_differ"] else ""))
        for item in event["may_differ"]:
            reg = item["register"]
            values = event["inputs"][reg]
            lines.append(f"    {reg}: left {values[LEFT]} ({' = '.join(item['left_source']) or 'computed'}), "
                         f"right {values[RIGHT]} ({' = '.join(item['right_source']) or 'computed'})")
        if not event["may_differ"]:
            lines.append("    the same inputs on both sides")
    for side in (LEFT, RIGHT):
        part = cex[side]
        lines.append(f"  {side}: {part['function']} ({part['end']})")
        lines.append("    entry: " + " ".join(f"{r}={v}" for r, v in part["entry"]["registers"].items()))
        for event in part["tdx"]:
            returned = " ".join(f"{r}={v}" for r, v in event["registers"].items())
            lines.append(f"    {event['kind']} #{event['index']}: {event['outcome']}"
                         + (f", status {event['status']}" if event["status"] else "")
                         + (f", returns {returned}" if returned else ""))
        for step in part.get("trace", []):
            changed = " ".join(f"{r}={v}" for r, v in step["changed"].items())
            note = f"  [{step['note']}]" if step["note"] else ""
            lines.append(f"    {_source(step['source'])}: {step['instruction']}"
                         + (f"    ; {changed}" if changed else "") + note)
    if "replay_problem" in cex:
        lines.append(f"  replay problem: {cex['replay_problem']}")
    return "\n".join(lines) + "\n"


def counterexample_name(result: EquivResult) -> str:
    """The file name ``--cex-dir`` gives a counterexample.

    >>> r = EquivResult(Equivalence.DIFFERENT, "a/equiv.toml", {LEFT: {"function": "f"}, RIGHT: {"function": "g"}},
    ...                 [], [], 1, 1)
    >>> counterexample_name(r)
    'equiv-f-g.json'
    """
    return f"equiv-{result.sides[LEFT]['function']}-{result.sides[RIGHT]['function']}.json"
