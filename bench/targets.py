"""The speed targets of the project, each measured against its goal.

Every run is a ``tdxproof`` process of its own (start-up included, from
the checkout's compiled modules, as an installed tool starts:
:func:`compile_modules`), timed for wall and CPU seconds (the process and its
workers) and peak resident memory (the largest of its processes),
repeated ``--runs`` times; the table shows the median and the ratio to
the target (under 1.00 meets it).

- ``forms``: one ``check`` of every fixture form, correct and buggy, both
  CONFIG_FRAME_POINTER values, every property, in one process: wall time
  per function x configuration row (target 20 ms, start-up included).
- ``refuted`` / ``proved``: one ``check`` per tree or buggy file; the
  slowest refuted one should cost what a proved one costs (target: the
  slowest of either under 3 s, and the refuted median within 1.5 times the
  proved median).
- ``unknown``: obligations the solver left unknown (a timeout) over all the
  runs above (target 0); the others, on paths that fall through into the
  next function, are counted apart.
- ``equiv``: each pair of a wrapper and its next version (target 5 s).
- ``mutate``: one wrapper with equivalence classification of survivors
  (target 20 s).
- ``series``: ``tdxproof series`` over the ten-step series of
  ``tests/fixtures/series`` (a git repository built in a scratch
  directory; target 60 s; ``bench/series.py`` times it step by step).
- ``memory``: the peak of all the runs (target 1 GiB).

A section of its own then lists the slowest ten obligations of the
``forms`` run, each with its seconds by stage and the stage that
dominated it (:mod:`obligation_times`: the same ``check``, its stages
timed in-process; the report's seconds are whole seconds).

Usage: python bench/targets.py [--runs N] [--quick]
(``--quick``: one run, and mutate left out.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fixtures import FIXTURES, ROOT, SERIES_STEPS, checked_files
import obligation_times

sys.path.insert(0, str(ROOT / "tests"))
import series_repo  # noqa: E402

LOOSE = ("broken", "variants")
"""Fixture directories of independent files: each file is a tree of its own."""
NOT_MEASURED = ("unsupported", "trees", SERIES_STEPS)
DEFINES = ["-D", "TDX_SEAMCALL_VMFAILVALID=0x8000FF0000000002"]
"""The one constant a vendor form uses that the shims do not define."""

V62_V63 = ["tests/fixtures/legacy-flags/arch/x86/coco/tdx/tdcall.S:__tdx_hypercall",
           "tests/fixtures/v6.3/arch/x86/coco/tdx/tdcall.S:__tdx_hypercall"]
EQUIV_PAIRS = {
    "v6.2 -> v6.3 __tdx_hypercall (flags in RBP -> on the stack)": V62_V63,
    "v6.2 -> v6.3 __tdx_hypercall, CONFIG_FRAME_POINTER=y": [*V62_V63, "--config", "CONFIG_FRAME_POINTER=y"],
    "v6.3 __tdx_hypercall -> R12 from args->r13 (spec)": ["examples/vmcall_reads/exposed.toml"],
    "legacy __tdx_hypercall_ret -> unified C glue (spec)": ["examples/hypercall/equiv.toml"],
    "legacy __tdx_module_call -> unified __tdcall_ret (spec)": ["examples/module_call/equiv.toml"],
}
MUTATE = ["--function", "__tdcall_ret", "tests/fixtures/unified/arch/x86/coco/tdx/tdcall.S"]

FORMS_CHECK = ["check", "--matrix", "CONFIG_FRAME_POINTER", "--jobs", "2", "--json", "-", *DEFINES]
"""The ``check`` of the forms target (the files follow)."""

TARGETS = {"forms": 0.020, "slowest": 3.0, "refuted/proved": 1.5, "unknown": 0, "equiv": 5.0,
           "mutate": 20.0, "series": 60.0, "memory": 1024.0}


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mib: float
    status: int
    stdout: str


_COMPILED: set[Path] = set()
"""The checkouts :func:`compile_modules` has compiled in this process."""


def compile_modules(tree: Path) -> None:
    """Compile the modules of the checkout at ``tree`` into its
    ``__pycache__`` directories, once: an installed tool runs from compiled
    bytecode, while this machine sets ``PYTHONDONTWRITEBYTECODE``, so that
    every run compiled the tool's 19,000 lines first (0.1 s) -- unless a
    ``__pycache__`` was left in the checkout by something else, which then
    made ``bench/ab.py`` compare a compiled checkout with a compiling one."""
    tree = tree.resolve()
    if tree not in _COMPILED:
        subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(tree / package) for package in PACKAGES)],
                       check=True, capture_output=True)
        _COMPILED.add(tree)


PACKAGES = ("grammar", "model", "proofs")
"""The tool's packages, which :func:`compile_modules` compiles."""


