"""Values in reports are unsigned hex (issue 13): an instruction as a
counterexample's trace and a SARIF code flow show it prints each immediate
at its operation width (``$0x8000ff0000000000``, not
``$-0x7fff010000000000``), and that text is the same instruction -- GNU as
assembles it to the bytes of the signed form the front end re-emits."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from grammar import ast
from grammar.frontend import FrontEndOptions
from grammar.parser import format_instruction
from proofs.programs import cached_program

sys.path.insert(0, str(Path(__file__).parent))
from objfile import as_assemble, read_elf  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _with_immediates() -> list[ast.Instruction]:
    """Every fixture instruction with an immediate and no branch target (each assembles alone)."""
    found = {}
    for path in sorted(FIXTURES.glob("broken/*.S")):
        program = cached_program((str(path),), FrontEndOptions())
        for function in program.functions:
            for instr in function.instructions:
                if any(isinstance(op, ast.Immediate) for op in instr.operands) and not any(
                        isinstance(op, (ast.Target, ast.Indirect)) for op in instr.operands):
                    found.setdefault(format_instruction(instr), instr)
    return list(found.values())


def _text_bytes(lines: list[str], output: Path) -> bytes:
    as_assemble("\t.text\n" + "".join(f"\t{line}\n" for line in lines), output)
    return read_elf(output).code()[".text"]


def test_the_shown_instructions_assemble_to_the_reemitted_bytes(tmp_path):
    instructions = _with_immediates()
    negative = [i for i in instructions if any(isinstance(op, ast.Immediate) and op.value < 0 for op in i.operands)]
    assert len(negative) >= 2 and len(instructions) >= 10
    assert all("$-" not in str(i) for i in instructions)
    assert any("$0x8000ff" in str(i) for i in negative)
    emitted = _text_bytes([format_instruction(i) for i in instructions], tmp_path / "emitted.o")
    shown = _text_bytes([str(i) for i in instructions], tmp_path / "shown.o")
    assert shown == emitted
    for instr in negative:                     # one by one: a shorter encoding of one would hide in the total
        assert _text_bytes([str(instr)], tmp_path / "one.o") == _text_bytes([format_instruction(instr)],
                                                                            tmp_path / "two.o"), str(instr)


def test_counterexamples_and_sarif_show_status_constants_unsigned(tmp_path):
    sarif = tmp_path / "log.sarif"
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", str(FIXTURES / "broken/fault_path_missing_pop.S"),
                           "--json", "-", "--sarif", str(sarif)], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    instructions = [step["instruction"] for result in json.loads(done.stdout)["results"]
                    for obligation in result["obligations"] for step in obligation.get("counterexample", {}).get(
                        "trace", [])]
    flows = [location["location"]["message"]["text"] for result in json.loads(sarif.read_text())["runs"][0]["results"]
             for flow in result.get("codeFlows", []) for thread in flow["threadFlows"]
             for location in thread["locations"]]
    for shown in (instructions, flows):
        assert any("$0x8000ff00ffff0000" in text for text in shown)      # TDX_SEAMCALL_VMFAILINVALID
        assert not any("$-" in text for text in shown)


def test_a_code_flow_step_carries_the_registers_it_changed(tmp_path):
    """The threadFlow location of each ``pop`` holds RSP (which every pop
    changes) and, where the value popped differs from what the register
    held (the swapped pops: R14 takes R15's saved value), the popped register."""
    sarif = tmp_path / "log.sarif"
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", str(FIXTURES / "broken/pop_order_swapped.S"),
                           "--sarif", str(sarif)], capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    pops = [location for result in json.loads(sarif.read_text())["runs"][0]["results"]
            for flow in result["codeFlows"] for thread in flow["threadFlows"] for location in thread["locations"]
            if location["location"]["message"]["text"].startswith("pop")]
    assert pops and all("rsp" in location["state"] for location in pops)
    assert all(value["text"].startswith("0x") for location in pops for value in location["state"].values())
    popped = {location["location"]["message"]["text"].split("%")[1] for location in pops
              if set(location["state"]) - {"rsp"}}
    assert "r14" in popped
