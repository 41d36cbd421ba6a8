"""proofs.json_layout: the text is the same JSON value, and laid out as its doc says."""
import json

from hypothesis import given, settings, strategies as st

from proofs.json_layout import JSON_LEVELS, JSON_WIDTH, json_text

_SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
_KEYS = st.text(max_size=12) | st.integers(-2**40, 2**40) | st.booleans() | st.none()
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=6)
                       | st.dictionaries(_KEYS, inner, max_size=6), max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_the_text_is_the_value(value):
    """The same value as ``json.dumps`` writes (which makes every key a string)."""
    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_a_line_too_long_is_one_value_that_may_not_be_broken(value):
    """A line longer than the width holds one scalar or empty container
    (a long key's), or a value at the deepest level that is broken up; a
    container that is broken up did not fit on one line."""
    for line in json_text(value).splitlines():
        if len(line) > JSON_WIDTH:
            indent = len(line) - len(line.lstrip(" "))
            body = line.strip().rstrip(",")
            member = body.split('": ', 1)[1] if body.startswith('"') and '": ' in body else body
            deep = indent >= 2 * JSON_LEVELS
            assert deep or not member.startswith(("[", "{")) or member in ("[", "{", "[]", "{}"), line


def test_short_values_are_one_line_and_long_ones_one_member_per_line():
    assert json_text({"rax": "0x0", "written": ["rax", "rsp"]}) == '{"rax": "0x0", "written": ["rax", "rsp"]}'
    long = {"steps": [{"file": "a" * 60, "line": line} for line in range(3)]}
    assert json_text(long).splitlines() == [
        "{", '  "steps": [', *(f'    {{"file": "{"a" * 60}", "line": {line}}}' + ("," if line < 2 else "")
                               for line in range(3)), "  ]", "}"]


def test_a_value_deeper_than_the_levels_is_one_line():
    deep = [[[[{"k": "x" * 200}]]]]
    lines = json_text(deep).splitlines()
    assert lines[JSON_LEVELS] == " " * 2 * JSON_LEVELS + json.dumps({"k": "x" * 200})
