"""``tdxproof equiv``: spec-file errors, trivial pairs, and the worked examples.

Every verdict here comes from running both sides symbolically; every
counterexample is also replayed concretely by the tool (``confirmed``),
and the tests check its values against the counterexample's own entry
state (what the legacy wrapper hands the module in R10 is the R10 it was
called with; what the unified one hands it is the struct field in memory).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from proofs.cli import main
from proofs.equiv import check_equivalence, json_result
from proofs.outcomes import Equivalence
from proofs.equiv_spec import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(spec: Path | str):
    return check_equivalence(load_spec(str(spec)))


def u64(memory: dict, address: int) -> int:
    return sum(int(memory[f"{address + i:#x}"], 16) << 8 * i for i in range(8))


# --- spec-file errors: exit 2, naming the file and the key -----------------------------------

LEAF = """#include <linux/linkage.h>
#include <asm/asm.h>
SYM_FUNC_START(leaf)
	mov	%rdi, %rax
	tdcall
	RET
SYM_FUNC_END(leaf)
"""

SIDES = """[left]
files = ["leaf.S"]
function = "leaf"
[left.structs.args]
register = "rsi"
layout = "tdx_module_args"

[right]
files = ["leaf.S"]
function = "{right_function}"
"""


def write_spec(tmp_path: Path, extra: str, right_function: str = "leaf") -> Path:
    (tmp_path / "leaf.S").write_text(LEAF)
    spec = tmp_path / "equiv.toml"
    spec.write_text(SIDES.format(right_function=right_function) + extra)
    return spec


@pytest.mark.parametrize("extra, key, words", [
    ("[observe]\ncolour = 1\n", "observe.colour", "unknown key"),
    ("[relation]\nequal = [\"left.args.r16 == right.rdi\"]\n", "relation.equal[0]", "unknown field 'r16'"),
    ("[relation]\nequal = [\"left.out.rcx == right.rdi\"]\n", "relation.equal[0]", "no struct 'out'"),
    ("[relation]\nequal = [\"left.rdi == left.rsi\"]\n", "relation.equal[0]", "unrelated registers"),
    ("[relation]\nsame = [\"rdi\", \"xmm0\"]\n", "relation.same", "unknown register 'xmm0'"),
    ("[relation]\nequal = [\"left.rdi == right.rdi\", \"left.rsi == right.rsi\", \"left.rdi != right.rdi\"]\n",
     "relation.equal[0], relation.equal[2]", "contradictory"),
    ("[relation]\nequal = [\"left.args.rcx == 1\", \"left.args.rcx == 2\"]\n",
     "relation.equal[0], relation.equal[1]", "contradictory"),
    ("[module]\nreads = { vmcall = [\"rax\"] }\n", "module.reads.vmcall", "unknown key"),
    ("[observe]\nmemory = \"everything\"\n", "observe.memory", "must be one of"),
])
def test_spec_errors_exit_2_naming_file_and_key(tmp_path, capsys, extra, key, words):
    spec = write_spec(tmp_path, extra)
    assert main(["equiv", str(spec)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"{spec}:") and re.match(r":\d+:\d+: error: ", error[len(str(spec)):])
    assert key in error and words in error
    assert "Traceback" not in error and error.count("\n") == 1


def test_missing_function_names_the_key(tmp_path, capsys):
    spec = write_spec(tmp_path, "", right_function="absent")
    assert main(["equiv", str(spec)]) == 2
    error = capsys.readouterr().err
    assert f"{spec}:10:12: error: right.function: no function named 'absent'" in error


def test_missing_side_and_bad_toml(tmp_path, capsys):
    spec = tmp_path / "equiv.toml"
    spec.write_text("[left]\nfiles = []\nfunction = 'f'\n")
    assert main(["equiv", str(spec)]) == 2
    assert f"{spec}:1:1: error: missing required key 'right'" in capsys.readouterr().err
    spec.write_text("[left\n")
    assert main(["equiv", str(spec)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


# --- trivial pairs --------------------------------------------------------------------------

def test_a_function_is_equivalent_to_itself_even_strictly():
    result = run(EXAMPLES / "trivial_equal" / "equiv.toml")
    assert result.verdict == Equivalence.EQUIVALENT and result.feasible_pairs == 1
    assert "r11" in result.observables       # strict: every register


def test_different_constants_are_different_with_the_values(capsys):
    assert main(["equiv", str(EXAMPLES / "trivial_different" / "equiv.toml")]) == 1
    assert "DIFFERENCE in rax: left 0x1, right 0x2" in capsys.readouterr().out
    cex = run(EXAMPLES / "trivial_different" / "equiv.toml").counterexample
    assert cex["confirmed"] and cex["left"]["final"]["registers"]["rax"] == "0x1"


def test_another_number_of_tdx_calls_is_a_difference():
    cex = run(EXAMPLES / "tdx_sequence" / "equiv.toml").counterexample
    assert cex["difference"] == {"observable": "tdx-sequence", "kind": "tdx",
                                 "left": "tdcall", "right": "tdcall, tdcall"}
    assert len(cex["left"]["tdx"]) == 1 and len(cex["right"]["tdx"]) == 2 and cex["confirmed"]


def test_json_is_deterministic_across_processes(tmp_path):
    spec = str(EXAMPLES / "trivial_different" / "equiv.toml")
    outputs = [subprocess.run([sys.executable, "-m", "proofs.cli", "equiv", spec, "--json"],
                              capture_output=True, check=False).stdout for _ in range(2)]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["verdict"] == Equivalence.DIFFERENT


# --- refactorings -----------------------------------------------------------------------------

def test_reordered_moves_and_consistent_push_pop_are_equivalent():
    assert run(EXAMPLES / "reorder" / "equiv.toml").verdict == Equivalence.EQUIVALENT


def test_swapped_pops_exchange_rbx_and_r12(tmp_path):
    result = run(EXAMPLES / "pop_swap" / "equiv.toml")
    cex = result.counterexample
    assert result.verdict == Equivalence.DIFFERENT and cex["difference"]["observable"] == "rbx"
    assert "r12" in cex["also_differ"] and cex["confirmed"]
    left, right = cex["left"], cex["right"]
    assert left["final"]["registers"]["rbx"] == left["entry"]["registers"]["rbx"]
    assert right["final"]["registers"]["rbx"] == right["entry"]["registers"]["r12"]
    assert left["entry"]["registers"]["rbx"] != left["entry"]["registers"]["r12"]


def test_counterexample_replays_natively(tmp_path):
    from proofs.replay import replay_file
    result = run(EXAMPLES / "pop_swap" / "equiv.toml")
    path = tmp_path / "cex.json"
    path.write_text(json.dumps(result.counterexample))
    verdict = replay_file(str(path))
    assert verdict.reproduced, verdict.text


# --- legacy __tdx_module_call vs unified __tdcall_ret -------------------------------------------

def test_module_call_equivalent_when_the_module_reads_rax_rcx_rdx_r8_r9():
    result = run(EXAMPLES / "module_call" / "equiv.toml")
    assert result.verdict == Equivalence.EQUIVALENT
    assert any("functions of the call's ordinal and of RAX, RCX, RDX, R8, R9" in a for a in result.assumptions)


def _module_inputs(cex: dict) -> tuple[dict, dict]:
    event = cex["module"][0]
    return event, {item["register"]: item for item in event["may_differ"]}


def test_module_call_differs_under_the_default_module_through_r10_r11():
    result = run(EXAMPLES / "module_call" / "reads_all_gprs.toml")
    cex = result.counterexample
    assert result.verdict == Equivalence.DIFFERENT and cex["difference"]["observable"] == "rax" and cex["confirmed"]
    event, differing = _module_inputs(cex)
    assert {"r10", "r11"} <= set(differing)
    args = int(cex["right"]["entry"]["registers"]["rsi"], 16)
    for reg, offset in (("r10", 32), ("r11", 40)):
        assert differing[reg]["left_source"] == [f"entry {reg}"]
        assert differing[reg]["right_source"] == [f"args->{reg} at entry"]
        # the legacy wrapper passes the register it was called with ...
        assert event["inputs"][reg]["left"] == cex["left"]["entry"]["registers"][reg]
        # ... the unified one the struct field
        assert int(event["inputs"][reg]["right"], 16) == u64(cex["right"]["memory"], args + offset)
        assert event["inputs"][reg]["left"] != event["inputs"][reg]["right"]


def test_module_call_with_a_module_reading_r10_r11_differs_in_exactly_those():
    cex = run(EXAMPLES / "module_call" / "reads_r10_r11.toml").counterexample
    assert set(_module_inputs(cex)[1]) == {"r10", "r11"}


# --- legacy __tdx_hypercall_ret vs unified glue + __tdcall_saved_ret ----------------------------

def test_hypercall_equivalent_on_caller_observable_state_and_different_strictly():
    result = run(EXAMPLES / "hypercall" / "equiv.toml")
    assert result.verdict == Equivalence.EQUIVALENT, result.reasons
    assert "rax" in result.observables and "left.args.r10 == right.args.r10" in result.observables
    assert "rcx" not in result.observables

    strict = run(EXAMPLES / "hypercall" / "strict.toml")
    cex = strict.counterexample
    assert strict.verdict == Equivalence.DIFFERENT and cex["confirmed"]
    assert cex["difference"] == {"observable": "rcx", "kind": "register", "left": "0xffcc", "right": "0x0"}
    assert set(cex["also_differ"]) == {"rsi", "rdi"}
    text = json.dumps(json_result(strict))
    assert '"verdict": "different"' in text


def test_config_applies_to_both_sides(capsys):
    spec = str(EXAMPLES / "reorder" / "equiv.toml")
    assert main(["equiv", spec, "--config", "CONFIG_RETHUNK=y", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == Equivalence.EQUIVALENT
    assert "left configuration: CONFIG_RETHUNK=y" in result["assumptions"]
    assert "right configuration: CONFIG_RETHUNK=y" in result["assumptions"]


LOOP = """#include <linux/linkage.h>
#include <asm/asm.h>
SYM_FUNC_START(count_down)
	xorl	%eax, %eax
