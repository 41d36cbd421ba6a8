"""Deciding a function's obligations: its paths and the properties' claims -> statuses.

For every path of the executor, every selected property's checker
states its claims (:mod:`proofs.properties`, over the path's view,
:mod:`proofs.views`), and Z3 decides each obligation:

* a claim's ``violated`` together with the path condition and the stated
  assumptions (:mod:`proofs.assumptions`) is handed to the solver, every
  query with the user's timeout: one query per path asks for any of its
  claims at once, a model refutes every claim it satisfies and the rest
  are asked again; an unknown answer is retried claim by claim.  The
  queries go to the executor's incremental solver for the same
  assumptions (:meth:`model.executor.Solver.shared`).  No query is asked
  for what is already known: a claim shown unsatisfiable under the same
  assumptions and path context (a task's later configuration, on code the
  option does not change), or claims that simplify to false, also once
  the values the assumptions fix are put in;
* **sat** on any path refutes the obligation, with the model kept as its
  witness (one in which the path runs natively where it puts it, when
  there is one: :func:`proofs.counterexample.native_placement`, asked
  in the scope of the query that found the first model), then replaced
  by the smallest model (:func:`proofs.counterexample.canonical_witness`)
  of the violations of a group of the property's obligations refuted on
  the path (:func:`_smallest_witnesses`), so that its values depend on
  the path and its violations only, not on which claims were asked
  together or what the solver was asked before;
  **unknown** on any path (and no sat) leaves it unknown; **unsat**
  everywhere proves it -- unless a feasible path ended at a bound or on
  something unsupported, which makes every obligation not refuted
  elsewhere *unknown* (never proved), or a feasible path falls through
  (leaves the function's code), which makes the obligations judged at a
  path's end unknown (those a property judges along the path,
  ``Property.along_path``, are decided on it, and ``no-fallthrough`` is
  refuted);
* ``scrub`` (relational) asks about the same path twice: the second copy
  has every TDX-module/VMM output function renamed
  (:mod:`proofs.renaming`), i.e. an independent module under the same
  entry state, with both path conditions asserted.
"""
from __future__ import annotations

import time
from typing import Callable

import z3

from grammar.caches import CACHES
from grammar.source import Origin
from model import bv
from model.executor import PathEnd, PathResult, Query, Solver
from model.outcomes import Verdict
from proofs.assumptions import formulas, function_assumptions, path_context
from proofs.assumptions import texts as assumption_texts
from proofs.contracts import Contract
from proofs.counterexample import native_placement
from proofs.extended_state import Reset, caller_obligations, possible_resets
from proofs.outcomes import Status
from proofs.properties import PROPERTIES, Claim, applicable
from proofs.renaming import ModuleRenaming
from proofs.settings import Settings, not_configured
from proofs.views import symbolic_view, varied_view


class Obligation:
    """One obligation being decided: proved until a path says otherwise;
    ``witness``: (model, path, claim, views, placement note) of its
    refutation."""

    def __init__(self, pid: str, detail: str):
        self.pid, self.detail = pid, detail
        self.status = Status.PROVED
        self.seconds = 0.0
        self.witness: tuple | None = None
        self.origin: Origin | None = None
        self.reason = ""

    def settle(self, status: Status, reason: str = "") -> None:
        """Lower the status to ``status`` (refuted beats unknown beats proved)."""
        if self.status == Status.REFUTED:
            return
        if status == Status.REFUTED or self.status == Status.PROVED:
            self.status, self.reason = status, reason


_UNSATISFIABLE = CACHES.cache("unsatisfiable claims", 20_000)
"""(Z3 context id, the preconditions' and the context's term ids) -> (the
preconditions, the context, the violations shown unsatisfiable under them
by term id): the value holds every term whose id is in a key."""


def _unsatisfiable(solver: Solver, context: tuple[z3.BoolRef, ...]) -> dict[int, z3.BoolRef]:
    """The violations already shown unsatisfiable under ``context`` and the
    preconditions of ``solver``, which a claim may be told by without a
    query: a task's later configuration of the same function runs paths
    whose code the option does not change into the same terms (Z3 shares
    equal terms), and so states the same claims under the same context (on
    the fixture forms, 5535 of 12145 claims)."""
    key = (id(z3.main_ctx()),) + tuple(term.get_id() for term in solver.preconditions + context)
    if key not in _UNSATISFIABLE:
        _UNSATISFIABLE[key] = (solver.preconditions, context, {})
    return _UNSATISFIABLE[key][2]


