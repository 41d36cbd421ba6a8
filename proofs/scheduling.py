"""Running independent tasks, each in a fresh fork of this process.

``check`` (a function under a few configurations per task) and
``mutate`` (a mutant per task) both run tasks whose results must not
depend on what ran before them: Z3's models depend on the solver's
history, so a counterexample is the same bytes, whatever ``--jobs``,
only if every task starts from the same state.  Each task runs in a
child forked from a parent that runs no solver itself; the child pickles
its outcome down a pipe and exits.  A task that raises is a bug of ours
(:class:`TaskCrashed`, with the child's traceback), and so is a child
that dies without a result.

A ``watch`` (:class:`proofs.progress.Progress`) hears of each task
planned, started and finished, that no more will come, and, while the
parent waits for its children, every ``watch.interval`` seconds.
"""
from __future__ import annotations

import gc
import os
import pickle
import selectors
import signal
import traceback
from typing import Any, Callable, Iterable


class TaskCrashed(RuntimeError):
    """A worker process raised (a bug of ours): the message names the task
    and the exception; ``child_traceback`` is the worker's traceback."""

    def __init__(self, message: str, child_traceback: str):
        super().__init__(message)
        self.child_traceback = child_traceback


def run_in_forks(batches: Iterable[list[tuple[Any, int]]], run: Callable[[Any], Any], jobs: int,
                 describe: Callable[[Any], str], watch=None) -> tuple[list, list]:
    """Every task of ``batches`` (lists of (task, cost)), each in a fresh
    fork of this process: (the tasks, ``run``'s outcome of each), in order.

    The parent keeps each pickled result as bytes until the last child is
    done.  At most ``jobs`` children run at once, the costliest ready tasks
    first (so that a long task does not start last).  The next batch is
    made (by the caller's generator: for ``check``, the front end of the
    next file group) while the children run.  A child
    that dies without a result is an internal error naming its task
    (``describe``); ``watch`` follows the run (see the module doc).
    """
    tasks: list = []
    payloads: list[bytes | None] = []
    ready: list[tuple[int, int]] = []                              # (-cost, task index)
    running: dict[int, tuple[int, int, list[bytes]]] = {}        # read end -> (task, pid, chunks)
    exiting: list[int] = []                                      # pids whose outcome is in
    waiting = selectors.DefaultSelector()
    batches = iter(batches)
    more = True

    def child(index: int, read_end: int, write_end: int, held) -> None:
        """The child: one task, its outcome down the pipe, then _exit."""
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            gc.disable()      # short-lived: the collector would walk (and copy) the whole inherited heap
            os.close(read_end)
            try:
                payload = pickle.dumps(("result", run(tasks[index])))
            except BaseException:
                payload = pickle.dumps(("crash", traceback.format_exc()))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)

    def start(index: int) -> None:
        read_end, write_end = os.pipe()
        # SIGINT is held over the fork: os.fork runs the fork hooks (the logging
        # module's lock) in the parent before it returns, and a KeyboardInterrupt
        # raised in one is lost ("Exception ignored"); held, it is raised once
        # the child is registered, and so killed on the way out.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
            if pid == 0:
                child(index, read_end, write_end, held)
            os.close(write_end)
            running[read_end] = (index, pid, [])
            waiting.register(read_end, selectors.EVENT_READ)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if watch:
            watch.started(tasks[index])

    def collect(read_end: int) -> None:
        index, pid, chunks = running[read_end]
        chunk = os.read(read_end, 1 << 20)
        if chunk:
            chunks.append(chunk)
            return
        waiting.unregister(read_end)
        os.close(read_end)
        del running[read_end]
        payloads[index] = b"".join(chunks)
        if not payloads[index]:
            _, status = os.waitpid(pid, 0)
            raise RuntimeError(f"the process checking {describe(tasks[index])} "
                               f"ended without a result (wait status {status})")
        exiting.append(pid)
        if watch:
            watch.finished(tasks[index])

    def reap(block: bool) -> None:
        """Wait for the children that sent their outcome: the next task
        starts before they have exited (tearing down a fork's memory takes
        milliseconds), and they are reaped once it has."""
        for pid in list(exiting):
            if os.waitpid(pid, 0 if block else os.WNOHANG)[0]:
                exiting.remove(pid)

    try:
        while more or ready or running:
            while ready and len(running) < jobs:
                start(ready.pop(0)[1])
            reap(block=False)
            if more:
                for key, _ in (waiting.select(0) if running else ()):
                    collect(key.fd)
                if ready and len(running) < jobs:
                    continue
                batch = next(batches, None)
                if batch is None:
                    more = False
                    if watch:
                        watch.exhausted()
                for task, cost in batch or ():
                    tasks.append(task)
                    payloads.append(None)
                    ready.append((-cost, len(tasks) - 1))
                    if watch:
                        watch.planned(task, cost)
                ready.sort()
            else:
                for key, _ in waiting.select(watch.interval if watch else None):
                    collect(key.fd)
                if watch:
                    watch.tick()
    finally:
        if watch:
            watch.close()
        for read_end, (_, pid, _) in running.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
        reap(block=True)
        waiting.close()
    results = []
    for task, payload in zip(tasks, payloads):
        kind, result = pickle.loads(payload)
        if kind == "crash":
            raise TaskCrashed(f"checking {describe(task)} failed: {result.rstrip().splitlines()[-1]}", result)
        results.append(result)
    return tasks, results