1:	incq	%rax
	decq	%rdi
	jnz	1b
	RET
SYM_FUNC_END(count_down)
"""


def test_a_path_cut_at_the_loop_bound_makes_the_verdict_unknown(tmp_path, capsys):
    (tmp_path / "loop.S").write_text(LOOP)
    spec = tmp_path / "equiv.toml"
    spec.write_text('[left]\nfiles = ["loop.S"]\nfunction = "count_down"\n'
                    '[right]\nfiles = ["loop.S"]\nfunction = "count_down"\n'
                    '[relation]\nsame = ["rdi", "rbx", "rbp", "r12", "r13", "r14", "r15"]\n')
    assert main(["equiv", str(spec)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("UNKNOWN") and "ended (bound)" in out


ARGUMENT = """#include <linux/linkage.h>
#include <asm/asm.h>
SYM_FUNC_START(first)
	movq	%rdi, %rax
	RET
SYM_FUNC_END(first)
SYM_FUNC_START(second)
	movq	%rsi, %rax
	RET
SYM_FUNC_END(second)
"""


@pytest.mark.parametrize("relation, verdict", [
    ('equal = ["left.rdi == right.rsi"]', Equivalence.EQUIVALENT),     # the argument moved to another register
    ('equal = ["left.rdi == right.rdi"]', Equivalence.DIFFERENT),     # ... and related through the wrong one
    ('equal = ["left.rdi != right.rsi"]', Equivalence.DIFFERENT),
])
def test_the_relation_decides_across_registers(tmp_path, relation, verdict):
    (tmp_path / "argument.S").write_text(ARGUMENT)
    spec = tmp_path / "equiv.toml"
    spec.write_text('[left]\nfiles = ["argument.S"]\nfunction = "first"\n'
                    '[right]\nfiles = ["argument.S"]\nfunction = "second"\n'
                    f'[relation]\nsame = ["rbx", "rbp", "r12", "r13", "r14", "r15"]\n{relation}\n')
    result = run(spec)
    assert result.verdict == verdict
    if verdict == Equivalence.DIFFERENT:
        cex = result.counterexample
        assert cex["difference"]["observable"] == "rax" and cex["confirmed"]
        assert cex["left"]["entry"]["registers"]["rdi"] != cex["right"]["entry"]["registers"]["rsi"]


STORES = """#include <linux/linkage.h>
#include <asm/asm.h>
SYM_FUNC_START(store_rcx)
	movq	%rdi, %rax
	movq	(%rsi), %rcx
	tdcall
	movq	%rcx, (%rsi)
	RET
