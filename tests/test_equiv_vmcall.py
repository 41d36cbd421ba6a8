"""What a TDG.VP.VMCALL's VMM can see, and ``equiv`` on real consecutive versions.

The TDX module hands the VMM only RAX, RCX and the registers the RCX bitmap
exposes (SPEC section 5), so with a known bitmap the module's values are
functions of those alone (:mod:`model.tdx`): a register the bitmap keeps
from the VMM cannot change its answers, one it exposes can.  The pairs:
the v6.2 ``__tdx_hypercall`` (flags kept in RBP) against v6.3 (flags on
the stack), EQUIVALENT in both frame-pointer configurations; v6.3 against
a variant that hands the VMM another R12, DIFFERENT with a counterexample
that replays on the CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grammar.frontend import FrontEndOptions, load_program
from model import abi
from model.executor import ExecutorOptions, execute_function
from model.tdx import DEFAULT_MODULE_READS, VMCALL_READS_SOURCE, TdxModel
from proofs.cli import main
from proofs.equiv import check_equivalence
from proofs.equiv_spec import load_spec
from proofs.outcomes import Equivalence
from proofs.replay import replay_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "vmcall_reads"


def run(spec: str, **options):
    return check_equivalence(load_spec(str(EXAMPLES / spec)), **options)


# --- the model: what the module reads -------------------------------------------------------

def events(tmp_path: Path, setup: str, tdx: TdxModel = TdxModel()) -> list:
    """The TDX events of every path of a function: ``setup``, then TDCALL with RAX = 0."""
    (tmp_path / "f.S").write_text("#include <linux/linkage.h>\nSYM_FUNC_START(f)\n\txorl %eax, %eax\n"
                                  f"\t{setup}\n\ttdcall\n\tret\nSYM_FUNC_END(f)\n")
    program = load_program([str(tmp_path / "f.S")], FrontEndOptions())
    return [event for path in execute_function(program, "f", ExecutorOptions(tdx=tdx)) for event in path.events]


def test_a_vmcall_with_a_known_bitmap_reads_rax_rcx_and_the_exposed_registers(tmp_path):
    (event,) = events(tmp_path, "movl $0xfc00, %ecx")
    assert event.reads == ("rax", "rcx") + abi.exposed_registers(0xFC00)
    arguments = {len(value.children()) for value in (*event.outputs.values(), event.status)}
    assert arguments == {1 + len(event.reads)}          # the ordinal, then the registers read


def test_a_vmcall_with_an_unknown_bitmap_reads_every_gpr(tmp_path):
    (event,) = events(tmp_path, "movq %rdi, %rcx")
    assert event.reads == DEFAULT_MODULE_READS


def test_reads_the_caller_states_win_over_the_bitmap(tmp_path):
    (event,) = events(tmp_path, "movl $0xffcc, %ecx", TdxModel(module_reads={"tdcall": ("rax", "r10")}))
    assert event.reads == ("rax", "r10")


# --- the real pair: v6.2 -> v6.3 __tdx_hypercall ----------------------------------------------

@pytest.mark.parametrize("frame_pointer", [True, False])
def test_flags_in_rbp_or_on_the_stack_are_equivalent(frame_pointer):
    result = run("equiv.toml", configs={"CONFIG_FRAME_POINTER": frame_pointer})
    assert result.verdict == Equivalence.EQUIVALENT, result.reasons
    assert result.feasible_pairs == 2 and not result.reasons


def test_the_vmcall_reads_are_printed_as_an_assumption(capsys):
    assert main(["equiv", str(EXAMPLES / "equiv.toml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("EQUIVALENT")
    assert ("tdcall outcome, status and outputs are functions of the call's ordinal and of RAX, RCX and the "
            f"registers the RCX bitmap exposes for a TDG.VP.VMCALL whose bitmap is known ({VMCALL_READS_SOURCE})"
            in out)
    for side in ("left", "right"):
        assert (f"{side}: tdcall at" in out and "the VMM's answers depend only on RAX, RCX, RDX, RBX, RSI, RDI, R8, "
                "R9, R10, R11, R12, R13, R14, R15 (" + VMCALL_READS_SOURCE in out)
    assert "memory reached through a pointer other than RSP lies outside" in out


def test_a_module_said_to_read_rbp_tells_the_versions_apart(tmp_path):
    """What makes the pair equivalent is the VMCALL's read set: a module
    stated to read RBP too sees the flags on one side, the caller's RBP
    (or the frame pointer) on the other."""
    spec = (EXAMPLES / "equiv.toml").read_text().replace('"../../', f'"{EXAMPLES.parent.parent}/')
    every = ", ".join(f'"{reg}"' for reg in DEFAULT_MODULE_READS)
    (tmp_path / "spec.toml").write_text(spec + f"\n[module]\nreads = {{ tdcall = [{every}] }}\n")
    result = check_equivalence(load_spec(str(tmp_path / "spec.toml")))
    assert result.verdict == Equivalence.DIFFERENT and result.counterexample["confirmed"]
    (event,) = result.counterexample["module"]
    assert "rbp" in [item["register"] for item in event["may_differ"]]


# --- a real difference: the VMM is handed another R12 ---------------------------------------

def test_another_exposed_register_is_a_difference_that_replays(tmp_path):
    result = run("exposed.toml")
    cex = result.counterexample
    assert result.verdict == Equivalence.DIFFERENT and cex["difference"]["observable"] == "rax"
    assert cex["confirmed"]
    (event,) = cex["module"]
    assert [item["register"] for item in event["may_differ"]] == ["r12"]
    # the left side hands the VMM args->r12, the right one args->r13 (args at entry RDI)
    args = int(cex["left"]["entry"]["registers"]["rdi"], 16)
    memory = cex["left"]["memory"]
    field = {name: sum(int(memory.get(f"{args + offset + i:#x}", "0x0"), 16) << 8 * i for i in range(8))
             for name, offset in (("r12", abi.TDX_HYPERCALL_ARGS["r12"]), ("r13", abi.TDX_HYPERCALL_ARGS["r13"]))}
    assert int(event["inputs"]["r12"]["left"], 16) == field["r12"]
    assert int(event["inputs"]["r12"]["right"], 16) == field["r13"]
    path = tmp_path / "cex.json"
    path.write_text(json.dumps(cex))
    verdict = replay_file(str(path))
    assert verdict.reproduced, verdict.text
