"""The answers of the solver wrapper (:class:`model.executor.Solver`).

``UNKNOWN`` (a timeout, or a query beyond the solver) is its own answer:
callers treat it as "maybe", never as "infeasible" nor as "proved".
"""
from __future__ import annotations

import enum


class Verdict(enum.Enum):
    SAT = "sat"
    UNSAT = "unsat"
    UNKNOWN = "unknown"