SYM_FUNC_END(store_rcx)
SYM_FUNC_START(store_rcx_wrong_field)
	movq	%rdi, %rax
	movq	(%rsi), %rcx
	tdcall
	movq	%rcx, 8(%rsi)
	RET
SYM_FUNC_END(store_rcx_wrong_field)
"""

STORE_SPEC = """[left]
files = ["stores.S"]
function = "store_rcx"
[left.structs.args]
register = "rsi"
layout = "tdx_module_args"
[right]
files = ["stores.S"]
function = "store_rcx_wrong_field"
[right.structs.args]
register = "rsi"
layout = "tdx_module_args"
[relation]
same = ["rdi", "rsi", "rbx", "rbp", "r12", "r13", "r14", "r15"]
[module]
reads = { tdcall = ["rax", "rcx"] }
outputs = { tdcall = ["rcx"] }
"""


@pytest.mark.parametrize("observe, observable", [
    ("", "memory"),
    ('[observe]\nmemory = "none"\nequal = ["left.args.rdx == right.args.rdx"]\n', "left.args.rdx == right.args.rdx"),
])
def test_a_store_to_the_wrong_field_shows_in_memory_or_in_the_field(tmp_path, observe, observable):
    (tmp_path / "stores.S").write_text(STORES)
    spec = tmp_path / "equiv.toml"
    spec.write_text(STORE_SPEC + observe)
    result = run(spec)
    cex = result.counterexample
    assert result.verdict == Equivalence.DIFFERENT and cex["difference"]["observable"] == observable and cex["confirmed"]
    args = int(cex["left"]["entry"]["registers"]["rsi"], 16)
    if observable == "memory":
        assert int(cex["difference"]["address"], 16) in range(args, args + 16)
        assert cex["difference"]["written_at"]["line"] in (7, 14)
    else:
        assert cex["difference"]["left"] != cex["difference"]["right"]


def test_swapped_stores_through_a_module_returned_pointer_are_equivalent(tmp_path):
    # Under the default (worst-case) module RSI comes back from TDCALL, so the
    # write-back's addresses are no place: every later read (the return
    # address) goes through them byte by byte, and the solver must still
    # decide it quickly -- a symbolic shift per byte once made this unknown.
    from grammar.frontend import FrontEndOptions, expand_to_assembly
    text = expand_to_assembly([str(EXAMPLES.parent / "tests/fixtures/unified/arch/x86/coco/tdx/tdcall.S")],
                              FrontEndOptions())
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.split("#")[0].split() == ["movq", "%rcx,", "(%rsi)"])
    lines[first], lines[first + 1] = lines[first + 1], lines[first]
    (tmp_path / "original.s").write_text(text)
    (tmp_path / "swapped.s").write_text("\n".join(lines) + "\n")
    registers = ", ".join(f'"{r}"' for r in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10",
                                              "r11", "r12", "r13", "r14", "r15"))
    spec = tmp_path / "equiv.toml"
    spec.write_text(f'[left]\nfiles = ["original.s"]\nfunction = "__tdcall_ret"\n'
                    f'[right]\nfiles = ["swapped.s"]\nfunction = "__tdcall_ret"\n[relation]\nsame = [{registers}]\n')
    result = check_equivalence(load_spec(str(spec)), timeout=5.0)
    assert result.verdict == Equivalence.EQUIVALENT, result.reasons
