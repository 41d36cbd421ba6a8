"""Per-wrapper ABI contracts, kept as data (``proofs/contract_data/*.toml``).

A contract says what a wrapper promises its caller beyond the properties
that hold for every function (SPEC.md section 7).  The shipped files cover
every era; users add their own with ``--contracts FILE`` (same schema).
Fields of a ``[[wrapper]]`` entry:

``name``, ``era`` (``unified``/``legacy``), ``variant`` (optional; several
forms share a name), ``instruction`` (``seamcall``/``tdcall``);
``leaf``: the argument register holding the leaf, or an integer constant
(``leaf_version = { field = "version", shift = 16 }``: when the struct's
layout has that byte field, the leaf goes to RAX as ``leaf | field <<
shift``, as recent trees pass the leaf's version);
``struct``: the C struct the wrapper takes (``tdx_module_args``,
``tdx_module_output``, ``tdx_hypercall_args``: its layout is chosen per
function, :mod:`proofs.abi_choice`) or one shipped layout by its key
(``model.abi.LAYOUTS``: ``tdx_hypercall_args_oldest``), and
``struct_pointer``: the argument register pointing at it
(``struct_may_be_null``: outputs are written only when it is not NULL);
``inputs``: instruction input registers loaded from the same-named struct
field; ``input_registers``: instruction input register -> argument
register; ``input_stack``: instruction input register -> stack argument
number N (the Nth argument past the six in registers, at entry RSP + 8N);
``input_constants``: instruction input register -> constant (each input
register is given by one of the four);
``outputs``: struct fields written back from the same-named instruction
output register on completion (``outputs_when``: only when the argument
register ``register``'s value has one of ``mask``'s bits set);
``module_outputs``: what the TDX module may change, ``call`` (RCX, RDX,
R8-R11), ``worst-case`` (SPEC section 6) or ``bitmap`` (the TDG.VP.VMCALL
exposure bitmap in RCX); ``returns``: ``status`` (RAX at return is the
instruction's status) or ``r10`` (the TDVMCALL's R10, the R10->RAX
remapping); ``failure_codes``: the host failure codes apply
(VMfailInvalid, #UD, #GP); ``scrub``: no module-controlled value survives
in a shared register; ``panic_on_failure``: a nonzero TDCALL status reaches
the never-returning failure function.

:func:`load_contracts` checks every file completely when it reads it (in
the CLI, before any worker starts), each mistake a :class:`SourceError` at
its line and column (:mod:`grammar.located_toml`): a value of the wrong type
(a boolean is not an integer; constants are unsigned 64-bit), an unknown
key, register, field or struct (naming the allowed ones), a missing key, a
register given twice, and fields that disagree: ``bitmap`` outputs, an
``r10`` return and ``panic_on_failure`` are TDCALL facts (``bitmap`` also
needs leaf 0 and the bitmap in ``input_constants.rcx``), ``failure_codes``
SEAMCALL ones, ``outputs_when`` needs ``outputs``; the leaf register and
``outputs_when.register`` are not the struct pointer; ``leaf_version``
names a byte field of the struct.  Two contracts with the same name, era
and variant (in one file or across files, the shipped ones included) are
an error at the second.

A loaded contract is *unbound*: it names its struct but not which layout
of it, nor why it applies.  :mod:`proofs.abi_choice` picks the contract of
each function and binds it (:meth:`Contract.bound`) to a layout and an ABI
source; only a bound contract is checked.  A counterexample file carries
the bound contract whole (:func:`contract_record`), and ``replay`` rebuilds
it from there (:func:`contract_from_record`), through the same checks.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from grammar.declarations import StructField, StructLayout
from grammar.located_toml import KeyPath, Table, Value, read_toml
from grammar.source import Origin, SourceError
from model import abi

SHIPPED = Path(__file__).parent / "contract_data"
ERAS = ("unified", "legacy")
MODULE_OUTPUT_KINDS = ("call", "worst-case", "bitmap")
RETURN_KINDS = ("status", "r10")


@dataclass(frozen=True)
class OutputsWhen:
    register: str
    mask: int


@dataclass(frozen=True)
class LeafVersion:
    """RAX = leaf | (the byte ``field`` of the struct) << ``shift``, when the layout has the field."""

    field: str
    shift: int


@dataclass(frozen=True)
class Contract:
    name: str
    era: str
    instruction: str
    leaf: str | int
    struct: str
    struct_pointer: str
    variant: str = ""
    struct_may_be_null: bool = False
    inputs: tuple[str, ...] = ()
    input_registers: dict[str, str] = field(default_factory=dict)
    input_constants: dict[str, int] = field(default_factory=dict)
    input_stack: dict[str, int] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    outputs_when: OutputsWhen | None = None
    module_outputs: str = "worst-case"
    returns: str = "status"
    failure_codes: bool = False
    scrub: bool = False
    panic_on_failure: bool = False
    leaf_version: LeafVersion | None = None
    form: str | None = None
    """The one shipped layout key ``struct`` pinned, if it named one."""
    origin: Origin | None = field(default=None, compare=False)
    """Where the contract was written (its ``[[wrapper]]`` header)."""
    layout: StructLayout | None = None
    """The struct's layout, once the contract is bound to a function."""
    abi_source: str = ""
    """Why the contract applies to the function it is bound to."""

    def bound(self, layout: StructLayout, abi_source: str) -> "Contract":
        """This contract for one function: its struct laid out as ``layout``."""
        return dataclasses.replace(self, layout=layout, abi_source=abi_source)

    def _bound_layout(self) -> StructLayout:
        if self.layout is None:
            raise ValueError(f"contract {self.key} is not bound to a layout (proofs.abi_choice binds it)")
        return self.layout

    @property
    def offsets(self) -> dict[str, int]:
        """Struct field -> byte offset (of the bound layout)."""
        return self._bound_layout().offsets()

    def field_size(self, name: str) -> int:
        return self._bound_layout().field(name).size

    @property
    def struct_size(self) -> int:
        return self._bound_layout().size

    @property
    def version_field(self) -> StructField | None:
        """The leaf-version byte the bound layout has, if the contract uses one."""
        if self.leaf_version is None:
            return None
        return self._bound_layout().field(self.leaf_version.field)

    @property
    def arguments(self) -> tuple[str, ...]:
        """The argument registers the caller passes (in System V order)."""
        used = {self.struct_pointer, *self.input_registers.values()}
        if isinstance(self.leaf, str):
            used.add(self.leaf)
        if self.outputs_when is not None:
            used.add(self.outputs_when.register)
        return tuple(reg for reg in abi.ARGUMENT_REGISTERS if reg in used)

    @property
    def needed_fields(self) -> tuple[str, ...]:
        """The struct fields the contract reads or writes by name (the
        leaf-version byte is not one: it applies where the layout has it)."""
        return tuple(dict.fromkeys(list(self.inputs) + list(self.outputs)))

    @property
    def key(self) -> str:
        """``name`` with era and variant, as printed in reports.

        >>> Contract("__tdx_hypercall", "legacy", "tdcall", 0, "tdx_hypercall_args", "rdi", variant="flags").key
        '__tdx_hypercall [legacy/flags]'
        """
        era = f"{self.era}/{self.variant}" if self.variant else self.era
        return f"{self.name} [{era}]"

    def assumption(self) -> str:
        """The module-output assumption this contract rests on, in words."""
        if self.module_outputs == "call":
            regs = ", ".join(abi.MODULE_CALL_OUTPUTS)
            return (f"{self.key}: the TDX module changes only RAX and {regs} "
                    "(the leaves this wrapper is for)")
        if self.module_outputs == "bitmap":
            return f"{self.key}: TDG.VP.VMCALL changes RAX and exactly the registers its RCX bitmap exposes"
        return f"{self.key}: worst case, the TDX module may change every register but RSP (and RBP unless the firmware clobbers it)"


