"""The command's own failure modes: an internal error is never exit 1 and
never a traceback, Ctrl-C ends a run cleanly, outputs are written whole or
not at all.

The internal errors are injected (a function of ours made to raise, in this
process or in a forked worker): no real input may trigger one, which is the
point of the rest of the suite.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import proofs.prover
from proofs.cli import EXIT_INTERNAL, EXIT_INTERRUPTED, main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SOURCE = "#include <linux/linkage.h>\nSYM_FUNC_START(f)\n\tmovq %rdi, %rax\n\tRET\nSYM_FUNC_END(f)\n"


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "f.S"
    path.write_text(SOURCE)
    return path


def _broken(*args, **kwargs):
    raise ZeroDivisionError("injected for the test")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_bug_of_ours_is_an_internal_error(source, monkeypatch, capsys, jobs):
    # Injected in this process, so that the forked workers inherit it too.
    monkeypatch.setattr(proofs.prover, "check_function", _broken)
    assert main(["check", str(source), "--jobs", jobs]) == EXIT_INTERNAL
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err and captured.err.count("\n") == 1
    assert captured.err.startswith("tdxproof: internal error: ")
    assert "please report it" in captured.err


def test_debug_shows_the_traceback(source, monkeypatch, capsys):
    monkeypatch.setattr(proofs.prover, "check_function", _broken)
    assert main(["check", "--debug", str(source), "--jobs", "1"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: injected for the test" in err
    assert err.rstrip("\n").splitlines()[-1].startswith("tdxproof: internal error: ")


def test_internal_error_leaves_no_output_file(source, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(proofs.prover, "check_function", _broken)
    report = tmp_path / "report.json"
    assert main(["check", str(source), "--jobs", "1", "--json", str(report)]) == EXIT_INTERNAL
    assert not report.exists()


def test_a_failed_write_keeps_the_old_file_whole(source, tmp_path, monkeypatch, capsys):
    report = tmp_path / "report.json"
    assert main(["check", str(source), "--jobs", "1", "--json", str(report)]) == 0
    before = report.read_text()
    assert json.loads(before)["results"][0]["function"] == "f"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full_disk)
    capsys.readouterr()
    assert main(["check", str(source), "--jobs", "1", "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tdxproof: error: cannot write {report}: No space left on device")
    assert report.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".report.json.")] == []


def test_a_report_to_a_pipe_is_written_into_it_and_the_pipe_stays(source, tmp_path, capsys):
    # As /dev/null is for root: renaming a temporary file over a device or a
    # pipe would replace it with a regular file.
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    reader = subprocess.Popen(["cat", str(pipe)], stdout=subprocess.PIPE)
    assert main(["check", str(source), "--jobs", "1", "--json", str(pipe)]) == 0
    written, _ = reader.communicate(timeout=30)
    assert json.loads(written)["results"][0]["function"] == "f"
    assert pipe.is_fifo()


def _descendants(pid: int) -> list[int]:
    found, work = [], [pid]
    while work:
        parent = work.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
        work += [int(child) for child in children]
    return found


def test_sigint_ends_the_run_with_130_and_no_orphans():
    files = sorted(str(path) for path in FIXTURES.glob("*/arch/x86/**/*.S"))
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.Popen([sys.executable, "-m", "proofs.cli", "check", *files, "--jobs", "2",
                            "--matrix", "CONFIG_FRAME_POINTER", "--matrix", "CONFIG_RETHUNK"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment, text=True)
    # Wait until the workers are forked, then interrupt the parent only.
    deadline = time.monotonic() + 30
    workers = []
    while time.monotonic() < deadline and not workers:
        time.sleep(0.05)
        workers = _descendants(run.pid)
        workers = [pid for pid in workers if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(
            sys.executable.encode())] if workers else []
    assert workers, "the check never forked a worker"
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == EXIT_INTERRUPTED, err
    assert err == "tdxproof: interrupted\n"
    assert out == ""
    time.sleep(0.2)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"]
    assert alive == [], "workers outlived the interrupted run"