def run(arguments: list[str], tree: Path = ROOT) -> Run:
    """One ``tdxproof`` process of the checkout at ``tree``, measured, from
    its compiled modules (:func:`compile_modules`).  The peak memory is
    that of the largest process of the run (``getrusage`` of the children,
    read in a fresh interpreter so that earlier runs do not count)."""
    probe = ("import resource, subprocess, sys, time\n"
             "start = time.perf_counter()\n"
             "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "wall = time.perf_counter() - start\n"
             "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
             "import json; print(json.dumps([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,"
             " done.returncode, done.stdout]))\n")
    command = [sys.executable, "-c", probe, sys.executable, "-m", "proofs.cli", *arguments]
    compile_modules(tree)
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(tree)), check=True)
    wall, cpu, peak_kib, status, stdout = json.loads(done.stdout)
    return Run(wall, cpu, peak_kib / 1024, status, stdout)


@dataclass(frozen=True)
class Counts:
    """What a ``check --json -`` report says: obligations by status, the
    unknown ones the solver gave up on, and function x configuration rows."""

    proved: int
    refuted: int
    unknown: int
    by_solver: int
    rows: int


def counts(stdout: str) -> Counts:
    try:
        results = json.loads(stdout)["results"]
    except (ValueError, KeyError):
        return Counts(0, 0, 0, 0, 0)
    obligations = [o for result in results for o in result["obligations"]]
    status = [o["status"] for o in obligations]
    by_solver = sum(1 for o in obligations if o["status"] == "unknown" and "solver" in (o.get("reason") or ""))
    return Counts(status.count("proved"), status.count("refuted"), status.count("unknown"), by_solver,
                  len(results))


