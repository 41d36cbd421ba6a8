"""Every row of the shared expectations table (``tests/expectations.py``)
checked with the real pipeline: front end, executor, prover -- push-button,
as a developer runs ``tdxproof check FILE``: no ``--abi``, no ``--variant``;
the contract the tool chooses must be of the row's era (and the row's
contract, where the row names one).

Rows that share fixture, function, configuration, firmware and era are
decided by one ``check_function`` run (over the union of their
properties), with the row's configuration passed as ``check`` passes it
(:func:`proofs.settings.row_settings`).  Each refuted obligation's
counterexample must be confirmed by the concrete interpreter (no spurious
counterexamples).  An "n/a" row must have no obligation of its property,
and the result must say why.

Every row runs by default (about 45 s on this machine, 2 minutes under
load); ``TDXPROOF_TABLE=quick`` keeps only the rows that expect a
refutation or an unknown and the ``clobbers-rbp`` rows, ``TDXPROOF_TABLE=fp-off`` adds the
frame-pointer-off rows of the correct wrappers.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import expectations as table  # noqa: E402  (the shared table lives beside the tests)

from proofs.contracts import load_contracts  # noqa: E402
from grammar.frontend import config_label  # noqa: E402
from proofs.programs import cached_program  # noqa: E402
from proofs.prover import check_function  # noqa: E402
from proofs.settings import Settings, row_settings  # noqa: E402

TABLE = os.environ.get("TDXPROOF_TABLE", "full")


def _group(row: table.Expectation) -> tuple:
    return (row.paths, row.function, tuple(sorted(row.configs.items())), row.firmware, row.abi)


def _selected(row: table.Expectation) -> bool:
    return (TABLE == "full" or row.expected != "proved" or row.firmware != "spec"
            or (TABLE == "fp-off" and row.configs == table.FP_OFF))



ROWS = [row for row in table.EXPECTATIONS if _selected(row)]
_PROPERTIES: dict[tuple, set[str]] = {}
for _row in ROWS:
    _PROPERTIES.setdefault(_group(_row), set()).add(_row.property)
_RESULTS: dict[tuple, object] = {}


def _result(row: table.Expectation, workdir: Path):
    key = _group(row)
    if key not in _RESULTS:
        paths = tuple(table.prepare_paths(row, workdir))
        program = cached_program(paths, table.frontend_options(row))
        settings = Settings(properties=tuple(sorted(_PROPERTIES[key])), firmware=row.firmware,
                            contracts=load_contracts(), timeout=30)
        _RESULTS[key] = check_function(program, row.function, config_label(row.configs),
                                       row_settings(settings, table.frontend_options(row)))
    return _RESULTS[key]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_expected_verdict(row, tmp_path_factory):
    result = _result(row, tmp_path_factory.getbasetemp())
    obligations = [o for o in result.obligations
                   if o.property == row.property and (row.detail is None or o.detail == row.detail)]
    if row.expected == "n/a":
        assert not obligations, [(o.detail, o.status) for o in obligations]
        assert any(text.startswith(f"{row.property} does not apply: ") for text in result.assumptions)
        return
    assert obligations, f"{row.property} was not checked on {row.function} (contract {result.contract})"
    if result.contract is not None:
        assert result.abi == row.abi, (result.contract, result.abi_source)
    if row.contract is not None:
        assert result.contract == row.contract, (result.contract, result.abi_source, result.notices)
    statuses = {o.status for o in obligations}
    verdict = "refuted" if "refuted" in statuses else "proved" if statuses == {"proved"} else "unknown"
    problems = [(o.detail, o.status, o.reason, (o.counterexample or {}).get("where"))
                for o in obligations if o.status != "proved"]
    assert verdict == row.expected, problems
    for o in obligations:
        if o.counterexample is not None:
            assert o.counterexample["confirmed"], o.counterexample.get("replay_problem")


REFUTED_ROWS = [row for row in ROWS if row.expected == "refuted"]


@pytest.mark.parametrize("row", REFUTED_ROWS, ids=[row.id for row in REFUTED_ROWS])
def test_every_counterexample_reproduces_on_the_cpu(row, tmp_path_factory, tmp_path):
    """The counterexample file of each refutation, as ``--cex-dir`` writes
    it, replayed natively by ``tdxproof replay``: the CPU violates the
    property too."""
    from proofs.cex_file import check_file, source_digests
    from proofs.replay import replay_file
    result = _result(row, tmp_path_factory.getbasetemp())
    options = table.frontend_options(row)
    replayed = 0
    for o in result.obligations:
        if o.property != row.property or o.counterexample is None or (row.detail and o.detail != row.detail):
            continue
        files = tuple(o.counterexample["files"])
        path = tmp_path / f"{o.property}-{o.detail or 'all'}.json"
        path.write_text(json.dumps(check_file(o.counterexample, options, source_digests(files, options))))
        verdict = replay_file(str(path))
        assert verdict.reproduced, verdict.text
        assert "moved onto the harness's memory" not in verdict.text, verdict.text
        replayed += 1
    assert replayed, f"no counterexample for {row.id}"
