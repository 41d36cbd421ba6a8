"""The located TOML reader against tomllib, the oracle.

Documents are written by a random TOML writer (every syntax form the
contracts, specs and tree files could use: headers, arrays of tables,
dotted and quoted keys, inline tables, multi-line arrays with comments, the
four string kinds, hex/octal/binary integers, floats, dates, CRLF), by
mutating those, and as raw character soup.  For every accepted document the
values are tomllib's and every key path is placed: the text at a value's
place reads back (through tomllib) as that value, the text at a key's place
is that key.  Every rejected document is a :class:`SourceError` at the line
and column tomllib names (or, for a table-rule violation that tomllib
reports after the statement, at the statement itself).
"""
from __future__ import annotations

import datetime
import math
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from grammar.located_toml import U64_MAX, Document, parse_toml, read_toml
from grammar.source import SourceError

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the random writer -------------------------------------------------------------------

_KEY_CHARS = "abcXYZ019-_ .\"'\\é\t#=[]"
_TEXT_CHARS = "ab Z\"'\\\n\t#[]{}=,.é\x7f\x01"


def _basic(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append(char)
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


@st.composite
def keys(draw) -> str:
    return draw(st.text(_KEY_CHARS, min_size=0, max_size=5))


@st.composite
def key_source(draw, name: str) -> str:
    """``name`` as a key part: bare where it can be, else quoted."""
    if name and re.fullmatch(r"[A-Za-z0-9_-]+", name) and draw(st.booleans()):
        return name
    if "'" not in name and "\n" not in name and not any(ord(c) < 32 and c != "\t" for c in name) \
            and draw(st.booleans()):
        return f"'{name}'"
    return _basic(name)


def _dotted(draw, path) -> str:
    blank = draw(st.sampled_from(["", " ", "\t"]))
    return f"{blank}.{blank}".join(draw(key_source(part)) for part in path)


@st.composite
def string_source(draw, text: str) -> str:
    forms = ["basic"]
    controls = any((ord(c) < 32 and c not in "\t\n") or ord(c) == 127 for c in text)
    if "'" not in text and "\n" not in text and not controls:
        forms.append("literal")
    if "'''" not in text and not text.endswith("'") and not controls and not text.startswith("\n"):
        forms.append("multi-literal")
    if not text.startswith("\n"):
        forms.append("multi-basic")
    form = draw(st.sampled_from(forms))
    if form == "literal":
        return f"'{text}'"
    if form == "multi-literal":
        return f"'''{draw(st.sampled_from(['', chr(10)]))}{text}'''"
    if form == "multi-basic":
        inner = _basic(text)[1:-1].replace("\\n", "\n")
        # A quote or two just before the closing delimiter belong to the text.
        return f'"""{inner}"""'
    return _basic(text)


@st.composite
def integer_source(draw, value: int) -> str:
    if value >= 0 and draw(st.booleans()):
        prefix, digits = draw(st.sampled_from([("0x", "{:x}"), ("0o", "{:o}"), ("0b", "{:b}")]))
        return prefix + digits.format(value)
    text = str(value)
    if draw(st.booleans()) and len(text.lstrip("-")) > 3:
        sign, body = ("-", text[1:]) if text.startswith("-") else ("", text)
        text = sign + body[0] + "_" + body[1:]
    return text


SCALARS = st.one_of(
    st.integers(-2 ** 70, 2 ** 70), st.booleans(),
    st.floats(allow_nan=False, width=64),
    st.text(_TEXT_CHARS, max_size=8),
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)),
    st.dates(), st.times(),
)


@st.composite
def value_source(draw, value, depth: int = 0) -> str:
    """``value`` as inline TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return draw(integer_source(value))
    if isinstance(value, float):
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
    if isinstance(value, str):
        return draw(string_source(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=draw(st.sampled_from(["T", " "])))
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        gap = st.sampled_from(["", " ", "\n  ", " # note\n ", "\t"])
        items = [draw(gap) + draw(value_source(item, depth + 1)) + draw(gap) for item in value]
        trailing = "," + draw(gap) if items and draw(st.booleans()) else ""
        return "[" + draw(gap) + ",".join(items) + trailing + "]"
    items = [f"{_dotted(draw, [k])} = {draw(value_source(v, depth + 1))}" for k, v in value.items()]
    return "{" + draw(st.sampled_from(["", " "])) + ", ".join(items) + draw(st.sampled_from(["", " "])) + "}"


def _tables_only(value) -> bool:
    return isinstance(value, dict) and bool(value)


VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys(), inner, max_size=3)), max_leaves=8)
TABLES = st.recursive(st.dictionaries(keys(), VALUES, max_size=3), lambda inner: st.one_of(
    st.dictionaries(keys(), st.one_of(VALUES, inner, st.lists(inner, min_size=1, max_size=2)), max_size=3)),
    max_leaves=6)


@st.composite
def documents(draw) -> tuple[str, dict]:
    """A TOML text and the data it was written from."""
    data = draw(TABLES)
    lines: list[str] = []
    comment = st.sampled_from(["", "", " # c", "\t#x"])

    def write(table: dict, path: list[str]) -> None:
        later = []
        for key, value in table.items():
            aot = isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
            if isinstance(value, dict) and draw(st.integers(0, 2)) == 0:
                later.append(("table", key, value))
            elif aot and draw(st.booleans()):
                later.append(("array", key, value))
            elif isinstance(value, dict) and value and all(not isinstance(v, (dict, list)) for v in value.values()) \
                    and draw(st.booleans()):
                for sub, item in value.items():          # dotted keys
                    lines.append(f"{_dotted(draw, [key, sub])} = {draw(value_source(item))}{draw(comment)}")
            else:
                indent = draw(st.sampled_from(["", "  ", "\t"]))
                lines.append(f"{indent}{_dotted(draw, [key])} = {draw(value_source(value))}{draw(comment)}")
            if draw(st.integers(0, 3)) == 0:
                lines.append(draw(st.sampled_from(["", "# a comment", "  "])))
        for kind, key, value in later:
            if kind == "table":
                lines.append(f"[{_dotted(draw, path + [key])}]{draw(comment)}")
                write(value, path + [key])
            else:
                for item in value:
                    lines.append(f"[[ {_dotted(draw, path + [key])} ]]{draw(comment)}")
                    write(item, path + [key])

    write(data, [])
    text = "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    if draw(st.integers(0, 4)) == 0:
        text = text.replace("\n", "\r\n")
    return text, data


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
