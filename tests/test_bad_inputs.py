"""Bad input is a clear error at the right place, never a traceback.

Each file of ``tests/bad_inputs`` states its expected error in its first
line: ``/* expect-error: line N: FRAGMENT */``.  Loading it must raise a
:class:`SourceError` at that file and line whose message contains the
fragment; ``tdxproof parse`` must exit 2 with one paragraph on stderr.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from grammar.frontend import FrontEndOptions, load_program
from grammar.source import SourceError
from proofs.cli import main

BAD_INPUTS = Path(__file__).parent / "bad_inputs"
CASES = sorted(BAD_INPUTS.glob("*.S"))
_EXPECTATION = re.compile(rb"/\* expect-error: line (\d+): (.*?) \*/")


def expectation(path: Path) -> tuple[int, str]:
    match = _EXPECTATION.search(path.read_bytes().split(b"\n", 1)[0])
    assert match, f"{path.name} does not state its expected error"
    return int(match.group(1)), match.group(2).decode()


def test_the_corpus_is_there():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_bad_input_is_a_located_source_error(path):
    line, fragment = expectation(path)
    with pytest.raises(SourceError) as raised:
        load_program([str(path)], FrontEndOptions(use_shims=False))
    error = raised.value
    assert fragment in error.message
    assert error.origin is not None
    assert (Path(error.origin.file).name, error.origin.line) == (path.name, line), error.render()


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_cli_reports_one_paragraph_and_exits_2(path, capsys):
    line, fragment = expectation(path)
    assert main(["parse", "--no-shims", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    message = captured.err.rstrip("\n")
    assert "\n" not in message and fragment in message
    assert f"{path.name}:{line}:" in message


def test_errors_from_macro_bodies_name_the_expansion_chain():
    path = BAD_INPUTS / "error_in_macro_body.S"
    with pytest.raises(SourceError) as raised:
        load_program([str(path)], FrontEndOptions(use_shims=False))
    assert raised.value.origin.column == 2
    assert "(in expansion of BAD at " in raised.value.render()
    assert raised.value.render().endswith("error: 'mov' takes 2 operand(s), got 1")


def test_no_traceback_from_the_installed_command():
    path = BAD_INPUTS / "unterminated_macro.S"
    run = subprocess.run([sys.executable, "-m", "proofs.cli", "parse", "--no-shims", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and "unterminated .macro 'FOO'" in run.stderr


@pytest.mark.parametrize("argv, fragment", [
    (["/nonexistent/input.S"], "cannot read input: No such file"),
    ([str(BAD_INPUTS)], "cannot read input: a directory, not a regular file"),
    (["--cpp", "no-such-preprocessor -E", str(BAD_INPUTS / "stray_endm.S")],
     "cannot run the C preprocessor 'no-such-preprocessor'"),
    (["--cpp", "false", str(BAD_INPUTS / "stray_endm.S")], "C preprocessor failed"),
])
def test_unreadable_input_and_broken_preprocessor(argv, fragment, capsys):
    assert main(["parse", "--no-shims"] + argv) == 2
    message = capsys.readouterr().err.rstrip("\n")
    assert "\n" not in message and fragment in message


def test_cpp_option_replaces_the_preprocessor(tmp_path, capsys):
    path = tmp_path / "a.S"
    path.write_text(".globl f\nf:\n movl $VALUE, %eax\n ret\n")
    assert main(["parse", "--no-shims", "--cpp", "cpp -DVALUE=3", str(path)]) == 0
    assert "movl $0x3, %eax" in capsys.readouterr().out


def test_non_utf8_header_is_located_in_the_header(tmp_path):
    # (a bad byte inside a C comment is fine: the preprocessor drops it)
    (tmp_path / "latin1.h").write_bytes(b"/* caf\xe9 */\n .ascii \"caf\xe9\"\n")
    source = tmp_path / "uses.S"
    source.write_text('#include "latin1.h"\n nop\n')
    with pytest.raises(SourceError, match="not UTF-8") as raised:
        load_program([str(source)], FrontEndOptions(use_shims=False))
    assert (Path(raised.value.origin.file).name, raised.value.origin.line) == ("latin1.h", 2)
