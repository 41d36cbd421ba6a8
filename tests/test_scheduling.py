"""proofs.scheduling.run_in_forks: every task's outcome, in order, from
real forked workers, at most ``jobs`` of them at once, each running only
tasks made before it was forked -- or, with a Shipping, the later ones
too, shipped with their supply once per worker, so that no worker is
forked again; a worker takes a task of an affinity it ran first; every
worker reaped by the time it returns (a retired worker is reaped after
the next task has started, so the reaping is checked here); a worker
that exits without its task's outcome is an internal error with its wait
status, and a task that raises is TaskCrashed with the worker's
traceback."""
import itertools
import os
import signal
import time

import pytest

from proofs.scheduling import Shipping, TaskCrashed, run_in_forks


MADE = {"batches": 0}
"""How many batches the parent had made: a worker sees it as it was at its fork."""


def _square_and_batches_seen(task: tuple[int, int]) -> tuple[int, int, int]:
    n, _ = task
    return n * n, os.getpid(), MADE["batches"]


def _no_child_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _batches():
    for batch in range(4):
        MADE["batches"] = batch + 1
        yield [((10 * batch + n, batch), n % 3) for n in range(5)]


def test_outcomes_come_in_task_order_from_workers_that_know_their_tasks_and_no_child_is_left():
    tasks, outcomes = run_in_forks(_batches(), _square_and_batches_seen, 2, str)
    assert [n for n, _ in tasks] == [10 * batch + n for batch in range(4) for n in range(5)]
    assert [square for square, _, _ in outcomes] == [n * n for n, _ in tasks]
    assert all(seen > batch for (_, batch), (_, _, seen) in zip(tasks, outcomes))
    pids = {pid for _, pid, _ in outcomes}
    assert os.getpid() not in pids and len(pids) < len(tasks)     # workers run several tasks each
    assert _no_child_left()


SUPPLIES: list[int] = []
"""The batches whose supply the parent made, in order."""


def _shipping() -> Shipping:
    """Tasks (n, batch) shipped as n, with the batch's supply: a list the
    worker keeps (its identity shows whether it was sent again)."""
    def supply(task):
        SUPPLIES.append(task[1])
        return ["supply", task[1]]
    return Shipping(pack=lambda task: (task[1], task[0]), supply=supply,
                    unpack=lambda supplied, n: (n, supplied[1], id(supplied)))


def _square_and_supply(task: tuple) -> tuple:
    n, batch = task[:2]
    return n * n, batch, os.getpid(), MADE["batches"], task[2] if len(task) > 2 else None


def test_shipped_tasks_run_on_workers_forked_before_them_each_supply_made_once():
    SUPPLIES.clear()
    tasks, outcomes = run_in_forks(_batches(), _square_and_supply, 2, str, shipping=_shipping())
    assert [square for square, *_ in outcomes] == [n * n for n, _ in tasks]
    assert [batch for _, batch, *_ in outcomes] == [batch for _, batch in tasks]
    assert len({pid for _, _, pid, _, _ in outcomes}) <= 2          # never forked again
    shipped = [(batch, pid, supply) for _, batch, pid, seen, supply in outcomes if seen <= batch]
    assert shipped                                                  # made after the workers' forks
    assert all((supply is not None) == (seen <= batch) for _, batch, _, seen, supply in outcomes)
    assert SUPPLIES == sorted(set(SUPPLIES))                        # one supply made per batch
    per_worker = {}
    for batch, pid, supply in shipped:
        per_worker.setdefault((batch, pid), set()).add(supply)
    assert all(len(kept) == 1 for kept in per_worker.values())     # sent once to each worker
    assert _no_child_left()


ORDER = itertools.count()
"""A worker's count of the tasks it ran."""


def _ran_when(task: tuple[str, int]) -> tuple[str, int]:
    return task[0], next(ORDER)


def test_a_worker_takes_a_task_of_an_affinity_it_ran_before_the_costlier_others():
    batches = [[(("a", 1), 30), (("b", 1), 20), (("a", 2), 10), (("b", 2), 5)]]
    tasks, outcomes = run_in_forks(batches, _ran_when, 1, str, affinity=lambda task: task[0])
    order = [task for task, _ in sorted(zip(tasks, outcomes), key=lambda pair: pair[1][1])]
    assert order == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]


def test_one_job_is_one_worker_at_a_time():
    batches = [[((n, 0), 0) for n in range(6)]]
    _, outcomes = run_in_forks(batches, _square_and_batches_seen, 1, str)
    assert len({pid for _, pid, _ in outcomes}) == 1


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


def _zero_dies_soon_after_one_is_slow(n: int) -> int:
    if n == 0:
        signal.setitimer(signal.ITIMER_REAL, 0.05)      # SIGALRM's default: the worker ends, idle by then
    else:
        time.sleep(0.5)
    return n


def test_a_worker_that_dies_idle_loses_no_outcome():
    tasks, outcomes = run_in_forks([[(0, 0), (1, 0)]], _zero_dies_soon_after_one_is_slow, 2, str)
    assert tasks == outcomes == [0, 1]
    assert _no_child_left()
