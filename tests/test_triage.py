"""Accepted findings (proofs/triage.py): a CI baseline and a tree's
suppressions decide what the exit status counts, on a real refutation
(broken/pop_order_swapped.S restores R14 and R15 from each other's slot)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import run_in_process

FIXTURE = Path(__file__).parent / "fixtures" / "broken" / "pop_order_swapped.S"
FUNCTION = "__seamcall_saved_ret"


@pytest.fixture
def tree(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "a.S")
    return tmp_path


def _check(tree: Path, *options: str) -> tuple[int, str, str]:
    return run_in_process(["check", str(tree / "a.S"), "--property", "callee-saved", "--jobs", "1", *options], 300)


def _baseline(tree: Path) -> tuple[Path, dict]:
    path = tree / "base.json"
    status, _, _ = _check(tree, "--json", str(path))
    assert status == 1
    return path, json.loads(path.read_text())


def _refuted(report: dict) -> list[tuple[str, str]]:
    return [(r["config"], o["detail"]) for r in report["results"] for o in r["obligations"] if o["status"] == "refuted"]


def test_a_run_against_its_own_baseline_has_no_new_finding(tree):
    path, report = _baseline(tree)
    assert _refuted(report) == [("default", "r14"), ("default", "r15")]
    status, out, _ = _check(tree, "--baseline", str(path), "--json", str(tree / "again.json"))
    assert status == 0
    assert not any(line.startswith("REFUTED ") for line in out.splitlines())   # listed, not detailed
    assert "Accepted findings, not counted in the exit status (2):" in out
    again = json.loads((tree / "again.json").read_text())
    assert [o.get("accepted") for r in again["results"] for o in r["obligations"] if o["status"] == "refuted"] \
        == ["in the baseline", "in the baseline"]


@pytest.mark.parametrize("was", ["proved", "unknown"])
def test_a_finding_worse_than_in_the_baseline_is_new(tree, was):
    path, report = _baseline(tree)
    for obligation in report["results"][0]["obligations"]:
        if obligation["detail"] == "r15":
            obligation["status"] = was
    path.write_text(json.dumps(report))
    status, out, _ = _check(tree, "--baseline", str(path))
    assert status == 1
    assert "REFUTED callee-saved (r15) of" in out and "Accepted findings, not counted in the exit status (1):" in out


def test_a_baseline_of_other_paths_accepts_nothing(tree):
    path, report = _baseline(tree)
    for result in report["results"]:
        result["file"] = "elsewhere/a.S"
    path.write_text(json.dumps(report))
    assert _check(tree, "--baseline", str(path))[0] == 1


def _suppress(tree: Path, **keys: str) -> None:
    body = "".join(f'{key} = "{value}"\n' for key, value in keys.items())
    (tree / "tdxproof.toml").write_text(f'[[suppress]]\nfunction = "{FUNCTION}"\nproperty = "callee-saved"\n{body}')


def test_a_suppression_accepts_what_it_names_with_its_reason(tree):
    _suppress(tree, reason="swapped on purpose in this test")
    status, out, err = _check(tree, "--json", str(tree / "r.json"))
    assert status == 0 and "WARNING" not in err
    assert "REFUTED callee-saved (r14) of __seamcall_saved_ret [default]: suppressed at " in out
    assert out.count("swapped on purpose in this test") == 2
    accepted = [o["accepted"] for r in json.loads((tree / "r.json").read_text())["results"]
                for o in r["obligations"] if o["status"] == "refuted"]
    assert len(accepted) == 2 and all(text.endswith("tdxproof.toml:1:1: swapped on purpose in this test")
                                      for text in accepted)


def test_a_suppression_of_one_register_leaves_the_other(tree):
    _suppress(tree, detail="r14", reason="known")
    status, out, _ = _check(tree)
    assert status == 1
    assert "REFUTED callee-saved (r15) of" in out and "Accepted findings, not counted in the exit status (1):" in out


def test_a_suppression_that_accepts_nothing_is_a_warning(tree):
    _suppress(tree, config="CONFIG_FRAME_POINTER=y", reason="only with frame pointers")
    status, _, err = _check(tree)
    assert status == 1
    assert "WARNING: suppression at " in err and "accepts no finding of this run" in err


def test_the_sarif_log_marks_accepted_findings(tree):
    from test_sarif import assert_valid       # the official 2.1.0 schema check
    path, _ = _baseline(tree)
    _suppress(tree, detail="r14", reason="known")
    status, _, _ = _check(tree, "--baseline", str(path), "--sarif", str(tree / "log.sarif"))
    assert status == 0
    log = json.loads((tree / "log.sarif").read_text())
    assert_valid(log)
    marks = {r["properties"]["detail"]: (r.get("suppressions"), r.get("baselineState"))
             for r in log["runs"][0]["results"]}
    assert marks["r15"] == (None, "unchanged")
    assert marks["r14"][0][0]["justification"].endswith(": known") and marks["r14"][0][0]["status"] == "accepted"
