"""Symbolic memory: the stores a path made, over a Z3 array, read over write
when a load is made.

Building ``Store(Store(m, a, v), ...)`` and ``Select`` terms and leaving
them to Z3 is correct but slow: every pop and every struct read becomes a
chain of array terms that the prover must walk and the solver must decide.
Most of those reads can be answered when they are made, in Python, because
the addresses are a base plus a constant.
Decisions:

* A memory is a chain of nodes: the *bottom* array (the entry memory, or
  any Z3 array), a *store* (address, its place, width in bytes, value) on
  top of a memory, or a *merge* of two memories under a condition (where
  the executor joins two paths).  The Z3 array with every store applied
  (:attr:`Memory.array`) is built only when asked for.
* The *place* of an address is ``(base, offset)`` when the address is a
  64-bit variable plus a constant (or a constant alone, ``base`` None);
  found structurally (``bvadd``/``bvsub`` of a variable and numerals), so
  ``rsp - 8 - 8`` and ``rsp + -16`` are one place.
* A load walks the chain from the newest node:

  - same base (or both constants): offsets decide exactly, modulo 2**64:
    a store that holds the whole load gives its value (or an extract of
    it), a disjoint one is passed, a partial overlap splits the load into
    bytes;
  - bases in two different *regions* are passed: a region is ``(base
    variable, lowest offset, end offset)``, and whoever gives regions
    promises that the accesses of two regions never meet (the prover
    asserts exactly that, see ``proofs.assumptions``);
  - with an *exclusive frame* (the first region is the function's frame),
    an access inside it and one at another base (another variable plus a
    constant, or a constant address) are passed: whoever asks for it
    promises that no access through another pointer reaches the frame
    (``proofs.assumptions.pointer_accesses_off_frame`` asserts it of each
    path's accesses);
  - anything else (an address that is not a place, two bases with no
    regions to tell them apart) is decided by the solver: each byte is
    ``If(address - store == 0, its byte 0, If(... == 1, byte 1, ... the
    byte below))`` (comparisons with constants: a symbolic shift would
    cost the solver a barrel shifter per byte);
  - through a merge, the load is ``If(condition, one side, other side)``,
    or one term when both sides agree.

  The answer has no array term but reads of the bottom array, and equals
  what Z3's array axioms give for the same load, under the regions'
  promise.  A bottom load is made once per place and size.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import z3

from grammar.caches import CACHES
from model import bv

_MASK = 2**64 - 1


class Place(NamedTuple):
    """An address as ``base + offset`` (``base`` None: a constant address)."""

    base: z3.BitVecRef | None
    base_id: int | None
    offset: int

    @property
    def signed_offset(self) -> int:
        """``offset`` as a two's-complement 64-bit number."""
        return self.offset - 2**64 if self.offset >= 2**63 else self.offset


_PLACES = CACHES.cache("memory places", 200_000)
"""(Z3 context id, term id) -> (the term, kept alive so that its id is not
reused while the entry exists; its place)."""


def place(address: z3.BitVecRef) -> Place | None:
    """``address`` as variable + constant, when it is that (cached).

    >>> x = bv.variable("x", 64)
    >>> place(x - bv.const(8, 64) + bv.const(24, 64)).offset, place(bv.const(5, 64)).base
    (16, None)
    >>> place(x * bv.const(2, 64)) is None
    True
    """
    key = (id(address.ctx), address.get_id())
    cached = _PLACES.get(key)
    if cached is None:
        cached = _PLACES[key] = (address, _place(address))   # the entry keeps the term (and its id) alive
    return cached[1]


def _place(term: z3.BitVecRef) -> Place | None:
    if z3.is_bv_value(term):
        return Place(None, None, term.as_long())
    if z3.is_const(term):
        return Place(term, term.get_id(), 0)
    if z3.is_app_of(term, z3.Z3_OP_BADD):
        parts = [place(child) for child in term.children()]
        if None in parts or sum(part.base is not None for part in parts) > 1:
            return None
        base = next((part for part in parts if part.base is not None), Place(None, None, 0))
        return Place(base.base, base.base_id, sum(part.offset for part in parts) & _MASK)
    if z3.is_app_of(term, z3.Z3_OP_BSUB) and term.num_args() == 2:
        left, right = place(term.arg(0)), place(term.arg(1))
        if left is None or right is None or right.base is not None:
            return None
        return Place(left.base, left.base_id, (left.offset - right.offset) & _MASK)
    return None


Region = tuple[z3.BitVecRef, int, int]


def region_index(address: z3.BitVecRef, size: int, regions: tuple[Region, ...]) -> int | None:
    """The index of the one of ``regions`` that holds all ``size`` bytes at
    ``address`` (a place at its base), None if none does."""
    return _region(place(address), size, tuple((base.get_id(), low, end) for base, low, end in regions))


