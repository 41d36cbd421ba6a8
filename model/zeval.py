"""Concrete evaluation of Z3 terms without the solver.

Co-simulation and replay ask the same question many times: given concrete
values for a path's entry constants (registers, flags, the entry memory) and
for the module's uninterpreted functions, what are the values of the path's
terms?  Substituting and calling ``z3.simplify`` answers it, but costs
milliseconds per term per case.  :class:`Evaluator` walks the terms' DAG
once, turning every node into a small Python function (memoised per node,
constant subterms folded), and then evaluates the whole list for each set
of bindings in pure Python.  Decisions:

* **Values.**  A bit-vector is an ``int`` in ``[0, 2**width)``, a Boolean a
  ``bool``, an array a :class:`Memory` (a function for the untouched
  indices plus the written ones).  ``None`` is *unknown*: the value of a
  constant the caller binds to ``None`` (e.g. a value the SDM leaves
  undefined).  Unknown propagates through every operator, except where the
  known operands alone decide the result: ``ite`` with a known condition (or
  equal branches), ``and``/``or`` with a false/true operand, ``implies``
  with a false premise or true conclusion.  So a known result never depends
  on what the unknowns are; an unknown result may be conservative (bits an
  ``extract`` would drop still make it unknown).
* **Bindings are explicit.**  Every free constant must be bound by name
  (:attr:`Evaluator.constants` lists them) and every uninterpreted function
  by name to a Python callable of the argument values
  (:attr:`Evaluator.functions`); a missing one raises :class:`UnboundName`.
  An array constant is bound to a callable from index to element value.
* **Exactly Z3's semantics, nothing guessed.**  The supported node kinds
  are listed below with one builder each (``@builds``); any other kind or
  sort -- signed division, reals, quantifiers, array equality ... -- raises
  :class:`UnsupportedTerm` when the evaluator is built, never at a case.
  Z3's total definitions apply: shifts by the width or more give 0 (or the
  sign for ``bvashr``), ``bvudiv`` by 0 gives all ones, ``bvurem`` by 0 the
  dividend.

>>> x, y = z3.BitVecs("x y", 8)
>>> ev = Evaluator([x + y, z3.ULT(x, y), z3.Extract(7, 4, x) == 0xF])
>>> sorted(ev.constants)
['x', 'y']
>>> ev({"x": 0xF0, "y": 0x20})
[16, False, True]
>>> ev({"x": 0xF0, "y": None})
[None, None, True]
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import z3

from model.registry import Registry

Node = Callable[[list], object]
"""A compiled node: reads its operands' values from the slot list."""


class UnsupportedTerm(ValueError):
    """A term kind or sort the evaluator does not implement."""


class UnboundName(KeyError):
    """A free constant or uninterpreted function without a binding."""


class Memory:
    """An array value: ``base`` answers for the indices never written.

    >>> m = Memory(lambda index: 0xA5).store(8, 1)
    >>> m.select(8), m.select(9)
    (1, 165)
    """

    __slots__ = ("base", "written")

    def __init__(self, base: Callable[[int], object], written: Mapping[int, object] | None = None):
        self.base = base
        self.written = dict(written or {})

    def select(self, index: int):
        written = self.written
        return written[index] if index in written else self.base(index)

    def store(self, index: int, value) -> "Memory":
        return Memory(self.base, {**self.written, index: value})


Builder = Callable[[z3.ExprRef, tuple[int, ...]], Node]
_BUILDERS = Registry("builders of compiled nodes")
builds = _BUILDERS.register
"""``@builds(kind, ...)``: the decorated function builds the compiled node of Z3 decl ``kinds``."""


def _mask(term: z3.ExprRef) -> int:
    return (1 << term.size()) - 1


def _signed(value: int, width: int) -> int:
    """``value`` read as two's complement.

    >>> _signed(0xFF, 8), _signed(0x7F, 8)
    (-1, 127)
    """
    return value - (1 << width) if value >> (width - 1) else value


def _strict(slots: tuple[int, ...], combine: Callable[..., object]) -> Node:
    """A node unknown as soon as one operand is unknown."""
    if len(slots) == 1:
        (a,) = slots

        def unary(v):
            x = v[a]
            return None if x is None else combine(x)
        return unary
    if len(slots) == 2:
        a, b = slots

        def binary(v):
            x, y = v[a], v[b]
            return None if x is None or y is None else combine(x, y)
        return binary

    def nary(v):
        values = [v[slot] for slot in slots]
        return None if None in values else combine(*values)
    return nary


