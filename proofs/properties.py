"""The property catalog (SPEC.md section 7): one checker per property ID
(the IDs and what the reports say of each are :mod:`proofs.catalog`).

A checker reads one finished path through a :class:`PathView` and yields
:class:`Claim` objects: "on this path, ``violated`` would break obligation
``detail`` of this property".  The same checker runs on two kinds of view:

* a symbolic view over the executor's :class:`model.executor.PathResult`
  (values are Z3 terms, ``violated`` a Z3 Boolean that the prover hands to
  the solver together with the path condition: unsat = the obligation
  holds on this path), and
* a concrete view over a counterexample replayed with the concrete
  interpreter (values are Python integers, ``violated`` a Python bool), so
  that every refutation is confirmed by an independent execution.

The views share one small algebra (:class:`Ops`) so that a property is
written once.  Decisions recorded here:

* Properties about the return (``callee-saved``, ``stack-balance``,
  ``return-address``, ``direction-flag``, the status and output
  properties) are claimed on paths that *return*; panic and oops paths
  are judged by ``fault-handled`` and ``panic-on-tdcall-failure``.
* ``no-fallthrough``: a path that leaves the function's code other than
  by ``ret``, the return thunk, a tail call or a never-returning call
  (:class:`model.executor.PathEnd` ``FALLTHROUGH``: past its end, or to a
  code label outside every function) refutes it, at the last instruction
  the path ran.  What such a path does next is not the function's code:
  the obligations judged at a path's *end* (at its return, or by how it
  ends: everything but ``along_path``) cannot be decided on it, and the
  prover leaves them unknown there -- never proved; their checkers make
  no claim on it.  The obligations a property judges *along* the path
  (``Property.along_path``: ``no-red-zone``, ``frame`` and
  ``fault-handled`` over the function's own accesses and fault sites, the
  register values at each TDX instruction of ``input-marshalling``) are
  decided on the part of the path inside the function.  A new property
  judges its end unless it says otherwise: the safe default.
* ``no-red-zone``: an access is below the stack pointer when its address is
  on the stack (the ``STACK_DEPTH`` bytes below the entry RSP) and below
  both the RSP before and the RSP after its instruction (``push`` and
  ``call`` write at the new RSP, which is below the old one).
* ``frame``: the function's own frame is the ``STACK_DEPTH`` bytes below
  the entry RSP (the return-address slot at entry RSP is the caller's);
  the contract adds its struct.
* ``fault-handled``: every fault site on the path routes every trap it may
  raise through the exception table, and no path ends in an oops.
* ``fault-codes`` and ``vmfailinvalid-code`` judge the paths that return
  after the failure; a fault that oopses is ``fault-handled``'s refutation.
* ``extended-state``: at return the extended (AVX) state is the entry's
  or, after a TDX instruction completed with a leaf declared to reset it,
  INIT.  The view follows it symbolically only (a concrete view has
  none, and the checker then claims nothing: a refutation it cannot
  replay is unknown, never proved).  Which leaves may leave it INIT is
  the callers' obligation, stated with the result
  (:mod:`proofs.extended_state`), not a refutation.
* ``scrub`` is relational: the checker gets a second view of the same path
  in which every value the TDX module or VMM returned is replaced by an
  independent one (same entry state); every register that is neither RAX,
  RSP nor callee-saved must agree between the two.
* A property may need a kernel option (``Property.config``): it applies
  only to the rows whose configuration has that option on, and is not
  applicable (no obligation, not "proved") on the others.  The checker
  does not ask: the prover is told the row's configuration
  (``proofs.prover.Settings.configs``) and selects it or not.
* ``frame-pointer`` (with ``CONFIG_FRAME_POINTER``) is what the kernel's
  frame-pointer unwinder needs at an interrupt or NMI, judged at every
  instruction of the path (the state just before it, :class:`FramePoint`;
  the state after a TDX instruction or a fixup is the one before the next
  instruction).  With E and B the RSP and RBP at entry to the function an
  instruction runs in, the frame FRAME_BEGIN sets up is the slot at E - 8,
  just below the return address at E (the ``push %rbp``), holding B, with
  RBP = E - 8 (the ``mov %rsp, %rbp``).  Obligations:

  - ``rbp``: RBP is B (no frame yet, or torn down: the unwinder walks the
    caller's chain) or E - 8.  So "the end of the frame set-up" is, on each
    path, the first instruction at which RBP = E - 8 with the slot holding
    B, and "its tear-down" the instruction that gives RBP back B
    (FRAME_END's ``pop %rbp``), whatever the code between them; any other
    RBP -- flags kept in RBP (the v6.2 ``__tdx_hypercall``), a scratch
    value, what old firmware left in it -- breaks the chain.
  - ``saved-rbp``: while RBP = E - 8 (and is not B), the slot holds B.
  - ``call``: every ``call`` is made with the frame set up (RBP = E - 8,
    the slot holding B).  This is objtool's rule for non-leaf functions:
    the callee's frame links to RBP, and were that still B, the unwinder
    would skip this function's caller.  A function that never sets up a
    frame is therefore fine as long as it calls nothing (a leaf: objtool
    accepts it, and so do we -- SEAMCALL and TDCALL are not calls); one
    that calls without a frame is refuted.
  - An inlined callee is judged against its own E and B (the RSP its call
    pushed, the RBP at the call), so its own FRAME_BEGIN makes the chain
    callee RBP -> slot holding the caller's RBP -> slot holding B, still a
    valid chain; the caller's ``call`` obligation already required its
    frame at the call.  A jump into another function (a tail call, a
    ``.cold`` part) runs on the jumping function's E and B.  An
    exception-table fixup continues the path, so the fixup's code is
    judged like any other; on merged paths each point keeps its guard.
  - All three are judged along the path (``along_path``), so they are
    decided on a path that falls through too, up to where it leaves.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import z3

from grammar.source import Origin
from model import abi, bv
from model.tdx import Outcome
from model.transfers import PathEnd
from proofs.catalog import CATALOG

STACK_DEPTH = 4096
"""Bytes below the entry RSP that the function may use as its frame."""

SCRUBBED: tuple[str, ...] = tuple(
    reg for reg in abi.ENCODING_BIT if reg not in ("rax", "rsp") + abi.CALLEE_SAVED)
"""Registers that must hold no module/VMM-controlled value at return."""



# --- one algebra, two representations -----------------------------------------

class Ops:
    """Z3 terms (the default) ..."""

    def const(self, value: int, width: int = 64) -> Any:
        return bv.const(value, width)

    def boolean(self, value: bool) -> Any:
        return z3.BoolVal(value)

    def eq(self, a, b):
        return bv.eq(a, b)

    def ne(self, a, b):
        return bv.negation(bv.eq(a, b))

    def ult(self, a, b):
        return bv.ult(a, b)

    def ule(self, a, b):
        return bv.ule(a, b)

    def add(self, a, b):
        return bv.add(a, b)

    def sub(self, a, b):
        return bv.sub(a, b)

    def and_(self, a, b):
        return bv.bitand(a, b)

    def or_(self, a, b):
        return bv.bitor(a, b)

    def shl(self, a, count: int):
        return a << count

    def widen(self, value, width: int):
        """A ``width``-bit value zero-extended to 64 bits."""
        return z3.ZeroExt(64 - width, value) if width < 64 else value

    def all_(self, *conditions):
        return bv.conjunction(list(conditions))

    def any_(self, *conditions):
        return bv.disjunction(list(conditions))

    def not_(self, condition):
        return bv.negation(condition)

    def identity(self, value):
        """What makes two values the same one (Z3 terms are hash-consed)."""
        return None if value is None else value.get_id()


class ConcreteOps(Ops):
    """... or unsigned Python integers and bools.

    >>> ops = ConcreteOps()
    >>> ops.add(2**64 - 1, 2), ops.ult(1, 2), ops.ne(3, 3)
    (1, True, False)
    """

    def const(self, value: int, width: int = 64) -> int:
        return value & ((1 << width) - 1)

    def boolean(self, value: bool) -> bool:
        return bool(value)

    def eq(self, a, b):
        return a == b

    def ne(self, a, b):
        return a != b

    def ult(self, a, b):
        return a < b

    def ule(self, a, b):
        return a <= b

    def add(self, a, b):
        return (a + b) & (2**64 - 1)

    def sub(self, a, b):
        return (a - b) & (2**64 - 1)

    def and_(self, a, b):
        return a & b

    def or_(self, a, b):
        return a | b

    def shl(self, a, count: int):
        return (a << count) & (2**64 - 1)

    def widen(self, value, width: int):
        return value

    def all_(self, *conditions):
        return all(conditions)

    def any_(self, *conditions):
        return any(conditions)

    def not_(self, condition):
        return not condition

    def identity(self, value):
        return value


@dataclass(frozen=True)
class EventView:
    """One TDX instruction on the path: the registers it saw (``inputs``),
    the registers right after it (``after``) and its status (completion)."""

    kind: str
    outcome: Outcome
    origin: Origin
    inputs: Mapping[str, Any]
    after: Mapping[str, Any]
    status: Any = None


@dataclass(frozen=True)
class AccessView:
    """One memory access; ``guard``: whether it happened on this path.

    ``below_rsp`` and ``in_frame`` are answers the view already knows (the
    prover derives them from the address's base register and constant
    offset, under the stated assumptions), ``None`` when it does not:
    whether the access is on the stack below both RSPs, and whether it lies
    in the function's frame or the contract's struct.
    """

    kind: str
    address: Any
    size: int
    rsp_before: Any
    rsp_after: Any
    origin: Origin
    guard: Any
    below_rsp: bool | None = None
    in_frame: bool | None = None


@dataclass(frozen=True)
class FaultView:
    """An instruction that may fault; ``handled``: every trap is routed."""

    instruction: str
    handled: bool
    origin: Origin
    guard: Any


@dataclass(frozen=True)
class FramePoint:
    """What an interrupt taken just before the instruction at ``origin``
    would find: RBP, and ``saved``, the 8 bytes at ``frame_rsp - 8`` (the
    slot FRAME_BEGIN saves RBP in); ``frame_rsp`` and ``frame_rbp`` are the
    RSP and RBP at entry to the function the instruction runs in (the
    outermost one or an inlined callee); ``call``: the instruction is a
    ``call``; ``guard``: whether it ran on this path.  A concrete view may
    leave ``saved`` None where RBP is not ``frame_rsp - 8``: no checker
    asks it there."""

    origin: Origin | None
    rbp: Any
    saved: Any
    frame_rsp: Any
    frame_rbp: Any
    call: bool
    guard: Any


@dataclass(frozen=True)
class PathView:
    """What a checker may ask about one path (``leaves_to``: where a path
    that falls through goes, in words; ``frame_points``: the state before
    each instruction, as :class:`FramePoint`)."""

    ops: Ops
    end: str
    entry: Mapping[str, Any]
    final: Mapping[str, Any]
    flags: Mapping[str, Any]
    load: Callable[[Any, int], Any]
    entry_load: Callable[[Any, int], Any]
    events: tuple[EventView, ...] = ()
    accesses: tuple[AccessView, ...] = ()
    faults: tuple[FaultView, ...] = ()
    where: Origin | None = None
    leaves_to: str = ""
    frame_points: tuple[FramePoint, ...] = ()
    extended: Any = None
    entry_extended: Any = None
    extended_init: Any = None
    """The extended (AVX) state at the path's end and at entry, and its INIT
    state (:mod:`model.tdx`); None in a view that does not follow it."""

    @property
    def returned(self) -> bool:
        return self.end == PathEnd.RETURNED

    def last_event(self, kind: str) -> EventView | None:
        events = [event for event in self.events if event.kind == kind]
        return events[-1] if events else None


@dataclass(frozen=True)
class Claim:
    """``violated`` would refute obligation ``detail``; ``expected`` and
    ``actual`` are what the report shows."""

    detail: str
    violated: Any
    origin: Origin | None
    expected: Any = None
    actual: Any = None


# --- the registry ---------------------------------------------------------------

Check = Callable[..., Iterable[Claim]]


@dataclass(frozen=True)
class Property:
    """A property: its checker, its obligations (``details``, one per
    obligation, from the contract), whether it needs a contract, which
    of its obligations it judges along a path rather than at its end
    (``along_path``), and the kernel option it needs on, if any
    (``config``; see the module doc)."""

    id: str
    check: Check
    details: Callable[[Any], tuple[str, ...]]
    applies: Callable[[Any], bool]
    needs_contract: bool
    relational: bool = False
    along_path: Callable[[Any], tuple[str, ...]] = lambda c: ()
    config: str | None = None


PROPERTIES: dict[str, Property] = {}


def checks(property_id: str, *, details: Callable[[Any], tuple[str, ...]] = lambda c: ("",),
           contract: bool = False, applies: Callable[[Any], bool] = lambda c: True,
           relational: bool = False, along_path: Callable[[Any], tuple[str, ...]] = lambda c: (),
           config: str | None = None) -> Callable[[Check], Check]:
    """Register the decorated function as the checker of ``property_id``."""
    def register(function: Check) -> Check:
        if property_id not in CATALOG:
            raise ValueError(f"{property_id!r} is not in the property catalog")
        if property_id in PROPERTIES:
            raise ValueError(f"two checkers for {property_id!r}")
        PROPERTIES[property_id] = Property(property_id, function, details,
                                           applies, contract, relational, along_path, config)
        return function
    return register


def applicable(contract, configs: Mapping[str, bool] | None = None) -> tuple[str, ...]:
    """The property IDs that apply to a function with ``contract`` (or
    None) under the kernel configuration ``configs`` (option -> on; an
    option it does not name is off), or under some configuration when
    ``configs`` is None."""
    return tuple(pid for pid in CATALOG
                 if (contract is not None or not PROPERTIES[pid].needs_contract)
                 and (contract is None or PROPERTIES[pid].applies(contract))
                 and (configs is None or PROPERTIES[pid].config is None
                      or configs.get(PROPERTIES[pid].config, False)))


def config_options() -> tuple[str, ...]:
    """The kernel options some property needs (``Property.config``)."""
    return tuple(dict.fromkeys(p.config for p in PROPERTIES.values() if p.config))


# --- helpers shared by the checkers ---------------------------------------------

def struct_address(path: PathView, contract, field_name: str):
    ops = path.ops
    return ops.add(path.entry[contract.struct_pointer], ops.const(contract.offsets[field_name]))


def struct_written(path: PathView, contract):
    """Whether the contract lets the wrapper write outputs on this path."""
    ops = path.ops
    conditions = []
    if contract.struct_may_be_null:
        conditions.append(ops.ne(path.entry[contract.struct_pointer], ops.const(0)))
    if contract.outputs_when is not None:
        flags = path.entry[contract.outputs_when.register]
        conditions.append(ops.ne(ops.and_(flags, ops.const(contract.outputs_when.mask)), ops.const(0)))
    return ops.all_(*conditions) if conditions else ops.boolean(True)


def changed_fields(path: PathView, contract, fields: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(field, "its bytes changed") for each of ``fields``."""
    ops = path.ops
    for name in fields:
        address, size = struct_address(path, contract, name), contract.field_size(name)
        yield name, ops.ne(path.load(address, size), path.entry_load(address, size))


