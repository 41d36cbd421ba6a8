"""Findings: each broken fixture's default text report, byte for byte
(tests/golden/broken/NAME.txt; :data:`OPTIONS` for the one whose bug
needs a kernel option), and the culprit each refutation is
located at (the buggy line the fixture's comments name).

Each report comes from a process of its own, as a user runs it (Z3's
models depend on what the process solved before).  The repository's own
path, which shim-header locations carry, reads ``$ROOT`` in the golden
files.  After a change that moves report bytes on purpose, regenerate:

    TDXPROOF_UPDATE_GOLDEN=1 python -m pytest -q tests/test_findings.py

and review the diff (``git diff tests/golden``).
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT

BROKEN = sorted(path.stem for path in (FIXTURES / "broken").glob("*.S"))
GOLDEN = ROOT / "tests" / "golden" / "broken"
UPDATE = os.environ.get("TDXPROOF_UPDATE_GOLDEN") == "1"

CULPRITS = {
    "backport_hypercall_returns_status": {"r10-to-rax": 65},      # the TDCALL: RAX keeps its status (no-output path)
    "callee_saved_scratch": {"callee-saved": 34},                 # movq $TDX_SW_ERROR, %r12
    "dropped_r10_to_rax": {"r10-to-rax": 39},                     # the TDCALL (movq %r10, %rax missing at 44)
    "fault_path_missing_pop": {"callee-saved": 71,                # the first pop that reads the wrong slot
                               "stack-balance": 87},              # jmp .Lout: skips the missing pop
    "fixup_jmp_deleted": {"no-fallthrough": 45},                  # the last instruction before the deleted jmp
    "hypercall_flags_wrong_slot": {"output-marshalling": 50},     # jz .Lout, testing the wrong slot (49)
    "hypercall_r10_r15_outputs_always": {"output-marshalling": 45},   # the first unconditional store
    "missing_extable": {"fault-handled": 39},                     # seamcall without an extable entry
    "missing_scrub": {"scrub": 39},                               # seamcall: R9's value is the module's
    "module_call_version_shift": {"input-marshalling": 22},       # orq %rdi, %rax after the wrong shift (21)
    "output_wrong_field": {"output-marshalling": 53},             # the two swapped stores, 53 and 54
    "pop_order_swapped": {"callee-saved": 68},                    # popq %r14, the swapped pop
    "ret_deleted": {"no-fallthrough": 36},                        # the last instruction, RET deleted after it
    "seamcall_eight_inputs_r13_missing": {"input-marshalling": 34},   # seamcall: R13 never loaded
    "seamcall_io_without_frame_offset": {"input-marshalling": 33},    # the first load that forgets FRAME_OFFSET
    "seamcall_saved_wrong_field": {"input-marshalling": 33},      # the load from the wrong field
    "store_below_rsp": {"no-red-zone": 17},                       # movq %r9, -8(%rsp)
    "store_outside_struct": {"frame": 30,                         # movq %r11, -8(%rsi)
                             "output-marshalling": 32},           # the ret: args->r11 is never written
    "tdcall_hypercall_no_scrub": {"scrub": 39},                   # the TDCALL: nothing clears its outputs
    "tdcall_six_arguments_r9_overwritten": {"input-marshalling": 25},  # mov %r8, %r9 after R8 was overwritten
    "wrong_fault_constant": {"fault-codes": 81},                  # orq %rdi, %rax with TDX_ERROR (80)
    "wrong_vmfailinvalid_constant": {"vmfailinvalid-code": 77},   # mov $TDX_SW_ERROR, %rax
}
"""The line each property's finding is located at, per broken fixture."""
OPTIONS = {"seamcall_io_without_frame_offset": ("--config", "CONFIG_FRAME_POINTER=y")}
"""A fixture whose bug shows only in another configuration than the default one."""

ERROR = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): error: (?P<function>[^:]+): (?P<property>[a-z0-9-]+): ")