INSTRUCTIONS = ("seamcall", "tdcall")
INSTRUCTION_INPUTS = tuple(reg for reg in abi.ENCODING_BIT if reg not in ("rax", "rsp"))
"""What a contract may load before the instruction (RAX holds the leaf)."""
_REQUIRED = ("name", "era", "instruction", "leaf", "struct", "struct_pointer")
_OPTIONAL = ("variant", "struct_may_be_null", "inputs", "input_registers", "input_constants", "input_stack",
             "outputs", "outputs_when", "module_outputs", "returns", "failure_codes", "scrub",
             "panic_on_failure", "leaf_version")
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
STRUCTS = tuple(abi.LAYOUTS)
"""What ``struct`` may name: a C struct (any of its layouts) or one layout by its key."""
MAX_STACK_ARGUMENT = 64
"""The highest stack argument number a contract may name."""
MAX_STRUCT_SIZE = 4096
"""The largest struct a recorded layout may describe (the TDX ones are ~100 bytes)."""


def struct_forms(struct: str, form: str | None = None) -> tuple[StructLayout, ...]:
    """The shipped layouts a contract's ``struct`` allows (its pinned ``form`` only, if any)."""
    return (abi.LAYOUTS[form],) if form else abi.layouts_of(struct)


def register_fields(struct: str, form: str | None = None) -> tuple[str, ...]:
    """The fields of ``struct`` named after a register, in any allowed layout.

    >>> register_fields("tdx_hypercall_args", "tdx_hypercall_args_oldest")
    ('r10', 'r11', 'r12', 'r13', 'r14', 'r15')
    """
    return tuple(dict.fromkeys(f.name for layout in struct_forms(struct, form) for f in layout.fields
                               if f.name in abi.ENCODING_BIT))


