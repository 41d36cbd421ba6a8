"""What changed for the caller between two implementations, one line per difference.

``equiv`` stops at the first observable that can differ on the first pair
of paths; a reviewer of a patch wants every difference, on every path,
said in words.  This module asks, on top of :class:`proofs.equiv.Comparison`
(the same pairing, assumptions, relation and observables), for every
feasible pair of paths and every observable, whether the two sides'
values are always equal (nothing to say), always different, or sometimes
different, and describes each side's value where it is simple:

* for a register, ``unchanged`` (its entry value); for a struct field,
  ``unchanged`` (the field's value at entry);
* a constant (by its SPEC name where it has one: ``TDX_SEAMCALL_VMFAILINVALID``);
* a module output of the path's TDX instruction (``the module's R10``,
  ``the module's status``);
* an entry register (``entry R12``) or a struct field at entry
  (``args->rcx at entry``);
* else ``computed``.

Each description is proved, not sampled: the solver is asked whether the
value can differ from the candidate under the pair's constraints (the
candidates a model already rules out need no query).  A pair's paths are
named by their TDX outcomes (``on completion``, ``on the VMfailInvalid
path``, ``on the #GP path``), and a difference found on several pairs
with the same words is one line naming all of them (``on every path``
when it is all of the function's).  A pair whose TDX calls differ in
kind, number or outcome is a line of its own (``TDX calls``), and so is
one whose paths end differently (``was a kernel oops, now returns``).

Every line carries a counterexample (:meth:`Comparison.counterexample`,
the ``equiv`` one for that pair and observable) that replays concretely;
when no pair of a line has one that replays, the line is not a
difference but a reason for "unknown" (a bug of ours,
:func:`proofs.outcomes.unconfirmed_reason`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import z3

from grammar.ast import GPR64
from model import abi, bv
from model.executor import PathEnd, PathResult
from model.outcomes import Verdict
from model.tdx import Outcome
from proofs.assumptions import LEFT, RIGHT
from proofs.equiv import Comparison, Observable, describe_path, feasible_pair, term_value, unmodelled_end
from proofs.equiv_spec import Term
from proofs.outcomes import unconfirmed_reason

CONSTANT_NAMES = {abi.TDX_SEAMCALL_VMFAILINVALID: "TDX_SEAMCALL_VMFAILINVALID",
                  abi.TDX_SEAMCALL_UD: "TDX_SEAMCALL_UD", abi.TDX_SEAMCALL_GP: "TDX_SEAMCALL_GP",
                  abi.TDX_SW_ERROR: "TDX_SW_ERROR", 0: "0"}
"""Constants a description names (SPEC section 5)."""
OUTCOME_WORDS = {Outcome.COMPLETION: "completion", Outcome.VMFAILINVALID: "VMfailInvalid",
                 Outcome.FAULT_UD: "#UD", Outcome.FAULT_GP: "#GP"}
END_WORDS = {PathEnd.RETURNED: "returns", PathEnd.PANIC: "panics", PathEnd.OOPS: "a kernel oops"}
RESTORED = abi.CALLEE_SAVED + ("rsp",)
"""Registers a caller expects back: a difference in one of them is said as "restored"."""
UNCHANGED = "unchanged"


@dataclass
class Difference:
    """One line: what differs (``subject``), on which paths, each side's
    value in words, whether it always differs there, and the
    counterexample of its first pair that replays."""

    subject: str
    kind: str
    paths: list[str]
    was: str
    now: str
    always: bool
    counterexample: dict | None = None
    witnesses: list = field(default_factory=list, repr=False)
    """(left path, right path, constraints, model, observable, observables) per pair, for the counterexample."""


@dataclass
class SemanticDiff:
    """Every confirmed difference, and why the diff may be incomplete."""

    differences: list[Difference]
    unknown: list[str]
    every_path: list[str]
    """The path names of every feasible pair (a line on all of them says "on every path")."""

    def lines(self) -> list[str]:
        """The reviewer's lines (:func:`render`)."""
        return render(self.differences, self.every_path)

    def json(self) -> dict:
        return {"lines": self.lines(),
                "differences": [{"subject": d.subject, "kind": d.kind, "paths": d.paths, "was": d.was,
                                 "now": d.now, "always": d.always, "counterexample": d.counterexample}
                                for d in self.differences],
                "unknown": self.unknown}


# --- names of paths and values ---------------------------------------------------------

def path_name(left: PathResult, right: PathResult) -> str:
    """A pair's TDX outcomes in words (the left path's), and how both
    paths ended when that is the same and not a return.

    The outcome of each TDX instruction, in order: ``completion``,
    ``VMfailInvalid``, ``#UD``, ``#GP``; ``no TDX call`` when it has none.
    """
    words = " then ".join(OUTCOME_WORDS[event.outcome] for event in left.events) or "no TDX call"
    return words if left.end is not right.end or left.end is PathEnd.RETURNED else f"{words} ({left.end})"


