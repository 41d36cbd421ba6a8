"""Progress of a ``check`` run: on a terminal (a real pseudo-terminal, the
``pty`` module's) one line on stderr, rewritten in place, with the rows
done, the time left and the group and function being checked, erased at
the end; nothing in the first second; nothing at all when stderr is not a
terminal, nor with ``--quiet``."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios

from conftest import FIXTURES, ROOT
from proofs.progress import CLEAR, Progress

FILES = [str(FIXTURES / "unified/arch/x86/virt/vmx/tdx/seamcall.S"), str(FIXTURES / "legacy/arch/x86/coco/tdx/tdcall.S")]
ARGS = ["check", *FILES, "--property", "stack-balance", "--jobs", "1"]
RUN_WITHOUT_DELAY = ("import sys\nfrom proofs.progress import Progress\nfrom proofs.cli import main\n"
                     "Progress.delay = 0\nsys.exit(main(sys.argv[1:]))")
"""The command with the first second's silence taken out, so that the
test does not depend on how long the run takes."""


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _step(task):
    return task


def test_the_line_says_rows_eta_group_and_function_and_is_erased_at_the_end():
    clock, stream = Clock(), io.StringIO()
    groups = [("/t/one", ("/t/one/a.S",)), ("/t/two", ("/t/two/b.S",))]
    progress = Progress(stream, groups, _step, clock=clock, width=200)
    first, second = (("/t/one/a.S",), "f", ("CONFIG_X=y", "CONFIG_X=n")), (("/t/two/b.S",), "g", ("CONFIG_X=y",))
    progress.planned(first, 30)
    progress.started(first)
    assert stream.getvalue() == ""                                     # within the first second
    clock.now += 2
    progress.planned(second, 10)
    progress.exhausted()
    line = stream.getvalue().rsplit(CLEAR, 1)[1]
    assert line == "tdxproof: 0/3 rows: group 1/2 /t/one, f [CONFIG_X=y, CONFIG_X=n]"
    progress.finished(first)
    progress.started(second)
    line = stream.getvalue().rsplit(CLEAR, 1)[1]
    assert line == "tdxproof: 2/3 rows, ETA 1s: group 2/2 /t/two, g [CONFIG_X=y]"   # 2 s for 30 of 40
    drawn = stream.getvalue()
    progress.tick()
    assert stream.getvalue() == drawn                                  # an unchanged line is not redrawn
    progress.close()
    assert stream.getvalue().endswith(CLEAR)


def test_the_line_is_cut_to_the_terminal_width():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(stream, [("/r", ("/r/a.S",))], _step, clock=clock, width=30)
    clock.now += 5
    progress.planned((("/r/a.S",), "a_function_with_a_long_name", ("default",)), 1)
    progress.started((("/r/a.S",), "a_function_with_a_long_name", ("default",)))
    assert all(len(line) <= 29 for line in stream.getvalue().split(CLEAR))


def _run(args: list[str], terminal: bool) -> tuple[int, bytes, bytes]:
    """(status, stdout, what stderr received) of the command, stderr on a
    pseudo-terminal of 100 columns or on a pipe."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not terminal:
        done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_DELAY, *args], capture_output=True, env=env,
                              cwd=ROOT, timeout=300)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    report = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-c", RUN_WITHOUT_DELAY, *args], stdin=subprocess.DEVNULL,
                               stdout=report, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    received = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:                  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        received.append(chunk)
    os.close(master)
    status = process.wait(timeout=300)
    report.seek(0)
    return status, report.read(), b"".join(received)


def test_progress_shows_on_a_terminal_and_nowhere_else():
    status, stdout, terminal = _run(ARGS, terminal=True)
    assert status == 0
    lines = terminal.decode().split(CLEAR)
    assert lines[-1] == "" and lines[0] == ""                           # drawn in place, erased at the end
    shown = [line for line in lines if line]
    assert shown and all(line.startswith("tdxproof: ") and len(line) < 100 for line in shown)
    assert any("ETA" in line for line in shown)
    assert any(": group 2/2 " in line and "__tdx_module_call [default]" in line for line in shown)
    assert stdout.startswith(b"function [configuration]")               # the report is untouched

    status, piped_stdout, stderr = _run(ARGS, terminal=False)
    assert status == 0 and stderr == b"" and piped_stdout == stdout

    status, stdout, terminal = _run(ARGS + ["--quiet"], terminal=True)
    assert status == 0 and stdout == b"" and terminal == b""