def _argument_register(value: Value) -> str:
    """An entry register the caller sets: a System V argument register."""
    names = ", ".join(abi.ARGUMENT_REGISTERS)
    if not isinstance(value.value, str):
        raise value.expected(f"an argument register name ({names})")
    if value.value in abi.ENCODING_BIT and value.value not in abi.ARGUMENT_REGISTERS:
        raise value.error(f"{value.name} must be an argument register ({names}), not {value.value!r} "
                          f"(the caller sets no other register)")
    return value.choice(abi.ARGUMENT_REGISTERS, "register")


def _stack_argument(value: Value) -> int:
    return value.integer(1, MAX_STACK_ARGUMENT)


def _leaf(value: Value) -> str | int:
    if isinstance(value.value, str):
        return _argument_register(value)
    if isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.integer()
    raise value.expected(f"an argument register ({', '.join(abi.ARGUMENT_REGISTERS)}) or a leaf number")


def _register_map(table: Table, read) -> dict[str, str | int]:
    """``instruction input register -> read(value)`` for ``input_registers``,
    ``input_stack`` and ``input_constants``."""
    result = {}
    for register, value in table.items():
        if register not in INSTRUCTION_INPUTS:
            raise value.error(f"{value.name}: {register!r} is not an instruction input register "
                              f"(allowed: {', '.join(INSTRUCTION_INPUTS)}; RAX holds the leaf)", at="key")
        result[register] = read(value)
    return result


def _context(entry: Table, number: int) -> str:
    """How messages name the ``number``th contract of a file (as
    :attr:`Contract.key` does, as far as its fields are right)."""
    name, era, variant = (entry.value.get(key) for key in ("name", "era", "variant"))
    if not isinstance(name, str) or not _SYMBOL.fullmatch(name):
        return f"contract {number + 1} of the file ('wrapper[{number}]')"
    if era not in ERAS:
        return f"contract {name!r}"
    return f"contract {name!r} [{era}{'/' + variant if isinstance(variant, str) and variant else ''}]"


def _leaf_version(entry: Table, struct: str, form: str | None) -> LeafVersion:
    table = entry["leaf_version"].table(("field", "shift"))
    byte_fields = tuple(dict.fromkeys(f.name for layout in struct_forms(struct, form) for f in layout.fields
                                      if f.size == 1))
    if not byte_fields:
        raise table["field"].error(f"{table['field'].name}: {struct} has no byte field (a leaf version is one)")
    return LeafVersion(table["field"].choice(byte_fields, f"{struct} byte field"), table["shift"].integer(0, 63))


