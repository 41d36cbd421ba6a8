"""Reports of a ``check`` run: the text table and JSON (SARIF 2.1.0 is
:mod:`proofs.sarif`).

Decisions recorded here:

* The text report is a table a reviewer reads at a glance, at most
  :data:`TABLE_WIDTH` columns wide: one row per function x configuration
  (a function's configurations as rows under its name when there are
  several; a label too long for its column wraps), one column per group
  of the catalog (:data:`proofs.catalog.GROUPS`; ``--columns properties``:
  per property, wider), each cell the worst status of its obligations
  (``ok`` proved, ``FAIL`` refuted, ``??`` unknown) or, without one, why:
  ``n/a`` they do not apply (the configuration or the contract says so),
  ``nc`` the function has no contract to check them by, ``-`` not
  selected; then a legend.  Then one line per function saying its ABI (the
  contract, where its ABI came from, the struct layout:
  :mod:`proofs.abi_choice`), then a ``WARNING:`` line for each notice (an
  unknown ABI, a forced contract the code contradicts), then the assumptions (shared ones once, per-function ones
  under their function), then every refuted obligation as an annotated
  trace (a path that falls through says after which source line it left
  the function's code; ``no-fallthrough``'s "actual" says where it goes)
  and every unknown one with its reason; last, the accepted findings
  (:mod:`proofs.triage`: in the baseline, or suppressed with a reason),
  one line each, without their traces.  ``--quiet``: the findings alone.
* JSON is SPEC.md section 8's shape and deterministic: results in input
  order (function order, then configuration order), obligations in
  catalog order, keys in a fixed order, and solver time in whole seconds
  rounded up (so that ``--jobs`` and machine load do not change bytes
  unless a query crosses a whole second).
  A ``summary`` counts the obligations of each status.
* A finding (a refuted or unknown obligation) is located at the source
  line of its claim (:func:`finding_origin`, which every report reads).
"""
from __future__ import annotations

import math
import re
from typing import Iterable

from grammar.source import Origin
from model.transfers import PathEnd
from proofs import TOOL, VERSION
from proofs.catalog import GROUPS
from proofs.properties import CATALOG, PROPERTIES
from proofs.outcomes import Status
from proofs.results import FunctionResult

MARKS = {Status.PROVED: "ok", Status.REFUTED: "FAIL", Status.UNKNOWN: "??"}
NOT_APPLICABLE, NO_CONTRACT, NOT_SELECTED = "n/a", "nc", "-"
LEGEND = {"ok": "proved", "FAIL": "refuted", "??": "unknown", NOT_APPLICABLE: "does not apply",
          NO_CONTRACT: "not checked: no contract", NOT_SELECTED: "not selected"}
"""Every mark of the summary table and what it means, in the legend's order."""
TABLE_WIDTH = 100
"""The summary table's width: its function labels wrap to fit."""
COLUMNS = ("groups", "properties")
"""The summary table's forms (``check --columns``): a column per group of
the catalog (:data:`proofs.catalog.GROUPS`), or per property."""


def _mark(result: FunctionResult, pids: tuple[str, ...], selected: tuple[str, ...] = CATALOG) -> str:
    """The cell of properties ``pids`` (a group's, or one) in a row: the
    worst status of their obligations; when they have none, why: none of
    them is ``selected``, or the function has no contract and they need
    one, or else they do not apply (the configuration or the contract
    says so).

    >>> from proofs.results import ObligationResult
    >>> r = FunctionResult("f", "default", "-", None, Origin("a.S", 1), [
    ...     ObligationResult("callee-saved", "rbx", "proved", 0.0),
    ...     ObligationResult("callee-saved", "rbp", "refuted", 0.0)], [])
    >>> _mark(r, ("callee-saved",)), _mark(r, ("scrub",)), _mark(r, ("frame-pointer",))
    ('FAIL', 'nc', 'n/a')
    >>> _mark(r, ("scrub",), ("callee-saved",))
    '-'
    """
    statuses = {o.status for o in result.obligations if o.property in pids}
    for status in (Status.REFUTED, Status.UNKNOWN, Status.PROVED):
        if status in statuses:
            return MARKS[status]
    chosen = [pid for pid in pids if pid in selected]
    if not chosen:
        return NOT_SELECTED
    if result.contract is None and any(PROPERTIES[pid].needs_contract for pid in chosen):
        return NO_CONTRACT
    return NOT_APPLICABLE


