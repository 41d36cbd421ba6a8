"""The property catalog and the prover, on small AT&T functions.

Each snippet is parsed by the real instruction parser and run through the
real executor; the claims are decided by Z3.  Every refutation's
counterexample is replayed with the concrete interpreter and must really
violate the property (``confirmed``), and re-replaying it from its JSON form
(what ``--cex-dir`` writes) must violate it again.
"""
from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest
import z3

from grammar import ast
from grammar.caches import CACHES
from grammar.parser import parse_instruction
from grammar.source import Origin
from proofs.contracts import load_contracts, struct_forms
from proofs.counterexample import STACK_WATCH, native_placement, replay_counterexample
from model.native import COUNTEREXAMPLE_RSP_PAGE, DATA_BASE, DATA_SIZE, PAGE
from grammar.ast import GPR64
from model.tdx import Outcome
from model.transfers import PathEnd
from proofs.properties import (CATALOG, PROPERTIES, STACK_DEPTH, ConcreteOps, EventView, PathView,
                               applicable)
from model.executor import MemoryAccess, Solver
from model.outcomes import Verdict
from proofs.assumptions import formulas, function_assumptions, placed_structs, pointer_accesses_off_frame
from proofs.prover import check_function, function_paths
from proofs.views import symbolic_view
from proofs.settings import Settings

CONTRACTS = load_contracts()


def program(functions: dict[str, str], extable: tuple[tuple[str, str], ...] = ()) -> ast.Program:
    """A program of AT&T functions (one line each: label or instruction)."""
    built = []
    for name, text in functions.items():
        items = []
        for number, line in enumerate(textwrap.dedent(text).strip("\n").splitlines(), start=1):
            line, origin = line.strip(), Origin(f"{name}.S", number)
            if line.endswith(":"):
                items.append(ast.Label(line[:-1], origin))
            elif line:
                items.append(parse_instruction(line, origin, {}))
        built.append(ast.Function(name, Origin(f"{name}.S", 1), ".text", tuple(items)))
    labels = {item.name: (fn.name, index) for fn in built
              for index, item in enumerate(fn.items) if isinstance(item, ast.Label)}
    entries = tuple(ast.ExtableEntry(a, b, "fault", Origin("extable.S", 1)) for a, b in extable)
    return ast.Program(tuple(f"{name}.S" for name in functions), tuple(built), entries, labels)


def check(prog: ast.Program, name: str, properties=CATALOG, **settings):
    result = check_function(prog, name, "default", Settings(properties=tuple(properties),
                                                             contracts=CONTRACTS, **settings))
    return {(o.property, o.detail): o for o in result.obligations}, result


def verdict(obligations, pid: str) -> str:
    statuses = {o.status for (p, _), o in obligations.items() if p == pid}
    return "refuted" if "refuted" in statuses else "unknown" if "unknown" in statuses else "proved"


def assert_real(prog, obligations, pid: str) -> None:
    """Every refuted obligation of ``pid`` has a confirmed counterexample
    that also replays from its JSON form."""
    refuted = [o for (p, _), o in obligations.items() if p == pid and o.status == "refuted"]
    assert refuted
    for o in refuted:
        cex = json.loads(json.dumps(o.counterexample))
        assert cex["confirmed"], cex.get("replay_problem")
        assert replay_counterexample(prog, cex)


def test_every_catalog_id_has_a_checker():
    assert set(PROPERTIES) == set(CATALOG)
    assert len(CATALOG) == 19


SAVES_RBX = """
    pushq %rbx
    movq $1, %rbx
    popq %rbx
    ret
"""


def test_correct_function_is_proved():
    obligations, _ = check(program({"f": SAVES_RBX}), "f")
    generic = ("callee-saved", "stack-balance", "return-address", "no-red-zone", "frame",
               "fault-handled", "direction-flag", "no-fallthrough", "extended-state")
    assert {p for p, _ in obligations} == set(generic)   # no contract: generic properties only
    assert all(o.status == "proved" for o in obligations.values())
    assert len([d for p, d in obligations if p == "callee-saved"]) == 6


