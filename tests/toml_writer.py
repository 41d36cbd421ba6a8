"""A random TOML writer for hypothesis: data and a text that says it.

:func:`documents` writes every syntax form the tool's TOML files could use
(headers, arrays of tables, dotted and quoted keys, inline tables,
multi-line arrays with comments, the four string kinds, hex/octal/binary
integers, floats, dates, CRLF); :func:`value_source` writes one value
inline.  Used by the located TOML reader's tests and the contract fuzz test.
"""
from __future__ import annotations

import datetime
import math
import re

from hypothesis import strategies as st

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