_FIXED = CACHES.cache("fixed preconditions", 1_000)
"""id of a solver's preconditions (the tuple) -> (the tuple, kept so that
its id is not reused; :func:`_fixed_values` of it): every path of a
function asks."""


def _fixed_values(preconditions: tuple[z3.BoolRef, ...]) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """(variable, value) of each precondition that equates a variable with
    a value (DF clear at entry)."""
    if id(preconditions) not in _FIXED:
        _FIXED[id(preconditions)] = (preconditions, _equated(preconditions))
    return _FIXED[id(preconditions)][1]


def _equated(preconditions: tuple[z3.BoolRef, ...]) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    fixed = []
    for p in preconditions:
        if z3.is_eq(p):
            for variable, value in ((p.arg(0), p.arg(1)), (p.arg(1), p.arg(0))):
                if z3.is_const(variable) and variable.decl().kind() == z3.Z3_OP_UNINTERPRETED \
                        and z3.is_bv_value(value):
                    fixed.append((variable, value))
    return fixed


def _decide(claims: list[tuple[Claim, Obligation, tuple]], context: tuple[z3.BoolRef, ...], path: PathResult,
            solver: Solver, budget: "_Budget", canonical: "Canonical | None" = None) -> None:
    """Decide one path's claims (each with its obligation and views)
    under ``context`` and the solver's preconditions.  One query asks for
    any of a batch of claims at once -- but those whose violation is
    already shown unsatisfiable there (:func:`_unsatisfiable`), which hold
    without one, and a batch that is false once the variables a
    precondition fixes have their values (:func:`_fixed_values`:
    ``direction-flag`` on a path that leaves DF alone) needs none.  A model
    refutes every obligation whose claim it satisfies, and the query is
    asked again for the rest, until unsat.  An unknown answer splits the
    batch into one claim each, so that each unknown is the claim's own.
    Once the ``budget`` is spent, the claims not yet decided (shown or not)
    leave their obligations unknown.  ``canonical`` then makes
    the refutations' models the smallest ones (:func:`_smallest_witnesses`)."""
    started = time.perf_counter()
    shown = _unsatisfiable(solver, context)
    fixed = _fixed_values(solver.preconditions)
    batches = [[(claim.violated, claim, obligation, views) for claim, obligation, views in claims]]
    placement = None
    refuted: list[Obligation] = []
    while batches:
        batch = [item for item in batches.pop() if item[2].status != Status.REFUTED]
        if budget.spent():
            for item in batch + [item for rest in batches for item in rest]:
                item[2].settle(Status.UNKNOWN, budget.reason)
            break
        batch = [item for item in batch if item[0].get_id() not in shown]
        query = z3.simplify(bv.disjunction([item[0] for item in batch]))
        if z3.is_false(query) or fixed and z3.is_false(z3.simplify(z3.substitute(query, *fixed))):
            shown.update((item[0].get_id(), item[0]) for item in batch)
            continue
        with solver.scope(context + (query,)) as ask:
            answer, model = ask()
            if answer is Verdict.UNSAT:
                shown.update((item[0].get_id(), item[0]) for item in batch)
            elif answer is Verdict.UNKNOWN:
                if len(batch) == 1:
                    batch[0][2].settle(Status.UNKNOWN, f"solver: {solver.reason}")
                else:
                    batches += [[item] for item in reversed(batch)]
            elif answer is Verdict.SAT:
                hit = [item for item, value in zip(batch, bv.values_in(model, [item[0] for item in batch])) if value]
                if not hit:
                    raise RuntimeError("the solver's model satisfies none of the claims it was asked for")
                if placement is None:
                    placement = native_placement(path, ModuleRenaming(path.provenance).rename
                                                 if len(hit[0][3]) > 1 else None)
                refuted += _refute(hit, model, ask, placement, path, budget)
                batches.append([item for item in batch if item[2].status != Status.REFUTED])
    if canonical is not None and refuted:
        _smallest_witnesses(refuted, claims, context, path, placement, solver, budget, canonical)
    share = (time.perf_counter() - started) / max(1, len(claims))
    for _, obligation, _ in claims:
        obligation.seconds += share


Canonical = Callable[[str, list[tuple[str, list[Claim]]], Query, z3.ModelRef, PathResult],
                     tuple[z3.ModelRef, list[Claim]]]
"""(pid, each obligation's detail and its claims on the path, the query of
a scope holding the violation of all of them, a model of it, path) -> the
smallest model and, for each obligation, the claim it violates:
:func:`proofs.counterexample.canonical_witness` of one function."""


