"""The ``equiv`` spec file (TOML): two implementations and how to compare them.

It decides what a well-formed spec is, so that every mistake in one is a
:class:`SourceError` (exit 2) naming the spec file and the key, never a
silent default.  Schema (every key optional unless marked)::

    [left]                        # and [right], both required
    files = ["a.S", "glue.c"]     # required; relative to the spec file;
                                  # a .c file is compiled (C_COMPILE)
    function = "__tdcall_ret"     # required
    include_dirs = [], defines = [], undefines = []
    config = { CONFIG_FRAME_POINTER = true }
    [left.structs.args]           # a struct pointer of this side's entry state
    register = "rsi"              # required
    layout = "tdx_module_args"    # required; a model.abi.STRUCT_LAYOUTS name
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
    reads = { tdcall = ["rax", "rcx"] }          # default: every GPR but RSP
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
"""
from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from grammar.ast import GPR64
from grammar.frontend import FrontEndOptions
from grammar.source import SourceError
from model import abi
from model.tdx import FIRMWARE_MODES, KINDS

SIDES = ("left", "right")
DEFAULT_OBSERVED: tuple[str, ...] = ("rax",) + abi.CALLEE_SAVED + ("rsp",)
"""What a System V caller sees in registers: the result, the callee-saved
registers and the stack pointer."""
MEMORY_MODES = ("outside-frame", "outside-frame-and-structs", "none")
C_COMPILE = ("cc", "-S", "-O2", "-fno-pie", "-mno-red-zone")
"""How a ``.c`` side file becomes assembly: ``cc -S -O2`` with the two kernel
code-generation flags that change what the model sees (not position
independent, so calls have no ``@PLT``; no red zone)."""


class SpecError(SourceError):
    """A mistake in the spec file, rendered as ``FILE: KEY: message``."""

    def __init__(self, spec: str, key: str, message: str):
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

    @property
    def size(self) -> int:
        return max(self.fields.values()) + 8


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

