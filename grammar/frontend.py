"""The front end's entry points: ``.S`` files -> :class:`ast.Program` or plain assembly.

Each input file is a translation unit of its own, as in the kernel build:
preprocessed by :mod:`grammar.cpp`, read by the GNU-as layer of
:mod:`grammar.macros`, then assembled into one program by
:mod:`grammar.program` (or re-emitted by :mod:`grammar.emit`).
``--config CONFIG_X=y`` means ``-DCONFIG_X=1`` and ``=n`` means
``-UCONFIG_X``; the shipped shim headers (``model/shims``) are searched after
every user ``-I`` directory unless ``use_shims`` is off.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import model
from grammar import ast
from grammar.cpp import SourceLine, preprocess
from grammar.emit import emit
from grammar.macros import Assembly, expand
from grammar.program import build_program, separate_units
from grammar.source import SourceError

SHIM_DIR = Path(model.__file__).parent / "shims"


@dataclass(frozen=True)
class FrontEndOptions:
    """How to preprocess: ``-I``/``-D``/``-U`` as given, ``configs`` maps
    ``CONFIG_*`` names to on/off, ``cpp`` replaces ``cc -E``, ``use_shims``
    adds ``model/shims`` as the last include directory."""

    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    undefines: tuple[str, ...] = ()
    configs: Mapping[str, bool] = field(default_factory=dict)
    cpp: str | None = None
    use_shims: bool = True


def preprocessed(path: str, options: FrontEndOptions) -> list[SourceLine]:
    """One file through the C preprocessor."""
    return preprocess(path, options.include_dirs, options.defines, options.undefines,
                      options.configs, options.cpp,
                      str(SHIM_DIR) if options.use_shims else None)


def assemble(path: str, options: FrontEndOptions) -> Assembly:
    """One file through the C preprocessor and the GNU-as layer."""
    return expand(path, preprocessed(path, options))


def _assemble_all(paths: Sequence[str], options: FrontEndOptions,
                  lines: Callable[[str], list[SourceLine]] | None = None) -> list[Assembly]:
    if not paths:
        raise SourceError("no input files")
    lines = lines or (lambda path: preprocessed(path, options))
    return separate_units([expand(path, lines(path)) for path in paths])


def load_program(paths: Sequence[str], options: FrontEndOptions = FrontEndOptions()) -> ast.Program:
    """The parsed program of ``paths`` (functions, labels, exception table)."""
    return build_program(paths, _assemble_all(paths, options))


PREPROCESSOR_RUNS = 4
"""How many C preprocessor processes :func:`load_programs` keeps running at once."""


def load_programs(requests: Sequence[tuple[Sequence[str], FrontEndOptions]]) -> list[ast.Program]:
    """``[load_program(paths, options) for paths, options in requests]``, faster.

    Each preprocessor run is a process that mostly waits on its own, so all
    of them are started at once (at most :data:`PREPROCESSOR_RUNS` at a time,
    from threads) and overlap with each other and with the GNU-as layer.
    That layer and the program builder stay in this thread and take the
    files in order, so the programs, and the first error raised, are those
    of the loop above.
    """
    with ThreadPoolExecutor(PREPROCESSOR_RUNS) as runs:
        started = [{path: runs.submit(preprocessed, path, options) for path in paths}
                   for paths, options in requests]
        try:
            return [build_program(paths, _assemble_all(paths, options, lambda path: running[path].result()))
                    for (paths, options), running in zip(requests, started)]
        finally:
            for running in started:
                for future in running.values():
                    future.cancel()


def expand_to_assembly(paths: Sequence[str],
                       options: FrontEndOptions = FrontEndOptions()) -> str:
    """The whole expansion as plain assembly that GNU as assembles to the same
    ``.text`` bytes and ``__ex_table`` relocations as the original.

    The program is built too, so that input the model would reject is rejected
    here as well.
    """
    assemblies = _assemble_all(paths, options)
    build_program(paths, assemblies)
    return "".join(emit(assembly) for assembly in assemblies)
