"""Whether other Z3 settings would make the executor's solver queries
cheaper: a ``tdxproof check`` run in this process records every query of
every :class:`model.executor.Solver` (its pushes, pops, assertions and
checks with their assumptions, and which answers were asked for a model
or an unsat core), then replays the recording under each variant of the
solver's parameters and prints the CPU seconds of the checks, the models
and the cores (the median over the rounds, the variants interleaved so
that a change of the machine's load falls on all of them), and, in the
worst round, the answers that differ from the recording's (always 0: a
variant is a setting, not another question) and the unknowns.

A benchmark hook: the tool's code is unchanged, and its report is
discarded.  The run's
tasks are run in this process, not in forks, so that the recording
stays here.  The replay asks the same queries whatever models the
variant finds (the recording's later queries were made from the
recording's models), which is what a setting that changes only the
speed of the same queries is measured by.

Usage: python bench/solver_variants.py [--rounds N] [--variant NAME]... -- check ARGS...
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import statistics
import sys
import time

import z3

from model import executor
from proofs import cli, prover

VARIANTS: dict[str, dict] = {
    "default": {},
    "model.compact=false": {"model.compact": False},
    "smt.bv.delay": {"smt.bv.delay": True},
    "smt.relevancy=0": {"smt.relevancy": 0},
    "smt.relevancy=1": {"smt.relevancy": 1},
    "smt.phase_selection=0": {"smt.phase_selection": 0},
    "smt.phase_selection=5": {"smt.phase_selection": 5},
}
"""Parameters beyond :data:`model.executor.SOLVER_PARAMETERS`, by name."""


class _Recorder:
    """A Z3 solver that records what is asked of it in ``trace``."""

    def __init__(self, trace: list):
        self._inner = z3.Solver()
        self.trace = trace

    def set(self, *args, **keywords) -> None:
        self._inner.set(*args, **keywords)

    def push(self) -> None:
        self.trace.append(("push",))
        self._inner.push()

    def pop(self) -> None:
        self.trace.append(("pop",))
        self._inner.pop()

    def add(self, *terms) -> None:
        self.trace.append(("add", terms))
        self._inner.add(*terms)

    def check(self, *assumptions):
        answer = self._inner.check(*assumptions)
        self.trace.append(("check", assumptions, answer))
        return answer

    def model(self):
        self.trace.append(("model",))
        return self._inner.model()

    def unsat_core(self):
        self.trace.append(("core",))
        return self._inner.unsat_core()

    def reason_unknown(self) -> str:
        return self._inner.reason_unknown()

    def assertions(self):
        """What the solver asserts (the minimiser's reduced solvers start from it; not a query)."""
        return self._inner.assertions()


class _Z3WithRecorders:
    """The z3 module as the executor sees it, its solvers recorded."""

    def __init__(self, traces: list):
        self._traces = traces

    def __getattr__(self, name):
        return getattr(z3, name)

    def Solver(self) -> _Recorder:
        self._traces.append([])
        return _Recorder(self._traces[-1])


def _in_process(batches, run, jobs, describe, watch=None, shipping=None, affinity=None):
    """:func:`proofs.scheduling.run_in_forks` without the forks (so nothing is shipped)."""
    tasks, outcomes = [], []
    for batch in batches:
        for task, _cost in batch:
            tasks.append(task)
            outcomes.append(pickle.loads(pickle.dumps(run(task))))
    return tasks, outcomes


def record(check_args: list[str]) -> list[list[tuple]]:
    """The traces of every executor solver of the ``check`` run."""
    traces: list[list[tuple]] = []
    executor.z3 = _Z3WithRecorders(traces)
    prover.run_in_forks = _in_process
    try:
        with open(os.devnull, "w") as discarded, contextlib.redirect_stdout(discarded):
            cli.main(check_args)
    except SystemExit:
        pass
    finally:
        executor.z3 = z3
    return traces


def replay(traces: list[list[tuple]], parameters: dict, timeout_ms: int) -> dict[str, float]:
    """CPU seconds of the checks, models and cores of ``traces`` asked
    again with ``parameters``; answers unlike the recording's; unknowns."""
    spent = {"check": 0.0, "model": 0.0, "core": 0.0, "differ": 0, "unknown": 0}
    for trace in traces:
        solver = z3.Solver()
        solver.set("timeout", timeout_ms, **executor.SOLVER_PARAMETERS, **parameters)
        answer = None
        for step in trace:
            start = time.process_time()
            if step[0] == "push":
                solver.push()
            elif step[0] == "pop":
                solver.pop()
            elif step[0] == "add":
                solver.add(*step[1])
            elif step[0] == "check":
                answer = solver.check(*step[1])
                spent["check"] += time.process_time() - start
                spent["differ"] += answer != step[2]
                spent["unknown"] += answer == z3.unknown
            elif step[0] == "model" and answer == z3.sat:
                solver.model()
                spent["model"] += time.process_time() - start
            elif step[0] == "core" and answer == z3.unsat:
                solver.unsat_core()
                spent["core"] += time.process_time() - start
    return spent


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per replayed check")
    parser.add_argument("check", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    check_args = options.check[1:] if options.check[:1] == ["--"] else options.check
    traces = record(check_args)
    checks = sum(step[0] == "check" for trace in traces for step in trace)
    print(f"{len(traces)} solvers, {checks} checks recorded", file=sys.stderr)
    names = options.variant or list(VARIANTS)
    rounds = {name: [] for name in names}
    for _ in range(options.rounds):
        for name in names:
            rounds[name].append(replay(traces, VARIANTS[name], int(options.timeout * 1000)))
    print(f"{'variant':24s} {'check s':>8s} {'model s':>8s} {'core s':>7s} {'differ':>6s} {'unknown':>7s}")
    for name in names:
        median = {key: statistics.median(r[key] for r in rounds[name]) for key in ("check", "model", "core")}
        worst = {key: max(r[key] for r in rounds[name]) for key in ("differ", "unknown")}
        print(f"{name:24s} {median['check']:8.2f} {median['model']:8.2f} {median['core']:7.2f}"
              f" {worst['differ']:6d} {worst['unknown']:7d}")


if __name__ == "__main__":
    main(sys.argv[1:])
