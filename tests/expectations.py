"""The one shared table of expected verdicts over the fixture tree.

Each row says: checking ``function`` of the fixture file(s) ``paths`` under
the ``CONFIG_*`` options ``configs`` and the firmware mode ``firmware``, the
property ``property`` (a SPEC section 7 catalog ID) must come out
``expected`` ("proved", "refuted", "unknown" where the tool cannot know
and must say so, or "n/a": the property does not apply under this
configuration, so it has no obligation at all).  ``detail`` narrows the row to one
obligation of the property (the register, for ``callee-saved``); ``None``
means the property as a whole: all its obligations proved, or at least one
refuted.  ``abi`` is the era of the contract the tool must choose for the
function push-button (no ``--abi``), and ``contract`` the contract itself
where the row names it.

The rows follow the ABI of SPEC section 5 and the catalog of section 7, not
what any tool happens to answer:

* correct wrappers (``unified``, ``legacy*``, ``variants``, and one tree
  per real form of issue 10: ``v5.19``, ``v6.3``, the v6.6 steps
  ``v6.6-rename`` and ``v6.6-hypercall``, ``backport``, ``recent``,
  ``vendor-io``, ``vendor-saved``): every property that applies to the
  wrapper is proved, with CONFIG_FRAME_POINTER on and off (and, for the
  unified era, with every option on), against the contract its own code
  shows (push-button);
* ``--firmware clobbers-rbp`` makes RBP a worst-case TDX-module output: the
  unified ``saved`` wrappers, which rely on FRAME_BEGIN/FRAME_END alone for
  RBP, are refuted on ``callee-saved`` (RBP) without a frame pointer and
  proved with one; the other wrappers' contracts exclude RBP, and the
  variant that saves RBP itself is proved either way;
* the earliest legacy host ``__seamcall`` has no exception-table entry:
  ``fault-handled`` refutes it;
* each ``broken/`` file is refuted by the property its header comment names
  (a buggy variant of each new form among them, still given its form's
  contract);
  a function that runs past its end (``ret_deleted.S``,
  ``fixup_jmp_deleted.S``) is refuted by ``no-fallthrough``, the properties
  judged at its return are *unknown* (what the caller gets back is no
  longer this function's doing) and those judged along the path hold; a
  store into code (``store_into_code.S``) leaves every property unknown,
  never proved (it is not broken code the tool refutes: it lives in
  ``unsupported/``);
* ``frame-pointer`` applies only with CONFIG_FRAME_POINTER: "n/a" on every
  row without it.  With it, every correct wrapper proves it (the C glue
  compiled as Kbuild compiles C then, with frame pointers), and so does the
  hypercall that keeps its flags on the stack (``legacy-flags-stack``);
  the one that keeps them in RBP (``legacy-flags``) is refuted (RBP is
  neither the caller's nor the frame's from the ``movq %rsi, %rbp`` to
  the restoring ``pop``, at the TDCALL and at the call of the failure
  function too), while every other property still holds on it.  Under
  ``--firmware clobbers-rbp`` the ``saved`` wrappers lose the chain from
  the TDX instruction on (the old firmware's RBP is in RBP until FRAME_END
  or the wrapper's own pop), even where ``callee-saved`` holds; a broken
  wrapper whose FRAME_END pops the wrong slot (``fault_path_missing_pop.S``)
  is refuted at its return.

Paths are relative to ``tests/fixtures``.  A ``.c`` path is kernel C glue:
compile it with ``cc -S -O2`` (:func:`prepare_paths`) and check the result
together with the other paths.  Some trees are checked with their own
``-I`` directories (:data:`TREE_INCLUDE_DIRS`), as a user with that kernel
tree would.
"""
from __future__ import annotations

import itertools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

FIXTURES = Path(__file__).resolve().parent / "fixtures"

FIXTURE_TREES: tuple[str, ...] = (
    "unified", "legacy", "legacy-flags", "legacy-flags-stack", "legacy-oldest", "variants", "broken",
    "unsupported", "v5.19", "v6.3", "v6.6-rename", "v6.6-hypercall", "backport", "recent", "vendor-io",
    "vendor-saved")
"""The kernel-like trees of this table (other suites may keep other fixtures)."""

MACRO_FILES: tuple[str, ...] = ("tdxcall.S",)
"""File names that only define macros for other files to include."""

