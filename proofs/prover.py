"""The prover: the executor's paths and the property checkers -> verdicts.

For one function (under one configuration) it picks the wrapper contract,
runs the symbolic executor, asks every selected property's checker for its
claims on every path, and decides each obligation with Z3:

* a claim's ``violated`` together with the path condition and the stated
  assumptions is handed to the solver (one solver per path, the path
  context asserted once, each claim under ``push``/``pop``, every query with
  the user's timeout);
* **sat** on any path refutes the obligation, with a counterexample built
  from that model (:mod:`proofs.counterexample`); **unknown** on any path
  (and no sat) leaves it unknown; **unsat** everywhere proves it -- unless
  a feasible path ended at a bound or on something unsupported, which makes
  every obligation not refuted elsewhere *unknown* (never proved);
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
* **Choosing a contract.**  Contracts are keyed by name and era.  The era is
  ``--abi`` when given, else the one era whose contract names occur in the
  input (``__tdx_module_call`` means legacy, ``__seamcall_ret`` unified),
  else undecided.  Of several candidates (an undecided era, or same-name
  legacy variants), those whose RCX constant is the TDG.VP.VMCALL bitmap
  the code really passes are kept (when that leaves any); the rest are all
  checked and the one with the fewest refuted obligations wins, ties going
  to the first in contract-file order; the choice and its reason are
  printed as an assumption, and ``--variant`` forces one.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import z3

from grammar import ast
from grammar.source import Origin
from model import abi, bv, ir, symbolic
from model.executor import ExecutorOptions, PathEnd, PathResult, execute_function
from model.lift import lift
from model.tdx import ARITHMETIC_FLAGS, Outcome
from proofs import contracts as contract_data
from proofs.contracts import Contract
from proofs.properties import (CATALOG, PROPERTIES, STACK_DEPTH, AccessView, Claim, EventView,
                               FaultView, Ops, PathView, applicable)

STACK_MARGIN = 0x10000
"""The entry RSP is at least this far from address 0 and from 2**64."""

MODULE_NAMESPACE, VARIED_NAMESPACE = "module", "varied"
PROVED, REFUTED, UNKNOWN = "proved", "refuted", "unknown"


@dataclass(frozen=True)
class Settings:
    """What the user chose for a ``check`` run (besides files and configs)."""

    properties: tuple[str, ...] = CATALOG
    era: str | None = None
    firmware: str = "spec"
    timeout: float = 10.0
    contracts: tuple[Contract, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    loop_bound: int = 16
    tdcall_may_fault: bool = False


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

    def rsp_after(self, origin: Origin, rsp: z3.BitVecRef) -> z3.BitVecRef:
        """RSP after the instruction at ``origin`` when it is a function of
        RSP alone (``push``, ``pop``, ``call``, ``sub $n, %rsp`` ...), else
        the RSP before it."""
        instr = self._by_origin.get(origin)
        if instr is None:
            return rsp
        try:
            step = lift(instr)
        except Exception:
            return rsp
        for effect in step.effects:
            if isinstance(effect, ir.SetReg) and effect.name == "rsp" and _only_rsp(effect.value):
                state = symbolic.SymbolicState({"rsp": rsp}, {}, None)
                return symbolic.evaluate(effect.value, state, symbolic.SymbolicEnv())
        return rsp


class MemoryResolver:
    """Read-over-write resolution: ``Select(Store(m, a, v), b)`` becomes
    ``v`` when ``a - b`` simplifies to 0, ``Select(m, b)`` when it is another
    constant or when ``a`` and ``b`` lie in two of the ``regions`` that the
    asserted assumptions keep apart (the frame around the entry RSP and the
    contract's struct), else ``If(a == b, v, Select(m, b))`` -- down to the
    entry memory.  The solver then sees bit-vector formulas over a few
    entry-memory bytes instead of long store chains (far faster).

    ``regions`` are ``(base variable, lowest offset, end offset)``; the
    assumptions must make any two of them disjoint."""

    def __init__(self, regions: tuple[tuple[z3.BitVecRef, int, int], ...] = ()):
        self.regions = regions
        self._places: dict[int, tuple] = {}
        self._chains: dict[int, tuple] = {}
        self._cache: dict[int, tuple[z3.ExprRef, z3.ExprRef]] = {}

    def __call__(self, term: z3.ExprRef) -> z3.ExprRef:
        key = term.get_id()     # the cache keeps ``term`` alive, so its id stays its own
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = (term, self._resolved(term))
        return cached[1]

    def _resolved(self, term: z3.ExprRef) -> z3.ExprRef:
        # Classified through the C API (one call per question, no wrapper
        # objects): this walk visits every node of every claim.
        ctx, node = term.ctx_ref(), term.as_ast()
        if z3.Z3_get_ast_kind(ctx, node) != z3.Z3_APP_AST:
            return term
        count = z3.Z3_get_app_num_args(ctx, node)
        kind = z3.Z3_get_decl_kind(ctx, z3.Z3_get_app_decl(ctx, node))
        if kind == z3.Z3_OP_SELECT:
            return self._select(_argument(term, 0), self(_argument(term, 1)))
        if not count or kind == z3.Z3_OP_STORE or \
                z3.Z3_get_sort_kind(ctx, z3.Z3_get_sort(ctx, node)) == z3.Z3_ARRAY_SORT:
            return term
        children, changed = [], False
        for position in range(count):
            child = z3.Z3_get_app_arg(ctx, node, position)
            cached = self._cache.get(z3.Z3_get_ast_id(ctx, child))
            new = cached[1] if cached is not None else self(z3.z3._to_expr_ref(child, term.ctx))
            changed = changed or z3.Z3_get_ast_id(ctx, new.as_ast()) != z3.Z3_get_ast_id(ctx, child)
            children.append(new)
        return _updated(term, children) if changed else term

    def _located(self, address: z3.BitVecRef) -> tuple[z3.BitVecRef | None, int | None, int, int | None]:
        """(base variable, its id, offset, region index) of ``address``, cached."""
        key = address.get_id()
        if key not in self._places:
            base, offset = base_offset(address)
            region = None
            for position, (variable, low, end) in enumerate(self.regions):
                if base is not None and base.eq(variable) and low <= offset < end:
                    region = position
            self._places[key] = (address, base, None if base is None else base.get_id(), offset, region)
        return self._places[key][1:]

    def _chain(self, array: z3.ExprRef) -> tuple[list[tuple], z3.ExprRef]:
        """The stores of ``array`` newest first, each (address, its place,
        value, the array it was stored into), and the array under them;
        cached per array, each store level resolved once (a chain shares
        its tail with every shorter one)."""
        key = array.get_id()
        if key not in self._chains:
            pending, inner = [], array
            while z3.is_store(inner) and inner.get_id() not in self._chains:
                below = _argument(inner, 0)
                pending.append((inner, below))
                inner = below
            if inner.get_id() in self._chains:
                stores, bottom = self._chains[inner.get_id()][1:]
            else:
                stores, bottom = [], inner
                self._chains[inner.get_id()] = (inner, stores, bottom)
            for store, below in reversed(pending):
                written = self(_argument(store, 1))
                stores = [(written, self._located(written), _argument(store, 2), below)] + stores
                self._chains[store.get_id()] = (store, stores, bottom)
        return self._chains[key][1:]

    def _select(self, array: z3.ExprRef, address: z3.BitVecRef) -> z3.BitVecRef:
        _, base, offset, region = self._located(address)
        stores, inner = self._chain(array)
        for written, (_, other_base, other_offset, other_region), value, below in stores:
            if base is not None and base == other_base:
                if offset == other_offset:
                    return self(value)
                continue
            if region is not None and other_region is not None and other_region != region:
                continue
            distance = z3.simplify(written - address)
            if z3.is_bv_value(distance):
                if distance.as_long() == 0:
                    return self(value)
                continue
            return z3.If(written == address, self(value), self._select(below, address))
        if z3.is_app_of(inner, z3.Z3_OP_ITE):
            return z3.If(self(_argument(inner, 0)), self._select(_argument(inner, 1), address),
                         self._select(_argument(inner, 2), address))
        # ``z3.Select`` would re-check the sorts through several Python layers; Z3 checks them anyway
        select = z3.Z3_mk_select(inner.ctx_ref(), inner.as_ast(), address.as_ast())
        return z3.z3._to_expr_ref(select, inner.ctx)


def base_offset(address: z3.BitVecRef) -> tuple[z3.BitVecRef | None, int]:
    """``address`` as variable + signed constant, when it is that.

    >>> x = z3.BitVec("x", 64)
    >>> base_offset(x - 8)[1], base_offset(x)[1], base_offset(x * 2)[0]
    (-8, 0, None)
    """
    simple = z3.simplify(address)
    if z3.is_const(simple) and not z3.is_bv_value(simple):
        return simple, 0
    if z3.is_app_of(simple, z3.Z3_OP_BADD) and simple.num_args() == 2:
        constant, variable = _argument(simple, 0), _argument(simple, 1)
        if z3.is_bv_value(variable):
            constant, variable = variable, constant
        if z3.is_bv_value(constant) and z3.is_const(variable):
            value = constant.as_long()
            return variable, value - 2**64 if value >= 2**63 else value
    return None, 0


def _argument(term: z3.ExprRef, position: int) -> z3.ExprRef:
    """``term.arg(position)`` without its argument checks (the callers
    know the shape; Z3 still rejects a bad position)."""
    return z3.z3._to_expr_ref(z3.Z3_get_app_arg(term.ctx_ref(), term.as_ast(), position), term.ctx)


def _updated(term: z3.ExprRef, children: list[z3.ExprRef]) -> z3.ExprRef:
    """``term`` with new children (n-ary operators such as ``concat`` keep
    their arity, which rebuilding through ``decl()`` would not)."""
    array = (z3.Ast * len(children))(*[child.as_ast() for child in children])
    return z3.z3._to_expr_ref(z3.Z3_update_term(term.ctx_ref(), term.as_ast(), len(children), array), term.ctx)


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
    base, offset = base_offset(address)
    if base is None or not regions:
        return None, None
    stack = regions[0][0]
    if not base.eq(stack) and not any(base.eq(variable) for variable, _, _ in regions[1:]):
        return False, None      # through a pointer argument: assumed off this function's stack
    for position, (variable, low, end) in enumerate(regions):
        if base.eq(variable) and low <= offset and offset + size <= end:
            if position != 0:
                return False, True
            before, after = base_offset(rsp_before), base_offset(rsp_after)
            if not all(b is not None and b.eq(stack) and low <= o <= end for b, o in (before, after)):
                return None, offset + size <= 0
            return offset < min(before[1], after[1]), offset + size <= 0
    return None, None


def symbolic_view(result: PathResult, instructions: _Instructions, memory: "MemoryResolver | None" = None
                  ) -> PathView:
    """The checkers' view of one executor path (``memory``: the path's
    read-over-write resolution, which also places addresses in regions)."""
    accesses = []
    for a in result.accesses:
        after = instructions.rsp_after(a.origin, a.rsp)
        below, inside = (None, None) if memory is None else _known_access(
            a.kind, memory(a.address), a.width // 8, memory(a.rsp), memory(after), memory.regions)
        accesses.append(AccessView(a.kind, a.address, a.width // 8, a.rsp, after, a.origin, a.guard,
                                   below, inside))
    accesses = tuple(accesses)
    faults = tuple(FaultView(f.instruction, f.handled, f.origin, f.guard) for f in result.faults)
    return PathView(Ops(), result.end.value, result.entry.regs, result.state.regs, result.state.flags,
                    result.state.load, result.entry.load, tuple(_event_view(e) for e in result.events),
                    accesses, faults, result.where)


class ModuleRenaming:
    """Every TDX-module function of a path's events renamed into an
    independent one (same domain and range, ``varied_`` namespace).

    The functions are found from the events themselves (each output and
    status is an application, or an ``If`` of applications on merged
    paths) plus, by :mod:`model.tdx`'s documented naming, the flag
    functions of the same kind and domain; no walk over whole states."""

    def __init__(self, events):
        self._pairs: dict[str, tuple] = {}
        for event in events:
            for term in list(event.outputs.values()) + ([event.status] if event.status is not None else []):
                for decl in _applications(term):
                    self._add(decl)
                    if event.kind == "tdcall":
                        domain = [decl.domain(i) for i in range(decl.arity())]
                        for flag in ARITHMETIC_FLAGS:
                            self._add(z3.Function(f"{MODULE_NAMESPACE}_{event.kind}_flag_{flag}", *domain,
                                                  z3.BitVecSort(1)))

    def _add(self, decl: z3.FuncDeclRef) -> None:
        name = decl.name()
        if name not in self._pairs:
            domain = [decl.domain(i) for i in range(decl.arity())]
            twin = z3.Function(VARIED_NAMESPACE + name[len(MODULE_NAMESPACE):], *domain, decl.range())
            self._pairs[name] = (decl, twin(*[z3.Var(i, sort) for i, sort in enumerate(domain)]))

    def rename(self, terms: Iterable[z3.ExprRef]) -> list[z3.ExprRef]:
        terms = list(terms)
        if not self._pairs:
            return terms
        pairs = list(self._pairs.values())
        return [z3.substitute_funs(term, *pairs) for term in terms]


def _applications(term: z3.ExprRef) -> Iterator[z3.FuncDeclRef]:
    """The module-function declarations at the top of ``term`` (through ``If`` arms)."""
    if z3.is_app_of(term, z3.Z3_OP_ITE):
        yield from _applications(term.arg(1))
        yield from _applications(term.arg(2))
    elif z3.is_app(term) and term.decl().arity() and term.decl().name().startswith(MODULE_NAMESPACE + "_"):
        yield term.decl()
    elif not z3.is_bv_value(term):
        raise ValueError(f"a TDX-module output that is not an application of the module's functions: {term}")


def varied_view(result: PathResult, view: PathView) -> tuple[PathView, z3.BoolRef]:
    """The same path with an independent module: (its view, its condition)."""
    names = list(view.final)
    renamed = ModuleRenaming(result.events).rename([result.condition] + [view.final[n] for n in names])
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


def _regions(state: symbolic.SymbolicState, contract: Contract | None) -> tuple:
    """The memory regions the assumptions keep apart (see :class:`MemoryResolver`)."""
    regions = [(state.regs["rsp"], -STACK_DEPTH, 8)]
    if contract is not None and contract.struct_pointer != "rsp":
        regions.append((state.regs[contract.struct_pointer], 0, contract.struct_size))
    return tuple(regions)


def _executor_options(settings: Settings, contract: Contract | None, namespace: str = MODULE_NAMESPACE
                      ) -> ExecutorOptions:
    """The executor's options for ``contract``: its module-output set, and
    the same assumptions (as preconditions) and read-over-write resolution
    (as the query rewrite) the prover uses, so that the executor prunes
    exactly the paths the assumptions rule out."""
    outputs = {}
    if contract is not None and contract.module_outputs == "call":
        outputs = {contract.instruction: abi.MODULE_CALL_OUTPUTS}
    entry = symbolic.SymbolicState.fresh(ExecutorOptions.entry_prefix)
    formulas, _ = _assumptions(entry, contract)
    return ExecutorOptions(firmware=settings.firmware, module_outputs=outputs,
                           solver_timeout=settings.timeout, loop_bound=settings.loop_bound,
                           module_namespace=namespace, preconditions=tuple(formulas),
                           tdcall_may_fault=settings.tdcall_may_fault,
                           rewrite=MemoryResolver(_regions(entry, contract)))


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


def make_solver(timeout: float, context: Iterable[z3.BoolRef], memory: MemoryResolver) -> z3.Solver:
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.add(*[memory(term) for term in context])
    return solver


def _decide(solver: z3.Solver, claim: Claim, obligation: _Obligation, path: PathResult,
            views: tuple, memory: MemoryResolver) -> None:
    started = time.perf_counter()
    violated = z3.simplify(memory(claim.violated))
    if z3.is_false(violated):
        obligation.seconds += time.perf_counter() - started
        return
    solver.push()
    solver.add(violated)
    answer = solver.check()
    if answer == z3.sat:
        obligation.witness = (solver.model(), path, claim, views)
        obligation.origin = claim.origin
        obligation.settle(REFUTED)
    elif answer == z3.unknown:
        obligation.settle(UNKNOWN, f"solver: {solver.reason_unknown()}")
    solver.pop()
    obligation.seconds += time.perf_counter() - started


def _prove(program: ast.Program, name: str, contract: Contract | None, settings: Settings,
           paths: list[PathResult]) -> tuple[list[_Obligation], list[str]]:
    instructions = _Instructions(program)
    selected = [pid for pid in applicable(contract) if pid in settings.properties]
    obligations = {(pid, detail): _Obligation(pid, detail)
                   for pid in selected for detail in PROPERTIES[pid].details(contract)}
    formulas, texts = _assumptions(paths[0].entry, contract) if paths else ([], [])
    memory = MemoryResolver(_regions(paths[0].entry, contract) if paths else ())   # shared: a pure rewriting
    for path in paths:
        for text in path.assumptions:
            if text not in texts:
                texts.append(text)
        if path.end in (PathEnd.BOUND, PathEnd.UNSUPPORTED):
            solver = make_solver(settings.timeout, formulas + [path.condition], memory)
            if solver.check() != z3.unsat:
                where = f" at {path.where.render()}" if path.where else ""
                for obligation in obligations.values():
                    obligation.settle(UNKNOWN, f"a path ended ({path.end.value}){where}: {path.detail}")
            continue
        view = symbolic_view(path, instructions, memory)
        solver = None
        for pid in selected:
            prop = PROPERTIES[pid]
            if prop.relational:
                varied, condition = varied_view(path, view)
                claims = list(prop.check(view, varied, contract))
                if claims:
                    relational = make_solver(settings.timeout, formulas + [path.condition, condition], memory)
                    for claim in claims:
                        obligation = obligations[(pid, claim.detail)]
                        if obligation.status != REFUTED:
                            _decide(relational, claim, obligation, path, (view, varied), memory)
                continue
            for claim in prop.check(view, contract):
                obligation = obligations[(pid, claim.detail)]
                if obligation.status == REFUTED:
                    continue
                if solver is None:
                    solver = make_solver(settings.timeout, formulas + [path.condition], memory)
                _decide(solver, claim, obligation, path, (view,), memory)
    return list(obligations.values()), texts


def _results(program: ast.Program, name: str, config: str, contract: Contract | None,
             obligations: list[_Obligation], texts: list[str], settings: Settings) -> FunctionResult:
    from proofs.counterexample import build_counterexample
    out = []
    for o in obligations:
        cex = None
        if o.status == REFUTED:
            model, path, claim, views = o.witness
            cex = build_counterexample(program, name, config, contract, o.pid, o.detail,
                                       model, path, claim, views, settings)
        out.append(ObligationResult(o.pid, o.detail, o.status, o.seconds, cex, o.origin, o.reason))
    return FunctionResult(name, config, contract.era if contract else "-",
                          contract.key if contract else None, program.function(name).origin, out, texts)


def candidate_contracts(program: ast.Program, name: str, settings: Settings) -> tuple[tuple[Contract, ...], str]:
    """The contracts ``name`` may be checked against, and why (see module doc)."""
    contracts = settings.contracts
    era, why = settings.era, "era chosen with --abi"
    if era is None:
        why = "the only contract of that name"
        names = {fn.name for fn in program.functions}
        eras = {e for e in contract_data.ERAS
                if names & {c.name for c in contracts if c.era == e}
                - {c.name for c in contracts if c.era != e}}
        if len(eras) == 1:
            era = eras.pop()
            why = "era inferred from the other wrappers in the input"
    found = tuple(c for c in contracts if c.name == name and (era is None or c.era == era))
    if name in settings.variants:
        found = tuple(c for c in found if c.variant == settings.variants[name])
        why = "--variant"
    return found, why


def check_function(program: ast.Program, name: str, config: str, settings: Settings) -> FunctionResult:
    """Every selected obligation of function ``name`` (see module doc)."""
    found, why = candidate_contracts(program, name, settings)
    runs: dict[tuple, list[PathResult]] = {}

    def paths(contract: Contract | None) -> list[PathResult]:
        options = _executor_options(settings, contract)
        key = (tuple(sorted(options.module_outputs.items())),
               None if contract is None else (contract.struct_pointer, contract.struct_size,
                                              contract.struct_may_be_null))
        if key not in runs:
            runs[key] = execute_function(program, name, options)
        return runs[key]

    if len(found) > 1:
        bitmaps = {event.bitmap for path in paths(found[0]) for event in path.events
                   if event.kind == "tdcall" and event.bitmap is not None}
        matching = tuple(c for c in found if bitmaps == {c.input_constants.get("rcx")})
        found = matching or found
    best = None
    for contract in found or (None,):
        obligations, texts = _prove(program, name, contract, settings, paths(contract))
        refuted = sum(1 for o in obligations if o.status == REFUTED)
        if best is None or refuted < best[0]:
            best = (refuted, contract, obligations, texts)
    _, contract, obligations, texts = best
    if contract is not None:
        if len(found) > 1:
            others = ", ".join(c.key for c in found if c is not contract)
            texts.insert(0, f"contract {contract.key} chosen for {name}: fewest refuted obligations "
                            f"among the candidates (also tried: {others})")
        else:
            texts.insert(0, f"contract {contract.key} ({why})")
    texts.insert(0, f"firmware: {settings.firmware}")
    return _results(program, name, config, contract, obligations, texts, settings)


# --- a whole run: files x configurations x functions ----------------------------------------

def config_label(configs: Mapping[str, bool]) -> str:
    """The row label of a configuration.

    >>> config_label({"CONFIG_FRAME_POINTER": True, "CONFIG_RETHUNK": False})
    'CONFIG_FRAME_POINTER=y,CONFIG_RETHUNK=n'
    >>> config_label({})
    'default'
    """
    return ",".join(f"{name}={'y' if value else 'n'}" for name, value in configs.items()) or "default"


def config_matrix(fixed: Mapping[str, bool], toggled: Iterable[str]) -> list[dict[str, bool]]:
    """Every combination of the ``toggled`` options (y before n) on top of ``fixed``.

    >>> [config_label(c) for c in config_matrix({"CONFIG_A": True}, ["CONFIG_B"])]
    ['CONFIG_A=y,CONFIG_B=y', 'CONFIG_A=y,CONFIG_B=n']
    """
    combinations = [dict(fixed)]
    for name in toggled:
        combinations = [dict(c, **{name: value}) for c in combinations for value in (True, False)]
    return combinations


_PROGRAMS: dict[tuple, ast.Program] = {}


def _program_key(files: tuple[str, ...], options) -> tuple:
    return (files, options.include_dirs, options.defines, options.undefines,
            tuple(sorted(options.configs.items())), options.cpp, options.use_shims)


def cached_program(files: tuple[str, ...], options) -> ast.Program:
    from grammar.frontend import load_program
    key = _program_key(files, options)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = load_program(list(files), options)
    return _PROGRAMS[key]


def _load_programs(requests: list[tuple[tuple[str, ...], Any]]) -> None:
    """Put the programs of several (files, options) in the cache at once (the
    front end overlaps their C preprocessor runs)."""
    from grammar.frontend import load_programs
    missing = list({_program_key(*request): request for request in requests
                    if _program_key(*request) not in _PROGRAMS}.items())
    for (key, _), program in zip(missing, load_programs([request for _, request in missing])):
        _PROGRAMS[key] = program


def _task(arguments: tuple) -> FunctionResult | tuple:
    """One (function, configuration); a bad-input error comes back as
    (message, origin), which pickles whole (the exception would lose its
    origin on the way from the worker)."""
    from grammar.source import SourceError
    files, options, name, label, settings = arguments
    try:
        return check_function(cached_program(files, options), name, label, settings)
    except SourceError as error:
        return (error.message, error.origin)


def _run_in_forks(tasks: list[tuple], jobs: int, cost: list[int], progress=None) -> list:
    """``[_task(task) for task in tasks]``, each in a fresh fork of this process.

    Z3's models depend on the solver's history, so a counterexample is the
    same bytes, whatever ``jobs`` and whatever ran before, only if every
    task starts from the same state: each runs in its own child, forked
    from this process, which runs no task itself and keeps each pickled
    result as bytes until the last child is done (so its heap hardly
    changes between forks).  At most ``jobs`` children run at once, the
    costliest tasks (by ``cost``) first, so that a long task does not start
    last; results come back in task order.  A child that dies without a
    result (a signal, an exception outside ``_task``'s bad-input errors) is
    an internal error naming its task.
    """
    import os
    import pickle
    import selectors
    import traceback
    queue = sorted(range(len(tasks)), key=lambda index: -cost[index])
    payloads: list[bytes | None] = [None] * len(tasks)
    running: dict[int, tuple[int, int, list[bytes]]] = {}        # read end -> (task, pid, chunks)
    waiting = selectors.DefaultSelector()
    try:
        while queue or running:
            while queue and len(running) < jobs:
                index = queue.pop(0)
                read_end, write_end = os.pipe()
                pid = os.fork()
                if pid == 0:                                      # the child: one task, then _exit
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
            for key, _ in waiting.select():
                index, pid, chunks = running[key.fd]
                chunk = os.read(key.fd, 1 << 20)
                if chunk:
                    chunks.append(chunk)
                    continue
                waiting.unregister(key.fd)
                os.close(key.fd)
                del running[key.fd]
                _, status = os.waitpid(pid, 0)
                payloads[index] = b"".join(chunks)
                if not payloads[index]:
                    raise RuntimeError(f"the process checking {tasks[index][2]} [{tasks[index][3]}] "
                                       f"ended without a result (wait status {status})")
                if progress:
                    done = sum(1 for payload in payloads if payload is not None)
                    progress(done - 1, len(tasks), tasks[index][2], tasks[index][3])
    finally:
        for read_end, (_, pid, _) in running.items():
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read_end)
        waiting.close()
    results = []
    for task, payload in zip(tasks, payloads):
        kind, result = pickle.loads(payload)
        if kind == "crash":
            raise RuntimeError(f"checking {task[2]} [{task[3]}] failed:\n{result}")
        results.append(result)
    return results


def check_files(files: Iterable[str], front_end, configs: list[dict[str, bool]], functions: Iterable[str],
                settings: Settings, jobs: int = 1, progress=None) -> list[FunctionResult]:
    """Check every selected function of ``files`` under every configuration;
    results in (function, configuration) input order, whatever ``jobs``."""
    files = tuple(files)
    tasks = []
    every_options = [dataclasses.replace(front_end, configs={**front_end.configs, **configs_here})
                     for configs_here in configs]
    _load_programs([(files, options) for options in every_options])
    for configs_here, options in zip(configs, every_options):
        program = cached_program(files, options)
        names = [fn.name for fn in program.functions]
        wanted = list(functions) or names
        for name in wanted:
            if name not in names:
                from grammar.source import SourceError
                raise SourceError(f"no function named {name!r} in {', '.join(files)} "
                                  f"(functions: {', '.join(names) or 'none'})")
        tasks += [(files, options, name, config_label(configs_here), settings) for name in wanted]
    order = list(dict.fromkeys(task[2] for task in tasks))
    tasks.sort(key=lambda task: order.index(task[2]))     # one function's configurations together
    cost = [len(cached_program(task[0], task[1]).function(task[2]).instructions) for task in tasks]
    import proofs.counterexample  # noqa: F401 -- every task's _results imports it: once here, not once per fork
    results = _run_in_forks(tasks, max(1, jobs), cost, progress)
    for result in results:
        if isinstance(result, tuple):
            from grammar.source import SourceError
            raise SourceError(*result)
    return results