def _inside(ops: Ops, address, size: int, low, length: int):
    """Whether ``size`` bytes at ``address`` lie in ``[low, low + length)``,
    without wrap-around."""
    return ops.ule(ops.sub(address, low), ops.const(length - size))


# --- properties of every function -------------------------------------------------

@checks("callee-saved", details=lambda c: abi.CALLEE_SAVED)
def callee_saved(path: PathView, contract) -> Iterator[Claim]:
    if path.returned:
        for reg in abi.CALLEE_SAVED:
            yield Claim(reg, path.ops.ne(path.final[reg], path.entry[reg]), path.where,
                        path.entry[reg], path.final[reg])


@checks("stack-balance")
def stack_balance(path: PathView, contract) -> Iterator[Claim]:
    if path.returned:
        expected = path.ops.add(path.entry["rsp"], path.ops.const(8))
        yield Claim("", path.ops.ne(path.final["rsp"], expected), path.where, expected, path.final["rsp"])


@checks("return-address")
def return_address(path: PathView, contract) -> Iterator[Claim]:
    if path.returned:
        expected = path.entry_load(path.entry["rsp"], 8)
        actual = path.load(path.entry["rsp"], 8)
        yield Claim("", path.ops.ne(actual, expected), path.where, expected, actual)


def _whole(contract) -> tuple[str, ...]:
    """The one obligation of a property without details."""
    return ("",)