TREE_INCLUDE_DIRS: dict[str, tuple[str, ...]] = {
    "legacy-oldest": ("legacy-oldest/arch/x86/include",),
}
"""Tree -> the ``-I`` directories (relative to FIXTURES) its files need:
the oldest tree generates its own asm-offsets (six-register hypercall args)."""

TREE_DEFINES: dict[str, tuple[str, ...]] = {
    "vendor-saved": ("TDX_SEAMCALL_VMFAILVALID=0x8000FF00FFFF0001",),
}
"""Tree -> the ``-D`` its files need: the vendor tree's own VMfailValid status,
which SPEC.md does not give and the shims do not define (push-button, the
file is an error saying to pass it).  The value is a stand-in for the
tree's header: the model never sees SEAMCALL report VMfailValid."""

CONFIG_OPTIONS: tuple[str, ...] = ("CONFIG_FRAME_POINTER", "CONFIG_RETHUNK", "CONFIG_X86_KERNEL_IBT")
"""The options every fixture must assemble (and expand) under, on and off."""

CONFIG_MATRIX: tuple[dict[str, bool], ...] = tuple(
    dict(zip(CONFIG_OPTIONS, values)) for values in itertools.product((False, True), repeat=3))
"""Every on/off combination of :data:`CONFIG_OPTIONS`."""

VERDICTS = ("proved", "refuted", "unknown", "n/a")
FIRMWARE_MODES = ("spec", "clobbers-rbp")

GENERIC_PROPERTIES: tuple[str, ...] = (
    "callee-saved", "stack-balance", "return-address", "no-red-zone", "frame",
    "fault-handled", "direction-flag", "no-fallthrough", "extended-state")
"""SPEC section 7: the properties of every function (and issue 14's
``extended-state``: with no leaf declared to reset it, the extended state
at return is the entry's on every wrapper)."""

CONTRACT_PROPERTIES: tuple[str, ...] = (
    "input-marshalling", "output-marshalling", "status-return", "r10-to-rax",
    "vmfailinvalid-code", "fault-codes", "failure-no-output", "scrub",
    "panic-on-tdcall-failure")
"""SPEC section 7: the properties a per-wrapper contract adds."""

FRAME_POINTER = "frame-pointer"
"""SPEC section 7: of every function, but only with CONFIG_FRAME_POINTER."""

CATALOG: tuple[str, ...] = GENERIC_PROPERTIES + (FRAME_POINTER,) + CONTRACT_PROPERTIES


@dataclass(frozen=True)
class Expectation:
    """One row: a property's expected verdict on one function."""

    paths: tuple[str, ...]
    function: str
    configs: Mapping[str, bool]
    firmware: str
    property: str
    expected: str
    abi: str
    detail: str | None = None
    contract: str | None = None
    """The contract key the tool must choose for the function (push-button), where the row says."""

    def __post_init__(self) -> None:
        if self.property not in CATALOG:
            raise ValueError(f"unknown property {self.property!r}")
        if self.expected not in VERDICTS or self.firmware not in FIRMWARE_MODES:
            raise ValueError(f"bad row {self}")
        if self.abi not in ("unified", "legacy"):
            raise ValueError(f"unknown abi {self.abi!r}")

    @property
    def include_dirs(self) -> tuple[str, ...]:
        """Absolute ``-I`` directories the row's tree needs."""
        return include_dirs_for(self.paths[0])

    @property
    def id(self) -> str:
        """A readable test id."""
        config = ",".join(f"{name.removeprefix('CONFIG_')}={'y' if on else 'n'}"
                          for name, on in sorted(self.configs.items()))
        detail = f"[{self.detail}]" if self.detail else ""
        return (f"{'+'.join(self.paths)}:{self.function}:{config}:{self.firmware}:"
                f"{self.property}{detail}")


def configs_of(frame_pointer: bool = False, rethunk: bool = False, ibt: bool = False) -> dict[str, bool]:
    """A full CONFIG_* assignment of the three options.

    >>> configs_of(frame_pointer=True)
    {'CONFIG_FRAME_POINTER': True, 'CONFIG_RETHUNK': False, 'CONFIG_X86_KERNEL_IBT': False}
    """
    return dict(zip(CONFIG_OPTIONS, (frame_pointer, rethunk, ibt)))


FP_OFF = configs_of()
FP_ON = configs_of(frame_pointer=True)
ALL_ON = configs_of(True, True, True)


