"""The ABI of each function, chosen from what its code shows (issue 10).

The static pass (:mod:`model.evidence`) on small wrappers, the choice
(:mod:`proofs.abi_choice`) on the real forms of the fixture trees and on
the cases that must not be guessed (a tie, an unknown ABI, a forced
contract the code contradicts, a prototype the assembly disagrees with),
the shims' layout selection (:mod:`grammar.shim_layout`), and the one-line
ABI summary, JSON fields and counterexample record of a ``check``.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grammar.declarations import Parameter, Prototype, StructField, StructLayout
from grammar.frontend import FrontEndOptions, SHIM_DIR, load_program, preprocessed
from grammar.shim_layout import SELECTOR
from grammar.source import Origin
from model import abi
from model.evidence import gather
from proofs.abi_choice import choose
from proofs.contracts import load_contracts

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CONTRACTS = load_contracts()


def program_of(tmp_path: Path, text: str, name: str = "w.S", **options):
    source = tmp_path / name
    source.write_text(text)
    return load_program([str(source)], FrontEndOptions(**options))


def fixture(path: str, **options):
    return load_program([str(FIXTURES / path)], FrontEndOptions(**options))


# --- the static pass ---------------------------------------------------------------

SIX_ARGUMENTS = """\
#include <linux/linkage.h>
#include <asm/asm-offsets.h>
SYM_FUNC_START(w)
	push %r12
	push %r9
	mov %rdi, %rax
	mov %r8, %r9
	mov %rcx, %r8
	mov %rsi, %rcx
	tdcall
	pop %r12
	test %r12, %r12
	jz 1f
	movq %rcx, TDX_MODULE_rcx(%r12)
	movq %r11, TDX_MODULE_r11(%r12)
1:
	pop %r12
	xorl %esi, %esi
	RET
SYM_FUNC_END(w)
"""


def test_a_pointer_popped_into_another_register_is_still_the_argument(tmp_path):
    evidence = gather(program_of(tmp_path, SIX_ARGUMENTS), "w")
    assert evidence.pointers() == {"r9"}
    assert [(a.kind, a.base, a.offset, a.value.tag[2]) for a in evidence.accesses] == [
        ("write", "r9", 0, "rcx"), ("write", "r9", 40, "r11")]
    # moved into another register: a use; handed on untouched: a pass-through
    assert {"rdi", "rsi", "rcx", "r8"} <= set(evidence.used) and "rdx" in evidence.passed
    assert "rdx" not in evidence.used
    # the zeroing idiom reads RSI but does not use it
    assert evidence.used["rsi"] == {"input"}


def test_stack_arguments_are_numbered_past_the_pushes_and_the_frame(tmp_path):
    text = """\
#include <linux/linkage.h>
#include <asm/frame.h>
SYM_FUNC_START(w)
	FRAME_BEGIN
	pushq %r12
	pushq %r13
	movq (FRAME_OFFSET + 0x18)(%rsp), %r10
	movq (FRAME_OFFSET + 0x28)(%rsp), %r12
	movq %rdi, %rax
	seamcall
	popq %r13
	popq %r12
	FRAME_END
	RET
