"""The TDX instructions SEAMCALL and TDCALL: what the model lets the module do.

One instruction becomes one :class:`Transition` per possible outcome; the
executor forks a path per transition.  What each outcome writes to the
registers and flags is one table, :data:`EFFECTS`, which the executor and
the counterexample replay both read (:func:`outcome_changes`).
Decisions (SPEC.md sections 5-6):

* **SEAMCALL** has three outcomes, each possible unless narrowed:
  VMfailInvalid (CF=1 and, as for every VMX "VMfailInvalid", PF AF ZF SF OF
  cleared; no register changes), a fault #UD or #GP (no register or flag
  changes; the exception table decides where it resumes and whether RAX gets
  the trap number), and completion (the "VMsucceed" flags: CF PF AF ZF SF OF
  all cleared; RAX <- the leaf's status; the output registers <- the
  module's values).
* **TDCALL** completes (and, with ``tdcall_may_fault``, may also fault #UD or
  #GP).  RAX <- status; the arithmetic flags after it are values the module
  chooses (the model does not assume the module clears them).
* **Which registers the module may change** on completion, first rule that
  applies: (1) TDCALL leaf 0 (TDG.VP.VMCALL, RAX provably 0) with RCX
  provably one valid bitmap -- exactly the registers the bitmap exposes
  (``model.abi.exposed_registers``); a bitmap exposing RAX, RCX, RSP or bits
  above 15 is not valid and falls through to (3); (2) an output set given
  per instruction kind by the caller (a contract's narrowed assumption;
  the firmware mode does not widen it); (3) the worst case
  ``MODULE_WORST_CASE_OUTPUTS``, plus RBP with firmware ``clobbers-rbp``.
  RSP and DF/IF never change.
* **The module's values are uninterpreted functions** of the call's ordinal
  on the path (0 for the first TDX instruction of that kind, 1 for the
  next, ...) and of the registers the module reads.  So the same inputs at
  the same call give the same outputs, which equivalence checking relies
  on, while two calls in sequence are not forced to agree (the module has
  state).  **What it reads**, first rule that applies: (1) a read set given
  per instruction kind by the caller (an equivalence spec's
  ``module.reads``); (2) a TDG.VP.VMCALL with RCX provably one valid
  bitmap (as in rule (1) of the outputs) -- RAX, RCX and the registers the
  bitmap exposes, and nothing else: the TDX module hands the VMM only those
  (SPEC.md section 5, :data:`VMCALL_READS_SOURCE`), so a register it keeps
  from the VMM (RBP holding a wrapper's flags, say) cannot change the
  VMM's answers; its status, flags and (with ``tdcall_may_fault``) faults
  are read the same way -- unless ``vmcall_reads_exposed`` is off, as
  ``check`` has it: a single run never compares the module's answers to
  two sets of inputs at one call, so there the read set changes no
  verdict, only the solver's counterexample values; (3) every GPR but
  RSP, whose value is the caller's stack depth, not an input.  Function names are
  ``<namespace>_<kind>_<register>`` (``_status`` for RAX, ``_flag_<f>`` for
  TDCALL's flags), with ``vmcall_<bitmap>_`` after the kind under rule
  (2), so that one name has one arity; a second run with another
  ``namespace`` gives an independent module, which relational checks
  (``scrub``) use.
* **Extended (AVX) state** is one abstract value of sort ``ExtendedState``,
  preserved unless the instruction completes with a leaf declared to reset
  it (``extended_resets``; then it becomes ``extended_init``, the
  architectural INIT state).  The leaf is RAX's leaf-number field, bits
  15..0 (:func:`leaf_number`): the version bits above it (``leaf |
  version << 16``) do not make another leaf, so a declared leaf matches
  whatever version a caller passes.  VMfailInvalid and faults keep it.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Callable, Mapping

import z3

from grammar.ast import GPR64
from grammar.source import Origin
from model import abi, bv
from model.extable import Fixup
from model.provenance import ModuleFunction

SEAMCALL, TDCALL = "seamcall", "tdcall"
KINDS = (SEAMCALL, TDCALL)

FIRMWARE_MODES = ("spec", "clobbers-rbp")

DEFAULT_MODULE_READS: tuple[str, ...] = tuple(reg for reg in GPR64 if reg != "rsp")
"""The registers the module's outputs depend on, unless configured or a
TDG.VP.VMCALL's bitmap says less."""