@pytest.mark.parametrize("text, pid, detail", [
    ("movq $1, %rbx\nret", "callee-saved", "rbx"),
    ("pushq %rbx\npushq %r12\npopq %rbx\npopq %r12\nret", "callee-saved", "rbx"),
    ("pushq %rax\nret", "stack-balance", ""),
    ("movq %rax, (%rsp)\nret", "return-address", ""),
    ("movq %rax, -8(%rsp)\nret", "no-red-zone", ""),
    ("movq %rax, 16(%rsp)\nret", "frame", ""),
    ("std\nret", "direction-flag", ""),
    ("ud2\nret", "fault-handled", ""),
    ("pushq %rbx\npopq %rbx", "no-fallthrough", ""),
    ("testq %rdi, %rdi\nje done\nret\ndone:", "no-fallthrough", ""),
])
def test_broken_function_is_refuted_with_a_real_counterexample(text, pid, detail):
    prog = program({"f": text})
    obligations, _ = check(prog, "f", [pid])
    assert obligations[(pid, detail)].status == "refuted"
    assert_real(prog, obligations, pid)


SEAMCALL = """
    movq %rdi, %rax
    movq (%rsi), %rcx
    movq 8(%rsi), %rdx
    movq 16(%rsi), %r8
    movq 24(%rsi), %r9
    movq 32(%rsi), %r10
    movq 40(%rsi), %r11
    site:
    seamcall
    jc fail
    jmp out
    fail:
    movabsq $0x8000FF00FFFF0000, %rax
    jmp out
    trap:
    movabsq $0x8000FF0000000000, %rdi
    orq %rdi, %rax
    out:
    ret
"""


def test_unified_seamcall_contract_is_proved():
    obligations, result = check(program({"__seamcall": SEAMCALL}, (("site", "trap"),)), "__seamcall",
                                era="unified")
    assert result.contract == "__seamcall [unified]"
    assert all(o.status == "proved" for o in obligations.values()), \
        [(k, o.reason) for k, o in obligations.items() if o.status != "proved"]
    for pid in ("input-marshalling", "status-return", "vmfailinvalid-code", "fault-codes"):
        assert any(p == pid for p, _ in obligations)


@pytest.mark.parametrize("change, pid", [
    (("movabsq $0x8000FF00FFFF0000, %rax", "movabsq $0x8000FF00FFFF0001, %rax"), "vmfailinvalid-code"),
    (("orq %rdi, %rax", "movq %rdi, %rax"), "fault-codes"),
    (("movq 8(%rsi), %rdx", "movq 16(%rsi), %rdx"), "input-marshalling"),
    (("movq %rdi, %rax", "movq %rsi, %rax"), "input-marshalling"),
])
def test_contract_mutants_are_refuted(change, pid):
    prog = program({"__seamcall": SEAMCALL.replace(*change)}, (("site", "trap"),))
    obligations, _ = check(prog, "__seamcall", [pid], era="unified")
    assert verdict(obligations, pid) == "refuted"
    assert_real(prog, obligations, pid)


def test_a_wrapper_that_returns_without_its_tdx_instruction_is_refuted():
    prog = program({"__seamcall": SEAMCALL.replace("    seamcall\n", "    nop\n")}, (("site", "trap"),))
    obligations, _ = check(prog, "__seamcall", ["input-marshalling"], era="unified")
    assert obligations["input-marshalling", "executed"].status == "refuted"
    assert [d for (_, d), o in obligations.items() if o.status == "refuted"] == ["executed"]
    assert_real(prog, obligations, "input-marshalling")


def test_missing_extable_entry_is_refuted_on_fault_handled():
    prog = program({"__seamcall": SEAMCALL})
    obligations, _ = check(prog, "__seamcall", ["fault-handled"], era="unified")
    assert verdict(obligations, "fault-handled") == "refuted"
    assert_real(prog, obligations, "fault-handled")


HYPERCALL = """
    movq %rdi, %r11
    xorl %eax, %eax
    movl $0xFC00, %ecx
    tdcall
    testq %rax, %rax
    jnz failed
    movq %r10, %rax
    xorl %r10d, %r10d
    xorl %r11d, %r11d
    ret
    failed:
    call __tdx_hypercall_failed
"""


