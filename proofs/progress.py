"""Progress of a ``check`` run, on a terminal: one line on stderr saying
which file group and function are being checked, how many rows are done,
and when the run should end.

Decisions:

* Only on a terminal: when stderr is not one (a pipe, a file, a CI log)
  there is no progress at all (:meth:`Progress.on_terminal` gives None),
  so logs and redirected output hold only the report and the errors.
* Nothing for the first second: a run that ends within it prints nothing,
  and a longer one starts its line then.
* One line, rewritten in place (carriage return, erase to the end of the
  line), cut to the terminal's width so that it never wraps (a wrapped
  line could not be rewritten), and erased when the run ends, so that the
  report and any error start on a clean line.
* The estimate of the time left is the time spent so far, scaled by the
  cost still to run over the cost done (:mod:`proofs.scheduling`'s cost
  of each task: its instructions times its configurations).  It is shown
  once every group's tasks are known and one has ended; before that the
  row count says ``+`` (more to come).

The scheduler (:func:`proofs.scheduling.run_in_forks`) tells a
:class:`Progress` of each task planned, started and finished, that no
more tasks will come, and, while it waits, every :attr:`Progress.interval`
seconds; :func:`proofs.prover.task_step` says what a task checks.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence, TextIO

CLEAR = "\r\x1b[K"
"""Back to the start of the line and erase it."""


def duration(seconds: float) -> str:
    """A duration as the progress line says it.

    >>> duration(0), duration(4.2), duration(65), duration(3600)
    ('0s', '5s', '1m05s', '60m00s')
    """
    whole = int(-(-seconds // 1))
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"


class Progress:
    """The progress line of one run over ``groups`` (each file group's
    root and files, in order); ``step`` says what a task checks: (the
    files of its group, the function, its configurations' labels)."""

    interval = 0.5
    """How often the line is redrawn while the scheduler waits (seconds)."""
    delay = 1.0
    """How long a run goes before its line shows (seconds)."""

    def __init__(self, stream: TextIO, groups: Sequence[tuple[str, tuple[str, ...]]],
                 step: Callable[[Any], tuple[tuple[str, ...], str, tuple[str, ...]]],
                 clock: Callable[[], float] = time.monotonic, width: int | None = None):
        self.stream, self.step, self.clock, self.width = stream, step, clock, width
        self.groups = {files: (position, root) for position, (root, files) in enumerate(groups)}
        self.start = clock()
        self.rows = self.rows_done = 0
        self.cost = self.cost_done = 0
        self.costs: dict[int, int] = {}
        self.running: list[Any] = []
        self.current: Any = None
        self.drawn = ""
        self.complete = False
        self.shown = False

    @classmethod
    def on_terminal(cls, stream: TextIO, groups: Sequence[tuple[str, tuple[str, ...]]],
                    step: Callable[[Any], tuple[tuple[str, ...], str, tuple[str, ...]]]) -> Progress | None:
        """A progress line on ``stream`` if it is a terminal, else None."""
        return cls(stream, groups, step) if stream.isatty() else None

    # --- what the scheduler tells ------------------------------------------------------

    def planned(self, task: Any, cost: int) -> None:
        self.costs[id(task)] = cost
        self.cost += cost
        self.rows += len(self.step(task)[2])

    def exhausted(self) -> None:
        """No more tasks will be planned."""
        self.complete = True
        self.draw()

    def started(self, task: Any) -> None:
        self.running.append(task)
        self.current = task
        self.draw()

    def finished(self, task: Any) -> None:
        self.running.remove(task)
        self.rows_done += len(self.step(task)[2])
        self.cost_done += self.costs[id(task)]
        self.draw()

    def tick(self) -> None:
        self.draw()

    def close(self) -> None:
        """Erase the line (the run is over, or stopped)."""
        if self.shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self.shown, self.drawn = False, ""

    # --- the line ----------------------------------------------------------------------

    def line(self) -> str:
        """What the progress line says now: the rows done, the time left,
        and the group and function of the task started last (with how
        many others run)."""
        elapsed = self.clock() - self.start
        text = f"tdxproof: {self.rows_done}/{self.rows}{'' if self.complete else '+'} rows"
        if self.complete and self.cost_done:
            text += f", ETA {duration(elapsed * (self.cost - self.cost_done) / self.cost_done)}"
        if self.current is not None:
            files, function, configs = self.step(self.current)
            position, root = self.groups[files]
            where = os.path.relpath(root)
            others = len(self.running) - (self.current in self.running)
            text += (f": group {position + 1}/{len(self.groups)} {root if where.startswith('..') else where}, "
                     f"{function} [{', '.join(configs)}]{f' (+{others} running)' if others else ''}")
        return text

    def draw(self) -> None:
        if self.clock() - self.start < self.delay:
            return
        width = self.width
        if width is None:
            try:
                width = os.get_terminal_size(self.stream.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = 0
            width = width or 80         # a terminal that does not say its size
        line = self.line()[:width - 1]
        if line != self.drawn or not self.shown:
            self.stream.write(CLEAR + line)
            self.stream.flush()
            self.drawn, self.shown = line, True