@functools.cache
def _check(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofs.cli", "check", *arguments], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)


def _report(name: str) -> str:
    run = _check(*OPTIONS.get(name, ()), f"tests/fixtures/broken/{name}.S")
    assert run.returncode == 1, run.stderr
    return run.stdout.replace(str(ROOT), "$ROOT")


def test_every_catalog_property_has_its_finding_words():
    """A property added to the catalog says what broke in its one-line
    finding and labels what its block compares (no empty text)."""
    from proofs.properties import CATALOG
    from proofs.report import _COMPARED, _SUMMARIES
    assert [pid for pid in CATALOG if not _SUMMARIES.get(pid)] == []
    assert [pid for pid in CATALOG if not _COMPARED.get(pid)] == []


def test_every_broken_fixture_has_its_culprits_listed():
    assert sorted(CULPRITS) == BROKEN


@pytest.mark.parametrize("name", BROKEN)
def test_golden_text_report(name):
    golden = GOLDEN / f"{name}.txt"
    text = _report(name)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.read_text() == text, f"regenerate with TDXPROOF_UPDATE_GOLDEN=1 (see {__name__}'s docstring)"


@pytest.mark.parametrize("name", BROKEN)
def test_culprit_is_the_buggy_line(name):
    located: dict[str, set[int]] = {}
    for line in _report(name).splitlines():
        match = ERROR.match(line)
        if match:
            assert match["file"] == f"tests/fixtures/broken/{name}.S"
            located.setdefault(match["property"], set()).add(int(match["line"]))
    assert located == {pid: {line} for pid, line in CULPRITS[name].items()}


def test_one_finding_per_cause():
    """The six callee-saved registers one missing pop clobbers (five
    without a frame pointer) are one finding; its summary names them."""
    report = _report("fault_path_missing_pop")
    errors = [line for line in report.splitlines() if ERROR.match(line)]
    assert len(errors) == 2
    assert "callee-saved: RBX, R12, R13, R14, R15 modified on the VMfailInvalid path" in errors[0]
    assert "6 refuted obligations in 2 findings" in report
    assert report.count("\nREFUTED ") == 2


def test_frame_pointer_culprit_is_frame_end_in_the_users_file():
    """FRAME_END's pop is in the shipped shim header; the finding is where
    the user's file invokes it."""
    run = _check("--config", "CONFIG_FRAME_POINTER=y", "tests/fixtures/broken/fault_path_missing_pop.S")
    lines = [line for line in run.stdout.splitlines() if ": frame-pointer: " in line]
    assert lines and lines[0].startswith("tests/fixtures/broken/fault_path_missing_pop.S:76:2: error: ")
    assert "callee-saved: RBX, RBP, R12, R13, R14, R15 modified" in run.stdout


def test_verbose_lists_each_obligation_and_trace_prints_every_step():
    default, verbose, whole = (_check(*options, "tests/fixtures/broken/pop_order_swapped.S").stdout
                               for options in ((), ("-v",), ("--trace",)))
    assert "  r14: R14 at return: " in verbose and "  r15: R15 at return: " in verbose
    assert "  r15: " not in default
    assert "... " in default and " steps ..." in default and " steps ..." not in whole
    steps = int(re.search(r"trace \((\d+) steps", whole)[1])
    block = whole[whole.index("trace ("):]
    assert len([line for line in block.splitlines() if line.startswith("    tests/")]) == steps


def test_sarif_result_is_at_the_culprit(tmp_path):
    sarif = tmp_path / "out.sarif"
    _check("--sarif", str(sarif), "tests/fixtures/broken/pop_order_swapped.S")
    results = json.loads(sarif.read_text())["runs"][0]["results"]
    lines = {r["properties"]["detail"]: r["locations"][0]["physicalLocation"]["region"]["startLine"]
             for r in results}
    assert lines == {"r14": 68, "r15": 69}
    related = results[0]["relatedLocations"]
    assert [(r["message"]["text"], r["physicalLocation"]["region"]["startLine"]) for r in related] \
        == [("checked here", 74)]