def hypercall_contracts(tmp_path) -> list:
    """The shipped contracts and one for ``hypercall`` (the oldest legacy shape)."""
    path = tmp_path / "extra.toml"
    path.write_text("""
[[wrapper]]
name = "hypercall"
era = "legacy"
instruction = "tdcall"
leaf = 0
input_constants = { rcx = 0xFC00 }
struct = "tdx_hypercall_args_oldest"
struct_pointer = "rdi"
module_outputs = "bitmap"
returns = "r10"
scrub = true
panic_on_failure = true
""")
    return load_contracts((str(path),))


def test_scrub_is_relational(tmp_path):
    contracts = hypercall_contracts(tmp_path)
    prog = program({"hypercall": HYPERCALL})
    result = check_function(prog, "hypercall", "default", Settings(contracts=contracts))
    statuses = {(o.property, o.detail): o.status for o in result.obligations}
    assert statuses[("scrub", "r10")] == "proved"
    assert statuses[("r10-to-rax", "")] == "proved"
    assert statuses[("panic-on-tdcall-failure", "")] == "proved"
    assert statuses[("no-fallthrough", "")] == "proved"   # its last instruction never returns
    # R12..R15 are exposed to the VMM and are callee-saved: restoring them is
    # callee-saved's job, so only the caller-clobbered ones are scrubbed.
    assert statuses[("callee-saved", "r12")] == "refuted"

    leaky = program({"hypercall": HYPERCALL.replace("xorl %r11d, %r11d\n", "")})
    result = check_function(leaky, "hypercall", "default", Settings(contracts=contracts, properties=("scrub",)))
    obligations = {(o.property, o.detail): o for o in result.obligations}
    assert obligations[("scrub", "r11")].status == "refuted"
    assert obligations[("scrub", "r10")].status == "proved"
    cex = obligations[("scrub", "r11")].counterexample
    assert cex["confirmed"] and "varied_tdx" in cex
    assert replay_counterexample(leaky, json.loads(json.dumps(cex)))

    dropped = program({"hypercall": HYPERCALL.replace("movq %r10, %rax", "nop")})
    result = check_function(dropped, "hypercall", "default",
                            Settings(contracts=contracts, properties=("r10-to-rax",)))
    assert result.obligations[0].status == "refuted"
    assert result.obligations[0].counterexample["confirmed"]


def test_unsupported_paths_are_never_proved():
    prog = program({"f": "pushq %rbx\njmp *%rax"})
    obligations, _ = check(prog, "f", ["callee-saved"])
    assert {o.status for o in obligations.values()} == {"unknown"}


def test_r10_to_rax_across_the_call_into_the_unified_wrapper(tmp_path):
    """The unified era's C glue, compiled by gcc, checked together with the
    unified tdcall.S: args->r10 (written back by __tdcall_saved_ret) reaches
    RAX.  Returning args->r11 instead is refuted, with a real counterexample."""
    import subprocess
    from pathlib import Path
    from grammar.frontend import FrontEndOptions, load_program
    fixtures = Path(__file__).resolve().parent / "fixtures" / "unified" / "arch" / "x86" / "coco" / "tdx"
    glue = tmp_path / "hcall_glue.s"
    subprocess.run(["cc", "-S", "-O2", "-o", str(glue), str(fixtures / "hcall_glue.c")], check=True)
    text = glue.read_text()
    assert "32(%rbx), %rax" in text      # gcc's return args->r10 (offset 32)
    for body, expected in ((text, "proved"), (text.replace("32(%rbx), %rax", "40(%rbx), %rax"), "refuted")):
        glue.write_text(body)
        prog = load_program([str(glue), str(fixtures / "tdcall.S")], FrontEndOptions())
        result = check_function(prog, "__tdx_hypercall", "default",
                                Settings(properties=("r10-to-rax",), contracts=CONTRACTS))
        assert result.contract == "__tdx_hypercall [unified]"
        [obligation] = result.obligations
        assert obligation.status == expected, obligation.reason
        if expected == "refuted":
            assert obligation.counterexample["confirmed"]
            assert replay_counterexample(prog, json.loads(json.dumps(obligation.counterexample)))


# --- falling through -------------------------------------------------------------------

AT_RETURN = ("callee-saved", "stack-balance", "return-address", "direction-flag")
ALONG_PATH = ("no-red-zone", "frame", "fault-handled")


