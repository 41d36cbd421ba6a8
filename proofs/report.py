"""Reports of a ``check`` run: the text table and JSON (SARIF 2.1.0 is
:mod:`proofs.sarif`).

Decisions recorded here:

* The text report is a table a reviewer reads at a glance: one row per
  function x configuration, one column per property (``ok`` proved,
  ``FAIL`` refuted, ``??`` unknown, ``-`` not applicable: no contract, or
  not selected), then one line per function saying its ABI (the
  contract, where its ABI came from, the struct layout:
  :mod:`proofs.abi_choice`), then a ``WARNING:`` line for each notice (an
  unknown ABI, a forced contract the code contradicts), then the assumptions (shared ones once, per-function ones
  under their function), then every refuted obligation as an annotated
  trace (a path that falls through says after which source line it left
  the function's code; ``no-fallthrough``'s "actual" says where it goes)
  and every unknown one with its reason; last, the accepted findings
  (:mod:`proofs.triage`: in the baseline, or suppressed with a reason),
  one line each, without their traces.
* JSON is SPEC.md section 8's shape and the same bytes for the same
  input, whatever ``--jobs``, machine load or process: results in input
  order (function order, then configuration order), obligations in
  catalog order, keys in a fixed order, counterexamples from the smallest
  model of each violation (:mod:`proofs.canonical`), and no solver time:
  an obligation has no ``seconds`` (issue 13 overrides SPEC.md section 8
  there).  ``timings=True`` (``check --json --timings``) adds a top-level
  ``timings`` list, one entry per obligation in the order of the results,
  with its solver seconds (to the millisecond) -- the one part that
  differs from run to run.
  A ``summary`` counts the obligations of each status.
* A finding (a refuted or unknown obligation) is located at the source
  line of its claim (:func:`finding_origin`, which every report reads).
"""
from __future__ import annotations

from typing import Iterable

from grammar.source import Origin
from model.transfers import PathEnd
from proofs import TOOL, VERSION
from proofs.properties import CATALOG
from proofs.outcomes import Status
from proofs.results import FunctionResult

MARKS = {Status.PROVED: "ok", Status.REFUTED: "FAIL", Status.UNKNOWN: "??"}


def _mark(result: FunctionResult, pid: str) -> str:
    """The cell of one property: the worst status of its obligations.

    >>> from proofs.results import ObligationResult
    >>> r = FunctionResult("f", "default", "-", None, Origin("a.S", 1), [
    ...     ObligationResult("callee-saved", "rbx", "proved", 0.0),
    ...     ObligationResult("callee-saved", "rbp", "refuted", 0.0)], [])
    >>> _mark(r, "callee-saved"), _mark(r, "scrub")
    ('FAIL', '-')
    """
    statuses = {o.status for o in result.obligations if o.property == pid}
    for status in (Status.REFUTED, Status.UNKNOWN, Status.PROVED):
        if status in statuses:
            return MARKS[status]
    return "-"


def _row_label(result: FunctionResult, qualified: bool = False) -> str:
    """``function [config]``, with the function's file when ``qualified``.

    >>> r = FunctionResult("f", "default", "-", None, Origin("a/b.S", 4), [], [])
    >>> _row_label(r), _row_label(r, True)
    ('f [default]', 'a/b.S:f [default]')
    """
    name = f"{result.origin.file}:{result.function}" if qualified else result.function
    return f"{name} [{result.config}]"


def _labels(results: list[FunctionResult]) -> dict[int, str]:
    """Each result's row label: a function that two files (two kernel
    trees) define is named with its file."""
    files: dict[str, set[str]] = {}
    for result in results:
        files.setdefault(result.function, set()).add(result.origin.file)
    return {id(r): _row_label(r, len(files[r.function]) > 1) for r in results}


def _abi_lines(results: list[FunctionResult]) -> list[str]:
    """Each function's ABI line once (per configuration only where the
    configurations disagree), with its file where two files (two trees)
    define the function, as its rows are named."""
    files: dict[str, set[str]] = {}
    for result in results:
        files.setdefault(result.function, set()).add(result.origin.file)
    seen: dict[tuple[str, str], list[FunctionResult]] = {}
    for result in results:
        if result.abi_summary:
            seen.setdefault((result.origin.file, result.function), []).append(result)
    lines = []
    for (file, function), rows in seen.items():
        prefix = f"{file}:" if len(files[function]) > 1 else ""
        distinct = list(dict.fromkeys(r.abi_summary for r in rows))
        if len(distinct) == 1:
            lines.append(prefix + distinct[0])
        else:
            lines += [f"{prefix}{r.abi_summary} [{r.config}]" for r in rows]
    return lines


