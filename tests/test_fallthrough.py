"""Falling off the end of a wrapper, end to end: ``tdxproof check`` refutes
``no-fallthrough`` with a counterexample that the concrete replay confirms
and that ``tdxproof replay`` reproduces on the CPU; a store into code is
unknown, never proved.

The fixtures are the real unified wrapper shapes with one line deleted:
``broken/ret_deleted.S`` (``__tdcall_ret`` without its ``RET``, followed by
``__tdcall``) and ``broken/fixup_jmp_deleted.S`` (``__seamcall_ret`` whose
out-of-line failure code lost its ``jmp .Lout``), each under both
``CONFIG_FRAME_POINTER`` settings; and a jump to a code label outside
every function.  A jump into code marked ``SYM_CODE_START`` ...
``SYM_CODE_END`` is followed instead (the kernel's THUNK wrappers).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from expectations import FIXTURES
from model.native import native_available
from proofs.cli import main

native = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

CASES = [
    # fixture, function, the line the path leaves from (without, with a frame pointer: FRAME_END's
    # pop), the TDX outcomes of the path
    ("broken/ret_deleted.S", "__tdcall_ret", {"n": 36, "y": 37}, ["completion"]),
    ("broken/fixup_jmp_deleted.S", "__seamcall_ret", {"n": 45, "y": 45}, ["vmfailinvalid"]),
]


def _fixture_line(source: dict) -> int:
    """The fixture line of a source location (the outermost macro use, if any)."""
    if not source["expansion"]:
        return source["line"]
    return int(source["expansion"][0].rsplit(":", 2)[1])


def _check(tmp_path: Path, fixture: str, function: str, frame_pointer: str, capsys) -> tuple[int, str, dict]:
    directory = tmp_path / f"cex-{frame_pointer}"
    status = main(["check", str(FIXTURES / fixture), "--function", function, "--abi", "unified",
                   f"--config=CONFIG_FRAME_POINTER={frame_pointer}", "--cex-dir", str(directory)])
    out = capsys.readouterr().out
    files = {json.loads(path.read_text())["property"]: path for path in directory.glob("*.json")}
    return status, out, files


@native
@pytest.mark.parametrize("frame_pointer", ["n", "y"])
@pytest.mark.parametrize("fixture, function, lines, outcomes", CASES)
def test_a_wrapper_that_runs_off_its_end_is_refuted_and_reproduces(fixture, function, lines, outcomes,
                                                                   frame_pointer, tmp_path, capsys):
    line = lines[frame_pointer]
    status, out, files = _check(tmp_path, fixture, function, frame_pointer, capsys)
    assert status == 1
    assert set(files) == {"no-fallthrough"}        # nothing else is refuted, nothing wrongly proved
    cex = json.loads(files["no-fallthrough"].read_text())
    assert cex["confirmed"] and cex["end"] == "fallthrough"
    assert _fixture_line(cex["where"]) == line and cex["path"][-1] == cex["where"]
    assert [event["outcome"] for event in cex["tdx"]] == outcomes
    assert cex["actual"].startswith(f"execution goes past the end of '{function}' into what follows it")
    assert f"REFUTED no-fallthrough of {function}" in out
    assert "path ends: fallthrough (leaves the function's code after " in out
    assert f"{FIXTURES / fixture}:{line}" in out.split("path ends: fallthrough")[1].splitlines()[0]
    [unknown] = [line for line in out.splitlines() if line.startswith("UNKNOWN ")]     # one reason: one line
    assert unknown.startswith("UNKNOWN callee-saved (rbx, ") and ", stack-balance, " in unknown
    assert main(["replay", str(files["no-fallthrough"])]) == 0
    replayed = capsys.readouterr().out
    assert "the CPU agrees with the model's prediction" in replayed
    assert f"fallthrough (past the end of '{function}')" in replayed
    assert replayed.rstrip().endswith("REPRODUCED") and "NOT REPRODUCED" not in replayed


@native
def test_a_jump_to_code_outside_every_function_is_refuted_and_reproduces(tmp_path, capsys):
    source = tmp_path / "stray.S"
    source.write_text("\t.text\n\t.globl f\n\t.type f, @function\nf:\n\ttestq %rdi, %rdi\n\tjz .Lstray\n"
                      "\tret\n\t.size f, .-f\n.Lstray:\n\tmovq $3, %rax\n\tret\n")
    directory = tmp_path / "cex"
    assert main(["check", str(source), "--property", "no-fallthrough", "--cex-dir", str(directory)]) == 1
    [path] = directory.glob("*.json")
    cex = json.loads(path.read_text())
    assert cex["confirmed"] and cex["where"]["line"] == 6
    assert cex["actual"] == "execution goes to '.Lstray', code outside every function"
    capsys.readouterr()
    assert main(["replay", str(path)]) == 0
    assert "fallthrough (to '.Lstray', code outside every function)" in capsys.readouterr().out


def test_a_store_into_code_is_unknown_and_names_the_label(capsys):
    assert main(["check", str(FIXTURES / "unsupported/store_into_code.S"), "--abi", "unified"]) == 3
    out = capsys.readouterr().out
    assert " proved," in out and out.count("UNKNOWN ") == out.count("store into code: 'movq %rax, "
                                                                     "tdx_last_status(%rip)' at ")
    assert "writes to 'tdx_last_status', a label in code (outside every function)" in out
    assert "0 proved, 0 refuted" in out


SHARED_RESTORE = """\
#include <linux/linkage.h>
\t.macro SAVE_AND_CALL name, func
SYM_FUNC_START_NOALIGN(\\name)
\tpushq %rbp
\tmovq %rsp, %rbp
\tpushq %rdi
\tpushq %rsi
\tpushq %rax
\tcall \\func
\tjmp  __restore_common
SYM_FUNC_END(\\name)
\t.endm

