"""The front-end options a counterexample file records, and their inverse.

``check --cex-dir`` and ``equiv`` write a run's options with
:func:`proofs.cex_file.front_end_json`; ``replay`` reads them back with
:func:`proofs.cex_file.front_end_options`.  Whatever the options, reading
back what was written (through JSON text, as the file holds it) gives the
same options -- with the reader's own preprocessor, never the file's.
"""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from grammar.frontend import FrontEndOptions
from grammar.limits import LIMIT_NAMES, Limits
from proofs.cex_file import MAX_INT, front_end_json, front_end_options

_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_PATH = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), min_size=1, max_size=12)
_DEFINE = st.one_of(_NAME, st.builds(lambda name, value: f"{name}={value}", _NAME, st.text(max_size=8)))
_LIMITS = st.dictionaries(st.sampled_from(LIMIT_NAMES), st.integers(1, MAX_INT - 1)).map(lambda values: Limits(**values))
_OPTIONS = st.builds(
    FrontEndOptions,
    include_dirs=st.lists(_PATH, max_size=3).map(tuple),
    defines=st.lists(_DEFINE, max_size=3).map(tuple),
    undefines=st.lists(_NAME, max_size=3).map(tuple),
    configs=st.dictionaries(_NAME.map(lambda name: "CONFIG_" + name), st.booleans(), max_size=3),
    cpp=st.one_of(st.none(), _PATH),
    use_shims=st.booleans(),
    limits=_LIMITS,
    kernel_tree=st.one_of(st.none(), _PATH),
    kernel_build=st.one_of(st.none(), _PATH))


@given(_OPTIONS)
def test_reading_back_what_was_written_gives_the_same_options(options):
    recorded = json.loads(json.dumps(front_end_json(options)))
    assert front_end_options(recorded, cpp=options.cpp) == options


@given(_OPTIONS, st.one_of(st.none(), _PATH))
def test_the_reader_preprocesses_with_its_own_cpp(options, cpp):
    assert front_end_options(front_end_json(options), cpp=cpp).cpp == cpp
