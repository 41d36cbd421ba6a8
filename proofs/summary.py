"""What a wrapper may change, per outcome: its frame specification,
computed from its symbolic paths (``tdxproof summary``).

For each function, the paths ``check`` judges (:func:`proofs.prover.function_paths`:
the same contract choice, executor and assumptions) are grouped by how
they end for the caller -- *completion*, *VMfailInvalid*, *#UD*, *#GP*
(the outcomes of the TDX instructions on a path that returns), *panic*
(a never-returning call), *oops* (a fault with no exception-table
entry), and the paths the model does not follow to the end (bound,
unsupported, falling through), which are listed as not modelled and say
nothing.  For each group, every register, flag, field of the contract's
struct, the rest of memory and the extended (AVX) state is compared
with the entry state, by the solver, under the path condition and the
stated assumptions of ``check`` (:mod:`proofs.assumptions`):

* **unchanged** when ``final != entry`` is unsat (proved, not read off
  the code);
* otherwise what it equals, each a solver query (``final != candidate``
  unsat), candidates tried in this order and only those that agree with
  ``final`` in a model of the change: an *entry* value (a register, a
  struct field as it was at entry, the entry RSP plus a constant), a *module* output (a register
  the TDX instruction returned, its status, or a flag the module chose),
  a *constant* (the model's value, proved to be the only one; the SPEC's
  status constants by name); else *unknown / depends* (a function of
  several inputs, or of the path);
* a struct field is judged where the contract lets the wrapper write the
  struct (not NULL; the flag of ``outputs_when`` set), which its value
  then says (``when written``);
* other memory (outside the frame below the entry RSP and the struct:
  the return-address slot included) changes where a write may land there
  (the ``frame`` property's claims, asked one by one);
* the extended state is unchanged, or INIT after the completion of a
  leaf declared to reset it (:mod:`proofs.extended_state` names the
  leaves);
* a solver timeout makes the answer *unknown* (the location may change),
  never unchanged; the summary is then incomplete (exit status 3).

Several paths in one group (the executor merges paths with the same TDX
events, so this is rare) agree or the value *depends on the path*.

The result is data (:class:`FunctionSummary`), printed as one compact
table per function -- locations down, outcomes across, ``-`` for
unchanged -- or as JSON, and :func:`diff_summaries` says in one line per
difference how two summaries of a function differ, for a reviewer of a
patch series ("RBX: was unchanged on #GP, now module RBX").
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Sequence

import z3

from grammar import ast
from grammar.ast import GPR64
from grammar.frontend import group_configurations
from grammar.source import SourceError
from model import abi, bv
from model.executor import PathResult, Solver
from model.outcomes import Verdict
from model.tdx import EXTENDED_INIT, Outcome
from model.transfers import PathEnd
from proofs import TOOL, VERSION
from proofs.assumptions import formulas, function_assumptions, path_context
from proofs.assumptions import texts as assumption_texts
from proofs.contracts import Contract
from proofs.extended_state import Reset, caller_obligations, possible_resets
from proofs.programs import cached_program
from proofs.properties import PROPERTIES, struct_address, struct_written
from proofs.report import assumption_lines
from proofs.prover import function_paths
from proofs.selectors import not_a_c_function
from proofs.settings import Settings, row_settings
from proofs.views import symbolic_view


class ValueKind(str, enum.Enum):
    """What a location holds at the end of an outcome's paths."""

    UNCHANGED = "unchanged"
    ENTRY = "entry"
    MODULE = "module"
    CONSTANT = "constant"
    INIT = "init"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Value:
    """A location's value: its kind and what it names (``RDI``,
    ``RCX``, ``TDX_SEAMCALL_VMFAILINVALID``, ``depends``)."""

    kind: ValueKind
    text: str = ""

    @property
    def cell(self) -> str:
        """How the table shows it.

        >>> Value(ValueKind.ENTRY, "RDI").cell, Value(ValueKind.UNCHANGED).cell
        ('entry RDI', '-')
        """
        if self.kind is ValueKind.UNCHANGED:
            return "-"
        if self.kind in (ValueKind.ENTRY, ValueKind.MODULE):
            return f"{self.kind} {self.text}"
        return self.text

    @property
    def words(self) -> str:
        """How a sentence says it (a diff line).

        >>> Value(ValueKind.MODULE, "RBX").words, Value(ValueKind.CONSTANT, "0x0").words
        ('module output RBX', 'the constant 0x0')
        """
        return {ValueKind.UNCHANGED: "unchanged", ValueKind.ENTRY: f"the entry {self.text}",
                ValueKind.MODULE: f"module output {self.text}", ValueKind.CONSTANT: f"the constant {self.text}",
                ValueKind.INIT: self.text, ValueKind.UNKNOWN: f"unknown ({self.text})"}[self.kind]


