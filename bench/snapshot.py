"""A behaviour snapshot: every output of the tool on every shipped fixture.

A refactoring that claims to preserve behaviour is checked by taking a
snapshot before and after it and comparing the two directories byte for
byte (``diff -r BEFORE AFTER``).  Each run is one process of its own (Z3's
models within one process depend on what it solved before), over:

- every fixture tree and loose fixture file under ``tests/fixtures``
  (``check --matrix CONFIG_FRAME_POINTER``, each group as ``check`` forms it),
- the kernel-like trees in tree mode (built ones with ``--kernel-build``),
- every equivalence spec under ``examples``.

For each run it keeps the exit status, standard output and error, the JSON
report and the counterexample files.  Paths inside them are relative to the
repository, so snapshots of two checkouts compare equal.  It also prints a
table of the runs and their wall seconds (for information: the snapshot
itself holds no times).

Usage: python bench/snapshot.py OUTDIR [--jobs N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixtures import FIXTURES, ROOT, SERIES_STEPS, checked_files

TREE_BUILDS = {"unified": "unified-build", "legacy": "legacy-built"}
"""Tree-mode fixtures and the build directory each is also checked with."""


def check_runs() -> dict[str, list[str]]:
    """The ``check`` runs: a name and its arguments."""
    runs: dict[str, list[str]] = {}
    for directory in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name not in ("trees", SERIES_STEPS)):
        files = checked_files(directory)
        if directory.name in ("broken", "unsupported", "variants"):
            for file in files:
                runs[f"check-{directory.name}-{file.stem}"] = [str(file.relative_to(ROOT))]
        elif files:
            runs[f"check-{directory.name}"] = [str(f.relative_to(ROOT)) for f in files]
    trees = FIXTURES / "trees"
    for tree in sorted(p for p in trees.iterdir() if p.is_dir() and p.name not in TREE_BUILDS.values()):
        files = [str(f.relative_to(ROOT)) for f in checked_files(tree)]
        runs[f"tree-{tree.name}"] = files
        if tree.name in TREE_BUILDS:
            build = str((trees / TREE_BUILDS[tree.name]).relative_to(ROOT))
            runs[f"tree-{tree.name}-built"] = ["--kernel-build", build, *files]
    return {name: ["check", "--matrix", "CONFIG_FRAME_POINTER", *arguments] for name, arguments in runs.items()}


def equiv_runs() -> dict[str, list[str]]:
    return {f"equiv-{spec.parent.name}-{spec.stem}": ["equiv", str(spec.relative_to(ROOT))]
            for spec in sorted((ROOT / "examples").glob("*/*.toml"))}


def run(name: str, arguments: list[str], out: Path) -> tuple[str, int, float]:
    """One run into ``out/name``: rc, stdout, stderr, report.json, cex/."""
    target = out / name
    target.mkdir(parents=True)
    command = [sys.executable, "-m", "proofs.cli", *arguments, "--json", str(target / "report.json"),
               "--cex-dir", str(target / "cex")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    wall = time.perf_counter() - start
    (target / "rc").write_text(f"{done.returncode}\n")
    (target / "stdout").write_text(done.stdout.replace(str(out), "OUT"))
    (target / "stderr").write_text(done.stderr.replace(str(out), "OUT"))
    for written in target.rglob("*.json"):
        written.write_text(written.read_text().replace(str(out), "OUT"))
    return name, done.returncode, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    out = options.outdir.resolve()
    if out.exists():
        shutil.rmtree(out)
    runs = {**check_runs(), **equiv_runs()}
    with ThreadPoolExecutor(options.jobs) as pool:
        results = list(pool.map(lambda item: run(*item, out), runs.items()))
    print(f"{'run':48} {'rc':>3} {'wall s':>7}")
    for name, status, wall in results:
        print(f"{name:48} {status:>3} {wall:7.2f}")
    print(f"{len(results)} runs, {sum(r[2] for r in results):.1f} s of wall time in all, into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
