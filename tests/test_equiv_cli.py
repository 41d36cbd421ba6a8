"""``tdxproof equiv LEFT.S:FUNC RIGHT.S:FUNC [options]``: the short form.

It must decide exactly what the matching spec file decides: the same
verdict, the same JSON (apart from the ``spec`` field, which names the
command line instead of the file), the same counterexample, and a
counterexample ``tdxproof replay`` can run from its recorded command line.
Bad short forms exit 2 naming the option.
"""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from model.native import native_available
from proofs.cli import build_parser, main
from proofs.equiv_spec import DEFAULT_SAME, SHORT_FORM_PREFIX, recorded_spec, short_form_spec

REPO = Path(__file__).resolve().parent.parent
LEGACY = "tests/fixtures/legacy/arch/x86/coco/tdx/tdcall.S"
UNIFIED = "tests/fixtures/unified/arch/x86/coco/tdx/tdcall.S"
MODULE_CALL = [  # examples/module_call/reads_all_gprs.toml, as options
    f"{LEGACY}:__tdx_module_call", f"{UNIFIED}:__tdcall_ret",
    "--struct", "left.out=r9:tdx_module_output", "--struct", "right.args=rsi:tdx_module_args",
    "--same", "rdi,rbx,rbp", "--same", "r12", "--same", "r13,r14,r15",
    "--relate", "left.rsi == right.args.rcx", "--relate", "left.rdx == right.args.rdx",
    "--relate", "left.rcx == right.args.r8", "--relate", "left.r8 == right.args.r9",
    "--relate", "left.out == right.args", "--module-outputs", "tdcall=rcx,rdx,r8,r9,r10,r11"]


@pytest.fixture(autouse=True)
def at_repo(monkeypatch):
    """Short-form paths are relative to the current directory."""
    monkeypatch.chdir(REPO)


def equiv_json(tmp_path: Path, name: str, argv: list[str]) -> tuple[int, dict]:
    """``tdxproof equiv`` in a process of its own (the JSON is the same
    bytes for the same input across processes; Z3's models within one
    process depend on what it solved before)."""
    out = tmp_path / f"{name}.json"
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "equiv", *argv, "--json", str(out),
                           "--cex-dir", str(tmp_path / name)], capture_output=True, text=True)
    assert not done.stderr, done.stderr
    return done.returncode, json.loads(out.read_text())


def without_spec(result: dict, spec_dir: str) -> str:
    """The JSON text with the ``spec`` fields dropped and the spec file's
    directory prefix (``examples/x/../../``) resolved away."""
    result = dict(result, spec=None)
    if result["counterexample"]:
        result["counterexample"] = dict(result["counterexample"], spec=None)
    return json.dumps(result, sort_keys=True).replace(spec_dir + "/../../", "")


@pytest.mark.parametrize("spec, argv, status, verdict", [
    ("examples/pop_swap/equiv.toml",
     ["examples/pop_swap/original.S:tdcall_sum", "examples/pop_swap/swapped.S:tdcall_sum"], 1, "different"),
    ("examples/reorder/equiv.toml",
     ["examples/reorder/original.S:tdcall_sum", "examples/reorder/refactored.S:tdcall_sum"], 0, "equivalent"),
    ("examples/module_call/equiv.toml",
     MODULE_CALL[:-2] + ["--module-reads", "tdcall=rax,rcx,rdx,r8,r9",
                         "--module-outputs", "tdcall=rcx,rdx,r8,r9,r10,r11"], 0, "equivalent"),
    ("examples/module_call/reads_all_gprs.toml", MODULE_CALL, 1, "different"),
])
def test_short_form_decides_what_the_spec_file_decides(tmp_path, spec, argv, status, verdict):
    file_status, by_file = equiv_json(tmp_path, "file", [spec])
    short_status, by_options = equiv_json(tmp_path, "short", argv)
    assert (file_status, by_file["verdict"]) == (short_status, by_options["verdict"]) == (status, verdict)
    assert by_options["spec"].startswith(SHORT_FORM_PREFIX + argv[0])
    assert without_spec(by_options, str(Path(spec).parent)) == without_spec(by_file, str(Path(spec).parent))
    written = sorted(p.name for p in (tmp_path / "short").glob("*.json")) if status else []
    assert written == (sorted(p.name for p in (tmp_path / "file").glob("*.json")) if status else [])
    for name in written:
        assert json.loads((tmp_path / "short" / name).read_text()) == by_options["counterexample"]


