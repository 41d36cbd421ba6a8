"""The forms run of ``bench/targets.py``, this checkout against another
revision, in alternating rounds.

The machine is shared and its speed drifts (the same run took 4.8 s and
9.7 s an hour apart): medians of runs taken at different times compare
the machine, not the code.  So each round runs the revision's checkout,
then this one, on the same input (this checkout's fixtures: an older
revision may lack some), and the table gives each round's times, the
medians, and the ratio of this checkout to the revision, per round and of
the medians.  The revision is checked out in a temporary ``git
worktree``, removed at the end.

It also says whether the two give the same report: the JSON reports
parsed, with each checkout's own path in its shims' file names taken
out.  A change that claims to leave the verdicts and counterexamples
alone shows "same" here.

Usage: python bench/ab.py REVISION [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from fixtures import ROOT
from targets import FORMS_CHECK, run, trees


def _report(stdout: str, tree: Path):
    """The JSON report of a run, its checkout's own files (the shims) named
    apart from the checkout (the fixtures checked are this checkout's for
    both)."""
    return json.loads(stdout.replace(str(tree / "grammar"), "<checkout>/grammar"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tdxproof-ab-") as scratch:
        other = Path(scratch) / "checkout"
        added = subprocess.run(["git", "worktree", "add", "--detach", str(other), options.revision],
                               cwd=ROOT, capture_output=True, text=True)
        if added.returncode:
            print(f"bench/ab.py: cannot check out {options.revision!r}: {added.stderr.strip()}", file=sys.stderr)
            return 2
        try:
            files = [f for group in trees(Path(scratch) / "fixtures").values() for f in group]
            rounds = [(run(FORMS_CHECK + files, other), run(FORMS_CHECK + files, ROOT))
                      for _ in range(options.rounds)]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, capture_output=True)
    same = all(_report(theirs.stdout, other) == _report(ours.stdout, ROOT) for theirs, ours in rounds)
    print(f"forms run, {options.revision} against this checkout, {options.rounds} alternating rounds")
    print(f"{'round':>5}  {'wall s':>7} {'CPU s':>7}  {'wall s':>7} {'CPU s':>7}  {'ratio':>5}")
    for number, (theirs, ours) in enumerate(rounds, 1):
        print(f"{number:>5}  {theirs.wall:7.2f} {theirs.cpu:7.2f}  {ours.wall:7.2f} {ours.cpu:7.2f}  "
              f"{ours.wall / theirs.wall:5.2f}")
    medians = [statistics.median(getattr(r[side], what) for r in rounds) for side in (0, 1) for what in ("wall", "cpu")]
    print(f"{'median':>6} {medians[0]:7.2f} {medians[1]:7.2f}  {medians[2]:7.2f} {medians[3]:7.2f}  "
          f"{medians[2] / medians[0]:5.2f}   (CPU {medians[3] / medians[1]:.2f})")
    print(f"columns: {options.revision} (wall, CPU), this checkout (wall, CPU), wall ratio this / {options.revision}")
    print(f"reports: {'same' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
