"""Which findings of a ``check`` run count: a CI baseline and a tree's suppressions.

A *finding* is a refuted or unknown obligation.  This module decides
which of them are accepted -- still reported, but not new and not counted
in the exit status -- and why:

* **A baseline** (``check --baseline FILE``) is a previous run's JSON
  report.  A finding is in it when the baseline has the same obligation
  (file, function, configuration, property, detail) with a status at
  least as bad: a refutation is known only if it was refuted before, an
  unknown if it was unknown or refuted.  A proof that became a refutation
  is new.  Files are compared by their normalised path as written, so a
  baseline made by the same command line in another checkout matches.
* **Suppressions** are ``[[suppress]]`` tables of a tree's
  ``tdxproof.toml`` (:data:`grammar.frontend.TREE_CONFIG`): ``function``
  and ``property`` (required), ``detail`` and ``config`` (the row label,
  ``CONFIG_FRAME_POINTER=y``; optional: any), and a ``reason``, which is
  mandatory and printed with every finding it accepts.  A suppression
  applies to the functions of files under its tree's root.  One that
  accepts nothing is a warning (the code was fixed, or the entry is
  mistyped), never an error: a stale entry must not fail a CI run.
* A finding both suppressed and in the baseline is reported as
  suppressed (the reason is the more useful of the two).

Every mistake in either file is bad input (exit 2) at its file, line and
column, found before any work starts.
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from typing import Sequence

from grammar.frontend import TREE_CONFIG
from grammar.located_toml import read_toml
from grammar.source import Origin, SourceError
from proofs.outcomes import Status
from proofs.catalog import CATALOG
from proofs.results import FunctionResult

FINDINGS = (Status.REFUTED, Status.UNKNOWN)
IN_BASELINE = "in the baseline"
"""What ``accepted`` says of a finding the baseline has (else it names the suppression)."""
_SEVERITY = {Status.PROVED: 0, Status.UNKNOWN: 1, Status.REFUTED: 2}


@dataclass(frozen=True)
class Suppression:
    """One ``[[suppress]]`` entry of the ``tdxproof.toml`` at ``root``."""

    root: str
    function: str
    property: str
    detail: str | None
    config: str | None
    reason: str
    origin: Origin

    def accepts(self, result: FunctionResult, property_id: str, detail: str) -> bool:
        return (self.function == result.function and self.property == property_id
                and self.detail in (None, detail) and self.config in (None, result.config)
                and _under(result.origin.file, self.root))


def _under(path: str, root: str) -> bool:
    path, root = os.path.abspath(path), os.path.abspath(root)
    return os.path.commonpath([path, root]) == root


def read_suppressions(roots: Sequence[str]) -> list[Suppression]:
    """The suppressions of the ``tdxproof.toml`` of each of ``roots`` (a
    missing file has none)."""
    found = []
    for root in dict.fromkeys(roots):
        path = os.path.join(root, TREE_CONFIG)
        if not os.path.lexists(path):
            continue
        config = read_toml(path, "tree configuration").root()
        if "suppress" not in config:
            continue
        for entry in config["suppress"].list("an array of [[suppress]] tables"):
            table = entry.table(("function", "property", "reason"), ("detail", "config"),
                                "a [[suppress]] table").named(f"{TREE_CONFIG} suppression")
            reason = table["reason"].string("a string")
            if not reason.strip():
                raise table["reason"].error("a suppression needs a reason: say why the finding is accepted")
            found.append(Suppression(
                root, table["function"].name_string("a function name"),
                table["property"].choice(CATALOG, "property"),
                table.optional("detail", lambda v: v.name_string("a detail (a register, a field)"), None),
                table.optional("config", lambda v: v.name_string("a configuration label"), None),
                reason.strip(), table.source.origin(table.where, "key")))
    return found


Key = tuple[str, str, str, str, str]


def _key(file: str, function: str, config: str, property_id: str, detail: str) -> Key:
    return (os.path.normpath(file), function, config, property_id, detail)


def read_baseline(path: str) -> dict[Key, Status]:
    """The statuses of the obligations of the JSON report at ``path``."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):      # a FIFO or a device could block
            raise SourceError(f"cannot read baseline {path}: not a regular file")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot read baseline {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(f"baseline is not JSON: {error.msg}", Origin(path, error.lineno, error.colno)) from None
    statuses: dict[Key, Status] = {}
    try:
        for result in report["results"]:
            for obligation in result["obligations"]:
                key = _key(result["file"], result["function"], result["config"], obligation["property"],
                           obligation["detail"])
                statuses[key] = Status(obligation["status"])
    except (KeyError, TypeError, ValueError) as error:
        raise SourceError(f"baseline {path} is not a tdxproof JSON report (check --json): "
                          f"{type(error).__name__} {error}") from None
    return statuses


def triage(results: list[FunctionResult], baseline: dict[Key, Status] | None,
           suppressions: Sequence[Suppression]) -> list[str]:
    """Mark each accepted finding of ``results`` (its ``accepted`` says
    why); the warnings about suppressions that accepted nothing."""
    used: set[Suppression] = set()
    for result in results:
        for obligation in result.obligations:
            if obligation.status not in FINDINGS:
                continue
            for suppression in suppressions:
                if suppression.accepts(result, obligation.property, obligation.detail):
                    used.add(suppression)
                    obligation.accepted = f"suppressed at {suppression.origin.render()}: {suppression.reason}"
                    break
            else:
                known = (baseline or {}).get(_key(result.origin.file, result.function, result.config,
                                                  obligation.property, obligation.detail))
                if known is not None and _SEVERITY[known] >= _SEVERITY[obligation.status]:
                    obligation.accepted = IN_BASELINE
    return [f"suppression at {s.origin.render()} ({s.function}: {s.property}) accepts no finding of this run"
            for s in suppressions if s not in used]
