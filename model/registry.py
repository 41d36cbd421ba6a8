"""The tables that map a key (an IR node type, a mnemonic) to the one function
that handles it, filled by a decorator next to each function.

A registry decides one thing: a key has at most one handler.  Registering a
second one for the same key is a programming error of the tool, raised at
import time as :class:`DuplicateHandler`, never a silent replacement (the
last definition winning would hide a copy-paste slip).  Whether every key
that must have a handler has one is each table's completeness test.

Lookups are plain ``dict`` lookups (a registry is a ``dict``): the
evaluators run once per IR node, so the table costs nothing on the way.

>>> squares = Registry("squarers")
>>> @squares.register(int, bool)
... def square(value): return value * value
>>> squares[int](3), sorted(t.__name__ for t in squares)
(9, ['bool', 'int'])
>>> squares.register(int)(abs)
Traceback (most recent call last):
model.registry.DuplicateHandler: two squarers for <class 'int'>
"""
from __future__ import annotations

from typing import Callable, Hashable, TypeVar

Handler = TypeVar("Handler", bound=Callable)


class DuplicateHandler(ValueError):
    """A second handler registered for a key that has one (a bug of the tool)."""


class Registry(dict):
    """Key -> handler, filled by :meth:`register`; ``what`` names the
    handlers in the error (``"semantic functions"``)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, *keys: Hashable) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of each of ``keys``."""
        def decorate(function: Handler) -> Handler:
            for key in keys:
                if key in self:
                    raise DuplicateHandler(f"two {self.what} for {key!r}")
                self[key] = function
            return function
        return decorate
