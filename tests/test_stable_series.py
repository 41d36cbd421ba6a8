"""``series --json`` is the same bytes for the same repository and range
(issue 13): no per-step seconds but with ``--timings`` (a list apart), and
source paths as ``REV:path`` in the repository, not the temporary trees
the steps were read into (gone by the time the report is read)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import series_repo  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEMPORARY = "tdxproof-series-"
"""The temporary trees' prefix (:func:`proofs.series.run_step`)."""


def _series(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofs.cli", "series", *args], cwd=cwd, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("series") / "linux"
    series_repo.build(path)
    return path


def test_two_runs_give_the_same_bytes_with_sources_in_the_repository(repo, tmp_path):
    first = _series("--repo", str(repo), "HEAD~10..HEAD", "--json", cwd=tmp_path)
    second = _series("--repo", str(repo), "HEAD~10..HEAD", "--json", cwd=tmp_path)
    assert first.returncode == second.returncode == 1, first.stderr
    assert first.stdout == second.stdout
    assert TEMPORARY not in first.stdout and "seconds" not in first.stdout
    revisions = {line.split()[0] for line in series_repo.git(repo, "log", "--format=%H").splitlines()}
    shown = set(re.findall(r'"([0-9a-f]{12}):(arch/[^":]+)', first.stdout))
    assert shown and all((repo / path).is_file() for _, path in shown)
    assert {revision for revision, _ in shown} <= {revision[:12] for revision in revisions}
    assert all(f"{revision}:{path}" in first.stdout for revision, path in shown)


def test_timings_apart(repo, tmp_path):
    timed = _series("--repo", str(repo), "HEAD~2..HEAD", "--json", "--timings", cwd=tmp_path)
    plain = _series("--repo", str(repo), "HEAD~2..HEAD", "--json", cwd=tmp_path)
    report = json.loads(timed.stdout)
    timings = report.pop("timings")
    assert report == json.loads(plain.stdout)
    assert [t["commit"] for t in timings] == [s["commit"] for s in report["steps"]]
    assert all(isinstance(t["seconds"], float) and t["seconds"] >= 0 for t in timings)
    done = _series("--repo", str(repo), "HEAD~2..HEAD", "--timings", cwd=tmp_path)
    assert done.returncode == 2 and "--timings" in done.stderr and "Traceback" not in done.stderr
