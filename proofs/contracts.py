"""Per-wrapper ABI contracts, kept as data (``proofs/contract_data/*.toml``).

A contract says what a wrapper promises its caller beyond the properties
that hold for every function (SPEC.md section 7).  The shipped files cover
both kernel eras; users add their own with ``--contracts FILE`` (same
schema).  Fields of a ``[[wrapper]]`` entry:

``name``, ``era`` (``unified``/``legacy``), ``variant`` (optional; several
legacy forms share a name), ``instruction`` (``seamcall``/``tdcall``);
``leaf``: the entry register holding the leaf, or an integer constant;
``struct``: the layout (``model.abi.STRUCT_LAYOUTS``) and
``struct_pointer``: the entry register pointing at it
(``struct_may_be_null``: outputs are written only when it is not NULL);
``inputs``: instruction input registers loaded from the same-named struct
field; ``input_registers``: instruction input register -> entry argument
register; ``input_constants``: instruction input register -> constant;
``outputs``: struct fields written back from the same-named instruction
output register on completion (``outputs_when``: only when the entry
register's value has one of ``mask``'s bits set);
``module_outputs``: what the TDX module may change, ``call`` (RCX, RDX,
R8-R11), ``worst-case`` (SPEC section 6) or ``bitmap`` (the TDG.VP.VMCALL
exposure bitmap in RCX); ``returns``: ``status`` (RAX at return is the
instruction's status) or ``r10`` (the TDVMCALL's R10, the R10->RAX
remapping); ``failure_codes``: the host failure codes apply
(VMfailInvalid, #UD, #GP); ``scrub``: no module-controlled value survives
in a shared register; ``panic_on_failure``: a nonzero TDCALL status reaches
the never-returning failure function.

Several contracts may match one function (a name in both eras, or
same-name legacy variants); :func:`proofs.prover.candidate_contracts` and
``check_function`` choose: ``--abi``, else the era of the other wrappers in
the input, then ``--variant NAME=VARIANT``, else the candidate with the
fewest refuted obligations -- a choice printed as an assumption.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grammar.source import Origin, SourceError
from model import abi

SHIPPED = Path(__file__).parent / "contract_data"
ERAS = ("unified", "legacy")
MODULE_OUTPUT_KINDS = ("call", "worst-case", "bitmap")
RETURN_KINDS = ("status", "r10")
_FIELDS = {"name", "era", "variant", "instruction", "leaf", "struct", "struct_pointer",
           "struct_may_be_null", "inputs", "input_registers", "input_constants", "outputs",
           "outputs_when", "module_outputs", "returns", "failure_codes", "scrub",
           "panic_on_failure"}


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
    source: str = ""

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


def _error(path: Path, message: str) -> SourceError:
    return SourceError(message, Origin(str(path), 1, 1))


def _registers(path: Path, where: str, names) -> tuple[str, ...]:
    for reg in names:
        if reg not in abi.ENCODING_BIT:
            raise _error(path, f"{where}: {reg!r} is not a 64-bit general-purpose register")
    return tuple(names)


def _contract(path: Path, entry: dict) -> Contract:
    unknown = set(entry) - _FIELDS
    name = entry.get("name", "?")
    if unknown:
        raise _error(path, f"contract {name!r}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("name", "era", "instruction", "leaf", "struct", "struct_pointer"):
        if required not in entry:
            raise _error(path, f"contract {name!r}: missing field {required!r}")
    if entry["era"] not in ERAS:
        raise _error(path, f"contract {name!r}: era must be one of {', '.join(ERAS)}")
    if entry["instruction"] not in ("seamcall", "tdcall"):
        raise _error(path, f"contract {name!r}: instruction must be seamcall or tdcall")
    if entry["struct"] not in abi.STRUCT_LAYOUTS:
        raise _error(path, f"contract {name!r}: unknown struct {entry['struct']!r} "
                           f"(known: {', '.join(sorted(abi.STRUCT_LAYOUTS))})")
    layout = abi.STRUCT_LAYOUTS[entry["struct"]]
    for key in ("inputs", "outputs"):
        for reg in entry.get(key, ()):
            if reg not in layout:
                raise _error(path, f"contract {name!r}: {key}: {entry['struct']} has no field {reg!r}")
    if entry.get("module_outputs", "worst-case") not in MODULE_OUTPUT_KINDS:
        raise _error(path, f"contract {name!r}: module_outputs must be one of {', '.join(MODULE_OUTPUT_KINDS)}")
    if entry.get("returns", "status") not in RETURN_KINDS:
        raise _error(path, f"contract {name!r}: returns must be one of {', '.join(RETURN_KINDS)}")
    leaf = entry["leaf"]
    if isinstance(leaf, str):
        _registers(path, f"contract {name!r}: leaf", [leaf])
    when = entry.get("outputs_when")
    return Contract(
        name=entry["name"], era=entry["era"], instruction=entry["instruction"], leaf=leaf,
        struct=entry["struct"], struct_pointer=_registers(path, f"contract {name!r}: struct_pointer",
                                                          [entry["struct_pointer"]])[0],
        variant=entry.get("variant", ""),
        struct_may_be_null=bool(entry.get("struct_may_be_null", False)),
        inputs=tuple(entry.get("inputs", ())),
        input_registers=dict(entry.get("input_registers", {})),
        input_constants=dict(entry.get("input_constants", {})),
        outputs=tuple(entry.get("outputs", ())),
        outputs_when=OutputsWhen(when["register"], when["mask"]) if when else None,
        module_outputs=entry.get("module_outputs", "worst-case"),
        returns=entry.get("returns", "status"),
        failure_codes=bool(entry.get("failure_codes", False)),
        scrub=bool(entry.get("scrub", False)),
        panic_on_failure=bool(entry.get("panic_on_failure", False)),
        source=str(path))


def load_contracts(extra: tuple[str, ...] = ()) -> tuple[Contract, ...]:
    """The shipped contracts, then the user's files (which may add names)."""
    paths = sorted(SHIPPED.glob("*.toml")) + [Path(p) for p in extra]
    contracts: list[Contract] = []
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise _error(path, f"cannot read contract file: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise _error(path, f"malformed contract file: {error}") from None
        if set(data) - {"wrapper"}:
            raise _error(path, f"unknown top-level key(s): {', '.join(sorted(set(data) - {'wrapper'}))}")
        contracts.extend(_contract(path, entry) for entry in data.get("wrapper", ()))
    return tuple(contracts)


def candidates(contracts: tuple[Contract, ...], name: str, era: str) -> tuple[Contract, ...]:
    """Every contract for ``name`` in ``era`` (several legacy variants may match)."""
    return tuple(c for c in contracts if c.name == name and c.era == era)
