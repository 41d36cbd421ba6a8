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
* An input file must be a regular file (a FIFO, a device or a directory is
  an error, found without opening it to read) no larger than the
  ``input-bytes`` limit; a file whose name starts with ``-`` is passed as
  ``./-name`` so that the preprocessor reads it as a file, not an option.
  An empty or malformed ``-I``/``-D``/``-U`` value (``-D ''`` would make
  the preprocessor take the next argument as its value) and a ``--cpp``
  that does not split into words are errors before anything runs.
* Input that is not text (a NUL byte, or bytes that are not UTF-8) is a
  :class:`SourceError` at the first offending line, before the preprocessor
  runs; so is any preprocessor *error* (missing include, ``#error``), located
  at the file:line it names.  Preprocessor warnings (a macro redefined, as
  older TDX files do with ``TDVMCALL_EXPOSE_REGS_MASK``) are not errors.
* The preprocessor runs bounded (:func:`run_preprocessor`): its output, its
  run time and its memory are limits (:mod:`grammar.limits`); past one it
  is killed with everything it started.  Output lines before any line
  marker (a ``--cpp`` that prints no markers) belong to the input file.
* **GCC's compiler proper, run as its driver would run it.**  ``cc -E`` is
  GCC's driver: it works out the command line of its compiler proper
  (``cc1``) and runs it, which is 2 of the 7 ms of CPU of a run of a
  wrapper file (a ``check --matrix`` of the fixture forms makes 92).  So
  the driver is asked once per set of options, with ``-###``, what it would
  run for a stand-in input path (:func:`_driver_plan`), and each file's run
  is that command with the file's path where the stand-in was, and the
  environment the driver says it sets: the same process the driver would
  have started.  Only when the answer is one ``cc1`` command that names the
  stand-in once, as the input (and its base name after ``-dumpbase``), and
  that prints back as the driver printed it; any other answer (clang, a
  wrapper, a ``--cpp`` of another kind, a command that is not ``-E``) runs
  the command as given.  (Measured on the forms' check: the C preprocessor
  runs' CPU 0.83-1.07 s -> 0.72-0.79 s, and they end 0.05-0.15 s sooner;
  the same report.)
"""
from __future__ import annotations

import os
import re
import select
import selectors
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from grammar.limits import Limits
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
                         shim_dir: str | None = None, include_files: Sequence[str] = (),
                         nostdinc: bool = False) -> list[str]:
    """The argument vector that preprocesses ``path``; ``include_files``
    are ``-include``d (after every ``-D``/``-U``, as the preprocessor reads
    them anyway), ``nostdinc`` leaves the system's directories out (a
    kernel tree's files see only the tree, as Kbuild's ``-nostdinc``).

    >>> preprocessor_command("a.S", ["inc"], ["X=2"], ["Y"], {"CONFIG_A": True,
    ...     "CONFIG_B": False}, shim_dir="shims")  # doctest: +NORMALIZE_WHITESPACE
    ['cc', '-E', '-x', 'assembler-with-cpp', '-D__ASSEMBLY__', '-D__KERNEL__',
     '-Iinc', '-DX=2', '-UY', '-DCONFIG_A=1', '-UCONFIG_B', '-Ishims', 'a.S']
    >>> preprocessor_command("a.S", ["tree/include"], include_files=["tree/include/linux/kconfig.h"],
    ...                      nostdinc=True)  # doctest: +NORMALIZE_WHITESPACE
    ['cc', '-E', '-x', 'assembler-with-cpp', '-D__ASSEMBLY__', '-D__KERNEL__', '-nostdinc',
     '-Itree/include', '-include', 'tree/include/linux/kconfig.h', 'a.S']
    >>> preprocessor_command("-x.S")[-1]
    './-x.S'
    >>> preprocessor_command("a.S", defines=[""])
    Traceback (most recent call last):
    grammar.source.SourceError: bad -D '': expected NAME or NAME=VALUE
    """
    try:
        command = shlex.split(DEFAULT_CPP if cpp is None else cpp)
    except ValueError as error:
        raise SourceError(f"cannot read --cpp {cpp!r}: {error}") from None
    if not command:
        raise SourceError("--cpp names no command")
    for option, values, pattern, expected in (
            ("-I", include_dirs, r".+", "a directory"),
            ("-D", defines, rf"{_MACRO_NAME}(\([^)]*\))?(=.*)?", "NAME or NAME=VALUE"),
            ("-U", undefines, _MACRO_NAME, "a NAME")):
        for value in values:
            if not re.fullmatch(pattern, value, re.S):
                raise SourceError(f"bad {option} {value!r}: expected {expected}")
    command += ["-x", "assembler-with-cpp", "-D__ASSEMBLY__", "-D__KERNEL__"]
    command += ["-nostdinc"] if nostdinc else []
    command += [f"-I{directory}" for directory in include_dirs]
    command += [f"-D{define}" for define in defines]
    command += [f"-U{name}" for name in undefines]
    for name, enabled in sorted((configs or {}).items()):
        command.append(f"-D{name}=1" if enabled else f"-U{name}")
    for name in include_files:
        command += ["-include", name]
    if shim_dir is not None:
        command.append(f"-I{shim_dir}")
    command.append(f"./{path}" if path.startswith("-") else path)
    return command


_MACRO_NAME = r"[A-Za-z_]\w*"


def read_source(path: str, limits: Limits = Limits()) -> bytes:
    """The bytes of input file ``path``, which must be a regular file no
    larger than ``limits.input_bytes``.

    Nothing is opened that is not a regular file (a FIFO, a device or a
    directory would block or never end): the file is examined first, then
    opened without blocking and examined again.

    >>> read_source("/dev/zero")
    Traceback (most recent call last):
    grammar.source.SourceError: cannot read input: a character device, not a regular file
    """
    if not path:
        raise SourceError("an input file name is empty")
    origin = Origin(os.path.normpath(path), 1)
    try:
        _regular(os.stat(path).st_mode, origin)
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise SourceError(f"cannot read input: {error.strerror}", origin) from None
    with open(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        _regular(status.st_mode, origin)
        limits.check("input_bytes", status.st_size, f"input of {status.st_size} bytes", origin)
        data = file.read(limits.input_bytes + 1)
    limits.check("input_bytes", len(data), f"input of more than {limits.input_bytes} bytes", origin)
    return data


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


def _regular(mode: int, origin: Origin) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
        raise SourceError(f"cannot read input: {kind}, not a regular file", origin)


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


def map_lines(output: str, file: str = "<stdin>", read: list[str] | None = None) -> list[SourceLine]:
    """Split preprocessor output into lines with origins (markers dropped);
    lines before any marker belong to ``file``.  ``read``, when given,
    collects every file name the markers mention (the headers the
    preprocessor read, even those that produced no line).

    >>> read = []
    >>> [(l.text, l.origin.file, l.origin.line) for l in map_lines(
    ...     '# 1 "a.S"\\nnop\\n# 1 "m.h" 1\\n# 7 "inc/b.h" 1\\nret\\n\\nint3\\n', read=read)], read
    ([('nop', 'a.S', 1), ('ret', 'inc/b.h', 7), ('', 'inc/b.h', 8), ('int3', 'inc/b.h', 9)], ['a.S', 'm.h', 'inc/b.h'])
    """
    lines: list[SourceLine] = []
    number = 1
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


def _origin_of_end(output: bytes, file: str) -> Origin:
    """The origin of the last line of (a prefix of) preprocessor output,
    found without splitting it into lines.

    >>> _origin_of_end(b'# 1 "a.S"\\nnop\\n# 7 "b.h" 1\\nret\\nre', "x.S")
    Origin(file='b.h', line=8, column=1, expansion=())
    >>> _origin_of_end(b"garbage", "x.S")
    Origin(file='x.S', line=1, column=1, expansion=())
    """
    last = None
    for last in _LINE_MARKERS.finditer(output):
        pass
    if last is None:
        return Origin(file, output.count(b"\n") + 1)
    name = os.path.normpath(_unescape(last.group(2).decode("utf-8", "replace")))
    return Origin(name, int(last.group(1)) + output.count(b"\n", last.end()) - 1)


_LINE_MARKERS = re.compile(rb'^# (\d+) "((?:[^"\\\n]|\\.)*)"(?: \d+)*[ \t]*$', re.M)


def _preprocessor_error(stderr: str, command: list[str]) -> SourceError:
    for line in stderr.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match:
            file, number, column, message = match.groups()
            origin = Origin(os.path.normpath(file), int(number), int(column or 1))
            return SourceError(f"C preprocessor: {message}", origin)
    detail = " ".join(stderr.split())[:STDERR_SHOWN] or "no diagnostic"
    return SourceError(f"C preprocessor failed ({shlex.join(command)}): {detail}")


STDERR_SHOWN = 2000
"""Characters of a failed preprocessor's stderr that its error quotes (more is kept to find the diagnostic)."""
STDERR_KEPT = 1 << 16
"""Bytes of a preprocessor's stderr that are kept (the rest is read and dropped)."""


