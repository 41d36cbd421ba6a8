"""The JSON report and the counterexample files are the same bytes for
the same input (issue 13): whatever ``--jobs``, in two processes, and
whether or not other functions were checked first in the same process;
solver timings only in the optional ``timings`` section; counterexample
values the smallest the violation allows (:mod:`proofs.canonical`)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import z3

from grammar.frontend import FrontEndOptions
from model.executor import Solver
from model.outcomes import Verdict
from proofs.canonical import Minimiser
from proofs.contracts import contract_from_record, load_contracts
from proofs.counterexample import confirm, replay, scenario_from_json
from proofs.programs import cached_program
from proofs.prover import check_function
from proofs.report import json_report
from proofs.settings import Settings, row_settings

BROKEN = Path(__file__).parent / "fixtures" / "broken"
REFUTED = ("pop_order_swapped.S", "fault_path_missing_pop.S", "missing_scrub.S")
"""Broken wrappers of one name (``__seamcall_saved_ret``) and one of another."""


def _groups(tmp_path: Path) -> list[str]:
    """Each of :data:`REFUTED` in a directory of its own: a file group each,
    so that functions of the same name do not clash."""
    files = []
    for position, name in enumerate(REFUTED):
        directory = tmp_path / f"group{position}"
        directory.mkdir()
        files.append(str(shutil.copy(BROKEN / name, directory / name)))
    return files


def _check(files: list[str], tmp_path: Path, label: str, *options: str) -> tuple[str, dict[str, bytes]]:
    """The JSON report of a ``check`` process and its counterexample files by name."""
    cex_dir = tmp_path / f"cex-{label}"
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", *files, "--json", "-",
                           "--cex-dir", str(cex_dir), *options], capture_output=True, check=False, text=True)
    assert done.returncode == 1, done.stderr
    return done.stdout, {path.name: path.read_bytes() for path in sorted(cex_dir.iterdir())}


def test_same_bytes_whatever_jobs_and_process(tmp_path):
    files = _groups(tmp_path)
    one = _check(files, tmp_path, "one", "--jobs", "1")
    two = _check(files, tmp_path, "two", "--jobs", "2")
    again = _check(files, tmp_path, "again", "--jobs", "2")
    assert one == two == again
    report, counterexamples = one
    assert "seconds" not in report and "timings" not in json.loads(report)
    assert len({r["file"] for r in json.loads(report)["results"]}) == len(REFUTED)
    assert len(counterexamples) >= len(REFUTED)


def test_a_task_shipped_to_a_worker_gives_what_one_it_inherited_gives(tmp_path):
    """With ``--jobs 1`` the one worker is forked once the first group's
    programs are built, and the later groups' tasks are shipped to it
    (:class:`proofs.scheduling.Shipping`); checked alone, each group's
    tasks are inherited."""
    files = _groups(tmp_path)
    together = json.loads(_check(files, tmp_path, "together", "--jobs", "1")[0])["results"]
    for position, path in enumerate(files):
        alone = json.loads(_check([path], tmp_path, f"alone{position}", "--jobs", "1")[0])["results"]
        assert alone == [result for result in together if result["file"] == path]


def test_timings_apart(tmp_path):
    files = _groups(tmp_path)[:1]
    timed, _ = _check(files, tmp_path, "timed", "--timings")
    plain, _ = _check(files, tmp_path, "plain")
    report = json.loads(timed)
    timings = report.pop("timings")
    assert report == json.loads(plain)
    obligations = [(r["function"], r["config"], o["property"], o["detail"])
                   for r in report["results"] for o in r["obligations"]]
    assert [(t["function"], t["config"], t["property"], t["detail"]) for t in timings] == obligations
    assert all(isinstance(t["seconds"], float) and t["seconds"] >= 0 for t in timings)
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", *files, "--timings"],
                          capture_output=True, check=False, text=True)
    assert done.returncode == 2 and "--timings" in done.stderr and "Traceback" not in done.stderr


def test_baseline_of_an_older_report_with_seconds(tmp_path):
    files = _groups(tmp_path)[:1]
    report = json.loads(_check(files, tmp_path, "base")[0])
    for result in report["results"]:
        for obligation in result["obligations"]:
            obligation["seconds"] = 1              # as reports had them before the timings section
    baseline = tmp_path / "old.json"
    baseline.write_text(json.dumps(report))
    done = subprocess.run([sys.executable, "-m", "proofs.cli", "check", *files, "--baseline", str(baseline)],
                          capture_output=True, check=False, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _results(path: str, function: str):
    options = FrontEndOptions()
    settings = row_settings(Settings(contracts=load_contracts()), options)
    program = cached_program((path,), options)
    return check_function(program, function, "default", settings)


def test_same_counterexamples_after_other_work_in_the_process(tmp_path):
    """A function checked cold in a process of its own, then here after
    other functions (warm caches, a solver with a history): the same
    obligations, counterexamples included."""
    first = _groups(tmp_path)[0]
    cold = json.loads(subprocess.run([sys.executable, "-m", "proofs.cli", "check", first, "--json", "-"],
                                     capture_output=True, check=False, text=True).stdout)
    for name, function in (("missing_scrub.S", "__seamcall_saved_ret"), ("dropped_r10_to_rax.S", "__tdx_hypercall"),
                           ("fault_path_missing_pop.S", "__seamcall_saved_ret")):
        _results(str(BROKEN / name), function)
    warm = json_report([_results(first, "__seamcall_saved_ret")], [])
    assert warm["results"][0]["obligations"] == cold["results"][0]["obligations"]


def test_entry_registers_the_violation_does_not_need_are_zero(tmp_path):
    """Each nonzero entry register of a counterexample is needed: with it
    0 (the rest unchanged) the replay fails, or takes another path, or
    accesses other memory (the native placement may forbid it), or no
    longer violates one of the obligations that share the counterexample
    (a property's obligations refuted together on one path share the
    smallest model of all their violations).  And most registers are 0."""
    report = json.loads(_check(_groups(tmp_path), tmp_path, "minimal")[0])
    checked = 0
    for result in report["results"]:
        program = cached_program((result["file"],), FrontEndOptions())
        shared: dict[str, list[dict]] = {}
        for obligation in result["obligations"]:
            cex = obligation.get("counterexample")
            if cex is not None and cex["property"] != "scrub":      # scrub is relational: two runs
                scenario = {key: cex[key] for key in ("property", "entry", "memory", "tdx", "path")}
                shared.setdefault(json.dumps(scenario, sort_keys=True), []).append(cex)
        for group in shared.values():
            cex = group[0]
            registers = cex["entry"]["registers"]
            nonzero = [reg for reg, value in registers.items() if int(value, 16)]
            assert len(nonzero) <= 4, registers
            original = _run(program, cex)
            assert original is not None and all(_violates(program, member, *original) for member in group)
            for reg in nonzero:
                changed = json.loads(json.dumps(cex))
                changed["entry"]["registers"][reg] = "0x0"
                run = _run(program, changed)
                same_way = run is not None and _steps(run[0]) == _steps(original[0])
                assert not (same_way and all(_violates(program, member, *run) for member in group)), (reg, cex["property"], cex["detail"])
            checked += len(group)
    assert checked >= 5


def _run(program, cex: dict):
    """The replay of ``cex`` and its scenario (memory it lacks reads 0), or None when it fails."""
    scenario = scenario_from_json(cex)
    scenario.read_missing = lambda address: 0
    try:
        return replay(program, cex["function"], scenario), scenario
    except Exception:
        return None


def _steps(run) -> tuple:
    """The source lines a replay ran and the memory it accessed."""
    return (tuple(step.origin.line for step in run.steps),
            tuple((access.kind, access.address) for access in run.accesses))


def _violates(program, cex: dict, run, scenario) -> bool:
    contract = contract_from_record(cex["abi"], "abi") if cex.get("abi") else None
    return confirm(program, cex["function"], contract, cex["property"], cex["detail"], [run], [scenario])


def test_minimiser_finds_the_lexicographically_smallest_model():
    x, y, z = z3.BitVecs("canonical_x canonical_y canonical_z", 8)

    def holds(a, b, c) -> bool:
        return (a + b) % 256 == 200 and a > 3 and b & 0xF == 5 and (a ^ c) & 1 == 0 and c > 0x20
    solver = Solver(5.0, (x + y == 200, z3.UGT(x, 3), y & 0xF == 5, (x ^ z) & 1 == 0, z3.UGT(z, 0x20)))
    with solver.scope(()) as query:
        answer, model = query(x == 0x63, z == 0xFF)
        assert answer is Verdict.SAT
        minimiser = Minimiser(query, model)
        minimiser.lower([x, y, z])
    smallest = next((a, b, c) for a in range(256) for b in [(200 - a) % 256] for c in range(256) if holds(a, b, c))
    assert tuple(minimiser.model.eval(t).as_long() for t in (x, y, z)) == smallest == (0x13, 0xB5, 0x21)
