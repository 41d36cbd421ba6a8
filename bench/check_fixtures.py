"""Wall time of ``tdxproof check`` on the whole fixture tree.

Every function of every fixture tree, both eras (each tree with its own
era), a two-configuration matrix (CONFIG_FRAME_POINTER y/n) and every
property, one ``tdxproof check`` process per tree (interpreter start-up
included), then the total.  The target is under 2 seconds in all.
Prints a table: tree, files, exit status, seconds.

Usage: python bench/check_fixtures.py [--jobs N]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TREES = {"unified": "unified", "legacy": "legacy", "legacy-flags": "legacy",
         "legacy-oldest": "legacy", "variants": "unified"}
INCLUDES = {"legacy-oldest": ["-I", str(FIXTURES / "legacy-oldest/arch/x86/include")]}
MACRO_FILES = {"tdxcall.S"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    rows, total = [], 0.0
    for tree, era in TREES.items():
        files = sorted(str(p) for p in (FIXTURES / tree).rglob("*.S") if p.name not in MACRO_FILES)
        command = [sys.executable, "-m", "proofs.cli", "check", *files, "--abi", era,
                   "--matrix", "CONFIG_FRAME_POINTER", "--jobs", str(args.jobs), "--json", "-",
                   *INCLUDES.get(tree, [])]
        started = time.perf_counter()
        status = subprocess.run(command, cwd=ROOT, capture_output=True).returncode
        seconds = time.perf_counter() - started
        total += seconds
        rows.append((tree, len(files), status, seconds))
        if len(rows) == 1:
            print(f"{'tree':<16}{'files':>6}{'exit':>6}{'seconds':>10}")
        print(f"{tree:<16}{len(files):>6}{status:>6}{seconds:>10.2f}", flush=True)
    print(f"{'total':<16}{'':>6}{'':>6}{total:>10.2f}   (target: < 2 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
