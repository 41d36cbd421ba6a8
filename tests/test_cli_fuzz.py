"""Property-based fuzzing of the command line: whatever the arguments, the
tool answers with one of its documented exit statuses, in bounded time,
with no traceback.

Arguments are drawn from the real vocabulary of each command (its options,
plausible and implausible values: numbers, ``nan``, empty strings, option
look-alikes, paths that exist, do not exist or are not files) so that most
draws get past argparse and reach the code behind it.  The only source that
checks is a one-instruction function, so a draw that happens to be a valid
run stays quick.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cli_runner import run_in_process
from proofs.cli import EXIT_BAD_INPUT, EXIT_PROVED, EXIT_REFUTED, EXIT_UNKNOWN
from proofs.properties import CATALOG

DOCUMENTED = {EXIT_PROVED, EXIT_REFUTED, EXIT_BAD_INPUT, EXIT_UNKNOWN}
SOURCE = "#include <linux/linkage.h>\nSYM_FUNC_START(f)\n\tmovq %rdi, %rax\n\tRET\nSYM_FUNC_END(f)\n"
CASE_SECONDS = 60


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli-fuzz")
    (root / "f.S").write_text(SOURCE)
    (root / "empty.S").write_text("")
    (root / "c.toml").write_text("# no contracts\n")
    (root / "dir").mkdir()
    return root


def _junk(root: Path) -> st.SearchStrategy[str]:
    """Values no option wants."""
    paths = [str(root / name) for name in ("empty.S", "c.toml", "dir", "missing.S")]
    return st.one_of(
        st.sampled_from(paths + ["", "-", "--", "-1", "nan", "inf", "1e400", "=", "X=", "'unbalanced", "f=",
                                 "CONFIG_", "rsp", "left.rax == right.rbx"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12))


def _plausible(root: Path) -> dict[str, st.SearchStrategy[str]]:
    """Values each option takes (valid or nearly so)."""
    out = str(root / "out.json")
    return {
        "--function": st.sampled_from(["f", "g", "__seamcall"]),
        "--property": st.sampled_from(CATALOG),
        "--abi": st.sampled_from(["unified", "legacy"]),
        "--matrix": st.sampled_from(["CONFIG_FRAME_POINTER", "CONFIG_RETHUNK", "CONFIG_X86_KERNEL_IBT", "CONFIG_NOPE"]),
        "--config": st.sampled_from(["CONFIG_FRAME_POINTER=y", "CONFIG_RETHUNK=n", "CONFIG_X=y"]),
        "--firmware": st.sampled_from(["spec", "clobbers-rbp"]),
        "--timeout": st.sampled_from(["0.5", "5", "10", "1e-9"]),
        "--jobs": st.sampled_from(["1", "2", "3"]),
        "--json": st.sampled_from([out, "-"]),
        "--sarif": st.sampled_from([str(root / "out.sarif"), out]),
        "--cex-dir": st.just(str(root / "cex")),
        "--contracts": st.just(str(root / "c.toml")),
        "--variant": st.sampled_from(["f=flags", "f="]),
        "-I": st.sampled_from([str(root), str(root / "dir")]),
        "-D": st.sampled_from(["X", "X=1", "FRAME_OFFSET=8"]),
        "-U": st.sampled_from(["X", "CONFIG_FRAME_POINTER"]),
        "--cpp": st.sampled_from(["cc -E", "cpp", "gcc -E -P"]),
        "--same": st.sampled_from(["rdi", "rdi,rsi", "rsp"]),
        "--relate": st.sampled_from(["left.rdi == right.rdi", "left.rsi == right.rdx"]),
        "--struct": st.sampled_from(["left.args=rsi:tdx_module_args", "right.out=r9:tdx_module_output:nullable"]),
        "--observe-registers": st.sampled_from(["default", "all", "rax,rbx"]),
        "--observe-memory": st.sampled_from(["outside-frame", "none", "outside-frame-and-structs"]),
        "--module-reads": st.sampled_from(["tdcall=rax,rcx", "seamcall=rax"]),
        "--module-outputs": st.sampled_from(["tdcall=rax", "seamcall=rcx,rdx"]),
    }


_OPTIONS = {
    "check": ["--function", "--property", "--abi", "--matrix", "--config", "--firmware", "--timeout", "--jobs",
              "--json", "--sarif", "--cex-dir", "--contracts", "--variant", "-I", "-D", "-U", "--cpp",
              "--no-shims", "--tdcall-may-fault"],
    "parse": ["--json", "-I", "-D", "-U", "--config", "--no-shims", "--cpp"],
    "ir": ["--function", "-I", "-D", "--config"],
    "replay": ["--cpp"],
    "equiv": ["--config", "--firmware", "--timeout", "--json", "--same", "--relate", "--struct",
              "--observe-registers", "--observe-memory", "--module-reads", "--module-outputs"],
}
_FLAGS = {"--no-shims", "--tdcall-may-fault", "--json"}


@st.composite
def command_lines(draw, root: Path) -> list[str]:
    """One command line: mostly plausible option values, some junk."""
    command = draw(st.sampled_from(sorted(_OPTIONS)))
    plausible, junk = _plausible(root), _junk(root)
    argv = [command]
    for _ in range(draw(st.integers(0, 4))):
        option = draw(st.sampled_from(_OPTIONS[command]))
        if option in _FLAGS and (option != "--json" or command == "parse"):
            argv.append(option)
        else:
            argv += [option, draw(plausible[option] if draw(st.integers(0, 3)) else junk)]
    good = str(root / "f.S")
    if command == "equiv":
        positional = [f"{good}:f", f"{good}:{draw(st.sampled_from(['f', 'g']))}"] if draw(st.booleans()) \
            else draw(st.lists(junk, max_size=2))
    elif command == "replay":
        positional = [draw(st.sampled_from([str(root / "c.toml"), good, str(root / "dir")]) | junk)]
    else:
        positional = [good] if draw(st.integers(0, 3)) else draw(st.lists(junk, max_size=2))
    if command == "check" and "--jobs" not in argv:
        argv += ["--jobs", "1"]
    return argv + positional


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_command_line_gets_a_documented_answer(workdir, data):
    argv = data.draw(command_lines(workdir))
    here = os.getcwd()
    os.chdir(workdir)           # a junk relative output path lands here, not in the checkout
    try:
        status, _, stderr = run_in_process(argv, CASE_SECONDS)
    finally:
        os.chdir(here)
    assert "Traceback" not in stderr, (argv, stderr)
    assert status in DOCUMENTED, (argv, status, stderr)
    if status == EXIT_BAD_INPUT:
        assert stderr.strip() and "\n\n" not in stderr.strip(), (argv, stderr)