def test_a_path_that_falls_through_is_refuted_and_leaves_the_end_obligations_unknown():
    prog = program({"f": "pushq %rbx\nmovq $1, %rbx\npopq %rbx"}, ())
    obligations, result = check(prog, "f")
    nft = obligations["no-fallthrough", ""]
    assert nft.status == "refuted" and nft.origin == Origin("f.S", 3)
    cex = nft.counterexample
    assert cex["end"] == "fallthrough" and cex["where"]["line"] == 3
    assert [step["line"] for step in cex["path"]] == [1, 2, 3]
    assert cex["actual"] == "execution goes past the end of 'f' into what follows it in section .text"
    assert_real(prog, obligations, "no-fallthrough")
    for pid in AT_RETURN:     # the caller gets control back from code that is not f's: undecided
        assert verdict(obligations, pid) == "unknown", pid
        assert all("leaves the function's code at f.S:3:1" in o.reason
                   for (p, _), o in obligations.items() if p == pid)
    for pid in ALONG_PATH:    # f's own accesses and fault sites are all on the path
        assert verdict(obligations, pid) == "proved", pid
    from proofs.report import text_report
    assert "path ends: fallthrough (leaves the function's code after f.S:3)" in text_report([result])


def test_a_violation_before_falling_through_is_still_refuted_there():
    prog = program({"f": "movq %rax, -8(%rsp)\nnop"})
    obligations, _ = check(prog, "f", ["no-red-zone", "no-fallthrough"])
    assert obligations["no-red-zone", ""].status == "refuted"
    assert obligations["no-red-zone", ""].counterexample["end"] == "fallthrough"
    assert_real(prog, obligations, "no-red-zone")


def test_an_unreached_fall_through_changes_nothing():
    prog = program({"f": "xorl %eax, %eax\ntestq %rax, %rax\nje out\nnop\nout:\nret"})
    obligations, _ = check(prog, "f")
    assert all(o.status == "proved" for o in obligations.values())


def test_a_hypercall_whose_failure_branch_falls_through_is_not_judged_on_its_panic(tmp_path):
    contracts = hypercall_contracts(tmp_path)
    # the failure branch jumps to the end instead of calling __tdx_hypercall_failed
    prog = program({"hypercall": HYPERCALL.replace("    call __tdx_hypercall_failed\n", "")})
    result = check_function(prog, "hypercall", "default", Settings(contracts=contracts))
    statuses = {(o.property, o.detail): o.status for o in result.obligations}
    assert statuses[("no-fallthrough", "")] == "refuted"
    assert statuses[("panic-on-tdcall-failure", "")] == "unknown"   # what follows may panic
    assert statuses[("input-marshalling", "rcx")] == "proved"       # judged at the TDCALL
    assert statuses[("input-marshalling", "executed")] == "unknown"
    assert statuses[("scrub", "r11")] == "unknown" and statuses[("r10-to-rax", "")] == "unknown"


def _falling_through_view(events) -> PathView:
    registers = dict.fromkeys(GPR64, 0)
    return PathView(ConcreteOps(), PathEnd.FALLTHROUGH, registers, registers, {"df": 1}, lambda a, n: 1,
                    lambda a, n: 0, events, (), (), Origin("f.S", 9), "past the end of 'f'")


def test_no_checker_claims_an_obligation_of_the_end_on_a_path_that_falls_through():
    """The prover leaves those unknown on such a path; a claim there could refute one."""
    regs = dict.fromkeys(GPR64, 7)
    for contract in (None,) + tuple(c.bound(struct_forms(c.struct, c.form)[0], "test") for c in CONTRACTS):
        for outcome in Outcome:
            event = EventView(contract.instruction if contract else "tdcall", outcome, Origin("f.S", 2),
                              regs, regs, 5 if outcome is Outcome.COMPLETION else None)
            view = _falling_through_view((event,))
            for pid in applicable(contract):
                prop = PROPERTIES[pid]
                claims = prop.check(view, view, contract) if prop.relational else prop.check(view, contract)
                along = prop.along_path(contract)
                assert {claim.detail for claim in claims} <= set(along), (pid, contract)
    (claim,) = PROPERTIES["no-fallthrough"].check(_falling_through_view(()), None)
    assert claim.violated is True and claim.actual == "execution goes past the end of 'f'"


