"""The programs of a run, built once per (files, front-end options) in a process.

A run checks one program under several configurations and, with
``--jobs``, in forked children: each child inherits the programs built
before the fork, and is sent those built after (:func:`keep_program`).
The C preprocessor runs of the programs not built yet may have started
ahead (:class:`grammar.frontend.Preprocessing`, while
the prover's modules load); :func:`preprocess_programs` collects them
and :func:`cached_preprocessed` builds each program from its run.
"""
from __future__ import annotations

from typing import Any

from grammar import ast
from grammar.caches import CACHES
from grammar.frontend import Preprocessing, load_preprocessed, load_program, options_key


_PROGRAMS = CACHES.cache("programs", 256)


def program_key(files: tuple[str, ...], options) -> tuple:
    """What tells two programs apart: the files and the front-end options."""
    return (tuple(files), options_key(options))


def cached_program(files: tuple[str, ...], options) -> ast.Program:
    """The program of ``files`` under front-end ``options``, built once."""
    key = program_key(files, options)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = load_program(list(files), options)
    return _PROGRAMS[key]


def keep_program(files: tuple[str, ...], options, program: ast.Program) -> ast.Program:
    """Cache ``program`` as :func:`cached_program`'s of ``files`` under
    ``options``, unless one is cached (a worker given a group's programs
    built by the parent: :mod:`proofs.scheduling`): the program cached."""
    key = program_key(files, options)
    if key not in _PROGRAMS:
        _PROGRAMS[key] = program
    return _PROGRAMS[key]


def preprocess_programs(requests: list[tuple[tuple[str, ...], Any]], preprocessing) -> dict[tuple, Any]:
    """The C preprocessor runs of the programs of ``requests`` not in the
    cache yet (those ``preprocessing`` started, and the rest, at once); for
    :func:`cached_preprocessed`."""
    missing = {program_key(*request): request for request in requests
               if program_key(*request) not in _PROGRAMS}
    preprocessing = preprocessing or Preprocessing(())
    return dict(zip(missing, preprocessing.results(list(missing.values()))))


def cached_preprocessed(files: tuple[str, ...], options, preprocessed: dict[tuple, Any]) -> ast.Program:
    """:func:`cached_program`, from the preprocessor runs already made (a
    program that was cached when they were collected, and has been dropped
    from the full cache since, is built from the start)."""
    key = program_key(files, options)
    if key not in _PROGRAMS:
        run = preprocessed.pop(key, None)
        _PROGRAMS[key] = (load_program(list(files), options) if run is None
                          else load_preprocessed(list(files), options, run))
    return _PROGRAMS[key]
