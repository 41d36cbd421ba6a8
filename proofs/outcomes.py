"""The verdicts the proofs give, one enumeration per kind of question.

Each value is the word the text and JSON reports print (the enums are
``StrEnum``: a member is that string, compares and serialises as it):

* :class:`Status`: an obligation of ``check`` (and a mutant's
  obligations) -- proved, refuted, or unknown, never "proved" by default;
* :class:`Equivalence`: an ``equiv`` verdict -- equivalent, different, or
  unknown;
* :class:`MutantStatus`: what ``mutate`` found of one mutant -- killed by a
  refuted obligation, survived, or invalid (not assembled or modelled).

The solver's answers are :class:`model.outcomes.Verdict`, the ends of a
symbolic path :class:`model.executor.PathEnd`.  A refutation whose
concrete replay does not confirm it is no verdict: both commands make it
unknown, for the reason :func:`unconfirmed_reason` gives.
"""
from __future__ import annotations

from grammar.compat import StrEnum


class Status(StrEnum):
    """The status of one obligation."""

    PROVED = "proved"
    REFUTED = "refuted"
    UNKNOWN = "unknown"


class Equivalence(StrEnum):
    """The verdict of one ``equiv``."""

    EQUIVALENT = "equivalent"
    DIFFERENT = "different"
    UNKNOWN = "unknown"


class MutantStatus(StrEnum):
    """What the properties did to one mutant."""

    KILLED = "killed"
    SURVIVED = "survived"
    INVALID = "invalid"


def unconfirmed_reason(problem: str | None) -> str:
    """Why a refutation whose concrete replay does not confirm it is not a
    verdict: the symbolic and the concrete semantics disagree, a bug of
    ours (``check`` and ``equiv`` say it alike)."""
    return ("the solver found a violation, but its counterexample does not replay concretely"
            + (f" ({problem})" if problem else "") + ": a bug of tdxproof, please report it; "
            "not a verdict")
