"""Wall time of ``tdxproof check`` on the whole fixture tree.

One ``tdxproof check`` process (interpreter start-up included) over every
``.S`` file of the five correct kernel-like trees (unified, legacy,
legacy-flags, legacy-oldest, variants; not the macro file ``tdxcall.S``,
which the others include): each tree is its own program with its own era
(inferred) and options (its ``tdxproof.toml``), a two-configuration matrix
(CONFIG_FRAME_POINTER y/n), every property, ``--json -``.  The target is
under 2 seconds of wall time.  Prints a table: run, wall seconds, CPU
seconds (the process and its workers), exit status, wall / target.

``--per-tree`` runs the older way instead, one process per tree (with its
era given by ``--abi``), and adds up the times, for comparison.
``--json-dir DIR`` keeps each run's JSON report there.

Usage: python bench/check_fixtures.py [--jobs N]... [--per-tree] [--json-dir DIR]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from fixtures import FIXTURES, ROOT, checked_files

TREES = {"unified": "unified", "legacy": "legacy", "legacy-flags": "legacy",
         "legacy-oldest": "legacy", "variants": "unified"}
"""The trees, with the era each is checked under when one process checks one tree."""
TARGET = 2.0


def tree_files(tree: str) -> list[str]:
    return [str(p) for p in checked_files(FIXTURES / tree)]


def run_check(arguments: list[str], json_path: Path | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit status) of one ``tdxproof check``."""
    command = [sys.executable, "-m", "proofs.cli", "check", *arguments,
               "--matrix", "CONFIG_FRAME_POINTER", "--json", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if json_path is not None:
        json_path.write_bytes(done.stdout)
    if done.returncode not in (0, 1):
        sys.stderr.write(done.stderr.decode(errors="replace"))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, action="append", default=[],
                        help="a run with --jobs N (repeatable; default: 1 and 2)")
    parser.add_argument("--per-tree", action="store_true", help="one process per tree, the older way")
    parser.add_argument("--json-dir", type=Path, default=None, help="keep each run's JSON report here")
    args = parser.parse_args()
    if args.json_dir:
        args.json_dir.mkdir(parents=True, exist_ok=True)
    if sys.flags.dont_write_bytecode:
        print("note: bytecode caching is off (PYTHONDONTWRITEBYTECODE): every run compiles its modules")
    print(f"{'run':<28}{'wall s':>8}{'CPU s':>8}{'exit':>6}{'/ target':>10}")
    for jobs in args.jobs or [1, 2]:
        rows = []
        if args.per_tree:
            for tree, era in TREES.items():
                json_path = args.json_dir / f"{tree}-jobs{jobs}.json" if args.json_dir else None
                rows.append(run_check([*tree_files(tree), "--abi", era, "--jobs", str(jobs)], json_path))
            label = f"per tree (5), --jobs {jobs}"
        else:
            files = [path for tree in TREES for path in tree_files(tree)]
            json_path = args.json_dir / f"all-jobs{jobs}.json" if args.json_dir else None
            rows.append(run_check([*files, "--jobs", str(jobs)], json_path))
            label = f"one process, --jobs {jobs}"
        wall, cpu = sum(row[0] for row in rows), sum(row[1] for row in rows)
        status = max(row[2] for row in rows)
        print(f"{label:<28}{wall:>8.2f}{cpu:>8.2f}{status:>6}{wall / TARGET:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
