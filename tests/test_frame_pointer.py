"""``frame-pointer`` end to end: the configuration it needs, the CPU's view,
``check``, ``replay`` and ``mutate``.

* Whether CONFIG_FRAME_POINTER is on is what the C preprocessor is told
  (:func:`grammar.frontend.config_enabled`): checked against the real
  ``cc -E`` for ``--config``, ``-D`` and ``-U`` in every order they reach it.
* The native harness single-steps a case (the trap flag): RBP and the 8
  bytes it points at before every instruction, also right after a TDX
  instruction, an emulated ``sti`` and a fixup, with nothing else of the
  run changed.
* ``check`` of the v6.2-like hypercall (flags in RBP) under ``--matrix
  CONFIG_FRAME_POINTER`` refutes frame-pointer with frame pointers and has
  no such obligation without; the v6.3-like one (flags on the stack) is
  proved.  Each counterexample ``--cex-dir`` writes reproduces on the CPU;
  one tampered so that the flags equal the caller's RBP does not.
* ``--property frame-pointer`` with frame pointers off is exit 2 saying
  what to add; on with ``-D CONFIG_FRAME_POINTER`` too.
* ``mutate``: a mutant that loads a struct field into RBP instead of RBX,
  between FRAME_BEGIN and FRAME_END, is killed by frame-pointer, on a small
  wrapper and on the unified ``__tdcall_saved_ret`` (whose counterexample
  then reproduces on the CPU).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from expectations import FIXTURES, FLAGS_GUEST, FLAGS_STACK_GUEST
from grammar.frontend import FrontEndOptions, config_enabled, expand_to_assembly, load_program
from model.native import NativeCase, NativeProgram, TdxBehaviour, native_available
from proofs.cli import main
from proofs.mutate import derive_mutants

native = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

PROBE = "#ifdef CONFIG_FRAME_POINTER\nframe_pointers_on\n#endif\n"


@pytest.mark.parametrize("options", [
    FrontEndOptions(),
    FrontEndOptions(configs={"CONFIG_FRAME_POINTER": True}),
    FrontEndOptions(configs={"CONFIG_FRAME_POINTER": False}, defines=("CONFIG_FRAME_POINTER",)),
    FrontEndOptions(defines=("CONFIG_FRAME_POINTER=1",)),
    FrontEndOptions(defines=("CONFIG_FRAME_POINTER",), undefines=("CONFIG_FRAME_POINTER",)),
    FrontEndOptions(undefines=("CONFIG_FRAME_POINTER",), configs={"CONFIG_FRAME_POINTER": True}),
    FrontEndOptions(defines=("CONFIG_FRAME_POINTERS",)),
    FrontEndOptions(defines=("CONFIG_FRAME_POINTER(x)=x",)),
])
def test_config_enabled_is_what_the_preprocessor_sees(options, tmp_path):
    from grammar.cpp import preprocessor_command
    source = tmp_path / "probe.S"
    source.write_text(PROBE)
    command = preprocessor_command(str(source), (), options.defines, options.undefines, options.configs)
    seen = "frame_pointers_on" in subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert config_enabled(options, "CONFIG_FRAME_POINTER") is seen


# --- the CPU, one instruction at a time ------------------------------------------

STEPPED = """
.text
.globl stepped
stepped:
    push %rbp
    mov %rsp, %rbp
    movq %rsi, %rbp
.Lsite:
    .byte 0x66, 0x0f, 0x01, 0xcf
    sti
    pop %rbp
    ret
.Lfixup:
    pop %rbp
    ret
.pushsection __ex_table, "a"
    .long .Lsite - .
    .long .Lfixup - .
    .long 2
