"""The selectors of a run (``--abi``, ``--variant``, ``--property``): each
must match something.

A selector that matches no function checked, or that takes a contract
away from a function (``--abi`` of an era the function has no contract
of, ``--variant`` of a variant it does not have), and a property that
applies to no row checked, is a bad-input error (exit 2), raised before
anything is proved under it; ``check`` and ``mutate`` judge their
selectors alike.
"""
from __future__ import annotations

from typing import Iterable

from grammar import ast
from grammar.source import SourceError
from proofs.abi_choice import choose_contract
from proofs.properties import PROPERTIES, applicable
from proofs.settings import Settings


def not_a_c_function(option: str, function: ast.Function) -> SourceError:
    """The error for ``option`` naming a code unit (``SYM_CODE_START ...
    SYM_CODE_END``), which only runs where a checked function jumps into it."""
    return SourceError(f"{option} {function.name}: '{function.name}' is code that does not follow the C calling "
                       "convention (SYM_CODE_START ... SYM_CODE_END): it runs where a checked function jumps "
                       "into it and is not checked on its own", function.origin)


class SelectorUse:
    """What the selectors of a run (``--abi``, ``--variant``, ``--property``)
    matched, function by function, so that one that matches nothing, or
    that takes a contract away from a function, is an error (exit 2) before
    anything is proved under it."""

    def __init__(self, settings: Settings, properties_given: bool):
        self.settings = settings
        self.properties_given = properties_given
        self.era_used = False
        self.variants_used: set[str] = set()
        self.applicable: set[str] = set()
        self.possible: set[str] = set()         # would apply under some configuration

    def function(self, program: ast.Program, name: str, row: Settings | None = None) -> None:
        """Record ``name`` of ``program`` as checked with the ``row``'s
        settings (:func:`row_settings`: its configuration and kernel tree;
        None: any configuration, no tree); a selector that takes its
        contract away is an error."""
        configs = row.configs if row is not None else None
        settings = self.settings
        named = [c for c in settings.contracts if c.name == name]
        if settings.era is not None and named:
            if not any(c.era == settings.era for c in named):
                raise SourceError(f"--abi {settings.era}: {name} has no contract of the {settings.era} era "
                                  f"(its contracts: {', '.join(c.key for c in named)}), so --abi would "
                                  f"check it without one; leave --abi out or name {named[0].era}")
            self.era_used = True
        if name in settings.variants:
            variant = settings.variants[name]
            unfiltered = [c for c in named if settings.era is None or c.era == settings.era]
            if not any(c.variant == variant for c in unfiltered):
                variants = list(dict.fromkeys(c.variant for c in unfiltered))
                known = ", ".join(repr(v) for v in variants if v or len(variants) > 1)
                raise SourceError(f"--variant {name}={variant}: {name} has no contract variant {variant!r} "
                                  f"({'its variants: ' + known if known else 'it has no variants'})")
            self.variants_used.add(name)
        contract = choose_contract(program, name, row or settings).contract
        self.applicable.update(applicable(contract, configs))
        self.possible.update(applicable(contract))

    def finish(self, checked: Iterable[str]) -> None:
        """After every function: a selector that matched none is an error."""
        settings, checked = self.settings, list(dict.fromkeys(checked))
        if settings.era is not None and not self.era_used:
            raise SourceError(f"--abi {settings.era}: none of the functions checked ({', '.join(checked)}) "
                              f"has a contract of the {settings.era} era")
        unused = [name for name in settings.variants if name not in self.variants_used]
        if unused:
            name = unused[0]
            raise SourceError(f"--variant {name}={settings.variants[name]}: no function {name!r} is checked "
                              f"(functions: {', '.join(checked)})")
        if self.properties_given:
            idle = [pid for pid in settings.properties if pid not in self.applicable]
            if idle and idle[0] in self.possible:
                option = PROPERTIES[idle[0]].config
                raise SourceError(f"--property {idle[0]}: applies to none of the rows checked "
                                  f"({', '.join(checked)}): it needs {option} on (add --config {option}=y "
                                  f"or --matrix {option})")
            if idle:
                raise SourceError(f"--property {idle[0]}: applies to none of the functions checked "
                                  f"({', '.join(checked)}): it needs a wrapper contract that states it")
