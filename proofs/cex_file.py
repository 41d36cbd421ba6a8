"""The counterexample file: what ``--cex-dir`` writes and ``tdxproof replay`` may trust.

``check --cex-dir`` and ``equiv --cex-dir`` write one JSON file per
counterexample; ``tdxproof replay`` reads it back and runs it on the CPU.
This module is the one definition of that file: the serialisation of the
front-end options and its inverse, the digests of the sources, and the
schema every file is validated against before anything in it is used.

Decisions recorded here:

* **Nothing in a file names a program.**  A counterexample may come from
  anyone (a bug report, a CI artefact), so it is data, never a command.
  The preprocessor a file records (``front_end.cpp``) is information only:
  :func:`front_end_options` takes the reader's preprocessor as an argument
  and never returns the file's.  Include directories, defines, undefines
  and file paths end up in ``cc``'s argument vector (no shell): each is
  refused when empty, when it starts with ``-`` (``cc`` would read it as an
  option: ``-fplugin=...``) or when it holds a NUL byte; a define is
  ``NAME``, ``NAME=VALUE`` or ``NAME(ARGS)=VALUE``.  Function and symbol
  names are checked as assembler symbols (a function's name is written
  into the assembly the native harness builds).
* **Schema.**  Every key of both kinds of file is listed below with its
  type: a ``check`` file (SPEC.md section 8: the property, entry state,
  memory, TDX events, path and trace, plus ``front_end`` and ``digests``)
  (with ``abi``: the contract the property was judged by, whole -- its
  ``[[wrapper]]`` keys, its struct layout and its ABI source -- checked
  as a contract file is (its numbers integers, as there), and rebuilt
  from there by ``replay``)
  and an ``equiv`` file (``kind = "equiv"``, the difference, the module's
  inputs, the spec's struct pointers, and one ``check``-shaped part per
  side).  A key the schema does not know is refused, so that a misspelt
  key is never silently ignored.  Numbers are ``0x`` hex strings of at most
  16 digits (64 bits), memory bytes ``0x0``..``0xff``, flags 0, 1 or null;
  properties, TDX kinds and outcomes, path ends and firmware modes are the
  tool's own enumerations.  Each violation is a :class:`CexFileError`
  (exit 2) naming the file and the JSON path of the bad value
  (``tdx[0].registers.rsi: expected a 64-bit hex string, got 12.5``).
* **Limits.**  Only a regular file of at most :data:`MAX_FILE_BYTES` is
  read (not a FIFO, a device or a directory); a non-finite number, an
  integer too long to convert, a duplicate key, or nesting deeper than the
  JSON reader's recursion guard is refused while parsing; every list and
  table has a size bound.  The schema walks only the structure it
  expects, so validating takes time linear in the file, at bounded depth.
* **Digests.**  ``digests`` maps every file the front end read -- each
  input file and each file the C preprocessor's line markers name (the
  headers, also those that only define macros), as normalised paths -- to
  ``sha256:HEX``.  :func:`changed_sources` recomputes them: a source that
  is missing or not a regular file is an error (exit 2); a changed one is
  not: the replay still runs and says so, because replaying after a fix
  (is the counterexample gone?) is what a developer does with it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from typing import Any, Callable, Mapping, Sequence

from grammar.ast import GPR64
from grammar.frontend import FrontEndOptions, preprocessed
from grammar.limits import LIMIT_NAMES, Limits, limits_from
from grammar.source import SourceError
from model import abi
from model.executor import PathEnd
from model.tdx import ARITHMETIC_FLAGS, FIRMWARE_MODES, KINDS, Outcome
from proofs.contracts import contract_from_record
from proofs.properties import PROPERTIES

MAX_FILE_BYTES = 16 * 2**20
"""The largest counterexample file read (the tool's own are tens of KiB; one at
this bound validates in about a second)."""
MAX_TEXT = 4096
"""The longest string (a path, a name, an instruction)."""
MAX_LONG_TEXT = 2**20
"""The longest free-text string (a spec's command line, a replay problem)."""
MAX_STEPS = 50_000
"""The longest path or trace (the concrete replay stops at 10,000 steps)."""
MAX_BYTES = 2**17
"""The most memory bytes a side records (twice what the harness can map)."""
MAX_ITEMS = 4096
"""The most items of any other list or table."""
MAX_INT = 2**31
"""Line, column and event numbers are below this."""


class CexFileError(SourceError):
    """A file that is not a counterexample ``replay`` can trust (exit 2)."""


class _Violation(Exception):
    """A schema violation at JSON path ``at`` (made a :class:`CexFileError`
    naming the file by :func:`validate`)."""

    def __init__(self, at: str, message: str):
        super().__init__(f"{at}: {message}" if at else message)


Check = Callable[[Any, str], None]
"""A schema node: raises :class:`_Violation` unless the value at the JSON path fits."""


def _describe(value: Any) -> str:
    """A short description of a JSON value for an error message.

    >>> _describe(12.5), _describe(True), _describe(None), _describe([1]), _describe("x" * 205)[-8:]
    ('12.5', 'true', 'null', 'a list', 'xxxx..."')
    """
    if isinstance(value, (bool, type(None))):
        return json.dumps(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return json.dumps(value if len(value) <= 200 else value[:200] + "...")
    return repr(value)


def _expected(what: str, value: Any, at: str) -> _Violation:
    return _Violation(at, f"expected {what}, got {_describe(value)}")


def _join(at: str, key: str) -> str:
    """The JSON path of ``key`` in the object at ``at`` (an odd key quoted).

    >>> _join("", "tdx"), _join("entry.registers", "rsi"), _join("memory", "a b")
    ('tdx', 'entry.registers.rsi', 'memory."a b"')
    """
    shown = key if _PLAIN_KEY.fullmatch(key) else _describe(key)
    return f"{at}.{shown}" if at else shown


# --- leaves --------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[\w.@/$+#-]{1,200}")
_HEX64 = re.compile(r"0x[0-9a-fA-F]{1,16}")
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
_MACRO = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEFINE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_, .]*\))?(=.*)?", re.DOTALL)
_CONFIG = re.compile(r"CONFIG_[A-Za-z0-9_]+")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def hex64(value: Any, at: str) -> None:
    if not (isinstance(value, str) and _HEX64.fullmatch(value)):
        raise _expected("a 64-bit hex string", value, at)