def _folded(slots: tuple[int, ...], step: Callable[[object, object], object], finish: Callable) -> Node:
    """An associative n-ary operator (``bvadd``, ``concat`` ...)."""
    def combine(*values):
        result = values[0]
        for value in values[1:]:
            result = step(result, value)
        return finish(result)
    return _strict(slots, combine)


@builds(z3.Z3_OP_BADD)
def _bvadd(term, slots):
    mask = _mask(term)
    return _folded(slots, lambda x, y: x + y, lambda r: r & mask)


@builds(z3.Z3_OP_BSUB)
def _bvsub(term, slots):
    mask = _mask(term)
    return _folded(slots, lambda x, y: x - y, lambda r: r & mask)


@builds(z3.Z3_OP_BMUL)
def _bvmul(term, slots):
    mask = _mask(term)
    return _folded(slots, lambda x, y: x * y, lambda r: r & mask)


@builds(z3.Z3_OP_BAND)
def _bvand(term, slots):
    return _folded(slots, lambda x, y: x & y, lambda r: r)


@builds(z3.Z3_OP_BOR)
def _bvor(term, slots):
    return _folded(slots, lambda x, y: x | y, lambda r: r)


@builds(z3.Z3_OP_BXOR)
def _bvxor(term, slots):
    return _folded(slots, lambda x, y: x ^ y, lambda r: r)


@builds(z3.Z3_OP_BNEG)
def _bvneg(term, slots):
    mask = _mask(term)
    return _strict(slots, lambda x: -x & mask)


@builds(z3.Z3_OP_BNOT)
def _bvnot(term, slots):
    mask = _mask(term)
    return _strict(slots, lambda x: x ^ mask)


@builds(z3.Z3_OP_BSHL)
def _bvshl(term, slots):
    width, mask = term.size(), _mask(term)
    return _strict(slots, lambda x, n: (x << n) & mask if n < width else 0)


@builds(z3.Z3_OP_BLSHR)
def _bvlshr(term, slots):
    width = term.size()
    return _strict(slots, lambda x, n: x >> n if n < width else 0)


@builds(z3.Z3_OP_BASHR)
def _bvashr(term, slots):
    width, mask = term.size(), _mask(term)
    return _strict(slots, lambda x, n: (_signed(x, width) >> min(n, width - 1)) & mask)