def test_without_same_or_relate_every_gpr_but_rsp_is_the_same():
    args = build_parser().parse_args(["equiv", "a.S:f", "b.S:g"])
    assert DEFAULT_SAME == ("rax", "rcx", "rdx", "rbx", "rbp", "rsi", "rdi",
                            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
    args = build_parser().parse_args(["equiv", "examples/pop_swap/original.S:tdcall_sum",
                                      "examples/pop_swap/swapped.S:tdcall_sum", "--relate", "left.rdi == right.rsi"])
    spec = short_form_spec(*args.spec, args)
    assert [e.text for e in spec.relation] == ["left.rdi == right.rsi"]


def _short_form_group(parser) -> set[tuple[str, str]]:
    equiv = parser._subparsers._group_actions[0].choices["equiv"]
    group = next(g for g in equiv._action_groups if g.title.startswith("short form"))
    return {(action.option_strings[0], action.dest) for action in group._group_actions}


def test_recorded_command_line_reads_back_as_the_same_spec(tmp_path):
    """Every short-form option is written into the spec's path and read
    back by ``recorded_spec`` (what ``tdxproof replay`` uses)."""
    (tmp_path / "inc").mkdir()
    argv = MODULE_CALL + ["-I", str(tmp_path / "inc"), "-D", "X=1", "-U", "Y", "--observe-registers", "rax,rbx,zf",
                          "--observe-memory", "outside-frame-and-structs", "--observe-equal",
                          "left.out.r10 == right.args.r10", "--module-reads", "tdcall=rax,rcx",
                          "--tdcall-may-fault"]
    parser = build_parser()
    args = parser.parse_args(["equiv", *argv])
    spec = short_form_spec(*args.spec, args)
    flags = {flag for flag, _ in _short_form_group(parser)}
    assert flags == {word for word in argv if word.startswith("-")}, "a short-form option the test misses"
    assert recorded_spec(str(spec.path)) == spec
    copy = pickle.loads(pickle.dumps(spec))
    assert copy == spec and copy.path.option("relation.equal[1]") == "--relate 'left.rdx == right.args.rdx'"
    assert spec.tdcall_may_fault and spec.observed_registers == ("rax", "rbx", "zf")
    assert spec.left.front_end.defines == spec.right.front_end.defines == ("X=1",)


HEADER = "#ifndef VALUE\n#define VALUE 1\n#endif\n"
USES_HEADER = """#include <linux/linkage.h>
#include "value.h"
SYM_FUNC_START(f)
	mov	$VALUE, %eax
	RET
SYM_FUNC_END(f)
"""


def test_front_end_options_apply_to_both_sides(tmp_path, capsys):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "value.h").write_text(HEADER)
    (tmp_path / "a.S").write_text(USES_HEADER)
    (tmp_path / "b.S").write_text(USES_HEADER.replace("$VALUE", "$1").replace('#include "value.h"\n', ""))
    sides = [f"{tmp_path}/a.S:f", f"{tmp_path}/b.S:f", "-I", str(tmp_path / "inc")]
    assert main(["equiv", *sides]) == 0
    assert main(["equiv", *sides, "-D", "VALUE=2"]) == 1
    assert main(["equiv", *sides, "-D", "VALUE=2", "-U", "VALUE"]) == 0
    assert "DIFFERENT" in capsys.readouterr().out


@pytest.mark.skipif(native_available() is not None, reason=str(native_available()))
def test_short_form_counterexample_replays_natively(tmp_path):
    from proofs.replay import replay_file
    assert main(["equiv", *MODULE_CALL, "--cex-dir", str(tmp_path)]) == 1
    [path] = tmp_path.glob("*.json")
    cex = json.loads(path.read_text())
    assert {(s.side, s.register) for s in recorded_spec(cex["spec"]).structs} == {("left", "r9"), ("right", "rsi")}
    verdict = replay_file(str(path))
    assert verdict.reproduced, verdict.text
    assert main(["replay", str(path)]) == 0