UNCHANGED = Value(ValueKind.UNCHANGED)


@dataclass(frozen=True)
class Change:
    """A location that may change on an outcome, and what it then holds."""

    location: str
    value: Value


@dataclass(frozen=True)
class OutcomeSummary:
    """One outcome: how many paths end so, how they end (``end``: returned,
    panic, ...), what may change; ``note``: why the model says nothing of
    it (a path it does not follow to the end)."""

    outcome: str
    paths: int
    end: str
    changes: tuple[Change, ...] = ()
    note: str = ""

    def value(self, location: str) -> Value:
        return next((change.value for change in self.changes if change.location == location), UNCHANGED)


@dataclass(frozen=True)
class FunctionSummary:
    """What function ``function`` may change, outcome by outcome, under
    configuration ``config`` and ``contract`` (its key, or None)."""

    function: str
    file: str
    config: str
    contract: str | None
    outcomes: tuple[OutcomeSummary, ...]
    assumptions: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    complete: bool = True
    """False when a solver answer was unknown or a path is not modelled."""

    def outcome(self, name: str) -> OutcomeSummary | None:
        return next((o for o in self.outcomes if o.outcome == name), None)

    @property
    def locations(self) -> tuple[str, ...]:
        """Every location that may change on some outcome, in table order."""
        return _ordered(change.location for o in self.outcomes for change in o.changes)


# --- computing it -----------------------------------------------------------------------

OUTCOME_NAMES = {Outcome.COMPLETION: "completion", Outcome.VMFAILINVALID: "VMfailInvalid",
                 Outcome.FAULT_UD: "#UD", Outcome.FAULT_GP: "#GP"}
_ENDS = {PathEnd.PANIC: "panic", PathEnd.OOPS: "oops", PathEnd.FALLTHROUGH: "falls through",
         PathEnd.BOUND: "bound reached", PathEnd.UNSUPPORTED: "unsupported"}
_UNMODELLED = (PathEnd.FALLTHROUGH, PathEnd.BOUND, PathEnd.UNSUPPORTED)
OUTCOME_ORDER = ("completion", "VMfailInvalid", "#UD", "#GP", "no TDX instruction", "panic", "oops",
                 "falls through", "bound reached", "unsupported")
FLAGS = abi.FLAGS
MEMORY, EXTENDED = "other memory", "extended state"
NAMED_CONSTANTS = {abi.TDX_SW_ERROR: "TDX_SW_ERROR", abi.TDX_SEAMCALL_VMFAILINVALID: "TDX_SEAMCALL_VMFAILINVALID", abi.TDX_SEAMCALL_UD: "TDX_SEAMCALL_UD",
                   abi.TDX_SEAMCALL_GP: "TDX_SEAMCALL_GP"}
"""Constants a summary names (SPEC section 5)."""


def outcome_of(path: PathResult) -> str:
    """The outcome group of a path (module doc)."""
    if path.end is PathEnd.RETURNED:
        return ", ".join(OUTCOME_NAMES[event.outcome] for event in path.events) or "no TDX instruction"
    return _ENDS[path.end]


def _ordered(locations: Iterable[str]) -> tuple[str, ...]:
    """Registers, flags, struct fields (in the order first seen: the struct's), other memory, extended state."""
    found = dict.fromkeys(locations)
    fixed = [reg.upper() for reg in GPR64] + [flag.upper() for flag in FLAGS]
    fields = [location for location in found if "->" in location]
    order = fixed + fields + [MEMORY, EXTENDED]
    return tuple(location for location in order if location in found)


