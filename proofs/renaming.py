"""The independent TDX module of a relational check: every module function
of a path's events renamed into a twin.

``scrub`` asks about one path twice, the second time with a module that
is the same function of other choices: every uninterpreted function of
the ``module`` namespace that the path applied (its
:class:`model.provenance.ModuleFunction` records) is substituted by its
``varied`` twin of the same domain and range.  The
counterexample builder renames the same way to read the second run's
events from a model.
"""
from __future__ import annotations

from typing import Iterable

import z3

from grammar.caches import CACHES
from model import bv
from model.provenance import ModuleFunction, Provenance

MODULE_NAMESPACE, VARIED_NAMESPACE = "module", "varied"


class ModuleRenaming:
    """Every TDX-module function a path applied renamed into an independent
    one (same domain and range, ``varied_`` namespace): the functions are
    the path's :class:`model.provenance.ModuleFunction` sources.  A kind's
    flag functions come right after its first other function (the order
    the renaming was first written in, on which the solver's later models
    depend)."""

    def __init__(self, provenance: Provenance):
        self._pairs: dict[str, tuple] = {}
        functions = [(name, source) for name, source in provenance
                     if isinstance(source, ModuleFunction) and source.namespace == MODULE_NAMESPACE]
        for name, source in functions:
            if not source.flag:
                self._add(name, source)
                for flag_name, flag in functions:
                    if flag.flag and flag.kind == source.kind:
                        self._add(flag_name, flag)

    def _add(self, name: str, source: ModuleFunction) -> None:
        if name not in self._pairs:
            self._pairs[name] = _renaming(name, source.arity, source.width, source.name_in(VARIED_NAMESPACE))

    def rename(self, terms: Iterable[z3.ExprRef]) -> list[z3.ExprRef]:
        terms = list(terms)
        if not self._pairs:
            return terms
        pairs = list(self._pairs.values())
        return [z3.substitute_funs(term, *pairs) for term in terms]


_RENAMINGS = CACHES.cache("module renamings", 4_096)


def _renaming(name: str, arity: int, width: int, twin_name: str) -> tuple[z3.FuncDeclRef, z3.ExprRef]:
    """(module function, its twin ``twin_name`` applied to the bound variables), made once."""
    key = (id(z3.main_ctx()), name, arity, width)
    if key not in _RENAMINGS:
        twin = bv.function(twin_name, arity, width)
        _RENAMINGS[key] = (bv.function(name, arity, width),
                           bv.apply(twin, [z3.Var(i, z3.BitVecSort(64)) for i in range(arity)]))
    return _RENAMINGS[key]