def _contract(entry: Table, origin: Origin | None) -> Contract:
    """One ``[[wrapper]]`` table (written at ``origin``), checked completely
    (every field's type, its names, and that the fields agree with each
    other)."""
    entry = entry.table(_REQUIRED, _OPTIONAL)
    name = entry["name"].string("a function name")
    if not _SYMBOL.fullmatch(name):
        raise entry["name"].expected("a function name (a symbol such as __seamcall_ret)")
    era = entry["era"].choice(ERAS)
    variant = entry["variant"].name_string("a variant name (a word)") if "variant" in entry else ""
    instruction = entry["instruction"].choice(INSTRUCTIONS)
    leaf = _leaf(entry["leaf"])
    written = entry["struct"].choice(STRUCTS, "struct layout")
    form = None if written in abi.STRUCT_NAMES else written
    struct = abi.LAYOUTS[form].name if form else written
    fields = register_fields(struct, form)
    pointer = _argument_register(entry["struct_pointer"])
    flags = {key: entry[key].boolean() if key in entry else False
             for key in ("struct_may_be_null", "failure_codes", "scrub", "panic_on_failure")}
    noun = f"{struct} field"
    inputs = entry["inputs"].choices(fields, noun) if "inputs" in entry else ()
    outputs = entry["outputs"].choices(fields, noun) if "outputs" in entry else ()
    maps = {}
    loaded = {reg: entry["inputs"] for reg in inputs}
    for key, read in (("input_registers", _argument_register), ("input_stack", _stack_argument),
                      ("input_constants", Value.integer)):
        if key not in entry:
            maps[key] = {}
            continue
        table = entry[key].table(optional=None, what="a table of instruction input register = value")
        maps[key] = _register_map(table, read)
        for register in maps[key]:
            if register in loaded:
                raise table[register].error(
                    f"{table[register].name}: {register.upper()} is already given by {loaded[register].name} "
                    f"(each input register is given once, by inputs, input_registers, input_stack or "
                    f"input_constants)", at="key")
            loaded[register] = table[register]
    when = None
    if "outputs_when" in entry:
        table = entry["outputs_when"].table(("register", "mask"))
        if not outputs:
            raise table.error(f"{table.name} without 'outputs': no output is written back to make conditional")
        when = OutputsWhen(_argument_register(table["register"]), table["mask"].integer(1))
    for key, register in (("leaf", leaf), ("outputs_when", when and when.register)):
        if register == pointer:
            value = entry[key]["register"] if key == "outputs_when" else entry[key]
            raise value.error(f"{value.name} is {pointer.upper()}, the struct pointer: one argument cannot "
                              f"be both")
    version = _leaf_version(entry, struct, form) if "leaf_version" in entry else None
    module_outputs = entry["module_outputs"].choice(MODULE_OUTPUT_KINDS) if "module_outputs" in entry else "worst-case"
    returns = entry["returns"].choice(RETURN_KINDS) if "returns" in entry else "status"
    tdcall_only = [(key, words) for key, words, needed in (
        ("module_outputs", 'module_outputs = "bitmap" (the TDG.VP.VMCALL exposure bitmap)', module_outputs == "bitmap"),
        ("returns", 'returns = "r10" (the TDVMCALL\'s R10)', returns == "r10"),
        ("panic_on_failure", "panic_on_failure (a failed TDCALL)", flags["panic_on_failure"])) if needed]
    for key, words in tdcall_only:
        if instruction != "tdcall":
            raise entry[key].error(f"{words} needs instruction = \"tdcall\", not {instruction!r}")
    if module_outputs == "bitmap" and (leaf != abi.TDG_VP_VMCALL or "rcx" not in maps["input_constants"]):
        raise entry["module_outputs"].error(
            'module_outputs = "bitmap" needs leaf = 0 (TDG.VP.VMCALL) and the bitmap as input_constants.rcx')
    if flags["failure_codes"] and instruction != "seamcall":
        raise entry["failure_codes"].error(f"failure_codes (VMfailInvalid, #UD, #GP) needs instruction = "
                                           f"\"seamcall\", not {instruction!r}")
    return Contract(
        name=name, era=era, instruction=instruction, leaf=leaf, struct=struct, struct_pointer=pointer,
        variant=variant, inputs=inputs, input_registers=maps["input_registers"],
        input_constants=maps["input_constants"], input_stack=maps["input_stack"], outputs=outputs,
        outputs_when=when, module_outputs=module_outputs, returns=returns, leaf_version=version, form=form,
        origin=origin, **flags)


def load_contracts(extra: tuple[str, ...] = ()) -> tuple[Contract, ...]:
    """The shipped contracts, then the user's files (which may add names),
    every one checked: any mistake in a file is a :class:`SourceError` at
    its line and column, here, before any function is checked."""
    paths = sorted(SHIPPED.glob("*.toml")) + [Path(p) for p in extra]
    contracts: dict[str, Contract] = {}
    unique: dict[str, Path] = {}
    for path in paths:          # a file named twice (or a shipped one named again) is read once
        unique.setdefault(os.path.realpath(path), path)
    for path in unique.values():
        document = read_toml(str(path), "contract file")
        root = document.root().table((), ("wrapper",))
        if "wrapper" not in root:
            raise root.error("the contract file defines no contract (no [[wrapper]] table)")
        for number, entry in enumerate(root["wrapper"].list("an array of tables ([[wrapper]])")):
            entry = entry.table(optional=None, what="a table ([[wrapper]])")
            entry = entry.named(_context(entry, number))
            contract = _contract(entry, document.origin(entry.where))
            if contract.key in contracts:
                raise entry.error(f"defined twice (first at {contracts[contract.key].origin.render()}); "
                                  f"give one of them its own 'variant'")
            contracts[contract.key] = contract
    return tuple(contracts.values())


