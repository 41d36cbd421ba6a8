"""What a kernel tree declares about the TDX wrappers, as data.

The assembly of a wrapper does not say its ABI; the C declarations its
callers see do: the prototype (``u64 __tdcall(u64 fn, struct
tdx_module_args *args);`` or the six-argument legacy form), the layout of
the structs it takes, the ``asm-offsets`` constants the assembly uses and
the kernel configuration it was built with.  This module holds those facts
and where each came from; :mod:`grammar.kernel_tree` reads them from a
tree, and the contract choice of the proofs layer reads them from here.
Nothing here interprets them.

Every fact carries its ``source``: a place in the tree
(``arch/x86/include/asm/shared/tdx.h:123``), a generated file, or the
tool's own shipped facts, so that every result can say where its ABI came
from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from grammar.source import Origin


@dataclass(frozen=True)
class StructField:
    """One field of a struct: its byte offset and size."""

    name: str
    offset: int
    size: int


@dataclass(frozen=True)
class StructLayout:
    """A struct as the compiler lays it out: fields in declaration order,
    ``size`` with its tail padding; ``source`` says where the layout came
    from (a definition at ``origin``, a generated asm-offsets file, the
    shipped facts of SPEC.md section 5)."""

    name: str
    fields: tuple[StructField, ...]
    size: int
    source: str
    origin: Origin | None = None

    def offsets(self) -> dict[str, int]:
        """Field name -> byte offset.

        >>> StructLayout("s", (StructField("rcx", 0, 8), StructField("version", 8, 1)), 16, "shipped").offsets()
        {'rcx': 0, 'version': 8}
        """
        return {f.name: f.offset for f in self.fields}

    def field(self, name: str) -> StructField | None:
        return next((f for f in self.fields if f.name == name), None)

    def text(self) -> str:
        """The layout in one line, for reports.

        >>> StructLayout("s", (StructField("rcx", 0, 8), StructField("version", 8, 1)), 16, "laid out by cc").text()
        'struct s (16 bytes: rcx@0, version@8:1; laid out by cc)'
        """
        fields = ", ".join(f"{f.name}@{f.offset}" + (f":{f.size}" if f.size != 8 else "") for f in self.fields)
        return f"struct {self.name} ({self.size} bytes: {fields}; {self.source})"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a prototype: its C type as written (normalised
    spaces: ``u64``, ``struct tdx_module_args *``), its name (may be empty),
    and the struct it points to, if any."""

    type: str
    name: str = ""
    points_to: str | None = None


@dataclass(frozen=True)
class Prototype:
    """A function declaration its C callers see."""

    name: str
    returns: str
    parameters: tuple[Parameter, ...]
    origin: Origin

    @property
    def source(self) -> str:
        return f"declared at {self.origin.file}:{self.origin.line}"

    def text(self) -> str:
        """The declaration as C, normalised.

        >>> Prototype("__tdcall", "u64", (Parameter("u64", "fn"), Parameter("struct tdx_module_args *", "args",
        ...     "tdx_module_args")), Origin("tdx.h", 3)).text()
        'u64 __tdcall(u64 fn, struct tdx_module_args *args)'
        """
        parameters = ", ".join((p.type + ("" if p.type.endswith("*") else " ") + p.name).strip()
                               for p in self.parameters) or "void"
        return f"{self.returns}{'' if self.returns.endswith('*') else ' '}{self.name}({parameters})"


@dataclass(frozen=True)
class Value:
    """A number and where it came from (an asm-offsets constant, a status
    constant)."""

    value: int
    source: str


@dataclass(frozen=True)
class ConfigValue:
    """A kernel option's value and where it came from (``.config``,
    ``include/generated/autoconf.h``, ``--config``, ``--matrix``, the
    Makefile line that builds a checked file); ``value`` is the value as
    ``.config`` spells it (``y``, ``m``, ``n``, ``16``, ``"text"``)."""

    enabled: bool
    source: str
    value: str = ""

    def text(self, name: str) -> str:
        """``NAME=VALUE``.

        >>> ConfigValue(True, ".config").text("CONFIG_A"), ConfigValue(True, ".config", "16").text("CONFIG_N")
        ('CONFIG_A=y', 'CONFIG_N=16')
        """
        return f"{name}={self.value or ('y' if self.enabled else 'n')}"


@dataclass(frozen=True)
class TreeFacts:
    """What one kernel tree declares: prototypes and struct layouts by
    name, asm-offsets constants by symbol, configuration by option.

    ``root`` is the source tree, ``build`` the build directory (the same
    for a build in the tree); ``notes`` say what could not be read and
    why (a header the C preprocessor rejected: its declarations are not
    among the prototypes)."""

    root: str
    prototypes: Mapping[str, Prototype] = field(default_factory=dict)
    structs: Mapping[str, StructLayout] = field(default_factory=dict)
    offsets: Mapping[str, Value] = field(default_factory=dict)
    config: Mapping[str, ConfigValue] = field(default_factory=dict)
    build: str = ""
    notes: tuple[str, ...] = ()
