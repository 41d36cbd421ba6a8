"""The SARIF 2.1.0 log of a ``check`` run (``check --sarif FILE``).

Decisions:

* One run per log, always, also for a run that failed (exit status 2): its
  ``invocations`` entry gives the exit status and says whether the run
  completed (``executionSuccessful`` is false for exit status 2 only:
  refuted and unknown verdicts are a completed run).  Each error is a
  ``toolExecutionNotification`` located where the error is: the bad input
  that stopped the run, or each file group that could not be checked (the
  other groups' results are there).  A run with no verdict at all has no
  ``results``: an empty list would read as "nothing found".  Each
  ``WARNING:`` of the text report (an unknown ABI, a contradicted
  contract) is a warning notification at its function.
* One rule per property ID of :mod:`proofs.catalog`, in catalog order,
  whether or not the run checked it: its short and full description and
  its help are the catalog's words.
* One result per refuted obligation (``error``) and per unknown one
  (``warning``, the message saying why); none for a proved or an
  inapplicable one.  A result is located at
  :func:`proofs.report.finding_origin` (the culprit), with the
  macro-expansion chain and the place the check fires ("checked here",
  where it is another place) as related locations, and carries the counterexample's trace (the one the
  text report prints) as a code flow: a thread-flow location per step,
  with the registers the step changed as its ``state`` and the entry
  registers as the flow's ``initialState``.
* Every path is a percent-encoded URI (a space is ``%20``, ``#`` is
  ``%23``) relative to a base named by ``uriBaseId``: the files of a
  group in tree mode or whose root holds a ``tdxproof.toml`` are relative
  to that root (``TREE1``, ``TREE2``... in input order), every other file
  to the current directory (``SRCROOT``); ``originalUriBaseIds`` gives each
  base's absolute ``file:`` URI.  A file under neither (a header outside
  the tree) is an absolute ``file:`` URI.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import quote

from grammar.frontend import TREE_CONFIG, FileGroup
from grammar.source import Origin, SourceError
from proofs import TOOL, VERSION
from proofs.catalog import CATALOG, TEXTS
from proofs.counterexample import origin_from_json
from proofs.outcomes import Status
from proofs.report import _labels, _title, check_origin, finding_origin
from proofs.results import FunctionResult, GroupFailure
from proofs.triage import IN_BASELINE

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
"""The official schema's own ID (OASIS SARIF 2.1.0, errata 01)."""
CWD_BASE = "SRCROOT"
"""The ``uriBaseId`` of the current directory (the name code-scanning services expect)."""
LEVELS = {Status.REFUTED: "error", Status.UNKNOWN: "warning"}
"""A result's level by the obligation's status (a proved one has no result)."""


def uri_roots(groups: Iterable[FileGroup]) -> list[str]:
    """The roots the paths of ``groups`` are relative to, other than the
    current directory: those of the groups in tree mode or with a
    ``tdxproof.toml``, in input order."""
    roots = [group.root for group in groups
             if group.options.kernel_tree or os.path.lexists(os.path.join(group.root, TREE_CONFIG))]
    return list(dict.fromkeys(roots))


class _Uris:
    """Artifact locations of files: relative to the most specific base
    that holds them (:func:`uri_roots`, else the current directory), else
    absolute.

    >>> uris = _Uris(["/src/linux"], "/home/me")
    >>> uris.artifact("/src/linux/arch/x86/a b.S")
    {'uri': 'arch/x86/a%20b.S', 'uriBaseId': 'TREE1'}
    >>> uris.artifact("/home/me/t#1/c.S"), uris.artifact("/tmp/x.S")
    ({'uri': 't%231/c.S', 'uriBaseId': 'SRCROOT'}, {'uri': 'file:///tmp/x.S'})
    """

    def __init__(self, roots: Sequence[str], cwd: str):
        cwd = os.path.abspath(cwd)
        names = {cwd: CWD_BASE}
        for root in roots:
            names.setdefault(os.path.abspath(root), f"TREE{len(names)}")
        self.bases = sorted(names.items(), key=lambda item: -len(item[0]))

    def artifact(self, file: str) -> dict:
        path = os.path.abspath(file)
        for root, name in self.bases:
            if path.startswith(root.rstrip(os.sep) + os.sep):
                return {"uri": quote(Path(os.path.relpath(path, root)).as_posix(), safe="/"), "uriBaseId": name}
        return {"uri": Path(path).as_uri()}

    def original_bases(self) -> dict:
        """``originalUriBaseIds``: each base's absolute URI (a directory's, ending in ``/``)."""
        return {name: {"uri": Path(root).as_uri().rstrip("/") + "/"}
                for root, name in sorted(self.bases, key=lambda item: item[1])}

    def location(self, origin: Origin, message: str | None = None) -> dict:
        location: dict = {"physicalLocation": {"artifactLocation": self.artifact(origin.file),
                                               "region": {"startLine": origin.line,
                                                          "startColumn": origin.column}}}
        if message:
            location["message"] = {"text": message}
        return location


