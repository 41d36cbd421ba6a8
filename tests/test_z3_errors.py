"""Z3's errors, reported through its error handler (model.bv): each raises
from the API call that made it, with Z3's message, and leaves nothing
behind for the next call."""
from __future__ import annotations

import pytest
import z3
import z3.z3core as core

import model.bv  # noqa: F401  (installs the handler)


def _mismatched_add(context: z3.Context):
    """bvadd of an 8-bit and a 16-bit term, made through the C API itself
    (z3py's operators would not reach Z3 with it)."""
    left, right = z3.BitVec("a", 8, ctx=context), z3.BitVec("b", 16, ctx=context)
    return core.Z3_mk_bvadd(context.ref(), left.as_ast(), right.as_ast())


def test_an_error_raises_from_the_call_that_made_it():
    with pytest.raises(z3.Z3Exception, match="does not match declaration"):
        _mismatched_add(z3.main_ctx())


def test_nothing_is_left_for_the_next_call():
    with pytest.raises(z3.Z3Exception):
        _mismatched_add(z3.main_ctx())
    x = z3.BitVec("x", 8)
    assert z3.simplify(x + 1 - 1).eq(x)
    solver = z3.Solver()
    solver.add(x == 3)
    assert solver.check() == z3.sat and solver.model()[x].as_long() == 3


def test_a_context_made_later_reports_its_errors_too():
    with pytest.raises(z3.Z3Exception, match="does not match declaration"):
        _mismatched_add(z3.Context())


def test_an_error_in_a_solver_call_raises():
    with pytest.raises(z3.Z3Exception, match="unknown constant x"):
        z3.Solver().from_string("(assert (= x 1))")
