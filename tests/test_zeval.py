"""The compiled term evaluator (model.zeval) against z3.simplify on random terms."""
from __future__ import annotations

import random

import pytest
import z3

from model.zeval import Evaluator, UnboundName, UnsupportedTerm

WIDTHS = (1, 8, 16, 64)
VARIABLES = {width: [z3.BitVec(f"v{width}_{i}", width) for i in range(3)] for width in WIDTHS}
BOOLEANS = [z3.Bool("p"), z3.Bool("q")]
MEMORY = z3.Array("m", z3.BitVecSort(16), z3.BitVecSort(8))
MODULE = z3.Function("module", z3.BitVecSort(8), z3.BitVecSort(16), z3.BitVecSort(64))


def edge_or_random(rng: random.Random, width: int) -> int:
    """Random bits, the edges, or a small number (shift and rotate amounts)."""
    small = rng.randrange(width + 2) % (1 << width)
    return rng.choice([0, 1, (1 << width) - 1, 1 << (width - 1), rng.getrandbits(width), small])


def bitvector(rng: random.Random, width: int, depth: int) -> z3.BitVecRef:
    """A random term of ``width`` bits over every kind the executor builds."""
    if depth == 0 or rng.random() < 0.2:
        variables = VARIABLES.get(width) or [z3.Extract(width - 1, 0, v) for v in VARIABLES[64]]
        return rng.choice(variables + [z3.BitVecVal(edge_or_random(rng, width), width)])
    sub = lambda w=width: bitvector(rng, w, depth - 1)
    choices = [
        lambda: sub() + sub(), lambda: sub() - sub(), lambda: sub() * sub(), lambda: -sub(), lambda: ~sub(),
        lambda: sub() & sub(), lambda: sub() | sub(), lambda: sub() ^ sub(),
        lambda: sub() << sub(), lambda: z3.LShR(sub(), sub()), lambda: sub() >> sub(),
        lambda: z3.UDiv(sub(), sub()), lambda: z3.URem(sub(), sub()),
        lambda: z3.RotateLeft(sub(), sub()), lambda: z3.RotateRight(sub(), sub()),
        lambda: z3.If(boolean(rng, depth - 1), sub(), sub()),
    ]
    if width > 1:
        split = rng.randrange(1, width)
        choices += [lambda: z3.Concat(bitvector(rng, width - split, depth - 1), bitvector(rng, split, depth - 1)),
                    lambda: z3.ZeroExt(width - 8, sub(8)) if width > 8 else z3.Extract(width - 1, 0, sub(64)),
                    lambda: z3.SignExt(width - 1, sub(1))]
    choices.append(lambda: z3.Extract(width - 1, 0, z3.RotateLeft(sub(64), rng.randrange(70))) if width < 64
                   else z3.ZeroExt(48, z3.Extract(23, 8, sub(64))))
    if width == 8:
        choices.append(lambda: z3.Select(array(rng, depth - 1), sub(16)))
    if width == 64:
        choices.append(lambda: MODULE(sub(8), sub(16)))
    return rng.choice(choices)()


def array(rng: random.Random, depth: int) -> z3.ArrayRef:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice([MEMORY, z3.K(z3.BitVecSort(16), z3.BitVecVal(rng.getrandbits(8), 8))])
    if rng.random() < 0.2:
        return z3.If(boolean(rng, depth - 1), array(rng, depth - 1), array(rng, depth - 1))
    return z3.Store(array(rng, depth - 1), bitvector(rng, 16, depth - 1), bitvector(rng, 8, depth - 1))


def boolean(rng: random.Random, depth: int) -> z3.BoolRef:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(BOOLEANS + [z3.BoolVal(rng.random() < 0.5)])
    width = rng.choice(WIDTHS)
    sub = lambda: bitvector(rng, width, depth - 1)
    cond = lambda: boolean(rng, depth - 1)
    return rng.choice([
        lambda: sub() == sub(), lambda: z3.Distinct(sub(), sub(), sub()),
        lambda: z3.ULT(sub(), sub()), lambda: z3.ULE(sub(), sub()), lambda: z3.UGT(sub(), sub()),
        lambda: z3.UGE(sub(), sub()), lambda: sub() < sub(), lambda: sub() <= sub(),
        lambda: sub() > sub(), lambda: sub() >= sub(),
        lambda: z3.And(cond(), cond(), cond()), lambda: z3.Or(cond(), cond()), lambda: z3.Not(cond()),
        lambda: z3.Xor(cond(), cond()), lambda: z3.Implies(cond(), cond()), lambda: z3.If(cond(), cond(), cond()),
    ])()


