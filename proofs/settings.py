"""What a ``check`` run is asked to do, row by row, and what the executor is
told for one function.

* **The row's configuration.**  A property that needs a kernel option
  (``Property.config``: ``frame-pointer`` needs ``CONFIG_FRAME_POINTER``)
  is checked only on the rows where it is on; elsewhere it has no
  obligation and the result says why.  What is on is not guessed from
  the code (FRAME_BEGIN expands to nothing without the option, but a
  file may also set up a frame by hand): it is the row's front-end
  options as the C preprocessor saw them
  (:func:`grammar.frontend.config_enabled`: ``--config``, ``--matrix``,
  ``-D``/``-U``, a tree's ``tdxproof.toml`` defines), which the task of
  each row puts into ``Settings.configs`` (:func:`row_settings`).
* **The executor's options** for a contract: its module-output set
  narrows the TDX model (``call``) or not (``worst-case``, ``bitmap``),
  and the assumptions (:mod:`proofs.assumptions`) are its preconditions,
  with the same memory regions the proofs use, so that it prunes exactly
  the paths the assumptions rule out.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from grammar.frontend import config_enabled
from model import abi, symbolic
from model.executor import ExecutorOptions
from model.tdx import TdxModel
from proofs.assumptions import formulas, function_assumptions, memory_regions
from proofs.contracts import Contract
from proofs.properties import CATALOG, PROPERTIES, applicable, config_options
from proofs.renaming import MODULE_NAMESPACE


@dataclass(frozen=True)
class Settings:
    """What the user chose for a ``check`` run (besides files), and
    ``configs``: the kernel options of the row being checked that some
    property needs (option -> on; :func:`row_settings` sets them per row,
    an option not named is off)."""

    properties: tuple[str, ...] = CATALOG
    era: str | None = None
    firmware: str = "spec"
    timeout: float = 10.0
    proof_seconds: float = 120.0
    """The solver's time for one function x configuration row (``--limit proof-seconds``)."""
    contracts: tuple[Contract, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    loop_bound: int = 16
    tdcall_may_fault: bool = False
    configs: Mapping[str, bool] = field(default_factory=dict)
    resets_extended: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: dict(abi.EXTENDED_STATE_RESETS))
    """Per TDX instruction, the leaves whose completion may reset the
    extended (AVX) state (``model.abi.EXTENDED_STATE_RESETS`` and
    ``--resets-extended``)."""
    declarations: Any = None
    """The row's kernel tree's :class:`grammar.declarations.TreeFacts` (its
    prototypes and struct layouts decide the contracts), None outside a tree."""


def row_configs(options, facts=None) -> dict[str, bool]:
    """The kernel options the catalog's properties need, as the
    front-end ``options`` of a row set them, else as the kernel tree's own
    configuration does (``facts``: :class:`grammar.declarations.TreeFacts`)."""
    tree = facts.config if facts is not None else {}
    return {name: config_enabled(options, name, name in tree and tree[name].enabled) for name in config_options()}


def row_settings(settings: Settings, options, facts=None) -> Settings:
    """``settings`` for the row preprocessed with front-end ``options``
    (in kernel tree ``facts``, if any)."""
    return dataclasses.replace(settings, configs=row_configs(options, facts), declarations=facts)


def not_configured(contract: Contract | None, settings: Settings) -> list[str]:
    """Why a selected property does not apply to this row: the kernel
    option it needs is off."""
    here = applicable(contract, settings.configs)
    return [f"{pid} does not apply: {PROPERTIES[pid].config} is off in this configuration"
            for pid in applicable(contract) if pid in settings.properties and pid not in here]


def executor_options(settings: Settings, contract: Contract | None) -> ExecutorOptions:
    """The executor's options for ``contract``: its module-output set, and
    the same assumptions (as preconditions) and memory regions the prover
    uses, so that the executor prunes exactly the paths the assumptions
    rule out."""
    outputs = {}
    if contract is not None and contract.module_outputs == "call":
        outputs = {contract.instruction: abi.MODULE_CALL_OUTPUTS}
    entry = symbolic.SymbolicState.fresh(ExecutorOptions.entry_prefix)
    preconditions = tuple(formulas(function_assumptions(entry, contract)))
    regions = memory_regions(entry, contract)
    tdx = TdxModel(firmware=settings.firmware, module_outputs=outputs,
                   tdcall_may_fault=settings.tdcall_may_fault, extended_resets=settings.resets_extended,
                   namespace=MODULE_NAMESPACE,
                   vmcall_reads_exposed=False)      # changes no check verdict (model.tdx)
    return ExecutorOptions(tdx=tdx, solver_timeout=settings.timeout, loop_bound=settings.loop_bound,
                           preconditions=preconditions, regions=regions, exclusive_frame=True)
