"""Running independent tasks in worker processes forked from this one.

``check`` (a function under a few configurations per task) and
``mutate`` (a mutant per task) both run tasks whose results must not
depend on what ran before them.  Z3's models depend on the solver's
history, so a counterexample's values are not taken from them but made
canonical (:mod:`proofs.canonical`): a task's outcome is the same bytes
whichever tasks its worker ran before it (``tests/test_stable_json.py``
checks a process that checked other functions first, and ``--jobs``).
The parent runs no solver itself.

A worker is forked when a task is ready and a slot is free, and then
runs task after task (each comes down a pipe; each outcome goes back
pickled).  A fork per task cost the forms run (``bench/targets.py``,
``--jobs 2``) 2.2 s of system time on 16 s of CPU, most of it page faults
of the fresh forks' heaps.  A task made before the worker was forked is
sent as its index (the worker inherited it and what it needs, the
programs built by then).  One made later is shipped (:class:`Shipping`):
a message of its own, and once per worker the supply it shares with
other tasks (for ``check``: its group's programs), pickled; so the
workers live for the whole run.  (Measured on the forms run, ``--jobs
2``: workers that ran only the tasks made before their fork, retired and
forked afresh for later ones, were 6 to 8 forks for 74 tasks, and the
tasks took about 0.4 CPU-s more than with two workers forked once every
task was made -- a fresh fork starts with cold caches.)  Without a
:class:`Shipping`, a worker that knows none of the ready tasks is retired
and a fresh one forked.  A task that raises is a bug of ours
(:class:`TaskCrashed`, with the worker's traceback), and so is a worker
that dies without the outcome of its task.

A ``watch`` (:class:`proofs.progress.Progress`) hears of each task
planned, started and finished, that no more will come, and, while the
parent waits for its workers, every ``watch.interval`` seconds.
"""
from __future__ import annotations

import gc
import os
import pickle
import selectors
import signal
import struct
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable


class TaskCrashed(RuntimeError):
    """A worker process raised (a bug of ours): the message names the task
    and the exception; ``child_traceback`` is the worker's traceback."""

    def __init__(self, message: str, child_traceback: str):
        super().__init__(message)
        self.child_traceback = child_traceback


WORKER_YOUNG_OBJECTS = 20_000
"""A worker's collector runs once this many more container objects were
made than freed (Python's default is 700): a task makes and drops Z3
term wrappers by the hundred thousand, few of them in cycles (the forms
run's tasks, serially in one process: 0.19 of 4.7 CPU-s in 396
collections by default, 0.04 s in 17 so).  (Forms run, ``--jobs 2``, ten
alternating pairs of runs on the noisy machine: 0.976 of the default's
wall time on average, 7 of 10 faster; callgrind of the tasks serially in
one process: 1.1% fewer instructions; the same peak memory, 104 MiB.)"""

_LENGTH = struct.Struct("<Q")
"""The length of a pickled command down a worker's pipe, and of an outcome up its result pipe."""


@dataclass(frozen=True)
class Shipping:
    """How a task made after a worker was forked reaches it: ``pack(task)``
    is (the key of its supply, its message), ``supply(task)`` the supply of
    that key (made once, for the first task of the key shipped; sent once
    to each worker that runs a task of it) and, in the worker,
    ``unpack(supply, message)`` the task.  All three pickle."""

    pack: Callable[[Any], tuple[Hashable, Any]]
    supply: Callable[[Any], Any]
    unpack: Callable[[Any, Any], Any]


@dataclass
class _Worker:
    """A forked worker, as the parent sees it: its pipes' parent ends, how
    many tasks it knows (those made before it was forked), the keys of the
    supplies shipped to it, the affinities of the tasks it ran, the task it
    is running (None: idle) and what it has sent of that task's outcome."""

    pid: int
    commands: int
    results: int
    known: int
    supplied: set = field(default_factory=set)
    kin: set = field(default_factory=set)
    task: int | None = None
    received: bytearray = field(default_factory=bytearray)