def struct_parameter(contract: Contract) -> str:
    """The name the kernel gives the contract's struct pointer.

    >>> from proofs.contracts import Contract
    >>> struct_parameter(Contract("f", "legacy", "tdcall", "rdi", "tdx_module_output", "r9"))
    'out'
    """
    return "out" if contract.struct == "tdx_module_output" else "args"


@dataclass(frozen=True)
class _Candidate:
    value: Value
    term: z3.ExprRef


@dataclass
class _Location:
    """One location of a path being judged: its final and entry values,
    the candidates it is compared with, and the condition it is judged
    under (``written``: a struct field's, else None)."""

    name: str
    final: z3.ExprRef
    entry: z3.ExprRef
    candidates: list[_Candidate]
    written: z3.BoolRef | None = None

    @property
    def changed(self) -> z3.BoolRef:
        different = bv.negation(bv.eq(self.final, self.entry))
        return different if self.written is None else z3.And(self.written, different)


class _Asker:
    """The solver queries of one path: ``ask(*more)`` under its context."""

    def __init__(self, ask, stack: z3.BitVecRef):
        self.ask = ask
        self.stack = stack
        """The entry RSP: a value that is it plus a constant says so (``RSP + 8``)."""
        self.incomplete = False
        self._evaluated: dict[tuple[int, int], z3.ExprRef] = {}
        self.models: list[z3.ModelRef] = []
        """Every model of the path found so far: a value that provably
        equals another agrees with it in each (so they filter candidates)."""

    def holds(self, condition: z3.BoolRef) -> bool:
        """Whether ``condition`` provably holds (an unknown answer: no)."""
        simple = z3.simplify(condition)
        if z3.is_true(simple):
            return True
        if z3.is_false(simple):
            return False
        answer, model = self.ask(bv.negation(simple))
        if answer is Verdict.UNKNOWN:
            self.incomplete = True
        if model is not None:
            self.models.append(model)
        return answer is Verdict.UNSAT

    def _in(self, position: int, term: z3.ExprRef) -> z3.ExprRef:
        """``term``'s value in the ``position``-th model (each evaluated once)."""
        key = (position, term.get_id())
        if key not in self._evaluated:
            self._evaluated[key] = self.models[position].eval(term, model_completion=True)
        return self._evaluated[key]

    def _agrees(self, a: z3.ExprRef, b: z3.ExprRef, written: z3.BoolRef | None) -> bool:
        """Whether ``a`` and ``b`` are equal in every model found (where ``written`` holds)."""
        return all(self._in(position, a).eq(self._in(position, b)) for position in range(len(self.models))
                   if written is None or z3.is_true(self._in(position, written)))

    def values(self, locations: list[_Location]) -> dict[str, Value]:
        """What each location holds (module doc).  Which ones may change is
        asked in batches, as the prover asks its claims: one query for any
        of them, a model marks every one it changes, and the query is asked
        again for the rest until unsat; an unknown answer is asked again
        location by location."""
        values: dict[str, Value] = {}
        models: dict[str, z3.ModelRef] = {}
        batches = [[location for location in locations if not z3.is_false(z3.simplify(location.changed))]]
        values.update({location.name: UNCHANGED for location in locations if location not in batches[0]})
        while batches:
            batch = batches.pop()
            if not batch:
                continue
            answer, model = self.ask(bv.disjunction([location.changed for location in batch]))
            if answer is Verdict.UNSAT:
                values.update({location.name: UNCHANGED for location in batch})
            elif answer is Verdict.SAT:
                self.models.append(model)
                hit = [location for location in batch
                       if z3.is_true(model.eval(location.changed, model_completion=True))]
                models.update({location.name: model for location in hit})
                batches.append([location for location in batch if location not in hit])
            elif len(batch) > 1:
                batches += [[location] for location in batch]
            else:
                self.incomplete = True
                values[batch[0].name] = Value(ValueKind.UNKNOWN, "the solver could not tell")
        for location in locations:
            if location.name in models:
                values[location.name] = self._value(location, models[location.name])
        return {location.name: values[location.name] for location in locations}

    def _value(self, location: _Location, model: z3.ModelRef) -> Value:
        """What a location that may change holds: a constant, else the
        first candidate it agrees with in ``model`` that it provably equals."""
        final, written = location.final, location.written
        when = "" if written is None else " when written"

        def always(equal: z3.BoolRef) -> bool:
            return self.holds(equal if written is None else z3.Implies(written, equal))
        seen = model.eval(final, model_completion=True)
        if z3.is_bv_value(seen) and self._agrees(final, seen, written) and always(bv.eq(final, seen)):
            number = seen.as_long()
            text = NAMED_CONSTANTS.get(number, f"{number:#x}") if seen.size() > 1 else str(number)
            return Value(ValueKind.CONSTANT, text + when)
        for candidate in location.candidates:
            if candidate.term.sort() == final.sort() and self._agrees(final, candidate.term, written) \
                    and always(bv.eq(final, candidate.term)):
                return Value(candidate.value.kind, candidate.value.text + when)
        if final.sort() == self.stack.sort():
            offset = model.eval(final - self.stack, model_completion=True)
            if self._agrees(final - self.stack, offset, written) and always(bv.eq(final, self.stack + offset)):
                number = offset.as_signed_long()
                return Value(ValueKind.ENTRY, f"RSP {'+' if number >= 0 else '-'} {abs(number)}" + when)
        return Value(ValueKind.UNKNOWN, "depends" + when)