VMCALL_READS_SOURCE = ("SPEC section 5: a TDG.VP.VMCALL hands the VMM only RAX, RCX and the registers "
                       "its RCX bitmap exposes")
"""Where the read set of a TDG.VP.VMCALL with a known bitmap comes from."""

ARITHMETIC_FLAGS: tuple[str, ...] = ("cf", "pf", "af", "zf", "sf", "of")

EXTENDED_STATE = z3.DeclareSort("ExtendedState")
EXTENDED_INIT = z3.Const("extended_init", EXTENDED_STATE)


LEAF_NUMBER_BITS = 16
"""RAX bits 15..0 hold a SEAMCALL/TDCALL leaf's number (the bits above: its version)."""


def leaf_number(rax: z3.BitVecRef) -> z3.BitVecRef:
    """The leaf-number field of a TDX instruction's RAX.

    >>> z3.simplify(leaf_number(bv.const(0x10040, 64)))
    64
    """
    return z3.Extract(LEAF_NUMBER_BITS - 1, 0, rax)


def resets_extended(rax: z3.BitVecRef, leaves: tuple[int, ...]) -> z3.BoolRef:
    """Whether RAX names one of ``leaves`` (declared to reset the extended state)."""
    return bv.disjunction([bv.eq(leaf_number(rax), bv.const(leaf, LEAF_NUMBER_BITS)) for leaf in leaves])


def entry_extended_state(prefix: str) -> z3.ExprRef:
    """The unknown extended (AVX) state at function entry."""
    return z3.Const(f"{prefix}_extended", EXTENDED_STATE)


class Outcome(enum.Enum):
    """How a TDX instruction ended."""

    COMPLETION = "completion"
    VMFAILINVALID = "vmfailinvalid"
    FAULT_UD = "fault #UD"
    FAULT_GP = "fault #GP"

    @property
    def trap(self) -> int | None:
        """The trap number of a fault outcome.

        >>> Outcome.FAULT_GP.trap, Outcome.COMPLETION.trap
        (13, None)
        """
        return {Outcome.FAULT_UD: abi.TRAP_UD, Outcome.FAULT_GP: abi.TRAP_GP}.get(self)

    @property
    def is_fault(self) -> bool:
        return self.trap is not None


ALL_OUTCOMES = frozenset(Outcome)
FAULTS = (Outcome.FAULT_UD, Outcome.FAULT_GP)


# --- what each outcome does: the one table both interpreters read -------------

@dataclass(frozen=True)
class Effect:
    """What one outcome of a TDX instruction does to the caller's state.

    ``module_registers``: the module's output registers and its status
    (into RAX) are written; ``flags``: the arithmetic flags it sets to
    constants, or ``None`` when the module chooses them (its values);
    ``routed``: execution continues through the exception table (the
    fixup's RAX value, if it sets one, is the only change)."""

    module_registers: bool
    flags: Mapping[str, int] | None
    routed: bool = False


VMSUCCEED_FLAGS: Mapping[str, int] = {flag: 0 for flag in ARITHMETIC_FLAGS}
"""The flags of a VMX "VMsucceed": CF PF AF ZF SF OF cleared."""
VMFAILINVALID_FLAGS: Mapping[str, int] = {flag: int(flag == "cf") for flag in ARITHMETIC_FLAGS}
"""The flags of a VMX "VMfailInvalid": CF set, PF AF ZF SF OF cleared."""

EFFECTS: Mapping[tuple[str, Outcome], Effect] = {
    (SEAMCALL, Outcome.COMPLETION): Effect(True, VMSUCCEED_FLAGS),
    (TDCALL, Outcome.COMPLETION): Effect(True, None),
    **{(kind, Outcome.VMFAILINVALID): Effect(False, VMFAILINVALID_FLAGS) for kind in KINDS},
    **{(kind, fault): Effect(False, {}, routed=True) for kind in KINDS for fault in FAULTS},
}
"""Every (instruction kind, outcome) and what it does (module docstring)."""


