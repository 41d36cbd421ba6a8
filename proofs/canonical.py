"""Canonical models: a counterexample's values are a function of the
violation, not of the solver's history.

Z3's model of a query depends on the order its terms were made and on the
queries asked before it in the same solver -- which differ with the
caches, with ``--jobs`` and with what was checked first.  So the model a
refutation prints is replaced by the *lexicographically smallest* one of
its constraints (the path, the violation, the native placement): the terms
a counterexample shows, in a fixed order (:mod:`proofs.counterexample`
says which), each as small as it can be once the ones before it are
fixed.  "Small" is the unsigned distance to a preferred value, their
exclusive or: 0 for most terms; for the entry RSP and the struct
pointers, where the native placement puts them (so that the common case
is one query, not a bitwise search of an address).  That model is unique,
whatever the solver found first.

Decisions recorded here:

* **Few queries.**  The current model answers whatever it already
  satisfies: a term it has at its preferred value is fixed there without a
  query, and so is a bit it has at 0 in the bitwise search.  First, one
  query asks for every term at its preferred value at once (but those
  elsewhere that the terms fixed before already determine: a substitution
  of their values makes them a constant); while that is unsat, it is asked
  again without the last term of its unsat core (a few queries in all:
  most terms are free, and a violation needs few of them elsewhere).  Then
  each term still elsewhere costs a query for a distance of at most 1 (the
  commonest smallest distance of a value the violation needs: a register
  or an output that must differ), and, when the model has it at 1, one for
  0 -- unless the hint left it out of a core whose other terms are all at
  their preferred values by then (with the values fixed then, that core
  says it cannot be); past 1, one query for any smaller distance (none: it
  is determined), else the search: the number of bits of the distance
  (doubled from 2 until it fits), then one query per set bit, most
  significant first.  (Measured on the fixture forms' check, solver
  queries in all: 601; 724 with the determined terms in the hint and the
  0 asked after every 1; 1069 without the at-most-1 query either.)  A term
  the fixed terms already determine costs nothing.
* **Incremental.**  The queries are asked in a solver scope that holds the
  constraints (:meth:`model.executor.Solver.scope`, nested in the path's);
  the values tried are assumptions of each query, and so are the fixed
  values, through a fresh Boolean each: the values fixed between two
  queries are asserted in the scope as one implication from it, and the
  later queries assume it.  Nothing is pushed or popped, so the solver
  keeps what it learns from one query to the next.  (Measured on
  ``__tdx_hypercall`` with its flags in the wrong slot, 12 refutations:
  1.0 s in the solver with assumptions; 3.8 s with the violation an
  assumption too; 55 s with each fixed value asserted as an equality as
  it is fixed.  The Booleans: Z3 takes an assumption that is not a bare
  literal in again at every query and drops it after; 5 alternating runs
  of the fixture forms' check in one process, median user seconds, 9.10
  with the fixed values as assumptions, 8.42 with them behind Booleans;
  the hint's values tried behind Booleans too made no difference beyond
  the runs' spread.)
* **Reduced.**  Once values are fixed, the queries go to a new solver
  of the constraints with those values substituted and simplified (and
  asserted, as equalities): a struct pointer or the RSP made constant
  turns every address of it into a constant, so its adders, its
  comparisons and its memory reads at symbolic addresses are gone from
  what each query decides (a query of the shared scope of
  ``__tdx_hypercall`` re-decided some 3000 bit-blasted variables each
  time, about 9 ms).  The literals asked are substituted too (an output
  of the TDX module asked about through its symbolic arguments would
  bring them back).  Such a solver is made again once the fixed values
  are half as many again as at the last one.  (Measured on the fixture
  forms' check in one process: 2.4-2.6 s in the minimiser before, 1.7-2.0
  s after, the same models; its queries of the memory bytes, 90 of
  them, 1.08 s before, 50 and 0.19 s after.  Tried and dropped: the
  hint's query first asked of the constraints with its values
  substituted, which is cheap but whose models, of a solver that knows
  nothing else, made the later terms cost 330 queries instead of 172.)
* **Pinned hint.**  The hint is first asked of a new solver of the
  constraints with the terms of a preferred value other than 0 (the entry
  RSP, the struct pointers) substituted at it: every address through
  them is then a constant, and the hint's queries cost what the reduced
  ones do.  Its cores hold with those terms at their preferred values, so
  each is recorded with them in its rest (:meth:`Minimiser._above_smallest`
  then needs them there too), and only for a term lowered after them (the
  rest of a core must be fixed by the time it is used; found by the brute
  force of ``tests/test_canonical.py``).  Only when that has no model (the violation
  needs a pointer elsewhere, or a timeout) is the hint asked of the
  shared scope.  (Measured on the fixture forms' check in one process:
  the hint's queries of the shared scope 77 in 0.72-0.82 s before, 8 in
  0.10 s after; the minimiser 2.0-2.5 s before, 1.7-2.0 s after; the same
  models.)
* A query the solver leaves unknown (a timeout) lowers nothing: the term
  keeps the current model's value.  The model is then still one of the
  constraints, but no longer the smallest (only under timeouts).
* Booleans are ordered false < true; terms of other sorts are left as the
  model has them.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import z3

from model import bv
from model.executor import Query
from model.outcomes import Verdict

REDUCTION_GROWTH = 1.5
"""A new solver of the constraints with the fixed values substituted is
made at a query once there are this many times as many fixed values as
at the last one (module doc)."""


class _Substitution:
    """Terms with ``values`` ((term, value)) substituted and simplified
    (again, while that makes progress: an address made constant is then a
    memory byte that may have a value), each made once while ``values``
    stays as it is (the hint asks the same literals again, one fewer each
    time).  ``values`` may grow (the minimiser's fixed values): what was
    made is then made again, with all of them."""

    def __init__(self, values: list[tuple[z3.ExprRef, z3.ExprRef]]):
        self.values = values
        self._count = 0                  # of values, when _made and _rewrite were made
        self._made: dict[int, tuple[z3.ExprRef, z3.ExprRef]] = {}   # by id: the term (kept: its id is not reused), made
        self._rewrite = bv.substitution([])

    def _current(self) -> dict[int, tuple[z3.ExprRef, z3.ExprRef]]:
        if self._count != len(self.values):
            self._count, self._made, self._rewrite = len(self.values), {}, bv.substitution(self.values)
        return self._made

    def __call__(self, term: z3.ExprRef) -> z3.ExprRef:
        made = self._current()
        key = term.get_id()
        if key not in made:
            made[key] = (term, self._rounds(term))
        return made[key][1]

    def _rounds(self, term: z3.ExprRef) -> z3.ExprRef:
        """``term`` substituted and simplified, again while that changes it
        (at most three rounds)."""
        made = term
        for _ in range(3):
            if not self.values or bv.is_value(made):
                break
            simpler = z3.simplify(self._rewrite(made))
            if simpler.eq(made):
                break
            made = simpler
        return made

    def all(self, terms: Iterable[z3.ExprRef]) -> list[z3.ExprRef]:
        """Each of ``terms`` as :meth:`__call__` makes it; those not made yet
        are made at once, as the arguments of one application (of an
        uninterpreted function of their sorts) substituted and simplified
        while that changes it: the same terms, but one substitution and one
        simplification a round instead of one of each term (the hint asks a
        hundred literals at once; on the fixture forms' check, 0.40 of the
        minimiser's 3.2 profiled seconds went to its literals one by one).
        A term is unchanged by a round once it is made, so the rounds that
        the others take do not change it."""
        terms, made = list(terms), self._current()
        new = list({key: term for term in terms if (key := term.get_id()) not in made}.values())
        if len(new) > 1 and self.values:
            together = self._rounds(bv.apply(z3.Function("made", *[term.sort() for term in new], z3.BoolSort()), new))
            for term, result in zip(new, together.children()):
                made[term.get_id()] = (term, result)
        return [self(term) for term in terms]

    def fresh(self, query: Query, constraints: z3.BoolRef) -> Query:
        """The queries of a new solver (:meth:`Query.fresh`) of ``constraints``
        (the substituted ones of ``query``) and the values, as equalities."""
        return query.fresh((constraints, *(bv.eq(term, value) for term, value in self.values)))


class Minimiser:
    """The smallest model of a solver scope's constraints, term by term
    (module doc): :meth:`lower` fixes terms in the order given, and
    :attr:`model` is always a model of the constraints and the terms fixed
    so far.  ``query``: of the scope that holds the constraints
    (:class:`model.executor.Query`)."""

    def __init__(self, query: Query, model: z3.ModelRef):
        self.model = model
        self._query = query
        self._fixed: list[z3.BoolRef] = []           # the Booleans the queries assume (module doc)
        self._pending: list[tuple[z3.ExprRef, z3.ExprRef]] = []   # values fixed since the last query
        self._values: list[tuple[z3.ExprRef, z3.ExprRef]] = []
        self._seen: set[int] = set()
        self._core_rest: dict[int, list[z3.ExprRef]] = {}    # of one lower(): by distance id (_hint)
        self._core: list[z3.BoolRef] = []           # of the last unsat query: the ones of ``more`` in it
        self._reduced_at = 0                         # values substituted in the query's solver (_reduce)
        self._known = _Substitution(self._values)    # the fixed values'
        self._evaluated: tuple[z3.ModelRef | None, dict[int, tuple]] = (None, {})   # _value's, of one model
        self._ahead: list[tuple[int, z3.ExprRef]] = []   # the distances lower() has yet to look at, by id (_value)

    def lower(self, terms: Iterable[z3.ExprRef], preferred: Mapping[int, int] = {}) -> None:
        """Fix each of ``terms`` (in order) at its smallest value --
        smallest in its distance to its ``preferred`` value (by term id;
        default 0), the exclusive or of the two."""
        distances = []
        for term in terms:
            key = term.get_id()
            if key not in self._seen and (z3.is_bv(term) or z3.is_bool(term)) and not bv.is_value(term):
                self._seen.add(key)
                wanted = preferred.get(key, 0)
                distances.append((term, term ^ wanted if wanted else term, wanted))
        self._core_rest = {}
        ahead = self._ahead = [(distance.get_id(), distance) for _, distance, _ in distances]
        away = [(term, distance) for term, distance, _ in distances if not self._at_smallest(distance)]
        elsewhere = {distance.get_id(): bv.is_value(known)
                     for (_, distance), known in zip(away, self._known.all(term for term, _ in away))}
        if not all(elsewhere.values()):
            self._hint([item for item in distances if not elsewhere.get(item[1].get_id())])
        for index, (term, distance, wanted) in enumerate(distances):
            self._ahead = ahead[index + 1:]
            self._lower(term, distance, wanted)
        self._ahead = []

    def _value(self, term: z3.ExprRef) -> int:
        """``term``'s value in the current model, a number (a Boolean's 0
        or 1: :func:`model.bv.value_in`), each term evaluated once per model
        (a term is looked at again to fix it, and as its own distance) and
        with the distances :meth:`lower` looks at next, in one evaluation
        (:func:`model.bv.values_in`: each costs about the same)."""
        if self._evaluated[0] is not self.model:
            self._evaluated = (self.model, {})
        values = self._evaluated[1]
        key = term.get_id()
        if key not in values:
            asked = [(key, term)] + [(later, distance) for later, distance in self._ahead if later not in values]
            for (asked_key, asked_term), value in zip(asked, bv.values_in(self.model, [t for _, t in asked])):
                values[asked_key] = (asked_term, value)     # term kept: id not reused
        return values[key][1]

    def _current(self, term: z3.ExprRef) -> z3.ExprRef:
        """``term``'s value in the current model, as a constant."""
        value = self._value(term)
        return bv.const(value, bv.width(term)) if z3.is_bv(term) else z3.BoolVal(bool(value))

    def _at_smallest(self, term: z3.ExprRef) -> bool:
        return self._value(term) == 0

    @staticmethod
    def _smallest(term: z3.ExprRef) -> z3.BoolRef:
        return bv.negation(term) if z3.is_bool(term) else bv.eq(term, bv.const(0, bv.width(term)))

    def _try(self, *more: z3.BoolRef) -> bool:
        """Whether the constraints, the fixed values and ``more`` have a
        model (then the current one); ``more`` as assumptions: nothing is
        pushed or popped, so what the solver learns stays."""
        return self._ask(*more) is Verdict.SAT

    def _ask(self, *more: z3.BoolRef) -> Verdict:
        """:meth:`_try`'s answer itself (an unsat one leaves in
        :attr:`_core` those of ``more`` in its unsat core)."""
        if self._pending and len(self._values) >= REDUCTION_GROWTH * self._reduced_at:
            self._reduce()
        if self._pending:
            proxy = z3.FreshBool("fixed")
            self._query.add(z3.Implies(proxy, bv.conjunction([bv.eq(term, value) for term, value in self._pending])))
            self._fixed.append(proxy)
            self._pending = []
        asked = self._known.all(more) if self._reduced_at else list(more)
        return self._answer(self._query, more, asked, self._fixed)

    def _answer(self, query: Query, more: tuple[z3.BoolRef, ...], asked: list[z3.BoolRef],
                assuming: Iterable[z3.BoolRef] = ()) -> Verdict:
        """``query``'s answer with ``assuming`` and ``asked`` (``more`` as
        that solver takes them); a model becomes the current one, and an
        unsat core leaves in :attr:`_core` those of ``more`` it holds."""
        answer, model = query(assuming=(*assuming, *asked))
        if answer is Verdict.SAT:
            self.model = model
        elif answer is Verdict.UNSAT:
            core = {literal.get_id() for literal in query.core}
            self._core = [literal for literal, reduced in zip(more, asked) if reduced.get_id() in core]
        return answer

    def _reduce(self) -> None:
        """Ask from now on a new solver of the constraints with every
        value fixed so far substituted (module doc)."""
        self._query = self._known.fresh(self._query, self._known(z3.And(self._query.constraints())))
        self._fixed, self._pending, self._reduced_at = [], [], len(self._values)

    def _hint(self, distances: list[tuple[z3.ExprRef, z3.ExprRef, int]]) -> None:
        """A model with many of ``distances`` ((term, distance, preferred
        value)) 0, the first ones first (module doc): the terms of a
        preferred value other than 0 pinned at it, if that has such a
        model, else all of them asked."""
        pinned = [item for item in distances if item[2]]
        ask = self._pinned(pinned) if pinned else None
        order = [distance for _, distance, _ in distances]
        if ask is None or not self._drop_cores([d for _, d, wanted in distances if not wanted], ask,
                                               [distance for _, distance, _ in pinned], order):
            self._drop_cores(order, self._ask)

    def _drop_cores(self, distances: list[z3.ExprRef], ask: Callable[..., Verdict],
                    given: tuple[z3.ExprRef, ...] = (), order: tuple[z3.ExprRef, ...] = ()) -> bool:
        """Whether ``ask`` (:meth:`_ask`, or a query of :meth:`_pinned`) has
        a model with every one of ``distances`` 0, or, asked again without
        the last of each unsat core, with all but those (then the current
        model).  Each one left out so is recorded with the rest of its
        core and the ``given`` distances (those ``ask`` holds at 0), for
        :meth:`_above_smallest` -- but only when the given ones come
        before it in the ``order`` of lowering (so are fixed by the time
        it is lowered, as the rest of its core is)."""
        rank = {distance.get_id(): index for index, distance in enumerate(order)}
        wanted = [(self._smallest(d), d) for d in distances]
        while wanted:
            answer = ask(*(literal for literal, _ in wanted))
            if answer is not Verdict.UNSAT:
                return answer is Verdict.SAT
            core = {literal.get_id() for literal in self._core}
            members = [position for position, (literal, _) in enumerate(wanted) if literal.get_id() in core]
            if not members:
                return False                    # a core of the fixed (and given) values alone
            last = wanted.pop(members.pop())[1]
            if all(rank[g.get_id()] < rank[last.get_id()] for g in given):
                self._core_rest[last.get_id()] = [wanted[index][1] for index in members] + list(given)
        return False

    def _pinned(self, pinned: list[tuple[z3.BitVecRef, z3.BitVecRef, int]]) -> Callable[..., Verdict] | None:
        """The queries (as :meth:`_ask` answers them) of a new solver of the
        constraints with the fixed values and each ``pinned`` (term,
        distance, preferred value) at its preferred value substituted
        (None: that is false already)."""
        known = _Substitution(self._values + [(term, z3.BitVecVal(wanted, term.size())) for term, _, wanted in pinned])
        constraints = known(z3.And(self._query.constraints()))
        if z3.is_false(constraints):
            return None
        query = known.fresh(self._query, constraints)
        return lambda *more: self._answer(query, more, known.all(more))

    def _above_smallest(self, distance: z3.ExprRef) -> bool:
        """Whether a core of the hint shows ``distance`` cannot be 0: the
        rest of that core (the fixed values then, which still are, and
        distances before it, fixed by now) is all at its smallest."""
        rest = self._core_rest.get(distance.get_id())
        return rest is not None and all(self._at_smallest(d) for d in rest)

    def _fix(self, term: z3.ExprRef, value: z3.ExprRef) -> None:
        self._pending.append((term, value))
        self._values.append((term, value))

    def _lower(self, term: z3.ExprRef, distance: z3.ExprRef, wanted: int) -> None:
        """Fix ``term`` where its ``distance`` to the ``wanted`` value is smallest."""
        if self._at_smallest(distance):
            self._fix(term, self._current(term))
            return
        known = self._known(term)
        if bv.is_value(known):
            self._fix(term, known)
        elif z3.is_bool(term):
            self._fix(term, z3.BoolVal(self._above_smallest(distance) or not self._try(self._smallest(term))))
        elif self._at_most_one(distance):
            self._fix(term, self._current(term))
        elif self._try(z3.ULT(distance, self._current(distance))):
            self._fix(term, z3.BitVecVal(self._lowest_bits(distance) ^ wanted, term.size()))
        else:
            self._fix(term, self._current(term))

    def _at_most_one(self, distance: z3.BitVecRef) -> bool:
        """Whether ``distance`` can be 0 or 1; if so, the model then has the
        smaller of the two."""
        if self._value(distance) != 1 and not self._try(z3.ULE(distance, 1)):
            return False
        if self._value(distance) == 1 and not self._above_smallest(distance):
            self._try(distance == 0)
        return True

    def _lowest_bits(self, term: z3.BitVecRef) -> int:
        """The smallest value of ``term``: its length first (the fewest
        bits that hold it, the number of bits doubled until it fits), then
        bitwise, most significant first, each bit 0 where the bits above
        allow it."""
        width, length = term.size(), 2          # under 2: _at_most_one asked that first
        while length < width and self._value(term) >> length and not self._try(
                z3.ULT(term, z3.BitVecVal(1 << length, width))):
            length *= 2
        high = 0
        for bit in reversed(range(width)):
            high <<= 1
            if self._value(term) >> bit & 1 and not self._try(
                    z3.Extract(width - 1, bit, term) == z3.BitVecVal(high, width - bit)):
                high |= 1
        return high