def test_no_fallthrough_applies_to_every_function():
    assert "no-fallthrough" in applicable(None)
    assert all("no-fallthrough" in applicable(contract) for contract in CONTRACTS)


# --- stores into code -------------------------------------------------------------------

def test_a_store_into_code_is_never_proved_and_a_load_from_code_is_fine():
    stores = program({"f": "leaq f(%rip), %rdx\nmovq %rax, 8(%rdx)\nret"})
    obligations, result = check(stores, "f")
    assert {o.status for o in obligations.values()} == {"unknown"}
    assert all(o.reason.startswith("a path ended (unsupported) at f.S:2:1: store into code: ")
               for o in obligations.values())
    loads = program({"f": "table:\nmovq table+8(%rip), %rax\nmovq f(%rip), %rcx\nret"})
    obligations, _ = check(loads, "f")
    assert {o.status for o in obligations.values()} == {"proved"}


# --- frame-pointer ------------------------------------------------------------------------

FP_ON = {"CONFIG_FRAME_POINTER": True}

FRAMED = """
    push %rbp
    mov %rsp, %rbp
    {body}
    pop %rbp
    ret
"""


def frame_pointer(functions: dict[str, str], name: str = "f", extable=(), **settings):
    """The frame-pointer obligations of ``name`` with CONFIG_FRAME_POINTER on."""
    prog = program(functions, extable)
    obligations, result = check(prog, name, ["frame-pointer"], configs=FP_ON, **settings)
    return prog, obligations, result


def statuses(obligations) -> dict[str, str]:
    return {detail: o.status for (pid, detail), o in obligations.items() if pid == "frame-pointer"}


def test_frame_pointer_applies_only_with_the_option_on_and_says_so():
    prog = program({"f": FRAMED.format(body="movq %rsi, %rbp")})
    obligations, result = check(prog, "f", ["frame-pointer", "callee-saved"])
    assert not [key for key in obligations if key[0] == "frame-pointer"]
    assert "frame-pointer does not apply: CONFIG_FRAME_POINTER is off in this configuration" in result.assumptions
    assert "frame-pointer" not in applicable(None, {}) and "frame-pointer" in applicable(None, FP_ON)
    assert "frame-pointer" in applicable(None)      # under some configuration
    _, obligations, result = frame_pointer({"f": FRAMED.format(body="nop")})
    assert statuses(obligations) == {"rbp": "proved", "saved-rbp": "proved", "call": "proved"}
    assert not [text for text in result.assumptions if "does not apply" in text]


@pytest.mark.parametrize("body, refuted, line", [
    # flags kept in RBP past the TDX instruction, as the v6.2 __tdx_hypercall did
    ("push %rbp\nmovq %rsi, %rbp\ntdcall\npop %rbp", {"rbp"}, 5),
    # the saved caller's RBP overwritten while RBP points at it (and put back)
    ("movq (%rbp), %rbx\nmovq %rax, (%rbp)\nmovq %rbx, (%rbp)", {"saved-rbp"}, 5),
    # a scratch use of RBP, put back before FRAME_END: broken in between
    ("movq %rbp, %rbx\nxorl %ebp, %ebp\nmovq %rbx, %rbp", {"rbp"}, 5),
])
def test_a_broken_chain_inside_the_frame_is_refuted_where_it_breaks(body, refuted, line):
    prog, obligations, _ = frame_pointer({"f": FRAMED.format(body=body.replace("\n", "\n    "))})
    assert {d for d, status in statuses(obligations).items() if status == "refuted"} == refuted
    for detail in refuted:
        assert obligations[("frame-pointer", detail)].origin.line == line
    assert_real(prog, obligations, "frame-pointer")


def test_the_frame_set_up_in_the_wrong_order_is_refuted():
    # `mov %rsp, %rbp` before the push: RBP is the return-address slot, not the saved RBP's
    prog, obligations, _ = frame_pointer({"f": "mov %rsp, %rbp\npush %rbp\npop %rbp\nret"})
    assert obligations[("frame-pointer", "rbp")].status == "refuted"
    assert obligations[("frame-pointer", "rbp")].origin.line == 2
    assert_real(prog, obligations, "frame-pointer")


