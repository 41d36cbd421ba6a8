"""The ``equiv`` spec file (TOML): two implementations and how to compare them.

It decides what a well-formed spec is, so that every mistake in one is a
:class:`SourceError` (exit 2) at the line and column of the key or value in
the spec file (:mod:`grammar.located_toml` reads it), naming the key, never
a silent default.  Schema (every key optional unless marked)::

    [left]                        # and [right], both required
    files = ["a.S", "glue.c"]     # required; relative to the spec file;
                                  # a .c file is compiled (C_COMPILE)
    function = "__tdcall_ret"     # required
    include_dirs = [], defines = [], undefines = []
    config = { CONFIG_FRAME_POINTER = true }
    [left.structs.args]           # a struct pointer of this side's entry state
    register = "rsi"              # required
    layout = "tdx_module_args"    # required; a model.abi.LAYOUTS key
    nullable = false

    [relation]                    # between the two entry states
    same = ["rbx", "rbp"]         # left.X == right.X for each register X
    equal = ["left.rsi == right.args.rcx", "left.r9 != 0"]

    [observe]                     # what the caller compares at the end
    registers = "default"         # or "all" (every GPR), or a list (GPRs, flags)
    end = true                    # returned vs panicked, and the return address
    memory = "outside-frame"      # or "outside-frame-and-structs" or "none"
    equal = ["left.out.r10 == right.args.r10"]   # final-state terms

    [module]
    reads = { tdcall = ["rax", "rcx"] }          # default: model.tdx's (a TDG.VP.VMCALL with a known
                                                 # bitmap: RAX, RCX, the exposed ones; else every GPR but RSP)
    outputs = { tdcall = ["rcx", "rdx"] }        # default: the model's rules
    firmware = "spec"
    tdcall_may_fault = false

A *term* is ``SIDE.REGISTER`` (the 64-bit register), ``SIDE.STRUCT`` (the
pointer: the struct's register), ``SIDE.STRUCT.FIELD`` (the u64 field of a
declared struct, through the pointer the struct's register held at entry)
or an integer literal.  An equation of two
non-constant terms must relate the two sides (``left.rdi == left.rsi`` is
"unrelated registers": it says nothing about the other implementation).
Whether the relation is satisfiable needs Z3 and the entry states, so
:mod:`proofs.equiv` checks that, naming the keys of the unsatisfiable core.

The short form ``tdxproof equiv LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC``
with options (``--same``, ``--relate``, ``--struct``, ``--observe-*``,
``--module-*``, ``-I/-D/-U``) builds the same tables and goes through the
same checks; its errors name the option instead of the key (the spec's path
is then its :class:`CommandLine`).
"""
from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from grammar.ast import GPR64
from grammar.frontend import FrontEndOptions
from grammar.located_toml import Document, KeyPath, Table, Value, key_text, parse_key_text, read_toml
from grammar.source import Origin, SourceError
from model import abi
from model.tdx import FIRMWARE_MODES, KINDS
from proofs.equiv_options import FLAGS, RECORD_ORDER, SHORT_FORM_OPTIONS, no_short_form_options

SIDES = ("left", "right")
DEFAULT_OBSERVED: tuple[str, ...] = ("rax",) + abi.CALLEE_SAVED + ("rsp",)
"""What a System V caller sees in registers: the result, the callee-saved
registers and the stack pointer."""
MEMORY_MODES = ("outside-frame", "outside-frame-and-structs", "none")
C_COMPILE = ("cc", "-S", "-O2", "-fno-pie", "-mno-red-zone")
"""How a ``.c`` side file becomes assembly: ``cc -S -O2`` with the two kernel
code-generation flags that change what the model sees (not position
independent, so calls have no ``@PLT``; no red zone)."""


