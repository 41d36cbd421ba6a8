"""The checkers' view of an executor path: what :mod:`proofs.properties` reads.

A :class:`proofs.properties.PathView` holds a path's entry and final
states, its TDX events (with the registers after each), its memory
accesses and faults and, for ``frame-pointer``, what an interrupt before
each instruction would find.  Decisions:

* an access's RSP before and after are the ones the executor recorded
  for its instruction (:class:`model.executor.MemoryAccess`);
* where an access's address and both RSPs are a region's base plus a
  constant (:func:`model.memory.place`), the view already answers
  whether it is below RSP and whether it lies in the frame or the
  contract's struct: the assumptions keep the regions disjoint and
  unwrapped, so comparing offsets decides; an access through a pointer
  register other than RSP (inside the struct or not), or at a constant
  address, is taken to be off this function's stack, as the prover
  asserts;
* :func:`varied_view` is the same path with an independent TDX module
  (:mod:`proofs.renaming`), for relational properties.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import z3

from model import bv
from model.executor import PathResult
from model.memory import Region, place
from model.tdx import EXTENDED_INIT, Outcome
from proofs.properties import AccessView, EventView, FaultView, FramePoint, Ops, PathView
from proofs.renaming import ModuleRenaming


def _event_view(event) -> EventView:
    after = dict(event.inputs)
    if event.outcome is Outcome.COMPLETION:
        after.update(event.outputs)
        after["rax"] = event.status
    return EventView(event.kind, event.outcome, event.origin, event.inputs, after, event.status)


def _known_access(address, size: int, rsp_before, rsp_after, regions: tuple
                  ) -> tuple[bool | None, bool | None]:
    """(below RSP, in frame or struct) of an access, when the address and
    both RSPs are a region's base plus a constant (else ``None``): the
    regions are disjoint and do not wrap under the asserted assumptions, so
    comparing offsets decides.  An address that is a constant or another
    variable than the entry RSP plus a constant is never below RSP: the
    prover asserts it clear of the frame and the return-address slot
    (:func:`proofs.assumptions.pointer_accesses_off_frame`), where every
    address ``no-red-zone`` calls below RSP lies."""
    at = place(address)
    if at is None or not regions:
        return None, None
    stack = regions[0][0].get_id()
    offset = at.signed_offset
    if at.base_id != stack:     # a constant or through a pointer: assumed off this function's stack
        inside = any(at.base_id == variable.get_id() and low <= offset and offset + size <= end
                     for variable, low, end in regions[1:])
        return False, True if inside else None
    _, low, end = regions[0]
    if not (low <= offset and offset + size <= end):
        return None, None
    before, after = place(rsp_before), place(rsp_after)
    if not all(p is not None and p.base_id == stack and low <= p.signed_offset <= end for p in (before, after)):
        return None, offset + size <= 0
    return offset < min(before.signed_offset, after.signed_offset), offset + size <= 0


def _frame_points(result: PathResult) -> tuple[FramePoint, ...]:
    """The path's interrupt points, each with the 8 bytes of its frame's
    saved-RBP slot loaded from the memory it saw (one load per memory and
    slot: consecutive instructions without a store share it)."""
    loaded: dict[tuple[int, int], z3.BitVecRef] = {}
    points = []
    for p in result.points:
        key = (id(p.memory), p.frame_rsp.get_id())
        if key not in loaded:
            loaded[key] = p.memory.load(bv.sub(p.frame_rsp, bv.const(8, 64)), 8)
        points.append(FramePoint(p.origin, p.rbp, loaded[key], p.frame_rsp, p.frame_rbp, p.call, p.guard))
    return tuple(points)


def _remembered(load: Callable[[z3.BitVecRef, int], z3.BitVecRef]) -> Callable[[z3.BitVecRef, int], z3.BitVecRef]:
    """``load``, each address and size loaded once (the checkers load the
    same struct fields again: ``output-marshalling``'s outputs and every
    field it and ``failure-no-output`` compare with the entry's)."""
    loaded: dict[tuple[int, int], tuple[z3.BitVecRef, z3.BitVecRef]] = {}

    def remembered(address: z3.BitVecRef, size: int) -> z3.BitVecRef:
        key = (address.get_id(), size)
        if key not in loaded:
            loaded[key] = (address, load(address, size))      # the address is kept: its id stays its own
        return loaded[key][1]
    return remembered


def symbolic_view(result: PathResult, regions: tuple[Region, ...] = (), frame_points: bool = True) -> PathView:
    """The checkers' view of one executor path (``regions``: as
    :func:`proofs.assumptions.memory_regions` gives them, to place accesses; ``frame_points``:
    whether to load what an interrupt would find before each instruction,
    which only ``frame-pointer`` asks)."""
    accesses = []
    for a in result.accesses:
        after = a.rsp if a.rsp_after is None else a.rsp_after
        below, inside = _known_access(a.address, a.width // 8, a.rsp, after, regions)
        accesses.append(AccessView(a.kind, a.address, a.width // 8, a.rsp, after, a.origin, a.guard,
                                   below, inside))
    accesses = tuple(accesses)
    faults = tuple(FaultView(f.instruction, f.handled, f.origin, f.guard) for f in result.faults)
    return PathView(Ops(), result.end, result.entry.regs, result.state.regs, result.state.flags,
                    _remembered(result.state.load), _remembered(result.entry.load),
                    tuple(_event_view(e) for e in result.events), accesses, faults, result.where, result.leaves_to,
                    _frame_points(result) if frame_points else (),
                    result.extended, result.entry_extended, EXTENDED_INIT)


def varied_view(result: PathResult, view: PathView) -> tuple[PathView, z3.BoolRef]:
    """The same path with an independent module: (its view, its condition)."""
    names = list(view.final)
    renamed = ModuleRenaming(result.provenance).rename([result.condition] + [view.final[n] for n in names])
    final = dict(zip(names, renamed[1:]))
    return dataclasses.replace(view, final=final), renamed[0]