def outcome_changes(kind: str, outcome: Outcome, constant: Callable[[int, int], object],
                    fixup: Fixup | None = None, outputs: Mapping[str, object] = {}, status: object = None,
                    module_flags: Mapping[str, object] = {}) -> tuple[dict, dict]:
    """(registers, flags) that ``outcome`` of a ``kind`` instruction writes,
    by :data:`EFFECTS`, in a value domain: ``constant(value, width)`` makes
    its constants; ``outputs``, ``status`` and ``module_flags`` are the
    module's values on completion, ``fixup`` the route of a fault.

    >>> outcome_changes(SEAMCALL, Outcome.VMFAILINVALID, lambda value, width: value)[1]["cf"]
    1
    """
    effect = EFFECTS[kind, outcome]
    registers = dict(outputs, rax=status) if effect.module_registers else {}
    if effect.routed and fixup is not None and fixup.rax is not None:
        registers = {"rax": constant(fixup.rax, 64)}
    if effect.flags is None:
        flags = dict(module_flags)
    else:
        flags = {flag: constant(value, 1) for flag, value in effect.flags.items()}
    return registers, flags


@dataclass(frozen=True, eq=False)
class TdxEvent:
    """One TDX instruction on a path, as the proofs see it.

    ``inputs`` are all sixteen GPRs just before the instruction (what the
    module saw); ``reads`` the ones its outputs depend on; ``outputs`` the
    registers the module may have changed, each bound to its new value (a
    function application), on completion only; ``status`` the new RAX on
    completion; ``output_rule`` says which rule chose ``outputs`` (for the
    report's assumptions); ``fixup`` the exception-table route of a fault
    (``None`` when the fault has no entry: an oops); ``flags`` the
    arithmetic flags the instruction set (none on a fault).
    """

    kind: str
    index: int
    outcome: Outcome
    origin: Origin
    inputs: Mapping[str, z3.BitVecRef]
    reads: tuple[str, ...] = ()
    outputs: Mapping[str, z3.BitVecRef] = field(default_factory=dict)
    status: z3.BitVecRef | None = None
    output_rule: str = ""
    bitmap: int | None = None
    fixup: Fixup | None = None
    flags: Mapping[str, z3.BitVecRef] = field(default_factory=dict)

    @property
    def merge_key(self) -> tuple:
        """What two paths must share for their events to be merged: the
        same instruction and outcome, the same output set, the same route."""
        return (self.kind, self.index, self.outcome, self.origin, tuple(self.outputs),
                self.output_rule, self.bitmap, self.fixup)

    @property
    def trap(self) -> int | None:
        return self.outcome.trap

    def map_terms(self, rewrite: Rewrite) -> "TdxEvent":
        """The same event with ``rewrite`` applied to its values."""
        def mapping(values: Mapping) -> dict:
            return {key: rewrite(value) for key, value in values.items()}
        return dataclasses.replace(self, inputs=mapping(self.inputs), outputs=mapping(self.outputs),
                                   flags=mapping(self.flags),
                                   status=None if self.status is None else rewrite(self.status))

    def describe(self) -> str:
        """One line for reports, e.g. ``seamcall #0: completion``."""
        return f"{self.kind} #{self.index}: {self.outcome.value}"


@dataclass(frozen=True, eq=False)
class Transition:
    """One outcome of a TDX instruction: the new register, flag and extended
    values, and where execution continues (``resume``: a label, for a routed
    fault; ``oops``: a fault with no exception-table entry); ``sources``:
    the module functions it applies, by name (:mod:`model.provenance`).
    The values are the domain's: Z3 terms here, integers in the replay."""

    event: TdxEvent
    registers: Mapping[str, z3.BitVecRef]
    flags: Mapping[str, z3.BitVecRef]
    extended: z3.ExprRef
    assumption: str
    resume: str | None = None
    oops: bool = False
    sources: Mapping[str, ModuleFunction] = field(default_factory=dict)


Rewrite = Callable[[z3.ExprRef], z3.ExprRef]
"""A renaming or substitution of terms (what the records' ``map_terms`` take)."""

KnownValue = Callable[[z3.BitVecRef], "int | None"]
"""Answers the single value a term must have on the current path, or None."""


