"""Run the system C preprocessor on a kernel ``.S`` file, as Kbuild does.

Decisions:

* The command is ``cc -E`` (or the user's ``--cpp``), followed by
  ``-x assembler-with-cpp -D__ASSEMBLY__ -D__KERNEL__`` (Kbuild defines both
  for every ``.S`` file), the user's ``-I``/``-D``/``-U``
  in that order, the ``CONFIG_*`` options (``y`` -> ``-DCONFIG_X=1``,
  ``n`` -> ``-UCONFIG_X``), and the shipped shim directory last, so that a
  user's kernel tree always wins over the shims.  We never preprocess
  ourselves.
* Every output line is mapped back to its file and line through the
  preprocessor's line markers (``# LINE "FILE" FLAGS``); file names are kept
  as the preprocessor spells them, normalised with ``os.path.normpath``.
* Input that is not text (a NUL byte, or bytes that are not UTF-8) is a
  :class:`SourceError` at the first offending line, before the preprocessor
  runs; so is any preprocessor *error* (missing include, ``#error``), located
  at the file:line it names.  Preprocessor warnings (a macro redefined, as
  older TDX files do with ``TDVMCALL_EXPOSE_REGS_MASK``) are not errors.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from grammar.source import Origin, SourceError

DEFAULT_CPP = "cc -E"


@dataclass(frozen=True)
class SourceLine:
    """One line of preprocessed text and the original line it came from."""

    text: str
    origin: Origin


def preprocessor_command(path: str, include_dirs: Sequence[str] = (),
                         defines: Sequence[str] = (), undefines: Sequence[str] = (),
                         configs: Mapping[str, bool] | None = None, cpp: str | None = None,
                         shim_dir: str | None = None) -> list[str]:
    """The argument vector that preprocesses ``path``.

    >>> preprocessor_command("a.S", ["inc"], ["X=2"], ["Y"], {"CONFIG_A": True,
    ...     "CONFIG_B": False}, shim_dir="shims")  # doctest: +NORMALIZE_WHITESPACE
    ['cc', '-E', '-x', 'assembler-with-cpp', '-D__ASSEMBLY__', '-D__KERNEL__',
     '-Iinc', '-DX=2', '-UY', '-DCONFIG_A=1', '-UCONFIG_B', '-Ishims', 'a.S']
    """
    command = shlex.split(cpp or DEFAULT_CPP)
    command += ["-x", "assembler-with-cpp", "-D__ASSEMBLY__", "-D__KERNEL__"]
    command += [f"-I{directory}" for directory in include_dirs]
    command += [f"-D{define}" for define in defines]
    command += [f"-U{name}" for name in undefines]
    for name, enabled in sorted((configs or {}).items()):
        command.append(f"-D{name}=1" if enabled else f"-U{name}")
    if shim_dir is not None:
        command.append(f"-I{shim_dir}")
    command.append(path)
    return command


def check_text(path: str, data: bytes) -> str:
    """Decode ``data`` (the contents of ``path``) as UTF-8 text or fail.

    >>> check_text("a.S", b"nop\\n")
    'nop\\n'
    >>> check_text("a.S", b"nop\\n\\xff\\n")
    Traceback (most recent call last):
    grammar.source.SourceError: not UTF-8 text (byte 0xff)
    """
    for number, line in enumerate(data.split(b"\n"), start=1):
        if b"\0" in line:
            raise SourceError("binary input (NUL byte), not assembly source",
                              Origin(path, number, line.index(b"\0") + 1))
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SourceError(f"not UTF-8 text (byte {line[error.start]:#04x})",
                              Origin(path, number, error.start + 1)) from None
    return data.decode("utf-8")


_LINE_MARKER = re.compile(r'^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d+)*)\s*$')
_DIAGNOSTIC = re.compile(r"^(.+?):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$")


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def map_lines(output: str, read: list[str] | None = None) -> list[SourceLine]:
    """Split preprocessor output into lines with origins (markers dropped).
    ``read``, when given, collects every file name the markers mention (the
    headers the preprocessor read, even those that produced no line).

    >>> read = []
    >>> [(l.text, l.origin.file, l.origin.line) for l in map_lines(
    ...     '# 1 "a.S"\\nnop\\n# 1 "m.h" 1\\n# 7 "inc/b.h" 1\\nret\\n\\nint3\\n', read)], read
    ([('nop', 'a.S', 1), ('ret', 'inc/b.h', 7), ('', 'inc/b.h', 8), ('int3', 'inc/b.h', 9)], ['a.S', 'm.h', 'inc/b.h'])
    """
    lines: list[SourceLine] = []
    file, number = "<stdin>", 1
    for text in output.split("\n"):
        marker = _LINE_MARKER.match(text)
        if marker:
            number, file = int(marker.group(1)), os.path.normpath(_unescape(marker.group(2)))
            if read is not None and file not in read:
                read.append(file)
            continue
        lines.append(SourceLine(text, Origin(file, number)))
        number += 1
    if lines and not lines[-1].text:
        lines.pop()
    return lines


def _preprocessor_error(stderr: str, command: list[str]) -> SourceError:
    for line in stderr.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match:
            file, number, column, message = match.groups()
            origin = Origin(os.path.normpath(file), int(number), int(column or 1))
            return SourceError(f"C preprocessor: {message}", origin)
    detail = " ".join(stderr.split()) or "no diagnostic"
    return SourceError(f"C preprocessor failed ({shlex.join(command)}): {detail}")


def preprocess(path: str, include_dirs: Sequence[str] = (), defines: Sequence[str] = (),
               undefines: Sequence[str] = (), configs: Mapping[str, bool] | None = None,
               cpp: str | None = None, shim_dir: str | None = None,
               read: list[str] | None = None) -> list[SourceLine]:
    """Preprocess ``path`` and return its lines with their origins (``read``:
    see :func:`map_lines`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read input: {error.strerror}",
                          Origin(os.path.normpath(path), 1)) from None
    check_text(os.path.normpath(path), data)
    command = preprocessor_command(path, include_dirs, defines, undefines, configs, cpp, shim_dir)
    try:
        result = subprocess.run(command, capture_output=True)
    except OSError as error:
        raise SourceError(f"cannot run the C preprocessor {command[0]!r}: "
                          f"{error.strerror}") from None
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        raise _preprocessor_error(stderr, command)
    try:
        output = result.stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        prefix = result.stdout[:error.start].decode("utf-8")
        located = map_lines(prefix + "\n")
        origin = located[-1].origin if located else Origin(os.path.normpath(path), 1)
        raise SourceError(f"not UTF-8 text (byte {result.stdout[error.start]:#04x}) "
                          "in preprocessed input", origin) from None
    if "\0" in output:
        located = map_lines(output[:output.index("\0")] + "\n")
        raise SourceError("binary input (NUL byte) in preprocessed input",
                          located[-1].origin if located else Origin(os.path.normpath(path), 1))
    return map_lines(output, read)