.popsection
"""


@native
def test_a_traced_case_reports_the_state_before_every_instruction():
    program = NativeProgram.build(STEPPED, "stepped")
    entry = {"rbp": 0x1234, "rsi": 0x77}
    script = [TdxBehaviour.completion(0, {"rbp": 0x5555})]
    plain, traced = program.run([NativeCase(regs=entry, tdx_script=script),
                                 NativeCase(regs=entry, tdx_script=script, trace=True)])
    assert plain.steps == () and traced.end == plain.end == "returned"
    assert (traced.regs, traced.rflags, traced.events) == (plain.regs, plain.rflags, plain.events)
    assert not traced.rflags & 0x100                    # the trap flag never shows
    where = [program.describe(step.rip) for step in traced.steps]
    assert where == ["stepped", "stepped+0x1", "stepped+0x4", "stepped+0x7", "stepped+0xb",
                     "stepped+0xc", "stepped+0xd"]
    rsp = traced.steps[0].regs["rsp"]
    assert [step.regs["rbp"] for step in traced.steps] == [0x1234, 0x1234, rsp - 8, 0x77, 0x5555, 0x5555,
                                                           0x1234]
    # the 8 bytes at RBP: the saved RBP once the frame is set up; none where RBP points nowhere
    assert [step.at_rbp for step in traced.steps] == [None, None, 0x1234, None, None, None, None]
    [faulted] = program.run([NativeCase(regs=entry, tdx_script=[TdxBehaviour.fault(13)], trace=True)])
    assert faulted.end == "returned" and faulted.regs["rax"] == 13
    assert [program.describe(step.rip) for step in faulted.steps][-3:] == [
        "stepped+0x7", "stepped+0xe", "stepped+0xf"]    # the fixup's first instruction is a step


# --- check and replay --------------------------------------------------------------

def _check(path: str, *args: str) -> list[str]:
    return [str(FIXTURES / path), "--abi", "legacy", "--function", "__tdx_hypercall", *args]


def test_the_flags_in_rbp_break_the_chain_only_with_frame_pointers(capsys):
    assert main(["check", *_check(FLAGS_GUEST, "--matrix", "CONFIG_FRAME_POINTER", "--json")]) == 1
    results = json.loads(capsys.readouterr().out)["results"]
    by_config = {r["config"]: {(o["property"], o["detail"]): o["status"] for o in r["obligations"]}
                 for r in results}
    on, off = by_config["CONFIG_FRAME_POINTER=y"], by_config["CONFIG_FRAME_POINTER=n"]
    assert on[("frame-pointer", "rbp")] == on[("frame-pointer", "call")] == "refuted"
    assert {status for (pid, _), status in on.items() if pid != "frame-pointer"} == {"proved"}
    assert not [key for key in off if key[0] == "frame-pointer"] and set(off.values()) == {"proved"}
    assert main(["check", *_check(FLAGS_STACK_GUEST, "--matrix", "CONFIG_FRAME_POINTER")]) == 0
    out = capsys.readouterr().out
    assert "frame-pointer does not apply: CONFIG_FRAME_POINTER is off" in out


def test_the_text_report_says_what_the_unwinder_would_find(capsys):
    assert main(["check", *_check(FLAGS_GUEST, "--config", "CONFIG_FRAME_POINTER=y",
                                  "--property", "frame-pointer")]) == 1
    out = capsys.readouterr().out
    assert "REFUTED frame-pointer (rbp) of __tdx_hypercall" in out
    assert "an interrupt or NMI taken here finds RBP = " in out
    assert "(objtool's rule: no call without frame pointer save/setup)" in out


def test_frame_pointer_needs_the_option_on_to_be_selected(capsys):
    assert main(["check", *_check(FLAGS_STACK_GUEST, "--property", "frame-pointer")]) == 2
    err = capsys.readouterr().err
    assert ("--property frame-pointer: applies to none of the rows checked (__tdx_hypercall): it needs "
            "CONFIG_FRAME_POINTER on (add --config CONFIG_FRAME_POINTER=y or --matrix CONFIG_FRAME_POINTER)") in err
    assert main(["check", *_check(FLAGS_STACK_GUEST, "--property", "frame-pointer",
                                  "-D", "CONFIG_FRAME_POINTER")]) == 0


@native
def test_each_counterexample_reproduces_on_the_cpu_and_a_tampered_one_does_not(tmp_path, capsys):
    directory = tmp_path / "cex"
    assert main(["check", *_check(FLAGS_GUEST, "--config", "CONFIG_FRAME_POINTER=y", "--property",
                                  "frame-pointer", "--cex-dir", str(directory))]) == 1
    capsys.readouterr()
    files = sorted(directory.glob("*.json"))
    assert [json.loads(f.read_text())["detail"] for f in files] == ["call", "rbp"]
    for path in files:
        assert main(["replay", str(path)]) == 0
        out = capsys.readouterr().out
        assert "stepped one instruction at a time, reports RBP and the bytes it points at" in out
        assert "violated on the CPU at " in out and out.rstrip().endswith("REPRODUCED")
    cex = json.loads(files[1].read_text())
    cex["entry"]["registers"]["rsi"] = cex["entry"]["registers"]["rbp"]     # flags = the caller's RBP
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(cex))
    assert main(["replay", str(tampered)]) == 1
    assert "NOT REPRODUCED: the native run does not violate frame-pointer[rbp]" in capsys.readouterr().out


# --- mutants -------------------------------------------------------------------------

SMALL_WRAPPER = """\
#include <asm/asm.h>
#include <asm/frame.h>
#include <linux/linkage.h>
.text
SYM_FUNC_START(tdcall_rbx)
\tFRAME_BEGIN
\tpush %rbx
\tmovq (%rsi), %rbx
\ttdcall
\tpop %rbx
\tFRAME_END
\tRET
SYM_FUNC_END(tdcall_rbx)
"""


def test_a_mutant_that_clobbers_rbp_inside_the_frame_is_killed(tmp_path, capsys):
    source = tmp_path / "small.S"
    source.write_text(SMALL_WRAPPER)
    args = ["mutate", str(source), "--function", "tdcall_rbx", "--property", "frame-pointer", "--no-equiv",
            "--jobs", "2", "--json"]
    assert main(args) == 2
    assert "it needs CONFIG_FRAME_POINTER on" in capsys.readouterr().err
    assert main(args + ["--config", "CONFIG_FRAME_POINTER=y"]) == 0
    results = {(r["operator"], r["before"], r["after"]): r for r in json.loads(capsys.readouterr().out)["results"]}
    for key in [("register", "movq (%rsi), %rbx", "movq (%rsi), %rbp"),   # RBP loaded inside the frame
                ("register", "popq %rbx", "popq %rbp"),                   # RBP popped from the wrong slot
                ("swap", "pushq %rbp; movq %rsp, %rbp", "movq %rsp, %rbp; pushq %rbp")]:
        assert results[key]["killed_by"] == ["frame-pointer"], key
    # no frame at all: a leaf, which the unwinder (and objtool) accept
    assert results[("delete", "movq %rsp, %rbp", "")]["status"] == "survived"


@native
def test_the_real_wrapper_mutant_is_killed_and_its_counterexample_reproduces(tmp_path, capsys):
    path = FIXTURES / "unified/arch/x86/coco/tdx/tdcall.S"
    options = FrontEndOptions(configs={"CONFIG_FRAME_POINTER": True})
    function = load_program([str(path)], options).function("__tdcall_saved_ret")
    [mutant] = [m for m in derive_mutants(expand_to_assembly([str(path)], options), function)
                if m.operator == "register" and m.after.endswith("(%rsi), %rbp")]
    source = tmp_path / "mutant.s"
    source.write_text("\n".join(mutant.lines) + "\n")
    directory = tmp_path / "cex"
    assert main(["check", str(source), "--no-shims", "--config", "CONFIG_FRAME_POINTER=y", "--function",
                 "__tdcall_saved_ret", "--property", "frame-pointer", "--property", "callee-saved",
                 "--cex-dir", str(directory)]) == 1
    out = capsys.readouterr().out
    assert "REFUTED frame-pointer (rbp)" in out and "REFUTED callee-saved" not in out
    files = [p for p in directory.glob("*.json") if json.loads(p.read_text())["property"] == "frame-pointer"]
    assert files
    for cex in files:
        assert main(["replay", str(cex)]) == 0, capsys.readouterr().out
        assert capsys.readouterr().out.rstrip().endswith("REPRODUCED")
