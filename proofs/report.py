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
  under their function), then each finding's detailed block and every
  unknown obligation with its reason (one line per reason); last, the
  accepted findings (:mod:`proofs.triage`: in the baseline, or
  suppressed with a reason), one line each, without their traces.
  ``--quiet``: the one-line findings and the unknown obligations alone.
* Before all that, like compiler output, one line per finding
  (:mod:`proofs.findings`: refutations with one cause are one finding),
  ``FILE:LINE:COL: error: FUNCTION: PROPERTY: SUMMARY`` at its culprit,
  the macro-expansion chain (innermost first) and the check's own place
  as ``note:`` lines, and the count "N refuted obligations in M
  findings" (per obligation, as the summary line).
* A finding's block labels what is compared (:data:`_COMPARED`, per
  property: "R14 at return: 0x1 ; at entry: 0x0"), prints the source
  line of each step as written (constants and labels by name; a
  C-preprocessor macro's step as the instruction read) and, by default,
  only the steps that matter (:func:`_shown_steps`), the others collapsed
  into "... N steps ..." lines; ``trace`` prints every step, ``verbose``
  each obligation of the finding.  A path that falls through says after
  which source line it left the function's code.
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
* A finding (a refuted or unknown obligation) is located at its culprit
  (:func:`finding_origin`, which every report reads); where its check
  fires is :func:`check_origin`.
"""
from __future__ import annotations

import linecache
import math
import re
from typing import Iterable, Sequence

from grammar.source import Origin
from model.transfers import PathEnd
from proofs import TOOL, VERSION
from proofs.catalog import GROUPS
from proofs.findings import Culprit, Finding, culprit, findings, reviewable, rule_of
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


def assumption_lines(rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The assumptions of report rows (each a label and its texts): those
    every row shares once, then each row's own under its label."""
    shared = [text for text in rows[0][1] if all(text in texts for _, texts in rows[1:])] if rows else []
    lines = ["Assumptions (all rows):", *(f"  - {text}" for text in shared)]
    for label, texts in rows:
        own = [text for text in texts if text not in shared]
        if own:
            lines.append(f"Assumptions for {label}:")
            lines += [f"  - {text}" for text in own]
    return lines


def text_report(results: list[FunctionResult], configs: Iterable[str] = (), failures=(),
                selected: tuple[str, ...] = CATALOG, columns: str = "groups", quiet: bool = False, *,
                verbose: bool = False, trace: bool = False) -> str:
    """The text report; ``failures``: file groups not checked (their
    errors go to stderr); ``selected``: the properties ``--property``
    chose; ``columns``: the summary table's form (:data:`COLUMNS`);
    ``quiet``: the one-line findings and the unknown obligations only;
    ``verbose``: list each obligation of a finding; ``trace``: the whole
    trace of each counterexample, not only the steps that matter."""
    labels = _labels(results)
    lines = [] if quiet else _overview(results, labels, failures, selected, columns)
    accepted, found, unknowns = [], [], []
    for result in results:
        for obligation in result.obligations:
            if obligation.accepted:
                accepted.append(f"  - {obligation.status.upper()} {_title(result, obligation, labels[id(result)])}: "
                                f"{obligation.accepted}")
        for finding in findings(result):
            found.append(finding)
            if not quiet:
                lines.append("")
                lines += counterexample_text(finding, labels[id(result)], verbose=verbose, trace=trace)
        for reason, unknown in _unknowns(result).items():
            unknowns.append(f"UNKNOWN {_names(unknown)} of {labels[id(result)]}: {reason}")
    if quiet:
        lines = unknowns
    else:
        for line in unknowns:
            lines += ["", line]
        if accepted:
            lines.append("")
            lines.append(f"Accepted findings, not counted in the exit status ({len(accepted)}):")
            lines += accepted
    head = finding_lines(found, status_counts(results)[Status.REFUTED])
    text = "\n".join(head + lines).strip("\n")
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
    lines.append("")
    lines += assumption_lines([(labels[id(result)], result.assumptions) for result in results])
    return lines


def status_counts(results: list[FunctionResult]) -> dict[Status, int]:
    """How many obligations of ``results`` have each status (every status, in the order proved, refuted, unknown)."""
    return {status: sum(r.count(status) for r in results) for status in MARKS}


def finding_origin(result: FunctionResult, obligation) -> Origin:
    """Where the finding of a refuted or unknown ``obligation`` is located:
    its culprit (:func:`proofs.findings.culprit`: the instruction whose
    effect breaks the property), else the place its check fires, else the
    function.  The one place every report takes it from."""
    return culprit(result, obligation).origin


def check_origin(result: FunctionResult, obligation) -> Origin:
    """Where the check of ``obligation`` fires (the return, the access,
    the TDX instruction), else the function (as a reviewer can change it:
    :func:`proofs.findings.reviewable`)."""
    return reviewable(obligation.origin or result.origin)


def _title(result: FunctionResult, obligation, label: str) -> str:
    detail = f" ({obligation.detail})" if obligation.detail else ""
    return f"{obligation.property}{detail} of {label}"


def _names(obligations) -> str:
    """``prop (a, b), other`` for obligations, their details grouped by property.

    >>> from proofs.results import ObligationResult as O
    >>> _names([O("callee-saved", "r14", "refuted", 0), O("callee-saved", "r15", "refuted", 0),
    ...         O("stack-balance", "", "refuted", 0)])
    'callee-saved (r14, r15), stack-balance'
    """
    details: dict[str, list[str]] = {}
    for obligation in obligations:
        details.setdefault(obligation.property, [])
        if obligation.detail:
            details[obligation.property].append(obligation.detail)
    return ", ".join(f"{pid} ({', '.join(names)})" if names else pid for pid, names in details.items())


def _unknowns(result: FunctionResult) -> dict[str, list]:
    """The row's unknown obligations that count, by reason (one line each)."""
    by_reason: dict[str, list] = {}
    for obligation in result.obligations:
        if obligation.status == Status.UNKNOWN and not obligation.accepted:
            by_reason.setdefault(obligation.reason, []).append(obligation)
    return by_reason


def _source(source: dict) -> str:
    text = f"{source['file']}:{source['line']}"
    if source["expansion"]:
        text += " (in " + " -> ".join(source["expansion"]) + ")"
    return text


def _place(origin: Origin) -> str:
    return f"{origin.file}:{origin.line}:{origin.column}"


_PATHS = {"completion": "completion", "vmfailinvalid": "VMfailInvalid", "fault #UD": "#UD", "fault #GP": "#GP"}
"""The name of a path after its last TDX instruction's outcome."""

_SUMMARIES = {
    "callee-saved": "{NAMES} modified{path}",
    "scrub": "{NAMES} {still} a value from the TDX module at return{path}",
    "stack-balance": "RSP at return is not the entry RSP + 8{path}",
    "return-address": "the return-address slot is overwritten{path}",
    "no-red-zone": "memory access below RSP{path}",
    "frame": "store outside the stack frame and the struct{path}",
    "fault-handled": "may fault with no exception-table entry",
    "direction-flag": "DF is set at return{path}",
    "extended-state": "the extended (AVX) state at return is neither the entry's nor INIT{path}",
    "no-fallthrough": "{actual}",
    "frame-pointer": "RBP is not a frame pointer the unwinder can follow{path}",
    ("frame-pointer", "saved-rbp"): "the saved-RBP slot does not hold the caller's RBP{path}",
    ("frame-pointer", "call"): "call without this function's frame set up{path}",
    "input-marshalling": "{NAMES} not as the ABI says at {kind}{path}",
    ("input-marshalling", "executed"): "returns without executing {expected}",
    "output-marshalling": "{fields} not {kind}'s output{path}",
    ("output-marshalling", "other fields"): "writes a struct field that is not an output{path}",
    "status-return": "RAX at return is not {kind}'s status{path}",
    "r10-to-rax": "RAX at return is not the R10 the TDVMCALL returned{path}",
    "vmfailinvalid-code": "RAX at return is {actual}, not TDX_SEAMCALL_VMFAILINVALID{path}",
    "fault-codes": "RAX at return is {actual}, not TDX_SW_ERROR | trap number{path}",
    "failure-no-output": "the struct is written{path}",
    "panic-on-tdcall-failure": "a failed TDCALL does not reach the panic function",
}
"""The one-line summary of a finding, by property or (property, detail):
``NAMES`` the registers (upper case), ``fields`` the struct fields,
``path`` "on the ... path", ``kind`` the TDX instruction, ``expected``
and ``actual`` the shown counterexample's values."""

_COMPARED = {
    "callee-saved": "{REG} at return: {actual} ; at entry: {expected}",
    "scrub": "{REG} at return: {expected} ; with other TDX-module outputs: {actual}",
    "stack-balance": "RSP at return: {actual} ; entry RSP + 8: {expected}",
    "return-address": "return address read by ret: {actual} ; at entry: {expected}",
    "no-red-zone": "address accessed: {actual} ; RSP: {expected}",
    "frame": "address written: {actual}",
    "fault-handled": "exception-table entry: {actual} ; needed: {expected}",
    "direction-flag": "DF at return: {actual} ; needed: {expected}",
    "extended-state": "extended state at return: {actual} ; needed: {expected}",
    "no-fallthrough": "{actual} ; needed: {expected}",
    "frame-pointer": "RBP: {actual} ; the frame's slot: {expected}",
    ("frame-pointer", "saved-rbp"): "saved-RBP slot holds: {actual} ; the caller's RBP: {expected}",
    ("frame-pointer", "call"): "RBP at the call: {actual} ; the frame's slot: {expected}",
    "input-marshalling": "{REG} at {kind}: {actual} ; the ABI's value: {expected}",
    ("input-marshalling", "executed"): "TDX instruction executed: {actual} ; needed: {expected}",
    "output-marshalling": "the struct's {detail} field at return: {actual} ; {REG} after {kind}: {expected}",
    ("output-marshalling", "other fields"): "a field the contract does not let it write changed",
    "status-return": "RAX at return: {actual} ; {kind}'s status: {expected}",
    "r10-to-rax": "RAX at return: {actual} ; R10 after the TDVMCALL: {expected}",
    "vmfailinvalid-code": "RAX at return: {actual} ; TDX_SEAMCALL_VMFAILINVALID: {expected}",
    "fault-codes": "RAX at return: {actual} ; TDX_SW_ERROR | {detail}: {expected}",
    "failure-no-output": "{actual} ; needed: {expected}",
    "panic-on-tdcall-failure": "path ends: {actual} ; needed: {expected}",
}
"""What a refutation compares, labelled, by property or (property, detail)."""

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
"""What a refutation means, where the compared values alone do not say it."""


def _text(table: dict, obligation, **values) -> str:
    template = table.get((obligation.property, obligation.detail)) or table.get(obligation.property, "")
    return template.format(**values)


def _values(obligation, cex: dict) -> dict:
    """What the templates may name about one obligation and its counterexample."""
    kinds = [event["kind"] for event in cex.get("tdx", [])]
    outcomes = [event["outcome"] for event in cex.get("tdx", [])]
    return {"REG": obligation.detail.upper() or "RAX", "detail": obligation.detail,
            "kind": kinds[-1] if kinds else "the TDX instruction",
            "path": f" on the {_PATHS[outcomes[-1]]} path" if outcomes else "",
            "expected": cex.get("expected"), "actual": cex.get("actual")}


def summary(finding: Finding) -> str:
    """The finding in one line, after ``file:line:col: error: function:``."""
    names = [o.detail for o in finding.obligations if o.detail]
    shown = finding.shown
    values = _values(shown, shown.counterexample or {})
    values.update(NAMES=", ".join(name.upper() for name in names), fields=", ".join(names),
                  still="still holds" if len(names) == 1 else "still hold")
    if shown.property == "fault-codes":
        values["path"] = " on the " + " and ".join(names) + " path" + ("s" if len(names) > 1 else "")
    text = f"{shown.property}: {_text(_SUMMARIES, shown, **values)}"
    return text + (f" ({finding.culprit.source})" if finding.culprit.source else "")


def finding_lines(found: list[Finding], refuted: int) -> list[str]:
    """Each finding as a compiler error at its culprit, with the
    macro-expansion chain and the check's place as notes; then the count
    (an empty list when nothing was refuted)."""
    lines = []
    for finding in found:
        result, origin = finding.result, finding.culprit.origin
        config = f" [{result.config}]" if result.config != "default" else ""
        lines.append(f"{_place(origin)}: error: {result.function}{config}: {summary(finding)}")
        for frame in reversed(origin.expansion):
            lines.append(f"{frame.file}:{frame.line}:{frame.column}: note: in expansion of {frame.name}")
        checked = check_origin(result, finding.shown)
        if (checked.file, checked.line, checked.column) != (origin.file, origin.line, origin.column):
            lines.append(f"{_place(checked)}: note: checked here")
    if found:
        lines.append(f"{refuted} refuted obligation{'s' if refuted != 1 else ''} in {len(found)} "
                     f"finding{'s' if len(found) != 1 else ''}")
        lines.append("")
    return lines


def _written(origin: dict, instruction: str) -> str:
    """The source line of a step as written (constants and labels by
    name), else the instruction as the tool read it (a line it cannot
    read, or a C-preprocessor macro's definition)."""
    linecache.checkcache(origin["file"])
    text = " ".join(linecache.getline(origin["file"], origin["line"]).split())
    return _expansion_number(text, instruction) if text and not text.startswith("#") else instruction


def _expansion_number(text: str, instruction: str) -> str:
    r"""``text`` with the number GNU as gave ``\@`` in this expansion
    (read off the instruction as expanded), where the line uses it.

    >>> print(_expansion_number("jmp .Lout\\@", "jmp .Lout3"))
    jmp .Lout\@  [\@ = 3]
    >>> _expansion_number("jmp 1f", "jmp .Lnum.2.1")
    'jmp 1f'
    """
    for token in re.findall(r"[\w.$]*\\@[\w.$]*", text):
        before, after = token.split("\\@", 1)
        number = re.search(re.escape(before) + r"(\d+)" + re.escape(after), instruction)
        if number:
            return f"{text}  [\\@ = {number[1]}]"
    return text


def _shown_steps(trace: list, culprit_: Culprit, registers: set[str], everything: bool) -> list[int | None]:
    """The indexes of the steps to print, None for each collapsed run:
    the first and last step, TDX instructions, jumps and where they land,
    the steps that write a register the finding is about, the culprit and
    the steps around it, the step that stored what the culprit loaded;
    everything with ``everything``."""
    if everything:
        return list(range(len(trace)))
    keep = {0, len(trace) - 1}
    for index, step in enumerate(trace):
        if step["note"] or step.get("jumped"):
            keep |= {index, index + 1}
        if registers & set(step.get("written", ())):
            keep.add(index)
    if culprit_.step is not None:
        keep |= {culprit_.step - 1, culprit_.step, culprit_.step + 1}
    if culprit_.source_step is not None:
        keep.add(culprit_.source_step)
    shown: list[int | None] = []
    for index in range(len(trace)):
        if index in keep or (index - 1 in keep and index + 1 in keep):
            shown.append(index)
        elif shown and shown[-1] is None:
            continue
        else:
            shown.append(None)
    return shown


def counterexample_text(finding: Finding, label: str, *, verbose: bool = False, trace: bool = False) -> list[str]:
    """A finding's detailed block (``label``: its row's label): the
    obligations, the culprit, the compared values labelled, the entry
    state and TDX outcomes, and the path -- the steps that matter, or the
    whole trace with ``trace``."""
    obligation = finding.shown
    cex = obligation.counterexample or {}
    culprit_ = finding.culprit
    lines = [f"REFUTED {_names(finding.obligations)} of {label}"]
    lines.append(f"  culprit: {_place(culprit_.origin)}"
                 + (f" ({culprit_.source})" if culprit_.source else ""))
    lines.append(f"  checked at: {_place(check_origin(finding.result, obligation))}")
    for one in (finding.obligations if verbose else [obligation]):
        one_cex = one.counterexample or {}
        prefix = f"{one.detail}: " if verbose and one.detail else ""
        lines.append("  " + prefix + _text(_COMPARED, one, **_values(one, one_cex)))
        if verbose:
            lines.append(f"    checked at {_place(check_origin(finding.result, one))}, "
                         f"culprit {_place(culprit(finding.result, one).origin)}")
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
    steps = cex.get("trace", [])
    if steps:
        involved = {o.detail for o in finding.obligations} | {rule_of(obligation).register or ""}
        shown = _shown_steps(steps, culprit_, involved, trace)
        lines.append(f"  trace ({len(steps)} steps" + ("" if trace else "; the whole trace with --trace") + "):")
        for position, index in enumerate(shown):
            if index is None:
                count = (shown[position + 1] if position + 1 < len(shown) else len(steps)) - shown[position - 1] - 1
                lines.append(f"    ... {count} step{'s' if count != 1 else ''} ...")
                continue
            step = steps[index]
            changed = " ".join(f"{reg}={value}" for reg, value in step["changed"].items())
            note = f"  [{step['note']}]" if step["note"] else ""
            mark = "  <-- culprit" if index == culprit_.step else ""
            lines.append(f"    {_source(step['source'])}: {_written(step['source'], step['instruction']):<40} "
                         f"{changed}{note}{mark}".rstrip())
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