def random_bindings(rng: random.Random):
    """Values for every variable (as z3 substitution pairs and as bindings)
    and the module's interpretation (a fixed arithmetic mix of its inputs)."""
    values = {str(v): edge_or_random(rng, width) for width, vs in VARIABLES.items() for v in vs}
    values.update({str(p): rng.random() < 0.5 for p in BOOLEANS})
    fill, written = rng.getrandbits(8), {rng.getrandbits(16): rng.getrandbits(8) for _ in range(4)}
    pairs = [(v, z3.BitVecVal(values[str(v)], width)) for width, vs in VARIABLES.items() for v in vs]
    pairs += [(p, z3.BoolVal(values[str(p)])) for p in BOOLEANS]
    memory = z3.K(z3.BitVecSort(16), z3.BitVecVal(fill, 8))
    for address, byte in written.items():
        memory = z3.Store(memory, z3.BitVecVal(address, 16), z3.BitVecVal(byte, 8))
    pairs.append((MEMORY, memory))
    values["m"] = lambda address: written.get(address, fill)
    functions = {"module": lambda x, y: None if x is None or y is None else module_law(x, y)}
    law = (z3.ZeroExt(56, z3.Var(0, z3.BitVecSort(8))) * 0x9E3779B97F4A7C15
           + z3.ZeroExt(48, z3.Var(1, z3.BitVecSort(16))) + 7)
    return values, pairs, functions, (MODULE, law)


def module_law(x: int, y: int) -> int:
    return (x * 0x9E3779B97F4A7C15 + y + 7) % (1 << 64)


def z3_value(term, pairs, interpretation):
    simple = z3.simplify(z3.substitute_funs(z3.substitute(term, *pairs), interpretation))
    if z3.is_bv_value(simple):
        return simple.as_long()
    assert z3.is_true(simple) or z3.is_false(simple), simple
    return z3.is_true(simple)


@pytest.mark.parametrize("seed", range(6))
def test_random_terms_evaluate_as_z3_simplify_does(seed):
    rng = random.Random(seed)
    terms = [bitvector(rng, rng.choice(WIDTHS), 4) for _ in range(40)] + [boolean(rng, 4) for _ in range(20)]
    evaluator = Evaluator(terms)   # one DAG for all of them
    for _ in range(3):
        values, pairs, functions, interpretation = random_bindings(rng)
        fast = evaluator(values, functions)
        assert fast == [z3_value(term, pairs, interpretation) for term in terms]


@pytest.mark.parametrize("seed", range(3))
def test_a_known_value_does_not_depend_on_the_unknown_ones(seed):
    """Unknown (None) inputs: every known result is the value for all of
    their values, and at least some results are known."""
    rng = random.Random(100 + seed)
    terms = [bitvector(rng, rng.choice(WIDTHS), 4) for _ in range(40)] + [boolean(rng, 4) for _ in range(20)]
    evaluator = Evaluator(terms)
    values, pairs, functions, interpretation = random_bindings(rng)
    unknown = {"v8_0", "v64_1", "p"}
    partial = evaluator({name: None if name in unknown else value for name, value in values.items()}, functions)
    assert any(value is not None for value in partial)
    assert any(value is None for value in partial)
    for _ in range(3):   # other values for the unknowns
        values, pairs_again, _, _ = random_bindings(rng)
        keep = [(v, c) for v, c in pairs if str(v) not in unknown] + \
               [(v, c) for v, c in pairs_again if str(v) in unknown]
        for term, value in zip(terms, partial):
            if value is not None:
                assert value == z3_value(term, keep, interpretation), term


def test_folded_constants_and_sharing():
    x = z3.BitVec("x", 64)
    address = z3.BitVecVal(0x1000, 64) + 8   # folded when built
    evaluator = Evaluator([z3.Select(z3.Store(z3.Array("mem", z3.BitVecSort(64), z3.BitVecSort(8)),
                                              address, z3.Extract(7, 0, x)), z3.BitVecVal(0x1008, 64)), x + x])
    assert evaluator.constants == {"mem", "x"}
    assert evaluator({"mem": lambda a: 0, "x": 0x1FF}) == [0xFF, 0x3FE]


def test_what_it_does_not_know_raises():
    x, y = z3.BitVecs("x y", 8)
    a, b = (z3.Array(name, z3.BitVecSort(8), z3.BitVecSort(8)) for name in "ab")
    for term in [x / y, z3.SRem(x, y), z3.Int("n") + 1, a == b]:
        with pytest.raises(UnsupportedTerm):
            Evaluator([term])
    with pytest.raises(UnboundName, match="y"):
        Evaluator([x + y])({"x": 1})
    with pytest.raises(UnboundName, match="module"):
        Evaluator([MODULE(x, z3.ZeroExt(8, y))])({"x": 1, "y": 2})
