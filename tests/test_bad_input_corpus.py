"""The corpus of bad inputs: every case a clear error, never a traceback or a hang.

Each file ``tests/bad_inputs/corpus/<category>.toml`` holds ``[[case]]``
tables, one per bad input a user may give the tool:

``id``
    unique within the corpus (the test's name).
``argv``
    the ``tdxproof`` arguments (``["check", "@tmp/a.S", "--jobs", "1"]``).
``files``
    optional: a table of file name (relative to the case's own temporary
    directory, subdirectories allowed) -> text, written before the run.
``fifos``, ``dirs``
    optional: lists of names made as FIFOs / directories there.
``exit``
    the expected exit status (2 bad input, 70 an internal error, ...).
``message``
    the start of the expected first line of stderr.
``absent``
    optional: paths that must not exist after the run (no partial output).
``mode``
    ``"in-process"`` (the default: :func:`proofs.cli.main` in this process)
    or ``"subprocess"`` (``python -m proofs.cli``, for cases about the real
    process: signals, inherited descriptors).
``timeout``
    optional: seconds the case may take (default 30): a hang is a failure.

In every string, ``@tmp`` is the case's temporary directory, ``@fixtures``
``tests/fixtures`` and ``@bad_inputs`` ``tests/bad_inputs``.

Every case must end with its exit status, print no traceback, and print
stderr as one paragraph (no blank line) whose first line starts with
``message``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import run_in_process
from grammar.compat import tomllib

BAD_INPUTS = Path(__file__).parent / "bad_inputs"
CORPUS = BAD_INPUTS / "corpus"
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parent.parent
KEYS = {"id", "argv", "files", "fifos", "dirs", "exit", "message", "absent", "mode", "timeout"}


def _cases() -> list[tuple[str, dict]]:
    cases = []
    for path in sorted(CORPUS.glob("*.toml")):
        for case in tomllib.loads(path.read_text(encoding="utf-8")).get("case", []):
            cases.append((path.stem, case))
    return cases


CASES = _cases()


def test_corpus_is_well_formed():
    ids = [case["id"] for _, case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for category, case in CASES:
        assert set(case) <= KEYS, f"{category}/{case.get('id')}: unknown keys {set(case) - KEYS}"
        assert {"id", "argv", "exit", "message"} <= set(case), f"{category}/{case.get('id')}"
        assert case["exit"] != 0 and case["message"], f"{category}/{case['id']}: a bad input must fail"


def _substitute(text: str, tmp: Path) -> str:
    return (text.replace("@tmp", str(tmp)).replace("@fixtures", str(FIXTURES))
            .replace("@bad_inputs", str(BAD_INPUTS)))


def _subprocess(argv: list[str], timeout: float, cwd: Path) -> tuple[int, str]:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    try:
        run = subprocess.run([sys.executable, "-m", "proofs.cli", *argv], capture_output=True, text=True,
                             timeout=timeout, cwd=cwd, env=environment, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout} s (a hang)")
    return run.returncode, run.stderr


@pytest.mark.parametrize("category, case", CASES, ids=[f"{category}/{case['id']}" for category, case in CASES])
def test_bad_input(category, case, tmp_path):
    for name in case.get("dirs", []):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
    for name, text in case.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(_substitute(text, tmp_path), encoding="utf-8")
    for name in case.get("fifos", []):
        os.mkfifo(tmp_path / name)
    argv = [_substitute(item, tmp_path) for item in case["argv"]]
    timeout = float(case.get("timeout", 30))
    if case.get("mode", "in-process") == "subprocess":
        status, stderr = _subprocess(argv, timeout, tmp_path)
    else:
        status, _, stderr = run_in_process(argv, timeout)
    assert "Traceback" not in stderr, stderr
    message = _substitute(case["message"], tmp_path)
    first = stderr.lstrip("\n").split("\n", 1)[0]
    assert status == case["exit"], f"exit {status}, expected {case['exit']}: {stderr}"
    assert first.startswith(message), f"stderr starts {first!r}, expected {message!r}"
    assert "\n\n" not in stderr.strip("\n"), f"more than one paragraph: {stderr}"
    for path in case.get("absent", []):
        assert not Path(_substitute(path, tmp_path)).exists(), f"{path} was left behind"
