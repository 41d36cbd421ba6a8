"""What ``tdxproof replay`` trusts in a counterexample file: nothing it has not checked.

A real counterexample (``check --cex-dir`` on a small wrapper that
includes a header of its own) is tampered with: the preprocessor it
records is never run (``replay --cpp`` is); every schema violation is
exit 2 naming the JSON path; a source changed since is a warning and a
flagged verdict, a missing one exit 2; a huge or deeply nested file is
refused at once.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from model.native import native_available
from proofs.cex_file import file_digest
from proofs.cli import main

pytestmark = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

ROOT = Path(__file__).resolve().parent.parent
SOURCE = """\
#include <linux/linkage.h>
#include "value.h"
SYM_FUNC_START(bad)
\tmovq $VALUE, %r12
\tRET
SYM_FUNC_END(bad)
"""
HEADER = "#ifndef VALUE\n#define VALUE 1\n#endif\n"
CHANGED = "sources changed since the counterexample was written"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A tree (a.S, inc/value.h) and the counterexample check wrote for it."""
    tree = tmp_path_factory.mktemp("tree")
    (tree / "inc").mkdir()
    (tree / "inc" / "value.h").write_text(HEADER)
    (tree / "a.S").write_text(SOURCE)
    assert main(["check", str(tree / "a.S"), "-I", str(tree / "inc"), "--property", "callee-saved",
                 "--cex-dir", str(tree / "cex")]) == 1
    return tree


@pytest.fixture
def tree(written, tmp_path) -> Path:
    """A copy of the written tree of this test's own, the counterexample's
    paths moved with it (cex.json)."""
    copy = tmp_path / "tree"
    shutil.copytree(written, copy)
    [cex] = (copy / "cex").glob("*.json")
    (copy / "cex.json").write_text(cex.read_text().replace(str(written), str(copy)))
    return copy


def _cex(tree: Path) -> dict:
    return json.loads((tree / "cex.json").read_text())


def _write(tree: Path, cex: dict) -> str:
    path = tree / "tampered.json"
    path.write_text(json.dumps(cex))
    return str(path)


