"""TDX and System V ABI facts, as data, in one place (SPEC.md section 5).

Everything that says which register is callee-saved, where a struct field
lives or what a status constant is comes from here; the shim headers under
``grammar/shims`` state the same numbers for the assembler, and a test checks
that the two agree.
"""
from __future__ import annotations

from grammar.declarations import StructField, StructLayout

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

EXTENDED_STATE_RESETS: dict[str, tuple[int, ...]] = {"seamcall": (), "tdcall": ()}
"""Per TDX instruction, the leaf numbers (RAX bits 15..0) whose completion
may reset the AVX/AVX2/AVX-512 state to its INIT state, so that their
callers must save the FPU state first (SPEC section 5: the live-migration
SEAMCALLs).  None is shipped: this project does not state a leaf number it
cannot cite from the TDX module's published ABI.  Declare them per run with
``--resets-extended LEAF[,LEAF...]`` (``check``, ``summary``), or add them
here to make them the default."""

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

SHIPPED_SOURCE = "shipped facts (SPEC section 5)"
"""The source of every layout below, as results print it."""


def _u64_layout(name: str, offsets: dict[str, int], extra: tuple[StructField, ...] = ()) -> StructLayout:
    fields = tuple(StructField(reg, offset, 8) for reg, offset in offsets.items()) + extra
    end = max(f.offset + f.size for f in fields)
    return StructLayout(name, fields, (end + 7) // 8 * 8, SHIPPED_SOURCE)


LAYOUTS: dict[str, StructLayout] = {
    "tdx_module_args": _u64_layout("tdx_module_args", TDX_MODULE_ARGS),
    "tdx_module_args_version": _u64_layout(
        "tdx_module_args", TDX_MODULE_ARGS, (StructField("version", TDX_MODULE_VERSION_OFFSET, 1),)),
    "tdx_module_output": _u64_layout("tdx_module_output", TDX_MODULE_OUTPUT),
    "tdx_hypercall_args": _u64_layout("tdx_hypercall_args", TDX_HYPERCALL_ARGS),
    "tdx_hypercall_args_oldest": _u64_layout("tdx_hypercall_args", TDX_HYPERCALL_ARGS_OLDEST),
}
"""The shipped layouts by key: each key names one form of a C struct
(``StructLayout.name``); two forms of a struct share its C name and differ
in their fields.  Every field is a u64 but the recent trees' ``version``
byte; sizes include the tail padding to 8 bytes (``tdx_module_args`` with
``version`` is 105 bytes of fields, 112 in all).  The first form of a name
is its default (the one a contract gets when nothing tells the forms apart).

>>> [(key, layout.size) for key, layout in LAYOUTS.items()]  # doctest: +NORMALIZE_WHITESPACE
[('tdx_module_args', 104), ('tdx_module_args_version', 112), ('tdx_module_output', 48),
 ('tdx_hypercall_args', 96), ('tdx_hypercall_args_oldest', 48)]
"""

STRUCT_NAMES: tuple[str, ...] = tuple(dict.fromkeys(layout.name for layout in LAYOUTS.values()))
"""The C structs the shipped layouts describe."""


def layouts_of(struct: str) -> tuple[StructLayout, ...]:
    """The shipped forms of C struct ``struct``, the default first.

    >>> [layout.size for layout in layouts_of("tdx_hypercall_args")]
    [96, 48]
    """
    return tuple(layout for layout in LAYOUTS.values() if layout.name == struct)


def layout_key(layout: StructLayout) -> str | None:
    """The key of a shipped layout (None for one read from a tree).

    >>> layout_key(LAYOUTS["tdx_hypercall_args_oldest"])
    'tdx_hypercall_args_oldest'
    """
    return next((key for key, shipped in LAYOUTS.items() if shipped == layout), None)