def _candidates(path: PathResult, contract: Contract | None) -> list[_Candidate]:
    """What a location's final value is compared with, in order: entry
    registers, entry struct fields, the module's outputs."""
    entry = path.entry.regs
    found = [_Candidate(Value(ValueKind.ENTRY, reg.upper()), entry[reg]) for reg in GPR64]
    if contract is not None:
        view = symbolic_view(path, (), False)
        for name in contract.offsets:
            address = struct_address(view, contract, name)
            found.append(_Candidate(Value(ValueKind.ENTRY, f"{struct_parameter(contract)}->{name}"),
                                    path.entry.load(address, contract.field_size(name))))
    events = path.events
    for event in events:
        if event.outcome is not Outcome.COMPLETION:
            continue
        which = f"#{event.index} " if sum(1 for e in events if e.kind == event.kind) > 1 else ""
        if len({e.kind for e in events}) > 1:
            which = f"{event.kind} {which}"
        found.append(_Candidate(Value(ValueKind.MODULE, f"{which}status"), event.status))
        found += [_Candidate(Value(ValueKind.MODULE, f"{which}{reg.upper()}"), term)
                  for reg, term in event.outputs.items()]
        found += [_Candidate(Value(ValueKind.MODULE, f"{which}{flag.upper()}"), term)
                  for flag, term in event.flags.items() if not z3.is_bv_value(term)]
    return found


def _path_changes(path: PathResult, contract: Contract | None, asker: _Asker, regions, resets
                  ) -> dict[str, Value]:
    """Every location of one path and its value (unchanged ones included)."""
    candidates = _candidates(path, contract)
    locations = [_Location(reg.upper(), path.state.regs[reg], path.entry.regs[reg], candidates) for reg in GPR64]
    locations += [_Location(flag.upper(), path.state.flags[flag], path.entry.flags[flag], candidates)
                  for flag in FLAGS]
    view = symbolic_view(path, regions, False)
    if contract is not None:
        written = struct_written(view, contract)
        written = None if z3.is_true(z3.simplify(written)) else written
        for name in contract.offsets:
            address, size = struct_address(view, contract, name), contract.field_size(name)
            locations.append(_Location(f"{struct_parameter(contract)}->{name}", path.state.load(address, size),
                                       path.entry.load(address, size), candidates, written))
    locations.append(_Location(EXTENDED, path.extended, path.entry_extended, []))
    values = asker.values(locations)
    if values[EXTENDED].kind is not ValueKind.UNCHANGED:
        leaves = ", ".join(f"{reset.kind} leaf {reset.leaf:#x}" for reset in resets)
        init = asker.holds(z3.Implies(bv.negation(bv.eq(path.extended, path.entry_extended)),
                                      bv.eq(path.extended, EXTENDED_INIT)))
        if init and leaves:
            values[EXTENDED] = Value(ValueKind.INIT, f"INIT after {leaves}")
    outside = [claim.violated for claim in PROPERTIES["frame"].check(view, contract)]
    values[MEMORY] = UNCHANGED if asker.holds(bv.negation(bv.disjunction(outside))) \
        else Value(ValueKind.UNKNOWN, "written")
    return values


