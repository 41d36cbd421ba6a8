"""Where each obligation's time goes: a ``tdxproof check`` run in this
process, with the prover's stages timed from outside (a benchmark hook:
the tool's code and its JSON report are unchanged; ``check --json
--timings`` gives each obligation's seconds in all, not by stage).

For every obligation of every function x configuration row it records the
seconds spent, by stage:

- ``decide: solver`` / ``decide: claims``: the path queries that decide
  it (:func:`proofs.obligations._decide`, the solver's time and the rest:
  views, claims, simplification), shared evenly among the claims of the
  path, as the report's own ``seconds`` are;
- ``placement: solver``: the queries for a model the native harness can
  run (:func:`proofs.obligations._refute`), shared among the obligations
  they refute;
- ``canonical model``: the queries (and replays) that make the path's
  refutations' models the smallest ones
  (:func:`proofs.obligations._smallest_witnesses`), shared among the
  obligations refuted on the path;
- ``counterexample``: building, replaying and confirming its
  counterexample (:func:`proofs.counterexample.build_counterexample`).

The rows' symbolic execution and contract choice are per row, not per
obligation, and are left out.  Each task writes its rows to a JSON file
of ``OUTDIR`` of its own (a worker runs several: the file is named by
the worker's pid and the task's count); :func:`slowest` reads them back.

Usage: python bench/obligation_times.py OUTDIR check ARGS...
"""
from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path


def _install(outdir: Path) -> None:
    """Wrap the prover's stages so that each obligation's seconds are
    counted by stage (module doc)."""
    from model.executor import Solver
    from proofs import obligations, prover

    spent: dict[tuple, collections.Counter] = {}
    row: list = [None]                                      # (files, function, config) being checked
    solver_seconds = [0.0]

    def key(obligation) -> tuple:
        return (*row[0], obligation.pid, obligation.detail)

    def ask(self, *more, _ask=Solver._ask, **options):
        started = time.perf_counter()
        try:
            return _ask(self, *more, **options)
        finally:
            solver_seconds[0] += time.perf_counter() - started

    placing = [0.0, 0.0]            # placement queries: seconds, of which in the solver
    smallest = [0.0, 0.0]           # canonical models: seconds, of which in the solver

    def decide(claims, *rest, _decide=obligations._decide):
        started, solver_before = time.perf_counter(), solver_seconds[0]
        inner_before = placing[0] + smallest[0], placing[1] + smallest[1]
        try:
            return _decide(claims, *rest)
        finally:
            total = time.perf_counter() - started - (placing[0] + smallest[0] - inner_before[0])
            in_solver = solver_seconds[0] - solver_before - (placing[1] + smallest[1] - inner_before[1])
            for _, obligation, _ in claims:
                counter = spent.setdefault(key(obligation), collections.Counter())
                counter["decide: solver"] += in_solver / len(claims)
                counter["decide: claims"] += (total - in_solver) / len(claims)

    def timed(stage: str, tally: list[float], wrapped):
        """``wrapped`` (called with the obligations it works for first),
        its seconds added to ``tally`` and shared among the obligations."""
        def call(items, *rest):
            started, solver_before = time.perf_counter(), solver_seconds[0]
            try:
                return wrapped(items, *rest)
            finally:
                total = time.perf_counter() - started
                tally[0], tally[1] = tally[0] + total, tally[1] + solver_seconds[0] - solver_before
                for item in items:
                    obligation = item if isinstance(item, obligations.Obligation) else item[2]
                    spent.setdefault(key(obligation), collections.Counter())[stage] += total / len(items)
        return call

    def build(replays, config, contract, pid, detail, *rest, _build=prover.build_counterexample):
        started = time.perf_counter()
        try:
            return _build(replays, config, contract, pid, detail, *rest)
        finally:
            spent.setdefault((*row[0], pid, detail), collections.Counter())["counterexample"] += \
                time.perf_counter() - started

    def check_function(program, name, config, settings, _check_function=prover.check_function):
        row[0] = (program.files, name, config)
        return _check_function(program, name, config, settings)

    done = [0]                      # tasks this worker has run

    def task(arguments, _task=prover._task):
        spent.clear()
        try:
            return _task(arguments)
        finally:
            records = [{"files": list(k[0]), "function": k[1], "config": k[2], "property": k[3], "detail": k[4],
                        "stages": dict(v)} for k, v in spent.items()]
            done[0] += 1
            (outdir / f"{os.getpid()}-{done[0]}.json").write_text(json.dumps(records))

    Solver._ask = ask
    obligations._decide = decide
    obligations._refute = timed("placement: solver", placing, obligations._refute)
    obligations._smallest_witnesses = timed("canonical model", smallest, obligations._smallest_witnesses)
    prover.build_counterexample, prover.check_function, prover._task = build, check_function, task


def slowest(outdir: Path, count: int = 10) -> list[dict]:
    """The ``count`` obligations of the most seconds, each with its stages
    and the stage that dominated it (``dominant``), slowest first."""
    records = [r for file in sorted(outdir.glob("*.json")) for r in json.loads(file.read_text())]
    for record in records:
        record["seconds"] = sum(record["stages"].values())
        record["dominant"] = max(record["stages"], key=record["stages"].get)
    return sorted(records, key=lambda r: -r["seconds"])[:count]


def main() -> int:
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    _install(outdir)
    from proofs import cli
    status = cli.main(sys.argv[2:])
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
