"""The explicit limits of a run, and the ``--limit NAME=N`` option that raises them.

GNU as has limits of its own (``--max-macro-nest``, the size of memory);
ours are there so that no input, however it grows, makes the tool hang or
eat the machine's memory: an input that would pass one is a
:class:`SourceError` (exit 2) naming the limit, its value and the option
that raises it::

    a.S:3:1: error: .rept count 100000000 exceeds the limit of 100000 (raise it with --limit rept=N)

Each default is far above what a real kernel TDX file needs (such a file
is a few hundred lines; preprocessed with the kernel's headers, a few
thousand lines and some 100 KB; once expanded, a few hundred statements of
which some 150 are instructions, its longest function about 120) and small
enough that reaching it costs a few seconds and bounded memory.  The
figures in each field's comment were measured on a 2-core x86-64 machine.

The front end (:mod:`grammar.cpp`, :mod:`grammar.reader`,
:mod:`grammar.program`) checks every limit but ``configurations``, which
the ``check`` command checks before anything runs, and ``proof-seconds``,
which the prover spends (:mod:`proofs.obligations`).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields, replace
from typing import Iterable

from grammar.source import Origin, SourceError


@dataclass(frozen=True)
class Limits:
    """Every limit, with its default.  ``--limit`` names are the field names
    in kebab case (``input_bytes`` -> ``input-bytes``); the unit is in each
    field's ``metadata``."""

    input_bytes: int = 1 << 20
    """Bytes of one input file as read (checked on its size before it is
    read: instant).  Real files: ~10 KB."""
    preprocessed_bytes: int = 8 << 20
    """Bytes of one file's C preprocessor output (read in pieces; the
    preprocessor is killed when it passes this: a cpp macro that expands to
    millions of statements costs under 1 s and ~50 MB).  Real files: ~100 KB."""
    cpp_seconds: int = 10
    """Seconds one C preprocessor run may take (then it is killed, with its
    children).  Real files: ~20 ms; the margin is wide because a good
    file timed out on a loaded machine would be a false error."""
    cpp_memory_bytes: int = 1 << 30
    """Address space of the C preprocessor (``cc1`` expanding a macro into
    10^8 tokens, or including ``/dev/zero``, reaches it in under 1 s, with
    at most ~550 MB resident).  Real files: ``cc1`` maps ~70 MB."""
    statements: int = 20_000
    """Statements of one file after macro and repetition expansion (counted
    as they are made, so a runaway is stopped before its statements exist;
    ~3 s and ~100 MB at worst, when every statement is a distinct
    instruction the parser has not seen).  Real files: a few hundred."""
    rept: int = 100_000
    """The count of one ``.rept``, or the values of one ``.irp``/``.irpc``
    (checked before anything is expanded: instant).  Real files: tens."""
    statement_bytes: int = 64 << 10
    """Bytes of one statement after expansion (a macro argument that doubles
    at each level reaches it in ~16 levels, in milliseconds).  Real
    statements: under 200 bytes."""
    expanded_bytes: int = 16 << 20
    """Bytes of all the statements of one file after expansion (with
    ``statements``, it bounds the memory the expansion takes).  Real
    files: ~10 KB."""
    macro_depth: int = 100
    """Nested macro expansions (GNU as's own default ``--max-macro-nest``;
    a recursive macro reaches it in milliseconds)."""
    function_instructions: int = 10_000
    """Instructions of one function (what the symbolic executor walks).
    Real functions: at most ~120."""
    configurations: int = 64
    """Configurations of one ``check`` (the product of its ``--matrix``
    options: 6 of them; 20 would be 2^20 runs)."""
    proof_seconds: int = 120
    """Seconds the solver may spend on the obligations of one function in
    one configuration (each query has its own ``--timeout`` too); past it
    the obligations not yet decided are unknown.  Real wrappers: under 1 s;
    crypto code with table lookups indexed by data: minutes."""

    def check(self, name: str, amount: int, subject: str, origin: Origin | None) -> None:
        """Raise the limit error for limit ``name`` (a field name) if
        ``amount`` exceeds it; ``subject`` says what is counted.

        >>> Limits().check("rept", 100000000, ".rept count 100000000", Origin("a.S", 3))
        Traceback (most recent call last):
        grammar.source.SourceError: .rept count 100000000 exceeds the limit of 100000 (raise it with --limit rept=N)
        >>> Limits().check("rept", 5, ".rept count 5", None)
        """
        if amount > getattr(self, name):
            raise self.exceeded(name, subject, origin)

    def exceeded(self, name: str, subject: str, origin: Origin | None) -> SourceError:
        """The error saying that ``subject`` passed limit ``name``."""
        value = getattr(self, name)
        unit = _UNITS.get(name, "")
        return SourceError(f"{subject} exceeds the limit of {value}{unit[:-1] if value == 1 else unit} "
                           f"(raise it with --limit {option_name(name)}=N)", origin)


_UNITS = {"input_bytes": " bytes", "preprocessed_bytes": " bytes", "cpp_seconds": " seconds",
          "cpp_memory_bytes": " bytes",
          "statements": " statements", "statement_bytes": " bytes", "expanded_bytes": " bytes",
          "macro_depth": " levels", "function_instructions": " instructions",
          "configurations": " configurations", "proof_seconds": " seconds"}

LIMIT_NAMES: tuple[str, ...] = tuple(field.name for field in fields(Limits))
"""The field names of :class:`Limits`, in order."""

PROVER_LIMITS: tuple[str, ...] = ("proof_seconds",)
"""The limits the prover spends (the rest bound the front end)."""


def option_name(name: str) -> str:
    """The ``--limit`` spelling of field ``name``.

    >>> option_name("function_instructions")
    'function-instructions'
    """
    return name.replace("_", "-")


def limit_option(text: str) -> tuple[str, int]:
    """One ``--limit NAME=N`` value -> (field name, N); an argparse type.

    >>> limit_option("rept=1000000")
    ('rept', 1000000)
    >>> limit_option("rept=0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: expected NAME=N with N a positive integer (at most 18 digits), got 'rept=0'
    """
    name, sep, value = text.partition("=")
    field = name.strip().replace("-", "_")
    if field not in LIMIT_NAMES or "_" in name:
        known = ", ".join(option_name(name) for name in LIMIT_NAMES)
        raise argparse.ArgumentTypeError(f"unknown limit {name!r} in {text!r} (known: {known})")
    if not sep or not re.fullmatch(r"[0-9]{1,18}", value.strip()) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=N with N a positive integer "
                                         f"(at most 18 digits), got {text!r}")
    return field, int(value)


def limits_from(settings: Iterable[tuple[str, int]]) -> Limits:
    """The defaults with ``settings`` (from :func:`limit_option`) applied, the last of a name winning.

    >>> limits_from([("rept", 7), ("statements", 9), ("rept", 8)]).rept
    8
    """
    return replace(Limits(), **dict(settings))