def tree_of(path: str) -> str:
    """The fixture tree a fixture path belongs to.

    >>> tree_of("legacy-oldest/arch/x86/coco/tdx/tdcall.S")
    'legacy-oldest'
    """
    return Path(path).parts[0]


def include_dirs_for(path: str) -> tuple[str, ...]:
    """Absolute ``-I`` directories for checking or assembling ``path``."""
    return tuple(str(FIXTURES / directory) for directory in TREE_INCLUDE_DIRS.get(tree_of(path), ()))


def defines_for(path: str) -> tuple[str, ...]:
    """The ``-D`` options for checking or assembling ``path``."""
    return TREE_DEFINES.get(tree_of(path), ())


def reference_defines(path: str, configs: Mapping[str, bool]) -> tuple[str, ...]:
    """:func:`defines_for`, plus the shims' struct layout the front end
    chooses for ``path`` (:func:`grammar.frontend.layout_defines`): what
    ``cc -c`` needs to see the asm-offsets the tool checks."""
    from grammar.frontend import FrontEndOptions, layout_defines
    defines = defines_for(path)
    options = FrontEndOptions(include_dirs=include_dirs_for(path), defines=defines, configs=dict(configs))
    return defines + layout_defines(str(FIXTURES / path), options)


def translation_units() -> list[str]:
    """Every fixture ``.S`` that is assembled on its own (not the macro-only
    include files), relative to FIXTURES, sorted."""
    return sorted(str(path.relative_to(FIXTURES))
                  for tree in FIXTURE_TREES for path in (FIXTURES / tree).rglob("*.S")
                  if path.name not in MACRO_FILES)


# --- building the table --------------------------------------------------

UNIFIED_HOST = "unified/arch/x86/virt/vmx/tdx/seamcall.S"
UNIFIED_GUEST = "unified/arch/x86/coco/tdx/tdcall.S"
UNIFIED_GLUE = "unified/arch/x86/coco/tdx/hcall_glue.c"
LEGACY_HOST = "legacy/arch/x86/virt/vmx/tdx/seamcall.S"
LEGACY_GUEST = "legacy/arch/x86/coco/tdx/tdcall.S"
FLAGS_GUEST = "legacy-flags/arch/x86/coco/tdx/tdcall.S"
FLAGS_STACK_GUEST = "legacy-flags-stack/arch/x86/coco/tdx/tdcall.S"
OLDEST_HOST = "legacy-oldest/arch/x86/virt/vmx/tdx/seamcall.S"
OLDEST_GUEST = "legacy-oldest/arch/x86/coco/tdx/tdcall.S"

_SEAMCALL_FAILURES = ("vmfailinvalid-code", "fault-codes", "failure-no-output")

# The contract properties that apply to each correct wrapper (SPEC 5 and 7).
_UNIFIED_CONTRACT: dict[str, tuple[str, ...]] = {
    "__seamcall": ("input-marshalling", "status-return", "vmfailinvalid-code", "fault-codes"),
    "__seamcall_ret": ("input-marshalling", "output-marshalling", "status-return") + _SEAMCALL_FAILURES,
    "__seamcall_saved_ret": ("input-marshalling", "output-marshalling", "status-return", "scrub")
    + _SEAMCALL_FAILURES,
    "__tdcall": ("input-marshalling", "status-return"),
    "__tdcall_ret": ("input-marshalling", "output-marshalling", "status-return"),
    "__tdcall_saved_ret": ("input-marshalling", "output-marshalling", "status-return", "scrub"),
}
_MODULE_CALL = ("input-marshalling", "output-marshalling", "status-return")
_HYPERCALL = ("input-marshalling", "r10-to-rax", "scrub", "panic-on-tdcall-failure")


def _proved(paths: tuple[str, ...], function: str, abi: str, properties: tuple[str, ...],
            configs: tuple[Mapping[str, bool], ...]) -> Iterator[Expectation]:
    for config in configs:
        for prop in properties:
            yield Expectation(paths, function, config, "spec", prop, "proved", abi)


