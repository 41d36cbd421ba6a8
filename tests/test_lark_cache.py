"""The on-disk cache of lark's tables (grammar/lark_cache.py): a hit builds
nothing and parses exactly as a fresh build does; a damaged file or an
unwritable place falls back to building, silently; a changed grammar gets
a file of its own."""
from __future__ import annotations

import lark
import pytest

from grammar.expressions import GRAMMAR_PATH
from grammar.lark_cache import cached_lark

OPTIONS = dict(parser="lalr", start=["statement", "expression"], propagate_positions=True,
               maybe_placeholders=False)
SAMPLES = [("statement", "movq %rax, 8(%rsi)"), ("statement", "lock; addl $1, (%rax,%rbx,4)"),
           ("statement", "jmp *%rax"), ("expression", "1 + 2 * (3 << 4)"),
           ("statement", "leaq foo(%rip), %rdi"), ("expression", "((1)")]


@pytest.fixture
def builds(monkeypatch, tmp_path):
    """Counts real grammar builds; the cache lives in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    count = []
    original = lark.Lark.__init__

    def counting(self, *args, **kwargs):
        count.append(1)
        original(self, *args, **kwargs)
    monkeypatch.setattr(lark.Lark, "__init__", counting)
    return count


def _parses(parser: lark.Lark) -> list:
    out = []
    for start, text in SAMPLES:
        try:
            tree = parser.parse(text, start=start)
        except lark.exceptions.UnexpectedInput as error:
            out.append(("error", type(error).__name__, getattr(error, "column", None)))
            continue
        out.append((tree, [(t.meta.column, t.meta.end_column) for t in tree.iter_subtrees()]))
    return out


def test_a_hit_builds_nothing_and_parses_the_same(builds, tmp_path):
    grammar = GRAMMAR_PATH.read_text()
    first = cached_lark(grammar, **OPTIONS)
    [cache_file] = (tmp_path / "tdxproof").iterdir()
    second = cached_lark(grammar, **OPTIONS)
    assert len(builds) == 1
    assert _parses(second) == _parses(first) == _parses(lark.Lark(grammar, **OPTIONS))
    assert [path.name for path in (tmp_path / "tdxproof").iterdir()] == [cache_file.name]


def test_a_damaged_file_is_rebuilt_and_replaced(builds, tmp_path):
    grammar = GRAMMAR_PATH.read_text()
    reference = _parses(lark.Lark(grammar, **OPTIONS))
    cached_lark(grammar, **OPTIONS)
    [cache_file] = (tmp_path / "tdxproof").iterdir()
    good = cache_file.read_bytes()
    header = good.split(b"\n", 1)[0] + b"\n"
    for damaged in (good[:len(good) // 2], header + b"not a pickle", b"", b"wrong header\n" + good):
        cache_file.write_bytes(damaged)
        before = len(builds)
        assert _parses(cached_lark(grammar, **OPTIONS)) == reference
        assert len(builds) == before + 1                 # built again ...
        assert _parses(cached_lark(grammar, **OPTIONS)) == reference
        assert len(builds) == before + 1                 # ... and the file replaced: a hit
    assert sorted(p.name for p in (tmp_path / "tdxproof").iterdir()) == [cache_file.name]


def test_an_unwritable_place_is_no_error(monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))      # tdxproof/ cannot be made under a file
    parser = cached_lark(GRAMMAR_PATH.read_text(), **OPTIONS)
    assert _parses(parser) == _parses(lark.Lark(GRAMMAR_PATH.read_text(), **OPTIONS))


def test_another_grammar_or_options_get_their_own_file(builds, tmp_path):
    grammar = GRAMMAR_PATH.read_text()
    cached_lark(grammar, **OPTIONS)
    cached_lark(grammar + "\n// changed\n", **OPTIONS)
    cached_lark(grammar, **dict(OPTIONS, propagate_positions=False))
    assert len(list((tmp_path / "tdxproof").iterdir())) == 3 and len(builds) == 3