class _Reader:
    """Typed access to the TOML tables, every error naming its key."""

    def __init__(self, spec: str):
        self.spec = spec

    def error(self, key: str, message: str) -> SpecError:
        return SpecError(self.spec, key, message)

    def table(self, data: Mapping, key: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
              ) -> Mapping:
        if not isinstance(data, Mapping):
            raise self.error(key, "must be a table")
        for name in data:
            if name not in allowed:
                raise self.error(f"{key}.{name}" if key else name,
                                 f"unknown key (known here: {', '.join(allowed)})")
        for name in required:
            if name not in data:
                raise self.error(f"{key}.{name}" if key else name, "required key is missing")
        return data

    def strings(self, data: Mapping, key: str, name: str) -> tuple[str, ...]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.error(f"{key}.{name}", "must be a list of strings")
        return tuple(value)

    def boolean(self, data: Mapping, key: str, name: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            raise self.error(f"{key}.{name}", "must be true or false")
        return value

    def choice(self, data: Mapping, key: str, name: str, choices: tuple[str, ...], default: str) -> str:
        value = data.get(name, default)
        if value not in choices:
            raise self.error(f"{key}.{name}", f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def registers(self, values, key: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(values, list) or not all(isinstance(item, str) for item in values):
            raise self.error(key, "must be a list of register names")
        for value in values:
            if value.lower() not in allowed:
                raise self.error(key, f"unknown register {value!r} (known: {', '.join(allowed)})")
        return tuple(value.lower() for value in values)


_SIDE_KEYS = ("files", "function", "include_dirs", "defines", "undefines", "config", "structs")
_TERM = re.compile(r"^\s*(?P<a>\S+)\s*(?P<op>==|!=)\s*(?P<b>\S+)\s*$")


def _side(reader: _Reader, data: Mapping, name: str, base: Path) -> Side:
    data = reader.table(data, name, _SIDE_KEYS, ("files", "function"))
    files = reader.strings(data, name, "files")
    if not files:
        raise reader.error(f"{name}.files", "names no file")
    resolved = []
    for file in files:
        path = base / file
        if not path.is_file():
            raise reader.error(f"{name}.files", f"no such file {str(path)!r}")
        resolved.append(str(path))
    function = data["function"]
    if not isinstance(function, str) or not function:
        raise reader.error(f"{name}.function", "must be a function name")
    config = data.get("config", {})
    if not isinstance(config, Mapping) or not all(
            isinstance(v, bool) and k.startswith("CONFIG_") for k, v in config.items()):
        raise reader.error(f"{name}.config", "must map CONFIG_* names to true or false")
    front_end = FrontEndOptions(
        include_dirs=tuple(str(base / d) for d in reader.strings(data, name, "include_dirs")),
        defines=reader.strings(data, name, "defines"), undefines=reader.strings(data, name, "undefines"),
        configs=dict(config))
    structs = {}
    for struct, fields in reader.table(data.get("structs", {}), f"{name}.structs",
                                       tuple(data.get("structs", {}))).items():
        key = f"{name}.structs.{struct}"
        fields = reader.table(fields, key, ("register", "layout", "nullable"), ("register", "layout"))
        register = reader.registers([fields["register"]], f"{key}.register", GPR64)[0]
        layout = fields["layout"]
        if layout not in abi.STRUCT_LAYOUTS:
            raise reader.error(f"{key}.layout", f"unknown layout {layout!r} "
                                                f"(known: {', '.join(abi.STRUCT_LAYOUTS)})")
        if struct in GPR64:
            raise reader.error(key, "a struct may not be named like a register")
        structs[struct] = StructPointer(struct, name, register, layout, abi.STRUCT_LAYOUTS[layout],
                                        reader.boolean(fields, key, "nullable", False))
    return Side(name, tuple(resolved), function, front_end, structs)


def _term(reader: _Reader, key: str, text: str, sides: Mapping[str, Side]) -> Term:
    try:
        return Term(text, constant=int(text, 0))
    except ValueError:
        pass
    parts = text.split(".")
    if parts[0] not in sides or len(parts) not in (2, 3):
        raise reader.error(key, f"{text!r} is not SIDE.REGISTER, SIDE.STRUCT[.FIELD] or an integer "
                                f"(SIDE is left or right)")
    side = sides[parts[0]]
    if len(parts) == 2 and parts[1] in side.structs:
        return Term(text, side.name, register=side.structs[parts[1]].register)
    if len(parts) == 2:
        register = parts[1].lower()
        if register not in GPR64:
            raise reader.error(key, f"unknown register {parts[1]!r} in {text!r}")
        return Term(text, side.name, register=register)
    struct = side.structs.get(parts[1])
    if struct is None:
        raise reader.error(key, f"{side.name} declares no struct {parts[1]!r} "
                                f"(declared: {', '.join(side.structs) or 'none'})")
    if parts[2] not in struct.fields:
        raise reader.error(key, f"unknown field {parts[2]!r} of struct {struct.layout} "
                                f"(fields: {', '.join(struct.fields)})")
    return Term(text, side.name, struct=struct, field=parts[2])


def _equations(reader: _Reader, texts: tuple[str, ...], key: str, sides: Mapping[str, Side]
               ) -> tuple[Equation, ...]:
    equations = []
    for position, text in enumerate(texts):
        here = f"{key}[{position}]"
        match = _TERM.match(text)
        if not match:
            raise reader.error(here, f"{text!r} is not 'TERM == TERM' or 'TERM != TERM'")
        a, b = _term(reader, here, match["a"], sides), _term(reader, here, match["b"], sides)
        if a.constant is not None and b.constant is not None:
            raise reader.error(here, f"{text!r} compares two constants")
        if a.side is not None and b.side is not None and a.side == b.side:
            raise reader.error(here, f"{text!r} relates {a.side} to {a.side}: unrelated registers "
                                     f"(an equation must relate the left and the right side)")
        equations.append(Equation(here, a, match["op"], b))
    return tuple(equations)


def load_spec(path: str) -> EquivSpec:
    """The spec file at ``path``, checked (see the module docstring)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SourceError(f"cannot read spec {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SourceError(f"{path}: not valid TOML: {error}") from None
    reader = _Reader(path)
    reader.table(data, "", ("left", "right", "relation", "observe", "module"), SIDES)
    base = Path(path).parent
    sides = {name: _side(reader, data[name], name, base) for name in SIDES}

    relation = reader.table(data.get("relation", {}), "relation", ("same", "equal"))
    same = reader.registers(relation.get("same", []), "relation.same", GPR64)
    equations = tuple(Equation(f"relation.same[{i}]", Term(f"left.{reg}", "left", register=reg), "==",
                               Term(f"right.{reg}", "right", register=reg)) for i, reg in enumerate(same))
    equations += _equations(reader, reader.strings(relation, "relation", "equal"), "relation.equal", sides)

    observe = reader.table(data.get("observe", {}), "observe", ("registers", "end", "memory", "equal"))
    registers = observe.get("registers", "default")
    if registers == "default":
        observed = DEFAULT_OBSERVED
    elif registers == "all":
        observed = GPR64
    elif isinstance(registers, list):
        observed = reader.registers(registers, "observe.registers", GPR64 + abi.FLAGS)
    else:
        raise reader.error("observe.registers", 'must be "default", "all" or a list of registers')
    observed_equal = _equations(reader, reader.strings(observe, "observe", "equal"), "observe.equal", sides)

    module = reader.table(data.get("module", {}), "module", ("reads", "outputs", "firmware", "tdcall_may_fault"))
    tables = {}
    for name in ("reads", "outputs"):
        table = reader.table(module.get(name, {}), f"module.{name}", KINDS)
        allowed = tuple(r for r in GPR64 if r != "rsp" and (name == "reads" or r != "rax"))
        tables[name] = {kind: reader.registers(regs, f"module.{name}.{kind}", allowed)
                        for kind, regs in table.items()}
    return EquivSpec(
        path=path, left=sides["left"], right=sides["right"], relation=equations,
        observed_registers=observed, observe_end=reader.boolean(observe, "observe", "end", True),
        memory=reader.choice(observe, "observe", "memory", MEMORY_MODES, "outside-frame"),
        observed_equal=observed_equal, module_reads=tables["reads"], module_outputs=tables["outputs"],
        firmware=reader.choice(module, "module", "firmware", FIRMWARE_MODES, "spec"),
        tdcall_may_fault=reader.boolean(module, "module", "tdcall_may_fault", False))
