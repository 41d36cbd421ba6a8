"""Which leaves may leave a function's extended (AVX) state INIT: its
callers' obligation.

The live-migration SEAMCALLs may reset the AVX, AVX2 and AVX-512 state to
its INIT state (SPEC section 5); a wrapper does not save it, so callers
that pass such a leaf must save the FPU state first (KVM does around
VCPU_RUN).  The leaves are declared (``model.abi.EXTENDED_STATE_RESETS``,
``--resets-extended``), and the model makes the state INIT exactly when a
TDX instruction completes with one of them (:mod:`model.tdx`).  This
module asks, path by path, which declared leaf may do it:

* a reset is *possible* at a completion event with leaf L when the path
  condition (with the stated assumptions) allows the instruction's leaf
  number (RAX bits 15..0) to be L and the state at the path's end to
  differ from the entry's; an unknown answer counts as possible (the
  obligation is then stated, never dropped);
* on a path that returns it is a caller obligation, printed with the
  result like an assumption ("callers of __seamcall_ret passing leaf 0x40
  in RDI must save the FPU state first ..."); a path that does not return
  (a panic) gives the caller nothing to save for.  A wrapper whose leaf is
  a constant says so: its callers must save it whenever they call it.

``extended-state`` (:mod:`proofs.properties`) is the obligation proper: at
return the state is the entry's or that INIT, which the model makes sure
of -- so a declared reset never makes the wrapper's result a failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from grammar.source import Origin
from model import bv
from model.executor import PathResult, Solver
from model.outcomes import Verdict
from model.tdx import Outcome, resets_extended
from model.transfers import PathEnd
from proofs.contracts import Contract


@dataclass(frozen=True)
class Reset:
    """A completion of the ``kind`` instruction at ``origin`` that may
    reset the extended state with ``leaf``; ``returns``: on a path that
    returns to the caller."""

    kind: str
    leaf: int
    origin: Origin
    returns: bool


def possible_resets(path: PathResult, resets: Mapping[str, tuple[int, ...]], solver: Solver,
                    context: tuple) -> list[Reset]:
    """The declared leaves that may reset the extended state on ``path``
    (``context``: its condition and the per-path assumptions)."""
    found = []
    changed = bv.negation(bv.eq(path.extended, path.entry_extended))
    for event in path.events:
        if event.outcome is not Outcome.COMPLETION:
            continue
        for leaf in resets.get(event.kind, ()):
            if solver.check(context + (resets_extended(event.inputs["rax"], (leaf,)), changed))[0] \
                    is not Verdict.UNSAT:
                found.append(Reset(event.kind, leaf, event.origin, path.end is PathEnd.RETURNED))
    return found


def caller_obligations(function: str, contract: Contract | None, resets: list[Reset]) -> list[str]:
    """The caller obligations of ``resets`` (each once), as the result prints them."""
    texts = []
    for reset in dict.fromkeys(reset for reset in resets if reset.returns):
        if contract is not None and isinstance(contract.leaf, int):
            who = f"callers of {function} (it always calls leaf {reset.leaf:#x})"
        elif contract is not None:
            who = f"callers of {function} passing leaf {reset.leaf:#x} in {contract.leaf.upper()}"
        else:
            who = f"callers of {function} whose {reset.kind} gets leaf {reset.leaf:#x} in RAX"
        texts.append(f"caller obligation: {who} must save the FPU state first: on completion of the "
                     f"{reset.kind} at {reset.origin.render()} the TDX module may reset the AVX/AVX2/AVX-512 "
                     f"state to INIT (a leaf declared to reset it; extended-state)")
    return texts
