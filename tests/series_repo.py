"""The git repository of the series fixture (``tests/fixtures/series``):
one commit per line of its ``series.txt``, each step's directory copied
over the tree before its commit."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SERIES = Path(__file__).resolve().parent / "fixtures" / "series"


def steps() -> list[tuple[str, str]]:
    """(directory, subject) of each step, oldest first."""
    found = []
    for line in (SERIES / "series.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            directory, subject = line.split(None, 1)
            found.append((directory, subject.strip()))
    return found


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def build(repo: Path, upto: int | None = None) -> list[str]:
    """The repository at ``repo`` (made), the first ``upto`` steps (all by
    default) committed; the commits' hashes, oldest first."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    hashes = []
    for directory, subject in steps()[:upto]:
        # shutil.copy, not copy2: a file of the same size and mtime would look unchanged to git
        shutil.copytree(SERIES / directory, repo, dirs_exist_ok=True, copy_function=shutil.copy)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=tdxproof", "-c", "user.email=tdxproof@example.org", "commit", "-q",
            "--date=2024-01-01T00:00:00Z", "-m", subject)
        hashes.append(git(repo, "rev-parse", "HEAD").strip())
    return hashes
