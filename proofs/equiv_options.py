"""The options of ``equiv``'s short form, declared once.

``tdxproof equiv LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC [options]`` takes
the mapping a spec file would hold as options, each the spec-file key it
names.  This table is what the command line declares (:mod:`proofs.cli`,
in the table's order) and what :mod:`proofs.equiv_spec` reads back and
writes, as ``FLAG VALUE``, into the canonical command line that is the
spec's path: the repeatable options first, then those given once, then
the switch, each in the table's order.  (No solver, no model: the
command line imports it before any command runs.)
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class ShortFormOption:
    """One option: its ``argparse`` destination, its flag, and whether it
    is ``repeated`` (a list), given once (a value or None) or a ``switch``."""

    dest: str
    flag: str
    metavar: str | None = None
    help: str | None = None
    repeated: bool = True
    switch: bool = False


SHORT_FORM_OPTIONS = (
    ShortFormOption("include_dirs", "-I", "DIR", "include directory for both sides"),
    ShortFormOption("defines", "-D", "NAME[=VALUE]", "define a preprocessor macro on both sides"),
    ShortFormOption("undefines", "-U", "NAME", "undefine a preprocessor macro on both sides"),
    ShortFormOption("same", "--same", "REG[,REG...]",
                    "left.REG == right.REG at entry (relation.same).  With no --same and no "
                    "--relate: every GPR but RSP is the same on both sides"),
    ShortFormOption("relate", "--relate", "'TERM == TERM'",
                    "an entry equation (relation.equal), e.g. 'left.rsi == right.args.rcx'"),
    ShortFormOption("structs", "--struct", "SIDE.NAME=REG:LAYOUT[:nullable]",
                    "REG points to a struct LAYOUT at entry (SIDE.structs.NAME)"),
    ShortFormOption("observe_registers", "--observe-registers", "default|all|REG,REG...",
                    "registers the caller compares (default: RAX, the callee-saved ones, RSP)", repeated=False),
    ShortFormOption("observe_memory", "--observe-memory", "outside-frame|outside-frame-and-structs|none",
                    "memory the caller compares (default: outside-frame)", repeated=False),
    ShortFormOption("observe_equal", "--observe-equal", "'TERM == TERM'",
                    "a final-state equation the caller checks (observe.equal)"),
    ShortFormOption("module_reads", "--module-reads", "KIND=REG,REG...",
                    "the registers the TDX module reads (default: RAX, RCX and the exposed registers for "
                    "a TDG.VP.VMCALL with a known bitmap, else every GPR but RSP)"),
    ShortFormOption("module_outputs", "--module-outputs", "KIND=REG,REG...",
                    "the only registers the TDX module changes (default: the model's rules)"),
    ShortFormOption("tdcall_may_fault", "--tdcall-may-fault",
                    help="TDCALL may also raise #UD/#GP (default: it completes)", repeated=False, switch=True),
)

FLAGS = {option.dest: option.flag for option in SHORT_FORM_OPTIONS}
"""Destination -> flag."""

RECORD_ORDER = ([o for o in SHORT_FORM_OPTIONS if o.repeated]
                + [o for o in SHORT_FORM_OPTIONS if not o.repeated and not o.switch]
                + [o for o in SHORT_FORM_OPTIONS if o.switch])
"""The order the canonical command line gives the options in."""


def add_short_form_options(parser: argparse.ArgumentParser) -> None:
    """Declare the short form's options on ``equiv``'s ``parser``."""
    group = parser.add_argument_group("short form (LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC)")
    for option in SHORT_FORM_OPTIONS:
        if option.switch:
            group.add_argument(option.flag, action="store_true", help=option.help)
        elif option.repeated:
            group.add_argument(option.flag, dest=option.dest, action="append", default=[],
                               metavar=option.metavar, help=option.help)
        else:
            group.add_argument(option.flag, dest=option.dest, default=None, metavar=option.metavar,
                               help=option.help)


def no_short_form_options() -> argparse.Namespace:
    """The options as the command line leaves them when none is given."""
    return argparse.Namespace(**{o.dest: [] if o.repeated else False if o.switch else None
                                 for o in SHORT_FORM_OPTIONS})