def _correct_wrappers() -> Iterator[Expectation]:
    for path, names in ((UNIFIED_HOST, ("__seamcall", "__seamcall_ret", "__seamcall_saved_ret")),
                        (UNIFIED_GUEST, ("__tdcall", "__tdcall_ret", "__tdcall_saved_ret"))):
        for name in names:
            yield from _proved((path,), name, "unified", GENERIC_PROPERTIES + _UNIFIED_CONTRACT[name],
                               (FP_OFF, FP_ON, ALL_ON))
    for path, name in (("variants/saved_rbp.S", "__seamcall_saved_ret"),
                       ("variants/saved_rbp.S", "__tdcall_saved_ret"),
                       ("variants/tdcall_helper.S", "__tdcall_ret")):
        yield from _proved((path,), name, "unified", GENERIC_PROPERTIES + _UNIFIED_CONTRACT[name],
                           (FP_OFF, FP_ON))
    # No contract: only the properties of every function.
    yield from _proved(("variants/stack_args.S",), "__seamcall_stack_args", "unified",
                       GENERIC_PROPERTIES, (FP_OFF, FP_ON))
    # The C glue of the unified era with the wrapper it calls: R10 reaches
    # RAX through args->r10.  No contract names its struct, so the
    # struct-related generic `frame` is left to the contract suites.
    yield from _proved((UNIFIED_GLUE, UNIFIED_GUEST), "__tdx_hypercall", "unified",
                       ("callee-saved", "stack-balance", "return-address", "no-red-zone",
                        "direction-flag", "no-fallthrough", "r10-to-rax"), (FP_OFF, FP_ON))

    legacy = (
        (LEGACY_HOST, "__seamcall", _MODULE_CALL + _SEAMCALL_FAILURES),
        (LEGACY_GUEST, "__tdx_module_call", _MODULE_CALL),
        (LEGACY_GUEST, "__tdx_hypercall", _HYPERCALL),
        (LEGACY_GUEST, "__tdx_hypercall_ret", _HYPERCALL + ("output-marshalling",)),
        (FLAGS_GUEST, "__tdx_module_call", _MODULE_CALL),
        (FLAGS_GUEST, "__tdx_hypercall", _HYPERCALL + ("output-marshalling",)),
        (FLAGS_STACK_GUEST, "__tdx_hypercall", _HYPERCALL + ("output-marshalling",)),
        (OLDEST_GUEST, "__tdx_module_call", _MODULE_CALL),
        (OLDEST_GUEST, "__tdx_hypercall", _HYPERCALL + ("output-marshalling",)),
    )
    for path, name, contract in legacy:
        yield from _proved((path,), name, "legacy", GENERIC_PROPERTIES + contract, (FP_OFF, FP_ON))

    # The earliest host wrapper: everything holds except that a faulting
    # SEAMCALL is an oops.  (`fault-codes` has no path to check and is
    # left out.)
    oldest_ok = tuple(p for p in GENERIC_PROPERTIES if p != "fault-handled") + _MODULE_CALL + (
        "vmfailinvalid-code", "failure-no-output")
    yield from _proved((OLDEST_HOST,), "__seamcall", "legacy", oldest_ok, (FP_OFF, FP_ON))
    for config in (FP_OFF, FP_ON):
        yield Expectation((OLDEST_HOST,), "__seamcall", config, "spec", "fault-handled", "refuted",
                          "legacy")


# --- every real form, push-button (issue 10): each tree checked with the shipped
# shims and no --abi, each function against the contract its own code shows.