def _row_label(result: FunctionResult, qualified: bool = False) -> str:
    """``function [config]``, with the function's file when ``qualified``.

    >>> r = FunctionResult("f", "default", "-", None, Origin("a/b.S", 4), [], [])
    >>> _row_label(r), _row_label(r, True)
    ('f [default]', 'a/b.S:f [default]')
    """
    return f"{_function_name(result, qualified)} [{result.config}]"


def _function_name(result: FunctionResult, qualified: bool) -> str:
    return f"{result.origin.file}:{result.function}" if qualified else result.function


def _qualified(results: list[FunctionResult]) -> set[str]:
    """The functions that two files (two kernel trees) define: they are
    named with their file."""
    files: dict[str, set[str]] = {}
    for result in results:
        files.setdefault(result.function, set()).add(result.origin.file)
    return {function for function, where in files.items() if len(where) > 1}


def _labels(results: list[FunctionResult]) -> dict[int, str]:
    """Each result's row label: a function that two files (two kernel
    trees) define is named with its file."""
    qualified = _qualified(results)
    return {id(r): _row_label(r, r.function in qualified) for r in results}


def _wrap(text: str, width: int, indent: str) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken after a
    ``/``, ``:``, ``,`` or space; the lines after the first start with
    ``indent``; a piece longer than a line is cut.

    >>> _wrap("a/bb/ccc:f [CONFIG_A=y,CONFIG_B=n]", 14, "  ")
    ['a/bb/ccc:f', '  [CONFIG_A=y,', '  CONFIG_B=n]']
    >>> _wrap("abcdefgh", 5, " ")
    ['abcde', ' fgh']
    """
    lines = [""]
    for piece in re.findall(r"[^/:, ]*(?:[/:,] ?| |$)", text):
        if not piece:
            continue
        if len(lines[-1]) + len(piece.rstrip()) > width and lines[-1].strip():
            lines.append(indent)
        lines[-1] += piece
        while len(lines[-1].rstrip()) > width:
            line = lines[-1]
            lines[-1:] = [line[:width], indent + line[width:]]
    return [line.rstrip() for line in lines]


def _label_lines(text: str, room: int, indent: str) -> list[str]:
    """A row's label in lines of at most :data:`TABLE_WIDTH`, the last
    (which the cells follow) of at most ``room`` columns."""
    lines = _wrap(text, TABLE_WIDTH, indent)
    if len(lines[-1]) > room:
        lines[-1:] = _wrap(lines[-1], room, indent)
    return lines


def _header(name: str, width: int) -> list[str]:
    """A column heading in lines of at most ``width`` (or its longest
    word), broken after a ``-``.

    >>> _header("panic-on-tdcall-failure", 7)
    ['panic-', 'on-', 'tdcall-', 'failure']
    """
    lines = [""]
    for word in re.findall(r"[^-]+-?", name):
        if lines[-1] and len(lines[-1]) + len(word) > width:
            lines.append("")
        lines[-1] += word
    return lines


def summary_table(results: list[FunctionResult], selected: tuple[str, ...] = CATALOG,
                  columns: str = "groups") -> list[str]:
    """The table of marks: a row per function x configuration, a column
    per group of the catalog (``columns`` "groups", every group: one that
    is not ``selected`` shows it) or per selected property
    ("properties", wider than :data:`TABLE_WIDTH`), then the legend.
    Where there are several configurations, each function has a heading
    line and its configurations are the rows under it.  A label too long
    for its column wraps, its cells on its last line."""
    if columns == "groups":
        heads = [(group.name, group.properties) for group in GROUPS]
    else:
        heads = [(pid, (pid,)) for group in GROUPS for pid in group.properties if pid in selected]
    marks_width = max(len(mark) for mark in LEGEND)
    headings = [_header(name, max(marks_width, max(len(word) for word in re.findall(r"[^-]+-?", name))))
                if columns == "properties" else [name] for name, _ in heads]
    widths = [max(marks_width, *(len(line) for line in heading)) for heading in headings]
    label_room = TABLE_WIDTH - sum(width + 2 for width in widths) if columns == "groups" else TABLE_WIDTH
    qualified = _qualified(results)
    several = len({r.config for r in results}) > 1
    rows: list[tuple[list[str], FunctionResult | None]] = []
    for position, result in enumerate(results):
        name = _function_name(result, result.function in qualified)
        if not several:
            rows.append((_label_lines(f"{name} [{result.config}]", label_room, "  "), result))
            continue
        previous = results[position - 1] if position else None
        if previous is None or (previous.function, previous.origin.file) != (result.function, result.origin.file):
            rows.append((_wrap(name, TABLE_WIDTH, "  "), None))
        rows.append((_label_lines(f"  [{result.config}]", label_room, "   "), result))
    title = "function [configuration]"
    label_width = max([len(title)] + [len(label[-1]) for label, result in rows if result is not None])
    depth = max(len(heading) for heading in headings)
    lines = []
    for level in range(depth):
        cells = [(heading[level - depth + len(heading)] if level >= depth - len(heading) else "").center(width)
                 for heading, width in zip(headings, widths)]
        lines.append("  ".join([(title if level == depth - 1 else "").ljust(label_width)] + cells).rstrip())
    lines.append("  ".join(["-" * label_width] + ["-" * width for width in widths]))
    for label, result in rows:
        lines += label[:-1]
        if result is None:
            lines.append(label[-1])
            continue
        cells = [_mark(result, pids, selected).center(width) for (_, pids), width in zip(heads, widths)]
        lines.append("  ".join([label[-1].ljust(label_width)] + cells).rstrip())
    lines.append("")
    lines += _wrap(", ".join(f"{mark} {meaning}" for mark, meaning in LEGEND.items()), TABLE_WIDTH, "  ")
    if columns == "groups":
        lines.append("a column groups properties (check --help lists them); --columns properties: one each")
    return lines


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


def text_report(results: list[FunctionResult], configs: Iterable[str] = (), failures=(),
                selected: tuple[str, ...] = CATALOG, columns: str = "groups", quiet: bool = False) -> str:
    """The text report; ``failures``: file groups not checked (their
    errors go to stderr); ``selected``: the properties ``--property``
    chose; ``columns``: the summary table's form (:data:`COLUMNS`);
    ``quiet``: the findings only."""
    labels = _labels(results)
    lines = [] if quiet else _overview(results, labels, failures, selected, columns)
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
    text = "\n".join(lines).lstrip("\n")
    return text + "\n" if text else ""


def _overview(results: list[FunctionResult], labels: dict[int, str], failures, selected: tuple[str, ...],
              columns: str) -> list[str]:
    """What the report says before its findings: the summary table, each
    function's ABI, the warnings, the counts, the groups not checked and
    the assumptions (``labels``: the rows' labels, :func:`_labels`)."""
    lines = summary_table(results, selected, columns)
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
    return lines


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


def json_report(results: list[FunctionResult], assumptions: list[str], failures=()) -> dict:
    """SPEC.md section 8's report; ``failures`` (the file groups that could
    not be checked, :class:`proofs.prover.GroupFailure`) as ``errors``."""
    return {
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
            "obligations": [dict({"property": o.property, "detail": o.detail, "status": o.status,
                                  "seconds": math.ceil(o.seconds)},
                                 **({"counterexample": o.counterexample} if o.counterexample else {}),
                                 **({"reason": o.reason} if o.reason else {}),
                                 **({"accepted": o.accepted} if o.accepted else {}))
                            for o in r.obligations],
        } for r in results],
    }