def _refute(items: list[tuple], model: z3.ModelRef, ask: Callable[..., tuple[Verdict, z3.ModelRef | None]],
            placement: z3.BoolRef, path: PathResult, budget: "_Budget") -> list[Obligation]:
    """Refute the obligations of ``items`` (whose claims ``model``
    satisfies), each with a model the CPU can run where there is one
    (``placement``: :func:`proofs.counterexample.native_placement` of the
    path): ``model`` itself when it places the path, else one query for
    the claims a placed model may satisfy, asked again for those it does
    not, until no placed model is left for the rest (or the ``budget`` is
    spent: the rest keep ``model``).  The queries are asked in the scope
    of the one that found ``model`` (``ask``: :meth:`Solver.scope`), which
    holds the path's context and a disjunction the claims imply.  The
    obligations refuted, in the order of ``items``."""
    pending = list(items)
    if z3.is_true(model.eval(placement, model_completion=True)):
        found = [(pending, model, "")]
    else:
        found = []
        while pending:
            if budget.spent():
                found.append((pending, model, "the proof's time limit was spent before a model placed in the "
                                              "native harness's memory was found: tdxproof replay relocates what "
                                              "it can"))
                break
            answer, placed = ask(placement, bv.disjunction([item[0] for item in pending]))
            if answer is not Verdict.SAT:
                found.append((pending, model, "no model of this violation keeps its memory accesses in the native "
                                              "harness's memory" + (" (solver: unknown)" if answer is Verdict.UNKNOWN
                                                                    else "") + ": tdxproof replay relocates what it can"))
                break
            hit = [item for item, value in zip(pending, bv.values_in(placed, [item[0] for item in pending])) if value]
            found.append((hit, placed, ""))
            pending = [item for item in pending if item not in hit]
    refuted = []
    for hit, found_model, note in found:
        for _, claim, obligation, views in hit:
            if obligation.status == Status.REFUTED:
                continue                    # refuted by an earlier claim of the same obligation
            obligation.witness = (found_model, path, claim, views, note)
            obligation.origin = claim.origin
            obligation.settle(Status.REFUTED)
            refuted.append(obligation)
    return refuted


def _smallest_witnesses(refuted: list[Obligation], claims: list[tuple[Claim, Obligation, tuple]],
                        context: tuple[z3.BoolRef, ...], path: PathResult, placement: z3.BoolRef,
                        solver: Solver, budget: "_Budget", canonical: Canonical) -> None:
    """Replace the witnesses of the obligations ``refuted`` on ``path``
    (of ``claims``, decided under ``context``) by smallest models.

    The obligations of one property whose models are placed alike (all
    natively, with ``placement``, or none) are taken in the order of
    their first claim; those of them that can be violated at once are one
    group (all of them, or, when not, the first and, in order, each one
    that can be violated together with those already in), and the group
    shares one witness: the smallest model of all of its violations
    (``canonical``), asked in a scope nested in the solver's.  So an
    obligation's witness is a function of the path and of the obligations
    refuted on it, not of which claims the solver was asked together or
    what it was asked before; and a property that fails for one cause on
    many registers or fields costs one smallest model, not one each (and
    its counterexample shows the cause at every one of them).  Once the
    ``budget`` is spent, the witnesses left keep the solver's models."""
    position: dict[int, int] = {}
    own: dict[int, list[Claim]] = {}
    for claim, obligation, _ in claims:
        position.setdefault(id(obligation), len(position))
        own.setdefault(id(obligation), []).append(claim)
    kinds: dict[tuple[str, bool], list[Obligation]] = {}
    for obligation in sorted(refuted, key=lambda o: position[id(o)]):
        kinds.setdefault((obligation.pid, not obligation.witness[4]), []).append(obligation)

    def violation(group: list[Obligation]) -> z3.BoolRef:
        return z3.And([bv.disjunction([claim.violated for claim in own[id(o)]]) for o in group])

    for (pid, placed), members in kinds.items():
        with solver.scope(context + ((placement,) if placed else ())) as ask:
            while members and not budget.spent():
                group, model = _jointly_violated(members, violation, ask)
                with solver.scope((violation(group),)) as query:
                    smallest, violated = canonical(pid, [(o.detail, own[id(o)]) for o in group], query, model, path)
                for obligation, claim in zip(group, violated):
                    _, _, _, views, note = obligation.witness
                    obligation.witness = (smallest, path, claim, views, note)
                    obligation.origin = claim.origin
                members = [o for o in members if o not in group]


