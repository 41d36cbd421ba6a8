"""tdxproof series: a git range checked step by step (proofs/series.py,
proofs/semantic_diff.py), on the series of tests/fixtures/series (one
commit per step, built into a repository of its own by tests/series_repo.py)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import series_repo  # noqa: E402

from proofs.outcomes import Equivalence  # noqa: E402
from proofs.series import DEFAULT_PATHS, SeriesOptions, run_series, text_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT, DIFFERENT = Equivalence.EQUIVALENT, Equivalence.DIFFERENT


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("series") / "linux"
    series_repo.build(path)
    return path


@pytest.fixture(scope="module")
def steps(repo):
    found = run_series(str(repo), "HEAD~10..HEAD", DEFAULT_PATHS, SeriesOptions(jobs=2))
    return {subject: step for step, (_, subject) in zip(found, series_repo.steps()[1:])}


def _functions(steps, subject):
    return {f.name: f for f in steps[subject].functions}


def test_every_commit_of_the_range_is_a_step_oldest_first(steps):
    assert list(steps) == [subject for _, subject in series_repo.steps()[1:]]


@pytest.mark.parametrize("subject, function, before", [
    ("x86/tdx: load RAX after the argument shuffle", "__seamcall", None),
    ("x86/tdx: load RAX after the argument shuffle", "__tdx_module_call", None),
    ("x86/tdx: rename __tdx_module_call() to __tdcall()", "__tdcall", "__tdx_module_call"),
    ("x86/tdx: pass TDCALL/SEAMCALL arguments in struct tdx_module_args", "__tdcall_ret", "__tdcall"),
    ("x86/virt/tdx: rename __seamcall() to __seamcall_ret()", "__seamcall_ret", "__seamcall"),
    ("x86/virt/tdx: keep RBX and R12 across the SEAMCALL", "__seamcall_ret", None),
])
def test_behaviour_preserving_steps_are_proved_equivalent(steps, subject, function, before):
    step = _functions(steps, subject)[function]
    assert (step.equivalence, step.before, step.diff) == (EQUIVALENT, before, None)


def test_arguments_moved_into_a_struct_are_compared_under_the_contracts_mapping(steps):
    step = _functions(steps, "x86/tdx: pass TDCALL/SEAMCALL arguments in struct tdx_module_args")["__tdcall_ret"]
    assert step.mapping == "contract mapping (__tdcall [legacy] -> __tdcall_ret [unified])"
    for line in ("left.rsi == right.args.rcx", "left.rdx == right.args.rdx", "left.rcx == right.args.r8",
                 "left.r8 == right.args.r9", "left.out == right.args",
                 "the module (tdcall) reads only RAX, RCX, RDX, R8, R9"):
        assert line in step.mapping_lines


@pytest.mark.parametrize("subject, function, lines", [
    ("x86/virt/tdx: handle SEAMCALL #UD and #GP", "__seamcall",
     ["on the #UD path: was a kernel oops, now returns with RAX = TDX_SEAMCALL_UD",
      "on the #GP path: was a kernel oops, now returns with RAX = TDX_SEAMCALL_GP"]),
    ("x86/tdx: pass TDCALL/SEAMCALL arguments in struct tdx_module_args", "__seamcall",
     ["args->rcx, args->rdx, args->r8, args->r9, args->r10, args->r11 are no longer written on completion "
      "(was the module's RCX, RDX, R8, R9, R10, R11)"]),
    ("x86/virt/tdx: write the SEAMCALL outputs back to the struct", "__seamcall",
     ["args->rcx, args->rdx, args->r8, args->r9, args->r10, args->r11 are now written on completion "
      "(now the module's RCX, RDX, R8, R9, R10, R11)"]),
    ("x86/virt/tdx: tidy the epilogue", "__seamcall_ret",
     ["RBX is no longer restored on every path (now entry R12)",
      "R12 is no longer restored on every path (now entry RBX)"]),
    ("x86/virt/tdx: restore RBX and R12 in the right order", "__seamcall_ret",
     ["RBX is now restored on every path (was entry R12)", "R12 is now restored on every path (was entry RBX)"]),
])
def test_other_steps_get_the_diff_a_reviewer_expects(steps, subject, function, lines):
    step = _functions(steps, subject)[function]
    assert step.equivalence is DIFFERENT
    assert step.diff.lines() == lines
    assert step.diff.unknown == []
    for difference in step.diff.differences:
        assert difference.counterexample["confirmed"], difference.subject


def test_a_step_that_changes_what_the_caller_sees_diffs_the_summaries(steps):
    """The swapped restore, as the two functions' frame specifications say it."""
    step = _functions(steps, "x86/virt/tdx: tidy the epilogue")["__seamcall_ret"]
    assert step.summary_diff == [
        "RBX: was unchanged on completion, VMfailInvalid, #UD and #GP, now the entry R12",
        "R12: was unchanged on completion, VMfailInvalid, #UD and #GP, now the entry RBX"]
    faults = _functions(steps, "x86/virt/tdx: handle SEAMCALL #UD and #GP")["__seamcall"]
    assert "#UD: a new outcome (now 1 path(s), returned)" in faults.summary_diff
    preserved = _functions(steps, "x86/virt/tdx: keep RBX and R12 across the SEAMCALL")["__seamcall_ret"]
    assert preserved.summary_diff == []