def _region(where: Place | None, size: int, regions: tuple[tuple[int, int, int], ...]) -> int | None:
    """The index of the region (base id, low, end) that holds all ``size``
    bytes at ``where``."""
    if where is None or where.base is None:
        return None
    signed = where.signed_offset
    for index, (base_id, low, end) in enumerate(regions):
        if where.base_id == base_id and low <= signed and signed + size <= end:
            return index
    return None


def _load_key(address: z3.BitVecRef, where: Place | None, size: int) -> tuple:
    """What makes two loads the same: the place (or, without one, the
    address term) and the size."""
    return (size,) + ((where.base_id, where.offset) if where is not None else ("term", address.get_id()))


def select_bytes(array: z3.ArrayRef, address: z3.BitVecRef, size: int) -> z3.BitVecRef:
    """``size`` bytes of ``array`` at ``address``, little-endian.

    The terms are made through the C API (``z3.Select`` re-checks the sorts
    through several Python layers per byte; Z3 still checks them), in the
    same order as ``Concat(Select(m, a + i), ...)``, and kept (Z3 would
    make the same terms again: every run of a function, and of its other
    configurations, loads the same entry fields)."""
    key = (id(array.ctx), array.get_id(), address.get_id(), size)
    if key not in _SELECTED:
        _SELECTED[key] = (array, address, _select_bytes(array, address, size))
    return _SELECTED[key][2]


_SELECTED = CACHES.cache("entry loads", 50_000)
"""(Z3 context id, array, address term ids, size) -> (the array and the
address, kept so that their ids are not reused while the entry exists;
:func:`select_bytes` of them)."""


def _select_bytes(array: z3.ArrayRef, address: z3.BitVecRef, size: int) -> z3.BitVecRef:
    ctx = array.ctx
    memory = array.as_ast()

    def byte(at: z3.BitVecRef) -> z3.BitVecRef:
        return z3.BitVecRef(z3.Z3_mk_select(ctx.ref(), memory, at.as_ast()), ctx)

    value = byte(address)
    for offset in range(1, size):
        high = byte(bv.add(address, bv.const(offset, 64)))
        value = z3.BitVecRef(z3.Z3_mk_concat(ctx.ref(), high.as_ast(), value.as_ast()), ctx)
    return value


_PASS, _STOP, _SPLIT = "pass", "stop", "split"


def _relation(where: Place | None, size: int, region: int | None, stored_at: Place | None,
              stored_region: int | None, stored_size: int, frame: int | None):
    """How a store bears on a load: pass it, stop, split the load, or the
    load's byte offset inside the store (an int).  ``frame``: the base id
    of an exclusive frame (region 0), None without one."""
    if where is None or stored_at is None:
        return _STOP
    if frame is not None and ((region == 0 and stored_at.base_id != frame)
                              or (stored_region == 0 and where.base_id != frame)):
        return _PASS
    if where.base_id == stored_at.base_id:
        inside = (where.offset - stored_at.offset) & _MASK
        if inside < stored_size:
            return inside if inside + size <= stored_size else _SPLIT
        return _SPLIT if (stored_at.offset - where.offset) & _MASK < size else _PASS
    if region is not None and stored_region is not None and stored_region != region:
        return _PASS
    return _STOP