FORMS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    # file, function, the contract the tool must choose, its contract properties
    ("v5.19/arch/x86/coco/tdx/tdcall.S", "__tdx_module_call", "__tdx_module_call [legacy]", _MODULE_CALL),
    ("v5.19/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy/oldest]",
     _HYPERCALL + ("output-marshalling",)),
    ("v6.3/arch/x86/coco/tdx/tdcall.S", "__tdx_module_call", "__tdx_module_call [legacy]", _MODULE_CALL),
    ("v6.3/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy/flags]",
     _HYPERCALL + ("output-marshalling",)),
    ("v6.6-rename/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [legacy]", _MODULE_CALL),
    ("v6.6-rename/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy]", _HYPERCALL),
    ("v6.6-rename/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall_ret", "__tdx_hypercall_ret [legacy]",
     _HYPERCALL + ("output-marshalling",)),
    ("v6.6-hypercall/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [unified]", _UNIFIED_CONTRACT["__tdcall"]),
    ("v6.6-hypercall/arch/x86/coco/tdx/tdcall.S", "__tdcall_ret", "__tdcall_ret [unified]",
     _UNIFIED_CONTRACT["__tdcall_ret"]),
    ("v6.6-hypercall/arch/x86/coco/tdx/tdcall.S", "__tdcall_hypercall", "__tdcall_hypercall [unified]",
     _UNIFIED_CONTRACT["__tdcall_saved_ret"]),
    ("backport/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [unified]", _UNIFIED_CONTRACT["__tdcall"]),
    ("backport/arch/x86/coco/tdx/tdcall.S", "__tdcall_ret", "__tdcall_ret [unified]",
     _UNIFIED_CONTRACT["__tdcall_ret"]),
    ("backport/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy/flags]",
     _HYPERCALL + ("output-marshalling",)),
    *(("recent/arch/x86/virt/vmx/tdx/seamcall.S", name, f"{name} [unified]", _UNIFIED_CONTRACT[name])
      for name in ("__seamcall", "__seamcall_ret", "__seamcall_saved_ret")),
    *(("recent/arch/x86/coco/tdx/tdcall.S", name, f"{name} [unified]", _UNIFIED_CONTRACT[name])
      for name in ("__tdcall", "__tdcall_ret", "__tdcall_saved_ret")),
    ("vendor-io/arch/x86/coco/tdx/tdcall.S", "__tdx_module_call", "__tdx_module_call [legacy]", _MODULE_CALL),
    ("vendor-io/arch/x86/coco/tdx/tdcall.S", "__tdx_module_call_io", "__tdx_module_call_io [legacy]",
     _MODULE_CALL),
    ("vendor-io/arch/x86/virt/vmx/tdx/seamcall.S", "__seamcall", "__seamcall [legacy/eight-inputs]",
     _MODULE_CALL + _SEAMCALL_FAILURES),
    ("vendor-io/arch/x86/virt/vmx/tdx/seamcall.S", "__seamcall_io", "__seamcall_io [legacy]",
     _MODULE_CALL + _SEAMCALL_FAILURES),
    *(("vendor-saved/arch/x86/virt/vmx/tdx/seamcall.S", name, f"{name} [unified]", properties)
      for name, properties in (("__seamcall", _UNIFIED_CONTRACT["__seamcall"]),
                               ("__seamcall_ret", _UNIFIED_CONTRACT["__seamcall_ret"]),
                               ("__seamcall_saved", _UNIFIED_CONTRACT["__seamcall"]),
                               ("__seamcall_saved_ret", _UNIFIED_CONTRACT["__seamcall_saved_ret"]))),
    ("vendor-saved/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [unified]", _UNIFIED_CONTRACT["__tdcall"]),
    ("vendor-saved/arch/x86/coco/tdx/tdcall.S", "__tdcall_saved", "__tdcall_saved [unified]",
     _UNIFIED_CONTRACT["__tdcall"]),
)
"""The correct wrapper of each real form and the contract its code must get."""

HYPERCALL_STEP_GLUE = "v6.6-hypercall/arch/x86/coco/tdx/hcall_glue.c"
HYPERCALL_STEP_GUEST = "v6.6-hypercall/arch/x86/coco/tdx/tdcall.S"


def _era_of(key: str) -> str:
    return key.split("[", 1)[1].split("/")[0].rstrip("]")


def _forms() -> Iterator[Expectation]:
    for path, function, key, properties in FORMS:
        for config in (FP_OFF, FP_ON):
            for prop in GENERIC_PROPERTIES + properties:
                yield Expectation((path,), function, config, "spec", prop, "proved", _era_of(key), contract=key)
    # The C __tdx_hypercall of that step over __tdcall_hypercall, as the
    # unified era's glue over __tdcall_saved_ret.
    for config in (FP_OFF, FP_ON):
        for prop in ("callee-saved", "stack-balance", "return-address", "no-red-zone", "direction-flag",
                     "no-fallthrough", "input-marshalling", "output-marshalling", "r10-to-rax", "scrub",
                     "panic-on-tdcall-failure"):
            yield Expectation((HYPERCALL_STEP_GLUE, HYPERCALL_STEP_GUEST), "__tdx_hypercall", config, "spec", prop,
                              "proved", "unified", contract="__tdx_hypercall [unified]")