def _shared_assumptions(results: list[FunctionResult]) -> list[str]:
    if not results:
        return []
    shared = [text for text in results[0].assumptions
              if all(text in r.assumptions for r in results[1:])]
    return shared


def text_report(results: list[FunctionResult], configs: Iterable[str] = (), failures=()) -> str:
    """The text report; ``failures``: file groups not checked (their errors go to stderr)."""
    columns = [pid for pid in CATALOG if any(o.property == pid for r in results for o in r.obligations)]
    labels = _labels(results)
    label_width = max([len("function [config]")] + [len(label) for label in labels.values()])
    lines = ["  ".join(["function [config]".ljust(label_width)] + columns)]
    lines.append("  ".join(["-" * label_width] + ["-" * len(pid) for pid in columns]))
    for result in results:
        cells = [_mark(result, pid).center(len(pid)) for pid in columns]
        lines.append("  ".join([labels[id(result)].ljust(label_width)] + cells).rstrip())
    summaries = _abi_lines(results)
    if summaries:
        lines.append("")
        lines.append("ABI:")
        lines += [f"  {summary}" for summary in summaries]
    notices = list(dict.fromkeys(notice for r in results for notice in r.notices))
    if notices:
        lines.append("")
        lines += [f"WARNING: {notice}" for notice in notices]
    total = status_counts(results)
    lines.append("")
    lines.append(f"{total[Status.PROVED]} proved, {total[Status.REFUTED]} refuted, {total[Status.UNKNOWN]} unknown "
                 f"obligations in {len(results)} function x configuration rows")
    for failure in failures:
        lines.append(f"NOT CHECKED (bad input, see the error on stderr): {', '.join(failure.files)}")
    shared = _shared_assumptions(results)
    lines.append("")
    lines.append("Assumptions (all rows):")
    lines += [f"  - {text}" for text in shared]
    for result in results:
        own = [text for text in result.assumptions if text not in shared]
        if own:
            lines.append(f"Assumptions for {labels[id(result)]}:")
            lines += [f"  - {text}" for text in own]
    accepted = []
    for result in results:
        for obligation in result.obligations:
            if obligation.accepted:
                accepted.append(f"  - {obligation.status.upper()} {_title(result, obligation, labels[id(result)])}: "
                                f"{obligation.accepted}")
            elif obligation.status == Status.REFUTED:
                lines.append("")
                lines += counterexample_text(result, obligation, labels[id(result)])
            elif obligation.status == Status.UNKNOWN:
                lines.append("")
                lines.append(f"UNKNOWN {_title(result, obligation, labels[id(result)])}: {obligation.reason}")
    if accepted:
        lines.append("")
        lines.append(f"Accepted findings, not counted in the exit status ({len(accepted)}):")
        lines += accepted
    return "\n".join(lines) + "\n"


def status_counts(results: list[FunctionResult]) -> dict[Status, int]:
    """How many obligations of ``results`` have each status (every status, in the order proved, refuted, unknown)."""
    return {status: sum(r.count(status) for r in results) for status in MARKS}


def finding_origin(result: FunctionResult, obligation) -> Origin:
    """Where the finding of a refuted or unknown ``obligation`` is located:
    the instruction its claim is about (the return, the access, the TDX
    instruction), else the function.  The one place that decides it."""
    return obligation.origin or result.origin


def _title(result: FunctionResult, obligation, label: str) -> str:
    detail = f" ({obligation.detail})" if obligation.detail else ""
    return f"{obligation.property}{detail} of {label}"


def _source(source: dict) -> str:
    text = f"{source['file']}:{source['line']}"
    if source["expansion"]:
        text += " (in " + " -> ".join(source["expansion"]) + ")"
    return text