def trees(scratch: Path) -> dict[str, list[str]]:
    """Every fixture tree and every loose fixture file (copied to a
    directory of its own, so that each is its own group): name -> files."""
    found: dict[str, list[str]] = {}
    for directory in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name not in NOT_MEASURED):
        files = checked_files(directory)
        if directory.name in LOOSE:
            for file in files:
                alone = scratch / directory.name / file.stem
                alone.mkdir(parents=True)
                shutil.copy(file, alone / file.name)
                found[f"{directory.name}/{file.stem}"] = [str(alone / file.name)]
        elif files:
            found[directory.name] = [str(f) for f in files]
    return found


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    runs = 1 if options.quick else options.runs
    check = FORMS_CHECK
    rows: list[tuple[str, float, float, float, float, str]] = []   # name, wall, cpu, MiB, ratio, note
    peaks: list[float] = []

    with tempfile.TemporaryDirectory(prefix="tdxproof-bench-") as scratch:
        groups = trees(Path(scratch))
        every_file = [f for files in groups.values() for f in files]
        forms = [run(check + every_file) for _ in range(runs)]
        peaks += [r.peak_mib for r in forms]
        found = counts(forms[0].stdout)
        count = found.rows
        wall = median([r.wall for r in forms])
        rows.append((f"forms: {count} rows, one check", wall, median([r.cpu for r in forms]),
                     max(r.peak_mib for r in forms), wall / count / TARGETS["forms"] if count else float("inf"),
                     f"{1000 * wall / count:.1f} ms/row; {found.proved} proved, {found.refuted} refuted, "
                     f"{found.unknown} unknown"))

        timed = Path(scratch) / "obligation-times"
        subprocess.run([sys.executable, str(Path(__file__).parent / "obligation_times.py"), str(timed),
                        *check, *every_file], cwd=ROOT, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        slow = obligation_times.slowest(timed)

        by_verdict: dict[str, list[float]] = {"refuted": [], "proved": []}
        unknowns, by_solver = found.unknown, found.by_solver
        slowest = ("", 0.0)
        for name, files in groups.items():
            measured = [run(check + files) for _ in range(runs)]
            peaks += [r.peak_mib for r in measured]
            wall = median([r.wall for r in measured])
            here = counts(measured[0].stdout)
            unknowns, by_solver = unknowns + here.unknown, by_solver + here.by_solver
            by_verdict["refuted" if here.refuted else "proved"].append(wall)
            if wall > slowest[1]:
                slowest = (name, wall)
        proved_median, refuted_median = median(by_verdict["proved"]), median(by_verdict["refuted"])
        rows.append((f"slowest tree or file ({slowest[0]})", slowest[1], float("nan"), float("nan"),
                     slowest[1] / TARGETS["slowest"], ""))
        rows.append(("refuted median / proved median", refuted_median, float("nan"), float("nan"),
                     refuted_median / proved_median / TARGETS["refuted/proved"],
                     f"{len(by_verdict['refuted'])} refuted at {refuted_median:.2f} s, "
                     f"{len(by_verdict['proved'])} proved at {proved_median:.2f} s"))
        rows.append(("unknown by the solver (all runs above)", float("nan"), float("nan"), float("nan"),
                     float(by_solver > TARGETS["unknown"]),
                     f"{by_solver} (of {unknowns} unknown; the rest are past a fall-through)"))

    for name, arguments in EQUIV_PAIRS.items():
        measured = [run(["equiv", *arguments]) for _ in range(runs)]
        peaks += [r.peak_mib for r in measured]
        wall = median([r.wall for r in measured])
        verdict = measured[0].stdout.split(":", 1)[0]
        rows.append((f"equiv {name}", wall, median([r.cpu for r in measured]),
                     max(r.peak_mib for r in measured), wall / TARGETS["equiv"], verdict))
    if not options.quick:
        measured = [run(["mutate", *MUTATE]) for _ in range(runs)]
        peaks += [r.peak_mib for r in measured]
        wall = median([r.wall for r in measured])
        score = re.search(r"mutation score: .*", measured[0].stdout)
        rows.append(("mutate __tdcall_ret (unified)", wall, median([r.cpu for r in measured]),
                     max(r.peak_mib for r in measured), wall / TARGETS["mutate"], score[0] if score else ""))
    with tempfile.TemporaryDirectory(prefix="tdxproof-bench-series-") as scratch:
        repo = Path(scratch) / "linux"
        series_repo.build(repo)
        count = len(series_repo.steps()) - 1
        measured = [run(["series", "--repo", str(repo), "--jobs", "2", f"HEAD~{count}..HEAD"]) for _ in range(runs)]
    peaks += [r.peak_mib for r in measured]
    wall = median([r.wall for r in measured])
    rows.append((f"series over {count} steps", wall, median([r.cpu for r in measured]),
                 max(r.peak_mib for r in measured), wall / TARGETS["series"], f"exit status {measured[0].status}"))
    rows.append(("peak memory of any process", float("nan"), float("nan"), max(peaks),
                 max(peaks) / TARGETS["memory"], "MiB, the largest single process"))

    print(f"median of {runs} run(s); ratio = measured / target (under 1.00 meets it)")
    print(f"{'target':66} {'wall s':>7} {'CPU s':>7} {'MiB':>7} {'ratio':>6}  note")
    for name, wall, cpu, mib, ratio, note in rows:
        print(f"{name:66} {wall:7.2f} {cpu:7.2f} {mib:7.0f} {ratio:6.2f}  {note}")
    print("\nthe slowest ten obligations of the forms run (one run, wall seconds in-process, by stage)")
    for record in slow:
        stages = ", ".join(f"{stage} {seconds:.3f}" for stage, seconds in
                           sorted(record["stages"].items(), key=lambda item: -item[1]) if seconds >= 0.0005)
        obligation = f"{record['property']}{':' + record['detail'] if record['detail'] else ''}"
        print(f"{record['seconds']:6.3f}  {record['function']} [{record['config']}] {obligation} "
              f"({Path(record['files'][0]).name}): {record['dominant']} dominated; {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