BROKEN_FORMS: tuple[tuple[str, str, str, tuple[tuple[str, str | None, str], ...]], ...] = (
    # file, function, the contract the tool must choose, (property, detail, verdict) ...
    ("hypercall_r10_r15_outputs_always.S", "__tdx_hypercall", "__tdx_hypercall [legacy/oldest]", (
        ("output-marshalling", None, "refuted"), ("input-marshalling", None, "proved"),
        ("r10-to-rax", None, "proved"), ("scrub", None, "proved"))),
    ("hypercall_flags_wrong_slot.S", "__tdx_hypercall", "__tdx_hypercall [legacy/flags]", (
        ("output-marshalling", None, "refuted"), ("input-marshalling", None, "proved"),
        ("r10-to-rax", None, "proved"))),
    ("tdcall_six_arguments_r9_overwritten.S", "__tdcall", "__tdcall [legacy]", (
        ("input-marshalling", "r9", "refuted"), ("input-marshalling", "r8", "proved"),
        ("input-marshalling", "rcx", "proved"), ("output-marshalling", None, "proved"))),
    ("tdcall_hypercall_no_scrub.S", "__tdcall_hypercall", "__tdcall_hypercall [unified]", (
        ("scrub", None, "refuted"), ("output-marshalling", None, "proved"), ("input-marshalling", None, "proved"))),
    ("backport_hypercall_returns_status.S", "__tdcall_ret", "__tdcall_ret [unified]", tuple(
        (prop, None, "proved") for prop in GENERIC_PROPERTIES + _UNIFIED_CONTRACT["__tdcall_ret"])),
    ("backport_hypercall_returns_status.S", "__tdx_hypercall", "__tdx_hypercall [legacy/flags]", (
        ("r10-to-rax", None, "refuted"), ("output-marshalling", None, "proved"),
        ("input-marshalling", None, "proved"))),
    ("module_call_version_shift.S", "__seamcall_ret", "__seamcall_ret [unified]", (
        ("input-marshalling", "rax", "refuted"), ("input-marshalling", "rcx", "proved"),
        ("output-marshalling", None, "proved"), ("status-return", None, "proved"))),
    ("seamcall_eight_inputs_r13_missing.S", "__seamcall", "__seamcall [legacy/eight-inputs]", (
        ("input-marshalling", "r13", "refuted"), ("input-marshalling", "r12", "proved"),
        ("output-marshalling", None, "proved"))),
    ("seamcall_saved_wrong_field.S", "__seamcall_saved", "__seamcall_saved [unified]", (
        ("input-marshalling", "r13", "refuted"), ("input-marshalling", "r12", "proved"),
        ("callee-saved", None, "proved"), ("status-return", None, "proved"))),
)
"""A buggy variant of each new form, refuted by the right property push-button."""


def _broken_forms() -> Iterator[Expectation]:
    for name, function, key, verdicts in BROKEN_FORMS:
        for config in (FP_OFF, FP_ON):
            for prop, detail, verdict in verdicts:
                yield Expectation((f"broken/{name}",), function, config, "spec", prop, verdict, _era_of(key),
                                  detail=detail, contract=key)
    # Stack arguments read without FRAME_OFFSET: right only without frame pointers.
    for config, verdict in ((FP_ON, "refuted"), (FP_OFF, "proved")):
        yield Expectation(("broken/seamcall_io_without_frame_offset.S",), "__seamcall_io", config, "spec",
                          "input-marshalling", verdict, "legacy", contract="__seamcall_io [legacy]")


def _clobbers_rbp() -> Iterator[Expectation]:
    cases = [(UNIFIED_HOST, "__seamcall"), (UNIFIED_HOST, "__seamcall_ret"),
             (UNIFIED_GUEST, "__tdcall"), (UNIFIED_GUEST, "__tdcall_ret")]
    for path, name in cases:
        for config in (FP_OFF, FP_ON):
            yield Expectation((path,), name, config, "clobbers-rbp", "callee-saved", "proved",
                              "unified", detail="rbp")
    for path, name in ((UNIFIED_HOST, "__seamcall_saved_ret"), (UNIFIED_GUEST, "__tdcall_saved_ret")):
        yield Expectation((path,), name, FP_OFF, "clobbers-rbp", "callee-saved", "refuted",
                          "unified", detail="rbp")
        yield Expectation((path,), name, FP_ON, "clobbers-rbp", "callee-saved", "proved",
                          "unified", detail="rbp")
    for name in ("__seamcall_saved_ret", "__tdcall_saved_ret"):
        for config in (FP_OFF, FP_ON):
            yield Expectation(("variants/saved_rbp.S",), name, config, "clobbers-rbp",
                              "callee-saved", "proved", "unified", detail="rbp")