def number(text: str) -> int:
    """The value of a validated hex string.

    >>> number("0xff")
    255
    """
    return int(text, 16)


def _byte(value: Any, at: str) -> None:
    if not (isinstance(value, str) and _HEX64.fullmatch(value) and number(value) <= 0xFF):
        raise _expected("a byte (a hex string 0x0..0xff)", value, at)


def _flag(value: Any, at: str) -> None:
    if value is not None and not (type(value) is int and value in (0, 1)):
        raise _expected("a flag (0, 1 or null)", value, at)


def _boolean(value: Any, at: str) -> None:
    if not isinstance(value, bool):
        raise _expected("true or false", value, at)


def _count(value: Any, at: str) -> None:
    if not (type(value) is int and 0 <= value < MAX_INT):
        raise _expected(f"a whole number 0..{MAX_INT - 1}", value, at)


def _string(limit: int) -> Check:
    def check(value: Any, at: str) -> None:
        if not isinstance(value, str):
            raise _expected("a string", value, at)
        if len(value) > limit:
            raise _Violation(at, f"a string of {len(value)} characters (at most {limit})")
    return check


_text, _long_text = _string(MAX_TEXT), _string(MAX_LONG_TEXT)


def _matching(pattern: re.Pattern, what: str) -> Check:
    def check(value: Any, at: str) -> None:
        if not (isinstance(value, str) and len(value) <= MAX_TEXT and "\0" not in value
                and pattern.fullmatch(value)):
            raise _expected(what, value, at)
    return check


_symbol = _matching(_SYMBOL, "an assembler symbol name")


def _argument(what: str) -> Check:
    """A path or directory handed to ``cc`` as an argument (module docstring)."""
    def check(value: Any, at: str) -> None:
        if not (isinstance(value, str) and value and len(value) <= MAX_TEXT and "\0" not in value):
            raise _expected(what, value, at)
        if value.startswith("-"):
            raise _Violation(at, f"{_describe(value)} starts with '-': the C preprocessor would read it as "
                                 f"an option")
    return check


_path = _argument("a file path")


