"""Canonical models: a counterexample's values are a function of the
violation, not of the solver's history.

Z3's model of a query depends on the order its terms were made and on the
queries asked before it in the same solver -- which differ with the
caches, with ``--jobs`` and with what was checked first.  So the model a
refutation prints is replaced by the *lexicographically smallest* one of
its constraints (the path, the violation, the native placement): the terms
a counterexample shows, in a fixed order (:mod:`proofs.counterexample`
says which), each as small as it can be (unsigned) once the ones before
it are fixed.  That model is unique, whatever the solver found first.

Decisions recorded here:

* **Few queries.**  The current model answers whatever it already
  satisfies: a term it has at 0 is fixed at 0 without a query, and so is a
  bit it has at 0 in the bitwise search.  Before the term by term pass, one
  query asks for all the nonzero terms at 0 at once, as assumptions; when
  that is unsat, its unsat core names a few terms that cannot all be 0, and
  one more query asks for the others at 0.  Then each term still nonzero
  costs a query for 0, else one for any smaller value (none: it is
  determined), else one per set bit of the bitwise search, most significant
  first (the entry RSP on its page, a struct pointer in the harness's
  data region).  A term the fixed terms already determine (a substitution
  of their values makes it a constant) costs nothing.
* **Incremental.**  The queries are asked in a solver scope that holds the
  constraints (:meth:`model.executor.Solver.scope`): each adds only the
  fixed values and the one it tries.
* A query the solver leaves unknown (a timeout) lowers nothing: the term
  keeps the current model's value.  The model is then still one of the
  constraints, but no longer the smallest (only under timeouts).
* Booleans are ordered false < true; terms of other sorts are left as the
  model has them.
"""
from __future__ import annotations

from typing import Callable, Iterable

import z3

from model.outcomes import Verdict

Ask = Callable[..., tuple[Verdict, z3.ModelRef | None]]
"""A query in a solver scope (:meth:`model.executor.Solver.scope`): ``ask(*more, assuming=())``."""


def _is_constant(term: z3.ExprRef) -> bool:
    return z3.is_bv_value(term) or z3.is_true(term) or z3.is_false(term)


class Minimiser:
    """The smallest model of a solver scope's constraints, term by term
    (module doc): :meth:`lower` fixes terms in the order given, and
    :attr:`model` is always a model of the constraints and the terms fixed
    so far.  ``core``: the unsat core of the last unsat query with
    assumptions (:attr:`model.executor.Solver.core`)."""

    def __init__(self, ask: Ask, model: z3.ModelRef, core: Callable[[], list[z3.BoolRef]]):
        self.model = model
        self._ask, self._core = ask, core
        self._fixed: list[z3.BoolRef] = []
        self._values: list[tuple[z3.ExprRef, z3.ExprRef]] = []
        self._seen: set[int] = set()

    def lower(self, terms: Iterable[z3.ExprRef]) -> None:
        """Fix each of ``terms`` (in order) at its smallest value."""
        new = []
        for term in terms:
            if term.get_id() not in self._seen and not _is_constant(term) and (z3.is_bv(term) or z3.is_bool(term)):
                self._seen.add(term.get_id())
                new.append(term)
        terms = new
        self._hint([t for t in terms if not self._is_smallest_sort_value(t)])
        for term in terms:
            self._lower(term)

    def _value(self, term: z3.ExprRef) -> z3.ExprRef:
        return self.model.eval(term, model_completion=True)

    def _is_smallest_sort_value(self, term: z3.ExprRef) -> bool:
        value = self._value(term)
        return z3.is_false(value) if z3.is_bool(term) else value.as_long() == 0

    @staticmethod
    def _smallest(term: z3.ExprRef) -> z3.BoolRef:
        return z3.Not(term) if z3.is_bool(term) else term == 0

    def _try(self, *more: z3.BoolRef, assuming: tuple[z3.BoolRef, ...] = ()) -> bool:
        answer, model = self._ask(*self._fixed, *more, assuming=assuming)
        if answer is Verdict.SAT:
            self.model = model
        return answer is Verdict.SAT

    def _hint(self, nonzero: list[z3.ExprRef]) -> None:
        """A model with as many of ``nonzero`` at their smallest value as
        two queries find (module doc)."""
        if not nonzero:
            return
        wanted = tuple(self._smallest(t) for t in nonzero)
        if self._try(assuming=wanted):
            return
        core = {c.get_id() for c in self._core()}
        rest = tuple(w for w in wanted if w.get_id() not in core)
        if core and rest:
            self._try(assuming=rest)

    def _fix(self, term: z3.ExprRef, value: z3.ExprRef) -> None:
        self._fixed.append(term == value)
        self._values.append((term, value))

    def _lower(self, term: z3.ExprRef) -> None:
        known = z3.simplify(z3.substitute(term, *self._values)) if self._values else term
        if _is_constant(known):
            self._fix(term, known)
            return
        if self._is_smallest_sort_value(term) or self._try(self._smallest(term)):
            self._fix(term, self._value(term))
            return
        if z3.is_bool(term):
            self._fix(term, z3.BoolVal(True))
            return
        if self._try(z3.ULT(term, self._value(term))):
            self._lower_bits(term)
        else:
            self._fix(term, self._value(term))

    def _lower_bits(self, term: z3.BitVecRef) -> None:
        """Bitwise, most significant first: each bit 0 where the bits above
        allow it."""
        width, high = term.size(), 0
        for bit in reversed(range(width)):
            high <<= 1
            if self._value(term).as_long() >> bit & 1 and not self._try(
                    z3.Extract(width - 1, bit, term) == z3.BitVecVal(high, width - bit)):
                high |= 1
        self._fix(term, z3.BitVecVal(high, width))