_BROKEN: tuple[tuple[str, str, str, str, str | None, str], ...] = (
    # file, function, abi, property, detail, verdict
    ("pop_order_swapped.S", "__seamcall_saved_ret", "unified", "callee-saved", "r14", "refuted"),
    ("pop_order_swapped.S", "__seamcall_saved_ret", "unified", "callee-saved", "r15", "refuted"),
    ("fault_path_missing_pop.S", "__seamcall_saved_ret", "unified", "stack-balance", None, "refuted"),
    ("fault_path_missing_pop.S", "__seamcall_saved_ret", "unified", "callee-saved", None, "refuted"),
    ("callee_saved_scratch.S", "__seamcall", "unified", "callee-saved", "r12", "refuted"),
    ("wrong_vmfailinvalid_constant.S", "__seamcall_saved_ret", "unified", "vmfailinvalid-code", None,
     "refuted"),
    ("wrong_vmfailinvalid_constant.S", "__seamcall_saved_ret", "unified", "fault-codes", None, "proved"),
    ("wrong_fault_constant.S", "__seamcall_saved_ret", "unified", "fault-codes", None, "refuted"),
    ("wrong_fault_constant.S", "__seamcall_saved_ret", "unified", "vmfailinvalid-code", None, "proved"),
    ("missing_extable.S", "__seamcall_saved_ret", "unified", "fault-handled", None, "refuted"),
    ("output_wrong_field.S", "__seamcall_saved_ret", "unified", "output-marshalling", None, "refuted"),
    ("missing_scrub.S", "__seamcall_saved_ret", "unified", "scrub", None, "refuted"),
    ("dropped_r10_to_rax.S", "__tdx_hypercall", "legacy", "r10-to-rax", None, "refuted"),
    ("store_below_rsp.S", "__tdx_module_call", "legacy", "no-red-zone", None, "refuted"),
    ("store_outside_struct.S", "__tdcall_ret", "unified", "frame", None, "refuted"),
) + tuple(
    (name, function, "unified", prop, detail, verdict)
    for name, function, verdicts in (
        ("ret_deleted.S", "__tdcall_ret", {
            "refuted": ("no-fallthrough",),
            "unknown": ("callee-saved", "stack-balance", "return-address", "direction-flag", "extended-state",
                        "output-marshalling", "status-return", ("input-marshalling", "executed")),
            "proved": ("no-red-zone", "frame", "fault-handled", ("input-marshalling", "rcx"))}),
        ("ret_deleted.S", "__tdcall", {       # the function it falls into is itself fine
            "proved": ("no-fallthrough", "callee-saved", "stack-balance", "status-return")}),
        ("fixup_jmp_deleted.S", "__seamcall_ret", {
            "refuted": ("no-fallthrough",),
            "unknown": ("callee-saved", "stack-balance", "extended-state", "status-return", "vmfailinvalid-code",
                        "fault-codes", "failure-no-output"),
            "proved": ("no-red-zone", "frame", "fault-handled")}),
    )
    for verdict, properties in verdicts.items()
    for prop, detail in ((p, None) if isinstance(p, str) else p for p in properties)
)


def _broken() -> Iterator[Expectation]:
    for name, function, abi, prop, detail, verdict in _BROKEN:
        for config in (FP_OFF, FP_ON):
            yield Expectation((f"broken/{name}",), function, config, "spec", prop, verdict, abi,
                              detail=detail)


def _unsupported() -> Iterator[Expectation]:
    """Code the model does not cover: every property unknown, never proved."""
    for prop in ("callee-saved", "stack-balance", "frame", "no-red-zone", "fault-handled", "no-fallthrough",
                 "extended-state", "input-marshalling", "status-return"):
        for config in (FP_OFF, FP_ON):
            yield Expectation(("unsupported/store_into_code.S",), "__tdcall", config, "spec", prop, "unknown",
                              "unified")


