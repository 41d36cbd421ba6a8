"""``tdxproof summary``: what each wrapper may change, per outcome, computed
from its paths -- checked against the ABI of SPEC section 5 on the shipped
fixtures, on small asm where "unchanged" needs the solver, and on a broken
fixture whose summary shows its bug."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_in_process
from grammar.frontend import FrontEndOptions
from proofs.contracts import load_contracts
from proofs.settings import Settings
from proofs.summary import (Change, FunctionSummary, OutcomeSummary, Value, ValueKind, diff_summaries, summarise)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
UNIFIED_HOST = str(FIXTURES / "unified/arch/x86/virt/vmx/tdx/seamcall.S")
LEGACY_GUEST = str(FIXTURES / "legacy/arch/x86/coco/tdx/tdcall.S")
POP_ORDER_SWAPPED = str(FIXTURES / "broken/pop_order_swapped.S")
SEAMCALL_OUTCOMES = ["completion", "VMfailInvalid", "#UD", "#GP"]
MODULE_CALL_REGISTERS = ("RCX", "RDX", "R8", "R9", "R10", "R11")

_SUMMARIES: dict[tuple, FunctionSummary] = {}


def summary_of(path: str, function: str, **settings) -> FunctionSummary:
    key = (path, function, tuple(sorted(settings.items())))
    if key not in _SUMMARIES:
        (_SUMMARIES[key],) = summarise([path], FrontEndOptions(), [{}], [function],
                                       Settings(contracts=load_contracts(), **settings))
    return _SUMMARIES[key]


def value(summary: FunctionSummary, outcome: str, location: str) -> Value:
    found = summary.outcome(outcome)
    assert found is not None, f"no outcome {outcome} in {[o.outcome for o in summary.outcomes]}"
    return found.value(location)


def entry(text: str) -> Value:
    return Value(ValueKind.ENTRY, text)


def module(text: str, when: str = "") -> Value:
    return Value(ValueKind.MODULE, text + when)


def constant(text: str) -> Value:
    return Value(ValueKind.CONSTANT, text)


UNCHANGED = Value(ValueKind.UNCHANGED)


def test_unified_seamcall_ret_per_outcome():
    s = summary_of(UNIFIED_HOST, "__seamcall_ret")
    assert s.complete and s.contract == "__seamcall_ret [unified]"
    assert [o.outcome for o in s.outcomes] == SEAMCALL_OUTCOMES
    assert value(s, "completion", "RAX") == module("status")
    for reg in MODULE_CALL_REGISTERS:
        assert value(s, "completion", reg) == module(reg)
        assert value(s, "completion", f"args->{reg.lower()}") == module(reg)
        for failure in SEAMCALL_OUTCOMES[1:]:     # loaded from the struct, not written back
            assert value(s, failure, reg) == entry(f"args->{reg.lower()}")
            assert value(s, failure, f"args->{reg.lower()}") == UNCHANGED
    assert value(s, "VMfailInvalid", "RAX") == constant("TDX_SEAMCALL_VMFAILINVALID")
    assert value(s, "#UD", "RAX") == constant("TDX_SEAMCALL_UD")
    assert value(s, "#GP", "RAX") == constant("TDX_SEAMCALL_GP")
    assert value(s, "VMfailInvalid", "CF") == constant("1")
    assert value(s, "completion", "CF") == constant("0")
    for outcome in SEAMCALL_OUTCOMES:
        assert value(s, outcome, "RSP") == entry("RSP + 8")
        for reg in ("RBX", "RBP", "R12", "R13", "R14", "R15", "DF"):
            assert value(s, outcome, reg) == UNCHANGED
        for location in ("other memory", "extended state", "args->r12", "args->rbx"):
            assert value(s, outcome, location) == UNCHANGED


def test_unified_seamcall_saved_ret_scrubs_and_writes_back_everything():
    s = summary_of(UNIFIED_HOST, "__seamcall_saved_ret")
    for reg in MODULE_CALL_REGISTERS:      # zeroed after the write-back (SPEC: speculation hygiene)
        assert value(s, "completion", reg) == constant("0x0")
    for reg in ("RBX", "RSI", "RDI", "R12", "R13", "R14", "R15", "RCX", "R8"):
        assert value(s, "completion", f"args->{reg.lower()}") == module(reg)
    for reg in ("RBX", "RBP", "RSI", "R12", "R13", "R14", "R15"):
        for outcome in SEAMCALL_OUTCOMES:
            assert value(s, outcome, reg) == UNCHANGED
    # the fault fixup leaves TDX_SW_ERROR in RDI, where it built the status
    assert value(s, "#GP", "RDI") == constant("TDX_SW_ERROR")
    assert value(s, "VMfailInvalid", "RDI") == entry("args->rdi")


def test_legacy_module_call_writes_out_only_when_not_null():
    s = summary_of(LEGACY_GUEST, "__tdx_module_call")
    assert [o.outcome for o in s.outcomes] == ["completion"]
    for reg in MODULE_CALL_REGISTERS:
        assert value(s, "completion", reg) == module(reg)
        assert value(s, "completion", f"out->{reg.lower()}") == module(reg, " when written")
    for reg in ("RBX", "RBP", "RSI", "RDI", "R12", "R13", "R14", "R15"):
        assert value(s, "completion", reg) == UNCHANGED


def test_legacy_hypercall_returns_r10_and_panics_on_failure():
    s = summary_of(LEGACY_GUEST, "__tdx_hypercall")
    assert [o.outcome for o in s.outcomes] == ["completion", "panic"]
    assert s.outcome("panic").end == "panic"
    assert value(s, "completion", "RAX") == module("R10")      # the R10 -> RAX remapping
    assert value(s, "completion", "RCX") == constant("0xffcc")  # TDVMCALL_EXPOSE_REGS_MASK
    for reg in ("RDX", "RSI", "R8", "R9", "R10", "R11"):
        assert value(s, "completion", reg) == constant("0x0")
    for reg in ("RBX", "RBP", "RDI", "R12", "R13", "R14", "R15"):
        assert value(s, "completion", reg) == UNCHANGED
    # at the call of the never-returning failure function: the TDCALL status, the frame pushed
    assert value(s, "panic", "RAX") == module("status")
    assert value(s, "panic", "RSP") == entry("RSP - 56")


def test_pop_order_swapped_shows_r14_and_r15_exchanged():
    s = summary_of(POP_ORDER_SWAPPED, "__seamcall_saved_ret")
    for outcome in SEAMCALL_OUTCOMES:
        assert value(s, outcome, "R14") == entry("R15")
        assert value(s, outcome, "R15") == entry("R14")
        assert value(s, outcome, "R13") == UNCHANGED
    good = summary_of(UNIFIED_HOST, "__seamcall_saved_ret")
    assert diff_summaries(good, s) == [
        "R14: was unchanged on completion, VMfailInvalid, #UD and #GP, now the entry R15",
        "R15: was unchanged on completion, VMfailInvalid, #UD and #GP, now the entry R14"]
    assert diff_summaries(good, good) == []


def test_unchanged_is_proved_by_the_solver(tmp_path):
    """RBX is rewritten with the value it already had on one side of a
    branch: the term differs from the entry RBX, the value does not."""
    source = tmp_path / "a.S"
    source.write_text(".text\n.globl f\n.type f, @function\nf:\n"
                      "\tcmpq $5, %rbx\n\tjne 1f\n\tmovq $5, %rbx\n\tmovq %rdi, %rax\n1:\n\tret\n.size f, .-f\n")
    (s,) = summarise([str(source)], FrontEndOptions(), [{}], [], Settings())
    (outcome,) = s.outcomes
    assert outcome.outcome == "no TDX instruction"
    assert outcome.value("RBX") == UNCHANGED
    assert outcome.value("RAX") == Value(ValueKind.UNKNOWN, "depends")    # RDI on one side, RAX on the other
    assert outcome.value("ZF").kind is ValueKind.UNKNOWN


def test_diff_names_new_outcomes_and_value_changes():
    def one(*outcomes):
        return FunctionSummary("f", "a.S", "default", None, outcomes)
    old = one(OutcomeSummary("completion", 1, "returned", (Change("RAX", Value(ValueKind.MODULE, "status")),)))
    new = one(OutcomeSummary("completion", 1, "returned", ()),
              OutcomeSummary("#GP", 1, "returned", (Change("RBX", Value(ValueKind.MODULE, "RBX")),)))
    assert diff_summaries(old, new) == ["#GP: a new outcome (now 1 path(s), returned)",
                                        "RAX: was module output status on completion, now unchanged"]


def test_summary_command_text_and_json(tmp_path):
    status, out, err = run_in_process(["summary", POP_ORDER_SWAPPED], 120)
    assert status == 0, err
    assert "location" in out and "VMfailInvalid" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("R14 "))
    assert row.split()[1:] == ["entry", "R15"] * 4
    report = tmp_path / "summary.json"
    status, out, err = run_in_process(["summary", POP_ORDER_SWAPPED, "--json", str(report)], 120)
    assert status == 0, err
    (data,) = json.loads(report.read_text())["summaries"]
    completion = next(o for o in data["outcomes"] if o["outcome"] == "completion")
    assert {"location": "R15", "kind": "entry", "value": "R14"} in completion["changes"]


@pytest.mark.parametrize("argv, message", [
    (["--function", "nope"], "no function named 'nope'"),
    (["--resets-extended", "0x10000"], "leaf number 0 to 0xffff"),
    (["--resets-extended", "vmcall:1"], "[seamcall:|tdcall:]LEAF"),
])
def test_summary_bad_input_is_exit_2(argv, message):
    status, _, err = run_in_process(["summary", POP_ORDER_SWAPPED, *argv], 60)
    assert status == 2 and message in err and "Traceback" not in err