SYM_FUNC_END(w)
"""
    for frame_pointer in (False, True):
        evidence = gather(program_of(tmp_path, text, configs={"CONFIG_FRAME_POINTER": frame_pointer}), "w")
        assert set(evidence.stack_arguments) == {1, 3}
        registers = evidence.tdx[0].registers
        assert registers["r10"].tag == ("stack", 1) and registers["r12"].tag == ("stack", 3)


def test_a_flags_test_and_the_bitmap_are_seen(tmp_path):
    evidence = gather(fixture("v5.19/arch/x86/coco/tdx/tdcall.S"), "__tdx_hypercall")
    assert evidence.masks == {("rsi", abi.TDX_HCALL_HAS_OUTPUT), ("rsi", abi.TDX_HCALL_ISSUE_STI)}
    assert evidence.tdx[0].bitmap == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST
    assert evidence.calls == {"__tdx_hypercall_failed"}
    # RDI is not exposed by 0xFC00: the stores after the TDCALL are still through it
    assert {a.base for a in evidence.accesses if a.kind == "write"} == {"rdi"}


def test_a_cleared_output_pointer_joins_as_that_pointer_or_null():
    evidence = gather(fixture("vendor-io/arch/x86/virt/vmx/tdx/seamcall.S"), "__seamcall_io")
    writes = [a for a in evidence.accesses if a.kind == "write"]
    assert len(writes) == 6 and {a.base for a in writes} == {"r9"}


def test_calls_into_the_program_are_followed():
    evidence = gather(fixture("variants/tdcall_helper.S"), "__tdcall_ret")
    assert evidence.followed == {"tdx_load_basic_args"}
    assert {a.offset for a in evidence.accesses if a.kind == "read"} == {0, 8, 16, 24, 32, 40}


# --- the choice, on the real forms ------------------------------------------------------

@pytest.mark.parametrize("path, function, key, source", [
    ("v6.6-rename/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [legacy]", "6 arguments"),
    ("unified/arch/x86/coco/tdx/tdcall.S", "__tdcall", "__tdcall [unified]", "2 arguments (RDI leaf, RSI struct)"),
    ("v5.19/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy/oldest]", "ECX = 0xfc00"),
    ("v6.3/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy/flags]", "RSI flags"),
    ("legacy/arch/x86/coco/tdx/tdcall.S", "__tdx_hypercall", "__tdx_hypercall [legacy]", "1 argument"),
    ("vendor-io/arch/x86/virt/vmx/tdx/seamcall.S", "__seamcall", "__seamcall [legacy/eight-inputs]",
     "stack 1->R10, 2->R11, 3->R12, 4->R13"),
    ("legacy/arch/x86/virt/vmx/tdx/seamcall.S", "__seamcall", "__seamcall [legacy]", "6 arguments"),
])
def test_same_name_different_abi_is_told_apart_by_the_code(path, function, key, source):
    choice = choose(fixture(path), function, CONTRACTS)
    assert choice.contract.key == key and not choice.notices
    assert choice.source.startswith("inferred from the file: ") and source in choice.source


def test_one_file_two_eras():
    program = fixture("backport/arch/x86/coco/tdx/tdcall.S")
    keys = {name: choose(program, name, CONTRACTS).contract.key
            for name in ("__tdcall", "__tdcall_ret", "__tdx_hypercall")}
    assert keys == {"__tdcall": "__tdcall [unified]", "__tdcall_ret": "__tdcall_ret [unified]",
                    "__tdx_hypercall": "__tdx_hypercall [legacy/flags]"}


def test_the_layout_is_chosen_with_the_contract():
    recent = choose(fixture("recent/arch/x86/virt/vmx/tdx/seamcall.S"), "__seamcall_ret", CONTRACTS).contract
    assert recent.layout == abi.LAYOUTS["tdx_module_args_version"] and recent.struct_size == 112
    assert recent.version_field == StructField("version", 104, 1)
    plain = choose(fixture("unified/arch/x86/virt/vmx/tdx/seamcall.S"), "__seamcall_ret", CONTRACTS).contract
    assert plain.layout == abi.LAYOUTS["tdx_module_args"] and plain.version_field is None
    oldest = choose(fixture("v5.19/arch/x86/coco/tdx/tdcall.S"), "__tdx_hypercall", CONTRACTS).contract
    assert oldest.layout == abi.LAYOUTS["tdx_hypercall_args_oldest"] and oldest.offsets["r10"] == 0


def test_the_only_contract_of_a_name_is_by_name_when_the_code_differs(tmp_path):
    # __tdx_module_call's code that never tests @out for NULL and returns R10
    text = SIX_ARGUMENTS.replace("w)", "__tdx_module_call)").replace("\tpop %r12\n\ttest", "\tmovq %r10, %rax\n"
                                                                      "\tpop %r12\n\ttest")
    choice = choose(program_of(tmp_path, text), "__tdx_module_call", CONTRACTS)
    assert choice.contract.key == "__tdx_module_call [legacy]"
    assert choice.source.startswith("by name: the only contract of that name (the file differs: RAX at return")


def test_no_contract_fits_then_no_contract_and_a_notice(tmp_path):
    # a __tdcall that reads stack arguments: neither __tdcall contract passes any
    text = """\