def test_the_flags_kept_on_the_stack_are_proved():
    body = "push %rsi\ntestq $1, (%rsp)\njz 1f\nnop\n1:\ntdcall\npop %rsi"
    _, obligations, _ = frame_pointer({"f": FRAMED.format(body=body.replace("\n", "\n    "))})
    assert set(statuses(obligations).values()) == {"proved"}


def test_a_leaf_without_a_frame_is_proved_and_a_call_without_one_refuted():
    _, obligations, _ = frame_pointer({"f": "push %rbx\nmovq %rdi, %rbx\ntdcall\npop %rbx\nret"})
    assert set(statuses(obligations).values()) == {"proved"}
    prog, obligations, _ = frame_pointer({"f": "push %rbx\ncall helper\npop %rbx\nret"})
    assert statuses(obligations) == {"rbp": "proved", "saved-rbp": "proved", "call": "refuted"}
    assert obligations[("frame-pointer", "call")].origin.line == 2
    prog, obligations, _ = frame_pointer({"f": FRAMED.format(body="call helper")})
    assert set(statuses(obligations).values()) == {"proved"}


def test_an_inlined_callee_is_judged_against_its_own_frame():
    good = {"g": FRAMED.format(body="nop"), "f": FRAMED.format(body="call g")}
    _, obligations, _ = frame_pointer(good)
    assert set(statuses(obligations).values()) == {"proved"}
    # a callee without a frame that calls nothing is a leaf: fine
    _, obligations, _ = frame_pointer({"g": "movl $1, %eax\nret", "f": FRAMED.format(body="call g")})
    assert set(statuses(obligations).values()) == {"proved"}
    # a callee that clobbers RBP (and puts it back) breaks the chain inside itself
    bad = {"g": "push %rbx\nmovq %rbp, %rbx\nmovq %rdi, %rbp\nmovq %rbx, %rbp\npop %rbx\nret",
           "f": FRAMED.format(body="call g")}
    prog, obligations, _ = frame_pointer(bad)
    refuted = obligations[("frame-pointer", "rbp")]
    assert refuted.status == "refuted" and refuted.origin.file == "g.S" and refuted.origin.line == 4
    assert_real(prog, obligations, "frame-pointer")


def test_a_fixup_is_judged_like_the_rest_of_the_path():
    text = FRAMED.format(body="site:\nseamcall\njmp out\ntrap:\nmovq %rax, %rbp\nout:").replace(
        "\n    out:", "\nout:")
    prog, obligations, _ = frame_pointer({"f": text}, extable=(("site", "trap"),))
    refuted = obligations[("frame-pointer", "rbp")]
    assert refuted.status == "refuted" and refuted.counterexample["tdx"][0]["outcome"].startswith("fault")
    assert_real(prog, obligations, "frame-pointer")


def test_old_firmware_that_clobbers_rbp_breaks_the_chain_after_the_instruction():
    text = FRAMED.format(body="movq %rdi, %rax\nseamcall")
    for firmware, status in (("spec", "proved"), ("clobbers-rbp", "refuted")):
        prog, obligations, _ = frame_pointer({"f": text}, firmware=firmware)
        assert obligations[("frame-pointer", "rbp")].status == status
    assert obligations[("frame-pointer", "rbp")].origin.line == 5     # the pop after the SEAMCALL
    assert_real(prog, obligations, "frame-pointer")


def test_frame_pointer_on_merged_paths_refutes_only_the_side_that_breaks_it():
    text = FRAMED.format(body="testq %rdi, %rdi\nje 1f\nmovq %rsi, %rbp\nmovq %rsp, %rbp\n1:\nnop")
    prog, obligations, result = frame_pointer({"f": text})
    refuted = obligations[("frame-pointer", "rbp")]
    assert refuted.status == "refuted" and refuted.origin.line == 6
    assert int(refuted.counterexample["entry"]["registers"]["rdi"], 0) != 0    # the side that did not jump
    assert_real(prog, obligations, "frame-pointer")


