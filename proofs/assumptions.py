"""The stated assumptions of ``check`` and ``equiv``: each a formula over the
entry state (or none, for one the model builds in) and the text printed
with the verdict.

Both commands assume the same calling context (SPEC.md section 7): DF is
clear at entry, the entry RSP is 8-byte aligned and at least
``STACK_MARGIN`` away from both ends of the address space, ordinary memory
accesses do not fault; a struct an argument register points to is 8-byte
aligned, does not wrap, and lies clear of the function's frame
(``properties.STACK_DEPTH`` bytes below the entry RSP) and of the
return-address slot.  ``check`` adds its contract's (the struct may be
NULL where the contract allows it; the leaf; the contract's own words)
and that an access through a pointer register plus a constant, not RSP,
is off this function's stack and its return-address slot
(:func:`pointer_accesses_off_frame`, asserted per path; so ``no-red-zone``
judges the function's own stack accesses, and a store through an argument
never lands on the return address).  ``equiv`` assumes the same of
both sides' accesses (asserted per pair of paths), and adds one caller for
both sides, every declared struct non-NULL unless ``nullable``, and one
TDX module, whose reads are :mod:`model.tdx`'s (a TDG.VP.VMCALL with a
known bitmap: RAX, RCX and the exposed registers).

The formulas are asserted (and handed to the executor as preconditions,
so that it prunes exactly the paths they rule out); the texts are
printed, in the order given here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import z3

from grammar.caches import CACHES
from model import abi, bv
from model.memory import Region, place, region_index
from model.symbolic import SymbolicState
from model.tdx import DEFAULT_MODULE_READS, KINDS, TDCALL, VMCALL_READS_SOURCE
from proofs.contracts import Contract
from proofs.equiv_spec import EquivSpec, StructPointer
from proofs.properties import STACK_DEPTH

STACK_MARGIN = 0x10000
"""The entry RSP is at least this far from address 0 and from 2**64."""

LEFT, RIGHT = "left", "right"
"""The two sides of an ``equiv`` (the prefixes of their entry states)."""


@dataclass(frozen=True)
class Assumption:
    """One assumption: the formulas that state it (none when the model
    builds it in) and its text."""

    formulas: tuple[z3.BoolRef, ...]
    text: str


def formulas(assumptions: Iterable[Assumption]) -> list[z3.BoolRef]:
    return [formula for assumption in assumptions for formula in assumption.formulas]


def texts(assumptions: Iterable[Assumption]) -> list[str]:
    return [assumption.text for assumption in assumptions]


def _direction_clear(*states: SymbolicState) -> Assumption:
    return Assumption(tuple(state.flags["df"] == bv.const(0, 1) for state in states),
                      "DF is clear at entry (System V)")


def _stack(rsp: z3.BitVecRef) -> Assumption:
    return Assumption((rsp & bv.const(7, 64) == bv.const(0, 64),
                       bv.ule(bv.const(STACK_MARGIN, 64), rsp),
                       bv.ule(rsp, bv.const(2**64 - STACK_MARGIN, 64))),
                      "the entry RSP is 8-byte aligned and the stack does not wrap around the address space")


NO_FAULTS = Assumption((), "ordinary memory accesses do not fault")
POINTERS_OFF_FRAME = Assumption((), "memory reached through a pointer other than RSP lies outside this function's "
                                    "stack frame and its return-address slot")
"""Its formulas are per path: :func:`pointer_accesses_off_frame`."""


def _clear_of_frame(start: z3.BitVecRef, end: z3.BitVecRef, rsp: z3.BitVecRef) -> z3.BoolRef:
    """The bytes [start, end) lie below the frame or above the return-address slot."""
    return z3.Or(bv.ule(end, rsp - bv.const(STACK_DEPTH, 64)), bv.ule(rsp + bv.const(8, 64), start))


def _placed(whose: str) -> str:
    return (f"8-byte aligned, does not wrap, and does not overlap the {whose} frame "
            f"({STACK_DEPTH} bytes below entry RSP) or the return-address slot")


# --- check: one function under its contract ------------------------------------------

def function_assumptions(state: SymbolicState, contract: Contract | None) -> list[Assumption]:
    """``check``'s assumptions about a function's entry ``state`` under ``contract``."""
    entry, rsp = state.regs, state.regs["rsp"]
    assumptions = [
        _direction_clear(state),
        POINTERS_OFF_FRAME,
        _stack(rsp),
        NO_FAULTS]
    if contract is None:
        return assumptions
    (pointer, _, size), = placed_structs(state, contract)
    valid = z3.And(pointer & bv.const(7, 64) == bv.const(0, 64),
                   bv.ule(pointer, bv.const(2**64 - size, 64)),
                   _clear_of_frame(pointer, pointer + bv.const(size, 64), rsp))
    if contract.struct_may_be_null:
        valid = z3.Or(pointer == bv.const(0, 64), valid)
    leaf = (f"leaf unconstrained (any value of {contract.leaf.upper()})" if isinstance(contract.leaf, str)
            else f"leaf {contract.leaf}" + (" (TDG.VP.VMCALL)" if contract.leaf == abi.TDG_VP_VMCALL
                                            and contract.instruction == "tdcall" else ""))
    return assumptions + [
        Assumption((valid,), f"struct {contract.struct} at {contract.struct_pointer.upper()} "
                             f"({size} bytes){' (or NULL)' if contract.struct_may_be_null else ''} is "
                             + _placed("function's")),
        Assumption((), contract.assumption()),
        Assumption((), f"{contract.key}: {leaf}")]


def pointer_accesses_off_frame(accesses, rsp: z3.BitVecRef, clear: Iterable[Region] = ()
                               ) -> tuple[z3.BoolRef, ...]:
    """The formulas of "memory reached through a pointer other than RSP lies
    outside this function's stack frame" for a path's ``accesses``
    (:class:`model.executor.MemoryAccess`, entry RSP ``rsp``): each access
    whose address is another variable plus a constant, or a constant,
    lies clear of the frame and of the return-address slot.  An address
    that is not of that form may still be RSP's in disguise and is left
    free.

    ``clear``: the struct regions :func:`function_assumptions` places
    (:func:`placed_structs`: each clear of the frame and the slot, not
    wrapping, or NULL where the contract allows it); the formula of an
    access inside one of them
    follows from that, and from the stack's distance to address 0 for a
    NULL struct, so it is left out (each one left in is a 64-bit
    comparison or two more in every query of the path: on the fixture
    forms, 2.2 s to take in and decide the 3726 such formulas of the
    paths, against 1.8 s for their path conditions)."""
    inside = tuple((base, low, end) for base, low, end in clear if 0 <= low <= end <= STACK_MARGIN - STACK_DEPTH)
    found = []
    for access in accesses:
        at = place(access.address)
        if at is None or at.base_id == rsp.get_id():
            continue
        if region_index(access.address, access.width // 8, inside) is not None:
            continue
        key = (id(rsp.ctx), access.address.get_id(), access.width, access.guard.get_id(), rsp.get_id())
        formula = _OFF_FRAME.get(key)
        if formula is None:
            end = access.address + bv.const(access.width // 8, 64)
            formula = _OFF_FRAME[key] = z3.Implies(access.guard, _clear_of_frame(access.address, end, rsp))
        found.append(formula)
    return tuple(found)


_OFF_FRAME = CACHES.cache("off-frame formulas", 50_000)
"""(Z3 context id, address, width, guard, RSP ids) -> the formula of
:func:`pointer_accesses_off_frame` for that access, which holds the terms
(and so their ids): the paths of a function share their prefixes' accesses,
and a task's configurations most of their paths (on the fixture forms, 81%
of the formulas asked for are made already)."""


def path_context(path, contract: Contract | None) -> tuple[z3.BoolRef, ...]:
    """What the claims of an executor ``path`` are decided under (``check``
    and ``summary`` alike): its condition and
    :func:`pointer_accesses_off_frame` of its accesses, those inside the
    structs :func:`function_assumptions` places for ``contract`` left out."""
    entry = path.entry
    return (path.condition, *pointer_accesses_off_frame(path.accesses, entry.memory.regions[0][0],
                                                        placed_structs(entry, contract)))


def placed_structs(state: SymbolicState, contract: Contract | None) -> tuple[Region, ...]:
    """The struct regions :func:`function_assumptions` places for ``contract``
    at entry ``state``: its struct, from the pointer register on."""
    if contract is None:
        return ()
    return ((state.regs[contract.struct_pointer], 0, contract.struct_size),)


def frame_region(rsp: z3.BitVecRef) -> Region:
    """The function's frame as a memory region: ``STACK_DEPTH`` bytes
    below the entry RSP and the return-address slot."""
    return (rsp, -STACK_DEPTH, 8)


def memory_regions(state: SymbolicState, contract: Contract | None) -> tuple[Region, ...]:
    """The memory regions the assumptions keep apart (see :class:`model.memory.Memory`):
    the frame of ``state`` (an entry state) and the contract's struct."""
    regions = [frame_region(state.regs["rsp"])]
    if contract is not None and contract.struct_pointer != "rsp":
        regions.append((state.regs[contract.struct_pointer], 0, contract.struct_size))
    return tuple(regions)


