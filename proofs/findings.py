"""Findings: where a refutation's cause is, and which refutations share one.

A refuted obligation says *that* a property fails at the place its check
fires (the ``ret``, the TDX instruction).  A reviewer wants the line to
change.  This module decides, from the counterexample's replayed trace
(each step carries the registers it wrote, the memory it read and wrote,
and whether it jumped: :func:`proofs.counterexample.trace_step_json`):

* **The culprit** of a refutation: the instruction whose effect breaks the
  property, by one rule per property (:data:`RULES`, a table):

  - ``register`` (the register the obligation names, or a fixed one): the
    last step that wrote it on the path -- the swapped ``pop``, the scratch
    ``mov``, or the TDX instruction when the wrong value is the module's
    own and nothing after it overwrites it;
  - ``input``: the last write to the register before the TDX instruction
    the check is at (the TDX instruction itself when nothing wrote it);
  - ``field``: the last store to the struct field the obligation names
    (the check site when nothing stored it);
  - ``struct-store``: the last store into the struct at a field that is
    not an output, else the last store into the struct (``failure-no-output``
    and ``output-marshalling``'s "other fields");
  - ``slot``: the last store to the return-address slot;
  - ``rbp-at``: the last write to RBP before the instruction the check is
    at (``frame-pointer``'s ``rbp``);
  - ``jump``: the last jump taken before the return: the branch that
    joins a path that did not undo its pushes (``stack-balance``);
  - ``site``: the check's own place: the access below RSP or outside the
    frame, the instruction that may fault, the last instruction before a
    fall-through, a ``call`` without a frame.

  A rule that finds no step (no trace: the replay diverged; nothing wrote
  the register) falls back to the check's own place.  The culprit also
  says, in words, where the wrong value came from: the TDX module, a
  stack slot (and which instruction wrote it), a struct field, or the
  instruction itself.  ``direction-flag`` and ``panic-on-tdcall-failure``
  are located at the check (the trace does not record flag writes).

* **The same cause.**  Refuted obligations of one row (function x
  configuration) and one property have the same cause when their culprits
  lie in one block of source lines: the same file and no more than one
  line between consecutive culprits (one restore sequence, one run of
  stores, one TDX instruction), each culprit counted at the line written
  in the file it is in after macro expansion (the outermost invocation
  site).  Such obligations are one :class:`Finding`: it names them all,
  is located at the first culprit in source order and shows the first
  obligation's counterexample.  Different properties are different
  findings even at one line (a reviewer fixes each), and so are different
  rows.  Findings that the triage accepted (baseline, suppression) are
  not findings here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from grammar.frontend import SHIM_DIR
from grammar.source import Origin
from proofs.counterexample import expansion_from_json
from proofs.outcomes import Status
from proofs.results import FunctionResult, ObligationResult


@dataclass(frozen=True)
class Rule:
    """How a property's culprit is found: the rule's ``kind`` (module doc)
    and the register it is about (None: the obligation's detail)."""

    kind: str
    register: str | None = None


RULES: dict[str | tuple[str, str], Rule] = {
    "callee-saved": Rule("register"),
    "scrub": Rule("register"),
    "status-return": Rule("register", "rax"),
    "r10-to-rax": Rule("register", "rax"),
    "vmfailinvalid-code": Rule("register", "rax"),
    "fault-codes": Rule("register", "rax"),
    "stack-balance": Rule("jump"),
    "return-address": Rule("slot"),
    "input-marshalling": Rule("input"),
    "output-marshalling": Rule("field"),
    "failure-no-output": Rule("struct-store"),
    "frame-pointer": Rule("rbp-at", "rbp"),
    "no-red-zone": Rule("site"),
    "frame": Rule("site"),
    "fault-handled": Rule("site"),
    "no-fallthrough": Rule("site"),
    "direction-flag": Rule("site"),
    "panic-on-tdcall-failure": Rule("site"),
    ("output-marshalling", "other fields"): Rule("struct-store"),
    ("input-marshalling", "executed"): Rule("site"),
    ("frame-pointer", "saved-rbp"): Rule("site"),
    ("frame-pointer", "call"): Rule("site"),
}
"""The culprit rule of each property, or of one obligation (property,
detail) where it differs (the module doc says what each kind does)."""


def rule_of(obligation: ObligationResult) -> Rule:
    return RULES.get((obligation.property, obligation.detail)) or RULES.get(obligation.property, Rule("site"))


@dataclass(frozen=True)
class Culprit:
    """Where a refutation's cause is: ``origin`` (with its expansion chain),
    the trace step (None: the check's own place) and, in words, where the
    wrong value came from ("" when the place says it all)."""

    origin: Origin
    step: int | None
    source: str = ""
    source_step: int | None = None
    """The step that wrote the slot the wrong value was loaded from, if any."""


@dataclass
class Finding:
    """Refuted obligations of one row and property with one cause
    (``obligations`` in the row's order); ``shown`` is the one whose
    culprit comes first in source order: the finding is located at its
    ``culprit`` and shows its counterexample."""

    result: FunctionResult
    obligations: list[ObligationResult]
    shown: ObligationResult
    culprit: Culprit

    @property
    def details(self) -> list[str]:
        return [o.detail for o in self.obligations if o.detail]


# --- reading the trace ----------------------------------------------------------------

STACK_WINDOW = 4096
"""Bytes on each side of the entry RSP that a load's source names relative to it."""


def _number(text: str) -> int:
    return int(text, 16)


def step_origin(step: Mapping) -> Origin:
    """A trace step's place, with its expansion chain, as :func:`reviewable`."""
    source = step["source"]
    return reviewable(Origin(source["file"], source["line"], source["column"], expansion_from_json(source)))


def reviewable(origin: Origin) -> Origin:
    """``origin``, or, for a place in one of the tool's own shim headers (a
    ``FRAME_END``'s ``pop``), the innermost invocation of it in the user's
    files: what a reviewer can change."""
    while origin.expansion and _in_shims(origin.file):
        frame = origin.expansion[-1]
        origin = Origin(frame.file, frame.line, frame.column, origin.expansion[:-1])
    return origin


def _in_shims(file: str) -> bool:
    return Path(file).resolve().is_relative_to(SHIM_DIR.resolve())


def _check_origin(result: FunctionResult, obligation: ObligationResult) -> Origin:
    """The check's own place: the claim's origin, else the function."""
    return obligation.origin or result.origin


def _same_place(step: Mapping, origin: Origin) -> bool:
    source = step["source"]
    return (source["file"], source["line"], source["column"]) == (origin.file, origin.line, origin.column)


def _before(trace: list, origin: Origin) -> int:
    """How many steps precede the first step at ``origin`` (all of them if none is)."""
    return next((i for i, step in enumerate(trace) if _same_place(step, origin)), len(trace))


def _last(trace: list, end: int, test) -> int | None:
    return next((i for i in range(end - 1, -1, -1) if test(trace[i])), None)


def _first(trace: list, test) -> int | None:
    return next((i for i, step in enumerate(trace) if test(step)), None)


def _covers(access: Mapping, address: int, size: int) -> bool:
    start = _number(access["address"])
    return start < address + size and address < start + access["size"]


def _stored(step: Mapping, address: int, size: int = 1) -> bool:
    return any(_covers(store, address, size) for store in step.get("stores", ()))


class _Struct:
    """The contract's struct at its entry address, from the counterexample's
    ``abi`` record, and the entry RSP."""

    def __init__(self, cex: Mapping):
        record = cex.get("abi") or {}
        layout, contract = record.get("layout"), record.get("contract", {})
        registers = cex.get("entry", {}).get("registers", {})
        pointer = contract.get("struct_pointer")
        self.base = _number(registers[pointer]) if layout and pointer in registers else None
        self.fields = [(f["name"], f["offset"], f["size"]) for f in layout["fields"]] if layout else []
        self.size = layout["size"] if layout else 0
        self.outputs = set(contract.get("outputs", ()))
        self.rsp = _number(registers["rsp"]) if "rsp" in registers else None

    def field(self, name: str) -> tuple[int, int] | None:
        for field, offset, size in self.fields:
            if field == name and self.base is not None:
                return (self.base + offset) % 2**64, size
        return None

    def fields_stored(self, step: Mapping) -> set[str]:
        """The fields a trace step stores into."""
        fields = (self.field_at(_number(store["address"])) for store in step.get("stores", ()))
        return {field for field in fields if field is not None}

    def field_at(self, address: int) -> str | None:
        if self.base is None:
            return None
        for field, offset, size in self.fields:
            if 0 <= address - self.base - offset < size:
                return field
        return None


def _value_source(trace: list, index: int, struct: _Struct) -> tuple[str, int | None]:
    """Where the value a step wrote came from, in words, and the step
    that wrote the memory it was loaded from (None if none did)."""
    step = trace[index]
    if step["note"]:
        return "value comes from the TDX module", None
    loads = step.get("loads", [])
    if len(loads) == 1:
        address, size = _number(loads[0]["address"]), loads[0]["size"]
        writer = _last(trace, index, lambda s: _stored(s, address, size))
        if writer is not None:
            here, there = step_origin(step), step_origin(trace[writer])
            place = f"line {there.line}" if there.file == here.file else f"{there.file}:{there.line}"
            return f"value comes from the slot `{trace[writer]['instruction']}` wrote at {place}", writer
        field = struct.field_at(address)
        if field is not None:
            return f"value comes from the struct's {field} field", None
        if struct.rsp is not None:
            offset = (address - struct.rsp) % 2**64
            if offset < STACK_WINDOW:
                return f"value comes from the stack at entry RSP + {offset:#x}", None
            if offset > 2**64 - STACK_WINDOW:
                return f"value comes from the stack at entry RSP - {2**64 - offset:#x}", None
        return f"value comes from memory at {address:#x}", None
    return "", None


def culprit(result: FunctionResult, obligation: ObligationResult) -> Culprit:
    """The culprit of a refuted or unknown ``obligation`` (module doc)."""
    cex = obligation.counterexample or {}
    trace = cex.get("trace") or []
    site = Culprit(reviewable(_check_origin(result, obligation)), None)
    rule = rule_of(obligation)
    if obligation.status != Status.REFUTED or not trace or rule.kind == "site":
        return site
    struct = _Struct(cex)
    register = rule.register or obligation.detail
    index: int | None = None
    source, source_step = "", None
    if rule.kind == "register":
        index = _last(trace, len(trace), lambda s: register in s.get("written", ()))
        if index is not None:
            source, source_step = _value_source(trace, index, struct)
    elif rule.kind in ("input", "rbp-at"):
        end = _before(trace, site.origin)
        index = _last(trace, end, lambda s: register in s.get("written", ()))
        if index is not None:
            source, source_step = _value_source(trace, index, struct)
        elif rule.kind == "input" and end < len(trace):
            index, source = end, f"{register.upper()} is not written before it"
    elif rule.kind == "jump":
        index = _last(trace, len(trace), lambda s: s.get("jumped"))
    elif rule.kind == "slot":
        address = _number(cex["entry"]["registers"]["rsp"])
        index = _last(trace, len(trace), lambda s: _stored(s, address, 8))
    elif rule.kind == "field":
        place = struct.field(obligation.detail)
        if place is not None:
            index = _last(trace, len(trace), lambda s: _stored(s, *place))
            if index is not None:
                source = f"stores into the {', '.join(sorted(struct.fields_stored(trace[index])))} field"
            else:
                index = _last(trace, len(trace), lambda s: s.get("jumped"))
                source = "the branch skips the stores into the struct" if index is not None else ""
    elif rule.kind == "struct-store":
        index = _first(trace, lambda s: bool(struct.fields_stored(s) - struct.outputs))
        if index is None:
            index = _first(trace, lambda s: bool(struct.fields_stored(s)))
    if index is None:
        return site
    return Culprit(step_origin(trace[index]), index, source, source_step)


# --- one finding per cause --------------------------------------------------------------

def _written_at(origin: Origin) -> tuple[str, int]:
    """The file and line a culprit counts at for grouping: its outermost
    invocation site, else itself."""
    frame = origin.expansion[0] if origin.expansion else origin
    return frame.file, frame.line


def findings(result: FunctionResult) -> list[Finding]:
    """The findings of one row: its refuted obligations that count (not
    accepted), grouped by cause (module doc), in the order of each
    finding's first obligation."""
    by_property: dict[str, list[tuple[ObligationResult, Culprit]]] = {}
    for obligation in result.obligations:
        if obligation.status == Status.REFUTED and not obligation.accepted:
            by_property.setdefault(obligation.property, []).append((obligation, culprit(result, obligation)))
    groups: list[Finding] = []
    for refuted in by_property.values():
        ranked = sorted(refuted, key=lambda item: _written_at(item[1].origin))     # stable: row order within a line
        current: list[tuple[ObligationResult, Culprit]] = []
        for item in ranked:
            if current and not _adjacent(current[-1][1].origin, item[1].origin):
                groups.append(_finding(result, current))
                current = []
            current.append(item)
        if current:
            groups.append(_finding(result, current))
    first = {id(o): position for position, o in enumerate(result.obligations)}
    return sorted(groups, key=lambda finding: first[id(finding.obligations[0])])


def _adjacent(earlier: Origin, later: Origin) -> bool:
    """Whether two culprits (in source order) are in one block: one file,
    at most one line between them."""
    (file, line), (later_file, later_line) = _written_at(earlier), _written_at(later)
    return file == later_file and later_line - line <= 2


def _finding(result: FunctionResult, items: list[tuple[ObligationResult, Culprit]]) -> Finding:
    """One finding of ``items`` (sorted by culprit)."""
    first = {id(o): position for position, o in enumerate(result.obligations)}
    obligations = sorted((o for o, _ in items), key=lambda o: first[id(o)])
    shown, located = items[0]
    return Finding(result, obligations, shown, located)
