"""``tdxproof check`` over several kernel trees at once: one program per
file group (the nearest ancestor holding ``arch/x86``, else the file's own
directory), each with its own era and its own ``tdxproof.toml`` options;
results in input order; counterexample files that record their own group's
options and replay."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from grammar.frontend import FrontEndOptions, group_files, load_program
from grammar.source import SourceError
from model.native import native_available
from proofs.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
UNIFIED_HOST = FIXTURES / "unified/arch/x86/virt/vmx/tdx/seamcall.S"
LEGACY_HOST = FIXTURES / "legacy/arch/x86/virt/vmx/tdx/seamcall.S"
OLDEST_GUEST = FIXTURES / "legacy-oldest/arch/x86/coco/tdx/tdcall.S"
QUICK = ["--property", "callee-saved"]

FUNCTION = """\
#include <linux/linkage.h>
SYM_FUNC_START(bad)
\tmovq $VALUE, %r12
\tRET
SYM_FUNC_END(bad)
"""


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_two_kernel_trees_are_two_programs_in_input_order(capsys):
    # Both trees define __seamcall: one program would be a duplicate definition.
    assert main(["check", str(UNIFIED_HOST), str(LEGACY_HOST), *QUICK, "--json", "-"]) == 0
    rows = [(r["function"], r["abi"]) for r in _json(capsys)["results"]]
    assert rows == [("__seamcall", "unified"), ("__seamcall_ret", "unified"),
                    ("__seamcall_saved_ret", "unified"), ("__seamcall", "legacy")]
    assert main(["check", str(LEGACY_HOST), str(UNIFIED_HOST), *QUICK, "--json", "-",
                 "--function", "__seamcall"]) == 0
    results = _json(capsys)["results"]
    assert [(r["function"], r["abi"], r["file"]) for r in results] == [
        ("__seamcall", "legacy", str(LEGACY_HOST)), ("__seamcall", "unified", str(UNIFIED_HOST))]


def test_the_text_table_names_the_file_of_a_function_two_trees_define(capsys):
    assert main(["check", str(UNIFIED_HOST), str(LEGACY_HOST), *QUICK]) == 0
    table = capsys.readouterr().out.split("\n\n", 1)[0]
    rows = [line.split("[")[0].strip() for line in table.replace("\n  ", "").splitlines()[2:]]   # wrapped labels joined
    assert rows == [f"{UNIFIED_HOST}:__seamcall", "__seamcall_ret", "__seamcall_saved_ret",
                    f"{LEGACY_HOST}:__seamcall"]


def test_files_of_one_tree_or_directory_are_one_program(tmp_path, capsys):
    groups = group_files([str(FIXTURES / "unified/arch/x86/coco/tdx/tdcall.S"), str(LEGACY_HOST),
                          str(UNIFIED_HOST)], FrontEndOptions())
    assert [(Path(g.root).name, len(g.files)) for g in groups] == [("unified", 2), ("legacy", 1)]
    for name in ("one.S", "two.S"):
        (tmp_path / name).write_text(FUNCTION)
    assert main(["check", str(tmp_path / "one.S"), str(tmp_path / "two.S"), "-DVALUE=1"]) == 2
    assert "defined in more than one input file" in capsys.readouterr().err


def test_a_function_is_checked_where_it_is_defined(capsys):
    assert main(["check", str(UNIFIED_HOST), str(LEGACY_HOST), *QUICK, "--json", "-",
                 "--function", "__seamcall_ret"]) == 0
    assert [r["function"] for r in _json(capsys)["results"]] == ["__seamcall_ret"]
    assert main(["check", str(UNIFIED_HOST), str(LEGACY_HOST), *QUICK, "--function", "nosuch"]) == 2
    assert "no function named 'nosuch'" in capsys.readouterr().err


def test_the_oldest_tree_brings_its_own_include_directory(capsys):
    # Its tdxproof.toml names arch/x86/include (its own asm-offsets.h); the
    # same check with that -I given by hand must say the same.
    own = FIXTURES / "legacy-oldest/arch/x86/include"
    [group] = group_files([str(OLDEST_GUEST)], FrontEndOptions(include_dirs=("extra",)))
    assert group.options.include_dirs == (str(own), "extra")
    base = ["check", str(OLDEST_GUEST), "--function", "__tdx_hypercall", "--json", "-"]
    assert main(base) == 0
    by_toml = _json(capsys)["results"]
    assert main(base + ["-I", str(own)]) == 0
    assert _json(capsys)["results"][0]["obligations"] == by_toml[0]["obligations"]
    # Without the tree's asm-offsets.h the shims choose the same six-register
    # layout (grammar.shim_layout): the tree's file is no longer needed.
    without = load_program([str(OLDEST_GUEST)], FrontEndOptions())
    assert without.function("__tdx_hypercall").instructions == \
        load_program([str(OLDEST_GUEST)], group.options).function("__tdx_hypercall").instructions


def _tree(root: Path, toml: str | None) -> Path:
    """A kernel-like tree at ``root`` with one file under arch/x86."""
    source = root / "arch/x86/coco/bad.S"
    source.parent.mkdir(parents=True)
    source.write_text(FUNCTION)
    (root / "arch/x86/include").mkdir()
    if toml is not None:
        (root / "tdxproof.toml").write_text(toml)
    return source


@pytest.mark.parametrize("toml, line, fragment", [
    ('include_dirs = ["arch/x86/include"]\nincludes = ["x"]\n', 2, "unknown key 'includes'"),
    ('include_dirs = "arch/x86/include"\n', 1, "'include_dirs' must be a list of non-empty strings"),
    ('\ndefines = ["1BAD"]\n', 2, "bad define '1BAD'"),
    ('include_dirs = ["no/such/dir"]\n', 1, "include directory 'no/such/dir' is not a directory"),
    ('include_dirs = [\n"a",\n', 1, "not valid TOML: unclosed array"),
    ('[defines]\nVALUE = 1\n', 1, "'defines' must be a list"),
])
def test_a_bad_tree_configuration_is_a_located_error(tmp_path, capsys, toml, line, fragment):
    source = _tree(tmp_path / "tree", toml)
    assert main(["check", str(source), *QUICK]) == 2
    message = capsys.readouterr().err.rstrip("\n")
    assert "\n" not in message and "Traceback" not in message
    assert fragment in message and f"tdxproof.toml:{line}:" in message


@pytest.mark.skipif(native_available() is not None, reason=str(native_available()))
def test_counterexamples_of_each_tree_keep_their_own_options_and_replay(tmp_path, capsys):
    first = _tree(tmp_path / "first", 'defines = ["VALUE=5"]\ninclude_dirs = ["arch/x86/include"]\n')
    second = _tree(tmp_path / "second", 'defines = ["VALUE=7"]\n')
    cex_dir = tmp_path / "cex"
    assert main(["check", str(first), str(second), *QUICK, "--cex-dir", str(cex_dir)]) == 1
    capsys.readouterr()
    written = sorted(cex_dir.iterdir())
    assert [path.name for path in written] == ["bad-default-callee-saved-r12-2.json",
                                               "bad-default-callee-saved-r12.json"]
    second_cex, first_cex = (json.loads(path.read_text()) for path in written)
    assert first_cex["actual"] == "0x5" and second_cex["actual"] == "0x7"
    assert first_cex["front_end"]["defines"] == ["VALUE=5"]
    assert first_cex["front_end"]["include_dirs"] == [str(tmp_path / "first/arch/x86/include")]
    assert second_cex["front_end"]["defines"] == ["VALUE=7"]
    assert second_cex["front_end"]["include_dirs"] == []
    for path in written:
        assert main(["replay", str(path)]) == 0, capsys.readouterr().out


def test_tree_options_come_before_the_command_line(tmp_path):
    source = _tree(tmp_path / "tree", 'defines = ["VALUE=5"]\n')
    [group] = group_files([str(source)], FrontEndOptions(defines=("VALUE=9",)))
    assert group.options.defines == ("VALUE=5", "VALUE=9")
    program = load_program(list(group.files), group.options)
    assert "$0x9" in str(program.function("bad").instructions[0])     # the command line wins
    with pytest.raises(SourceError, match="no input files"):
        group_files([], FrontEndOptions())


def test_preprocessing_ahead_gives_the_same_programs_and_first_error(tmp_path):
    from grammar.frontend import Preprocessing, load_preprocessed
    good = [str(FIXTURES / "unified/arch/x86/coco/tdx/tdcall.S")]
    (tmp_path / "a.S").write_text(".globl a\na:\n\tmov %rax\n")            # an error of the GNU-as layer
    (tmp_path / "b.S").write_text('#include "missing.h"\n')                 # a preprocessor error, later
    bad = [str(tmp_path / "a.S"), str(tmp_path / "b.S")]
    requests = [(good, FrontEndOptions(configs={"CONFIG_FRAME_POINTER": on})) for on in (True, False)]
    requests.append((bad, FrontEndOptions(use_shims=False)))
    done = Preprocessing(requests[:1]).results(requests)      # one request started ahead, the rest on demand
    for (paths, options), files in zip(requests[:2], done):
        assert load_preprocessed(paths, options, files) == load_program(paths, options)
    with pytest.raises(SourceError) as ahead:
        load_preprocessed(bad, requests[2][1], done[2])
    with pytest.raises(SourceError) as directly:
        load_program(bad, requests[2][1])
    assert ahead.value.render() == directly.value.render() and "a.S:3" in ahead.value.render()


def test_a_task_that_crashes_or_dies_is_an_internal_error_naming_it(monkeypatch):
    import os
    import signal

    import proofs.prover as prover
    from proofs.settings import Settings
    args = ([str(UNIFIED_HOST)], FrontEndOptions(), [{}], ["__seamcall"],
            Settings(properties=("callee-saved",)))

    def crash(*_):
        raise ValueError("boom")
    monkeypatch.setattr(prover, "check_function", crash)
    with pytest.raises(RuntimeError, match=r"(?s)checking __seamcall \[default\] failed:.*ValueError: boom"):
        prover.check_groups(*args, jobs=2)
    monkeypatch.setattr(prover, "check_function", lambda *_: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(RuntimeError, match=r"process checking __seamcall \[default\] ended without a result"):
        prover.check_groups(*args, jobs=1)


def test_a_tree_that_does_not_parse_does_not_stop_the_others(tmp_path, capsys):
    bad_tree = tmp_path / "bad"
    (bad_tree / "arch/x86/coco/tdx").mkdir(parents=True)
    bad = bad_tree / "arch/x86/coco/tdx/tdcall.S"
    bad.write_text("#include <linux/linkage.h>\nSYM_FUNC_START(__tdcall)\n\tmovq %rdi\n\tRET\nSYM_FUNC_END(__tdcall)\n")
    good = FIXTURES / "unified/arch/x86/coco/tdx/tdcall.S"
    report = tmp_path / "report.json"
    status = main(["check", str(bad), str(good), "--function", "__tdcall", "--property", "callee-saved",
                   "--json", str(report), "--jobs", "1"])
    captured = capsys.readouterr()
    assert status == 2                                        # the worst of the groups: bad input
    assert captured.err == f"{bad}:3:2: error: 'movq' takes 2 operand(s), got 1\n"
    assert "__tdcall [default]" in captured.out and f"NOT CHECKED (bad input, see the error on stderr): {bad}" \
        in captured.out
    data = json.loads(report.read_text())
    assert [r["file"] for r in data["results"]] == [str(good)]
    assert data["results"][0]["obligations"][0]["status"] == "proved"
    assert data["errors"] == [{"files": [str(bad)], "message": "'movq' takes 2 operand(s), got 1",
                               "location": f"{bad}:3:2"}]


def test_many_files_and_configurations_at_once(capsys):
    # More preprocessor runs than run at once (grammar.frontend.PREPROCESSOR_RUNS):
    # every queued run must be waited for, not cancelled.
    from grammar.frontend import PREPROCESSOR_RUNS
    files = sorted(str(path) for path in FIXTURES.glob("*/arch/x86/**/*.S") if path.name != "tdxcall.S"
                   and not path.is_relative_to(FIXTURES / "vendor-saved"))    # needs a -D of its own
    assert len(files) * 4 > PREPROCESSOR_RUNS
    status = main(["check", *files, "--matrix", "CONFIG_FRAME_POINTER", "--matrix", "CONFIG_RETHUNK",
                   "--property", "stack-balance", "--jobs", "2"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == ""
    table = captured.out.split("\n\n", 1)[0].splitlines()[2:]
    functions = [line for line in table if not line.startswith(" ")]        # a heading, its configurations under it
    rows = [line for line in table if line.startswith("  [CONFIG_FRAME_POINTER=")]
    assert len(rows) == 4 * len(functions) and len(functions) >= len(files)