def _joined(values: list[Value]) -> Value:
    return values[0] if all(value == values[0] for value in values) else Value(ValueKind.UNKNOWN, "depends on the path")


def summarise_function(program: ast.Program, name: str, config: str, settings: Settings) -> FunctionSummary:
    """The summary of function ``name`` (module doc)."""
    choice, paths = function_paths(program, name, settings)
    contract = choice.contract
    stated = function_assumptions(paths[0].entry, contract) if paths else []
    solver = Solver.shared(settings.timeout, tuple(formulas(stated)))
    regions = paths[0].entry.memory.regions if paths else ()
    groups: dict[str, list[dict[str, Value]]] = {}
    notes: dict[str, str] = {}
    counts: dict[str, int] = {}
    ends: dict[str, str] = {}
    texts = assumption_texts(stated)
    every_reset: list[Reset] = []
    complete = True
    for path in paths:
        outcome = outcome_of(path)
        context = path_context(path, contract)
        with solver.scope(context) as ask:
            feasible = ask()[0]
            if feasible is Verdict.UNSAT:
                continue
            counts[outcome] = counts.get(outcome, 0) + 1
            ends[outcome] = str(path.end)
            texts += [text for text in path.assumptions if text not in texts]
            if path.end in _UNMODELLED:
                complete = False
                where = f" at {path.where.render()}" if path.where else ""
                notes[outcome] = f"not modelled{where}: {path.detail or path.leaves_to}".rstrip(": ")
                continue
            asker = _Asker(ask, path.entry.regs["rsp"])
            resets = possible_resets(path, settings.resets_extended, solver, context)
            every_reset += resets
            groups.setdefault(outcome, []).append(_path_changes(path, contract, asker, regions, resets))
            complete = complete and not asker.incomplete and feasible is Verdict.SAT
    outcomes = []
    for outcome in sorted(counts, key=lambda o: (OUTCOME_ORDER.index(o) if o in OUTCOME_ORDER else len(OUTCOME_ORDER), o)):
        values = groups.get(outcome, [])
        changes = []
        if values:
            for location in _ordered(values[0]):
                value = _joined([path_values[location] for path_values in values])
                if value.kind is not ValueKind.UNCHANGED:
                    changes.append(Change(location, value))
        outcomes.append(OutcomeSummary(outcome, counts[outcome], ends[outcome], tuple(changes), notes.get(outcome, "")))
    texts += caller_obligations(name, contract, every_reset)
    return FunctionSummary(name, program.function(name).origin.file, config, contract.key if contract else None,
                           tuple(outcomes), tuple(texts), tuple(choice.notices), complete)


def summarise(files: Sequence[str], front_end, configs: list[dict[str, bool]], functions: Sequence[str],
              settings: Settings) -> list[FunctionSummary]:
    """The summary of every selected function of ``files`` under every
    configuration, file group by file group (as ``check`` groups them),
    then function by function, then configuration by configuration."""
    found: set[str] = set()
    every_name: list[str] = []
    summaries = []
    for group, runs in group_configurations(list(files), front_end, configs):
        rows: dict[str, list[FunctionSummary]] = {}
        for options, label in runs:
            program = cached_program(group.files, options)
            names = [fn.name for fn in program.c_functions]
            every_name += [name for name in names if name not in every_name]
            for name in functions:
                code = [fn for fn in program.functions if fn.name == name and fn.kind == "code"]
                if code:
                    raise not_a_c_function("--function", code[0])
            for name in (name for name in names if not functions or name in functions):
                found.add(name)
                rows.setdefault(name, []).append(
                    summarise_function(program, name, label, row_settings(settings, options, group.facts)))
        summaries += [summary for row in rows.values() for summary in row]
    missing = [name for name in functions if name not in found]
    if missing:
        raise SourceError(f"--function {missing[0]}: no function named {missing[0]!r} in {', '.join(files)} "
                          f"(functions: {', '.join(every_name) or 'none'})")
    if not summaries:
        raise SourceError(f"nothing to summarise: no function is defined in {', '.join(files)}")
    return summaries


# --- showing it -------------------------------------------------------------------------