def _message(result: FunctionResult, obligation, label: str) -> str:
    title = _title(result, obligation, label)
    if obligation.status == Status.REFUTED:
        cex = obligation.counterexample or {}
        return f"{title}: refuted (expected {cex.get('expected')}, actual {cex.get('actual')})"
    return f"{title}: unknown: {obligation.reason}"


def _code_flow(cex: dict, uris: _Uris) -> dict | None:
    """The counterexample's path as a code flow: its trace, one location
    per step with the registers the step changed (or, without a trace, the
    bare path)."""
    if cex.get("trace"):
        steps = [{"location": uris.location(origin_from_json(step["source"]), step["instruction"]
                                            + (f" [{step['note']}]" if step["note"] else "")),
                  "state": {reg: {"text": value} for reg, value in step["changed"].items()}}
                 for step in cex["trace"]]
    elif cex.get("path"):
        steps = [{"location": uris.location(origin_from_json(source))} for source in cex["path"]]
    else:
        return None
    flow: dict = {"locations": [dict(step, executionOrder=position) for position, step in enumerate(steps, 1)]}
    registers = cex.get("entry", {}).get("registers", {})
    if registers:
        flow["initialState"] = {reg: {"text": value} for reg, value in registers.items()}
    return {"message": {"text": f"path ends: {cex.get('end')}"}, "threadFlows": [flow]}


def _result(result: FunctionResult, obligation, label: str, uris: _Uris) -> dict:
    origin = finding_origin(result, obligation)
    finding: dict = {
        "ruleId": obligation.property, "ruleIndex": CATALOG.index(obligation.property),
        "level": LEVELS[obligation.status], "message": {"text": _message(result, obligation, label)},
        "locations": [dict(uris.location(origin), logicalLocations=[{"name": result.function, "kind": "function"}])],
        "properties": {"function": result.function, "config": result.config, "detail": obligation.detail,
                       "status": str(obligation.status), "assumptions": result.assumptions}}
    related = [uris.location(Origin(frame.file, frame.line, frame.column), f"in expansion of {frame.name}")
               for frame in origin.expansion]
    checked = check_origin(result, obligation)
    if (checked.file, checked.line, checked.column) != (origin.file, origin.line, origin.column):
        related.append(uris.location(checked, "checked here"))
    if related:
        finding["relatedLocations"] = [dict(location, id=position) for position, location in enumerate(related)]
    if obligation.accepted == IN_BASELINE:
        finding["baselineState"] = "unchanged"
    elif obligation.accepted:
        finding["suppressions"] = [{"kind": "external", "status": "accepted", "justification": obligation.accepted}]
    flow = _code_flow(obligation.counterexample or {}, uris)
    if flow:
        finding["codeFlows"] = [flow]
    return finding


def _notification(level: str, text: str, locations: list[dict]) -> dict:
    return {"level": level, "message": {"text": text}, **({"locations": locations} if locations else {})}


def _error_notification(error: SourceError, uris: _Uris, files: Sequence[str] = ()) -> dict:
    """A bad-input error (of the file group of ``files``, if given) as a notification at its place."""
    text = error.message if not files else f"not checked: {', '.join(files)}: {error.message}"
    locations = ([uris.location(error.origin)] if error.origin
                 else [{"physicalLocation": {"artifactLocation": uris.artifact(file)}} for file in files])
    return _notification("error", text, locations)


def _rule(pid: str) -> dict:
    text = TEXTS[pid]
    return {"id": pid, "name": pid, "shortDescription": {"text": text.summary},
            "fullDescription": {"text": text.description}, "help": {"text": text.help},
            "defaultConfiguration": {"level": "error"}}


def sarif_log(results: list[FunctionResult], failures: Sequence[GroupFailure], error: SourceError | None,
              exit_status: int, exit_meaning: str, roots: Sequence[str], cwd: str) -> dict:
    """The log of one ``check`` run: its ``results``, the file groups that
    failed, the ``error`` that stopped it, its exit status and what that
    means; paths relative to ``roots`` (:func:`uri_roots`) or ``cwd``.  A
    run stopped before any verdict (by ``error``, or with every group
    failed) has no ``results``."""
    uris = _Uris(roots, cwd)
    notifications = [_error_notification(error, uris)] if error else []
    notifications += [_error_notification(failure.error, uris, failure.files) for failure in failures]
    warned: set[str] = set()
    for result in results:
        for notice in result.notices:
            if notice not in warned:
                warned.add(notice)
                notifications.append(_notification("warning", notice, [uris.location(result.origin)]))
    labels = _labels(results)
    run: dict = {
        "tool": {"driver": {"name": TOOL, "version": VERSION, "semanticVersion": VERSION,
                            "rules": [_rule(pid) for pid in CATALOG]}},
        "invocations": [{"executionSuccessful": error is None and not failures, "exitCode": exit_status,
                         "exitCodeDescription": exit_meaning,
                         **({"toolExecutionNotifications": notifications} if notifications else {})}],
        "originalUriBaseIds": uris.original_bases(),
        "columnKind": "unicodeCodePoints",
    }
    if error is None and (results or not failures):
        run["results"] = [_result(result, o, labels[id(result)], uris)
                          for result in results for o in result.obligations if o.status in LEVELS]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
