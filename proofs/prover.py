"""The prover: the executor's paths and the property checkers -> verdicts.

For one function (under one configuration) it picks the wrapper contract,
runs the symbolic executor, asks every selected property's checker for its
claims on every path, and decides each obligation with Z3:

* a claim's ``violated`` together with the path condition and the stated
  assumptions is handed to the solver, every query with the user's
  timeout: one query per path asks for any of its claims at once, a model
  refutes every claim it satisfies and the rest are asked again; an
  unknown answer is retried claim by claim.  The queries go to the
  executor's incremental solver for the same assumptions
  (:meth:`model.executor.Solver.shared`);
* **sat** on any path refutes the obligation, with a counterexample built
  from that model (:mod:`proofs.counterexample`); **unknown** on any path
  (and no sat) leaves it unknown; **unsat** everywhere proves it -- unless
  a feasible path ended at a bound or on something unsupported, which makes
  every obligation not refuted elsewhere *unknown* (never proved), or a
  feasible path falls through (leaves the function's code), which makes
  the obligations judged at a path's end unknown (those a property judges
  along the path, ``Property.along_path``, are decided on it, and
  ``no-fallthrough`` is refuted);
* ``scrub`` (relational) asks about the same path twice: the second copy
  has every TDX-module/VMM output function renamed, i.e. an independent
  module under the same entry state, with both path conditions asserted.

Decisions recorded here:

* **Assumptions** (SPEC.md section 7) are asserted, and printed (an
  access through a pointer register plus a constant, not RSP, is taken to
  be off this function's stack, so ``no-red-zone`` judges the function's
  own stack accesses): the entry
  RSP is 8-byte aligned and at least ``STACK_MARGIN`` away from both ends of
  the address space; the contract's struct is 8-byte aligned, does not wrap
  and does not overlap the function's frame (``properties.STACK_DEPTH``
  bytes below the entry RSP) or the return-address slot (or is NULL where
  the contract allows it); the contract's module-output set narrows the
  TDX model (``call``) or not (``worst-case``, ``bitmap``).
* **The row's configuration.**  A property that needs a kernel option
  (``Property.config``: ``frame-pointer`` needs ``CONFIG_FRAME_POINTER``)
  is checked only on the rows where it is on; elsewhere it has no
  obligation and the result says why.  What is on is not guessed from
  the code (FRAME_BEGIN expands to nothing without the option, but a
  file may also set up a frame by hand): it is the row's front-end
  options as the C preprocessor saw them
  (:func:`grammar.frontend.config_enabled`: ``--config``, ``--matrix``,
  ``-D``/``-U``, a tree's ``tdxproof.toml`` defines), which the task of
  each row puts into ``Settings.configs`` (:func:`row_settings`).
* **Choosing a contract** is :mod:`proofs.abi_choice`'s: per function,
  from what the function's code shows (a static pass, no solver) or the
  prototype a kernel tree declares, with ``--abi``/``--variant`` forcing
  it; never from the verdicts.  The chosen contract comes bound to its
  struct layout and its ABI source, which every result carries (and
  the report prints in one line per function); the choice's notices
  (an unknown ABI, a forced contract the code contradicts, a prototype
  the assembly disagrees with) go with the result.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import z3

from grammar import ast
from grammar.source import Origin, SourceError
from model import abi, bv, ir, symbolic
from model.executor import ExecutorOptions, PathEnd, PathResult, Solver, Verdict, execute_function
from model.lift import lift
from model.memory import Region, place
from model.provenance import ModuleFunction, Provenance
from model.tdx import Outcome, TdxModel
from proofs.abi_choice import Choice, choose, describe_layout
from proofs.contracts import Contract
from proofs.properties import (CATALOG, PROPERTIES, STACK_DEPTH, AccessView, Claim, EventView,
                               FaultView, FramePoint, Ops, PathView, applicable)

STACK_MARGIN = 0x10000
"""The entry RSP is at least this far from address 0 and from 2**64."""

MODULE_NAMESPACE, VARIED_NAMESPACE = "module", "varied"
PROVED, REFUTED, UNKNOWN = "proved", "refuted", "unknown"


@dataclass(frozen=True)
class Settings:
    """What the user chose for a ``check`` run (besides files), and
    ``configs``: the kernel options of the row being checked that some
    property needs (option -> on; :func:`row_settings` sets them per row,
    an option not named is off)."""

    properties: tuple[str, ...] = CATALOG
    era: str | None = None
    firmware: str = "spec"
    timeout: float = 10.0
    contracts: tuple[Contract, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    loop_bound: int = 16
    tdcall_may_fault: bool = False
    configs: Mapping[str, bool] = field(default_factory=dict)
    declarations: Any = None
    """The row's kernel tree's :class:`grammar.declarations.TreeFacts` (its
    prototypes and struct layouts decide the contracts), None outside a tree."""


def row_configs(options, facts=None) -> dict[str, bool]:
    """The kernel options the catalog's properties need, as the
    front-end ``options`` of a row set them, else as the kernel tree's own
    configuration does (``facts``: :class:`grammar.declarations.TreeFacts`)."""
    from grammar.frontend import config_enabled
    from proofs.properties import config_options
    tree = facts.config if facts is not None else {}
    return {name: config_enabled(options, name, name in tree and tree[name].enabled) for name in config_options()}


def row_settings(settings: Settings, options, facts=None) -> Settings:
    """``settings`` for the row preprocessed with front-end ``options``
    (in kernel tree ``facts``, if any)."""
    return dataclasses.replace(settings, configs=row_configs(options, facts), declarations=facts)


@dataclass
class ObligationResult:
    property: str
    detail: str
    status: str
    seconds: float
    counterexample: dict | None = None
    origin: Origin | None = None
    reason: str = ""


@dataclass
class FunctionResult:
    function: str
    config: str
    abi: str
    contract: str | None
    origin: Origin
    obligations: list[ObligationResult]
    assumptions: list[str]
    notices: list[str] = field(default_factory=list)
    """What the reader must not miss (an unknown ABI, a forced contract the
    code contradicts, a prototype the assembly disagrees with)."""
    abi_source: str = ""
    """Why the contract applies (:mod:`proofs.abi_choice`), "" without one."""
    struct: str = ""
    """The contract's struct layout in words, "" without a contract."""
    abi_summary: str = ""
    """The report's one line about this function's ABI ("" when there is nothing to say)."""

    def count(self, status: str) -> int:
        return sum(1 for o in self.obligations if o.status == status)