@checks("no-red-zone", along_path=_whole)
def no_red_zone(path: PathView, contract) -> Iterator[Claim]:
    ops = path.ops
    stack = ops.sub(path.entry["rsp"], ops.const(STACK_DEPTH))
    for access in path.accesses:
        if access.below_rsp is not None:
            below = ops.boolean(access.below_rsp)
        else:
            below = ops.all_(_inside(ops, access.address, 1, stack, STACK_DEPTH + 8),
                             ops.ult(access.address, access.rsp_before),
                             ops.ult(access.address, access.rsp_after))
        yield Claim("", ops.all_(access.guard, below), access.origin, access.rsp_after, access.address)


@checks("frame", along_path=_whole)
def frame(path: PathView, contract) -> Iterator[Claim]:
    ops = path.ops
    low = ops.sub(path.entry["rsp"], ops.const(STACK_DEPTH))
    for access in path.accesses:
        if access.kind != "write" or access.in_frame:
            continue
        regions = [_inside(ops, access.address, access.size, low, STACK_DEPTH)]
        if contract is not None:
            regions.append(_inside(ops, access.address, access.size,
                                   path.entry[contract.struct_pointer], contract.struct_size))
        yield Claim("", ops.all_(access.guard, ops.not_(ops.any_(*regions))), access.origin,
                    None, access.address)


