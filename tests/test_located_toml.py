"""The located TOML reader against tomllib, the oracle.

Documents are written by a random TOML writer (:mod:`toml_writer`), by
mutating those, and as raw character soup.  For every accepted document the
values are tomllib's and every key path is placed: the text at a value's
place reads back (through tomllib) as that value, the text at a key's place
is that key.  Every rejected document is a :class:`SourceError` at the line
and column tomllib names (or, for a table-rule violation that tomllib
reports after the statement, at the statement itself).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from grammar.compat import tomllib
from grammar.located_toml import U64_MAX, Document, parse_toml, read_toml
from grammar.source import SourceError
from toml_writer import documents

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the oracle checks ---------------------------------------------------------------------

def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _paths(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (key,), item
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield path + (number,), item
            yield from _paths(item, path + (number,))


def _key_at(src: str, offset: int) -> str:
    """The key part written at ``offset``."""
    if src[offset] in "'\"":
        end = offset + 1
        while src[end] != src[offset]:
            end += 2 if src[offset] == '"' and src[end] == "\\" else 1
        return tomllib.loads(f"k = {src[offset:end + 1]}")["k"]
    return re.match(r"[A-Za-z0-9_-]*", src[offset:]).group()


def check_placed(document: Document) -> None:
    """Every key path of ``document`` is placed, at text that says so."""
    src = document.text
    for path, value in _paths(document.data):
        assert path in document.keys and path in document.values, path
        start, end = document.values[path]
        if end > start:
            written = tomllib.loads(f"v = {src[start:end]}")["v"]
            assert _same(written, value), (path, src[start:end])
        else:                               # a table made by a header or by naming it in one
            assert isinstance(value, (dict, list)) and src[start] in "[" + "'\"" + "".join(
                c for c in map(chr, range(128)) if c.isalnum() or c in "-_"), (path, src[start:start + 10])
        offset = document.keys[path]
        if isinstance(path[-1], str):
            assert _key_at(src, offset) == path[-1], (path, src[offset:offset + 10])
        else:
            assert src[offset] == "[" or offset == start, (path, src[offset:offset + 10])


def check_against_tomllib(text: str) -> None:
    """The reader accepts what tomllib accepts, with its values, and
    rejects the rest with an error at tomllib's place (or before it)."""
    try:
        expected = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        with pytest.raises(SourceError) as raised:
            parse_toml(text, "f.toml")
        origin = raised.value.origin
        assert origin is not None and origin.file == "f.toml"
        src = text.replace("\r\n", "\n")
        where = re.search(r"\(at line (\d+), column (\d+)\)$", str(error))
        line, column = (int(where[1]), int(where[2])) if where else (src.count("\n") + 1, len(src) - src.rfind("\n"))
        plain = re.sub(r" \(at (line \d+, column \d+|end of document)\)$", "", str(error))
        if raised.value.message != f"not valid TOML: {plain}":
            # Moved to the statement or string tomllib complains about after.
            assert (origin.line, origin.column) <= (line, column), (origin, str(error))
        else:
            assert (origin.line, origin.column) == (line, column), (origin, str(error))
        return
    document = parse_toml(text, "f.toml")
    assert _same(document.data, expected)
    check_placed(document)


@FAST
@given(documents())
def test_written_documents_read_as_tomllib_reads_them_and_every_path_is_placed(written):
    text, data = written
    check_against_tomllib(text)
    assert _same(tomllib.loads(text), data)


@FAST
@given(documents(), st.data())
def test_mutated_documents_are_accepted_or_rejected_as_tomllib_does(written, data):
    text, _ = written
    lines = text.split("\n")
    mutation = data.draw(st.sampled_from(["delete", "insert", "duplicate line"]))
    if mutation == "duplicate line" and lines:
        number = data.draw(st.integers(0, len(lines) - 1))
        lines.insert(data.draw(st.integers(0, len(lines))), lines[number])
        text = "\n".join(lines)
    elif text:
        where = data.draw(st.integers(0, len(text) - 1))
        if mutation == "delete":
            text = text[:where] + text[where + 1:]
        else:
            text = text[:where] + data.draw(st.sampled_from(list("[]{}=,.\"'#\n \\x1"))) + text[where:]
    check_against_tomllib(text)


@settings(max_examples=300, deadline=None)
@given(st.text("ab1 =[]{}.,\"'#\n\t\\-+_:eTZ\r", max_size=40))
def test_character_soup_never_raises_anything_but_a_located_error(text):
    check_against_tomllib(text)


def _repo_toml_files() -> list[Path]:
    return sorted({*ROOT.glob("proofs/contract_data/*.toml"), *ROOT.glob("examples/**/*.toml"),
                   *ROOT.glob("tests/fixtures/**/tdxproof.toml"), *ROOT.glob("tests/bad_inputs/corpus/*.toml"),
                   ROOT / "pyproject.toml"})