class Memory:
    """One node of a memory chain (see the module doc); immutable."""

    __slots__ = ("regions", "_ids", "_frame", "_below", "_store", "_merge", "_array", "_cache")

    def __init__(self, regions: tuple[Region, ...], below: "Memory | None" = None, store: tuple | None = None,
                 merge: tuple | None = None, array: z3.ArrayRef | None = None, exclusive_frame: bool = False):
        self.regions = regions
        self._ids = tuple((variable.get_id(), low, end) for variable, low, end in regions) if below is None \
            else below._ids
        inherited = below if below is not None else merge[1] if merge is not None else None
        self._frame = inherited._frame if inherited is not None else (
            self._ids[0][0] if exclusive_frame and self._ids else None)
        self._below = below
        self._store = store          # (address, place, its region, size in bytes, value)
        self._merge = merge          # (condition, memory if it holds, memory otherwise)
        self._array = array          # the bottom array, or the built array once asked for
        self._cache: dict[tuple, z3.BitVecRef] | None = {} if array is not None else None   # a bottom's loads

    @classmethod
    def of_array(cls, array: z3.ArrayRef, regions: tuple[Region, ...] = (), exclusive_frame: bool = False
                 ) -> "Memory":
        """A memory with no stores over ``array`` (``exclusive_frame``: the
        first of ``regions`` is a frame no other base reaches, module doc)."""
        return cls(regions, array=array, exclusive_frame=exclusive_frame)

    def store(self, address: z3.BitVecRef, value: z3.BitVecRef) -> "Memory":
        """This memory with ``value`` stored little-endian at ``address``."""
        where, size = place(address), value.size() // 8
        return Memory(self.regions, below=self, store=(address, where, _region(where, size, self._ids), size, value))

    def merged(self, condition: z3.BoolRef, other: "Memory") -> "Memory":
        """This memory where ``condition`` holds, ``other`` where it does not."""
        if other is self:
            return self
        return Memory(self.regions, merge=(condition, self, other))

    def substituted(self, apply: Callable[[z3.ExprRef], z3.ExprRef], regions: tuple[Region, ...],
                    done: dict | None = None) -> "Memory":
        """The same chain with ``apply`` applied to every term in it, and
        ``regions`` instead of this one's."""
        done = {} if done is None else done
        if id(self) not in done:
            if self._merge is not None:
                condition, then, otherwise = self._merge
                new = Memory(regions, merge=(apply(condition), then.substituted(apply, regions, done),
                                             otherwise.substituted(apply, regions, done)))
            elif self._store is not None:
                address, _, _, _, value = self._store
                new = self._below.substituted(apply, regions, done).store(apply(address), apply(value))
            else:
                new = Memory.of_array(apply(self._array), regions, self._frame is not None)
            done[id(self)] = (self, new)
        return done[id(self)][1]

    @property
    def array(self) -> z3.ArrayRef:
        """The Z3 array of this memory (built once, when first asked for)."""
        if self._array is None:
            if self._merge is not None:
                condition, then, otherwise = self._merge
                self._array = z3.If(condition, then.array, otherwise.array)
            else:
                address, _, _, size, value = self._store
                array = self._below.array
                for offset in range(size):
                    array = z3.Store(array, bv.add(address, bv.const(offset, 64)),
                                     bv.extract(8 * offset + 7, 8 * offset, value))
                self._array = array
        return self._array

    def load(self, address: z3.BitVecRef, size: int) -> z3.BitVecRef:
        """``size`` bytes at ``address``, little-endian."""
        where = place(address)
        return self._load(address, where, size, _region(where, size, self._ids), {})

    def _load(self, address: z3.BitVecRef, where: Place | None, size: int, region: int | None,
              seen: dict) -> z3.BitVecRef:
        node = self
        while True:
            if node._merge is not None:
                key = (id(node),) + _load_key(address, where, size)
                if key not in seen:
                    condition, then, otherwise = node._merge
                    first = then._load(address, where, size, region, seen)
                    second = otherwise._load(address, where, size, region, seen)
                    seen[key] = first if first.eq(second) else z3.If(condition, first, second)
                return seen[key]
            if node._store is None:
                return node._bottom_load(address, where, size)
            stored_address, stored_at, stored_region, stored_size, value = node._store
            relation = _relation(where, size, region, stored_at, stored_region, stored_size, node._frame)
            if relation is _PASS:
                node = node._below
            elif relation is _SPLIT or (relation is _STOP and size > 1):
                return self._bytewise(node, address, where, size, seen)
            elif relation is _STOP:
                loaded = node._below._load(address, where, 1, region, seen)
                if stored_size == 1:
                    return bv.ite(bv.eq(address, stored_address), value, loaded)
                distance = address - stored_address      # one subtraction, compared with constants
                for byte in reversed(range(stored_size)):
                    loaded = bv.ite(bv.eq(distance, bv.const(byte, 64)),
                                    bv.extract(8 * byte + 7, 8 * byte, value), loaded)
                return loaded
            else:
                low = 8 * relation
                return value if low == 0 and size == stored_size else bv.extract(low + 8 * size - 1, low, value)

    def _bottom_load(self, address: z3.BitVecRef, where: Place | None, size: int) -> z3.BitVecRef:
        """A load from the bottom array, one term per place and size
        (every path of a run loads from the same entry memory)."""
        key = _load_key(address, where, size)
        loaded = self._cache.get(key)
        if loaded is None:
            loaded = self._cache[key] = select_bytes(self._array, address, size)
        return loaded

    def _bytewise(self, node: "Memory", address: z3.BitVecRef, where: Place | None, size: int,
                  seen: dict) -> z3.BitVecRef:
        value = None
        for offset in range(size):
            at = None if where is None else where._replace(offset=(where.offset + offset) & _MASK)
            byte = node._load(bv.add(address, bv.const(offset, 64)) if offset else address, at, 1,
                              _region(at, 1, self._ids), seen)
            value = byte if value is None else bv.concat(byte, value)
        return value
