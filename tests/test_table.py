"""``check``'s summary table: a column per group of properties, at most
100 columns wide whatever the labels (the longest of the fixtures, two
``--matrix`` options, labels no fixture has), a legend, and the three
reasons a cell has no verdict kept apart -- the property does not apply
(``n/a``), the function has no contract (``nc``), the property was not
selected (``-``); ``--columns properties`` for a column per property;
``--quiet`` for the findings alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES
from grammar.source import Origin
from proofs.catalog import CATALOG, GROUPS
from proofs.cli import main
from proofs.properties import PROPERTIES
from proofs.report import LEGEND, TABLE_WIDTH, summary_table
from proofs.results import FunctionResult, ObligationResult

UNIFIED_GUEST = FIXTURES / "unified/arch/x86/coco/tdx/tdcall.S"
NO_CONTRACT = """\
#include <linux/linkage.h>
#include <asm/frame.h>
SYM_FUNC_START(t)
\tFRAME_BEGIN
\tmovq %rdi, %rax
\ttdcall
\tFRAME_END
\tRET
SYM_FUNC_END(t)
"""
"""A function executing TDCALL that no contract is named after: checked
on the contract-free properties only."""


def table_of(out: str) -> list[str]:
    """The summary table of a text report (after the one-line findings):
    its lines up to the legend."""
    return next(block for block in out.split("\n\n") if "function [configuration]" in block).splitlines()


def cells(out: str) -> dict[str, dict[str, str]]:
    """Each row of the table (its label, wrapped parts joined, a
    configuration row prefixed by its function): heading -> mark."""
    lines = table_of(out)
    headings = lines[0].split()[2:]                  # after "function [configuration]"
    rows: dict[str, dict[str, str]] = {}
    function, label = "", ""
    for line in lines[2:]:
        words = line.split()
        if len(words) <= len(headings) or not all(w in LEGEND for w in words[-len(headings):]):
            label += line.strip() + " "              # a heading, or a label that wraps
            if not line.startswith(" "):
                function, label = line.strip(), ""
            continue
        label += " ".join(words[:-len(headings)])
        key = f"{function} {label}".strip() if label.startswith("[") else label
        rows[key] = dict(zip(headings, words[-len(headings):]))
        label = ""
    return rows


def test_every_property_is_in_exactly_one_group():
    grouped = [pid for group in GROUPS for pid in group.properties]
    assert sorted(grouped) == sorted(CATALOG), "a property of the catalog is in no group, or in two"
    assert len({group.name for group in GROUPS}) == len(GROUPS)


def test_a_group_needs_a_contract_for_all_its_properties_or_for_none():
    # Else a row without a contract would show the group's contract-free
    # verdict and hide the properties it could not check.
    for group in GROUPS:
        assert len({PROPERTIES[pid].needs_contract for pid in group.properties}) == 1, group.name


def test_not_applicable_no_contract_and_not_selected_are_three_marks(tmp_path, capsys):
    source = tmp_path / "t.S"
    source.write_text(NO_CONTRACT)
    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall", "--matrix", "CONFIG_FRAME_POINTER"]) == 0
    rows = cells(capsys.readouterr().out)
    on, off = rows["__tdcall [CONFIG_FRAME_POINTER=y]"], rows["__tdcall [CONFIG_FRAME_POINTER=n]"]
    assert on["unwind"] == "ok" and off["unwind"] == "n/a"             # frame-pointer needs the option on
    assert on["errors"] == off["errors"] == "n/a"                      # a guest wrapper has no failure codes
    assert on["ABI"] == "ok" and on["regs"] == "ok"

    assert main(["check", str(source)]) == 1         # TDCALL of an unknown leaf may change RBX, R12-R15
    out = capsys.readouterr().out
    row = cells(out)["t [default]"]
    assert row["ABI"] == row["errors"] == row["scrub"] == "nc"          # no contract: not checked
    assert row["regs"] == "FAIL" and row["control"] == row["stack"] == "ok"
    assert "WARNING: " in out

    assert main(["check", str(source), "--property", "stack-balance"]) == 0
    row = cells(capsys.readouterr().out)["t [default]"]
    assert row["stack"] == "ok"
    assert {row[group.name] for group in GROUPS if group.name != "stack"} == {"-"}


def test_the_legend_says_every_mark(capsys):
    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall"]) == 0
    out = capsys.readouterr().out
    legend = out.split("\n\n", 2)[1].splitlines()
    assert legend[0] == ", ".join(f"{mark} {meaning}" for mark, meaning in LEGEND.items())
    assert "--columns properties" in legend[1]
    assert [line.split()[0] for line in table_of(out)[:1]] == ["function"]
    assert table_of(out)[0].split()[2:] == [group.name for group in GROUPS]


def test_the_widest_fixture_run_fits_100_columns(tmp_path, capsys):
    # Every fixture tree at once, by absolute path (two trees define a
    # function: its rows are named with the file), under two --matrix
    # options: the longest labels the fixtures give.
    files = sorted(str(path) for path in FIXTURES.glob("*/arch/x86/**/*.S") if path.name != "tdxcall.S"
                   and not path.is_relative_to(FIXTURES / "vendor-saved"))    # needs a -D of its own
    status = main(["check", *files, "--matrix", "CONFIG_FRAME_POINTER", "--matrix", "CONFIG_RETHUNK",
                   "--property", "stack-balance", "--jobs", "2", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert status == 0
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    longest = max(len(r["file"]) + len(r["function"]) + len(r["config"]) for r in results)
    assert longest > 100 - 6 * len(GROUPS)                              # the test is about long labels
    assert all(len(line) <= TABLE_WIDTH for line in table_of(out))
    rows = cells(out)
    assert len(rows) == len(results) > 4 * len(files)                  # every row, each once
    assert {mark for row in rows.values() for mark in row.values()} <= {"ok", "-", "n/a", "nc"}


@pytest.mark.parametrize("broken", sorted((FIXTURES / "broken").glob("*.S")), ids=lambda p: p.stem)
def test_every_broken_fixture_table_fits_100_columns(broken, capsys):
    main(["check", str(broken), "--matrix", "CONFIG_FRAME_POINTER", "--property", "stack-balance"])
    assert all(len(line) <= TABLE_WIDTH for line in table_of(capsys.readouterr().out))


def _result(function: str, file: str, config: str) -> FunctionResult:
    return FunctionResult(function, config, "unified", function, Origin(file, 1),
                          [ObligationResult("callee-saved", "rbx", "refuted", 0.0)], [])


def test_labels_longer_than_any_fixture_wrap_and_lose_nothing():
    path = "/" + "/".join(f"directory{n}" for n in range(12)) + "/seamcall.S"
    config = ", ".join(f"CONFIG_OPTION_NUMBER_{n}=y" for n in range(4))
    function = "__seamcall_saved_ret_with_a_much_longer_name"
    results = [_result(function, path, config), _result(function, path.replace("seamcall.S", "other.S"), config)]
    for rows in (results, results[:1]):
        lines = summary_table(rows, CATALOG)
        assert all(len(line) <= TABLE_WIDTH for line in lines)
        text = "".join(line.strip() for line in lines).replace(" ", "")
        assert (f"{path}:{function}" if len(rows) == 2 else function) in text
        assert config.replace(" ", "") in text
        table = lines[:lines.index("")]                                  # the legend follows
        assert sum(1 for line in table if "FAIL" in line) == len(rows)    # each row's cells on one line


def test_columns_properties_has_a_column_per_selected_property(capsys):
    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall", "--columns", "properties",
                 "--matrix", "CONFIG_FRAME_POINTER"]) == 0
    table = table_of(capsys.readouterr().out)
    columns = [pid for group in GROUPS for pid in group.properties]
    heading = table[:next(n for n, line in enumerate(table) if line.startswith("---"))]
    assert heading[-1].split()[-1] == "scrub" and any("r10-" in line.split() for line in heading)
    on = dict(zip(columns, next(line for line in table if "[CONFIG_FRAME_POINTER=y]" in line).split()[1:]))
    off = dict(zip(columns, next(line for line in table if "[CONFIG_FRAME_POINTER=n]" in line).split()[1:]))
    assert len(on) == len(off) == len(CATALOG)
    assert on["frame-pointer"] == "ok" and off["frame-pointer"] == "n/a"
    assert on["r10-to-rax"] == "n/a" and on["status-return"] == "ok"    # __tdcall returns the status

    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall_saved_ret", "--columns", "properties",
                 "--property", "scrub", "--property", "callee-saved"]) == 0
    table = table_of(capsys.readouterr().out)
    assert table[-3].split()[-2:] == ["saved", "scrub"]                 # callee-/saved, then scrub
    assert table[-1].split()[-2:] == ["ok", "ok"]


def test_quiet_prints_the_findings_alone_with_the_same_status(capsys):
    broken = FIXTURES / "broken/pop_order_swapped.S"
    full = main(["check", str(broken)])
    out = capsys.readouterr().out
    quiet = main(["check", str(broken), "--quiet"])
    captured = capsys.readouterr()
    assert quiet == full == 1
    assert captured.out == ("tests/fixtures/broken/pop_order_swapped.S:68:2: error: __seamcall_saved_ret: "
                            "callee-saved: R14, R15 modified on the completion path (value comes from the slot "
                            "`pushq %r15` wrote at line 21)\n"
                            "tests/fixtures/broken/pop_order_swapped.S:74:2: note: checked here\n"
                            "2 refuted obligations in 1 finding\n").replace("tests/", f"{FIXTURES.parent}/")
    assert out.startswith(captured.out)
    assert "Assumptions" not in captured.out and "REFUTED" not in captured.out

    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall", "--quiet"]) == 0
    assert capsys.readouterr().out == ""                               # no finding, nothing to say


def test_quiet_keeps_the_json_report(tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["check", str(UNIFIED_GUEST), "--function", "__tdcall", "--quiet", "--json", str(report)]) == 0
    assert capsys.readouterr().out == "" and '"results"' in report.read_text()
    assert Path(report).stat().st_size > 0
