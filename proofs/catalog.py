"""The property catalog in words (SPEC.md section 7): every property ID, in
report order, with what the tool says about it.

Each property has a one-line ``summary`` (the ``--help`` listing, the SARIF
rule's short description: at most :data:`SUMMARY_WIDTH` characters, so that
the listing fits 100 columns), a ``description`` (what is proved, on which
paths, one obligation per what) and ``help`` (what a refutation usually
means in the source, and how such code is fixed).

The properties also fall into :data:`GROUPS`, the columns of ``check``'s
summary table: a few headings a kernel reviewer knows (the registers the
caller relies on, the stack, memory accesses, the unwinder, control flow,
the wrapper's ABI, its error paths, scrubbing), each property in exactly
one.  A group holds either properties that need a wrapper contract or
properties that do not, never both, so that a row without a contract
shows the whole group as not checked rather than hiding the unchecked
properties behind the others' verdict.  A new property is added to the
catalog and to one group: nothing else.

This is the one source of those words, and data only (it imports nothing):
``--help`` lists the catalog without loading Z3, and
:mod:`proofs.properties` registers exactly one checker for each ID here
(:data:`CATALOG` is its list of IDs), so the words and the checkers cannot
drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

SUMMARY_WIDTH = 73
"""The longest summary: ``--help`` prints it after a two-space indent and
the longest ID padded to 25 columns."""


@dataclass(frozen=True)
class PropertyText:
    summary: str
    description: str
    help: str


TEXTS: dict[str, PropertyText] = {
    "callee-saved": PropertyText(
        "RBX, RBP, R12-R15 equal their entry values at every return",
        "At every return, each callee-saved register of the x86-64 C ABI (RBX, RBP, R12, R13, R14, R15) "
        "holds the value it had at entry, whatever the TDX module returned and whichever path (completion, "
        "VMfailInvalid, a handled fault) the function took.  One obligation per register.",
        "The register named by the finding is changed at a return: a pop missing on one path (often the "
        "fault or failure path), pops in another order than the pushes, the register used as scratch without "
        "being saved, or a TDX instruction whose outputs land in it without a save/restore around it "
        "(TDX_MODULE_CALL's saved=1 form saves RBX and R12-R15 itself).  The trace shows the steps that "
        "changed it."),
    "stack-balance": PropertyText(
        "RSP = entry RSP + 8 at every return",
        "At every return the stack pointer is the entry RSP plus 8: the ret consumed the slot the caller's "
        "call pushed, and nothing else is left on or taken off the stack.",
        "A push without its pop (or the reverse) on some path, or an add/sub of RSP not undone before the "
        "ret; the trace shows RSP at each step of the path."),
    "return-address": PropertyText(
        "the return-address slot at entry RSP is unchanged when ret reads it",
        "The 8 bytes at the entry RSP, the return address the caller's call pushed, are unchanged when ret "
        "reads them.",
        "A store overwrote the return address: a write through RSP at the wrong offset, a push that lands "
        "on the slot after an unbalanced pop, or an argument pointer aimed at the stack."),
    "no-red-zone": PropertyText(
        "no memory access below the current RSP",
        "No memory access (read or write, including the implicit ones of push, pop, call) touches the stack "
        "below the current RSP: the kernel has no red zone, and an interrupt or NMI may overwrite those "
        "bytes at any moment.",
        "Move RSP down first (sub or push) and access at or above it; a negative offset from RSP is "
        "never safe in the kernel."),
    "frame": PropertyText(
        "every write lands in the function's own frame or a struct of its contract",
        "Every memory write lands in the function's own stack frame (the stack below the entry RSP it may use) "
        "or in a region the contract names (its args/out struct).",
        "A store at a wrong offset into the struct (past its end), through the wrong register, or through a "
        "pointer the contract does not pass.  If the wrapper is meant to write there, name the region in its "
        "contract (--contracts)."),
    "fault-handled": PropertyText(
        "every instruction that may fault has an exception-table entry",
        "Every instruction that may fault in the model (a TDX instruction's #UD or #GP) routes each trap it "
        "may raise through the exception table, so that no path ends in an oops.",
        "Add an _ASM_EXTABLE (or _ASM_EXTABLE_TYPE) entry for the faulting instruction, pointing at a fixup "
        "that returns the error code and jumps back."),
    "direction-flag": PropertyText(
        "DF is clear at return",
        "The direction flag is clear at every return, as the C ABI requires.",
        "A std (or a popf of a flags value with DF set) on some path without a cld before the ret."),
    "no-fallthrough": PropertyText(
        "no path runs past the end of the function's code",
        "No path leaves the function's code other than by ret, the return thunk, a tail call or a "
        "never-returning call: not past its last instruction, not by a jump to a code label outside every "
        "function.  What runs after such a path is not the function's code, so the properties judged at a "
        "return are unknown on it.",
        "A deleted RET, a fixup that lacks its jmp back, or a jump to a label outside the function; the "
        "finding says after which line the path leaves."),
    "extended-state": PropertyText(
        "the AVX state at return is the entry's, or INIT after a declared leaf",
        "At every return the extended (AVX, AVX2, AVX-512) state is the one the function was entered with, "
        "unless a TDX instruction completed with a leaf declared to reset it to its INIT state "
        "(--resets-extended; SPEC section 5: the live-migration SEAMCALLs).  Such a reset is not the "
        "wrapper's fault but its callers' business: each leaf that may reset it on a path that returns is "
        "printed with the result as a caller obligation (callers passing that leaf must save the FPU state "
        "first), like an assumption, under its function.",
        "The wrapper left the extended state neither as it found it nor in the INIT state a declared leaf "
        "makes: the model has no other instruction that writes it, so this is a bug of tdxproof's model."),
    "frame-pointer": PropertyText(
        "with CONFIG_FRAME_POINTER, RBP keeps a valid chain and calls have a frame",
        "With CONFIG_FRAME_POINTER, at every instruction RBP is the caller's RBP or points at the slot just "
        "below the return address that holds the caller's RBP (the frame FRAME_BEGIN sets up), and every "
        "call is made with that frame set up: what the frame-pointer unwinder needs at an interrupt or NMI.  "
        "Obligations: rbp (RBP is one of the two), saved-rbp (the slot holds the caller's RBP while RBP "
        "points at it), call (each call has the frame).",
        "RBP used for something else (flags, a scratch value, what the firmware left in it), a frame torn "
        "down too early, or a call before FRAME_BEGIN: keep RBP for the frame, and wrap a function that calls "
        "in FRAME_BEGIN/FRAME_END (objtool's rule)."),
    "input-marshalling": PropertyText(
        "at the TDX instruction each input register holds what the ABI says",
        "At the TDX instruction, each input register holds what the contract's ABI says: the leaf in RAX, "
        "each args-struct field or argument register in its register.  One obligation per input register, "
        "and 'executed': a path that returns has executed the instruction.",
        "A load from the wrong struct offset, an argument register overwritten before the instruction, or a "
        "missing load; the detail names the register, the trace shows its last write."),
    "output-marshalling": PropertyText(
        "on completion each output field holds the instruction's output register",
        "On a path where the TDX instruction completed, each output field of the struct holds the "
        "instruction's corresponding output register (one obligation per output field), and the struct's "
        "other bytes are unchanged ('other fields').",
        "A store to the wrong offset or from the wrong register, a register overwritten before its store, "
        "or a store missing on one path."),
    "status-return": PropertyText(
        "on completion RAX at return is the instruction's status",
        "On a path where the TDX instruction completed, RAX at return is the status the instruction "
        "returned in RAX.",
        "RAX overwritten after the TDX instruction (a pop or mov into it) and not restored, or the status "
        "replaced on the success path."),
    "r10-to-rax": PropertyText(
        "on completion with TDCALL status 0, RAX at return is the TDVMCALL's R10",
        "For a TDVMCALL wrapper that returns the hypercall's result: on completion with TDCALL status 0, "
        "RAX at return is the R10 the TDVMCALL returned.",
        "The mov %r10, %rax is missing, on the wrong path, or R10 is overwritten before it."),
    "vmfailinvalid-code": PropertyText(
        "on VMfailInvalid RAX = TDX_SEAMCALL_VMFAILINVALID",
        "On the VMfailInvalid path (CF=1 after SEAMCALL), RAX at return is TDX_SEAMCALL_VMFAILINVALID.",
        "The CF test (jc/jnc) is missing, or its path loads another constant into RAX."),
    "fault-codes": PropertyText(
        "on a fault with trap N, RAX = TDX_SW_ERROR | N",
        "On a handled fault of the TDX instruction with trap number N, RAX at return is TDX_SW_ERROR | N.  "
        "One obligation per trap (#UD, #GP).",
        "The fixup loads another constant, or does not OR the trap number (which the exception-table "
        "handler leaves in RAX) into TDX_SW_ERROR."),
    "failure-no-output": PropertyText(
        "on failure paths nothing is written to the struct",
        "On a path where the TDX instruction did not complete (VMfailInvalid, a fault), nothing is written "
        "to the output struct.",
        "The output stores run before, or regardless of, the failure test: move them after it."),
    "scrub": PropertyText(
        "no register but RAX and callee-saved ones returns a module/VMM value",
        "At return, no register other than RAX and the restored callee-saved ones holds a value that "
        "depends on what the TDX module or VMM returned: the path is run twice with independent module "
        "outputs, and those registers must agree.  One obligation per register.",
        "Clear the register (xor %reg, %reg) after its output is stored and before the return, on every "
        "path: a value the host controls must not reach the caller."),
    "panic-on-tdcall-failure": PropertyText(
        "a nonzero TDCALL status reaches the never-returning failure function",
        "For a legacy hypercall wrapper: a nonzero TDCALL status reaches the never-returning failure "
        "function (__tdx_hypercall_failed).",
        "The status test after TDCALL, or the call to the failure function, is missing or skipped."),
}
"""What is said about each property, by ID, in report order."""

CATALOG: tuple[str, ...] = tuple(TEXTS)
"""Every property ID of SPEC.md section 7, in report order."""


@dataclass(frozen=True)
class Group:
    """A column of the summary table: its heading, what it checks in a few
    words (the table's legend), and its properties."""

    name: str
    title: str
    properties: tuple[str, ...]


GROUPS: tuple[Group, ...] = (
    Group("regs", "registers, flags and extended state the caller relies on",
          ("callee-saved", "direction-flag", "extended-state")),
    Group("stack", "the stack at return", ("stack-balance", "return-address")),
    Group("memory", "where accesses land", ("no-red-zone", "frame")),
    Group("unwind", "the frame-pointer chain", ("frame-pointer",)),
    Group("control", "how paths leave", ("no-fallthrough", "fault-handled")),
    Group("ABI", "the contract's inputs, outputs and return value",
          ("input-marshalling", "output-marshalling", "status-return", "r10-to-rax")),
    Group("errors", "the failure paths", ("vmfailinvalid-code", "fault-codes", "failure-no-output",
                                          "panic-on-tdcall-failure")),
    Group("scrub", "no module or VMM value left in registers", ("scrub",)),
)
"""The summary table's columns, in table order; every property of the
catalog is in exactly one (``tests/test_table.py`` holds them to it)."""