def _read_exactly(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    return bytes(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_in_forks(batches: Iterable[list[tuple[Any, int]]], run: Callable[[Any], Any], jobs: int,
                 describe: Callable[[Any], str], watch=None, shipping: Shipping | None = None,
                 affinity: Callable[[Any], Hashable] | None = None) -> tuple[list, list]:
    """Every task of ``batches`` (lists of (task, cost)), each in a worker
    forked from this process (module doc): (the tasks, ``run``'s outcome
    of each), in order.

    Each outcome is unpickled as it comes in (while the others run); a
    task that raised is an error once the last task is done.  At most
    ``jobs`` workers run at once, the costliest ready tasks first (so
    that a long task does not start last), but a worker takes the
    costliest of the same ``affinity`` as a task it ran before, if one is
    ready (for ``check``, the same function: its other rows make many of
    the same solver terms, which the worker has cached).  The next batch is
    made (by the caller's generator: for ``check``, the front end of the
    next file group) while the workers run; the generator gives the
    workers a turn (their outcomes collected, the idle ones given ready
    tasks) at each batch, so one that is busy for long yields empty
    batches as it goes.  A worker that dies without
    its task's outcome is an internal error naming the task
    (``describe``); ``watch`` follows the run, and ``shipping`` sends the
    tasks made after a worker's fork to it (see the module doc).
    """
    tasks: list = []
    outcomes: list = []                                          # ("result" or "crash", its value)
    ready: list[tuple[int, int]] = []                            # (-cost, task index)
    workers: dict[int, _Worker] = {}                             # by the read end of its results
    exiting: list[int] = []                                      # pids of retired workers
    supplies: dict[Hashable, bytes] = {}                         # shipped ones, pickled, by key
    waiting = selectors.DefaultSelector()
    batches = iter(batches)
    more = True

    def worker(commands: int, results: int, held) -> None:
        """The child: task after task, by index, until its command pipe closes."""
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            for other in workers.values():          # the parent's ends of the other workers' pipes
                os.close(other.commands)
                os.close(other.results)
            gc.freeze()       # the inherited heap is never walked (nor copied) by the collector
            gc.set_threshold(WORKER_YOUNG_OBJECTS, *gc.get_threshold()[1:])
            gc.enable()
            received = {}                           # the supplies shipped, by key
            while len(header := _read_exactly(commands, _LENGTH.size)) == _LENGTH.size:
                try:
                    command = pickle.loads(_read_exactly(commands, _LENGTH.unpack(header)[0]))
                    if command[0] == "index":
                        task = tasks[command[1]]
                    else:
                        _, key, message, supply = command
                        if supply is not None:
                            received[key] = pickle.loads(supply)
                        task = shipping.unpack(received[key], message)
                    payload = pickle.dumps(("result", run(task)))
                except BaseException:
                    payload = pickle.dumps(("crash", traceback.format_exc()))
                _write_all(results, _LENGTH.pack(len(payload)) + payload)
        finally:
            os._exit(0)

    def fork() -> _Worker:
        command_read, command_write = os.pipe()
        result_read, result_write = os.pipe()
        # SIGINT is held over the fork: os.fork runs the fork hooks (the logging
        # module's lock) in the parent before it returns, and a KeyboardInterrupt
        # raised in one is lost ("Exception ignored"); held, it is raised once
        # the worker is registered, and so killed on the way out.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pid = os.fork()
            if pid == 0:
                os.close(command_write)
                os.close(result_read)
                worker(command_read, result_write, held)
            os.close(command_read)
            os.close(result_write)
            workers[result_read] = _Worker(pid, command_write, result_read, len(tasks))
            waiting.register(result_read, selectors.EVENT_READ)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return workers[result_read]

    def start(worker: _Worker, index: int) -> None:
        worker.task = index
        if affinity:
            worker.kin.add(affinity(tasks[index]))
        if index < worker.known:
            command = ("index", index)
        else:
            key, message = shipping.pack(tasks[index])
            supply = None
            if key not in worker.supplied:
                if key not in supplies:
                    supplies[key] = pickle.dumps(shipping.supply(tasks[index]))
                supply = supplies[key]
                worker.supplied.add(key)
            command = ("shipped", key, message, supply)
        payload = pickle.dumps(command)
        _write_all(worker.commands, _LENGTH.pack(len(payload)) + payload)
        if watch:
            watch.started(tasks[index])

    def retire(worker: _Worker) -> None:
        """An idle worker's command pipe closed: it exits; reaped later."""
        waiting.unregister(worker.results)
        os.close(worker.commands)
        os.close(worker.results)
        del workers[worker.results]
        exiting.append(worker.pid)

    def fill() -> None:
        """Start the costliest ready tasks (of an affinity they have, first)
        on the idle workers that know them (all, with ``shipping``), and on
        fresh workers while there is room."""
        while ready:
            idle = next((w for w in workers.values() if w.task is None), None)
            if idle is not None:
                known = [position for position, (_, index) in enumerate(ready) if shipping or index < idle.known]
                if known:
                    akin = (position for position in known
                            if affinity and affinity(tasks[ready[position][1]]) in idle.kin)
                    start(idle, ready.pop(next(akin, known[0]))[1])
                    continue
                retire(idle)
            if len(workers) >= jobs:
                return
            start(fork(), ready.pop(0)[1])

    def collect(read_end: int) -> None:
        worker = workers[read_end]
        chunk = os.read(read_end, 1 << 20)
        if not chunk and worker.task is None:
            retire(worker)                  # an idle worker that died: no outcome lost
            return
        if not chunk:
            index = worker.task
            retire(worker)
            _, status = os.waitpid(exiting.pop(), 0)
            raise RuntimeError(f"the process checking {describe(tasks[index])} "
                               f"ended without a result (wait status {status})")
        worker.received += chunk
        if len(worker.received) < _LENGTH.size:
            return
        size, = _LENGTH.unpack_from(worker.received)
        if len(worker.received) < _LENGTH.size + size:
            return
        index, worker.task = worker.task, None
        outcomes[index] = pickle.loads(worker.received[_LENGTH.size:])     # while the others run
        worker.received = bytearray()
        if watch:
            watch.finished(tasks[index])

    def reap(block: bool) -> None:
        """Wait for the retired workers (tearing down a fork's memory takes
        milliseconds: the next task does not wait for it)."""
        for pid in list(exiting):
            if os.waitpid(pid, 0 if block else os.WNOHANG)[0]:
                exiting.remove(pid)

    def busy() -> bool:
        return any(w.task is not None for w in workers.values())

    def room() -> bool:
        """Whether a ready task could start now: on an idle worker, or a new one."""
        return len(workers) < jobs or any(w.task is None for w in workers.values())

    try:
        while more or ready or busy():
            fill()
            reap(block=False)
            if more:
                for key, _ in (waiting.select(0) if workers else ()):
                    collect(key.fd)
                if ready and room():
                    continue
                batch = next(batches, None)
                if batch is None:
                    more = False
                    if watch:
                        watch.exhausted()
                for task, cost in batch or ():
                    tasks.append(task)
                    outcomes.append(None)
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
        for worker in list(workers.values()):
            if worker.task is not None:
                os.kill(worker.pid, signal.SIGKILL)
            retire(worker)
        reap(block=True)
        waiting.close()
    results = []
    for task, (kind, result) in zip(tasks, outcomes):
        if kind == "crash":
            raise TaskCrashed(f"checking {describe(task)} failed: {result.rstrip().splitlines()[-1]}", result)
        results.append(result)
    return tasks, results
