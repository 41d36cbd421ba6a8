"""model/memory.py against Z3's own array semantics.

Random chains of stores (two region bases, constant addresses, addresses
that are no place at all, every width, partial overlaps, merges) are
loaded from at random addresses; each load's answer must have the value
of the ``Select`` of the fully built array under random bindings chosen to
alias often (keeping the regions apart; with no regions, under any
binding), and a few are proved equal by Z3.
"""
from __future__ import annotations

import random

import pytest
import z3

from model import bv
from model.memory import Memory, place, select_bytes
from model.zeval import Evaluator

A, B, C = (bv.variable(name, 64) for name in ("mem_test_a", "mem_test_b", "mem_test_c"))
REGIONS = ((A, -64, 8), (B, 0, 64))
APART = z3.And(bv.ule(bv.const(0x1000, 64), A), bv.ule(A, bv.const(2**64 - 0x1000, 64)),
               bv.ule(B, bv.const(2**64 - 0x1000, 64)),
               z3.Or(bv.ule(B + bv.const(64, 64), A - bv.const(64, 64)), bv.ule(A + bv.const(8, 64), B)))


WIDTHS: dict[str, int | None] = {}
"""The stored values' widths and the merge conditions (None), by name."""


def agree(memory: Memory, loads: list[tuple[z3.BitVecRef, int]], rng: random.Random, apart: bool) -> None:
    """Each load's answer and the built array's ``Select`` have one value
    under 300 random bindings that alias often (and keep the regions
    apart when ``apart``)."""
    terms = []
    for address, size in loads:
        terms += [memory.load(address, size), select_bytes(memory.array, address, size)]
    evaluator = Evaluator(terms)
    for _ in range(300):
        a = rng.randrange(0x2000, 0x2100)
        b = a + 8 + rng.randrange(0, 24) if rng.random() < 0.5 else a - 128 - rng.randrange(0, 24)
        if not apart:
            b = a + rng.randrange(-80, 16)
        near = rng.choice([a, b, 0x100])
        bindings = {"mem_test_a": a, "mem_test_b": b,
                    "mem_test_c": (near + rng.randrange(-80, 80)) % 2**64 ^ 0x30,
                    "mem_test_m": lambda address: (address * 0x9E3779B1 >> 7) & 0xFF}
        for name in evaluator.constants:
            if name not in bindings:
                width = WIDTHS[name]
                bindings[name] = rng.random() < 0.5 if width is None else rng.getrandbits(width)
        values = evaluator(bindings)
        for position in range(0, len(values), 2):
            assert values[position] == values[position + 1], (loads[position // 2], bindings)


def random_address(rng: random.Random) -> z3.BitVecRef:
    kind = rng.choice(["a", "a", "b", "b", "alias", "constant", "unknown"])
    if kind == "a":
        return A + bv.const(rng.randrange(-72, 16), 64)
    if kind == "b":
        return B + bv.const(rng.randrange(-8, 72), 64)
    if kind == "alias":     # a B address in a form that is no place
        return (B ^ bv.const(0, 64)) + bv.const(rng.randrange(0, 16), 64)
    if kind == "constant":
        return bv.const(rng.randrange(0x100, 0x140), 64)
    return (C ^ bv.const(0x30, 64)) + bv.const(rng.randrange(0, 16), 64)


def random_memory(rng: random.Random, depth: int, serial: list[int]) -> Memory:
    memory = Memory.of_array(z3.Array("mem_test_m", z3.BitVecSort(64), z3.BitVecSort(8)), REGIONS)
    for _ in range(rng.randrange(1, 7)):
        size = rng.choice([1, 2, 4, 8])
        serial[0] += 1
        value = bv.variable(f"mem_test_v{serial[0]}", 8 * size)
        WIDTHS[str(value)] = 8 * size
        memory = memory.store(random_address(rng), value)
        if depth and rng.random() < 0.2:
            serial[0] += 1
            other = random_memory(rng, depth - 1, serial)
            memory = memory.merged(z3.Bool(f"mem_test_c{serial[0]}"), other)
            WIDTHS[f"mem_test_c{serial[0]}"] = None
    return memory


@pytest.mark.parametrize("seed", range(60))
def test_loads_equal_the_arrays_select_under_the_regions(seed):
    rng = random.Random(seed)
    memory = random_memory(rng, 2, [seed * 1000])
    loads = [(random_address(rng), rng.choice([1, 2, 4, 8])) for _ in range(8)]
    agree(memory, loads, rng, apart=True)


@pytest.mark.parametrize("seed", range(30))
def test_without_regions_loads_equal_the_arrays_select_always(seed):
    rng = random.Random(1000 + seed)
    memory = random_memory(rng, 1, [seed * 1000 + 500]).substituted(lambda term: term, ())
    loads = [(random_address(rng), rng.choice([1, 2, 4, 8])) for _ in range(8)]
    agree(memory, loads, rng, apart=False)


def test_a_load_is_proved_equal_to_the_select():
    rng = random.Random(2)      # a chain Z3 proves in about a second (others take up to 20 s)
    memory = random_memory(rng, 0, [90200])
    for _ in range(3):
        address, size = random_address(rng), rng.choice([1, 2, 4, 8])
        solver = z3.Solver()
        solver.add(APART, memory.load(address, size) != select_bytes(memory.array, address, size))
        assert solver.check() == z3.unsat


def test_a_pop_reads_back_the_pushed_term_itself():
    rbx = bv.variable("mem_test_rbx", 64)
    memory = Memory.of_array(z3.Array("mem_test_m", z3.BitVecSort(64), z3.BitVecSort(8)), REGIONS)
    memory = memory.store(A - bv.const(8, 64), rbx).store(B + bv.const(16, 64), bv.variable("x", 64))
    assert memory.load(A + bv.const(-16, 64) + bv.const(8, 64), 8).eq(rbx)
    assert memory.load(A - bv.const(8, 64), 4).eq(bv.extract(31, 0, rbx))


def test_a_load_no_store_can_reach_reads_the_bottom_array_once():
    bottom = Memory.of_array(z3.Array("mem_test_m", z3.BitVecSort(64), z3.BitVecSort(8)), REGIONS)
    memory = bottom.store(A - bv.const(8, 64), bv.variable("y", 64))
    first, second = memory.load(B + bv.const(8, 64), 8), memory.load(B + bv.const(8, 64), 8)
    assert first.eq(second)
    assert not any(z3.is_store(node) for node in _nodes(first))


def test_places():
    assert place(A + bv.const(8, 64) - bv.const(24, 64)).signed_offset == -16
    assert place(bv.const(8, 64) + A).base.eq(A)
    assert place(A + B) is None and place(C ^ bv.const(0x30, 64)) is None


def _nodes(term: z3.ExprRef):
    yield term
    for child in term.children():
        yield from _nodes(child)


def test_an_exclusive_frame_is_passed_by_accesses_at_any_other_base():
    # A store through C (a pointer argument) or at a constant address, then
    # a load from the frame (region 0, base A): with an exclusive frame the
    # load reads what lay below the stores; without one it may alias them.
    for exclusive in (True, False):
        memory = Memory.of_array(z3.Array(f"mem_test_frame_{exclusive}", z3.BitVecSort(64), z3.BitVecSort(8)),
                                 REGIONS, exclusive)
        below = memory.load(A - bv.const(8, 64), 8)
        stored = memory.store(C + bv.const(0x38, 64), bv.const(7, 64)).store(bv.const(0x5000, 64),
                                                                              bv.const(9, 64))
        loaded = stored.load(A - bv.const(8, 64), 8)
        assert loaded.eq(below) == exclusive
        # Accesses at other bases still meet each other: only the frame is apart.
        assert z3.is_app_of(stored.load(C + bv.const(0x38, 64), 8), z3.Z3_OP_CONCAT)