def test_a_spent_proof_time_leaves_what_is_undecided_unknown_never_proved():
    prog = program({"f": "push %rbx\nmov %rdi, %rbx\npop %rbx\nret"})
    decided, _ = check(prog, "f")
    assert {o.status for o in decided.values()} == {"proved"}
    spent, _ = check(prog, "f", proof_seconds=0)
    # Each claim the solver was to decide is unknown; an obligation with no
    # claim on any path (no fault site for fault-handled ...) holds as it did.
    assert spent[("callee-saved", "rbx")].status == "unknown"
    assert spent[("return-address", "")].status == "unknown"
    unknown = [o for o in spent.values() if o.status == "unknown"]
    assert all("time limit of 0 seconds" in o.reason and "--limit proof-seconds=N" in o.reason for o in unknown)
    assert "refuted" not in {o.status for o in spent.values()}


def test_a_later_configuration_asks_only_what_was_not_shown(monkeypatch):
    """The claims a task's earlier configuration showed unsatisfiable, on the
    same path of the same code, hold without a query; the verdicts stay."""
    asked = []
    ask = Solver._ask
    monkeypatch.setattr(Solver, "_ask", lambda self, *more, **options: asked.append(1) or ask(self, *more, **options))
    # RBX is kept only by the path condition: the path that takes the copy needs a query
    prog = program({"f": "cmp %rbx, %rdi\njne out\nmov %rdi, %rbx\nout:\nret"})
    properties = ["callee-saved"]
    CACHES.clear()                          # nothing shown before
    first, _ = check(prog, "f", properties)
    queries = len(asked)
    again, _ = check(prog, "f", properties)
    assert {key: o.status for key, o in again.items()} == {key: o.status for key, o in first.items()}
    assert {o.status for o in first.values()} == {"proved"}
    assert len(asked) - queries < queries


def test_a_claim_a_precondition_rules_out_is_proved_without_a_query(monkeypatch):
    """DF is clear at entry (a precondition that fixes a value): on a path
    that does not touch DF, ``direction-flag`` holds without a query."""
    asked = []
    ask = Solver._ask
    monkeypatch.setattr(Solver, "_ask", lambda self, *more, **options: asked.append(1) or ask(self, *more, **options))
    CACHES.clear()                          # nothing shown before
    check(program({"f": "mov %rdi, %rax\nret"}), "f", ["fault-handled"])     # no claim: the executor's queries
    executor = len(asked)
    CACHES.clear()
    decided, _ = check(program({"f": "mov %rdi, %rax\nret"}), "f", ["direction-flag"])
    assert decided[("direction-flag", "")].status == "proved" and len(asked) == 2 * executor
    decided, _ = check(program({"f": "std\nret"}), "f", ["direction-flag"])
    assert decided[("direction-flag", "")].status == "refuted"


def test_an_access_off_the_stack_is_never_below_rsp_without_a_query():
    """An access at a constant address or through the struct pointer (inside
    the struct or not) is known not below RSP, and the solver agrees under
    the asserted assumptions."""
    prog = program({"__seamcall": SEAMCALL.replace("    out:\n", "    out:\n    movq %r11, -8(%rsi)\n"
                                                               "    movq %r11, 0x2000\n")}, (("site", "trap"),))
    settings = Settings(contracts=CONTRACTS, era="unified")
    choice, paths = function_paths(prog, "__seamcall", settings)
    stated = formulas(function_assumptions(paths[0].entry, choice.contract))
    regions = paths[0].entry.memory.regions
    solver = Solver(settings.timeout, tuple(stated))
    decided = 0
    for path in paths:
        view = symbolic_view(path, regions, False)
        unknown = dataclasses.replace(view, accesses=tuple(dataclasses.replace(a, below_rsp=None)
                                                           for a in view.accesses))
        context = (path.condition, *pointer_accesses_off_frame(path.accesses, regions[0][0]))
        for access, known, claim in zip(view.accesses, PROPERTIES["no-red-zone"].check(view, choice.contract),
                                        PROPERTIES["no-red-zone"].check(unknown, choice.contract)):
            if "rsp" in str(access.address):
                continue
            assert access.below_rsp is False and z3.is_false(z3.simplify(known.violated))
            assert solver.check(context + (claim.violated,))[0] is Verdict.UNSAT
            decided += 1
    assert decided >= 3 * len(paths)


