"""The minimiser (:mod:`proofs.canonical`) against brute force: on random
constraints over a few 4-bit terms and a Boolean, from random starting
models, its model is the lexicographically smallest one in the order the
terms are lowered (each term's distance to its preferred value, false
before true) -- whatever shortcut it took (the hint's cores, terms the
fixed values determine, the at-most-1 query); and the fixed values'
substitution makes a bundle of terms what it makes each of them."""
from __future__ import annotations

import itertools

import z3
from hypothesis import HealthCheck, given, settings, strategies as st

from model.executor import Solver
from model.outcomes import Verdict
from proofs.canonical import Minimiser, _Substitution

A, B, C = z3.BitVecs("minimised_a minimised_b minimised_c", 4)
P = z3.Bool("minimised_p")
VARIABLES = (A, B, C)
XOR = A ^ B
"""A term of others: determined once they are fixed."""


def _atom(draw) -> tuple[z3.BoolRef, object]:
    """One constraint, as a Z3 formula and as a function of (a, b, c, p)."""
    i, j = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    k = draw(st.integers(0, 15))
    kind = draw(st.sampled_from(["sum", "above", "below", "xor", "differs", "implies", "equal_p", "not_both",
                                       "product"]))
    x, y = VARIABLES[i], VARIABLES[j]
    if kind == "sum":
        mask = draw(st.integers(1, 15))
        return (x + y) & mask == k & mask, lambda v, p: (v[i] + v[j]) & mask == k & mask
    if kind == "above":
        return z3.UGT(x, k), lambda v, p: v[i] > k
    if kind == "below":
        return z3.ULT(x, max(k, 1)), lambda v, p: v[i] < max(k, 1)
    if kind == "xor":
        return x ^ y != k, lambda v, p: v[i] ^ v[j] != k
    if kind == "differs":
        return x != y, lambda v, p: v[i] != v[j]
    if kind == "implies":
        return z3.Implies(P, x == k), lambda v, p: not p or v[i] == k
    if kind == "not_both":
        other = draw(st.integers(0, 15))
        return z3.Or(x != k, y != other), lambda v, p: v[i] != k or v[j] != other
    if kind == "product":
        return x * y + x != k, lambda v, p: (v[i] * v[j] + v[i]) % 16 != k
    return P == z3.UGT(x, y), lambda v, p: p == (v[i] > v[j])


@st.composite
def problems(draw):
    atoms = [_atom(draw) for _ in range(draw(st.integers(1, 5)))]
    preferred = {t.get_id(): draw(st.integers(0, 15)) for t in (A, B, C, XOR) if draw(st.booleans())}
    order = draw(st.permutations([A, B, C, XOR, P]))
    split = draw(st.integers(0, len(order)))
    start = draw(st.integers(0, 15))
    return atoms, preferred, order[:split], order[split:], start


def _distance(term, values, preferred) -> int:
    a, b, c, p = values
    if term is P:
        return int(p)
    value = {A.get_id(): a, B.get_id(): b, C.get_id(): c, XOR.get_id(): a ^ b}[term.get_id()]
    return value ^ preferred.get(term.get_id(), 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_the_model_is_the_lexicographically_smallest(problem):
    atoms, preferred, first, second, start = problem
    models = [(a, b, c, p) for a, b, c in itertools.product(range(16), repeat=3) for p in (False, True)
              if all(holds((a, b, c), p) for _, holds in atoms)]
    solver = Solver(10.0, tuple(formula for formula, _ in atoms))
    with solver.scope(()) as query:
        answer, model = query(A == start)
        if answer is not Verdict.SAT:
            answer, model = query()
        assert (answer is Verdict.SAT) == bool(models)
        if not models:
            return
        minimiser = Minimiser(query, model)
        minimiser.lower(first, preferred)
        minimiser.lower(second, preferred)
    order = [*first, *second]
    smallest = min(models, key=lambda values: [_distance(t, values, preferred) for t in order])
    found = [_distance(t, (*(minimiser.model.eval(v, model_completion=True).as_long() for v in VARIABLES),
                           z3.is_true(minimiser.model.eval(P, model_completion=True))), preferred)
             for t in order]
    assert found == [_distance(t, smallest, preferred) for t in order]


def test_a_term_left_out_of_the_hint_may_still_be_at_its_preferred_value():
    """a = 0 and c != a make c nonzero, p is c > b, and c prefers 2.  The
    hint may leave c out of a core with b = 0 and p false (p false needs
    c <= b).  But p cannot stay false (b is 0 and c is not), so the
    rest of that core is not all at its smallest, and c can still be 2:
    the at-most-1 step must ask, not take the core's word."""
    solver = Solver(10.0, (P == z3.UGT(C, B), z3.ULT(A, 1), A ^ C != 0))
    with solver.scope(()) as query:
        answer, model = query(A == 0)
        assert answer is Verdict.SAT
        minimiser = Minimiser(query, model)
        minimiser.lower([A, B, XOR, P, C], {C.get_id(): 2})
    assert [minimiser.model.eval(t, model_completion=True) for t in (A, B, XOR, P, C)] == [0, 0, 0, True, 2]


def test_terms_substituted_at_once_are_what_each_substituted_alone_is():
    memory = z3.Array("minimised_memory", z3.BitVecSort(4), z3.BitVecSort(4))
    values = [(A, z3.BitVecVal(3, 4)), (z3.Select(memory, z3.BitVecVal(5, 4)), z3.BitVecVal(9, 4))]
    terms = [A + B, z3.Select(memory, A + 2) == C, z3.Not(P), B, A == 3, A + B]   # the second needs two rounds
    together = _Substitution(values).all(terms)
    alone = [_Substitution(values)(term) for term in terms]
    assert all(a.eq(b) for a, b in zip(together, alone))
    assert [str(t) for t in together] == ["3 + minimised_b", "minimised_c == 9", "Not(minimised_p)",
                                          "minimised_b", "True", "3 + minimised_b"]
