"""Fuzz ``tdxproof replay`` with random and mutated counterexample files.

Real files the tool writes (a ``check`` counterexample with TDX events,
memory and a contract; an ``equiv`` one) are mutated -- a value replaced by
random JSON or by another valid value, a key dropped or added, a node
wrapped in more nesting, the text cut or spliced -- and replayed.  Whatever
the file, the exit status is 0, 1 or 2 (never a traceback, never an
internal error) within a bound per case.

The suite runs a fixed, small set of examples (``derandomize``);
``TDXPROOF_FUZZ_EXAMPLES=N`` runs N random ones per test instead.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grammar.ast import GPR64
from model.native import native_available
from model.tdx import Outcome
from cli_runner import run_in_process
from proofs.cli import main

pytestmark = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "tests" / "fixtures" / "broken"
CHECKS = {"scrub": ("missing_scrub.S", "scrub"), "fault": ("wrong_fault_constant.S", "fault-codes")}
"""Bases for ``check`` files: a relational property with completions, a fault path."""
CASE_SECONDS = 20
"""The most one replay may take (a native run is a fraction of a second)."""
EXAMPLES = int(os.environ.get("TDXPROOF_FUZZ_EXAMPLES", "0"))


def _settings(examples: int):
    return settings(max_examples=EXAMPLES or examples, derandomize=not EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, dict]:
    """Real files of each kind, parsed."""
    directory = tmp_path_factory.mktemp("fuzz")
    with contextlib.redirect_stdout(io.StringIO()):
        for name, (source, pid) in CHECKS.items():
            assert main(["check", str(BROKEN / source), "--function", "__seamcall_saved_ret", "--property", pid,
                         "--cex-dir", str(directory / name)]) == 1
        assert main(["equiv", str(ROOT / "examples" / "pop_swap" / "equiv.toml"),
                     "--cex-dir", str(directory / "equiv")]) == 1
    found = {name: json.loads(next((directory / name).glob("*.json")).read_text()) for name in [*CHECKS, "equiv"]}
    assert found["scrub"]["varied_tdx"] and found["fault"]["contract"], "bases that exercise events and contracts"
    return found


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("replayed") / "cex.json"


def _replay(path: Path) -> None:
    """Replay ``path``: a documented exit status, no traceback, in time."""
    status, _, err = run_in_process(["replay", str(path)], CASE_SECONDS)
    assert status in (0, 1, 2), f"exit {status}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    if status == 2:
        assert err.startswith("tdxproof: error: ") and "\n\n" not in err


# --- mutations ---------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12)
    | st.integers(0, 2**64 - 1).map(hex),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8)
VALID_LEAVES = (st.integers(0, 2**64 - 1).map(hex) | st.integers(0, 255).map(hex) | st.sampled_from([0, 1, None])
                | st.sampled_from([o.value for o in Outcome] + ["seamcall", "tdcall", "returned", "oops"]))


INFORMATION = {"path", "trace", "module", "source", "where", "also_differ"}
"""Keys whose contents replay only prints."""


def _nodes(value, path=()) -> list[tuple]:
    """Every path into ``value`` (keys and list indices), the root first."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, path + (index,))
    return found


def _parent(document, path: tuple):
    node = document
    for key in path[:-1]:
        node = node[key]
    return node


def _mutate(document, data) -> object:
    """``document`` with one random mutation (the root may be replaced)."""
    paths = _nodes(document)
    if data.draw(st.booleans()):
        # Half the time, a node replay acts on (not the path, trace or module report).
        paths = [p for p in paths if not INFORMATION.intersection(p)] or paths
    path = paths[data.draw(st.integers(0, len(paths) - 1))]
    action = data.draw(st.sampled_from(["json", "valid", "delete", "add", "wrap", "duplicate"]))
    if not path:
        return data.draw(JSON) if action == "json" else [document] if action == "wrap" else document
    parent, key = _parent(document, path), path[-1]
    if action == "json":
        parent[key] = data.draw(JSON)
    elif action == "valid":
        parent[key] = data.draw(VALID_LEAVES)
    elif action == "delete":
        del parent[key]
    elif action == "add" and isinstance(parent[key], dict):
        parent[key][data.draw(st.text(max_size=6))] = data.draw(JSON)
    elif action == "wrap":
        parent[key] = data.draw(st.sampled_from([[parent[key]], {"value": parent[key]}]))
    elif action == "duplicate" and isinstance(parent[key], list) and parent[key]:
        parent[key].append(copy.deepcopy(parent[key][0]))
    return document


@pytest.mark.parametrize("kind", [*CHECKS, "equiv"])
@_settings(8)
@given(data=st.data())
def test_mutated_counterexamples(bases, target, kind, data):
    document = copy.deepcopy(bases[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        document = _mutate(document, data)
    target.write_text(json.dumps(document))
    _replay(target)


@_settings(20)
@given(document=JSON)
def test_random_json(target, document):
    target.write_text(json.dumps(document))
    _replay(target)


@_settings(20)
@given(data=st.data())
def test_cut_and_spliced_text(bases, target, data):
    text = json.dumps(bases[data.draw(st.sampled_from([*CHECKS, "equiv"]))]).encode()
    cut = data.draw(st.integers(0, len(text)))
    splice = data.draw(st.binary(max_size=8) | st.sampled_from([b"[" * 5000, b'"', b"\\", b"NaN", b"\xff"]))
    target.write_bytes(text[:cut] + splice + text[cut + data.draw(st.integers(0, 16)):])
    _replay(target)


HEX64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 8, 2**64 - 8, 2**63, 0x7FFFFFFFF000])).map(hex)


def _events(data, events: list) -> None:
    for event in events:
        event["outcome"] = data.draw(st.sampled_from([o.value for o in Outcome]))
        event["status"] = data.draw(HEX64) if event["outcome"] == Outcome.COMPLETION.value else None
        event["registers"] = data.draw(st.dictionaries(st.sampled_from(sorted(GPR64)), HEX64, max_size=4))


def _valid_values(run: dict, data) -> None:
    """Random values of the right types in one run: registers, flags,
    memory, the module's behaviour."""
    registers = run["entry"]["registers"]
    for reg in data.draw(st.lists(st.sampled_from(sorted(registers)), max_size=4)):
        registers[reg] = data.draw(HEX64)
    for flag in data.draw(st.lists(st.sampled_from(sorted(run["entry"]["flags"])), max_size=3)):
        run["entry"]["flags"][flag] = data.draw(st.sampled_from([0, 1, None]))
    if data.draw(st.booleans()):
        run["memory"] = data.draw(st.dictionaries(HEX64, st.integers(0, 255).map(hex), max_size=6))
    for key in ("tdx", "varied_tdx"):
        if key in run and data.draw(st.booleans()):
            if data.draw(st.booleans()):
                run[key] = run[key][:data.draw(st.integers(0, len(run[key])))]
            _events(data, run[key])


@pytest.mark.parametrize("kind", [*CHECKS, "equiv"])
@_settings(5)
@given(data=st.data())
def test_valid_but_random_values(bases, target, kind, data):
    """Files the schema accepts, with values the solver never chose."""
    document = copy.deepcopy(bases[kind])
    for run in ([document["left"], document["right"]] if kind == "equiv" else [document]):
        _valid_values(run, data)
    target.write_text(json.dumps(document))
    _replay(target)
