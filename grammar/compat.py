"""What differs between the Python versions tdxproof runs on, in one place.

tdxproof runs on Python 3.9 and later (``requires-python`` in
``pyproject.toml``; the README's requirements say which distributions
ship which).  Two things it uses came with 3.11:

* ``tomllib`` (the TOML reader of the standard library): before 3.11 the
  ``tomli`` package, from which ``tomllib`` was taken (the same API and
  error messages; a dependency only there, ``pyproject.toml`` says so);
* ``enum.StrEnum`` (a member *is* its string: it compares, formats,
  prints and serialises as it): before 3.11 the same from ``str`` and
  ``enum.Enum`` (the members here give their values explicitly, so
  ``StrEnum``'s lower-cased ``auto()`` is not needed).

>>> class Colour(StrEnum):
...     RED = "red"
>>> Colour.RED == "red", str(Colour.RED), f"{Colour.RED}", Colour("red") is Colour.RED
(True, 'red', 'red', True)
"""
from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    import tomllib
    from enum import StrEnum
else:                                   # pragma: no cover -- run by the 3.9 and 3.10 test runs
    import tomli as tomllib

    class StrEnum(str, enum.Enum):
        """3.11's ``enum.StrEnum``: a member is its value, as a string."""

        __str__ = str.__str__
        __format__ = str.__format__

__all__ = ["StrEnum", "tomllib"]