@checks("fault-handled", along_path=_whole)
def fault_handled(path: PathView, contract) -> Iterator[Claim]:
    ops = path.ops
    for site in path.faults:
        if not site.handled:
            yield Claim("", site.guard, site.origin, "an exception-table entry", "none")
    if path.end == PathEnd.OOPS and not any(not site.handled for site in path.faults):
        yield Claim("", ops.boolean(True), path.where, "no oops", "oops")


@checks("direction-flag")
def direction_flag(path: PathView, contract) -> Iterator[Claim]:
    if path.returned:
        yield Claim("", path.ops.ne(path.flags["df"], path.ops.const(0, 1)), path.where,
                    path.ops.const(0, 1), path.flags["df"])


@checks("no-fallthrough", along_path=_whole)
def no_fallthrough(path: PathView, contract) -> Iterator[Claim]:
    if path.end == PathEnd.FALLTHROUGH:
        yield Claim("", path.ops.boolean(True), path.where,
                    "leaving by ret, the return thunk, a tail call or a never-returning call",
                    f"execution goes {path.leaves_to}" if path.leaves_to else "execution falls through")


@checks("extended-state")
def extended_state(path: PathView, contract) -> Iterator[Claim]:
    """The caller obligations a declared reset brings are not claims:
    :mod:`proofs.extended_state` lists them with the result."""
    if path.returned and path.extended is not None:
        ops = path.ops
        yield Claim("", ops.all_(ops.ne(path.extended, path.entry_extended),
                                 ops.ne(path.extended, path.extended_init)),
                    path.where, "the entry extended state, or INIT", "another extended state")


