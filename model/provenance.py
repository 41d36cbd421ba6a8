"""Where a path's symbolic values come from: provenance as data.

Every fresh value the symbolic executor makes -- an entry register, a
value the SDM leaves undefined, a symbol's address, the return address
of a call site, what an external callee left in a register, a function
of the TDX module -- gets a :class:`Source` record saying what it is, and
each path result carries the :class:`Provenance` of its values (as KLEE
keeps the list of a state's symbolic objects).  Consumers ask the
records; none parses a Z3 name.

Decisions:

* A record is keyed by the name of the variable (or module function) it
  describes and holds no Z3 term: holding one would keep a value alive
  that the path has dropped (an undefined flag overwritten, a return
  address popped), and Z3 hands out the ids of freed terms again -- the
  solver's models depend on those ids, so the counterexamples would too.
* The names are made here, once (:func:`symbol_name` and its siblings):
  counterexample files key symbols and external calls by them, and
  reports print terms.
* ``per_run``: whether a value belongs to one run of the code, so that a
  second run (the other side of an equivalence check) must get its own --
  undefined values, return addresses, external callees' results -- or is
  shared by construction: the entry state (tied by the caller), symbol
  addresses (one program image), the TDX module's functions (one module).
* A renaming of variables (:meth:`Provenance.renamed`) carries the
  records along, so a renamed path still knows its values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Iterator, Mapping

from model.extable import Location


@dataclass(frozen=True)
class Source:
    """What a fresh value is (the subclass says)."""

    per_run: ClassVar[bool] = True


@dataclass(frozen=True)
class EntryValue(Source):
    """Register, flag, memory or extended state ``what`` at function entry."""

    what: str
    per_run: ClassVar[bool] = False


@dataclass(frozen=True)
class Undefined(Source):
    """A value the architecture leaves undefined (``reason``: which, where)."""

    reason: str


@dataclass(frozen=True)
class SymbolAddress(Source):
    """The address of the assembler symbol ``symbol``."""

    symbol: str
    per_run: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return symbol_name(self.symbol)


@dataclass(frozen=True)
class ReturnAddress(Source):
    """The address after the ``call`` at ``site``."""

    site: Location

    @property
    def name(self) -> str:
        return return_address_name(self.site)


@dataclass(frozen=True)
class CalleeResult(Source):
    """What the ``serial``-th external call (numbered per run), to
    ``target``, left in ``register`` (a caller-saved register or a flag)."""

    target: str
    serial: int
    register: str


@dataclass(frozen=True)
class ModuleFunction(Source):
    """The TDX module's function ``what`` -- an output register, ``status``
    or (``flag``) ``flag_<f>`` -- of instruction ``kind`` in ``namespace``,
    with ``arity`` 64-bit arguments and a ``width``-bit value; ``variant``
    names a read set other than the kind's own (a TDG.VP.VMCALL's bitmap,
    :mod:`model.tdx`), so that one name has one arity."""

    namespace: str
    kind: str
    what: str
    arity: int
    width: int
    flag: bool = False
    variant: str = ""
    per_run: ClassVar[bool] = False

    def name_in(self, namespace: str) -> str:
        """The name of the same function of another module (``namespace``)."""
        return module_function_name(namespace, self.kind, self.what, self.variant)


def symbol_name(symbol: str) -> str:
    return f"symbol_{symbol}"


def return_address_name(site: Location) -> str:
    function, index = site
    return f"return_{function}_{index}"


def callee_result_name(target: str, serial: int, register: str) -> str:
    return f"{target}_{serial}_{register}"


def module_function_name(namespace: str, kind: str, what: str, variant: str = "") -> str:
    """The name of a module function (:class:`ModuleFunction`).

    >>> module_function_name("module", "tdcall", "r10"), module_function_name("module", "tdcall", "r10", "vmcall_ffcc")
    ('module_tdcall_r10', 'module_tdcall_vmcall_ffcc_r10')
    """
    return f"{namespace}_{kind}_{variant + '_' if variant else ''}{what}"


@dataclass(frozen=True)
class Provenance:
    """The sources of a path's fresh values by name, in the order they were
    made (a mapping that is never changed: :meth:`with_` makes a new one)."""

    sources: Mapping[str, Source]

    def __iter__(self) -> Iterator[tuple[str, Source]]:
        return iter(self.sources.items())

    def of(self, name: str) -> Source | None:
        """What the variable (or module function) ``name`` is, if the path made it."""
        return self.sources.get(name)

    def with_(self, sources: Mapping[str, Source]) -> "Provenance":
        """These sources added (names already known keep their record)."""
        new = {name: source for name, source in sources.items() if name not in self.sources}
        return Provenance({**self.sources, **new}) if new else self

    def merged(self, other: "Provenance") -> "Provenance":
        return self.with_(other.sources)

    def renamed(self, names: Mapping[str, str]) -> "Provenance":
        """The same records after the variables ``names`` maps were renamed."""
        return Provenance({names.get(name, name): source for name, source in self.sources.items()})


NO_PROVENANCE = Provenance({})