def test_the_check_runs_on_every_changed_function(steps):
    verdicts = {subject: {f.name: f.check_verdict() for f in step.functions} for subject, step in steps.items()}
    assert verdicts["x86/tdx: load RAX after the argument shuffle"]["__seamcall"] == "REFUTED fault-handled"
    assert verdicts["x86/virt/tdx: handle SEAMCALL #UD and #GP"]["__seamcall"].startswith("proved")
    assert verdicts["x86/virt/tdx: tidy the epilogue"]["__seamcall_ret"] == \
        "REFUTED callee-saved rbx, callee-saved r12"
    assert verdicts["x86/virt/tdx: say who calls __seamcall_ret()"] == {}


def test_the_table_has_a_row_per_step_and_function(steps):
    text = text_report(list(steps.values()))
    table = text[text.index("commit  "):].splitlines()
    assert len(table) == 2 + sum(max(1, len(step.functions)) for step in steps.values())
    assert "REFUTED callee-saved rbx, callee-saved r12  DIFFERENT    RBX is no longer restored on every path " \
           "(now entry R12) (+1 more)" in text


def _tdxproof(*args, cwd):
    return subprocess.run([sys.executable, "-m", "proofs.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_cli_json_exit_status_and_the_checkout_untouched(repo, tmp_path):
    head = series_repo.git(repo, "rev-parse", "HEAD")
    (repo / "arch/x86/coco/tdx/tdcall.S").write_text("/* a local edit */\n")
    done = _tdxproof("series", "--repo", str(repo), "HEAD~4..HEAD~2", "arch/x86/virt/vmx/tdx/seamcall.S",
                     "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [s["subject"] for s in report["steps"]] == ["x86/virt/tdx: keep RBX and R12 across the SEAMCALL",
                                                        "x86/virt/tdx: tidy the epilogue"]
    assert [s["exit_status"] for s in report["steps"]] == [0, 1]
    assert report["steps"][1]["functions"][0]["diff"]["lines"][0] == \
        "RBX is no longer restored on every path (now entry R12)"
    assert done.stderr == ""                       # no progress off a terminal
    assert series_repo.git(repo, "rev-parse", "HEAD") == head
    assert series_repo.git(repo, "status", "--porcelain") == " M arch/x86/coco/tdx/tdcall.S\n"
    assert len(series_repo.git(repo, "worktree", "list").splitlines()) == 1
    series_repo.git(repo, "checkout", "--", ".")


def test_bad_input_is_exit_2(repo, tmp_path):
    assert _tdxproof("series", "HEAD~1..HEAD", cwd=tmp_path).returncode == 2
    done = _tdxproof("series", "--repo", str(repo), "HEAD..HEAD", cwd=tmp_path)
    assert done.returncode == 2 and "no commit of HEAD..HEAD touches" in done.stderr
    done = _tdxproof("series", "--repo", str(repo), "HEAD~1..HEAD", "../etc/passwd", cwd=tmp_path)
    assert done.returncode == 2 and "inside it" in done.stderr


def test_a_step_that_does_not_assemble_is_its_own_error(tmp_path):
    repo = tmp_path / "linux"
    series_repo.build(repo, upto=2)
    seamcall = repo / "arch/x86/virt/vmx/tdx/seamcall.S"
    seamcall.write_text(seamcall.read_text().replace("FRAME_END", "FRAME_END\n\tmovq\t%rax, %%rbx"))
    series_repo.git(repo, "commit", "-qam", "broken")
    seamcall.write_text(seamcall.read_text().replace("\n\tmovq\t%rax, %%rbx", ""))
    series_repo.git(repo, "commit", "-qam", "fixed")
    done = _tdxproof("series", "--repo", str(repo), "HEAD~3..HEAD", cwd=tmp_path)
    assert done.returncode == 2
    assert "NOT CHECKED" in done.stdout and "seamcall.S" in done.stderr
    # named where it is in the repository (REV:path), not in the step's deleted temporary tree
    where = series_repo.git(repo, "rev-parse", "HEAD~1").strip()[:12] + ":arch/x86/virt/vmx/tdx/seamcall.S:"
    assert where in done.stdout and where in done.stderr and "tdxproof-series-" not in done.stdout + done.stderr
    assert done.stdout.count("EQUIVALENT") >= 2       # the steps before and after are judged