def on_paths(names: list[str], every: list[str]) -> str:
    """Where a line holds, in words.

    >>> on_paths(["completion"], ["completion", "#GP"])
    'on completion'
    >>> on_paths(["#UD", "#GP"], ["completion", "#UD", "#GP"])
    'on the #UD and #GP paths'
    >>> on_paths(["completion", "#GP"], ["completion", "#GP"])
    'on every path'
    """
    if len(every) > 1 and set(names) >= set(every):
        return "on every path"
    if names == ["completion"]:
        return "on completion"
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"on the {listed} path{'s' if len(names) > 1 else ''}"


def _subject(observable: Observable) -> str:
    if observable.kind == "term":
        term = observable.equation.right if observable.equation.right.field else observable.equation.left
        return f"{term.struct.name}->{term.field}" if term.field else observable.name
    if observable.kind in ("register", "flag"):
        return observable.name.upper()
    return observable.name


def _candidates(comparison: Comparison, side: str, path: PathResult, observable: Observable, model: z3.ModelRef,
                value: z3.BitVecRef) -> list[tuple[str, z3.BitVecRef]]:
    """What ``value`` may be, in words, most telling first."""
    entries = comparison.entries
    candidates = []
    if observable.kind == "register":
        candidates.append((UNCHANGED, entries[side].regs[observable.name]))
    elif observable.kind == "term":
        term = observable.equation.left if side == LEFT else observable.equation.right
        if term.field:
            candidates.append((UNCHANGED, term_value(term, entries, None)))
    constant = model.eval(value, model_completion=True).as_long()
    candidates.append((CONSTANT_NAMES.get(constant, f"{constant:#x}"), bv.const(constant, value.size())))
    several = len(path.events) > 1
    for event in path.events:
        suffix = f" (#{event.index})" if several else ""
        if event.status is not None:
            candidates.append((f"the module's status{suffix}", event.status))
        candidates += [(f"the module's {reg.upper()}{suffix}", output) for reg, output in event.outputs.items()]
    candidates += [(f"entry {reg.upper()}", entries[side].regs[reg]) for reg in GPR64]
    side_spec = comparison.spec.left if side == LEFT else comparison.spec.right
    for struct in side_spec.structs.values():
        for name in struct.fields:
            term = Term(f"{side}.{struct.name}.{name}", side, struct=struct, field=name)
            candidates.append((f"{struct.name}->{name} at entry", term_value(term, entries, None)))
    return candidates


def describe(comparison: Comparison, side: str, path: PathResult, observable: Observable, constraints: tuple,
             model: z3.ModelRef) -> str:
    """One side's value of ``observable`` in words (the module docstring's
    list), each proved under ``constraints`` (of which ``model`` is one)."""
    value = observable.left if side == LEFT else observable.right
    if not isinstance(value, z3.BitVecRef):
        return END_WORDS.get(value, str(value))
    solver = comparison.solver
    for words, candidate in _candidates(comparison, side, path, observable, model, value):
        if candidate.size() != value.size():
            continue
        if not z3.is_true(model.eval(value == candidate, model_completion=True)):
            continue
        if not solver.may_hold(constraints, value != candidate, model)[0]:
            return words
    return "computed"


def _ending(comparison: Comparison, side: str, path: PathResult, observable: Observable, constraints: tuple,
            model: z3.ModelRef) -> str:
    """A side's value of an observable the pair alone tells apart (how the
    path ended, its TDX calls); a return says what RAX holds."""
    words = describe(comparison, side, path, observable, constraints, model)
    if observable.kind != "end" or path.end is not PathEnd.RETURNED:
        return words
    rax = path.state.regs["rax"]
    returned = Observable("rax", "register", True, rax, rax)
    value = describe(comparison, side, path, returned, constraints, model)
    return f"{words} with RAX {value if value == UNCHANGED else '= ' + value}"


# --- the diff ------------------------------------------------------------------------------

