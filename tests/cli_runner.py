"""Running the ``tdxproof`` command inside the test process, with a bound
on its time: the bad-input corpus and the command-line fuzz both need it."""
from __future__ import annotations

import contextlib
import io
import signal

import pytest

from proofs.cli import main


class _Hang(Exception):
    pass


def run_in_process(argv: list[str], timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``tdxproof ARGV`` run by
    :func:`proofs.cli.main` here; a run longer than ``timeout`` seconds
    fails the test as a hang."""
    def alarm(signum, frame):
        raise _Hang()
    stdout, stderr = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = main(argv)
    except _Hang:
        pytest.fail(f"no answer within {timeout} s (a hang): {argv}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return status, stdout.getvalue(), stderr.getvalue()