# --- the frame-pointer chain -----------------------------------------------------

FRAME_POINTER_DETAILS = ("rbp", "saved-rbp", "call")


def _frame_slot(path: PathView, point: FramePoint):
    """Where FRAME_BEGIN saves the caller's RBP: just below the return address."""
    return path.ops.sub(point.frame_rsp, path.ops.const(8))


@checks("frame-pointer", details=lambda c: FRAME_POINTER_DETAILS, along_path=lambda c: FRAME_POINTER_DETAILS,
        config="CONFIG_FRAME_POINTER")
def frame_pointer(path: PathView, contract) -> Iterator[Claim]:
    ops = path.ops
    seen = set()
    for point in path.frame_points:
        same = tuple(ops.identity(value) for value in (point.guard, point.rbp, point.saved, point.frame_rsp,
                                                        point.frame_rbp)) + (point.call,)
        if same in seen:        # as an earlier point: the same claims (the first one's place is kept)
            continue
        seen.add(same)
        slot = _frame_slot(path, point)
        not_callers = ops.ne(point.rbp, point.frame_rbp)
        at_slot = ops.eq(point.rbp, slot)
        yield Claim("rbp", ops.all_(point.guard, not_callers, ops.not_(at_slot)), point.origin,
                    slot, point.rbp)
        yield Claim("saved-rbp", ops.all_(point.guard, not_callers, at_slot,
                                          ops.ne(point.saved, point.frame_rbp)),
                    point.origin, point.frame_rbp, point.saved)
        if point.call:
            set_up = ops.all_(at_slot, ops.eq(point.saved, point.frame_rbp))
            yield Claim("call", ops.all_(point.guard, ops.not_(set_up)), point.origin, slot, point.rbp)