def semantic_diff(comparison: Comparison) -> SemanticDiff:
    """Every difference of the comparison's two sides (module docstring)."""
    found: dict[tuple, Difference] = {}
    unknown: list[str] = []
    every: list[str] = []
    solver = comparison.solver
    for left, right in comparison.pairs():
        pair, model = feasible_pair(comparison, left, right, unknown)
        if model is None:
            continue
        unmodelled = unmodelled_end(left, right)
        if unmodelled:
            unknown.append(unmodelled)
            continue
        name = path_name(left, right)
        if name not in every:
            every.append(name)
        observables = comparison.observables(left, right)
        for observable in observables:
            if observable.violated is True:
                witness = (left, right, pair, model, observable, observables)
                _record(found, observable, name, _ending(comparison, LEFT, left, observable, pair, model),
                        _ending(comparison, RIGHT, right, observable, pair, model), True, witness)
                continue
            violated = z3.simplify(observable.violated)
            if z3.is_false(violated):
                continue
            answer, witness_model = solver.check(pair + (violated,))
            if answer is Verdict.UNKNOWN:
                unknown.append(f"{_subject(observable)} on pair ({describe_path(left)}; {describe_path(right)}): "
                               f"solver {solver.reason}")
            if answer is not Verdict.SAT:
                continue
            constraints = pair + (violated,)
            always = solver.check(pair + (z3.Not(violated),))[0] is Verdict.UNSAT
            if observable.kind == "memory":
                was = now = "computed"
            else:
                was = describe(comparison, LEFT, left, observable, pair, witness_model)
                now = describe(comparison, RIGHT, right, observable, pair, witness_model)
            _record(found, observable, name, was, now, always,
                    (left, right, constraints, witness_model, observable, observables))
    differences = []
    for difference in found.values():
        for left, right, constraints, model, observable, observables in difference.witnesses:
            cex = comparison.counterexample(left, right, constraints, model, observable, observables)
            if cex["confirmed"]:
                difference.counterexample = cex
                break
        if difference.counterexample is None:
            unknown.append(f"{difference.subject} {on_paths(difference.paths, every)} may differ, but "
                           + unconfirmed_reason(None))
        else:
            differences.append(difference)
    return SemanticDiff(differences, unknown, every)


def _record(found: dict, observable: Observable, path: str, was: str, now: str, always: bool, witness) -> None:
    """Add a pair's difference to the line of the same words, or start one."""
    subject = _subject(observable)
    if observable.kind == "memory":
        subject = "memory outside the frame"
    key = (subject, was, now, always)
    if key not in found:
        found[key] = Difference(subject, observable.kind, [], was, now, always)
    line = found[key]
    if path not in line.paths:
        line.paths.append(path)
    line.witnesses.append(witness)


def _joined(values: list[str]) -> str:
    """Values in one list, a common "the module's" said once.

    >>> _joined(["the module's RCX", "the module's RDX"]), _joined(["0", "entry RBX"])
    ("the module's RCX, RDX", '0, entry RBX')
    """
    prefix = "the module's "
    if len(values) > 1 and all(value.startswith(prefix) for value in values):
        return prefix + ", ".join(value[len(prefix):] for value in values)
    return ", ".join(values)


def render(differences: list[Difference], every: list[str]) -> list[str]:
    """The lines: a callee-saved register no longer (or now) restored, struct
    fields no longer (or now) written (those of the same paths in one
    line), else ``SUBJECT PATHS: was A, now B``; ``(sometimes)`` when the
    values only may differ and a side's value has no simpler description
    than "computed" (otherwise the descriptions say when)."""
    lines: list[str] = []
    fields: dict[tuple, list[Difference]] = {}
    for d in differences:
        where = on_paths(d.paths, every)
        sometimes = "" if d.always or "computed" not in (d.was, d.now) else " (sometimes)"
        if d.kind == "register" and d.subject.lower() in RESTORED and UNCHANGED in (d.was, d.now):
            if d.was == UNCHANGED:
                lines.append(f"{d.subject} is no longer restored {where} (now {d.now}){sometimes}")
            else:
                lines.append(f"{d.subject} is now restored {where} (was {d.was}){sometimes}")
        elif d.kind == "term" and UNCHANGED in (d.was, d.now) and d.was != d.now:
            fields.setdefault((where, d.was == UNCHANGED, sometimes), []).append(d)
        elif d.kind == "end":
            lines.append(f"{where}: was {d.was}, now {d.now}")
        elif d.kind == "tdx":
            lines.append(f"TDX calls {where}: was {d.was}, now {d.now}")
        elif d.kind == "memory":
            lines.append(f"{d.subject} differs {where}{sometimes}")
        else:
            lines.append(f"{d.subject} {where}: was {d.was}, now {d.now}{sometimes}")
    for (where, now_written, sometimes), group in fields.items():
        subjects = ", ".join(d.subject for d in group)
        values = _joined([d.now if now_written else d.was for d in group])
        verb = "is" if len(group) == 1 else "are"
        change = "now written" if now_written else "no longer written"
        lines.append(f"{subjects} {verb} {change} {where} ({'now' if now_written else 'was'} {values}){sometimes}")
    return lines
