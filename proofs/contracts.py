"""Per-wrapper ABI contracts, kept as data (``proofs/contract_data/*.toml``).

A contract says what a wrapper promises its caller beyond the properties
that hold for every function (SPEC.md section 7).  The shipped files cover
both kernel eras; users add their own with ``--contracts FILE`` (same
schema).  Fields of a ``[[wrapper]]`` entry:

``name``, ``era`` (``unified``/``legacy``), ``variant`` (optional; several
legacy forms share a name), ``instruction`` (``seamcall``/``tdcall``);
``leaf``: the argument register holding the leaf, or an integer constant;
``struct``: the layout (``model.abi.STRUCT_LAYOUTS``) and
``struct_pointer``: the argument register pointing at it
(``struct_may_be_null``: outputs are written only when it is not NULL);
``inputs``: instruction input registers loaded from the same-named struct
field; ``input_registers``: instruction input register -> argument
register; ``input_constants``: instruction input register -> constant (each
input register is given by one of the three);
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
key, register, field or layout (naming the allowed ones), a missing key, a
register given twice, and fields that disagree: ``bitmap`` outputs, an
``r10`` return and ``panic_on_failure`` are TDCALL facts (``bitmap`` also
needs leaf 0 and the bitmap in ``input_constants.rcx``), ``failure_codes``
SEAMCALL ones, ``outputs_when`` needs ``outputs``; the leaf register and
``outputs_when.register`` are not the struct pointer.  Two contracts with the
same name, era and variant (in one file or across files, the shipped ones
included) are an error at the second.

Several contracts may match one function (a name in both eras, or
same-name legacy variants); :func:`proofs.prover.candidate_contracts` and
``check_function`` choose: ``--abi``, else the era of the other wrappers in
the input, then ``--variant NAME=VARIANT``, else the candidate with the
fewest refuted obligations -- a choice printed as an assumption.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from grammar.located_toml import Table, Value, read_toml
from grammar.source import Origin
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
    outputs: tuple[str, ...] = ()
    outputs_when: OutputsWhen | None = None
    module_outputs: str = "worst-case"
    returns: str = "status"
    failure_codes: bool = False
    scrub: bool = False
    panic_on_failure: bool = False
    origin: Origin | None = field(default=None, compare=False)
    """Where the contract was written (its ``[[wrapper]]`` header)."""

    @property
    def layout(self) -> dict[str, int]:
        """Struct field -> byte offset."""
        return abi.STRUCT_LAYOUTS[self.struct]

    @property
    def struct_size(self) -> int:
        return max(self.layout.values()) + 8

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
_OPTIONAL = ("variant", "struct_may_be_null", "inputs", "input_registers", "input_constants", "outputs",
             "outputs_when", "module_outputs", "returns", "failure_codes", "scrub", "panic_on_failure")
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")


def _argument_register(value: Value) -> str:
    """An entry register the caller sets: a System V argument register."""
    names = ", ".join(abi.ARGUMENT_REGISTERS)
    if not isinstance(value.value, str):
        raise value.expected(f"an argument register name ({names})")
    if value.value in abi.ENCODING_BIT and value.value not in abi.ARGUMENT_REGISTERS:
        raise value.error(f"{value.name} must be an argument register ({names}), not {value.value!r} "
                          f"(the caller sets no other register)")
    return value.choice(abi.ARGUMENT_REGISTERS, "register")


def _leaf(value: Value) -> str | int:
    if isinstance(value.value, str):
        return _argument_register(value)
    if isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.integer()
    raise value.expected(f"an argument register ({', '.join(abi.ARGUMENT_REGISTERS)}) or a leaf number")


def _register_map(table: Table, read) -> dict[str, str | int]:
    """``instruction input register -> read(value)`` for ``input_registers``
    and ``input_constants``."""
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


def _contract(entry: Table, origin: Origin) -> Contract:
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
    struct = entry["struct"].choice(tuple(abi.STRUCT_LAYOUTS), "struct layout")
    fields = tuple(abi.STRUCT_LAYOUTS[struct])
    pointer = _argument_register(entry["struct_pointer"])
    flags = {key: entry[key].boolean() if key in entry else False
             for key in ("struct_may_be_null", "failure_codes", "scrub", "panic_on_failure")}
    noun = f"{struct} field"
    inputs = entry["inputs"].choices(fields, noun) if "inputs" in entry else ()
    outputs = entry["outputs"].choices(fields, noun) if "outputs" in entry else ()
    maps = {}
    loaded = {reg: entry["inputs"] for reg in inputs}
    for key, read in (("input_registers", _argument_register), ("input_constants", Value.integer)):
        if key not in entry:
            maps[key] = {}
            continue
        table = entry[key].table(optional=None, what="a table of instruction input register = value")
        maps[key] = _register_map(table, read)
        for register in maps[key]:
            if register in loaded:
                raise table[register].error(
                    f"{table[register].name}: {register.upper()} is already given by {loaded[register].name} "
                    f"(each input register is given once, by inputs, input_registers or input_constants)",
                    at="key")
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
        input_constants=maps["input_constants"], outputs=outputs, outputs_when=when,
        module_outputs=module_outputs, returns=returns, origin=origin, **flags)


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
    """Every contract for ``name`` in ``era`` (several legacy variants may match)."""
    return tuple(c for c in contracts if c.name == name and c.era == era)