_MEANINGS = {
    ("frame-pointer", "rbp"): "an interrupt or NMI taken here finds RBP = {actual}: neither the caller's RBP "
                              "nor {expected}, the slot below the return address where FRAME_BEGIN saves it, "
                              "so the frame-pointer unwinder follows a broken chain",
    ("frame-pointer", "saved-rbp"): "RBP points at the frame's saved-RBP slot, but the slot holds {actual}, "
                                    "not the caller's RBP {expected}: the unwinder's next frame is wrong",
    ("frame-pointer", "call"): "the call is made without this function's frame in RBP (RBP = {actual}, not "
                               "{expected} with the caller's RBP saved there): the callee's frame links to "
                               "RBP, and the unwinder would not reach this function's caller (objtool's rule: "
                               "no call without frame pointer save/setup)",
}
"""What a refutation means, where expected/actual alone do not say it."""


def counterexample_text(result: FunctionResult, obligation, label: str) -> list[str]:
    """A refutation as an annotated trace (``label``: the result's row label)."""
    cex = obligation.counterexample or {}
    lines = [f"REFUTED {_title(result, obligation, label)}"]
    if cex.get("where"):
        lines.append(f"  at {_source(cex['where'])}")
    lines.append(f"  expected: {cex.get('expected')}    actual: {cex.get('actual')}")
    meaning = _MEANINGS.get((obligation.property, obligation.detail))
    if meaning:
        lines.append("  " + meaning.format(expected=cex.get("expected"), actual=cex.get("actual")))
    registers = cex.get("entry", {}).get("registers", {})
    lines.append("  entry: " + " ".join(f"{reg}={value}" for reg, value in registers.items()))
    for event in cex.get("tdx", []):
        returned = " ".join(f"{reg}={value}" for reg, value in event["registers"].items())
        status = f" status={event['status']}" if event.get("status") else ""
        lines.append(f"  {event['kind']} #{event['index']} at {_source(event['source'])}: "
                     f"{event['outcome']}{status} {returned}".rstrip())
    if "varied_tdx" in cex:
        for event in cex["varied_tdx"]:
            returned = " ".join(f"{reg}={value}" for reg, value in event["registers"].items())
            lines.append(f"  second run, {event['kind']} #{event['index']}: {event['outcome']} "
                         f"status={event['status']} {returned}".rstrip())
    lines.append("  trace:")
    for step in cex.get("trace", []):
        changed = " ".join(f"{reg}={value}" for reg, value in step["changed"].items())
        note = f"  [{step['note']}]" if step["note"] else ""
        lines.append(f"    {_source(step['source'])}: {step['instruction']:<32} {changed}{note}".rstrip())
    end = cex.get("end")
    if end == PathEnd.FALLTHROUGH and cex.get("path"):
        end += f" (leaves the function's code after {_source(cex['path'][-1])})"
    lines.append(f"  path ends: {end}; concrete replay "
                 + ("confirms the violation" if cex.get("confirmed")
                    else f"does NOT confirm it {cex.get('replay_problem', '')}".rstrip()))
    return lines


def json_report(results: list[FunctionResult], assumptions: list[str], failures=(), timings: bool = False) -> dict:
    """SPEC.md section 8's report; ``failures`` (the file groups that could
    not be checked, :class:`proofs.prover.GroupFailure`) as ``errors``;
    ``timings``: with each obligation's solver seconds, apart."""
    report = {
        "tool": TOOL, "version": VERSION,
        "summary": {str(status): count for status, count in status_counts(results).items()},
        "assumptions": assumptions,
        **({"errors": [{"files": list(f.files), "message": f.error.message,
                        "location": f.error.origin.render() if f.error.origin else None}
                       for f in failures]} if failures else {}),
        "results": [{
            "function": r.function, "file": r.origin.file, "config": r.config, "abi": r.abi,
            "contract": r.contract,
            **({"abi_source": r.abi_source} if r.abi_source else {}),
            **({"struct": r.struct} if r.struct else {}),
            **({"notices": r.notices} if r.notices else {}),
            "assumptions": r.assumptions,
            "obligations": [dict({"property": o.property, "detail": o.detail, "status": o.status},
                                 **({"counterexample": o.counterexample} if o.counterexample else {}),
                                 **({"reason": o.reason} if o.reason else {}),
                                 **({"accepted": o.accepted} if o.accepted else {}))
                            for o in r.obligations],
        } for r in results],
    }
    if timings:
        report["timings"] = [{"function": r.function, "file": r.origin.file, "config": r.config,
                              "property": o.property, "detail": o.detail, "seconds": round(o.seconds, 3)}
                             for r in results for o in r.obligations]
    return report