\tSAVE_AND_CALL first_thunk, first_helper
\tSAVE_AND_CALL second_thunk, second_helper

SYM_CODE_START_LOCAL_NOALIGN(__restore_common)
\tpopq %rax
\tpopq %rsi
\tpopq %rdi
\tpopq %rbp
\tRET
SYM_CODE_END(__restore_common)
"""
"""The shape of the kernel's ``THUNK`` wrappers (v6.1 entry/thunk_64.S):
functions that save registers, call, and jump to shared restore code
marked as code (SYM_CODE_*), not as a function."""


def test_a_jump_into_shared_code_is_followed_and_the_functions_are_proved(tmp_path, capsys):
    source = tmp_path / "thunks.S"
    source.write_text(SHARED_RESTORE)
    assert main(["check", str(source), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["function"] for r in report["results"]] == ["first_thunk", "second_thunk"]
    assert {o["status"] for r in report["results"] for o in r["obligations"]} == {"proved"}


@pytest.mark.parametrize("command", ["check", "mutate"])
def test_code_is_not_checked_on_its_own(tmp_path, capsys, command):
    source = tmp_path / "thunks.S"
    source.write_text(SHARED_RESTORE)
    assert main([command, str(source), "--function", "__restore_common"]) == 2
    error = capsys.readouterr().err
    assert f"{source}:17:1: error: --function __restore_common: '__restore_common' is code that does not " \
           "follow the C calling convention" in error


def test_an_inner_label_typed_as_code_but_without_a_size_stays_a_label(tmp_path, capsys):
    source = tmp_path / "inner.S"
    source.write_text(".text\n.globl outer\n.type outer, @function\nouter:\n\tmovq %rdi, %rax\n"
                      ".type middle, @notype\n.globl middle\nmiddle:\n\tret\n.size outer, .-outer\n")
    assert main(["check", str(source), "--json", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["function"] for r in report["results"]] == ["outer"]
