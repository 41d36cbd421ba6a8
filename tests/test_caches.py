"""The process's caches (grammar/caches.py): every cache is registered,
keeps its bound, and clearing them all changes no result."""
from __future__ import annotations

import pytest

from grammar import expressions, parser
from grammar.caches import CACHES, Cache, Caches
from grammar.frontend import FrontEndOptions, load_program
from grammar.parser import parse_instruction
from grammar.source import Origin
from model import bv, memory
from proofs import abi_choice, equiv, programs, renaming  # noqa: F401  (their caches are registered on import)

ORIGIN = Origin("a.S", 1)


def test_every_cache_of_the_tool_is_registered():
    assert {"parse trees", "instructions", "kernel trees", "z3 constants", "z3 functions",
            "memory places", "programs", "module renamings", "lifted steps",
            "contract choices", "equiv executor runs"} <= set(CACHES.sizes())
    assert all(bound > 0 for bound in CACHES.bounds().values())


def test_a_second_cache_of_the_same_name_is_refused():
    caches = Caches()
    caches.cache("once", 1)
    with pytest.raises(ValueError, match="two caches named 'once'"):
        caches.cache("once", 2)


def test_clearing_empties_every_cache_and_changes_no_result(tmp_path):
    source = tmp_path / "a.S"
    source.write_text("\t.text\n\t.globl f\nf:\n\tmovq 8(%rdi), %rax\n\tleaq 1f(%rip), %rcx\n1:\tret\n")
    before = load_program([str(source)], FrontEndOptions(use_shims=False))
    constant, function = bv.const(7, 16), bv.function("f", 1, 8)
    place = memory.place(bv.variable("x", 64) + bv.const(8, 64))
    assert all(CACHES.sizes()[name] for name in ("parse trees", "instructions", "z3 constants",
                                                 "z3 functions", "memory places"))
    CACHES.clear()
    assert set(CACHES.sizes().values()) == {0}
    assert load_program([str(source)], FrontEndOptions(use_shims=False)) == before
    assert bv.const(7, 16).eq(constant) and bv.function("f", 1, 8).eq(function)
    again = memory.place(bv.variable("x", 64) + bv.const(8, 64))
    assert again.base.eq(place.base) and again.offset == place.offset == 8


def test_a_full_cache_starts_again_and_keeps_its_bound(monkeypatch):
    small = Cache("small", 3)
    for number in range(10):
        small[number] = number
        assert len(small) <= 3
    assert small == {9: 9}
    monkeypatch.setattr(parser._PARSED, "bound", 5)
    monkeypatch.setattr(expressions._TREES, "bound", 5)
    for number in range(40):
        assert parse_instruction(f"addq ${number}, %rax", ORIGIN, {}).operands[0].value == number
        assert len(parser._PARSED) <= 5 and len(expressions._TREES) <= 5


def test_a_program_dropped_after_its_preprocessing_was_skipped_is_built_again(tmp_path):
    source = tmp_path / "a.S"
    source.write_text("\t.text\n\t.globl f\nf:\n\tret\n")
    files, options = (str(source),), FrontEndOptions(use_shims=False)
    built = programs.cached_program(files, options)
    assert programs.preprocess_programs([(files, options)], None) == {}   # cached: no cpp run
    CACHES.clear()                                                       # e.g. a full cache
    assert programs.cached_preprocessed(files, options, {}) == built
