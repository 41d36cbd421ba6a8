"""The independent TDX module of a relational check: every module function
of a path's events renamed into a twin.

``scrub`` asks about one path twice, the second time with a module that
is the same function of other choices: every uninterpreted function of
the ``module`` namespace (:mod:`model.tdx` names them
``<namespace>_<kind>_<register>``) that a path's events apply is
substituted by its ``varied`` twin of the same domain and range.  The
counterexample builder renames the same way to read the second run's
events from a model.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import z3

from model import bv
from model.tdx import ARITHMETIC_FLAGS

MODULE_NAMESPACE, VARIED_NAMESPACE = "module", "varied"


class ModuleRenaming:
    """Every TDX-module function of a path's events renamed into an
    independent one (same domain and range, ``varied_`` namespace).

    The functions are found from the events themselves (each output and
    status is an application, or an ``If`` of applications on merged
    paths) plus, by :mod:`model.tdx`'s documented naming, the flag
    functions of the same kind and domain; no walk over whole states."""

    def __init__(self, events):
        self._pairs: dict[str, tuple] = {}
        for event in events:
            for term in list(event.outputs.values()) + ([event.status] if event.status is not None else []):
                for decl in _applications(term):
                    arity = decl.arity()
                    self._add(decl.name(), arity, decl.range().size())
                    if event.kind == "tdcall":
                        for flag in ARITHMETIC_FLAGS:
                            self._add(f"{MODULE_NAMESPACE}_{event.kind}_flag_{flag}", arity, 1)

    def _add(self, name: str, arity: int, width: int) -> None:
        if name not in self._pairs:
            self._pairs[name] = _renaming(name, arity, width)

    def rename(self, terms: Iterable[z3.ExprRef]) -> list[z3.ExprRef]:
        terms = list(terms)
        if not self._pairs:
            return terms
        pairs = list(self._pairs.values())
        return [z3.substitute_funs(term, *pairs) for term in terms]


_RENAMINGS: dict[tuple, tuple] = {}


def _renaming(name: str, arity: int, width: int) -> tuple[z3.FuncDeclRef, z3.ExprRef]:
    """(module function, its varied twin applied to the bound variables), made once."""
    key = (id(z3.main_ctx()), name, arity, width)
    if key not in _RENAMINGS:
        twin = bv.function(VARIED_NAMESPACE + name[len(MODULE_NAMESPACE):], arity, width)
        _RENAMINGS[key] = (bv.function(name, arity, width),
                           bv.apply(twin, [z3.Var(i, z3.BitVecSort(64)) for i in range(arity)]))
    return _RENAMINGS[key]


def _applications(term: z3.ExprRef) -> Iterator[z3.FuncDeclRef]:
    """The module-function declarations at the top of ``term`` (through ``If`` arms)."""
    if z3.is_app_of(term, z3.Z3_OP_ITE):
        yield from _applications(term.arg(1))
        yield from _applications(term.arg(2))
    elif z3.is_app(term) and term.decl().arity() and term.decl().name().startswith(MODULE_NAMESPACE + "_"):
        yield term.decl()
    elif not z3.is_bv_value(term):
        raise ValueError(f"a TDX-module output that is not an application of the module's functions: {term}")