# --- symbolic views ---------------------------------------------------------------

class _Instructions:
    """Source origin -> instruction, and the RSP an instruction leaves."""

    def __init__(self, program: ast.Program):
        self._by_origin: dict[Origin, ast.Instruction] = {}
        for function in program.functions:
            for instr in function.instructions:
                self._by_origin.setdefault(instr.origin, instr)
        self._rsp_updates: dict[Origin, ir.Expr | None] = {}

    def rsp_after(self, origin: Origin, rsp: z3.BitVecRef) -> z3.BitVecRef:
        """RSP after the instruction at ``origin`` when it is a function of
        RSP alone (``push``, ``pop``, ``call``, ``sub $n, %rsp`` ...), else
        the RSP before it."""
        if origin not in self._rsp_updates:
            self._rsp_updates[origin] = self._rsp_update(origin)
        update = self._rsp_updates[origin]
        if update is None:
            return rsp
        return symbolic.evaluate(update, symbolic.SymbolicState({"rsp": rsp}, {}, None), symbolic.SymbolicEnv())

    def _rsp_update(self, origin: Origin) -> ir.Expr | None:
        instr = self._by_origin.get(origin)
        if instr is None:
            return None
        try:
            step = lift(instr)
        except SourceError:
            return None
        for effect in step.effects:
            if isinstance(effect, ir.SetReg) and effect.name == "rsp" and _only_rsp(effect.value):
                return effect.value
        return None


def _only_rsp(expr) -> bool:
    if isinstance(expr, ir.Reg):
        return expr.name == "rsp"
    if isinstance(expr, ir.Const):
        return True
    if isinstance(expr, ir.Binary):
        return _only_rsp(expr.left) and _only_rsp(expr.right)
    return False


def _event_view(event) -> EventView:
    after = dict(event.inputs)
    if event.outcome is Outcome.COMPLETION:
        after.update(event.outputs)
        after["rax"] = event.status
    return EventView(event.kind, event.outcome, event.origin, event.inputs, after, event.status)


def _known_access(kind: str, address, size: int, rsp_before, rsp_after, regions: tuple
                  ) -> tuple[bool | None, bool | None]:
    """(below RSP, in frame or struct) of an access, when the address and
    both RSPs are a region's base plus a constant (else ``None``): the
    regions are disjoint and do not wrap under the asserted assumptions, so
    comparing offsets decides."""
    at = place(address)
    if at is None or at.base is None or not regions:
        return None, None
    stack = regions[0][0].get_id()
    if at.base_id != stack and all(at.base_id != variable.get_id() for variable, _, _ in regions[1:]):
        return False, None      # through a pointer argument: assumed off this function's stack
    offset = at.signed_offset
    for position, (variable, low, end) in enumerate(regions):
        if at.base_id == variable.get_id() and low <= offset and offset + size <= end:
            if position != 0:
                return False, True
            before, after = place(rsp_before), place(rsp_after)
            if not all(p is not None and p.base_id == stack and low <= p.signed_offset <= end
                       for p in (before, after)):
                return None, offset + size <= 0
            return offset < min(before.signed_offset, after.signed_offset), offset + size <= 0
    return None, None


def _frame_points(result: PathResult) -> tuple[FramePoint, ...]:
    """The path's interrupt points, each with the 8 bytes of its frame's
    saved-RBP slot loaded from the memory it saw (one load per memory and
    slot: consecutive instructions without a store share it)."""
    loaded: dict[tuple[int, int], z3.BitVecRef] = {}
    points = []
    for p in result.points:
        key = (id(p.memory), p.frame_rsp.get_id())
        if key not in loaded:
            loaded[key] = p.memory.load(p.frame_rsp - bv.const(8, 64), 8)
        points.append(FramePoint(p.origin, p.rbp, loaded[key], p.frame_rsp, p.frame_rbp, p.call, p.guard))
    return tuple(points)