LEGEND = ("-: unchanged (proved); entry X: X's value at entry; module X: what the TDX module returned in X "
          "(status: its RAX); a constant; depends: a function of several inputs or of the path")


def _table(summary: FunctionSummary) -> list[str]:
    outcomes = [o for o in summary.outcomes if not o.note]
    locations = summary.locations
    if not outcomes:
        return []
    header = ["location"] + [o.outcome for o in outcomes]
    rows = [[location] + [o.value(location).cell for o in outcomes] for location in locations]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in [header] + rows]


def summary_text(summaries: list[FunctionSummary]) -> str:
    """The text report: one table per function x configuration."""
    lines = []
    for summary in summaries:
        contract = f"contract {summary.contract}" if summary.contract else "no contract"
        lines.append(f"{summary.function} [{summary.config}] ({summary.file}; {contract})")
        lines += _table(summary)
        unchanged = [location for location in _ordered(
            [reg.upper() for reg in GPR64] + [flag.upper() for flag in FLAGS] + [MEMORY, EXTENDED])
            if location not in summary.locations]
        if unchanged and any(not o.note for o in summary.outcomes):
            lines.append(f"  unchanged on every outcome: {' '.join(unchanged)}")
        lines += [f"  {o.outcome}: {o.note}" for o in summary.outcomes if o.note]
        lines += [f"  WARNING: {notice}" for notice in summary.notices]
        lines += [f"  {text}" for text in summary.assumptions if text.startswith("caller obligation:")]
        lines.append("")
    lines.append(f"legend: {LEGEND}")
    lines += assumption_lines([(f"{summary.function} [{summary.config}]", summary.assumptions)
                               for summary in summaries])
    return "\n".join(lines) + "\n"


def summary_json(summaries: list[FunctionSummary]) -> dict:
    """The JSON report (deterministic: no times, fixed order)."""
    return {"tool": TOOL, "version": VERSION, "summaries": [{
        "function": s.function, "file": s.file, "config": s.config, "contract": s.contract,
        "complete": s.complete, "notices": list(s.notices), "assumptions": list(s.assumptions),
        "outcomes": [{"outcome": o.outcome, "paths": o.paths, "end": o.end,
                      **({"note": o.note} if o.note else {}),
                      "changes": [{"location": c.location, "kind": str(c.value.kind), "value": c.value.text}
                                  for c in o.changes]} for o in s.outcomes]}
        for s in summaries]}


# --- comparing two ----------------------------------------------------------------------

def diff_summaries(old: FunctionSummary, new: FunctionSummary) -> list[str]:
    """How ``new`` differs from ``old``, one line per difference (a
    location whose value changed the same way on several outcomes is one
    line naming them all): "RBX: was unchanged on #GP, now module output
    RBX"; an outcome one side has and the other not is a line of its own."""
    lines = []
    names = list(dict.fromkeys([o.outcome for o in old.outcomes] + [o.outcome for o in new.outcomes]))
    differences: dict[tuple[str, Value, Value], list[str]] = {}
    for name in names:
        before, after = old.outcome(name), new.outcome(name)
        if before is None or after is None:
            lines.append(f"{name}: {'a new outcome' if before is None else 'no longer an outcome'}"
                         f" ({'now' if before is None else 'was'} {(after or before).paths} path(s), "
                         f"{(after or before).end})")
            continue
        if before.note != after.note:
            lines.append(f"{name}: {before.note or 'modelled'} before, {after.note or 'modelled'} now")
        for location in _ordered([c.location for c in before.changes] + [c.location for c in after.changes]):
            was, now = before.value(location), after.value(location)
            if was != now:
                differences.setdefault((location, was, now), []).append(name)
    for (location, was, now), outcomes in differences.items():
        lines.append(f"{location}: was {was.words} on {_listed(outcomes)}, now {now.words}")
    return lines


def _listed(names: list[str]) -> str:
    """Outcome names in a sentence.

    >>> _listed(["#UD"]), _listed(["#UD", "#GP"]), _listed(["a", "b", "c"])
    ('#UD', '#UD and #GP', 'a, b and c')
    """
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def exit_status(summaries: list[FunctionSummary]) -> int:
    """0 when every summary is complete, 3 when one is not (unknown)."""
    return 0 if all(summary.complete for summary in summaries) else 3