def _replay(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["replay", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_digests_cover_the_inputs_and_every_header_read(tree):
    """value.h only defines a macro: it yields no line, only line markers."""
    digests = _cex(tree)["digests"]
    for name in (tree / "a.S", tree / "inc" / "value.h", ROOT / "grammar" / "shims" / "linux" / "linkage.h"):
        assert digests[str(name)] == file_digest(str(name))


# --- no command from the file --------------------------------------------------------------

def test_the_recorded_preprocessor_is_never_run(tree, capsys):
    marker = tree / "pwned"
    cex = _cex(tree)
    cex["front_end"]["cpp"] = f"sh -c 'touch {marker}' sh"
    status, out, _ = _replay(capsys, _write(tree, cex))
    assert status == 0 and out.rstrip().endswith("REPRODUCED"), out
    assert not marker.exists()
    assert out.startswith(f"note: the counterexample records the C preprocessor \"sh -c 'touch {marker}' sh\"")


def test_replay_runs_its_own_cpp(tree, capsys):
    marker = tree / "ran"
    status, out, _ = _replay(capsys, str(tree / "cex.json"), "--cpp",
                             f"sh -c 'touch {marker}; exec cc -E \"$@\"' sh")
    assert status == 0 and marker.exists(), out


# --- changed and missing sources -------------------------------------------------------------

def test_a_changed_header_is_named_and_the_verdict_flagged(tree, capsys):
    (tree / "inc" / "value.h").write_text(HEADER + "/* reviewed */\n")
    status, out, _ = _replay(capsys, str(tree / "cex.json"))
    assert status == 0
    assert out.splitlines()[0] == f"warning: {tree / 'inc' / 'value.h'} changed since the counterexample was written"
    assert out.rstrip().endswith(f"REPRODUCED ({CHANGED})")


def test_a_fixed_source_does_not_reproduce_and_says_why_it_may(tree, capsys):
    (tree / "a.S").write_text(SOURCE.replace("%r12", "%rax"))
    status, out, _ = _replay(capsys, str(tree / "cex.json"))
    assert status == 1
    assert out.splitlines()[0] == f"warning: {tree / 'a.S'} changed since the counterexample was written"
    assert "NOT REPRODUCED" in out and out.rstrip().endswith(f"({CHANGED})")


def test_a_deleted_header_is_exit_2(tree, capsys):
    (tree / "inc" / "value.h").unlink()
    status, _, err = _replay(capsys, str(tree / "cex.json"))
    assert status == 2
    assert f"the source {tree / 'inc' / 'value.h'} it was written from cannot be read: No such file" in err


def test_a_source_replaced_by_a_fifo_is_exit_2_not_a_hang(tree, capsys):
    (tree / "a.S").unlink()
    os.mkfifo(tree / "a.S")
    status, _, err = _replay(capsys, str(tree / "cex.json"))
    assert status == 2 and f"the source {tree / 'a.S'} is not a regular file" in err


# --- the schema ------------------------------------------------------------------------------

def _set(path: str, value):
    """A mutation: set the value at a dotted path (``tdx.0.status``)."""
    def mutate(cex: dict) -> None:
        *parents, last = path.split(".")
        node = cex
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


_DELETE = object()
EVENT = {"kind": "seamcall", "index": 0, "outcome": "completion", "source": {
    "file": "a.S", "line": 4, "column": 2, "expansion": []}, "registers": {}, "status": "0x0"}


@pytest.mark.parametrize("mutate, message", [
    (_set("entry.registers.rsi", 12.5), "entry.registers.rsi: expected a 64-bit hex string, got 12.5"),
    (_set("entry.registers.rsi", "0x10000000000000000"), "entry.registers.rsi: expected a 64-bit hex string"),
    (_set("entry.registers.rsi", 5), "entry.registers.rsi: expected a 64-bit hex string, got 5"),
    (_set("entry.registers.rax", _DELETE), "entry.registers: missing key 'rax'"),
    (_set("entry.registers.xmm0", "0x0"), "entry.registers.xmm0: unknown key"),
    (_set("entry.flags.cf", "1"), 'entry.flags.cf: expected a flag (0, 1 or null), got "1"'),
    (_set("entry.flags.df", True), "entry.flags.df: expected a flag (0, 1 or null), got true"),
    (_set("entry.flags.df", 2), "entry.flags.df: expected a flag (0, 1 or null), got 2"),
    (_set("entry", []), "entry: expected an object, got a list"),
    (_set("memory", []), "memory: expected an object, got a list"),
    (_set("memory", {"0x1000": "0x100"}), "memory.0x1000: expected a byte (a hex string 0x0..0xff)"),
    (_set("memory", {"4096": "0x1"}), 'memory: key "4096": expected a 64-bit hex string'),
    (_set("tdx", {}), "tdx: expected a list, got an object"),
    (_set("tdx", [dict(EVENT, registers=None)]), "tdx[0].registers: expected an object, got null"),
    (_set("tdx", [{k: v for k, v in EVENT.items() if k != "registers"}]), "tdx[0]: missing key 'registers'"),
    (_set("tdx", [dict(EVENT, status=None)]), "tdx[0].status: a completion needs the status"),
    (_set("tdx", [dict(EVENT, outcome="crash")]), 'tdx[0].outcome: expected one of "completion"'),
    (_set("tdx", [dict(EVENT, kind="vmcall")]), 'tdx[0].kind: expected one of "seamcall", "tdcall"'),
    (_set("tdx", [dict(EVENT, registers={"rsi": "rsi"})]), 'tdx[0].registers.rsi: expected a 64-bit hex'),
    (_set("property", "scrub"), "missing key 'varied_tdx'"),
    (_set("property", "callee_saved"), 'property: expected one of "callee-saved"'),
    (_set("end", "exploded"), 'end: expected one of "returned"'),
    (_set("confirmed", "yes"), 'confirmed: expected true or false, got "yes"'),
    (_set("function", "bad\n.section .init_array"), "function: expected an assembler symbol name"),
    (_set("files", []), "files: a list of 0 items (expected 1 to 4096)"),
    (_set("files", ["-fplugin=evil.so"]), "files[0]: \"-fplugin=evil.so\" starts with '-'"),
    (_set("front_end.include_dirs", ["-I-"]), "front_end.include_dirs[0]: \"-I-\" starts with '-'"),
    (_set("front_end.include_dirs", [""]), 'front_end.include_dirs[0]: expected an include directory, got ""'),
    (_set("front_end.defines", ["-fplugin=evil.so"]), "front_end.defines[0]: expected a define"),
    (_set("front_end.defines", [""]), "front_end.defines[0]: expected a define"),
    (_set("front_end.undefines", ["X=1"]), "front_end.undefines[0]: expected a macro name"),
    (_set("front_end.configs", {"FRAME_POINTER": True}), 'front_end.configs: key "FRAME_POINTER": expected a'),
    (_set("front_end.configs", {"CONFIG_X": "y"}), 'front_end.configs.CONFIG_X: expected true or false'),
    (_set("front_end.cpp", ["sh"]), "front_end.cpp: expected a string, got a list"),
    (_set("front_end", _DELETE), "missing key 'front_end'"),
    (_set("digests", {}), "files[0]: {tree}/a.S has no digest in digests"),
    (_set("digests", {"a.S": "md5:0"}), 'digests.a.S: expected a digest'),
    (_set("frobnicate", 1), "frobnicate: unknown key (known: property, detail"),
    (_set("kind", "check"), 'kind: expected one of "equiv"'),
])
def test_every_violation_is_exit_2_naming_its_json_path(tree, capsys, mutate, message):
    cex = _cex(tree)
    mutate(cex)
    path = _write(tree, cex)
    status, out, err = _replay(capsys, path)
    assert status == 2 and not out, out
    assert err.startswith(f"tdxproof: error: {path}: {message.format(tree=tree)}"), err


def test_the_schema_accepts_what_the_tool_writes_with_a_null_flag(tree, capsys):
    cex = _cex(tree)
    cex["entry"]["flags"]["af"] = None
    assert _replay(capsys, _write(tree, cex))[0] == 0


@pytest.mark.parametrize("text, message", [
    ("", "it is empty"),
    ("\n\t ", "it is empty"),
    ('{"a": 1, "a": 2}', "the key \"a\" appears twice in one object"),
    ('{"entry": {"registers": {"rsi": NaN}}}', "NaN is not a number a counterexample holds"),
    ("[" * 10000 + "]" * 10000, "nested too deeply"),
    ('{"memory": ' + "[" * 500 + "]" * 500 + "}", "memory: expected an object, got a list"),
    ("1" * 5000, "a number of more digits than Python converts"),
    ('"a counterexample"', 'expected a JSON object, got "a counterexample"'),
    ('{"tool": "tdxproof", "results": []}', "not a counterexample file but a check --json report"),
])
def test_unreadable_json_is_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    status, _, err = _replay(capsys, str(path))
    assert status == 2 and message in err, err


def test_binary_and_non_utf8_files_are_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"property": "\xff"}')
    status, _, err = _replay(capsys, str(path))
    assert status == 2 and "not UTF-8 text (byte 0xff at offset 14)" in err


def test_a_huge_file_is_refused_without_reading_it(tmp_path, capsys):
    path = tmp_path / "huge.json"
    with open(path, "wb") as stream:
        stream.truncate(100 * 2**20)
    start = time.monotonic()
    status, _, err = _replay(capsys, str(path))
    assert status == 2 and "more than the 16 MiB a counterexample file may have" in err
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "cannot read {}: a directory"),
    (lambda p: os.mkfifo(p), "cannot read {}: not a regular file"),
])
def test_not_a_regular_file_is_exit_2(tmp_path, capsys, make, message):
    path = tmp_path / "cex.json"
    make(path)
    status, _, err = _replay(capsys, str(path))
    assert status == 2 and message.format(path) in err