def _jointly_violated(members: list[Obligation], violation: Callable[[list[Obligation]], z3.BoolRef],
                      ask: Query) -> tuple[list[Obligation], z3.ModelRef]:
    """The first group of ``members`` that can be violated at once
    (:func:`_smallest_witnesses`) and a model that violates all of it, in
    the scope of ``ask``: no query when the first member's witness
    violates all of them (the model that refuted one claim of a path
    usually refuted its neighbours too: on the fixture forms, 10 of the 11
    groups of more than one, each query about 13 ms), else one query when
    all can be, else one per member.  An unknown answer leaves its member
    out.  (The witness is a model of the scope: it was found under the
    path's context, and placed when the group is.)"""
    if len(members) > 1:
        model = members[0].witness[0]
        if z3.is_true(model.eval(violation(members), model_completion=True)):
            return members, model
        answer, model = ask(violation(members))
        if answer is Verdict.SAT:
            return members, model
    group, model = [members[0]], members[0].witness[0]
    for candidate in members[1:]:
        answer, joint = ask(violation([*group, candidate]))
        if answer is Verdict.SAT:
            group, model = [*group, candidate], joint
    return group, model


class _Budget:
    """The solver's time for one function x configuration row."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def spent(self) -> bool:
        return time.monotonic() > self._deadline

    @property
    def reason(self) -> str:
        return (f"the proof's time limit of {self.seconds:g} seconds for this function was spent before this "
                f"was decided (raise it with --limit proof-seconds=N)")


def prove(contract: Contract | None, settings: Settings, paths: list[PathResult], function: str = "the function",
          canonical: Canonical | None = None
          ) -> tuple[list[Obligation], list[str]]:
    """Every selected obligation of ``function`` with ``contract``, decided
    on its executor ``paths`` (module doc), and the texts of what was
    assumed (the stated assumptions, the properties that do not apply to
    this row, each path's own) and, with ``extended-state``, its callers'
    obligations (:mod:`proofs.extended_state`); ``canonical``: each
    refutation's witness is the smallest model (:func:`_smallest_witnesses`)."""
    selected = [pid for pid in applicable(contract, settings.configs) if pid in settings.properties]
    obligations = {(pid, detail): Obligation(pid, detail)
                   for pid in selected for detail in PROPERTIES[pid].details(contract)}
    stated = function_assumptions(paths[0].entry, contract) if paths else []
    texts = assumption_texts(stated)
    texts += not_configured(contract, settings)
    frame_points = "frame-pointer" in selected
    regions = paths[0].entry.memory.regions if paths else ()
    solver = Solver.shared(settings.timeout, tuple(formulas(stated)))
    budget = _Budget(settings.proof_seconds)
    resets: list[Reset] = []
    for path in paths:
        for text in path.assumptions:
            if text not in texts:
                texts.append(text)
        where = f" at {path.where.render()}" if path.where else ""
        if path.end in (PathEnd.BOUND, PathEnd.UNSUPPORTED):
            if solver.check((path.condition,))[0] is not Verdict.UNSAT:
                for obligation in obligations.values():
                    obligation.settle(Status.UNKNOWN, f"a path ended ({path.end}){where}: {path.detail}")
            continue
        if path.end is PathEnd.FALLTHROUGH and solver.check((path.condition,))[0] is not Verdict.UNSAT:
            for pid in selected:
                along = PROPERTIES[pid].along_path(contract)
                for detail in PROPERTIES[pid].details(contract):
                    if detail not in along:
                        obligations[(pid, detail)].settle(
                            Status.UNKNOWN, f"a path leaves the function's code{where} and goes {path.leaves_to} "
                                            f"(see no-fallthrough): what runs there is not modelled")
        view = symbolic_view(path, regions, frame_points)
        plain, relational, varied_condition = [], [], None
        for pid in selected:
            prop = PROPERTIES[pid]
            if prop.relational:
                varied, varied_condition = varied_view(path, view)
                relational += [(claim, obligations[(pid, claim.detail)], (view, varied))
                               for claim in prop.check(view, varied, contract)]
            else:
                plain += [(claim, obligations[(pid, claim.detail)], (view,)) for claim in prop.check(view, contract)]
        context = path_context(path, contract)
        with solver.holding(context):
            _decide(plain, context, path, solver, budget, canonical)
            if relational:
                _decide(relational, (*context, varied_condition), path, solver, budget, canonical)
            if "extended-state" in selected:
                resets += possible_resets(path, settings.resets_extended, solver, context)
    return list(obligations.values()), texts + caller_obligations(function, contract, resets)