def _frame_pointer() -> Iterator[Expectation]:
    """``frame-pointer`` on every function of the fixtures: n/a without
    CONFIG_FRAME_POINTER, the verdict of the module doc with it."""
    functions = dict.fromkeys((row.paths, row.function, row.abi) for row in _correct_wrappers())
    functions.update(dict.fromkeys(((f"broken/{name}",), function, abi)
                                   for name, function, abi, _, _, _ in _BROKEN))
    functions[(("unsupported/store_into_code.S",), "__tdcall", "unified")] = None
    functions.update(dict.fromkeys(((path,), function, _era_of(key)) for path, function, key, _ in FORMS))
    functions[((HYPERCALL_STEP_GLUE, HYPERCALL_STEP_GUEST), "__tdx_hypercall", "unified")] = None
    functions.update(dict.fromkeys(((f"broken/{name}",), function, _era_of(key))
                                   for name, function, key, _ in BROKEN_FORMS))
    refuted = {((FLAGS_GUEST,), "__tdx_hypercall"): {"rbp": "refuted", "call": "refuted", "saved-rbp": "proved"},
               (("broken/fault_path_missing_pop.S",), "__seamcall_saved_ret"): {"rbp": "refuted"}}
    for paths, function, abi in functions:
        yield Expectation(paths, function, FP_OFF, "spec", FRAME_POINTER, "n/a", abi)
        if paths == ("unsupported/store_into_code.S",):
            yield Expectation(paths, function, FP_ON, "spec", FRAME_POINTER, "unknown", abi)
        elif (paths, function) in refuted:
            for detail, verdict in refuted[(paths, function)].items():
                yield Expectation(paths, function, FP_ON, "spec", FRAME_POINTER, verdict, abi, detail=detail)
        else:
            yield Expectation(paths, function, FP_ON, "spec", FRAME_POINTER, "proved", abi)
            if tree_of(paths[0]) == "unified" and paths != (UNIFIED_GLUE, UNIFIED_GUEST):
                yield Expectation(paths, function, ALL_ON, "spec", FRAME_POINTER, "proved", abi)
    for path, names in ((UNIFIED_HOST, ("__seamcall", "__seamcall_ret", "__seamcall_saved_ret")),
                        (UNIFIED_GUEST, ("__tdcall", "__tdcall_ret", "__tdcall_saved_ret")),
                        ("variants/saved_rbp.S", ("__seamcall_saved_ret", "__tdcall_saved_ret"))):
        for name in names:
            yield Expectation((path,), name, FP_ON, "clobbers-rbp", FRAME_POINTER,
                              "refuted" if name.endswith("saved_ret") else "proved", "unified")
            yield Expectation((path,), name, FP_OFF, "clobbers-rbp", FRAME_POINTER, "n/a", "unified")


EXPECTATIONS: tuple[Expectation, ...] = (tuple(_correct_wrappers()) + tuple(_forms()) + tuple(_clobbers_rbp())
                                         + tuple(_broken()) + tuple(_broken_forms()) + tuple(_unsupported())
                                         + tuple(_frame_pointer()))
"""The table."""


def rows(*, property: str | None = None, expected: str | None = None,
         tree: str | None = None, firmware: str | None = None) -> Iterator[Expectation]:
    """The rows matching every given filter (all rows when none is given)."""
    for row in EXPECTATIONS:
        if property is not None and row.property != property:
            continue
        if expected is not None and row.expected != expected:
            continue
        if tree is not None and tree_of(row.paths[0]) != tree:
            continue
        if firmware is not None and row.firmware != firmware:
            continue
        yield row


C_FRAME_POINTERS = ("-fno-omit-frame-pointer", "-mtune-ctrl=^use_leave")
"""How the C glue is compiled with CONFIG_FRAME_POINTER: with frame pointers,
as Kbuild compiles C then; GCC would tear the frame down with ``leave``,
which the lifter does not model, so that choice of its tuning is turned
off (the same frame, torn down by ``add``/``pop``)."""


def prepare_paths(row: Expectation, workdir: Path) -> list[str]:
    """Absolute input paths of ``row``; each ``.c`` is first compiled with
    ``cc -S -O2`` into ``workdir`` (as the kernel's C glue would be: with
    frame pointers when the row has CONFIG_FRAME_POINTER, into a file of
    its own)."""
    prepared = []
    for path in row.paths:
        source = FIXTURES / path
        if source.suffix == ".c":
            frame_pointers = row.configs.get("CONFIG_FRAME_POINTER", False)
            output = workdir / (source.stem + ("-fp" if frame_pointers else "") + ".s")
            flags = C_FRAME_POINTERS if frame_pointers else ()
            subprocess.run(["cc", "-S", "-O2", *flags, "-o", str(output), str(source)], check=True)
            prepared.append(str(output))
        else:
            prepared.append(str(source))
    return prepared


def frontend_options(row: Expectation):
    """The :class:`grammar.frontend.FrontEndOptions` that check ``row``.

    Imported here, not at the top, so that reading the table never depends on
    the front end importing cleanly.
    """
    from grammar.frontend import FrontEndOptions
    return FrontEndOptions(include_dirs=row.include_dirs, defines=defines_for(row.paths[0]), configs=dict(row.configs))
