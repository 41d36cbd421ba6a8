"""Which layout the shipped ``asm/asm-offsets.h`` gives a file's struct tdx_hypercall_args.

Kernel trees used two layouts of ``struct tdx_hypercall_args`` under the
same ``TDX_HYPERCALL_<reg>`` macro names: twelve registers (r8 at 0 ...
rdx at 88: v6.0-v6.5) and, in the oldest trees (v5.19), only r10..r15 at
0..40.  A tree's generated asm-offsets.h knows which; the shim must choose,
and agree with the layout the proofs choose for the function
(:mod:`proofs.abi_choice` picks the form the loads and stores agree with).
The shim states the twelve-register layout unless
``TDXPROOF_HYPERCALL_ARGS_R10_R15`` is defined.

Decisions:

* **After the normal run, not before.**  Which macros a file uses is the
  preprocessor's business: they come through ``#include`` chains and
  conditionals (``CONFIG_*``), so a textual scan of the ``.S`` would be a
  second, partial C preprocessor.  The real one says it exactly: ``cc -E
  -dU`` lists every macro a run expanded (or tested).  So when a run read the
  shim's asm-offsets.h and some other file it read mentions
  ``TDX_HYPERCALL_``, one ``-dU`` run lists the ``TDX_HYPERCALL_*`` macros
  the file expanded; when they are all among r10..r15 (the six-register
  form uses nothing else, the twelve-register one needs r8, r9, rdi, rsi,
  rbx, rdx), the file is preprocessed again with the selector defined.
  Other files (nearly all) cost nothing extra; a v5.19 file costs two more
  runs.  GCC's preprocessor makes the list in the main run itself
  (:class:`grammar.cpp.MacroListing`: its ``#define`` lines take the place
  of lines it counts, so they are blank lines of the file's text, with the
  same origins as a run without them), and then the question costs no run
  of its own (a v5.19 file costs one more run: 22 fewer runs of the C
  preprocessor in the fixture forms' check); another preprocessor gets the
  ``-dU`` run.
* **Deterministic from the sources**, so that a replay of a counterexample
  (which preprocesses the same files again) gets the same layout; the
  counterexample also carries the layout its contract was checked with.
* **The user wins**: ``-D`` or ``-U`` of the selector, or a tree's own
  asm-offsets.h found before the shim (``-I``, ``tdxproof.toml``), skips
  the question.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from grammar.cpp import MacroListing, Runs, run_preprocessor
from grammar.limits import Limits

SELECTOR = "TDXPROOF_HYPERCALL_ARGS_R10_R15"
"""The macro that makes the shim's asm-offsets.h state the six-register layout."""

SIX_REGISTERS = frozenset({"r10", "r11", "r12", "r13", "r14", "r15"})
_EXPANDED = re.compile(r"^#define TDX_HYPERCALL_(\w+)\b", re.M)


def may_ask(shim_dir: str | None, defines: Sequence[str], undefines: Sequence[str]) -> bool:
    """Whether a run with these options may need :func:`selection` (the
    shims are searched, and the command line does not say), so that its
    preprocessor lists the macros it expands (:class:`MacroListing`)."""
    return shim_dir is not None and not forced(defines, undefines)


def forced(defines: Sequence[str], undefines: Sequence[str]) -> bool:
    """Whether the command line already says (``-D``/``-U`` of the selector).

    >>> forced(["TDXPROOF_HYPERCALL_ARGS_R10_R15"], []), forced(["X=1"], ["Y"])
    (True, False)
    """
    return any(d.split("=", 1)[0] == SELECTOR for d in defines) or SELECTOR in undefines


def _mentions(read: Sequence[str], shim_dir: str) -> bool:
    """Whether the run read the shim's asm-offsets.h and a file of the
    user's that mentions a TDX_HYPERCALL_ macro."""
    shim = os.path.normpath(os.path.join(shim_dir, "asm", "asm-offsets.h"))
    if shim not in read:
        return False
    root = os.path.normpath(shim_dir) + os.sep
    for name in read:
        if name.startswith(root) or not os.path.isfile(name):
            continue
        try:
            if b"TDX_HYPERCALL_" in Path(name).read_bytes():
                return True
        except OSError:
            continue
    return False


def expanded(command: Sequence[str], limits: Limits = Limits(), runs: Runs | None = None) -> set[str] | None:
    """The ``<reg>`` of every ``TDX_HYPERCALL_<reg>`` a preprocessor run of
    ``command`` (a ``cc -E`` argument vector, input last) expands, the run
    bounded as every run is (:func:`grammar.cpp.run_preprocessor`); None if
    it fails (it succeeded once: then nothing is chosen)."""
    listing = list(command[:-1]) + ["-dU", command[-1]]
    status, stdout, _ = run_preprocessor(listing, command[-1], limits, runs)
    if status != 0:
        return None
    return set(_EXPANDED.findall(stdout.decode("utf-8", "replace")))


def selection(command: Sequence[str], read: Sequence[str], shim_dir: str | None,
              defines: Sequence[str], undefines: Sequence[str], limits: Limits = Limits(),
              runs: Runs | None = None, listing: MacroListing | None = None) -> tuple[str, ...]:
    """The defines that make the shim's layout the one the file uses (empty:
    the default layout is right, or the question does not arise);
    ``listing``: the macros the run of ``command`` listed, if it did."""
    if not may_ask(shim_dir, defines, undefines) or not _mentions(read, shim_dir):
        return ()
    if listing is not None and listing.lines is not None:
        used = set(_EXPANDED.findall("\n".join(listing.lines)))
    else:
        used = expanded(command, limits, runs)
    if used and used <= SIX_REGISTERS:
        return (SELECTOR,)
    return ()