@dataclass(frozen=True)
class TdxModel:
    """The SEAMCALL/TDCALL model, configured once per executor run."""

    firmware: str = "spec"
    module_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    module_reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    outcomes: Mapping[str, frozenset[Outcome]] = field(default_factory=dict)
    tdcall_may_fault: bool = False
    extended_resets: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    namespace: str = "module"
    vmcall_reads_exposed: bool = True

    def __post_init__(self) -> None:
        if self.firmware not in FIRMWARE_MODES:
            raise ValueError(f"firmware mode {self.firmware!r} is not one of {FIRMWARE_MODES}")
        for table in (self.module_outputs, self.module_reads, self.outcomes, self.extended_resets):
            for kind in table:
                if kind not in KINDS:
                    raise ValueError(f"unknown TDX instruction kind {kind!r}")
        for kind, leaves in self.extended_resets.items():
            if any(not 0 <= leaf < 1 << LEAF_NUMBER_BITS for leaf in leaves):
                raise ValueError(f"{kind} leaves {leaves} are not all {LEAF_NUMBER_BITS}-bit leaf numbers")
        for kind, registers in self.module_outputs.items():
            if "rsp" in registers or "rax" in registers:
                raise ValueError(f"{kind} outputs may not name rsp or rax (rax is the status)")

    # --- the pieces -------------------------------------------------------

    def possible_outcomes(self, kind: str) -> tuple[Outcome, ...]:
        """The outcomes forked, in a fixed order.

        >>> [o.value for o in TdxModel().possible_outcomes(TDCALL)]
        ['completion']
        >>> len(TdxModel().possible_outcomes(SEAMCALL))
        4
        """
        if kind == SEAMCALL:
            allowed = ALL_OUTCOMES
        elif self.tdcall_may_fault:
            allowed = frozenset((Outcome.COMPLETION,) + FAULTS)
        else:
            allowed = frozenset((Outcome.COMPLETION,))
        allowed &= self.outcomes.get(kind, ALL_OUTCOMES)
        return tuple(outcome for outcome in Outcome if outcome in allowed)

    def vmcall_bitmap(self, kind: str, registers: Mapping[str, z3.BitVecRef], known: KnownValue) -> int | None:
        """The RCX bitmap of a TDG.VP.VMCALL: a TDCALL with RAX provably 0 and
        RCX provably one valid bitmap (:func:`valid_bitmap`); else None."""
        if kind != TDCALL or known(registers["rax"]) != abi.TDG_VP_VMCALL:
            return None
        bitmap = known(registers["rcx"])
        return bitmap if bitmap is not None and valid_bitmap(bitmap) else None

    def reads(self, kind: str, bitmap: int | None = None) -> tuple[str, ...]:
        """The registers the module's values depend on (module docstring).

        >>> TdxModel().reads(TDCALL, abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST)
        ('rax', 'rcx', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
        >>> TdxModel(module_reads={TDCALL: ("rax",)}).reads(TDCALL, abi.TDVMCALL_EXPOSE_REGS_MASK)
        ('rax',)
        """
        if kind in self.module_reads:
            return tuple(self.module_reads[kind])
        if bitmap is not None and self.vmcall_reads_exposed:
            return ("rax", "rcx") + abi.exposed_registers(bitmap)
        return DEFAULT_MODULE_READS

    def worst_case(self) -> tuple[str, ...]:
        """The registers the module may change when nothing narrows them.

        >>> TdxModel(firmware="clobbers-rbp").worst_case()[-1]
        'rbp'
        """
        extra = ("rbp",) if self.firmware == "clobbers-rbp" else ()
        return abi.MODULE_WORST_CASE_OUTPUTS + extra

    def output_set(self, kind: str, bitmap: int | None) -> tuple[tuple[str, ...], str]:
        """(registers the module may change, the rule that said so), for a
        call with ``bitmap`` (:meth:`vmcall_bitmap`)."""
        if bitmap is not None:
            return abi.exposed_registers(bitmap), f"TDG.VP.VMCALL exposes {bitmap:#x}"
        if kind in self.module_outputs:
            return tuple(self.module_outputs[kind]), "narrowed by contract"
        return self.worst_case(), f"worst case (firmware {self.firmware})"

    def _apply(self, kind: str, what: str, index: int, registers: Mapping[str, z3.BitVecRef],
               bitmap: int | None, flag: bool = False) -> tuple[z3.BitVecRef, tuple[str, ModuleFunction]]:
        """The module's value ``what`` for this call, and its function's source."""
        reads = self.reads(kind, bitmap)
        arguments = [bv.const(index, 64)] + [registers[reg] for reg in reads]
        variant = f"vmcall_{bitmap:x}" if reads != self.reads(kind) else ""
        width = 1 if flag else 64
        source = ModuleFunction(self.namespace, kind, what, len(arguments), width, flag, variant)
        name = source.name_in(self.namespace)
        return bv.apply(bv.function(name, len(arguments), width), arguments), (name, source)

    def _extended_after(self, kind: str, rax: z3.BitVecRef, extended: z3.ExprRef) -> z3.ExprRef:
        leaves = self.extended_resets.get(kind, ())
        if not leaves:
            return extended
        return z3.If(resets_extended(rax, leaves), EXTENDED_INIT, extended)

    # --- the model --------------------------------------------------------

    def transitions(self, kind: str, index: int, origin: Origin,
                    registers: Mapping[str, z3.BitVecRef], extended: z3.ExprRef,
                    routes: Mapping[Outcome, Fixup | None], known: KnownValue) -> list[Transition]:
        """Every outcome of a ``kind`` instruction.

        ``index`` is its ordinal among the ``kind`` instructions on the path;
        ``registers`` the GPRs just before it; ``routes`` the exception-table
        route of each fault outcome (:meth:`possible_outcomes`).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown TDX instruction kind {kind!r}")
        inputs = dict(registers)
        bitmap = self.vmcall_bitmap(kind, inputs, known)
        reads = self.reads(kind, bitmap)
        result = []
        for outcome in self.possible_outcomes(kind):
            if outcome is Outcome.COMPLETION:
                result.append(self._completion(kind, index, origin, inputs, bitmap, extended))
            elif outcome is Outcome.VMFAILINVALID:
                _, flags = outcome_changes(kind, outcome, bv.const)
                event = TdxEvent(kind, index, outcome, origin, inputs, reads, flags=flags)
                result.append(Transition(event, {}, flags, extended,
                                         f"{kind} at {origin.render()} may fail with VMfailInvalid"))
            else:
                fixup = routes[outcome]
                event = TdxEvent(kind, index, outcome, origin, inputs, reads, fixup=fixup)
                changed, flags = outcome_changes(kind, outcome, bv.const, fixup)
                result.append(Transition(
                    event, changed, flags, extended,
                    f"{kind} at {origin.render()} may raise {outcome.value[len('fault '):]}",
                    resume=None if fixup is None else fixup.to_label, oops=fixup is None))
        return result

    def _completion(self, kind, index, origin, inputs, bitmap, extended) -> Transition:
        outputs, rule = self.output_set(kind, bitmap)
        applied = {reg: self._apply(kind, reg, index, inputs, bitmap) for reg in outputs}
        status, status_source = self._apply(kind, "status", index, inputs, bitmap)
        applied_flags = {} if EFFECTS[kind, Outcome.COMPLETION].flags is not None else {
            flag: self._apply(kind, f"flag_{flag}", index, inputs, bitmap, flag=True) for flag in ARITHMETIC_FLAGS}
        sources = dict([source for _, source in applied.values()] + [status_source]
                       + [source for _, source in applied_flags.values()])
        values = {reg: value for reg, (value, _) in applied.items()}
        module_flags = {flag: value for flag, (value, _) in applied_flags.items()}
        changed, flags = outcome_changes(kind, Outcome.COMPLETION, bv.const, outputs=values, status=status,
                                         module_flags=module_flags)
        event = TdxEvent(kind, index, Outcome.COMPLETION, origin, inputs, self.reads(kind, bitmap),
                         outputs=values, status=status, output_rule=rule, bitmap=bitmap, flags=flags)
        assumption = (f"{kind} at {origin.render()} completes; module outputs "
                      f"{', '.join(outputs) or 'none'} ({rule})")
        if self.reads(kind, bitmap) != self.reads(kind):
            assumption += (f"; the VMM's answers depend only on "
                           f"{', '.join(r.upper() for r in self.reads(kind, bitmap))} ({VMCALL_READS_SOURCE})")
        return Transition(event, changed, flags, self._extended_after(kind, inputs["rax"], extended),
                          assumption, sources=sources)


def valid_bitmap(bitmap: int) -> bool:
    """Whether a TDG.VP.VMCALL exposure bitmap is one the model trusts:
    16 bits, not exposing RAX, RCX (the bitmap itself) or RSP.

    >>> valid_bitmap(abi.TDVMCALL_EXPOSE_REGS_MASK), valid_bitmap(0x10), valid_bitmap(1 << 16)
    (True, False, False)
    """
    forbidden = {abi.ENCODING_BIT[reg] for reg in ("rax", "rcx", "rsp")}
    return 0 <= bitmap < 1 << 16 and not any(bitmap >> bit & 1 for bit in forbidden)