# --- equiv: two functions called alike --------------------------------------------------

def struct_region(struct: StructPointer, entries: Mapping[str, SymbolicState]
                  ) -> tuple[z3.BitVecRef, z3.BitVecRef]:
    """Where a declared struct of ``equiv`` lies at entry: [start, end)."""
    pointer = entries[struct.side].regs[struct.register]
    return pointer, pointer + bv.const(struct.size, 64)


def caller_assumptions(spec: EquivSpec, entries: Mapping[str, SymbolicState]) -> list[Assumption]:
    """``equiv``'s assumptions about the two entry states ``entries`` (by side)."""
    rsp = entries[LEFT].regs["rsp"]
    assumptions = [
        Assumption((), "both sides are called by the same caller: the same entry RSP and the same memory"),
        _direction_clear(entries[LEFT], entries[RIGHT]),
        _stack(rsp),
        NO_FAULTS,
        POINTERS_OFF_FRAME]
    for struct in spec.structs:
        start, end = struct_region(struct, entries)
        valid = z3.And(start != bv.const(0, 64), start & bv.const(7, 64) == bv.const(0, 64),
                       bv.ult(start, end), _clear_of_frame(start, end, rsp))
        assumptions.append(Assumption(
            (z3.Or(start == bv.const(0, 64), valid) if struct.nullable else valid,),
            f"{struct.side} struct {struct.name} ({struct.layout}, {struct.size} bytes) at entry "
            f"{struct.register.upper()} is {'NULL or is' if struct.nullable else 'not NULL,'} "
            + _placed("callee's")))
    for kind in KINDS:
        reads = "of " + ", ".join(r.upper() for r in spec.module_reads.get(kind, DEFAULT_MODULE_READS))
        if kind == TDCALL and kind not in spec.module_reads:
            reads = (f"of RAX, RCX and the registers the RCX bitmap exposes for a TDG.VP.VMCALL whose bitmap is "
                     f"known ({VMCALL_READS_SOURCE}), else {reads}")
        assumptions.append(Assumption((), f"the TDX module is the same on both sides: its {kind} outcome, status "
                                          f"and outputs are functions of the call's ordinal and {reads}"))
        if kind in spec.module_outputs:
            assumptions.append(Assumption((), f"{kind} changes only "
                                              f"{', '.join(r.upper() for r in spec.module_outputs[kind])} "
                                              f"(and RAX, the status)"))
    return assumptions
