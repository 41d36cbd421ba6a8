"""TDX and System V ABI facts, as data, in one place (SPEC.md section 5).

Everything that says which register is callee-saved, where a struct field
lives or what a status constant is comes from here; the shim headers under
``model/shims`` state the same numbers for the assembler, and a test checks
that the two agree.
"""
from __future__ import annotations

CALLEE_SAVED: tuple[str, ...] = ("rbx", "rbp", "r12", "r13", "r14", "r15")
"""System V callee-saved registers (RSP is checked separately)."""

ARGUMENT_REGISTERS: tuple[str, ...] = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
"""System V integer argument registers, in order."""

CALLER_SAVED: tuple[str, ...] = ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")
"""Registers an external call may clobber."""

FLAGS: tuple[str, ...] = ("cf", "pf", "af", "zf", "sf", "of", "df", "if")
"""The modelled RFLAGS bits."""

RFLAGS_BIT: dict[str, int] = {"cf": 0, "pf": 2, "af": 4, "zf": 6, "sf": 7, "if": 9, "df": 10, "of": 11}
"""Bit position of each modelled flag in RFLAGS."""

# --- status values -------------------------------------------------------
TDX_ERROR = 1 << 63
TDX_SW_ERROR = TDX_ERROR | (0xFF << 40)
TDX_SEAMCALL_VMFAILINVALID = TDX_SW_ERROR | 0xFFFF0000
TRAP_UD = 6
TRAP_GP = 13
TDX_SEAMCALL_UD = TDX_SW_ERROR | TRAP_UD
TDX_SEAMCALL_GP = TDX_SW_ERROR | TRAP_GP
TDG_VP_VMCALL = 0
TDVMCALL_EXPOSE_REGS_MASK = 0xFFCC
TDVMCALL_EXPOSE_REGS_MASK_OLDEST = 0xFC00
TDX_HCALL_HAS_OUTPUT = 1
TDX_HCALL_ISSUE_STI = 2
TDX_FEATURES0_NO_RBP_MOD = 1 << 18

# --- argument structures: field -> byte offset ---------------------------
TDX_MODULE_ARGS: dict[str, int] = {
    "rcx": 0, "rdx": 8, "r8": 16, "r9": 24, "r10": 32, "r11": 40, "r12": 48,
    "r13": 56, "r14": 64, "r15": 72, "rbx": 80, "rdi": 88, "rsi": 96,
}
"""``struct tdx_module_args`` (unified era); ``TDX_MODULE_<reg>`` offsets."""

TDX_MODULE_VERSION_OFFSET = 104
"""``TDX_MODULE_version``: a byte field in recent trees."""

TDX_MODULE_OUTPUT: dict[str, int] = {
    "rcx": 0, "rdx": 8, "r8": 16, "r9": 24, "r10": 32, "r11": 40,
}
"""``struct tdx_module_output`` (legacy era)."""

TDX_HYPERCALL_ARGS: dict[str, int] = {
    "r8": 0, "r9": 8, "r10": 16, "r11": 24, "r12": 32, "r13": 40, "r14": 48,
    "r15": 56, "rdi": 64, "rsi": 72, "rbx": 80, "rdx": 88,
}
"""``struct tdx_hypercall_args`` (legacy era); ``TDX_HYPERCALL_<reg>``."""

TDX_HYPERCALL_ARGS_OLDEST: dict[str, int] = {
    "r10": 0, "r11": 8, "r12": 16, "r13": 24, "r14": 32, "r15": 40,
}
"""The oldest hypercall layout, which held only R10..R15."""

# --- what the TDX module may change --------------------------------------
MODULE_WORST_CASE_OUTPUTS: tuple[str, ...] = (
    "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rbx", "rdi", "rsi")
"""With the leaf unknown, every GPR but RAX (the status), RSP and RBP."""

MODULE_CALL_OUTPUTS: tuple[str, ...] = ("rcx", "rdx", "r8", "r9", "r10", "r11")
"""Outputs of the leaves the non-``saved`` wrappers are for."""

ENCODING_BIT: dict[str, int] = {
    "rax": 0, "rcx": 1, "rdx": 2, "rbx": 3, "rsp": 4, "rbp": 5, "rsi": 6, "rdi": 7,
    "r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13, "r14": 14, "r15": 15,
}
"""Register -> its bit in a TDG.VP.VMCALL exposure bitmap (RCX)."""


def exposed_registers(bitmap: int) -> tuple[str, ...]:
    """The registers a TDG.VP.VMCALL bitmap shares with the VMM.

    >>> exposed_registers(TDVMCALL_EXPOSE_REGS_MASK)
    ('rdx', 'rbx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15')
    >>> exposed_registers(TDVMCALL_EXPOSE_REGS_MASK_OLDEST)
    ('r10', 'r11', 'r12', 'r13', 'r14', 'r15')
    """
    return tuple(reg for reg, bit in ENCODING_BIT.items() if bitmap >> bit & 1)

STRUCT_LAYOUTS: dict[str, dict[str, int]] = {
    "tdx_module_args": TDX_MODULE_ARGS,
    "tdx_module_output": TDX_MODULE_OUTPUT,
    "tdx_hypercall_args": TDX_HYPERCALL_ARGS,
    "tdx_hypercall_args_oldest": TDX_HYPERCALL_ARGS_OLDEST,
}
"""Argument-structure name -> its field offsets."""
