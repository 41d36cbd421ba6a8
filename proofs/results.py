"""What a ``check`` run found: one record per obligation, per function and
configuration, and per run -- the data the reports and the command line
read (:mod:`proofs.report`, :mod:`proofs.cli`).

A result records the function's contract with its ABI source and struct
layout (the report prints them in one line per function), the stated
assumptions, and the notices the reader must not miss; a refuted
obligation carries its counterexample (a JSON-ready dict, SPEC.md
section 8).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grammar.source import Origin, SourceError
from proofs.outcomes import Status


@dataclass
class ObligationResult:
    property: str
    detail: str
    status: Status
    seconds: float
    counterexample: dict | None = None
    origin: Origin | None = None
    reason: str = ""
    accepted: str = ""
    """Why this finding does not count (suppressed, in the baseline:
    :mod:`proofs.triage`); "" when it does."""

    @property
    def counts(self) -> bool:
        """Whether this obligation is a finding that decides the exit status."""
        return self.status != Status.PROVED and not self.accepted


@dataclass
class FunctionResult:
    function: str
    config: str
    abi: str
    contract: str | None
    origin: Origin
    obligations: list[ObligationResult]
    assumptions: list[str]
    notices: list[str] = field(default_factory=list)
    """What the reader must not miss (an unknown ABI, a forced contract the
    code contradicts, a prototype the assembly disagrees with)."""
    abi_source: str = ""
    """Why the contract applies (:mod:`proofs.abi_choice`), "" without one."""
    struct: str = ""
    """The contract's struct layout in words, "" without a contract."""
    abi_summary: str = ""
    """The report's one line about this function's ABI ("" when there is nothing to say)."""

    def count(self, status: Status) -> int:
        return sum(1 for o in self.obligations if o.status == status)


@dataclass(frozen=True)
class GroupFailure:
    """A file group (a kernel tree) that could not be checked: its files and
    the bad-input error that stopped it."""

    files: tuple[str, ...]
    error: SourceError


@dataclass
class RunResult:
    """A whole ``check`` run: each result with the front-end options it was
    loaded with, and the groups that failed."""

    checked: list[tuple[FunctionResult, Any]]
    failures: list[GroupFailure]