def test_a_property_that_needs_a_contract_needs_one_named(tree, capsys):
    cex = _cex(tree)
    cex["property"] = "r10-to-rax"
    status, _, err = _replay(capsys, _write(tree, cex))
    assert status == 2 and "r10-to-rax is judged by a wrapper contract, and the counterexample names none" in err


def test_a_function_the_sources_lack_is_refused_before_assembling(tree, capsys):
    cex = _cex(tree)
    cex["function"] = "good"
    status, _, err = _replay(capsys, _write(tree, cex))
    assert status == 2 and f"no function named 'good' in {tree / 'a.S'} (functions: bad)" in err


# --- equiv files -------------------------------------------------------------------------------

def test_an_equiv_file_records_its_structs_and_never_reads_its_spec(tmp_path, capsys, monkeypatch):
    """The struct pointers come from the file; ``spec`` (even an
    unbalanced quote) is information."""
    monkeypatch.chdir(ROOT)
    assert main(["equiv", "examples/module_call/reads_all_gprs.toml", "--cex-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    [path] = tmp_path.glob("*.json")
    cex = json.loads(path.read_text())
    assert cex["structs"] == [{"side": "left", "name": "out", "register": "r9", "size": 48},
                              {"side": "right", "name": "args", "register": "rsi", "size": 104}]
    assert "tests/fixtures/legacy/arch/x86/coco/tdx/tdcall.S" in cex["left"]["digests"]
    assert "tests/fixtures/unified/arch/x86/virt/vmx/tdx/tdxcall.S" in cex["right"]["digests"]
    cex["spec"] = "tdxproof equiv 'unbalanced"
    path.write_text(json.dumps(cex))
    status, out, _ = _replay(capsys, str(path))
    assert status == 0 and out.rstrip().endswith("REPRODUCED"), out
    cex["structs"][0]["register"] = "xmm0"
    path.write_text(json.dumps(cex))
    status, _, err = _replay(capsys, str(path))
    assert status == 2 and 'structs[0].register: expected one of "rax"' in err
