"""The shipped fixtures as the benchmarks read them: where they are, and
the ``.S`` files of a tree that are checked (not the macro file
``tdxcall.S``, which the others include)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MACRO_FILES = frozenset({"tdxcall.S"})
SERIES_STEPS = "series"
"""The fixture directory of a patch series' steps: each step holds only the
files its commit changes, so it is no tree to check on its own
(``bench/series.py`` builds the git repository and runs ``series``)."""


def checked_files(directory: Path) -> list[Path]:
    """The ``.S`` files under ``directory`` that a check names, sorted."""
    return sorted(p for p in directory.rglob("*.S") if p.name not in MACRO_FILES)