@pytest.mark.parametrize("nullable", [False, True])
def test_off_frame_formulas_left_out_inside_the_struct_follow_from_the_assumptions(nullable):
    """An access inside the placed struct needs no off-frame formula: each
    one left out follows from the stated assumptions (NULL allowed or
    not), and those just outside the struct, or through another pointer,
    are kept."""
    prog = program({"__seamcall": SEAMCALL}, (("site", "trap"),))
    settings = Settings(contracts=CONTRACTS, era="unified")
    choice, paths = function_paths(prog, "__seamcall", settings)
    contract = dataclasses.replace(choice.contract, struct_may_be_null=nullable)
    entry = paths[0].entry
    rsp, (pointer, _, size), = entry.regs["rsp"], *placed_structs(entry, contract)
    solver = Solver(settings.timeout, tuple(formulas(function_assumptions(entry, contract))))
    origin = Origin("f.S", 1)
    kept = left_out = 0
    for base in (pointer, entry.regs["rbx"]):
        for offset in (-8, -1, 0, 8, size - 8, size - 1, size):
            for width in (8, 64):
                access = MemoryAccess("write", base + offset, width, rsp, origin)
                (full,) = pointer_accesses_off_frame([access], rsp)
                inside = base is pointer and 0 <= offset and offset + width // 8 <= size
                assert pointer_accesses_off_frame([access], rsp, placed_structs(entry, contract)) == \
                    (() if inside else (full,))
                if inside:
                    assert solver.check((z3.Not(full),))[0] is Verdict.UNSAT
                    left_out += 1
                else:
                    kept += 1
    assert left_out == 7 and kept == 21


@pytest.mark.parametrize("stack_offset", [None, STACK_WATCH - 8, STACK_WATCH - 7, -(STACK_DEPTH + STACK_WATCH),
                                          -(STACK_DEPTH + STACK_WATCH) - 1, 1 << 20])
def test_native_placement_short_forms_are_the_full_condition(stack_offset):
    """native_placement's short forms (an access inside the struct: the
    struct not NULL; an access at the entry RSP plus a constant: true or
    false) are the full condition (the access in the stack window or the
    data region), given the struct's own condition: the two conjunctions
    are equivalent, and the placement can hold but where an access is out
    of both.  The accesses: the struct's fields, one past it, one through
    another register, a pushed word, and a load at ``stack_offset`` from
    the entry RSP (at and just past each edge of the stack window, and far
    above it)."""
    extra = f"    movq {stack_offset}(%rsp), %r11\n" if stack_offset is not None else ""
    body = SEAMCALL.replace("    out:\n", "    out:\n    movq %r11, 48(%rsi)\n    movq %r11, 8(%rbx)\n"
                                        "    pushq %rax\n    popq %rax\n" + extra)
    prog = program({"__seamcall": body}, (("site", "trap"),))
    choice, paths = function_paths(prog, "__seamcall", Settings(contracts=CONTRACTS, era="unified"))
    rsp = paths[0].entry.regs["rsp"]
    (base, low, end), = paths[0].entry.memory.regions[1:]
    stack_low = rsp - (STACK_DEPTH + STACK_WATCH)
    outside = stack_offset is not None and not -(STACK_DEPTH + STACK_WATCH) <= stack_offset <= STACK_WATCH - 8

    def in_data(address, size):
        return z3.ULE(address - (DATA_BASE + PAGE), DATA_SIZE - PAGE - size)
    for path in paths:
        full = [z3.Extract(63, 12, rsp) == COUNTEREXAMPLE_RSP_PAGE >> 12,
                z3.Or(base == 0, in_data(base + low, end - low))]
        full += [z3.Implies(a.guard, z3.Or(z3.ULE(a.address - stack_low, STACK_DEPTH + 2 * STACK_WATCH - a.width // 8),
                                           in_data(a.address, a.width // 8))) for a in path.accesses]
        assert len(path.accesses) >= 9
        solver = z3.Solver()
        solver.add(native_placement(path) != z3.And(full))
        assert solver.check() == z3.unsat
        holds = z3.Solver()
        holds.add(native_placement(path), path.condition)
        assert holds.check() == (z3.unsat if outside else z3.sat)