@pytest.mark.parametrize("path", _repo_toml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_repository_toml_files(path):
    document = read_toml(str(path))
    assert _same(document.data, tomllib.loads(path.read_text(encoding="utf-8")))
    check_placed(document)


# --- located errors ---------------------------------------------------------------------

def _error(text: str) -> str:
    with pytest.raises(SourceError) as raised:
        parse_toml(text, "f.toml")
    return raised.value.render()


@pytest.mark.parametrize("text, expected", [
    ("a = 1\na = 2\n", "f.toml:2:1: error: not valid TOML: 'a' is defined twice (first at line 1)"),
    ("[[w]]\nx = 1\n[[w]]\nx = 1\n  x = 2\n", "f.toml:5:3: error: not valid TOML: 'w[1].x' is defined twice (first at line 4)"),
    ("[t]\n[u]\n[t]\n", "f.toml:3:1: error: not valid TOML: 't' is defined twice (first at line 1)"),
    ("[t]\n[[t]]\n", "f.toml:2:1: error: not valid TOML: 't' is defined twice (first at line 1)"),
    ("a = [1,\n2,\n", "f.toml:1:5: error: not valid TOML: unclosed array (it starts here)"),
    ("a = [1,\n2\n", "f.toml:1:5: error: not valid TOML: unclosed array (it starts here)"),
    ("a = { b = [1], c = 2\nd = 1\n", "f.toml:1:5: error: not valid TOML: unclosed inline table (it starts here)"),
    ("a = 'x\nb = 2\n", "f.toml:1:5: error: not valid TOML: unterminated string (it starts here)"),
    ('a = 1\nb = """x\ny = 2\n', "f.toml:2:5: error: not valid TOML: unterminated string (it starts here)"),
    ('a = "x\nb = "y"\n', "f.toml:1:5: error: not valid TOML: unterminated string (it starts here)"),
    ("a = 1\r\nb = = 2\r\n", "f.toml:2:5: error: not valid TOML: Invalid value"),
    ("a = 1\nb.c = 2\nb = 3\n", "f.toml:3:1: error: not valid TOML: 'b' is defined twice (first at line 2)"),
])
def test_rejected_documents_are_located(text, expected):
    assert _error(text) == expected


def test_unreadable_and_undecodable_files(tmp_path):
    with pytest.raises(SourceError) as raised:
        read_toml(str(tmp_path), "contract file")
    assert raised.value.origin is None and f"cannot read contract file {tmp_path}: Is a directory" in raised.value.message
    with pytest.raises(SourceError) as raised:
        read_toml(str(tmp_path / "absent.toml"))
    assert "No such file or directory" in raised.value.message
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('a = 1\nname = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(SourceError) as raised:
        read_toml(str(bad), "contract file")
    assert raised.value.render() == f"{bad}:2:12: error: contract file is not UTF-8 text (byte 0xe9)"


# --- typed reads ------------------------------------------------------------------------

TEXT = """\
name = "f"
list = ["a", 3]
flag = 1
count = -1
big = 0x1_0000_0000_0000_0000
truth = true
reg = "rzx"
[table]
known = 1
colour = 2
"""


def _raised(read) -> str:
    with pytest.raises(SourceError) as raised:
        read(parse_toml(TEXT, "f.toml").root())
    return raised.value.render()


@pytest.mark.parametrize("read, expected", [
    (lambda r: r["list"].strings(), "f.toml:2:14: error: 'list' must be a list of strings; item 1 is the integer 3"),
    (lambda r: r["name"].strings(), "f.toml:1:8: error: 'name' must be a list of strings, not the string 'f'"),
    (lambda r: r["flag"].boolean(), "f.toml:3:8: error: 'flag' must be true or false, not the integer 1"),
    (lambda r: r["count"].integer(), "f.toml:4:9: error: 'count' must be an integer from 0 to 0xffffffffffffffff, not the integer -1"),
    (lambda r: r["big"].integer(), f"f.toml:5:7: error: 'big' must be an integer from 0 to {U64_MAX:#x}, not the integer {2 ** 64}"),
    (lambda r: r["truth"].integer(), "f.toml:6:9: error: 'truth' must be an integer from 0 to 0xffffffffffffffff, not true"),
    (lambda r: r["reg"].choice(("rax", "rdx"), "register"),
     "f.toml:7:7: error: unknown register 'rzx' in 'reg' (allowed: rax, rdx)"),
    (lambda r: r["truth"].choice(("rax", "rdx"), "register"),
     "f.toml:6:9: error: 'truth' must be a register name (rax, rdx), not true"),
    (lambda r: r["table"].table(("known",), ("color",)),
     "f.toml:10:1: error: unknown key 'table.colour' (did you mean 'color'? allowed: known, color)"),
    (lambda r: r["table"].table(("known", "shape"), None), "f.toml:8:1: error: missing required key 'table.shape'"),
    (lambda r: r["table"].named("contract 'f'").table(("shape",), None),
     "f.toml:8:1: error: contract 'f': missing required key 'shape'"),
    (lambda r: r["table"].named("contract 'f'")["colour"].string(),
     "f.toml:10:10: error: contract 'f': 'colour' must be a string, not the integer 2"),
    (lambda r: r.table(("absent",), None), "f.toml:1:1: error: missing required key 'absent'"),
])
def test_typed_reads_say_what_was_expected_and_found_where(read, expected):
    assert _raised(read) == expected