class Runs:
    """Preprocessor runs that any thread can stop at once (:meth:`stop`
    kills the process group of each run under way and of each run started
    later): a Ctrl-C at the terminal reaches only the tool's own process
    group, and a thread waiting on a run may not be joined in time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen] = set()
        self.stopped = False

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for process in self._processes:
                _kill_group(process, reap=False)  # its own thread reaps it

    def _add(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.add(process)
            if self.stopped:
                _kill_group(process, reap=False)

    def _remove(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes.discard(process)


def run_preprocessor(command: list[str], path: str, limits: Limits = Limits(),
                     runs: Runs | None = None) -> tuple[int, bytes, str]:
    """Run ``command``: (exit status, stdout, the start of stderr).

    The process gets no standard input, a session (so a process group) of its own and at
    most ``limits.cpp_memory_bytes`` of address space (``ulimit -v``, set by
    ``/bin/sh`` before it runs the command, so that the children ``cc``
    starts inherit it); it and its children are killed when its output
    passes ``limits.preprocessed_bytes``, when it runs longer than
    ``limits.cpp_seconds`` or when ``runs`` is stopped (each a SourceError).
    """
    if shutil.which(command[0]) is None:
        raise SourceError(f"cannot run the C preprocessor {command[0]!r}: "
                          "No such file or directory (or not executable)")
    proper = _compiler_proper(command, limits, runs)
    if proper is None:
        return _run_bounded(command, None, command[0], path, limits, runs)
    return _run_bounded(proper[0], proper[1], command[0], path, limits, runs)


def _run_bounded(argv: list[str], environment: Mapping[str, str] | None, name: str, path: str,
                 limits: Limits, runs: Runs | None) -> tuple[int, bytes, str]:
    """:func:`run_preprocessor`'s run of ``argv`` (with ``environment``
    added to ours), the preprocessor called ``name`` in errors."""
    origin = Origin(os.path.normpath(path), 1)
    limited = ["/bin/sh", "-c", 'ulimit -v "$0" 2>/dev/null; exec "$@"',
               str(limits.cpp_memory_bytes >> 10), *argv]
    try:
        process = subprocess.Popen(limited, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True,
                                   env={**os.environ, **environment} if environment else None)
    except OSError as error:
        raise SourceError(f"cannot run the C preprocessor {name!r}: {error.strerror}") from None
    deadline = time.monotonic() + limits.cpp_seconds
    stdout, stderr = bytearray(), bytearray()
    runs = runs or Runs()
    runs._add(process)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, stdout)
            selector.register(process.stderr, selectors.EVENT_READ, stderr)
            while selector.get_map():
                if runs.stopped:
                    raise SourceError("C preprocessor run stopped", origin)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _timeout(limits, origin)
                for key, _ in selector.select(min(remaining, 0.1)):
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.data is stdout:
                        stdout += chunk
                        if len(stdout) > limits.preprocessed_bytes:
                            raise limits.exceeded(
                                "preprocessed_bytes", "the C preprocessor's output (more than "
                                f"{limits.preprocessed_bytes} bytes by here)",
                                _origin_of_end(bytes(stdout[:limits.preprocessed_bytes]), origin.file))
                    else:
                        stderr += chunk[:max(STDERR_KEPT - len(stderr), 0)]
        if not _exited(process, deadline):
            raise _timeout(limits, origin)
    except BaseException:
        runs._remove(process)
        _kill_group(process)
        raise
    finally:
        process.stdout.close()
        process.stderr.close()
    runs._remove(process)
    _kill_group(process)  # what it left running
    return process.returncode, bytes(stdout), stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Plan:
    """What a GCC driver runs for a set of options: ``argv``, the stand-in
    input at ``argv[at]`` (its base name at ``argv[base]``, if there), and
    the ``environment`` it sets for it."""

    argv: tuple[str, ...]
    at: int
    base: int | None
    environment: Mapping[str, str]


_STAND_IN = os.path.join("tdxproof-stand-in", "tdxproof-input")
"""The input path the driver is asked about (the file's extension added)."""
_PLANS: dict[tuple[str, ...], _Plan | None] = {}
"""By the command without its input, and the input's extension: the
driver's plan (None: run the command as given)."""
_PLANS_LOCK = threading.Lock()
_BARE_ARGUMENT = re.compile(r"[A-Za-z0-9_/.-]+")
_SETTING = re.compile(r"([A-Z_][A-Z0-9_]*)=(.*)")


def _compiler_proper(command: list[str], limits: Limits, runs: Runs | None
                     ) -> tuple[list[str], Mapping[str, str]] | None:
    """The command line and environment that the GCC driver of ``command``
    (a ``-E`` run, input last) would give its compiler proper (module
    doc); None: run ``command`` itself."""
    if "-E" not in command[1:-1] or any(word.startswith("-#") for word in command):
        return None
    extension = os.path.splitext(os.path.basename(command[-1]))[1]
    key = (*command[:-1], extension)
    with _PLANS_LOCK:
        if key not in _PLANS:
            _PLANS[key] = _driver_plan(command[:-1], _STAND_IN + extension, limits, runs)
        plan = _PLANS[key]
    if plan is None:
        return None
    argv = list(plan.argv)
    argv[plan.at] = command[-1]
    if plan.base is not None:
        argv[plan.base] = os.path.basename(command[-1])
    return argv, plan.environment


def _driver_plan(options: list[str], stand_in: str, limits: Limits, runs: Runs | None) -> _Plan | None:
    """What the driver of ``options`` prints with ``-###`` that it would run
    for input ``stand_in``, if that is one ``cc1`` command (module doc)."""
    try:
        status, _, stderr = _run_bounded([*options, "-###", stand_in], None, options[0], stand_in, limits, runs)
    except SourceError:
        return None
    lines = stderr.splitlines()
    commands = [index for index, line in enumerate(lines) if line.startswith(" ")]
    if status != 0 or len(commands) != 1:
        return None
    line = lines[commands[0]]
    try:
        argv = shlex.split(line)
    except ValueError:
        return None
    base = argv.index("-dumpbase") + 1 if "-dumpbase" in argv[:-1] else None
    named = [index for index, word in enumerate(argv) if "tdxproof-input" in word or "tdxproof-stand-in" in word]
    if (_as_the_driver_prints(argv) != line or os.path.basename(argv[0]) != "cc1" or not os.path.isabs(argv[0])
            or argv.count(stand_in) != 1 or (base is not None and argv[base] != os.path.basename(stand_in))
            or sorted(named) != sorted({argv.index(stand_in), *(() if base is None else (base,))})):
        return None
    settings = (_SETTING.fullmatch(setting) for setting in lines[:commands[0]])
    return _Plan(tuple(argv), argv.index(stand_in), base, dict(match.groups() for match in settings if match))


def _as_the_driver_prints(argv: list[str]) -> str:
    """A command line as GCC's ``-###`` prints it: each word after a space,
    in double quotes (``\\``, ``"`` and ``$`` escaped) unless it is made of
    letters, digits and ``_/.-`` only.

    >>> print(_as_the_driver_prints(["/usr/lib/cc1", "-E", "-mtune=generic", 'a "b" $x']))
     /usr/lib/cc1 -E "-mtune=generic" "a \\"b\\" \\$x"
    """
    return "".join(" " + (word if _BARE_ARGUMENT.fullmatch(word) else
                          '"' + re.sub(r'(["\\$])', r"\\\1", word) + '"') for word in argv)


def _exited(process: subprocess.Popen, deadline: float) -> bool:
    """Whether ``process`` exits by ``deadline``; it is left unreaped, so
    that its process id (that of its group) cannot be taken by another
    process before :func:`_kill_group`.  It is waited for on a process
    file descriptor, which is readable once it exits (a preprocessor has
    closed its output by now, and usually exits within a millisecond:
    polling every 10 ms made a quarter of the forms check's runs wait up
    to 10 ms more); where there is none, polled every millisecond."""
    descriptor = None
    try:
        while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if descriptor is None:
                try:
                    descriptor = os.pidfd_open(process.pid)
                except (AttributeError, OSError):
                    descriptor = -1
            if descriptor >= 0:
                select.select([descriptor], [], [], remaining)
            else:
                time.sleep(min(0.001, remaining))
        return True
    finally:
        if descriptor is not None and descriptor >= 0:
            os.close(descriptor)


def _timeout(limits: Limits, origin: Origin) -> SourceError:
    return limits.exceeded("cpp_seconds", "the C preprocessor's run time", origin)


def _kill_group(process: subprocess.Popen, reap: bool = True) -> None:
    """Kill the process group of ``process`` (the preprocessor and what it
    started), then reap ``process`` (its process id names the group until
    then)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    if reap:
        process.wait()


@dataclass
class MacroListing:
    """The macros a run expanded or tested, as GCC's ``-dU`` lists them
    (``#define NAME BODY`` and ``#undef NAME`` lines), for
    :func:`preprocess` to fill; ``lines`` None: the run did not list them."""

    lines: list[str] | None = None


_LISTED = re.compile(r"^#(?:define|undef) .*$", re.M)


def preprocess(path: str, include_dirs: Sequence[str] = (), defines: Sequence[str] = (),
               undefines: Sequence[str] = (), configs: Mapping[str, bool] | None = None,
               cpp: str | None = None, shim_dir: str | None = None, limits: Limits = Limits(),
               runs: Runs | None = None, read: list[str] | None = None,
               include_files: Sequence[str] = (), nostdinc: bool = False,
               listing: MacroListing | None = None) -> list[SourceLine]:
    """Preprocess ``path`` and return its lines with their origins (``read``:
    see :func:`map_lines`).

    ``listing``, when given and the preprocessor is GCC's (its driver's
    plan is known: :func:`_compiler_proper`) and prints line markers (no
    ``-P``), gets the macros the run expanded or tested: the run lists
    them (``-dU``), and their lines, which GCC counts as lines of the
    output and follows with a line marker where it must, are blank lines
    here (the same lines and origins as the run without the listing:
    ``tests/test_compiler_proper.py``).  A listing run that fails is made
    again without the listing, whose error (or output) is the run's."""
    file = os.path.normpath(path)
    check_text(file, read_source(path, limits))
    command = preprocessor_command(path, include_dirs, defines, undefines, configs, cpp, shim_dir,
                                   include_files, nostdinc)
    if listing is not None and "-P" not in command and _compiler_proper(command, limits, runs) is not None:
        try:
            output = _output([*command[:-1], "-dU", command[-1]], path, limits, runs)
        except SourceError:
            pass
        else:
            listing.lines = _LISTED.findall(output)
            return map_lines(_LISTED.sub("", output), file, read)
    return map_lines(_output(command, path, limits, runs), file, read)


def _output(command: list[str], path: str, limits: Limits, runs: Runs | None) -> str:
    """The text ``command`` preprocesses ``path`` to, or its error."""
    file = os.path.normpath(path)
    status, stdout, stderr = run_preprocessor(command, path, limits, runs)
    if status != 0 and re.search(r"out of memory|bad_alloc|cannot allocate memory", stderr, re.I):
        raise limits.exceeded("cpp_memory_bytes", "the C preprocessor's memory", Origin(file, 1))
    if status != 0:
        raise _preprocessor_error(stderr, command)
    try:
        output = stdout.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"not UTF-8 text (byte {stdout[error.start]:#04x}) "
                          "in preprocessed input", _origin_of_end(stdout[:error.start], file)) from None
    if "\0" in output:
        raise SourceError("binary input (NUL byte) in preprocessed input",
                          _origin_of_end(stdout[:stdout.index(b"\0")], file))
    return output