def symbolic_view(result: PathResult, instructions: _Instructions, regions: tuple[Region, ...] = (),
                  frame_points: bool = True) -> PathView:
    """The checkers' view of one executor path (``regions``: as
    :func:`memory_regions` gives them, to place accesses; ``frame_points``:
    whether to load what an interrupt would find before each instruction,
    which only ``frame-pointer`` asks)."""
    accesses = []
    for a in result.accesses:
        after = instructions.rsp_after(a.origin, a.rsp)
        below, inside = _known_access(a.kind, a.address, a.width // 8, a.rsp, after, regions)
        accesses.append(AccessView(a.kind, a.address, a.width // 8, a.rsp, after, a.origin, a.guard,
                                   below, inside))
    accesses = tuple(accesses)
    faults = tuple(FaultView(f.instruction, f.handled, f.origin, f.guard) for f in result.faults)
    return PathView(Ops(), result.end.value, result.entry.regs, result.state.regs, result.state.flags,
                    result.state.load, result.entry.load, tuple(_event_view(e) for e in result.events),
                    accesses, faults, result.where, result.leaves_to,
                    _frame_points(result) if frame_points else ())


class ModuleRenaming:
    """Every TDX-module function a path applied renamed into an independent
    one (same domain and range, ``varied_`` namespace): the functions are
    the path's :class:`model.provenance.ModuleFunction` sources.  A kind's
    flag functions come right after its first other function (the order
    the renaming was first written in, on which the solver's later models
    depend)."""

    def __init__(self, provenance: Provenance):
        self._pairs: dict[str, tuple] = {}
        functions = [(name, source) for name, source in provenance
                     if isinstance(source, ModuleFunction) and source.namespace == MODULE_NAMESPACE]
        for name, source in functions:
            if not source.flag:
                self._add(name, source)
                for flag_name, flag in functions:
                    if flag.flag and flag.kind == source.kind:
                        self._add(flag_name, flag)

    def _add(self, name: str, source: ModuleFunction) -> None:
        if name not in self._pairs:
            self._pairs[name] = _renaming(name, source.arity, source.width, source.name_in(VARIED_NAMESPACE))

    def rename(self, terms: Iterable[z3.ExprRef]) -> list[z3.ExprRef]:
        terms = list(terms)
        if not self._pairs:
            return terms
        pairs = list(self._pairs.values())
        return [z3.substitute_funs(term, *pairs) for term in terms]


_RENAMINGS: dict[tuple, tuple] = {}


def _renaming(name: str, arity: int, width: int, twin_name: str) -> tuple[z3.FuncDeclRef, z3.ExprRef]:
    """(module function, its twin ``twin_name`` applied to the bound variables), made once."""
    key = (id(z3.main_ctx()), name, arity, width)
    if key not in _RENAMINGS:
        twin = bv.function(twin_name, arity, width)
        _RENAMINGS[key] = (bv.function(name, arity, width),
                           bv.apply(twin, [z3.Var(i, z3.BitVecSort(64)) for i in range(arity)]))
    return _RENAMINGS[key]


def varied_view(result: PathResult, view: PathView) -> tuple[PathView, z3.BoolRef]:
    """The same path with an independent module: (its view, its condition)."""
    names = list(view.final)
    renamed = ModuleRenaming(result.provenance).rename([result.condition] + [view.final[n] for n in names])
    final = dict(zip(names, renamed[1:]))
    return dataclasses.replace(view, final=final), renamed[0]


# --- assumptions --------------------------------------------------------------------

def _assumptions(state: symbolic.SymbolicState, contract: Contract | None) -> tuple[list, list[str]]:
    entry, rsp = state.regs, state.regs["rsp"]
    formulas = [state.flags["df"] == bv.const(0, 1),
                rsp & bv.const(7, 64) == bv.const(0, 64),
                bv.ule(bv.const(STACK_MARGIN, 64), rsp),
                bv.ule(rsp, bv.const(2**64 - STACK_MARGIN, 64))]
    texts = ["DF is clear at entry (System V)",
             "memory reached through a pointer other than RSP lies outside this function's stack frame",
             "the entry RSP is 8-byte aligned and the stack does not wrap around the address space",
             "ordinary memory accesses do not fault"]
    if contract is not None:
        pointer = entry[contract.struct_pointer]
        size = contract.struct_size
        low = rsp - bv.const(STACK_DEPTH, 64)
        valid = z3.And(pointer & bv.const(7, 64) == bv.const(0, 64),
                       bv.ule(pointer, bv.const(2**64 - size, 64)),
                       z3.Or(bv.ule(pointer + bv.const(size, 64), low),
                             bv.ule(rsp + bv.const(8, 64), pointer)))
        if contract.struct_may_be_null:
            valid = z3.Or(pointer == bv.const(0, 64), valid)
        formulas.append(valid)
        texts.append(f"struct {contract.struct} at {contract.struct_pointer.upper()} "
                     f"({size} bytes){' (or NULL)' if contract.struct_may_be_null else ''} is 8-byte "
                     f"aligned, does not wrap, and does not overlap the function's frame "
                     f"({STACK_DEPTH} bytes below entry RSP) or the return-address slot")
        texts.append(contract.assumption())
        leaf = (f"leaf unconstrained (any value of {contract.leaf.upper()})" if isinstance(contract.leaf, str)
                else f"leaf {contract.leaf}" + (" (TDG.VP.VMCALL)" if contract.leaf == abi.TDG_VP_VMCALL
                                                and contract.instruction == "tdcall" else ""))
        texts.append(f"{contract.key}: {leaf}")
    return formulas, texts


def frame_region(rsp: z3.BitVecRef) -> Region:
    """The function's frame as a memory region: ``STACK_DEPTH`` bytes
    below the entry RSP and the return-address slot."""
    return (rsp, -STACK_DEPTH, 8)


def memory_regions(state: symbolic.SymbolicState, contract: Contract | None) -> tuple[Region, ...]:
    """The memory regions the assumptions keep apart (see :class:`model.memory.Memory`):
    the frame of ``state`` (an entry state) and the contract's struct."""
    regions = [frame_region(state.regs["rsp"])]
    if contract is not None and contract.struct_pointer != "rsp":
        regions.append((state.regs[contract.struct_pointer], 0, contract.struct_size))
    return tuple(regions)


def _executor_options(settings: Settings, contract: Contract | None, namespace: str = MODULE_NAMESPACE
                      ) -> ExecutorOptions:
    """The executor's options for ``contract``: its module-output set, and
    the same assumptions (as preconditions) and memory regions the prover
    uses, so that the executor prunes exactly the paths the assumptions
    rule out."""
    outputs = {}
    if contract is not None and contract.module_outputs == "call":
        outputs = {contract.instruction: abi.MODULE_CALL_OUTPUTS}
    entry = symbolic.SymbolicState.fresh(ExecutorOptions.entry_prefix)
    formulas, _ = _assumptions(entry, contract)
    regions = memory_regions(entry, contract)
    tdx = TdxModel(firmware=settings.firmware, module_outputs=outputs,
                   tdcall_may_fault=settings.tdcall_may_fault, namespace=namespace)
    return ExecutorOptions(tdx=tdx, solver_timeout=settings.timeout, loop_bound=settings.loop_bound,
                           preconditions=tuple(formulas), regions=regions)


# --- deciding obligations -------------------------------------------------------------

class _Obligation:
    def __init__(self, pid: str, detail: str):
        self.pid, self.detail = pid, detail
        self.status = PROVED
        self.seconds = 0.0
        self.witness: tuple | None = None
        self.origin: Origin | None = None
        self.reason = ""

    def settle(self, status: str, reason: str = "") -> None:
        if self.status == REFUTED:
            return
        if status == REFUTED or self.status == PROVED:
            self.status, self.reason = status, reason


def _decide(claims: list[tuple[Claim, _Obligation, tuple]], context: tuple[z3.BoolRef, ...], path: PathResult,
            solver: Solver) -> None:
    """Decide one path's claims (each with its obligation and views)
    under ``context`` and the solver's preconditions.  One query asks for
    any of a batch of claims at once; a model refutes every obligation
    whose claim it satisfies, and the query is asked again for the rest,
    until unsat.  An unknown answer splits the batch into one claim each,
    so that each unknown is the claim's own."""
    started = time.perf_counter()
    batches = [[(claim.violated, claim, obligation, views) for claim, obligation, views in claims]]
    placement = None
    while batches:
        batch = [item for item in batches.pop() if item[2].status != REFUTED]
        query = z3.simplify(bv.disjunction([item[0] for item in batch]))
        if z3.is_false(query):
            continue
        answer, model = solver.check(context + (query,))
        if answer is Verdict.UNKNOWN:
            if len(batch) == 1:
                batch[0][2].settle(UNKNOWN, f"solver: {solver.reason}")
            else:
                batches += [[item] for item in reversed(batch)]
        elif answer is Verdict.SAT:
            hit = [item for item in batch if z3.is_true(model.eval(item[0], model_completion=True))]
            if not hit:
                raise RuntimeError("the solver's model satisfies none of the claims it was asked for")
            if placement is None:
                from proofs.counterexample import native_placement
                placement = native_placement(path, ModuleRenaming(path.provenance).rename if len(hit[0][3]) > 1 else None)
            _refute(hit, model, context, placement, path, solver)
            batches.append([item for item in batch if item[2].status != REFUTED])
    share = (time.perf_counter() - started) / max(1, len(claims))
    for _, obligation, _ in claims:
        obligation.seconds += share


def _refute(items: list[tuple], model: z3.ModelRef, context: tuple[z3.BoolRef, ...], placement: z3.BoolRef,
            path: PathResult, solver: Solver) -> None:
    """Refute the obligations of ``items`` (whose claims ``model``
    satisfies), each with a model the CPU can run where there is one
    (``placement``: :func:`proofs.counterexample.native_placement` of the
    path): ``model`` itself when it places the path, else one query for
    the claims a placed model may satisfy, asked again for those it does
    not, until no placed model is left for the rest."""
    pending = list(items)
    if z3.is_true(model.eval(placement, model_completion=True)):
        found = [(pending, model, "")]
    else:
        found = []
        while pending:
            answer, placed = solver.check(context + (placement, bv.disjunction([item[0] for item in pending])))
            if answer is not Verdict.SAT:
                found.append((pending, model, "no model of this violation keeps its memory accesses in the native "
                                              "harness's memory" + (" (solver: unknown)" if answer is Verdict.UNKNOWN
                                                                    else "") + ": tdxproof replay relocates what it can"))
                break
            hit = [item for item in pending if z3.is_true(placed.eval(item[0], model_completion=True))]
            found.append((hit, placed, ""))
            pending = [item for item in pending if item not in hit]
    for hit, witness, note in found:
        for _, claim, obligation, views in hit:
            if obligation.status == REFUTED:
                continue                    # refuted by an earlier claim of the same obligation
            obligation.witness = (witness, path, claim, views, note)
            obligation.origin = claim.origin
            obligation.settle(REFUTED)


def _prove(program: ast.Program, name: str, contract: Contract | None, settings: Settings,
           paths: list[PathResult]) -> tuple[list[_Obligation], list[str]]:
    instructions = _Instructions(program)
    selected = [pid for pid in applicable(contract, settings.configs) if pid in settings.properties]
    obligations = {(pid, detail): _Obligation(pid, detail)
                   for pid in selected for detail in PROPERTIES[pid].details(contract)}
    formulas, texts = _assumptions(paths[0].entry, contract) if paths else ([], [])
    texts += not_configured(contract, settings)
    frame_points = "frame-pointer" in selected
    regions = paths[0].entry.memory.regions if paths else ()
    solver = Solver.shared(settings.timeout, tuple(formulas))
    for path in paths:
        for text in path.assumptions:
            if text not in texts:
                texts.append(text)
        where = f" at {path.where.render()}" if path.where else ""
        if path.end in (PathEnd.BOUND, PathEnd.UNSUPPORTED):
            if solver.check((path.condition,))[0] is not Verdict.UNSAT:
                for obligation in obligations.values():
                    obligation.settle(UNKNOWN, f"a path ended ({path.end.value}){where}: {path.detail}")
            continue
        if path.end is PathEnd.FALLTHROUGH and solver.check((path.condition,))[0] is not Verdict.UNSAT:
            for pid in selected:
                along = PROPERTIES[pid].along_path(contract)
                for detail in PROPERTIES[pid].details(contract):
                    if detail not in along:
                        obligations[(pid, detail)].settle(
                            UNKNOWN, f"a path leaves the function's code{where} and goes {path.leaves_to} "
                                     f"(see no-fallthrough): what runs there is not modelled")
        view = symbolic_view(path, instructions, regions, frame_points)
        plain, relational, varied_condition = [], [], None
        for pid in selected:
            prop = PROPERTIES[pid]
            if prop.relational:
                varied, varied_condition = varied_view(path, view)
                relational += [(claim, obligations[(pid, claim.detail)], (view, varied))
                               for claim in prop.check(view, varied, contract)]
            else:
                plain += [(claim, obligations[(pid, claim.detail)], (view,)) for claim in prop.check(view, contract)]
        _decide(plain, (path.condition,), path, solver)
        if relational:
            _decide(relational, (path.condition, varied_condition), path, solver)
    return list(obligations.values()), texts


def not_configured(contract: Contract | None, settings: Settings) -> list[str]:
    """Why a selected property does not apply to this row: the kernel
    option it needs is off."""
    here = applicable(contract, settings.configs)
    return [f"{pid} does not apply: {PROPERTIES[pid].config} is off in this configuration"
            for pid in applicable(contract) if pid in settings.properties and pid not in here]


def _results(program: ast.Program, name: str, config: str, contract: Contract | None,
             obligations: list[_Obligation], texts: list[str], settings: Settings) -> FunctionResult:
    from proofs.counterexample import build_counterexample
    out = []
    for o in obligations:
        cex, status, reason = None, o.status, o.reason
        if o.status == REFUTED:
            model, path, claim, views, placement = o.witness
            cex = build_counterexample(program, name, config, contract, o.pid, o.detail,
                                       model, path, claim, views, settings)
            if placement:
                cex["native_placement"] = placement
            if not cex["confirmed"]:
                status, reason = UNKNOWN, unconfirmed_reason(cex.get("replay_problem"))
                cex = None
        out.append(ObligationResult(o.pid, o.detail, status, o.seconds, cex, o.origin, reason))
    return FunctionResult(name, config, contract.era if contract else "-",
                          contract.key if contract else None, program.function(name).origin, out, texts)


def unconfirmed_reason(problem: str | None) -> str:
    """Why a refutation whose concrete replay does not confirm it is not a
    verdict: the symbolic and the concrete semantics disagree, a bug of
    ours (``check`` and ``equiv`` say it alike)."""
    return ("the solver found a violation, but its counterexample does not replay concretely"
            + (f" ({problem})" if problem else "") + ": a bug of tdxproof, please report it; "
            "not a verdict")


def choose_contract(program: ast.Program, name: str, settings: Settings) -> Choice:
    """The contract of ``name`` (:func:`proofs.abi_choice.choose`) under the
    run's ``--abi``, ``--variant`` and contracts."""
    facts = settings.declarations
    return choose(program, name, settings.contracts, settings.era, settings.variants.get(name),
                  facts.prototypes.get(name) if facts is not None else None,
                  facts.structs if facts is not None else None)


class SelectorUse:
    """What the selectors of a run (``--abi``, ``--variant``, ``--property``)
    matched, function by function, so that one that matches nothing, or
    that takes a contract away from a function, is an error (exit 2) before
    anything is proved under it."""

    def __init__(self, settings: Settings, properties_given: bool):
        self.settings = settings
        self.properties_given = properties_given
        self.era_used = False
        self.variants_used: set[str] = set()
        self.applicable: set[str] = set()
        self.possible: set[str] = set()         # would apply under some configuration

    def function(self, program: ast.Program, name: str, row: Settings | None = None) -> None:
        """Record ``name`` of ``program`` as checked with the ``row``'s
        settings (:func:`row_settings`: its configuration and kernel tree;
        None: any configuration, no tree); a selector that takes its
        contract away is an error."""
        configs = row.configs if row is not None else None
        settings = self.settings
        named = [c for c in settings.contracts if c.name == name]
        if settings.era is not None and named:
            if not any(c.era == settings.era for c in named):
                raise SourceError(f"--abi {settings.era}: {name} has no contract of the {settings.era} era "
                                  f"(its contracts: {', '.join(c.key for c in named)}), so --abi would "
                                  f"check it without one; leave --abi out or name {named[0].era}")
            self.era_used = True
        if name in settings.variants:
            variant = settings.variants[name]
            unfiltered = [c for c in named if settings.era is None or c.era == settings.era]
            if not any(c.variant == variant for c in unfiltered):
                variants = list(dict.fromkeys(c.variant for c in unfiltered))
                known = ", ".join(repr(v) for v in variants if v or len(variants) > 1)
                raise SourceError(f"--variant {name}={variant}: {name} has no contract variant {variant!r} "
                                  f"({'its variants: ' + known if known else 'it has no variants'})")
            self.variants_used.add(name)
        contract = choose_contract(program, name, row or settings).contract
        self.applicable.update(applicable(contract, configs))
        self.possible.update(applicable(contract))

    def finish(self, checked: Iterable[str]) -> None:
        """After every function: a selector that matched none is an error."""
        settings, checked = self.settings, list(dict.fromkeys(checked))
        if settings.era is not None and not self.era_used:
            raise SourceError(f"--abi {settings.era}: none of the functions checked ({', '.join(checked)}) "
                              f"has a contract of the {settings.era} era")
        unused = [name for name in settings.variants if name not in self.variants_used]
        if unused:
            name = unused[0]
            raise SourceError(f"--variant {name}={settings.variants[name]}: no function {name!r} is checked "
                              f"(functions: {', '.join(checked)})")
        if self.properties_given:
            idle = [pid for pid in settings.properties if pid not in self.applicable]
            if idle and idle[0] in self.possible:
                option = PROPERTIES[idle[0]].config
                raise SourceError(f"--property {idle[0]}: applies to none of the rows checked "
                                  f"({', '.join(checked)}): it needs {option} on (add --config {option}=y "
                                  f"or --matrix {option})")
            if idle:
                raise SourceError(f"--property {idle[0]}: applies to none of the functions checked "
                                  f"({', '.join(checked)}): it needs a wrapper contract that states it")


def check_function(program: ast.Program, name: str, config: str, settings: Settings) -> FunctionResult:
    """Every selected obligation of function ``name`` (see module doc)."""
    choice = choose_contract(program, name, settings)
    contract = choice.contract
    paths = execute_function(program, name, _executor_options(settings, contract))
    obligations, texts = _prove(program, name, contract, settings, paths)
    texts.insert(0, f"firmware: {settings.firmware}")
    result = _results(program, name, config, contract, obligations, texts, settings)
    result.notices += choice.notices
    result.abi_source, result.abi_summary = choice.source, choice.summary
    if contract is not None:
        result.struct = describe_layout(contract.layout)
    return result


# --- a whole run: files x configurations x functions ----------------------------------------

from grammar.frontend import (Preprocessing, group_configurations, load_preprocessed,  # noqa: E402
                              load_program, options_key)
from grammar.kernel_tree import assumption_texts as tree_assumptions  # noqa: E402


_PROGRAMS: dict[tuple, ast.Program] = {}


def _program_key(files: tuple[str, ...], options) -> tuple:
    return (tuple(files), options_key(options))


def cached_program(files: tuple[str, ...], options) -> ast.Program:
    key = _program_key(files, options)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = load_program(list(files), options)
    return _PROGRAMS[key]


def _preprocess_programs(requests: list[tuple[tuple[str, ...], Any]], preprocessing) -> dict[tuple, Any]:
    """The C preprocessor runs of the programs of ``requests`` not in the
    cache yet (those ``preprocessing`` started, and the rest, at once); for
    :func:`_cached_preprocessed`."""
    missing = {_program_key(*request): request for request in requests
               if _program_key(*request) not in _PROGRAMS}
    preprocessing = preprocessing or Preprocessing(())
    return dict(zip(missing, preprocessing.results(list(missing.values()))))


def _cached_preprocessed(files: tuple[str, ...], options, preprocessed: dict[tuple, Any]) -> ast.Program:
    """:func:`cached_program`, from the preprocessor runs already made."""
    key = _program_key(files, options)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = load_preprocessed(list(files), options, preprocessed.pop(key))
    return _PROGRAMS[key]


class TaskCrashed(RuntimeError):
    """A worker process raised (a bug of ours): the message names the task
    and the exception; ``child_traceback`` is the worker's traceback."""

    def __init__(self, message: str, child_traceback: str):
        super().__init__(message)
        self.child_traceback = child_traceback


CONFIGS_PER_TASK = 2
"""How many configurations of one function a task checks, one after the other."""


def _task(arguments: tuple) -> list[FunctionResult] | tuple:
    """One function under a few consecutive configurations (the later ones
    reuse what the solver side built for the earlier: about 13% less CPU
    on the fixture trees than a task per configuration).  A bad-input error
    comes back as (message, origin), which pickles whole (the exception
    would lose its origin on the way from the worker)."""
    files, name, runs, settings, facts = arguments
    try:
        return [check_function(cached_program(files, options), name, label, row_settings(settings, options, facts))
                for options, label in runs]
    except SourceError as error:
        return (error.message, error.origin)


def _task_label(task: tuple) -> str:
    return f"{task[1]} [{', '.join(label for _, label in task[2])}]"


def _run_in_forks(batches: Iterable[list[tuple[tuple, int]]], jobs: int, progress=None) -> tuple[list, list]:
    """Every task of ``batches`` (lists of (task, cost)), each in a fresh
    fork of this process: (the tasks, ``_task``'s outcome of each), in order.

    Z3's models depend on the solver's history, so a counterexample is the
    same bytes, whatever ``jobs`` and whatever ran before, only if every
    task starts from the same state: each runs in its own child, forked
    from this process, which runs no solver itself and keeps each pickled
    result as bytes until the last child is done.  At most ``jobs`` children
    run at once, the costliest ready tasks first (so that a long task does
    not start last).  The next batch is made (by the caller's generator:
    the front end of the next file group) while the children run.  A child
    that dies without a result is an internal error naming its task.
    """
    import gc
    import os
    import pickle
    import selectors
    import signal
    import traceback
    tasks: list[tuple] = []
    payloads: list[bytes | None] = []
    ready: list[tuple[int, int]] = []                              # (-cost, task index)
    running: dict[int, tuple[int, int, list[bytes]]] = {}        # read end -> (task, pid, chunks)
    waiting = selectors.DefaultSelector()
    batches = iter(batches)
    more = True

    def start(index: int) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:                                              # the child: one task, then _exit
            gc.disable()      # short-lived: the collector would walk (and copy) the whole inherited heap
            try:
                os.close(read_end)
                try:
                    payload = pickle.dumps(("result", _task(tasks[index])))
                except BaseException:
                    payload = pickle.dumps(("crash", traceback.format_exc()))
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(payload)
            finally:
                os._exit(0)
        os.close(write_end)
        running[read_end] = (index, pid, [])
        waiting.register(read_end, selectors.EVENT_READ)

    def collect(read_end: int) -> None:
        index, pid, chunks = running[read_end]
        chunk = os.read(read_end, 1 << 20)
        if chunk:
            chunks.append(chunk)
            return
        waiting.unregister(read_end)
        os.close(read_end)
        del running[read_end]
        _, status = os.waitpid(pid, 0)
        payloads[index] = b"".join(chunks)
        if not payloads[index]:
            raise RuntimeError(f"the process checking {_task_label(tasks[index])} "
                               f"ended without a result (wait status {status})")
        if progress:
            rows = sum(len(task[2]) for task in tasks)
            done = sum(len(task[2]) for task, payload in zip(tasks, payloads) if payload is not None)
            for position, (_, label) in enumerate(tasks[index][2], start=done - len(tasks[index][2])):
                progress(position, rows, tasks[index][1], label)

    try:
        while more or ready or running:
            while ready and len(running) < jobs:
                start(ready.pop(0)[1])
            if more:
                for key, _ in (waiting.select(0) if running else ()):
                    collect(key.fd)
                if ready and len(running) < jobs:
                    continue
                batch = next(batches, None)
                if batch is None:
                    more = False
                for task, cost in batch or ():
                    tasks.append(task)
                    payloads.append(None)
                    ready.append((-cost, len(tasks) - 1))
                ready.sort()
            else:
                for key, _ in waiting.select():
                    collect(key.fd)
    finally:
        for read_end, (_, pid, _) in running.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
        waiting.close()
    results = []
    for task, payload in zip(tasks, payloads):
        kind, result = pickle.loads(payload)
        if kind == "crash":
            raise TaskCrashed(f"checking {_task_label(task)} failed: {result.rstrip().splitlines()[-1]}", result)
        results.append(result)
    return tasks, results


def _toggled(configs: list[dict[str, bool]]) -> list[str]:
    """The options that differ between ``configs`` (the ``--matrix`` ones).

    >>> _toggled([{"CONFIG_A": True, "CONFIG_B": True}, {"CONFIG_A": True, "CONFIG_B": False}])
    ['CONFIG_B']
    """
    return [name for name in dict.fromkeys(name for config in configs for name in config)
            if len({config.get(name) for config in configs}) > 1]


def _check_toggles(groups, preprocessed: dict[tuple, Any], configs: list[dict[str, bool]]) -> None:
    """A ``--matrix`` option that changes no file's preprocessed text
    (nothing the inputs include tests it) is an error: it would only
    double the rows."""
    for name in _toggled(configs):
        used = False
        for group, runs in groups:
            texts = {}
            for options, _ in runs:
                outcome = preprocessed.get(_program_key(group.files, options))
                if outcome is None or any(isinstance(lines, BaseException) for lines in outcome.values()):
                    used = True         # cannot tell: the error shows when the program is built
                    break
                others = tuple(sorted((k, v) for k, v in options.configs.items() if k != name))
                text = tuple((path, tuple(line.text for line in lines)) for path, lines in outcome.items())
                texts.setdefault(others, set()).add(text)
            if used or any(len(variants) > 1 for variants in texts.values()):
                used = True
                break
        if not used:
            raise SourceError(f"--matrix {name}: no input file, nor any header it includes, tests {name} "
                              f"(its text is the same with {name}=y and =n)")


def _nothing_to_check(files: list[str], preprocessed: dict[tuple, Any]) -> SourceError:
    """The error of a run that found no function, saying why."""
    empty = []
    for outcome in preprocessed.values():
        for path, lines in outcome.items():
            if isinstance(lines, BaseException):
                continue
            if not any(line.text.strip() for line in lines) and path not in empty:
                empty.append(path)
    if empty and len(empty) == len(set(files)):
        return SourceError(f"nothing to check: {', '.join(empty)} "
                           f"{'is' if len(empty) == 1 else 'are'} empty after the C preprocessor "
                           f"(only comments, blank lines or preprocessor directives)")
    return SourceError(f"nothing to check: no function is defined in {', '.join(files)} (a function starts "
                       f"at a code label typed @function, as SYM_FUNC_START makes it, and ends at its "
                       f".size, as SYM_FUNC_END makes it; code outside every function is not checked)")


@dataclass(frozen=True)
class GroupFailure:
    """A file group (a kernel tree) that could not be checked: its files and
    the bad-input error that stopped it."""

    files: tuple[str, ...]
    error: SourceError


@dataclass
class RunResult:
    """A whole ``check`` run: each result with the front-end options it was
    loaded with, and the groups that failed."""

    checked: list[tuple[FunctionResult, Any]]
    failures: list[GroupFailure]


def check_groups(files: Iterable[str], front_end, configs: list[dict[str, bool]], functions: Iterable[str],
                 settings: Settings, jobs: int = 1, progress=None,
                 preprocessing=None, properties_given: bool = False) -> RunResult:
    """Check every selected function of ``files`` under every configuration:
    (result, the front-end options it was loaded with), whatever ``jobs``, in
    input order: file group by file group (:func:`grammar.frontend.group_files`:
    one program per kernel tree, with the tree's own options), then
    function by function, then configuration by configuration.

    A group whose files are bad input (they do not preprocess, parse or
    lift) does not stop the others: it is a :class:`GroupFailure` of the
    run, and the other groups get their verdicts.

    A ``functions`` name is checked in every group that defines it; one
    that no group defines is an error, and so is one that a group defines
    under some configurations only.  The tasks of a group start as soon as
    its programs are built, while the next group's are.  ``preprocessing``
    (a :class:`grammar.frontend.Preprocessing`) may hold preprocessor runs
    started ahead.

    Checking nothing is an error (not "0 proved"), and so is a selector
    that matches nothing (:class:`SelectorUse`; ``properties_given``: the
    user named the properties) or a ``--matrix`` option no file tests --
    each judged on the groups that built (when some failed, a name or a
    selector may belong to them, so only a run with no failure is judged
    for what it lacks).
    """
    files, functions = list(files), list(functions)
    groups = group_configurations(files, front_end, configs)
    preprocessed = _preprocess_programs([(group.files, options) for group, runs in groups for options, _ in runs],
                                        preprocessing)
    _check_toggles(groups, preprocessed, configs)
    nothing = _nothing_to_check(files, preprocessed)
    selectors = SelectorUse(settings, properties_given)
    # Every task's _results imports this module: once here, not once per fork.
    import proofs.counterexample  # noqa: F401

    def every_name_of(defined: list[list[str]]) -> list[str]:
        return list(dict.fromkeys(name for names in defined for name in names))

    failures: list[GroupFailure] = []

    def batches() -> Iterator[list[tuple[tuple, int]]]:
        found, every_name = set(), {}
        for group, runs in groups:
            try:
                programs = [_cached_preprocessed(group.files, options, preprocessed) for options, _ in runs]
            except SourceError as error:
                failures.append(GroupFailure(group.files, error))
                continue
            defined = [[fn.name for fn in program.functions] for program in programs]
            every_name.update(dict.fromkeys(every_name_of(defined)))
            here = [name for name in functions if any(name in names for names in defined)]
            found.update(here)
            for (options, label), names in zip(runs, defined):
                for name in here:
                    if name not in names:
                        raise SourceError(f"no function named {name!r} in {', '.join(group.files)} "
                                          f"under {label} (functions: {', '.join(names) or 'none'})")
            batch = []
            for name in here if functions else every_name_of(defined):
                where = [(run, program) for run, names, program in zip(runs, defined, programs) if name in names]
                for (options, _), program in where:
                    selectors.function(program, name, row_settings(settings, options, group.facts))
                size = len(where[0][1].function(name).instructions)
                for start in range(0, len(where), CONFIGS_PER_TASK):
                    chunk = tuple(run for run, _ in where[start:start + CONFIGS_PER_TASK])
                    batch.append(((group.files, name, chunk, settings, group.facts), size * len(chunk)))
            yield batch
        if failures:
            return
        missing = [name for name in functions if name not in found]
        if missing:
            raise SourceError(f"--function {missing[0]}: no function named {missing[0]!r} in {', '.join(files)} "
                              f"(functions: {', '.join(every_name) or 'none'})")
        if not every_name:
            raise nothing
        selectors.finish(found if functions else every_name)

    tasks, outcomes = _run_in_forks(batches(), max(1, jobs), progress)
    failed = {failure.files for failure in failures}
    for task, outcome in zip(tasks, outcomes):
        if isinstance(outcome, tuple) and task[0] not in failed:
            failures.append(GroupFailure(task[0], SourceError(*outcome)))
            failed.add(task[0])
    order = {group.files: position for position, (group, _) in enumerate(groups)}
    failures.sort(key=lambda failure: order[failure.files])
    checked = [(result, options) for task, outcome in zip(tasks, outcomes) if task[0] not in failed
               for result, (options, _) in zip(outcome, task[2])]
    facts = {group.files: group.facts for group, _ in groups}
    for (result, options), task in zip(checked, (task for task in tasks if task[0] not in failed
                                                 for _ in task[2])):
        if facts.get(task[0]) is not None:      # tree mode: the tree, its configuration and asm-offsets
            result.assumptions.extend(tree_assumptions(facts[task[0]], options.configs, _toggled(configs)))
    return RunResult(checked, failures)

