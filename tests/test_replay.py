"""``tdxproof replay``: counterexamples the tool wrote, run on the CPU.

Every refuted row of the shared table over ``broken/`` gets its
counterexample from ``check --cex-dir`` and must reproduce natively (exit
0); a counterexample tampered so that the violation cannot happen must not
(exit 1); bad files and a missing native platform are exit 2.  An ``equiv``
counterexample (the pop-swap example) replays both sides.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from expectations import FIXTURES, frontend_options, rows
from model.native import native_available
from proofs.cli import main

pytestmark = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

ROOT = Path(__file__).resolve().parent.parent


def _broken_rows():
    """Refuted rows over broken/, without frame pointer, by fixture file."""
    grouped = defaultdict(list)
    for row in rows(tree="broken", expected="refuted"):
        if not row.configs.get("CONFIG_FRAME_POINTER"):
            grouped[(row.paths, row.function, row.abi)].append(row)
    return grouped


BROKEN = _broken_rows()


def _check_args(row) -> list[str]:
    options = frontend_options(row)
    args = [str(FIXTURES / path) for path in row.paths] + ["--function", row.function, "--abi", row.abi]
    args += [f"--config={name}={'y' if on else 'n'}" for name, on in sorted(options.configs.items())]
    return args + [f"-I{directory}" for directory in options.include_dirs]


@pytest.fixture(scope="module")
def counterexamples(tmp_path_factory):
    """(paths, function, abi) -> the directory of its counterexample files."""
    found = {}
    for key, group in BROKEN.items():
        directory = tmp_path_factory.mktemp(Path(key[0][0]).stem)
        properties = sorted({row.property for row in group})
        args = _check_args(group[0]) + [arg for pid in properties for arg in ("--property", pid)]
        assert main(["check", *args, "--cex-dir", str(directory)]) == 1
        found[key] = directory
    return found


def _files_for(directory: Path, row) -> list[Path]:
    files = []
    for path in sorted(directory.glob("*.json")):
        cex = json.loads(path.read_text())
        if cex["property"] == row.property and (row.detail is None or cex["detail"] == row.detail):
            files.append(path)
    return files


@pytest.mark.parametrize("row", [row for group in BROKEN.values() for row in group], ids=lambda row: row.id)
def test_broken_counterexample_reproduces(row, counterexamples, capsys):
    files = _files_for(counterexamples[(row.paths, row.function, row.abi)], row)
    assert files, f"check wrote no counterexample for {row.id}"
    for path in files:
        cex = json.loads(path.read_text())
        assert cex["front_end"]["configs"] == dict(row.configs)
        assert main(["replay", str(path)]) == 0, capsys.readouterr().out
        out = capsys.readouterr().out
        assert out.rstrip().endswith("REPRODUCED") and "NOT REPRODUCED" not in out
        assert "violated on the CPU" in out


def _one(counterexamples, name: str, prop: str, detail: str = "") -> dict:
    key = next(k for k in BROKEN if Path(k[0][0]).name == name)
    found = [json.loads(path.read_text()) for path in counterexamples[key].glob("*.json")]
    [cex] = [cex for cex in found if (cex["property"], cex["detail"]) == (prop, detail)]
    return cex


def test_tampered_entry_does_not_reproduce(counterexamples, tmp_path, capsys):
    """R12 already holds, at entry, the value the wrapper leaves in it: the
    scratch use of a callee-saved register cannot show."""
    cex = _one(counterexamples, "callee_saved_scratch.S", "callee-saved", "r12")
    assert cex["entry"]["registers"]["r12"] != cex["actual"]
    cex["entry"]["registers"]["r12"] = cex["actual"]
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(cex))
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "NOT REPRODUCED" in out


def test_tampered_outcome_does_not_reproduce(counterexamples, tmp_path, capsys):
    """The wrong VMfailInvalid constant is invisible when SEAMCALL completes."""
    cex = _one(counterexamples, "wrong_vmfailinvalid_constant.S", "vmfailinvalid-code")
    cex["tdx"] = [dict(event, outcome="completion", registers={}, status="0x0") for event in cex["tdx"]]
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(cex))
    assert main(["replay", str(path)]) == 1
    assert "NOT REPRODUCED" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got a list"),
    ('{"property": "callee-saved", "detail": "rbx"}', "missing keys 'config', 'firmware', 'contract'"),
    ('{"property": "no-such-property", "tdx": []}', 'property: expected one of "callee-saved"'),
])
def test_malformed_counterexample_is_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unsupported_platform_is_exit_2(counterexamples, tmp_path, monkeypatch, capsys):
    import model.native
    cex = _one(counterexamples, "callee_saved_scratch.S", "callee-saved", "r12")
    path = tmp_path / "cex.json"
    path.write_text(json.dumps(cex))
    monkeypatch.setattr(model.native, "native_available",
                        lambda: "native runs need x86-64 Linux, this is Plan9")
    assert main(["replay", str(path)]) == 2
    assert "Plan9" in capsys.readouterr().err


def test_equiv_counterexample_replays_both_sides(tmp_path, capsys):
    spec = ROOT / "examples" / "pop_swap" / "equiv.toml"
    if not spec.exists():
        pytest.skip("the pop-swap equiv example is not there")
    assert main(["equiv", str(spec), "--cex-dir", str(tmp_path)]) == 1
    capsys.readouterr()
    [path] = tmp_path.glob("*.json")
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "left: the CPU agrees" in out and "right: the CPU agrees" in out
    assert out.rstrip().endswith("REPRODUCED")


def test_a_write_below_rsp_that_also_clobbers_the_return_slot_reproduces(tmp_path, capsys):
    # The CPU then returns to the clobbered address and faults there; the
    # replay sees a return (to that address), as the model does, so the two
    # agree and the no-red-zone violation counts as reproduced.
    source = tmp_path / "f.S"
    source.write_text("#include <linux/linkage.h>\nSYM_FUNC_START(f)\n\tmovq %rdi, -8(%rsp)\n"
                      "\tmovq %rsi, (%rsp)\n\tret\nSYM_FUNC_END(f)\n")
    cex_dir = tmp_path / "cex"
    assert main(["check", str(source), "--property", "no-red-zone", "--property", "return-address",
                 "--cex-dir", str(cex_dir), "--jobs", "1"]) == 1
    capsys.readouterr()
    assert main(["replay", str(cex_dir / "f-default-no-red-zone.json")]) == 0
    out = capsys.readouterr().out
    assert "the CPU agrees with the model's prediction" in out and out.rstrip().endswith("REPRODUCED")
    assert main(["replay", str(cex_dir / "f-default-return-address.json")]) == 0