def _choice(values: Sequence[str]) -> Check:
    def check(value: Any, at: str) -> None:
        if not (isinstance(value, str) and value in values):
            raise _expected("one of " + ", ".join(f'"{v}"' for v in values), value, at)
    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any, at: str) -> None:
        if value is not None:
            inner(value, at)
    return check


# --- containers ----------------------------------------------------------------------

def _listing(item: Check, limit: int = MAX_ITEMS, minimum: int = 0) -> Check:
    def check(value: Any, at: str) -> None:
        if not isinstance(value, list):
            raise _expected("a list", value, at)
        if not minimum <= len(value) <= limit:
            raise _Violation(at, f"a list of {len(value)} items (expected {minimum} to {limit})")
        for index, element in enumerate(value):
            item(element, f"{at}[{index}]")
    return check


def _mapping(key: Check, value_check: Check, limit: int = MAX_ITEMS) -> Check:
    """An object whose keys all fit ``key`` and values ``value_check``."""
    def check(value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise _expected("an object", value, at)
        if len(value) > limit:
            raise _Violation(at, f"an object of {len(value)} keys (at most {limit})")
        for name, element in value.items():
            key(name, f"{at}: key {_describe(name)}")
            value_check(element, _join(at, name))
    return check


def _table(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    """An object with exactly these keys (``optional`` ones may be absent)."""
    optional = optional or {}
    known = {**required, **optional}

    def check(value: Any, at: str) -> None:
        if not isinstance(value, dict):
            raise _expected("an object", value, at)
        for name in value:
            if name not in known:
                raise _Violation(_join(at, name), f"unknown key (known: {', '.join(known)})")
        for name, check_value in known.items():
            if name in value:
                check_value(value[name], _join(at, name))
        missing = [name for name in required if name not in value]
        if missing:
            raise _Violation(at, f"missing key{'s' if len(missing) > 1 else ''} "
                                 + ", ".join(f"'{name}'" for name in missing))
    return check


def _all(*checks: Check) -> Check:
    """Each of ``checks`` in turn (a table, then rules across its keys)."""
    def check(value: Any, at: str) -> None:
        for one in checks:
            one(value, at)
    return check


# --- the schema ----------------------------------------------------------------------

_REGISTER = _choice(GPR64)
_REGISTERS = _mapping(_REGISTER, hex64, len(GPR64))
_ALL_REGISTERS = _table({reg: hex64 for reg in GPR64})
_ORIGIN = _table({"file": _text, "line": _count, "column": _count, "expansion": _listing(_text, 256)})
_END = _choice(list(PathEnd))


def _completion_status(value: dict, at: str) -> None:
    if value["outcome"] == Outcome.COMPLETION.value and value["status"] is None:
        raise _Violation(_join(at, "status"), "a completion needs the status the module returned, got null")


_EVENT = _all(_table({"kind": _choice(KINDS), "index": _count, "outcome": _choice([o.value for o in Outcome]),
                      "source": _ORIGIN, "registers": _REGISTERS, "status": _nullable(hex64)}),
              _completion_status)
_EVENTS = _listing(_EVENT)
_ACCESSES = _listing(_table({"address": hex64, "size": _count}), 64)
_STEP = _table({"source": _ORIGIN, "instruction": _text, "changed": _REGISTERS, "note": _text},
               {"written": _listing(_REGISTER, len(GPR64)), "loads": _ACCESSES, "stores": _ACCESSES,
                "jumped": _boolean})
def _limit(value: Any, at: str) -> None:
    if not (type(value) is int and 1 <= value < MAX_INT):
        raise _expected(f"a whole number 1..{MAX_INT - 1}", value, at)


_FRONT_END = _table({
    "include_dirs": _listing(_argument("an include directory")),
    "defines": _listing(_matching(_DEFINE, "a define (NAME, NAME=VALUE or NAME(ARGS)=VALUE)")),
    "undefines": _listing(_matching(_MACRO, "a macro name")),
    "configs": _mapping(_matching(_CONFIG, "a CONFIG_* option name"), _boolean),
    "cpp": _nullable(_text),
    "use_shims": _boolean}, {"limits": _mapping(_choice(LIMIT_NAMES), _limit),
                             "kernel_tree": _argument("a kernel tree directory"),
                             "kernel_build": _argument("a kernel build directory")})
_DIGESTS = _mapping(_path, _matching(_DIGEST, "a digest (sha256: and 64 hex digits)"))
_RUN = {
    "function": _symbol,
    "files": _listing(_path, MAX_ITEMS, 1),
    "front_end": _FRONT_END,
    "digests": _DIGESTS,
    "entry": _table({"registers": _ALL_REGISTERS,
                     "flags": _table({name: _flag for name in abi.FLAGS})}),
    "memory": _mapping(hex64, _byte, MAX_BYTES),
    "symbols": _mapping(_symbol, hex64),
    "external_calls": _mapping(_symbol, _listing(_mapping(_choice(abi.CALLER_SAVED + ARITHMETIC_FLAGS), hex64))),
    "tdx": _EVENTS,
    "path": _listing(_ORIGIN, MAX_STEPS),
    "end": _END,
}
"""The keys of one function run, in a ``check`` file and in each side of an ``equiv`` file."""


def _inputs_digested(value: dict, at: str) -> None:
    digested = {os.path.normpath(name) for name in value["digests"]}
    for key in ("files", "sources"):
        for index, name in enumerate(value.get(key, ())):
            if os.path.normpath(name) not in digested:
                raise _Violation(f"{_join(at, key)}[{index}]", f"{name} has no digest in {_join(at, 'digests')}")


def _check_rules(value: dict, at: str) -> None:
    prop = PROPERTIES[value["property"]]
    if prop.relational and "varied_tdx" not in value:
        raise _Violation(at, f"missing key 'varied_tdx' (the TDX events of {prop.id}'s second run)")
    if value["property"] in ("frame", "no-red-zone"):
        _nullable(hex64)(value["actual"], "actual")


def _judged_later(value: Any, at: str) -> None:
    """A value another check judges whole (a recorded contract's entries)."""


def _bound_contract(value: Any, at: str) -> None:
    """A bound contract (:func:`proofs.contracts.contract_record`): its
    layout's shape here, the contract itself through the very checks a
    contract file gets."""
    _table({"contract": _mapping(_text, _judged_later, 64), "abi_source": _long_text,
            "layout": _table({"name": _symbol, "size": _count, "source": _text,
                              "fields": _listing(_table({"name": _symbol, "offset": _count, "size": _count}),
                                                 256, 1)})})(value, at)
    try:
        contract_from_record(value, at)
    except SourceError as error:
        raise _Violation("", error.message) from None


def _contract_named(value: dict, at: str) -> None:
    """The bound contract is there exactly when a contract is named, and is the one named."""
    if (value["contract"] is None) != ("abi" not in value):
        raise _Violation(_join(at, "abi"), f"missing: 'contract' names {value['contract']!r}, and the file does "
                                           f"not carry that contract (the record check --cex-dir writes)"
                         if value["contract"] else "a contract record, but 'contract' names none")
    if value["contract"] is not None:
        key = contract_from_record(value["abi"], "abi").key
        if key != value["contract"]:
            raise _Violation(_join(at, "contract"), f"{value['contract']!r} is not the key of the contract "
                                                    f"record ({key!r})")


CHECK_FILE = _all(_table({
    "property": _choice(tuple(PROPERTIES)),
    "detail": _text,
    "config": _text,
    "firmware": _choice(FIRMWARE_MODES),
    "contract": _nullable(_text),
    **_RUN,
    "where": _nullable(_ORIGIN),
    "expected": _nullable(_long_text),
    "actual": _nullable(_long_text),
    "confirmed": _boolean,
}, {"abi": _bound_contract, "varied_tdx": _EVENTS, "trace": _listing(_STEP, MAX_STEPS),
    "replay_problem": _long_text, "native_placement": _long_text}),
    _inputs_digested, _check_rules, _contract_named)
"""A ``check --cex-dir`` file."""

OBSERVABLE_KINDS = ("register", "flag", "end", "returned-to", "tdx", "term", "memory")


def _difference_rules(value: dict, at: str) -> None:
    """What replay compares: a register or flag it can read, the byte at an address."""
    if value["kind"] == "memory" and "address" not in value:
        raise _Violation(at, "missing key 'address' (the byte that differs)")
    names = {"register": GPR64, "flag": abi.FLAGS}.get(value["kind"])
    if names is not None:
        _choice(names)(value["observable"], _join(at, "observable"))


_SIDE = _all(_table({**_RUN, "sources": _listing(_path, MAX_ITEMS, 1)},
                    {"trace": _listing(_STEP, MAX_STEPS),
                     "final": _table({"registers": _ALL_REGISTERS, "end": _END})}),
             _inputs_digested)
_SOURCES = _listing(_text, 16)
def _one_caller(value: dict, at: str) -> None:
    rsp = [value[side]["entry"]["registers"]["rsp"] for side in ("left", "right")]
    if number(rsp[0]) != number(rsp[1]):
        raise _Violation("right.entry.registers.rsp", f"{rsp[1]} is not the left side's {rsp[0]} (both sides "
                                                      f"are called by the same caller, with the same RSP)")


EQUIV_FILE = _all(_table({
    "kind": _choice(("equiv",)),
    "spec": _long_text,
    "difference": _all(_table({"observable": _text, "kind": _choice(OBSERVABLE_KINDS),
                               "left": _nullable(_long_text), "right": _nullable(_long_text)},
                              {"address": hex64, "written_at": _ORIGIN}), _difference_rules),
    "also_differ": _listing(_text),
    "module": _listing(_table({
        "kind": _choice(KINDS), "index": _count, "reads": _listing(_REGISTER, len(GPR64)),
        "inputs": _mapping(_REGISTER, _table({"left": hex64, "right": hex64}), len(GPR64)),
        "may_differ": _listing(_table({"register": _REGISTER, "left_source": _SOURCES,
                                       "right_source": _SOURCES}), len(GPR64))})),
    "structs": _listing(_table({"side": _choice(("left", "right")), "name": _text, "register": _REGISTER,
                                "size": _count})),
    "left": _SIDE,
    "right": _SIDE,
    "confirmed": _boolean,
}, {"replay_problem": _long_text}), _one_caller)
"""An ``equiv --cex-dir`` file."""


def validate(data: Any, source: str) -> dict:
    """``data`` (parsed JSON), checked against the schema of its kind;
    the first violation is a :class:`CexFileError` naming ``source``."""
    if not isinstance(data, dict):
        raise CexFileError(f"{source}: not a counterexample file: expected a JSON object, got {_describe(data)}")
    if "results" in data and "tool" in data:
        raise CexFileError(f"{source}: not a counterexample file but a check --json report (replay takes the "
                           f"files check --cex-dir writes)")
    try:
        if "kind" in data:
            _choice(("equiv",))(data["kind"], "kind")
        (EQUIV_FILE if "kind" in data else CHECK_FILE)(data, "")
    except _Violation as violation:
        raise CexFileError(f"{source}: {violation}") from None
    return data


# --- reading -------------------------------------------------------------------------

class _Malformed(Exception):
    """Valid JSON syntax, but not data the schema can judge (a duplicate key, NaN)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    table = dict(pairs)
    if len(table) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _Malformed(f"the key {_describe(duplicate)} appears twice in one object")
    return table


def _no_constant(name: str) -> None:
    raise _Malformed(f"{name} is not a number a counterexample holds")


def read(path: str) -> dict:
    """The counterexample in ``path``, read and validated (module docstring)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise CexFileError(f"cannot read {path}: {error.strerror}") from None
    try:
        mode = os.fstat(descriptor)
        if not stat.S_ISREG(mode.st_mode):
            what = "a directory" if stat.S_ISDIR(mode.st_mode) else "not a regular file"
            raise CexFileError(f"cannot read {path}: {what}")
        if mode.st_size > MAX_FILE_BYTES:
            raise CexFileError(f"{path}: not a counterexample file: {mode.st_size} bytes, more than the "
                               f"{MAX_FILE_BYTES // 2**20} MiB a counterexample file may have")
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise CexFileError(f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise CexFileError(f"{path}: not a counterexample file: more than {MAX_FILE_BYTES // 2**20} MiB")
    if not data.strip():
        raise CexFileError(f"{path}: not a counterexample file: it is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CexFileError(f"{path}: not a counterexample file: not UTF-8 text "
                           f"(byte {data[error.start]:#04x} at offset {error.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise CexFileError(f"{path}: not a counterexample file: not valid JSON ({error})") from None
    except RecursionError:
        raise CexFileError(f"{path}: not a counterexample file: nested too deeply") from None
    except _Malformed as error:
        raise CexFileError(f"{path}: not a counterexample file: {error}") from None
    except ValueError:
        raise CexFileError(f"{path}: not a counterexample file: a number of more digits than Python "
                           f"converts") from None
    return validate(parsed, path)


# --- front-end options ---------------------------------------------------------------

def front_end_json(options: FrontEndOptions) -> dict:
    """The ``front_end`` table of ``options`` (``cpp`` recorded for
    information only: see :func:`front_end_options`; ``limits`` only those
    raised or lowered with ``--limit``)."""
    changed = {name: getattr(options.limits, name) for name in LIMIT_NAMES
               if getattr(options.limits, name) != getattr(Limits(), name)}
    tree = {name: getattr(options, name) for name in ("kernel_tree", "kernel_build") if getattr(options, name)}
    return {"include_dirs": list(options.include_dirs), "defines": list(options.defines),
            "undefines": list(options.undefines), "configs": dict(sorted(options.configs.items())),
            "cpp": options.cpp, "use_shims": options.use_shims, **({"limits": changed} if changed else {}),
            **tree}


def front_end_options(table: Mapping, cpp: str | None) -> FrontEndOptions:
    """The options a validated ``front_end`` table records, preprocessing
    with ``cpp`` -- the reader's own, never the file's.  The inverse of
    :func:`front_end_json`:

    >>> options = FrontEndOptions(("inc",), ("X=1",), ("Y",), {"CONFIG_A": True}, "clang -E", False,
    ...                           Limits(rept=7))
    >>> front_end_options(front_end_json(options), cpp="clang -E") == options
    True
    >>> front_end_options(front_end_json(options), cpp=None).cpp is None
    True
    >>> tree = FrontEndOptions(use_shims=False, kernel_tree="/k", kernel_build="/b")
    >>> front_end_options(front_end_json(tree), cpp=None) == tree
    True
    """
    return FrontEndOptions(tuple(table["include_dirs"]), tuple(table["defines"]), tuple(table["undefines"]),
                           dict(table["configs"]), cpp, table["use_shims"],
                           limits_from(table.get("limits", {}).items()),
                           table.get("kernel_tree"), table.get("kernel_build"))


# --- digests -------------------------------------------------------------------------

def file_digest(path: str) -> str:
    """``sha256:HEX`` of the file at ``path``."""
    with open(path, "rb") as stream:
        return "sha256:" + hashlib.sha256(stream.read()).hexdigest()


def source_digests(files: Sequence[str], options: FrontEndOptions, extra: Sequence[str] = ()) -> dict[str, str]:
    """The ``digests`` table of a run of ``files`` under ``options``: each
    file and each file the preprocessor reads for it (the preprocessor runs
    again for this), and each of ``extra`` (sources compiled before)."""
    read = [os.path.normpath(name) for name in [*files, *extra]]
    for name in files:
        preprocessed(name, options, read=read)
    return {name: file_digest(name) for name in sorted(set(read)) if os.path.isfile(name)}


def check_file(counterexample: Mapping, options: FrontEndOptions, digests: Mapping[str, str]) -> dict:
    """The file ``check --cex-dir`` writes: the report's counterexample
    with the options and digests of the run that refuted it."""
    return {**counterexample, "front_end": front_end_json(options), "digests": dict(digests)}


def runs_of(data: Mapping) -> list[Mapping]:
    """The function runs a validated file holds: itself, or its two sides."""
    return [data["left"], data["right"]] if data.get("kind") == "equiv" else [data]


def changed_sources(data: Mapping, source: str) -> list[str]:
    """The sources of a validated file that changed since it was written;
    a missing or unreadable one, or one that is not a regular file, is a
    :class:`CexFileError`."""
    changed: list[str] = []
    for run in runs_of(data):
        for name, recorded in run["digests"].items():
            try:
                mode = os.stat(name).st_mode
                if not stat.S_ISREG(mode):
                    raise CexFileError(f"{source}: the source {name} is not a regular file")
                digest = file_digest(name)
            except OSError as error:
                raise CexFileError(f"{source}: the source {name} it was written from cannot be read: "
                                   f"{error.strerror}") from None
            if digest != recorded and name not in changed:
                changed.append(name)
    return changed
