"""``equiv --json`` and its counterexample file are the same bytes for the
same input (issue 13): in two processes, and after other comparisons in
the same process (a solver with a history); the counterexample's values
are the smallest the difference allows (:mod:`proofs.canonical`)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proofs.equiv import check_equivalence, json_result
from proofs.equiv_spec import load_spec

EXAMPLES = Path(__file__).parent.parent / "examples"
SPECS = sorted(str(path.relative_to(EXAMPLES.parent)) for path in EXAMPLES.glob("*/*.toml"))
DIFFERENT = {"examples/hypercall/strict.toml", "examples/module_call/reads_all_gprs.toml",
             "examples/module_call/reads_r10_r11.toml", "examples/pop_swap/equiv.toml",
             "examples/tdx_sequence/equiv.toml", "examples/trivial_different/equiv.toml",
             "examples/vmcall_reads/exposed.toml"}
"""The specs whose sides differ (examples/README.md): their counterexamples are what could vary."""


def _equiv(spec: str, tmp_path: Path, label: str) -> tuple[int, str, dict[str, bytes]]:
    """A separate ``equiv`` process: its status, JSON report and counterexample files."""
    cex_dir = tmp_path / label
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "equiv", spec, "--json", "-",
                           "--cex-dir", str(cex_dir)], capture_output=True, text=True,
                          cwd=EXAMPLES.parent, check=False)
    assert done.returncode in (0, 1), done.stderr
    files = {path.name: path.read_bytes() for path in sorted(cex_dir.iterdir())} if cex_dir.exists() else {}
    return done.returncode, done.stdout, files


@pytest.mark.parametrize("spec", SPECS)
def test_two_processes_give_the_same_bytes(spec, tmp_path):
    first, second = _equiv(spec, tmp_path, "one"), _equiv(spec, tmp_path, "two")
    assert first == second
    status, _, files = first
    assert status == (1 if spec in DIFFERENT else 0)
    assert len(files) == (spec in DIFFERENT)


def test_same_counterexample_after_other_comparisons_in_the_process(tmp_path):
    """pop_swap decided cold in a process of its own, then here after other
    specs: the same counterexample; and it is the smallest one -- every
    entry register 0 but the two the swap needs told apart (RBX 0, R12 1)."""
    spec = "examples/pop_swap/equiv.toml"
    _, cold, _ = _equiv(spec, tmp_path, "cold")
    for other in ("examples/trivial_different/equiv.toml", "examples/module_call/reads_r10_r11.toml"):
        check_equivalence(load_spec(other))
    warm = json_result(check_equivalence(load_spec(spec)))
    cex = json.loads(cold)["counterexample"]
    assert warm["counterexample"]["difference"] == cex["difference"]
    for side in ("left", "right"):
        assert warm["counterexample"][side]["entry"] == cex[side]["entry"]
        assert warm["counterexample"][side]["tdx"] == cex[side]["tdx"]
    registers = cex["left"]["entry"]["registers"]
    assert cex["confirmed"]
    assert {r: v for r, v in registers.items() if r != "rsp" and v != "0x0"} == {"r12": "0x1"}
    assert cex["difference"] == {"observable": "rbx", "kind": "register", "left": "0x0", "right": "0x1"}