# --- properties of a wrapper contract -------------------------------------------------

def _input_registers(contract) -> tuple[str, ...]:
    return ("rax",) + tuple(dict.fromkeys(
        list(contract.inputs) + list(contract.input_registers) + list(contract.input_stack)
        + list(contract.input_constants)))


def _expected_input(path: PathView, contract, reg: str):
    ops = path.ops
    if reg == "rax":
        leaf = path.entry[contract.leaf] if isinstance(contract.leaf, str) else ops.const(contract.leaf)
        version = contract.version_field
        if version is None:
            return leaf
        byte = path.entry_load(struct_address(path, contract, version.name), version.size)
        return ops.or_(leaf, ops.shl(ops.widen(byte, 8 * version.size), contract.leaf_version.shift))
    if reg in contract.input_constants:
        return ops.const(contract.input_constants[reg])
    if reg in contract.input_registers:
        return path.entry[contract.input_registers[reg]]
    if reg in contract.input_stack:
        return path.entry_load(ops.add(path.entry["rsp"], ops.const(8 * contract.input_stack[reg])), 8)
    return path.entry_load(struct_address(path, contract, reg), 8)


def _input_details(contract) -> tuple[str, ...]:
    return _input_registers(contract) + ("executed",)


@checks("input-marshalling", details=_input_details, contract=True,
        along_path=_input_registers)
def input_marshalling(path: PathView, contract) -> Iterator[Claim]:
    executed = 0
    for event in path.events:
        if event.kind != contract.instruction:
            continue
        executed += 1
        for reg in _input_registers(contract):
            expected = _expected_input(path, contract, reg)
            yield Claim(reg, path.ops.ne(event.inputs[reg], expected), event.origin,
                        expected, event.inputs[reg])
    if path.returned and not executed:
        # A wrapper that returns without asking the module marshals nothing.
        yield Claim("executed", path.ops.boolean(True), path.where, f"a {contract.instruction}", "none")


def _output_details(contract) -> tuple[str, ...]:
    return tuple(contract.outputs) + ("other fields",)


