"""JSON text as every command writes it: laid out for a reader and a diff.

A value that fits in :data:`JSON_WIDTH` columns at its indentation is one
line (a register, a short list); a longer object or array is one member
per line, indented by two, down to :data:`JSON_LEVELS` levels; a value
deeper than that is one line however long (an obligation of a ``check``
report with its counterexample; ``--cex-dir`` writes each counterexample
as a file of its own, laid out from its top).  The lines are the C
encoder's: ``json.dumps(indent=2)``, whose indentation only the
pure-Python encoder does, took 0.19 s of the parent's time after the last
result of the fixture forms' check (5.2 MB); this takes 0.06 s (2.8 MB).
"""
from __future__ import annotations

import json

JSON_WIDTH = 100
"""The columns :func:`json_text` fits a value in before it breaks it up."""

JSON_LEVELS = 4
"""The levels of objects and arrays :func:`json_text` may break up: a
report's results, a result, its obligations (of ``parse --json``: its
functions, a function, its instructions); a value deeper is one line."""

_ONE_LINE = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode
"""A value as JSON on one line (the C encoder: no indentation)."""

_STRING = json.encoder.encode_basestring_ascii


def _key(key) -> str:
    """An object's key as JSON writes it (a string; a number, true, false
    or null as their text in one)."""
    return _STRING(key if isinstance(key, str) else _ONE_LINE(key))


def _room(value, room: int) -> int:
    """The columns left of ``room`` once ``value`` is written on one line
    (:data:`_ONE_LINE`), or a negative number as soon as it does not fit
    (so a long value is not walked, let alone encoded, to learn that)."""
    if isinstance(value, str):
        return room - len(_STRING(value))
    if isinstance(value, (dict, list)):
        room -= 2 * max(1, len(value))   # the brackets, and ", " between members
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            if room < 0:
                break
            room = _room(item, room - (len(_key(key)) + 2 if isinstance(value, dict) else 0))
        return room
    return room - len(_ONE_LINE(value))


def json_text(value, indent: int = 0, column: int = 0) -> str:
    """``value`` as JSON, laid out for a reader (module doc), without a
    final newline; ``indent``: the indentation of its lines after the
    first (two columns a level: :data:`JSON_LEVELS`), ``column``: where its
    first line starts.

    >>> print(json_text({"path": [{"file": "a.S", "line": 3}], "ok": True}))
    {"path": [{"file": "a.S", "line": 3}], "ok": true}
    >>> print(json_text({"values": list(range(40)), "end": None}))
    {
      "values": [
        0,
        1,
    ...
        39
      ],
      "end": null
    }
    >>> print(json_text([[[[{"deep": "x" * 100}]]]]))
    [
      [
        [
          [
            {"deep": "xxx...xxx"}
          ]
        ]
      ]
    ]
    """
    # one column kept for the comma after a member
    if indent >= 2 * JSON_LEVELS or not value or not isinstance(value, (dict, list)) \
            or _room(value, JSON_WIDTH - 1 - max(indent, column)) >= 0:
        return _ONE_LINE(value)
    inner = indent + 2
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            name = f"{' ' * inner}{_key(key)}: "
            members.append(name + json_text(item, inner, len(name)))
        opening, closing = "{", "}"
    else:
        members = [" " * inner + json_text(item, inner, inner) for item in value]
        opening, closing = "[", "]"
    return opening + "\n" + ",\n".join(members) + "\n" + " " * indent + closing