#include <linux/linkage.h>
SYM_FUNC_START(__tdcall)
	movq 8(%rsp), %r10
	movq %rdi, %rax
	tdcall
	RET
SYM_FUNC_END(__tdcall)
"""
    choice = choose(program_of(tmp_path, text), "__tdcall", CONTRACTS)
    assert choice.contract is None
    [notice] = choice.notices
    assert notice.startswith("__tdcall: ABI unknown (no contract of that name fits its code: __tdcall [legacy], "
                             "__tdcall [unified]: it reads stack argument 1, which the contract does not pass)")
    assert "--contracts FILE" in notice and "--variant __tdcall=VARIANT" in notice


def test_a_c_caller_checked_without_its_wrapper_is_told_to_check_them_together(tmp_path):
    glue = tmp_path / "hcall_glue.s"
    subprocess.run(["cc", "-S", "-O2", "-o", str(glue), str(FIXTURES / "unified/arch/x86/coco/tdx/hcall_glue.c")],
                   check=True)
    choice = choose(load_program([str(glue)]), "__tdx_hypercall", CONTRACTS)
    assert choice.contract is None
    assert ("it executes no TDCALL (it calls __tdcall_saved_ret, which no input file defines: check the file that "
            "does together with it)") in choice.notices[0]
    assert 'instruction = "INSTRUCTION", leaf = "REGISTER", struct = "tdx_module_args"' in choice.notices[0]


def test_a_wrapper_without_a_contract_of_its_name_is_told_how_to_declare_one():
    choice = choose(fixture("variants/stack_args.S"), "__seamcall_stack_args", CONTRACTS)
    assert choice.contract is None
    assert choice.notices[0].startswith("__seamcall_stack_args: ABI unknown (no contract of that name): ")
    assert 'instruction = "seamcall", leaf = "rdi"' in choice.notices[0]
    # a function that executes no TDX instruction has nothing to say
    assert choose(fixture("variants/tdcall_helper.S"), "tdx_load_basic_args", CONTRACTS) == \
        choose(fixture("variants/tdcall_helper.S"), "tdx_load_basic_args", ())
    assert choose(fixture("variants/tdcall_helper.S"), "tdx_load_basic_args", CONTRACTS).notices == ()


def test_a_tie_is_no_choice(tmp_path):
    entry = ('[[wrapper]]\nname = "__tdcall"\nera = "legacy"\nvariant = "{}"\ninstruction = "tdcall"\n'
             'leaf = "rdi"\nstruct = "tdx_module_args"\nstruct_pointer = "rsi"\n'
             'inputs = ["rcx", "rdx", "r8", "r9", "r10", "r11"]\nmodule_outputs = "call"\n')
    path = tmp_path / "c.toml"
    path.write_text(entry.format("a") + entry.format("b"))
    contracts = load_contracts((str(path),))
    program = fixture("unified/arch/x86/coco/tdx/tdcall.S")
    choice = choose(program, "__tdcall", contracts, era="legacy")
    assert choice.contract is None
    assert choice.notices[0].startswith("__tdcall: ABI ambiguous: __tdcall [legacy/a], __tdcall [legacy/b] fit "
                                        "its code equally")
    assert choose(program, "__tdcall", contracts, variant="b").contract.key == "__tdcall [legacy/b]"


def test_forcing_a_contract_the_code_contradicts_says_so():
    program = fixture("unified/arch/x86/coco/tdx/tdcall.S")
    choice = choose(program, "__tdcall", CONTRACTS, era="legacy")
    assert choice.contract.key == "__tdcall [legacy]" and choice.source == "forced by --abi legacy"
    assert choice.notices[0].startswith("__tdcall: __tdcall [legacy] is forced by --abi legacy, but the code "
                                        "contradicts it: it accesses memory through RSI, not through R9")
    flags = choose(fixture("legacy/arch/x86/coco/tdx/tdcall.S"), "__tdx_hypercall", CONTRACTS, variant="flags")
    assert flags.contract.key == "__tdx_hypercall [legacy/flags]"
    assert flags.source == "forced by --variant __tdx_hypercall=flags" and not flags.notices


# --- a prototype decides; the assembly confirms ---------------------------------------------

def _prototype(name: str, *types: str) -> Prototype:
    parameters = tuple(Parameter(t, points_to=t.removeprefix("struct ").removesuffix(" *") if "*" in t else None)
                       for t in types)
    return Prototype(name, "u64", parameters, Origin("arch/x86/include/asm/shared/tdx.h", 123))


def test_a_prototype_decides_and_names_its_place():
    program = fixture("v6.6-rename/arch/x86/coco/tdx/tdcall.S")
    prototype = _prototype("__tdcall", "u64", "u64", "u64", "u64", "u64", "struct tdx_module_output *")
    choice = choose(program, "__tdcall", CONTRACTS, prototype=prototype)
    assert choice.contract.key == "__tdcall [legacy]"
    assert choice.source == "declared at arch/x86/include/asm/shared/tdx.h:123" and not choice.notices


def test_a_prototype_the_assembly_disagrees_with_is_a_finding():
    program = fixture("v6.6-rename/arch/x86/coco/tdx/tdcall.S")
    prototype = _prototype("__tdcall", "u64", "struct tdx_module_args *")
    choice = choose(program, "__tdcall", CONTRACTS, prototype=prototype)
    assert choice.contract.key == "__tdcall [unified]"    # the declaration is what its callers see
    assert choice.notices == (
        "__tdcall: declared at arch/x86/include/asm/shared/tdx.h:123 disagrees with the assembly: the assembly "
        "uses RCX, R8, R9 but the prototype declares 2 parameters",
        "__tdcall: declared at arch/x86/include/asm/shared/tdx.h:123 disagrees with the assembly: the assembly "
        "writes through R9, the prototype's pointers are RSI")


def test_a_tree_layout_replaces_the_shipped_forms():
    program = fixture("unified/arch/x86/coco/tdx/tdcall.S")
    fields = tuple(StructField(f.name, f.offset, f.size) for f in abi.LAYOUTS["tdx_module_args"].fields)
    tree = StructLayout("tdx_module_args", fields, 104, "arch/x86/include/asm/shared/tdx.h:90")
    choice = choose(program, "__tdcall_ret", CONTRACTS, layouts={"tdx_module_args": tree})
    assert choice.contract.layout is tree
    assert choice.summary.endswith("struct tdx_module_args (104 bytes, arch/x86/include/asm/shared/tdx.h:90)")


# --- the shims agree with the layout ---------------------------------------------------------

def test_the_six_register_layout_of_the_shim_is_model_abis(tmp_path):
    from test_shims import assembled_values
    names = [f"TDX_HYPERCALL_{reg}" for reg in abi.TDX_HYPERCALL_ARGS_OLDEST]
    values = assembled_values(tmp_path, names, f"-D{SELECTOR}", headers=["asm/asm-offsets.h"])
    assert values == {f"TDX_HYPERCALL_{f.name}": f.offset for f in abi.LAYOUTS["tdx_hypercall_args_oldest"].fields}
    aliases = assembled_values(tmp_path, ["TDX_ERR_SW_ERROR", "TDX_ERR_SEAMCALL_VMFAILINVALID"], headers=["asm/tdx.h"])
    assert aliases == {"TDX_ERR_SW_ERROR": abi.TDX_SW_ERROR,
                       "TDX_ERR_SEAMCALL_VMFAILINVALID": abi.TDX_SEAMCALL_VMFAILINVALID}


def _hypercall_loads(path: Path, options: FrontEndOptions) -> list[str]:
    return [line.text.strip() for line in preprocessed(str(path), options) if "(%rdi), %r1" in line.text]


def test_a_file_using_only_r10_to_r15_gets_the_six_register_layout(tmp_path):
    oldest = FIXTURES / "legacy-oldest/arch/x86/coco/tdx/tdcall.S"    # its own asm-offsets.h left out
    assert _hypercall_loads(oldest, FrontEndOptions())[0] == "movq 0(%rdi), %r10"
    twelve = FIXTURES / "v6.3/arch/x86/coco/tdx/tdcall.S"
    assert _hypercall_loads(twelve, FrontEndOptions())[0] == "movq 16(%rdi), %r10"
    # the user decides with -D or -U of the selector
    assert _hypercall_loads(oldest, FrontEndOptions(undefines=(SELECTOR,)))[0] == "movq 16(%rdi), %r10"
    # a tree that brings its own asm-offsets.h is not second-guessed
    own = FIXTURES / "legacy-oldest/arch/x86/include"
    assert _hypercall_loads(oldest, FrontEndOptions(include_dirs=(str(own),)))[0] == "movq 0(%rdi), %r10"
    read: list[str] = []
    preprocessed(str(oldest), FrontEndOptions(include_dirs=(str(own),)), read)
    assert str(SHIM_DIR / "asm" / "asm-offsets.h") not in read


# --- what a check prints and writes -----------------------------------------------------------

def _check(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofs.cli", "check", *arguments, "--jobs", "1"],
                          cwd=cwd, capture_output=True, text=True)


def test_the_report_names_contract_source_and_layout_once_per_function():
    done = _check(str(FIXTURES / "v5.19/arch/x86/coco/tdx/tdcall.S"), "--matrix", "CONFIG_FRAME_POINTER")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    abi_lines = lines[lines.index("ABI:") + 1:lines.index("ABI:") + 3]
    assert abi_lines == [
        "  __tdx_module_call: contract __tdx_module_call [legacy], inferred from the file: 6 arguments (RDI leaf, "
        "RSI->RCX, RDX->RDX, RCX->R8, R8->R9, R9 struct), outputs stored through R9; struct tdx_module_output "
        "(48 bytes, shipped facts (SPEC section 5))",
        "  __tdx_hypercall: contract __tdx_hypercall [legacy/oldest], inferred from the file: 2 arguments (RDI "
        "struct, RSI flags), leaf 0 in RAX, ECX = 0xfc00, RSI tested for 0x1, 0x2, outputs stored through RDI, "
        "RAX <- R10, calls __tdx_hypercall_failed; struct tdx_hypercall_args (48 bytes, r10..r15, shipped "
        "facts (SPEC section 5))"]


def test_json_results_carry_the_abi_source_and_the_struct():
    done = _check(str(FIXTURES / "backport/arch/x86/coco/tdx/tdcall.S"), "--json", "-")
    results = {r["function"]: r for r in json.loads(done.stdout)["results"]}
    assert results["__tdx_hypercall"]["abi"] == "legacy" and results["__tdcall_ret"]["abi"] == "unified"
    assert results["__tdx_hypercall"]["abi_source"].startswith("inferred from the file: 2 arguments")
    assert results["__tdcall_ret"]["struct"] == "struct tdx_module_args (104 bytes, shipped facts (SPEC section 5))"


def test_a_counterexample_carries_its_contract_and_layout_and_replays(tmp_path):
    broken = FIXTURES / "broken/hypercall_r10_r15_outputs_always.S"
    done = _check(str(broken), "--property", "output-marshalling", "--cex-dir", str(tmp_path))
    assert done.returncode == 1, done.stderr
    [path] = tmp_path.glob("*.json")
    cex = json.loads(path.read_text())
    assert cex["contract"] == "__tdx_hypercall [legacy/oldest]"
    assert cex["abi"]["layout"]["size"] == 48 and cex["abi"]["contract"]["struct"] == "tdx_hypercall_args"
    assert cex["abi"]["abi_source"].startswith("inferred from the file:")
    replay = subprocess.run([sys.executable, "-m", "proofs.cli", "replay", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert replay.returncode == 0 and replay.stdout.rstrip().endswith("REPRODUCED"), replay.stdout + replay.stderr
