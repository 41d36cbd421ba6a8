"""proofs.scheduling.run_in_forks: every task's outcome, in order, from real
forks; every child reaped by the time it returns (a child's slot is
reused before the child has exited, so the reaping is checked here); a
child that exits without its outcome is an internal error with its wait
status."""
import os

import pytest

from proofs.scheduling import TaskCrashed, run_in_forks


def _square_and_pid(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_outcomes_come_in_task_order_from_forks_and_no_child_is_left():
    batches = [[(n, n % 3) for n in range(5)], [(n, 0) for n in range(5, 9)]]
    tasks, outcomes = run_in_forks(batches, _square_and_pid, 2, str)
    assert tasks == list(range(9))
    assert [square for square, _ in outcomes] == [n * n for n in range(9)]
    pids = {pid for _, pid in outcomes}
    assert len(pids) == 9 and os.getpid() not in pids      # a fresh fork per task
    assert _no_child_left()


def _dies_on_three(n: int) -> int:
    if n == 3:
        os._exit(7)
    return n


def test_a_child_that_exits_without_its_outcome_is_an_error_naming_the_task():
    with pytest.raises(RuntimeError, match=r"checking task 3 ended without a result \(wait status 1792\)"):
        run_in_forks([[(n, 0) for n in range(6)]], _dies_on_three, 2, lambda n: f"task {n}")
    assert _no_child_left()


def _raises(n: int) -> int:
    raise ValueError(f"no {n}")


def test_a_task_that_raises_is_task_crashed_with_the_childs_traceback():
    with pytest.raises(TaskCrashed, match="checking task 0 failed: ValueError: no 0") as crash:
        run_in_forks([[(0, 0)]], _raises, 1, lambda n: f"task {n}")
    assert "Traceback" in crash.value.child_traceback
    assert _no_child_left()
