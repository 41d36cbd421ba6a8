"""Time ``tdxproof series`` over the series fixture (tests/fixtures/series):
each step and the whole range, in one process (issue 12's target: a
ten-step series under a minute).

    python bench/series.py [--jobs N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fixtures import ROOT

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import series_repo  # noqa: E402

from proofs.series import DEFAULT_PATHS, SeriesOptions, run_series  # noqa: E402

TARGET_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="functions checked at once (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tdxproof-bench-series-") as scratch:
        repo = Path(scratch) / "linux"
        series_repo.build(repo)
        count = len(series_repo.steps()) - 1
        started = time.monotonic()
        steps = run_series(str(repo), f"HEAD~{count}..HEAD", DEFAULT_PATHS, SeriesOptions(jobs=args.jobs))
        total = time.monotonic() - started
    for step in steps:
        verdicts = ", ".join(f"{f.name} {f.equivalence or f.change}" for f in step.functions) or "-"
        print(f"series-step {step.commit[:8]} {step.subject[:50]:<50} {step.seconds:6.2f} s  {verdicts}")
    print(f"series-total {len(steps)} steps {total:6.2f} s (target {TARGET_SECONDS:.0f} s: "
          f"{'met' if total < TARGET_SECONDS else 'MISSED'})")
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