@checks("output-marshalling", details=_output_details, contract=True)
def output_marshalling(path: PathView, contract) -> Iterator[Claim]:
    event = path.last_event(contract.instruction)
    if not path.returned or event is None or event.outcome is not Outcome.COMPLETION:
        return
    ops = path.ops
    written = struct_written(path, contract)
    for name in contract.outputs:
        actual = path.load(struct_address(path, contract, name), 8)
        yield Claim(name, ops.all_(written, ops.ne(actual, event.after[name])), path.where,
                    event.after[name], actual)
    for name, changed in changed_fields(path, contract, contract.offsets):
        if name in contract.outputs:
            yield Claim("other fields", ops.all_(ops.not_(written), changed), path.where)
        else:
            yield Claim("other fields", changed, path.where)


@checks("status-return", contract=True, applies=lambda c: c.returns == "status")
def status_return(path: PathView, contract) -> Iterator[Claim]:
    event = path.last_event(contract.instruction)
    if path.returned and event is not None and event.outcome is Outcome.COMPLETION:
        yield Claim("", path.ops.ne(path.final["rax"], event.status), path.where,
                    event.status, path.final["rax"])


@checks("r10-to-rax", contract=True, applies=lambda c: c.returns == "r10")
def r10_to_rax(path: PathView, contract) -> Iterator[Claim]:
    event = path.last_event(contract.instruction)
    if path.returned and event is not None and event.outcome is Outcome.COMPLETION:
        ops = path.ops
        yield Claim("", ops.all_(ops.eq(event.status, ops.const(0)),
                                 ops.ne(path.final["rax"], event.after["r10"])),
                    path.where, event.after["r10"], path.final["rax"])


@checks("vmfailinvalid-code", contract=True, applies=lambda c: c.failure_codes)
def vmfailinvalid_code(path: PathView, contract) -> Iterator[Claim]:
    if path.returned and any(e.outcome is Outcome.VMFAILINVALID for e in path.events):
        expected = path.ops.const(abi.TDX_SEAMCALL_VMFAILINVALID)
        yield Claim("", path.ops.ne(path.final["rax"], expected), path.where, expected, path.final["rax"])


_FAULT_DETAILS = {Outcome.FAULT_UD: "#UD", Outcome.FAULT_GP: "#GP"}


@checks("fault-codes", details=lambda c: tuple(_FAULT_DETAILS.values()), contract=True,
        applies=lambda c: c.failure_codes)
def fault_codes(path: PathView, contract) -> Iterator[Claim]:
    if not path.returned:
        return
    for event in path.events:
        if event.outcome.is_fault:
            expected = path.ops.const(abi.TDX_SW_ERROR | event.outcome.trap)
            yield Claim(_FAULT_DETAILS[event.outcome], path.ops.ne(path.final["rax"], expected),
                        path.where, expected, path.final["rax"])


@checks("failure-no-output", contract=True, applies=lambda c: bool(c.outputs) and c.failure_codes)
def failure_no_output(path: PathView, contract) -> Iterator[Claim]:
    if path.returned and any(e.outcome is not Outcome.COMPLETION for e in path.events):
        for name, changed in changed_fields(path, contract, contract.offsets):
            yield Claim("", changed, path.where, f"{name} unchanged", f"{name} written")


@checks("scrub", details=lambda c: SCRUBBED, contract=True, applies=lambda c: c.scrub, relational=True)
def scrub(path: PathView, varied: PathView, contract) -> Iterator[Claim]:
    if path.returned:
        for reg in SCRUBBED:
            yield Claim(reg, path.ops.ne(path.final[reg], varied.final[reg]), path.where,
                        path.final[reg], varied.final[reg])


@checks("panic-on-tdcall-failure", contract=True, applies=lambda c: c.panic_on_failure)
def panic_on_tdcall_failure(path: PathView, contract) -> Iterator[Claim]:
    if path.end in (PathEnd.PANIC, PathEnd.FALLTHROUGH):     # a fall-through may still reach it: undecided
        return
    ops = path.ops
    for event in path.events:
        if event.kind == "tdcall" and event.outcome is Outcome.COMPLETION:
            yield Claim("", ops.ne(event.status, ops.const(0)), path.where or event.origin,
                        "panic", path.end)