def candidates(contracts: tuple[Contract, ...], name: str, era: str) -> tuple[Contract, ...]:
    """Every contract for ``name`` in ``era`` (several variants may match)."""
    return tuple(c for c in contracts if c.name == name and c.era == era)


# --- a bound contract as data (counterexample files) --------------------------------

def contract_record(contract: Contract) -> dict:
    """A bound contract as JSON data: its ``[[wrapper]]`` keys (the same
    schema), its layout and its ABI source; :func:`contract_from_record`
    is the inverse."""
    entry: dict = {"name": contract.name, "era": contract.era, "instruction": contract.instruction,
                   "leaf": contract.leaf, "struct": contract.form or contract.struct,
                   "struct_pointer": contract.struct_pointer}
    if contract.variant:
        entry["variant"] = contract.variant
    for key in ("struct_may_be_null", "failure_codes", "scrub", "panic_on_failure"):
        if getattr(contract, key):
            entry[key] = True
    for key in ("inputs", "outputs"):
        if getattr(contract, key):
            entry[key] = list(getattr(contract, key))
    for key in ("input_registers", "input_constants", "input_stack"):
        if getattr(contract, key):
            entry[key] = dict(getattr(contract, key))
    if contract.outputs_when is not None:
        entry["outputs_when"] = {"register": contract.outputs_when.register, "mask": contract.outputs_when.mask}
    if contract.leaf_version is not None:
        entry["leaf_version"] = {"field": contract.leaf_version.field, "shift": contract.leaf_version.shift}
    entry["module_outputs"] = contract.module_outputs
    entry["returns"] = contract.returns
    layout = contract._bound_layout()
    return {"contract": entry, "abi_source": contract.abi_source,
            "layout": {"name": layout.name, "size": layout.size, "source": layout.source,
                       "fields": [{"name": f.name, "offset": f.offset, "size": f.size} for f in layout.fields]}}


class RecordSource:
    """The :class:`grammar.located_toml.Source` behind a record: errors name
    its JSON path, headed by ``where`` (the file and the record's key)."""

    def __init__(self, where: str, error=SourceError):
        self.where, self.make = where, error

    def error(self, path: KeyPath, message: str, at: str = "value") -> SourceError:
        return self.make(f"{self.where}: {message}")


def contract_from_record(record: dict, where: str, error=SourceError) -> Contract:
    """The bound contract a :func:`contract_record` holds, checked as a
    contract file is (every mistake an ``error`` naming ``where`` and the
    key); its layout must name the struct and have the fields the contract
    names.  ``record`` has the shape :data:`proofs.cex_file.CHECK_FILE`
    validated."""
    contract = _contract(Table(record["contract"], ("contract",), RecordSource(where, error)).named("contract"),
                         None)
    data = record["layout"]
    layout = StructLayout(data["name"], tuple(StructField(f["name"], f["offset"], f["size"]) for f in data["fields"]),
                          data["size"], data["source"])
    if not 0 < layout.size <= MAX_STRUCT_SIZE:
        raise error(f"{where}: layout.size: {layout.size} is not a struct size (1 to {MAX_STRUCT_SIZE} bytes)")
    for number, item in enumerate(layout.fields):
        if not (1 <= item.size <= 8 and item.offset + item.size <= layout.size):
            raise error(f"{where}: layout.fields[{number}]: field {item.name!r} of {item.size} bytes at "
                        f"{item.offset} does not fit a {layout.size}-byte struct (fields are 1 to 8 bytes)")
    if layout.name != contract.struct:
        raise error(f"{where}: layout.name: {layout.name!r} is not the contract's struct {contract.struct!r}")
    for name in contract.needed_fields:
        found = layout.field(name)
        if found is None or found.offset + found.size > layout.size:
            raise error(f"{where}: layout.fields: the contract names field {name!r}, which the layout "
                        f"{'lacks' if found is None else 'puts past its end'}")
    return contract.bound(layout, record["abi_source"])