@builds(z3.Z3_OP_BUDIV)
def _bvudiv(term, slots):
    mask = _mask(term)
    return _strict(slots, lambda x, y: x // y if y else mask)


@builds(z3.Z3_OP_BUREM)
def _bvurem(term, slots):
    return _strict(slots, lambda x, y: x % y if y else x)


def _rotate_left(x: int, n: int, width: int) -> int:
    """``x`` rotated left by ``n`` modulo ``width``.

    >>> hex(_rotate_left(0x81, 9, 8))
    '0x3'
    """
    n %= width
    return ((x << n) | (x >> (width - n))) & ((1 << width) - 1)


@builds(z3.Z3_OP_EXT_ROTATE_LEFT)
def _ext_rotate_left(term, slots):
    width = term.size()
    return _strict(slots, lambda x, n: _rotate_left(x, n, width))


@builds(z3.Z3_OP_EXT_ROTATE_RIGHT)
def _ext_rotate_right(term, slots):
    width = term.size()
    return _strict(slots, lambda x, n: _rotate_left(x, width - n % width, width))


@builds(z3.Z3_OP_ROTATE_LEFT)
def _rotate_left_by(term, slots):
    width, (n,) = term.size(), term.decl().params()
    return _strict(slots, lambda x: _rotate_left(x, n, width))


@builds(z3.Z3_OP_ROTATE_RIGHT)
def _rotate_right_by(term, slots):
    width, (n,) = term.size(), term.decl().params()
    return _strict(slots, lambda x: _rotate_left(x, width - n % width, width))


@builds(z3.Z3_OP_EXTRACT)
def _extract(term, slots):
    high, low = term.decl().params()
    mask = (1 << (high - low + 1)) - 1
    return _strict(slots, lambda x: (x >> low) & mask)


@builds(z3.Z3_OP_CONCAT)
def _concat(term, slots):
    widths = [term.arg(i).size() for i in range(term.num_args())]

    def combine(*values):
        result = 0
        for value, width in zip(values, widths):
            result = (result << width) | value
        return result
    return _strict(slots, combine)


@builds(z3.Z3_OP_ZERO_EXT)
def _zero_extend(term, slots):
    return _strict(slots, lambda x: x)


@builds(z3.Z3_OP_SIGN_EXT)
def _sign_extend(term, slots):
    width = term.arg(0).size()
    fill = _mask(term) ^ ((1 << width) - 1)
    return _strict(slots, lambda x: x | fill if x >> (width - 1) else x)


def _comparison(compare: Callable[[int, int], bool], signed: bool) -> Builder:
    def build(term, slots):
        width = term.arg(0).size()
        if signed:
            return _strict(slots, lambda x, y: compare(_signed(x, width), _signed(y, width)))
        return _strict(slots, compare)
    return build


for _kind, _compare, _signed_order in [
        (z3.Z3_OP_ULT, lambda x, y: x < y, False), (z3.Z3_OP_ULEQ, lambda x, y: x <= y, False),
        (z3.Z3_OP_UGT, lambda x, y: x > y, False), (z3.Z3_OP_UGEQ, lambda x, y: x >= y, False),
        (z3.Z3_OP_SLT, lambda x, y: x < y, True), (z3.Z3_OP_SLEQ, lambda x, y: x <= y, True),
        (z3.Z3_OP_SGT, lambda x, y: x > y, True), (z3.Z3_OP_SGEQ, lambda x, y: x >= y, True)]:
    builds(_kind)(_comparison(_compare, _signed_order))


@builds(z3.Z3_OP_EQ)
def _equal(term, slots):
    if z3.is_array(term.arg(0)):
        raise UnsupportedTerm(f"equality of arrays: {term.sexpr()[:200]}")
    return _strict(slots, lambda x, y: x == y)


@builds(z3.Z3_OP_DISTINCT)
def _distinct(term, slots):
    if z3.is_array(term.arg(0)):
        raise UnsupportedTerm(f"distinctness of arrays: {term.sexpr()[:200]}")
    return _strict(slots, lambda *values: len(set(values)) == len(values))


@builds(z3.Z3_OP_NOT)
def _not(term, slots):
    return _strict(slots, lambda x: not x)


@builds(z3.Z3_OP_XOR)
def _xor(term, slots):
    return _folded(slots, lambda x, y: x != y, lambda r: r)


@builds(z3.Z3_OP_AND)
def _and(term, slots):
    def conjunction(v):
        values = [v[slot] for slot in slots]
        return False if False in values else None if None in values else True
    return conjunction


@builds(z3.Z3_OP_OR)
def _or(term, slots):
    def disjunction(v):
        values = [v[slot] for slot in slots]
        return True if True in values else None if None in values else False
    return disjunction


@builds(z3.Z3_OP_IMPLIES)
def _implies(term, slots):
    premise, conclusion = slots

    def implication(v):
        p, c = v[premise], v[conclusion]
        return True if p is False or c is True else None if p is None or c is None else False
    return implication


@builds(z3.Z3_OP_ITE)
def _ite(term, slots):
    condition, then, otherwise = slots

    def choice(v):
        c, x, y = v[condition], v[then], v[otherwise]
        if c is not None:
            return x if c else y
        return x if x is y or (x is not None and not isinstance(x, Memory) and x == y) else None
    return choice


@builds(z3.Z3_OP_SELECT)
def _select(term, slots):
    if term.num_args() != 2:
        raise UnsupportedTerm(f"multi-index select: {term.sexpr()[:200]}")
    return _strict(slots, lambda memory, index: memory.select(index))


@builds(z3.Z3_OP_STORE)
def _store(term, slots):
    if term.num_args() != 3:
        raise UnsupportedTerm(f"multi-index store: {term.sexpr()[:200]}")
    array, index, value = slots

    def store(v):
        memory, address = v[array], v[index]
        return None if memory is None or address is None else memory.store(address, v[value])
    return store


@builds(z3.Z3_OP_CONST_ARRAY)
def _const_array(term, slots):
    (element,) = slots
    return lambda v: Memory(lambda index, value=v[element]: value)


_SORTS = (z3.Z3_BV_SORT, z3.Z3_BOOL_SORT)


def _check_sort(term: z3.ExprRef) -> None:
    sort = term.sort()
    if sort.kind() == z3.Z3_ARRAY_SORT:
        if sort.domain().kind() in _SORTS and sort.range().kind() in _SORTS:
            return
    elif sort.kind() in _SORTS:
        return
    raise UnsupportedTerm(f"sort {sort} of {term.sexpr()[:200]}")


class Evaluator:
    """The terms ``terms``, compiled once; call with bindings for a list of
    their values (see the module docstring for the rules)."""

    def __init__(self, terms: Sequence[z3.ExprRef]):
        self._initial: list = []          # slot -> folded value (or None until evaluated)
        self._steps: list[tuple[int, Node | None, str, tuple[int, ...]]] = []
        """(slot, node, -, -) or (slot, None, function name, operands), operands first."""
        self._inputs: list[tuple[int, str, bool]] = []   # (slot, name, is an array)
        self._slots: dict[int, int] = {}  # term id -> slot
        self._static: set[int] = set()    # slots folded at construction
        self._functions: dict[str, z3.FuncDeclRef] = {}
        self.roots = [self._compile(term) for term in terms]
        self.constants = frozenset(name for _, name, _ in self._inputs)
        """Names of the free constants (all need a binding)."""
        self.functions = frozenset(self._functions)
        """Names of the uninterpreted functions applied (all need a binding)."""

    def _compile(self, root: z3.ExprRef) -> int:
        work = [(root, False)]
        while work:
            term, expanded = work.pop()
            if term.get_id() in self._slots:
                continue
            children = term.children()
            if not expanded and children:
                work.append((term, True))
                work.extend((child, False) for child in reversed(children)
                            if child.get_id() not in self._slots)
                continue
            self._slots[term.get_id()] = self._leaf_or_node(term, tuple(self._slots[c.get_id()] for c in children))
        return self._slots[root.get_id()]

    def _new_slot(self, value=None) -> int:
        self._initial.append(value)
        return len(self._initial) - 1

    def _leaf_or_node(self, term: z3.ExprRef, operands: tuple[int, ...]) -> int:
        _check_sort(term)
        decl = term.decl()
        kind = decl.kind()
        if kind == z3.Z3_OP_BNUM:
            slot = self._new_slot(term.as_long())
        elif kind in (z3.Z3_OP_TRUE, z3.Z3_OP_FALSE):
            slot = self._new_slot(kind == z3.Z3_OP_TRUE)
        elif kind == z3.Z3_OP_UNINTERPRETED:
            name = decl.name()
            known = self._functions.get(name)
            if known is not None and not known.eq(decl):
                raise UnsupportedTerm(f"two functions named {name}")
            slot = self._new_slot()
            if operands:
                self._functions[name] = decl
                self._steps.append((slot, None, name, operands))
            else:
                self._inputs.append((slot, name, z3.is_array(term)))
            return slot
        elif kind in _BUILDERS:
            node = _BUILDERS[kind](term, operands)
            if all(operand in self._static for operand in operands):
                slot = self._new_slot(node(self._initial))   # constant subterm: folded now
            else:
                slot = self._new_slot()
                self._steps.append((slot, node, "", operands))
                return slot
        else:
            raise UnsupportedTerm(f"{decl.name()} (Z3 kind {kind}) in {term.sexpr()[:200]}")
        self._static.add(slot)
        return slot

    def __call__(self, constants: Mapping[str, object],
                 functions: Mapping[str, Callable[..., object]] | None = None) -> list:
        values = list(self._initial)
        for slot, name, is_array in self._inputs:
            if name not in constants:
                raise UnboundName(f"no value for the constant {name}")
            value = constants[name]
            values[slot] = Memory(value) if is_array and callable(value) else value
        functions = functions or {}
        for slot, node, name, operands in self._steps:
            if node is not None:
                values[slot] = node(values)
            elif name in functions:
                values[slot] = functions[name](*(values[operand] for operand in operands))
            else:
                raise UnboundName(f"no interpretation for the function {name}")
        return [values[slot] for slot in self.roots]
