"""``tdxproof check`` end to end: exit statuses, the config matrix, JSON
determinism across ``--jobs``, SARIF 2.1.0, counterexample files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proofs.cli import main

SOURCE = """\
#include <linux/linkage.h>
#include <asm/frame.h>
SYM_FUNC_START(good)
\tFRAME_BEGIN
\tpushq %rbx
\tmovq $1, %rbx
\tpopq %rbx
\tFRAME_END
\tRET
SYM_FUNC_END(good)
SYM_FUNC_START(bad)
\tmovq $1, %r12
\tRET
SYM_FUNC_END(bad)
"""

QUICK = ["--property", "callee-saved", "--property", "stack-balance"]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "f.S"
    path.write_text(SOURCE)
    return path


def test_exit_statuses(source, capsys):
    assert main(["check", str(source), "--function", "good", *QUICK]) == 0
    assert main(["check", str(source), "--function", "bad", *QUICK]) == 1
    out = capsys.readouterr().out
    assert "REFUTED callee-saved (r12) of bad" in out and "concrete replay confirms" in out
    assert main(["check", str(source), "--function", "nosuch"]) == 2
    assert main(["check", str(source), "--property", "nosuch"]) == 2
    assert "unknown property" in capsys.readouterr().err


def test_unknown_is_exit_3(tmp_path):
    path = tmp_path / "u.S"
    path.write_text("#include <linux/linkage.h>\nSYM_FUNC_START(u)\n\tjmp *%rax\nSYM_FUNC_END(u)\n")
    assert main(["check", str(path), *QUICK]) == 3


def test_tdcall_may_fault_makes_an_unguarded_tdcall_unhandled(tmp_path, capsys):
    path = tmp_path / "t.S"
    path.write_text("#include <linux/linkage.h>\nSYM_FUNC_START(t)\n\tmovq %rdi, %rax\n"
                    "\ttdcall\n\tRET\nSYM_FUNC_END(t)\n")
    handled = ["check", str(path), "--property", "fault-handled"]
    assert main(handled) == 0                          # TDCALL completes by default
    assert main(handled + ["--tdcall-may-fault"]) == 1
    assert "REFUTED fault-handled" in capsys.readouterr().out


def test_matrix_rows_and_json(source, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    main(["check", str(source), "--matrix", "CONFIG_FRAME_POINTER", *QUICK, "--json", str(out_json)])
    text = capsys.readouterr().out
    assert "\ngood\n  [CONFIG_FRAME_POINTER=y]" in text and "bad [CONFIG_FRAME_POINTER=n]" in text
    report = json.loads(out_json.read_text())
    assert set(report) == {"tool", "version", "summary", "assumptions", "results"}
    rows = {(r["function"], r["config"]) for r in report["results"]}
    assert rows == {(f, f"CONFIG_FRAME_POINTER={v}") for f in ("good", "bad") for v in "yn"}
    statuses = {(r["function"], r["config"], o["property"], o["detail"]): o["status"]
                for r in report["results"] for o in r["obligations"]}
    assert statuses[("bad", "CONFIG_FRAME_POINTER=y", "callee-saved", "r12")] == "refuted"
    assert statuses[("good", "CONFIG_FRAME_POINTER=y", "callee-saved", "rbp")] == "proved"
    assert report["summary"] == {status: list(statuses.values()).count(status)
                                 for status in ("proved", "refuted", "unknown")}
    assert "%d proved, %d refuted, %d unknown obligations" % tuple(report["summary"].values()) in text


def test_json_is_the_same_whatever_jobs(source):
    def run(jobs):
        return subprocess.run([sys.executable, "-m", "proofs.cli", "check", str(source), "--matrix",
                               "CONFIG_FRAME_POINTER", *QUICK, "--json", "--jobs", str(jobs)],
                              capture_output=True, check=False).stdout
    one, two = run(1), run(2)
    assert one and one == two


BROKEN = Path(__file__).parent / "fixtures" / "broken"


def test_counterexamples_are_the_same_bytes_whatever_jobs():
    # Refuted wrappers of the broken tree (and a second file group), every
    # property, both frame-pointer settings: the same bytes with --jobs 1
    # and 2 (the report has no solver seconds without --timings).
    files = [str(BROKEN / name) for name in ("callee_saved_scratch.S", "missing_scrub.S",
                                              "store_outside_struct.S")]
    files.append(str(BROKEN.parent / "variants" / "stack_args.S"))

    def run(jobs):
        done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", *files, "--abi", "unified",
                               "--matrix", "CONFIG_FRAME_POINTER", "--json", "-", "--jobs", str(jobs)],
                              capture_output=True, check=False, text=True)
        assert done.returncode == 1, done.stderr
        return done.stdout
    one, two = run(1), run(2)
    assert one == two
    report = json.loads(one)
    assert [(r["function"], r["config"]) for r in report["results"]] == [
        (name, f"CONFIG_FRAME_POINTER={value}")
        for name in ("__seamcall", "__seamcall_saved_ret", "__tdcall_ret", "__seamcall_stack_args")
        for value in "yn"]
    assert sum(1 for r in report["results"] for o in r["obligations"] if "counterexample" in o) >= 6


def test_sarif_and_counterexample_files(source, tmp_path):
    sarif_path, cex_dir = tmp_path / "r.sarif", tmp_path / "cex"
    assert main(["check", str(source), *QUICK, "--sarif", str(sarif_path), "--cex-dir", str(cex_dir)]) == 1
    sarif = json.loads(sarif_path.read_text())
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert run["tool"]["driver"]["name"] == "tdxproof"
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    [finding] = run["results"]
    assert finding["ruleId"] == "callee-saved" and rule_ids[finding["ruleIndex"]] == "callee-saved"
    assert finding["level"] == "error"
    region = finding["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"].endswith("f.S")
    assert SOURCE.splitlines()[region["region"]["startLine"] - 1].strip() == "movq $1, %r12"    # the culprit
    [checked] = finding["relatedLocations"]
    assert checked["message"]["text"] == "checked here"
    assert SOURCE.splitlines()[checked["physicalLocation"]["region"]["startLine"] - 1].strip() == "RET"
    [cex_file] = cex_dir.iterdir()
    cex = json.loads(cex_file.read_text())
    for key in ("property", "detail", "path", "entry", "memory", "tdx", "expected", "actual"):
        assert key in cex
    assert cex["entry"]["registers"]["r12"] != cex["actual"]
    assert cex["actual"] == "0x1" and cex["confirmed"]


SAVE_REGISTERS = """\
.text
.globl save_regs
.type save_regs, @function
save_regs:
\tpopq %rsi
\tmovq %rbx, (%rdi)
\tmovq %rsp, 0x8(%rdi)
\tpushq %rsi
\tmovq %rbp, 0x10(%rdi)
\tmovq %rsi, 0x18(%rdi)
\txorl %eax, %eax
\tret
.size save_regs, .-save_regs
"""
"""A setjmp-like function (the shape of arch/x86/um/setjmp_64.S): stores
through its argument between popping and pushing back its return address."""


def test_a_store_through_an_argument_never_lands_on_the_return_address(tmp_path, capsys):
    # The stated assumption (memory through a pointer other than RSP is off
    # this function's frame and return-address slot) holds in the proof too:
    # the real setjmp was refuted by a model whose RDI pointed just below
    # the return address.
    source = tmp_path / "setjmp.S"
    source.write_text(SAVE_REGISTERS)
    assert main(["check", str(source), "--property", "return-address", "--property", "callee-saved",
                 "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {o["status"] for o in report["results"][0]["obligations"]} == {"proved"}
    assert ("memory reached through a pointer other than RSP lies outside this function's stack frame and its "
            "return-address slot") \
        in report["assumptions"]
