"""The process's caches, in one place: each one named, bounded and clearable.

Several stages remember what they computed (a parse tree per statement
text, a Z3 constant per value, a kernel tree's facts per tree), because the
same inputs recur in every configuration of a file and every file of a
tree.  This module decides how every such cache behaves:

* **What may be cached**: only a result that the key alone determines, so
  that dropping any entry at any time changes nothing but speed.
* **A bound on the entries** of each cache: an insertion into a full cache
  first empties it.  Nothing is kept per hit, so a hit stays one ``dict``
  lookup on the hot paths (the Z3 constants, the statement parses); a
  process that runs for long (``tdxproof mutate``, a test session, an
  editor integration) keeps at most the bound.
* **One registry**, :data:`CACHES`: every cache is made by
  :meth:`Caches.cache` under a name of its own (a second cache of the same
  name is refused), so a long-lived caller can see every cache's size
  (:meth:`Caches.sizes`) and empty them all (:meth:`Caches.clear`)
  between two pieces of work.

Files kept across runs (lark's parser tables, a kernel tree's generated
headers) live in the user's cache directory (:func:`cache_directory`).

It sits at the bottom of the import graph (it imports nothing of the
tool), so every layer can register its caches here.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Hashable, Mapping


class Cache(dict):
    """A ``dict`` of at most ``bound`` entries; ``name`` is its registered name.

    Entries are added with ``cache[key] = value`` (which keeps the bound).

    >>> squares = Cache("squares", 2)
    >>> for n in (1, 2, 3):
    ...     squares[n] = n * n
    >>> dict(squares)
    {3: 9}
    """

    def __init__(self, name: str, bound: int):
        super().__init__()
        self.name = name
        self.bound = bound

    def __setitem__(self, key: Hashable, value: object) -> None:
        if len(self) >= self.bound and key not in self:
            self.clear()
        super().__setitem__(key, value)


class Caches:
    """Every :class:`Cache` of the process, by name."""

    def __init__(self) -> None:
        self._caches: dict[str, Cache] = {}

    def cache(self, name: str, bound: int) -> Cache:
        """A new, empty cache registered as ``name`` with at most ``bound`` entries."""
        if name in self._caches:
            raise ValueError(f"two caches named {name!r}")
        made = self._caches[name] = Cache(name, bound)
        return made

    def sizes(self) -> dict[str, int]:
        """Each cache's number of entries, by name."""
        return {name: len(cache) for name, cache in self._caches.items()}

    def bounds(self) -> dict[str, int]:
        """Each cache's bound, by name."""
        return {name: cache.bound for name, cache in self._caches.items()}

    def clear(self) -> None:
        """Empty every cache (results are computed again when next asked for)."""
        for cache in self._caches.values():
            cache.clear()


CACHES = Caches()
"""The process's caches."""


def cache_directory(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the files kept across runs live: ``$XDG_CACHE_HOME/tdxproof``
    when that is an absolute path, else ``~/.cache/tdxproof`` (``None``
    when there is no home to put them in).

    >>> str(cache_directory({"XDG_CACHE_HOME": "/tmp/x"}))
    '/tmp/x/tdxproof'
    >>> cache_directory({"XDG_CACHE_HOME": "relative/ignored"}) == Path.home() / ".cache/tdxproof"
    True
    """
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:
            return None
    return Path(base) / "tdxproof"
