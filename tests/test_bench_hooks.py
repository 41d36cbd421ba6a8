"""The benchmark's in-process stage timer (bench/obligation_times.py)
wraps the prover's internals by name and signature: a change there must
not leave the benchmark crashing or silently timing nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import obligation_times  # noqa: E402


def test_the_stage_timer_runs_a_refuted_check_and_times_every_stage(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench/obligation_times.py"), str(tmp_path), "check",
                           "tests/fixtures/broken/pop_order_swapped.S", "--json", "-"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 1, done.stderr                     # refuted, not an internal error
    records = obligation_times.slowest(tmp_path, count=100)
    assert {r["property"] for r in records} >= {"callee-saved", "stack-balance"}
    refuted = [r for r in records if r["detail"] in ("r14", "r15") and r["property"] == "callee-saved"]
    assert refuted and all({"canonical model", "counterexample"} <= set(r["stages"]) for r in refuted)


def test_the_stage_timer_keeps_every_task_of_a_worker(tmp_path):
    """A worker runs task after task: each one's rows are kept, not the last one's."""
    done = subprocess.run([sys.executable, str(ROOT / "bench/obligation_times.py"), str(tmp_path), "check",
                           "tests/fixtures/unified/arch/x86/coco/tdx/tdcall.S", "--jobs", "1", "--json", "-"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode in (0, 1), done.stderr
    checked = {result["function"] for result in json.loads(done.stdout)["results"]}
    timed = {r["function"] for r in obligation_times.slowest(tmp_path, count=10_000)}
    assert len(checked) > 1 and timed == checked


def test_the_solver_replay_records_a_refuted_check_and_asks_every_query_again():
    done = subprocess.run([sys.executable, str(ROOT / "bench/solver_variants.py"), "--rounds", "1",
                           "--variant", "default", "--variant", "smt.relevancy=0",
                           "--", "check", "tests/fixtures/broken/pop_order_swapped.S"],
                          cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    recorded = int(done.stderr.split(" solvers, ")[1].split()[0])
    assert recorded > 0, done.stderr                              # the executor's solver was recorded
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {"default", "smt.relevancy=0"}
    assert all(row[3:] == ["0", "0"] for row in rows.values())    # the same answers, no unknowns
    assert float(rows["default"][0]) > 0                           # the checks were asked again


def test_the_ab_comparison_tells_reports_apart_by_content_not_by_checkout():
    """bench/ab.py's "reports: same" takes out only each checkout's shim
    directory: the same report from two checkouts is the same, a changed
    status or a changed fixture path is not."""
    import ab
    first, second = Path("/one/checkout"), Path("/another")

    def report(tree: Path, status: str = "refuted", fixture: str = "/fixtures/a.S") -> str:
        return json.dumps({"results": [{"file": fixture, "obligations": [
            {"status": status, "counterexample": {"path": [{"file": f"{tree}/grammar/shims/asm/frame.h"}]}}]}]})
    assert ab._report(report(first), first) == ab._report(report(second), second)
    assert ab._report(report(first), first) != ab._report(report(second, "proved"), second)
    assert ab._report(report(first), first) != ab._report(report(second, fixture="/fixtures/b.S"), second)