POP = ["examples/pop_swap/original.S:tdcall_sum", "examples/pop_swap/swapped.S:tdcall_sum"]


@pytest.mark.parametrize("argv, named, words", [
    (["examples/pop_swap/original.S", POP[1]], "LEFT examples/pop_swap/original.S", "expected FILE[,FILE...]:FUNCTION"),
    ([POP[0], "examples/pop_swap/swapped.S:absent"], "RIGHT examples/pop_swap/swapped.S:absent",
     "no function named 'absent'"),
    (["examples/pop_swap/missing.S:f", POP[1]], "LEFT examples/pop_swap/missing.S:f", "no such file"),
    (POP + ["--same", "rbx,xmm0"], "--same", "unknown register 'xmm0'"),
    (POP + ["--relate", "left.rdi == left.rsi"], "--relate 'left.rdi == left.rsi'", "unrelated registers"),
    (POP + ["--relate", "left.rdi == right.rdi", "--relate", "left.rdi != right.rdi"],
     "--relate 'left.rdi == right.rdi', --relate 'left.rdi != right.rdi'", "contradictory"),
    (POP + ["--struct", "left.args=rsi"], "--struct left.args=rsi", "SIDE.NAME=REG:LAYOUT[:nullable]"),
    (POP + ["--struct", "middle.args=rsi:tdx_module_args"], "--struct middle.args=rsi:tdx_module_args",
     "SIDE is left or right"),
    (POP + ["--struct", "left.args=rsi:tdx_nothing"], "--struct left.args=rsi:tdx_nothing", "unknown layout"),
    (POP + ["--struct", "left.a=rsi:tdx_module_args", "--relate", "left.a.r16 == right.rdi"],
     "--relate 'left.a.r16 == right.rdi'", "unknown field 'r16'"),
    (POP + ["--observe-registers", "rax,xmm1"], "--observe-registers", "unknown register 'xmm1'"),
    (POP + ["--observe-memory", "everything"], "--observe-memory", "must be one of"),
    (POP + ["--observe-equal", "left.rax"], "--observe-equal 'left.rax'", "is not 'TERM == TERM'"),
    (POP + ["--module-reads", "vmcall=rax"], "--module-reads vmcall=rax", "unknown key"),
    (POP + ["--module-outputs", "tdcall"], "--module-outputs tdcall", "KIND=REG[,REG...]"),
    (POP + ["--module-outputs", "tdcall=rax"], "--module-outputs tdcall=rax", "unknown register 'rax'"),
    (["examples/pop_swap/equiv.toml", "--same", "rbx"], "--same", "belong to the short form"),
    ([POP[0]], POP[0], "needs two"),
    (POP + ["extra.S:f"], "tdxproof equiv", "not 3 arguments"),
])
def test_bad_short_form_exits_2_naming_the_option(capsys, argv, named, words):
    assert main(["equiv", *argv]) == 2
    error = capsys.readouterr().err
    assert named in error and words in error, error
    assert "Traceback" not in error and error.count("\n") == 1


def test_a_spec_file_keeps_its_places_through_pickling():
    """A spec file's path knows where its keys were written, also in a
    worker's result: an error raised after the spec was read (by
    :mod:`proofs.equiv`) is located too."""
    from proofs.equiv_spec import SpecError, SpecFile, load_spec
    spec = pickle.loads(pickle.dumps(load_spec("examples/pop_swap/equiv.toml")))
    assert isinstance(spec.path, SpecFile) and spec.path == "examples/pop_swap/equiv.toml"
    error = SpecError(spec.path, "right.function, relation.same[2]", "no function named 'x'")
    assert error.render() == ("examples/pop_swap/equiv.toml:9:12: error: right.function, relation.same[2]: "
                              "no function named 'x'")
