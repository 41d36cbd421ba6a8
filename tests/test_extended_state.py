"""``extended-state`` and the caller obligation of a leaf declared to reset
the AVX state (issue 14, part 4): proved on every wrapper, the obligation
printed with the result for exactly the leaves and outcomes that may reset
it, and shown by ``summary``."""
from __future__ import annotations

import json
from pathlib import Path

import z3

from cli_runner import run_in_process
from grammar.frontend import FrontEndOptions, load_program
from model import bv
from model.tdx import resets_extended
from proofs.contracts import load_contracts
from proofs.prover import check_function
from proofs.settings import Settings
from proofs.summary import Value, ValueKind, summarise

FIXTURES = Path(__file__).resolve().parent / "fixtures"
UNIFIED_HOST = str(FIXTURES / "unified/arch/x86/virt/vmx/tdx/seamcall.S")
LEGACY_GUEST = str(FIXTURES / "legacy/arch/x86/coco/tdx/tdcall.S")


def checked(path: str, function: str, resets: dict[str, tuple[int, ...]]):
    program = load_program([path], FrontEndOptions())
    result = check_function(program, function, "default",
                            Settings(contracts=load_contracts(), resets_extended=resets,
                                     properties=("extended-state", "callee-saved")))
    (status,) = {o.status for o in result.obligations if o.property == "extended-state"}
    return status, [text for text in result.assumptions if text.startswith("caller obligation:")]


def test_no_declared_leaf_no_obligation():
    assert checked(UNIFIED_HOST, "__seamcall_ret", {}) == ("proved", [])


def test_a_declared_leaf_is_the_callers_obligation_not_a_failure():
    status, obligations = checked(UNIFIED_HOST, "__seamcall_ret", {"seamcall": (0x40, 0x41)})
    assert status == "proved"
    assert [text.split(" must ")[0] for text in obligations] == [
        "caller obligation: callers of __seamcall_ret passing leaf 0x40 in RDI",
        "caller obligation: callers of __seamcall_ret passing leaf 0x41 in RDI"]
    assert all("on completion of the seamcall at " in text and "AVX/AVX2/AVX-512 state to INIT" in text
               for text in obligations)


def test_a_constant_leaf_names_only_itself():
    """The hypercall always calls TDCALL leaf 0: a declared leaf 5 cannot
    happen, a declared leaf 0 always may (its completion path returns)."""
    assert checked(LEGACY_GUEST, "__tdx_hypercall", {"tdcall": (5,)}) == ("proved", [])
    status, (obligation,) = checked(LEGACY_GUEST, "__tdx_hypercall", {"tdcall": (0,)})
    assert status == "proved"
    assert obligation.startswith("caller obligation: callers of __tdx_hypercall (it always calls leaf 0x0) must save")
    # SEAMCALL leaves do not apply to a TDCALL wrapper
    assert checked(LEGACY_GUEST, "__tdx_hypercall", {"seamcall": (0,)}) == ("proved", [])


def test_the_leaf_number_ignores_the_version_bits():
    assert z3.is_true(z3.simplify(resets_extended(bv.const(0x40 | 1 << 16, 64), (0x40,))))
    assert z3.is_false(z3.simplify(resets_extended(bv.const(0x41, 64), (0x40,))))


def test_summary_shows_init_on_completion_only():
    (s,) = summarise([UNIFIED_HOST], FrontEndOptions(), [{}], ["__seamcall_saved_ret"],
                     Settings(contracts=load_contracts(), resets_extended={"seamcall": (0x40,)}))
    assert s.outcome("completion").value("extended state") == Value(ValueKind.INIT, "INIT after seamcall leaf 0x40")
    for failure in ("VMfailInvalid", "#UD", "#GP"):
        assert s.outcome(failure).value("extended state").kind is ValueKind.UNCHANGED
    assert any(text.startswith("caller obligation: callers of __seamcall_saved_ret passing leaf 0x40")
               for text in s.assumptions)


def test_check_command_prints_the_obligation_under_its_function(tmp_path):
    report = tmp_path / "r.json"
    status, out, err = run_in_process(["check", UNIFIED_HOST, "--function", "__seamcall", "--function",
                                       "__seamcall_ret", "--jobs", "1",
                                       "--property", "extended-state", "--resets-extended", "0x40",
                                       "--json", str(report)], 120)
    assert status == 0, err
    lines = out.splitlines()
    own = lines.index("Assumptions for __seamcall_ret [default]:")
    assert any("caller obligation: callers of __seamcall_ret passing leaf 0x40 in RDI" in line
               for line in lines[own:])
    for result in json.loads(report.read_text())["results"]:
        assert [o["status"] for o in result["obligations"]] == ["proved"]
        assert any(text.startswith(f"caller obligation: callers of {result['function']} passing leaf 0x40")
                   for text in result["assumptions"])


def test_check_help_lists_the_property_and_the_option():
    status, out, _ = run_in_process(["check", "--help"], 30)
    assert status == 0
    assert "extended-state" in out and "--resets-extended" in out
