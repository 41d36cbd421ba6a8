"""The lark parser of a grammar, built once per user and kept on disk.

Building the LALR tables of ``att.lark`` costs about 40 ms, a tenth of a
short ``tdxproof check``; loading them back with lark's own
``Lark.save``/``Lark.load`` costs about 2 ms.

Decisions:

* The cache is a file in the user's cache directory
  (``$XDG_CACHE_HOME/tdxproof`` when that is an absolute path, else
  ``~/.cache/tdxproof``).  Its name is the SHA-256 of everything the tables
  depend on: the grammar text, the lark options, lark's version and
  Python's; the same digest heads the file and is checked on reading.  A
  changed grammar or lark gets a new file.
* The file is written under a temporary name in that directory and renamed
  into place (atomic on POSIX): a reader never sees half a file, and two
  runs at once at most write the same bytes twice.
* Any failure -- no home directory, a directory that cannot be created or
  written, a file that does not load (truncated, corrupted, written by
  something else) -- falls back to building the parser, silently; a file
  that did not load is replaced when the directory is writable.  The cache
  can make start-up faster; it never changes a parse.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Mapping

import lark


def cache_directory(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the cache files live (``None`` when there is no home to put them in).

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


def _digest(grammar: str, options: dict) -> str:
    key = "\0".join([grammar, repr(sorted(options.items())), lark.__version__, sys.version])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def cached_lark(grammar: str, **options) -> lark.Lark:
    """``lark.Lark(grammar, **options)``, from the cache when it holds these tables."""
    directory = cache_directory()
    digest = _digest(grammar, options)
    path = directory / f"lark-{digest}.pickle" if directory else None
    if path is not None:
        try:
            with open(path, "rb") as file:
                if file.readline() == (digest + "\n").encode():
                    return lark.Lark.load(file)
        except Exception:   # absent, unreadable or not a parser: build it instead
            pass
    parser = lark.Lark(grammar, **options)
    if path is not None:
        _store(parser, path, digest)
    return parser


def _store(parser: lark.Lark, path: Path, digest: str) -> None:
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".lark-", suffix=".tmp")
        with os.fdopen(descriptor, "wb") as file:
            file.write((digest + "\n").encode())
            parser.save(file)
        os.replace(temporary, path)
    except OSError:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