class CommandLine(str):
    """The spec path of a short-form spec: its command line, canonical
    (``tdxproof equiv LEFT RIGHT OPTION...``), which ``tdxproof replay``
    reads back with :func:`recorded_spec`.  It knows which option stands
    for each spec key, so that every :class:`SpecError` about it names the
    option the user wrote."""

    options: Mapping[str, str]

    def __new__(cls, text: str, options: Mapping[str, str]):
        line = super().__new__(cls, text)
        line.options = options
        return line

    def __reduce__(self):
        return CommandLine, (str(self), dict(self.options))

    def option(self, key: str) -> str:
        """The option behind ``key``, the longest key prefix it has (``key``
        may name several keys, comma-separated, as an unsatisfiable core
        does).

        >>> CommandLine("x", {"relation.same": "--same", "left": "LEFT 'a.S:f'"}).option(
        ...     "relation.same[1], left.function")
        "--same, LEFT 'a.S:f'"
        """
        names = []
        for part in key.split(", "):
            prefixes = [k for k in self.options if part == k or part.startswith((k + ".", k + "["))]
            name = self.options[max(prefixes, key=len)] if prefixes else part
            if name not in names:
                names.append(name)
        return ", ".join(names)


class SpecFile(str):
    """The path of a spec file, which knows where each of its keys was
    written (its :class:`Document`), so that every :class:`SpecError` about
    it -- also those :mod:`proofs.equiv` raises -- is located."""

    document: Document

    def __new__(cls, document: Document):
        path = super().__new__(cls, document.file)
        path.document = document
        return path

    def __reduce__(self):
        return SpecFile, (self.document,)

    def origin(self, key: str) -> Origin:
        """Where ``key`` (the first of several, comma-separated) was written."""
        return self.document.origin(parse_key_text(key.split(", ")[0]))


class SpecError(SourceError):
    """A mistake in the spec about ``key``: ``FILE:LINE:COLUMN: error: KEY:
    message`` at the key's value (for a short-form spec, ``tdxproof equiv:
    OPTION: message``)."""

    def __init__(self, spec: str, key: str, message: str):
        if isinstance(spec, CommandLine):
            super().__init__(f"tdxproof equiv: {spec.option(key)}: {message}")
        elif isinstance(spec, SpecFile):
            super().__init__(f"{key}: {message}", spec.origin(key))
        else:
            super().__init__(f"{spec}: {key}: {message}")
        self.key = key


@dataclass(frozen=True)
class StructPointer:
    name: str
    side: str
    register: str
    layout: str
    fields: Mapping[str, int]
    nullable: bool = False
    size: int = 0
    """The struct's size in bytes (its layout's, tail padding included)."""


@dataclass(frozen=True)
class Side:
    name: str
    files: tuple[str, ...]
    function: str
    front_end: FrontEndOptions
    structs: Mapping[str, StructPointer]

    def assembly_files(self) -> list[str]:
        """The side's inputs with every ``.c`` compiled to assembly."""
        return [compile_c(path) if path.endswith(".c") else path for path in self.files]


@dataclass(frozen=True)
class Term:
    """``side.register``, ``side.struct.field`` or a constant."""

    text: str
    side: str | None = None
    register: str | None = None
    struct: StructPointer | None = None
    field: str | None = None
    constant: int | None = None


@dataclass(frozen=True)
class Equation:
    key: str
    left: Term
    op: str
    right: Term

    @property
    def text(self) -> str:
        return f"{self.left.text} {self.op} {self.right.text}"


@dataclass(frozen=True)
class EquivSpec:
    path: str
    left: Side
    right: Side
    relation: tuple[Equation, ...]
    observed_registers: tuple[str, ...] = DEFAULT_OBSERVED
    observe_end: bool = True
    memory: str = "outside-frame"
    observed_equal: tuple[Equation, ...] = ()
    module_reads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    module_outputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    firmware: str = "spec"
    tdcall_may_fault: bool = False

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.left, self.right

    @property
    def structs(self) -> tuple[StructPointer, ...]:
        return tuple(self.left.structs.values()) + tuple(self.right.structs.values())


def compile_c(path: str) -> str:
    """``path`` compiled with ``cc -S -O2`` into a per-content cache file
    (the same source gives the same assembly path, so reports stay
    deterministic)."""
    try:
        source = Path(path).read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read {path}: {error.strerror}") from None
    digest = hashlib.sha256(" ".join(C_COMPILE).encode() + b"\0" + source).hexdigest()[:16]
    output = Path(tempfile.gettempdir()) / "tdxproof-c" / digest / (Path(path).stem + ".s")
    if not output.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_suffix(".partial.s")
        done = subprocess.run([*C_COMPILE, "-o", str(partial), path], capture_output=True, text=True)
        if done.returncode != 0:
            raise SourceError(f"{' '.join(C_COMPILE)} {path} failed: {done.stderr.strip()}")
        partial.replace(output)
    return str(output)


# --- reading ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    """The :class:`Source` behind a spec's values: the spec file's document
    (errors at the line and column) or a short form's command line (errors
    naming the option)."""

    path: str

    def error(self, where: KeyPath, message: str, at: str = "value") -> SourceError:
        if isinstance(self.path, SpecFile):
            return self.path.document.error(where, message, at)
        return SpecError(self.path, key_text(where), message)

    def fail(self, value: Value, message: str) -> SpecError:
        """An error about ``value`` in the words of :class:`SpecError`."""
        return SpecError(self.path, key_text(value.where), message)


def _register(value: Value, allowed: tuple[str, ...]) -> str:
    """A register name from ``allowed``, in any case."""
    if isinstance(value.value, str) and value.value.lower() in allowed:
        return value.value.lower()
    return value.choice(allowed, "register")


def _registers(value: Value, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = value.list("a list of register names")
    names = [_register(item, allowed) for item in items]
    for item, name in zip(items, names):
        if names.count(name) > 1:
            raise item.error(f"{value.name} names register {name!r} twice")
    return tuple(names)


_SIDE_KEYS = ("include_dirs", "defines", "undefines", "config", "structs")
_TERM = re.compile(r"^\s*(?P<a>\S+)\s*(?P<op>==|!=)\s*(?P<b>\S+)\s*$")


def _side(spec: _Spec, side: Table, base: Path) -> Side:
    name = str(side.where[-1])
    side = side.table(("files", "function"), _SIDE_KEYS)
    files = side["files"].strings(nonempty=True)
    if not files:
        raise spec.fail(side["files"], "names no file")
    resolved = []
    for item in side["files"].list():
        path = base / item.value
        if not path.is_file():
            raise spec.fail(item, f"no such file {str(path)!r}")
        resolved.append(str(path))
    function = side["function"].name_string("a function name")
    configs = {}
    for option, value in side.optional("config", lambda v: v.table(optional=None), {}).items():
        if not option.startswith("CONFIG_"):
            raise value.error(f"{value.name}: {option!r} is not a CONFIG_* option name "
                              f"(did you mean 'CONFIG_{option}'?)", at="key")
        configs[option] = value.boolean()
    strings = {key: side.optional(key, lambda v: v.strings(nonempty=True), ()) for key in
               ("include_dirs", "defines", "undefines")}
    front_end = FrontEndOptions(include_dirs=tuple(str(base / d) for d in strings["include_dirs"]),
                                defines=strings["defines"], undefines=strings["undefines"], configs=configs)
    structs = {}
    for struct, fields in side.optional("structs", lambda v: v.table(optional=None), {}).items():
        if struct in GPR64:
            raise spec.fail(fields, "a struct may not be named like a register")
        fields = fields.table(("register", "layout"), ("nullable",))
        layout = fields["layout"].choice(tuple(abi.LAYOUTS), "layout")
        structs[struct] = StructPointer(struct, name, _register(fields["register"], GPR64), layout,
                                        abi.LAYOUTS[layout].offsets(), fields.optional("nullable", Value.boolean, False),
                                        abi.LAYOUTS[layout].size)
    return Side(name, tuple(resolved), function, front_end, structs)


def _term(spec: _Spec, item: Value, text: str, sides: Mapping[str, Side]) -> Term:
    try:
        return Term(text, constant=int(text, 0))
    except ValueError:
        pass
    parts = text.split(".")
    if parts[0] not in sides or len(parts) not in (2, 3):
        raise spec.fail(item, f"{text!r} is not SIDE.REGISTER, SIDE.STRUCT[.FIELD] or an integer "
                              f"(SIDE is left or right)")
    side = sides[parts[0]]
    if len(parts) == 2 and parts[1] in side.structs:
        return Term(text, side.name, register=side.structs[parts[1]].register)
    if len(parts) == 2:
        register = parts[1].lower()
        if register not in GPR64:
            raise spec.fail(item, f"unknown register {parts[1]!r} in {text!r}")
        return Term(text, side.name, register=register)
    struct = side.structs.get(parts[1])
    if struct is None:
        raise spec.fail(item, f"{side.name} declares no struct {parts[1]!r} "
                              f"(declared: {', '.join(side.structs) or 'none'})")
    if parts[2] not in struct.fields:
        raise spec.fail(item, f"unknown field {parts[2]!r} of struct {struct.layout} "
                              f"(fields: {', '.join(struct.fields)})")
    return Term(text, side.name, struct=struct, field=parts[2])


def _equations(spec: _Spec, table: Table, sides: Mapping[str, Side]) -> tuple[Equation, ...]:
    """The ``equal`` list of ``table``, each item ``TERM == TERM`` or ``TERM != TERM``."""
    if "equal" not in table:
        return ()
    table["equal"].strings()
    equations = []
    for item in table["equal"].list():
        match = _TERM.match(item.value)
        if not match:
            raise spec.fail(item, f"{item.value!r} is not 'TERM == TERM' or 'TERM != TERM'")
        a, b = _term(spec, item, match["a"], sides), _term(spec, item, match["b"], sides)
        if a.constant is not None and b.constant is not None:
            raise spec.fail(item, f"{item.value!r} compares two constants")
        if a.side is not None and b.side is not None and a.side == b.side:
            raise spec.fail(item, f"{item.value!r} relates {a.side} to {a.side}: unrelated registers "
                                  f"(an equation must relate the left and the right side)")
        equations.append(Equation(key_text(item.where), a, match["op"], b))
    return tuple(equations)


def load_spec(path: str) -> EquivSpec:
    """The spec file at ``path``, checked (see the module docstring)."""
    document = read_toml(path, "equiv spec")
    return spec_from_data(document.data, SpecFile(document), Path(path).parent)


def spec_from_data(data: Mapping, path: str, base: Path) -> EquivSpec:
    """The spec the TOML tables ``data`` describe, checked; file names are
    relative to ``base``.  Both the spec file (``path`` a :class:`SpecFile`)
    and the short form (a :class:`CommandLine`) come here."""
    spec = _Spec(path)
    root = Table(data, (), spec).table(SIDES, ("relation", "observe", "module"))
    sides = {name: _side(spec, root[name], base) for name in SIDES}
    empty = Table({}, (), spec)

    relation = root["relation"].table((), ("same", "equal")) if "relation" in root else empty
    same = relation.optional("same", lambda v: _registers(v, GPR64), ())
    equations = tuple(Equation(f"relation.same[{i}]", Term(f"left.{reg}", "left", register=reg), "==",
                               Term(f"right.{reg}", "right", register=reg)) for i, reg in enumerate(same))
    equations += _equations(spec, relation, sides)

    observe = root["observe"].table((), ("registers", "end", "memory", "equal")) if "observe" in root else empty
    observed = DEFAULT_OBSERVED
    if "registers" in observe:
        registers = observe["registers"]
        if registers.value == "all":
            observed = GPR64
        elif isinstance(registers.value, list):
            observed = _registers(registers, GPR64 + abi.FLAGS)
        elif registers.value != "default":
            raise registers.expected('"default", "all" or a list of register names')

    module = (root["module"].table((), ("reads", "outputs", "firmware", "tdcall_may_fault")) if "module" in root
              else empty)
    tables = {}
    for name in ("reads", "outputs"):
        allowed = tuple(r for r in GPR64 if r != "rsp" and (name == "reads" or r != "rax"))
        table = module.optional(name, lambda v: v.table((), KINDS), empty)
        tables[name] = {kind: _registers(registers, allowed) for kind, registers in table.items()}
    return EquivSpec(
        path=path, left=sides["left"], right=sides["right"], relation=equations,
        observed_registers=observed, observe_end=observe.optional("end", Value.boolean, True),
        memory=observe.optional("memory", lambda v: v.choice(MEMORY_MODES), "outside-frame"),
        observed_equal=_equations(spec, observe, sides), module_reads=tables["reads"],
        module_outputs=tables["outputs"],
        firmware=module.optional("firmware", lambda v: v.choice(FIRMWARE_MODES), "spec"),
        tdcall_may_fault=module.optional("tdcall_may_fault", Value.boolean, False))


# --- the short form: LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC and options -----------------------

DEFAULT_SAME: tuple[str, ...] = tuple(r for r in GPR64 if r != "rsp")
"""The short form's relation when it is given no ``--same`` and no
``--relate``: the two functions are called the same way (every GPR but RSP
holds the same value on both sides; each side has its own stack)."""
SHORT_FORM_PREFIX = "tdxproof equiv "
"""How a short-form spec's path begins: ``tdxproof equiv LEFT RIGHT`` and
each option as ``FLAG VALUE`` (:data:`proofs.equiv_options.RECORD_ORDER`)."""


def short_form_options_given(args) -> list[str]:
    """The short-form options set in ``args`` (a spec file may not be
    combined with them)."""
    return [option.flag for option in RECORD_ORDER if getattr(args, option.dest)]


def _option_error(option: str, message: str) -> SourceError:
    return SourceError(f"tdxproof equiv: {option}: {message}")


def _short_side(text: str, label: str) -> dict:
    files, colon, function = text.rpartition(":")
    if not colon or not files or not function:
        raise _option_error(f"{label} {text}", "expected FILE[,FILE...]:FUNCTION (a colon, then the function)")
    return {"files": files.split(","), "function": function}


def _assignment(option: str, text: str, form: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise _option_error(f"{option} {text}", f"expected {form}")
    return name, value


def short_form_spec(left: str, right: str, args) -> EquivSpec:
    """The spec of ``tdxproof equiv LEFT RIGHT [options]``: the tables a
    spec file would hold, checked by :func:`spec_from_data` (files relative
    to the current directory), its path the canonical command line, so
    every error names the option."""
    words = [left, right]
    for option in RECORD_ORDER:
        value = getattr(args, option.dest)
        if option.switch:
            words += [option.flag] if value else []
        elif option.repeated:
            words += [word for item in value for word in (option.flag, item)]
        elif value is not None:
            words += [option.flag, value]
    options = {"left": f"LEFT {left}", "right": f"RIGHT {right}", "observe.registers": FLAGS["observe_registers"],
               "observe.memory": FLAGS["observe_memory"], "module.reads": FLAGS["module_reads"],
               "module.outputs": FLAGS["module_outputs"], "module.tdcall_may_fault": FLAGS["tdcall_may_fault"],
               "relation.same": FLAGS["same"] if args.same or args.relate else
               f"the default {FLAGS['same']} (every GPR but RSP)"}
    sides = {"left": _short_side(left, "LEFT"), "right": _short_side(right, "RIGHT")}
    for side in sides.values():
        side.update(include_dirs=list(args.include_dirs), defines=list(args.defines),
                    undefines=list(args.undefines))
    for text in args.structs:
        option = f"{FLAGS['structs']} {text}"
        name, value = _assignment(FLAGS["structs"], text, "SIDE.NAME=REG:LAYOUT[:nullable]")
        side, dot, struct = name.partition(".")
        register, _, rest = value.partition(":")
        layout, _, nullable = rest.partition(":")
        if side not in SIDES or not dot or not struct or not layout or nullable not in ("", "nullable"):
            raise _option_error(option, "expected SIDE.NAME=REG:LAYOUT[:nullable] (SIDE is left or right)")
        structs = sides[side].setdefault("structs", {})
        if struct in structs:
            raise _option_error(option, f"{side} declares struct {struct!r} twice")
        structs[struct] = {"register": register, "layout": layout, "nullable": bool(nullable)}
        options[f"{side}.structs.{struct}"] = option
    same = [reg for text in args.same for reg in text.split(",")]
    relation = {"same": same if args.same or args.relate else list(DEFAULT_SAME), "equal": list(args.relate)}
    options.update({f"relation.equal[{i}]": f"{FLAGS['relate']} '{text}'" for i, text in enumerate(args.relate)})
    observe: dict = {"equal": list(args.observe_equal)}
    options.update({f"observe.equal[{i}]": f"{FLAGS['observe_equal']} '{text}'"
                    for i, text in enumerate(args.observe_equal)})
    if args.observe_registers is not None:
        registers = args.observe_registers
        observe["registers"] = registers if registers in ("default", "all") else registers.split(",")
    if args.observe_memory is not None:
        observe["memory"] = args.observe_memory
    module: dict = {"tdcall_may_fault": args.tdcall_may_fault}
    for dest, key in (("module_reads", "reads"), ("module_outputs", "outputs")):
        option = FLAGS[dest]
        table = module[key] = {}
        for text in getattr(args, dest):
            kind, registers = _assignment(option, text, f"KIND=REG[,REG...] (KIND is {' or '.join(KINDS)})")
            if kind in table:
                raise _option_error(f"{option} {text}", f"{kind} given twice")
            table[kind] = registers.split(",")
            options[f"module.{key}.{kind}"] = f"{option} {text}"
    line = CommandLine(SHORT_FORM_PREFIX + shlex.join(words), options)
    data = {**sides, "relation": relation, "observe": observe, "module": module}
    return spec_from_data(data, line, Path("."))


def recorded_spec(text: str) -> EquivSpec:
    """The spec a counterexample's ``spec`` field names: a spec file, or
    the canonical command line of a short-form run (relative to the
    current directory).

    >>> recorded_spec("tdxproof equiv a.S b.S:g --same rbx")
    Traceback (most recent call last):
    grammar.source.SourceError: tdxproof equiv: LEFT a.S: expected FILE[,FILE...]:FUNCTION (a colon, then the function)
    """
    if not text.startswith(SHORT_FORM_PREFIX):
        return load_spec(text)
    words = shlex.split(text[len(SHORT_FORM_PREFIX):])
    flags = {option.flag: option.dest for option in SHORT_FORM_OPTIONS if not option.switch}
    fault = words[-1:] == [FLAGS["tdcall_may_fault"]]
    args = no_short_form_options()
    args.tdcall_may_fault = fault
    pairs = words[2:len(words) - fault]
    if len(words) < 2 or len(pairs) % 2 or any(flag not in flags for flag in pairs[::2]):
        raise SourceError(f"not a short-form equiv command line: {text!r}")
    for flag, value in zip(pairs[::2], pairs[1::2]):
        dest = flags[flag]
        if isinstance(getattr(args, dest), list):
            getattr(args, dest).append(value)
        else:
            setattr(args, dest, value)
    return short_form_spec(words[0], words[1], args)
