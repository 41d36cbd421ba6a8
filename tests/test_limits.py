"""The front end's limits, its refusal of inputs that are not regular files,
and its function boundaries, against GNU as and the real processes.

Each runaway input must end in a limit error within a time bound and with
bounded memory (measured on the real ``tdxproof`` process, its
preprocessor included); each ``.size`` case is assembled by GNU as itself
(``cc -c``, as Kbuild runs it), and the front end must reject exactly the
ones GNU as rejects.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest

from grammar.compat import tomllib
from grammar.cpp import run_preprocessor
from grammar.frontend import FrontEndOptions, Preprocessing, load_program, options_key
from grammar.limits import LIMIT_NAMES, PROVER_LIMITS, Limits, limit_option, limits_from, option_name
from grammar.source import SourceError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "bad_inputs" / "corpus" / "limits.toml"
NO_SHIMS = FrontEndOptions(use_shims=False)


def test_every_limit_has_a_unit_a_default_and_an_option():
    defaults = Limits()
    for name in LIMIT_NAMES:
        assert isinstance(getattr(defaults, name), int) and getattr(defaults, name) > 0
        message = defaults.exceeded(name, "x", None).message
        assert message.endswith(f"(raise it with --limit {option_name(name)}=N)"), message
        assert limit_option(f"{option_name(name)}=7") == (name, 7)
    assert limits_from([("rept", 3)]) == replace(defaults, rept=3)
    assert defaults.configurations == 64 and 2 ** 20 > defaults.configurations


def test_every_front_end_limit_has_a_runaway_case_in_the_corpus():
    cases = tomllib.loads(CORPUS.read_text())["case"]
    named = {match for case in cases for match in re.findall(r"--limit ([a-z-]+)=N", case["message"])}
    named |= {item.split("=")[0] for case in cases for item in case["argv"] if re.fullmatch(r"[a-z-]+=\d+", item)}
    expected = {option_name(name) for name in LIMIT_NAMES if name not in PROVER_LIMITS}
    assert expected <= named, expected - named


def test_limits_are_part_of_the_options_key():
    assert options_key(FrontEndOptions()) != options_key(FrontEndOptions(limits=Limits(rept=5)))
    assert len(options_key(FrontEndOptions())) == len(fields(FrontEndOptions))


def write(tmp_path: Path, text: str, name: str = "a.S") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _run_measured(argv: list[str], cwd: Path, timeout: float) -> tuple[int, str, float, int]:
    """``tdxproof ARGV`` as a real process: (status, stderr, seconds, peak
    resident kilobytes of it and every process it waited for)."""
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "proofs.cli", *argv], cwd=cwd, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    try:
        stderr = process.stderr.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
    finally:
        timer.cancel()
        process.stderr.close()
        process.returncode = 0  # reaped above
    return os.waitstatus_to_exitcode(status), stderr, time.monotonic() - start, usage.ru_maxrss


TEN = "#define TEN(x) x x x x x x x x x x\n"
RUNAWAYS = {
    "rept": (".globl f\nf:\n.rept 100000000\n nop\n.endr\n ret\n", "--limit rept=N"),
    "nested-rept": (".globl f\nf:\n.rept 1000\n.rept 1000\n.rept 1000\n nop\n.endr\n.endr\n.endr\n",
                    "--limit statements=N"),
    "doubling-argument": (".macro D a, n\n.if \\n\nD \"\\a\\a\", \"\\n-1\"\n.endif\n.endm\nD x, 60\n",
                          "--limit statement-bytes=N"),
    "distinct-instructions": (".globl f\nf:\n.irp a,1,2,3,4,5,6,7,8,9\n.irp b,1,2,3,4,5,6,7,8,9\n"
                              ".irp c,1,2,3,4,5,6,7,8,9\n.irp d,1,2,3,4,5,6,7,8,9\n"
                              ".irp e,1,2,3,4,5,6,7,8,9\n addq $\\a\\b\\c\\d\\e, %rax\n"
                              ".endr\n.endr\n.endr\n.endr\n.endr\n", "--limit statements=N"),
    "cpp-output": (TEN + "#define PAD TEN(TEN(TEN(TEN(TEN(nop;)))))\n" + "PAD\n" * 40,
                   "--limit preprocessed-bytes=N"),
    "cpp-memory": (TEN + "#define MANY TEN(TEN(TEN(TEN(TEN(TEN(TEN(TEN(nop;))))))))\nMANY\n",
                   "--limit cpp-memory-bytes=N"),
}


@pytest.mark.parametrize("name", RUNAWAYS)
def test_a_runaway_input_ends_at_its_limit_in_bounded_time_and_memory(name, tmp_path):
    text, option = RUNAWAYS[name]
    write(tmp_path, text)
    status, stderr, seconds, peak_kb = _run_measured(["parse", "--no-shims", "a.S"], tmp_path, 60)
    assert status == 2 and option in stderr, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    assert seconds < 30, f"{seconds:.1f} s"
    # the process and the preprocessor it waited for (cpp-memory-bytes: 1 GiB of address space)
    assert peak_kb < 1_200_000, f"{peak_kb} KB"


def test_a_50_megabyte_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.S"
    with open(path, "wb") as file:
        file.truncate(50 << 20)  # sparse: nothing to read, but 50 MB to the size check
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"input of 52428800 bytes exceeds the limit of 1048576 bytes"):
        load_program([str(path)], NO_SHIMS)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("make", [os.mkfifo, lambda path: os.mkdir(path)], ids=["fifo", "directory"])
def test_inputs_that_are_not_regular_files_are_refused_without_blocking(make, tmp_path):
    path = tmp_path / "x.S"
    make(path)
    start = time.monotonic()
    with pytest.raises(SourceError, match="not a regular file"):
        load_program([str(path)], NO_SHIMS)
    assert time.monotonic() - start < 2  # a FIFO opened for reading would wait for a writer


def test_a_file_named_like_an_option_reaches_the_preprocessor_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, ".globl f\nf:\n ret\n", "-E.S")
    program = load_program(["-E.S"], NO_SHIMS)
    assert [function.name for function in program.functions] == ["f"]
    assert program.functions[0].origin.file == "-E.S"


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member, once the killed
    ones have had a moment to be reaped."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("rest", ["sleep 30 & sleep 30",
                                  "exec >&- 2>&-; sleep 30"])   # its output ends at once; it stays
def test_a_preprocessor_that_never_exits_is_killed_with_its_children_at_the_limit(tmp_path, rest):
    write(tmp_path, "nop\n")
    pid_file = tmp_path / "pid"
    command = ["sh", "-c", f"echo $$ > {pid_file}; {rest}"]
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"run time exceeds the limit of 1 second"):
        run_preprocessor(command, str(tmp_path / "a.S"), Limits(cpp_seconds=1))
    assert 0.9 < time.monotonic() - start < 5
    assert not _group_alive(int(pid_file.read_text()))  # the shell led its group: all of it is gone


def test_a_preprocessor_that_exits_after_closing_its_output_is_waited_for(tmp_path):
    write(tmp_path, "nop\n")
    command = ["sh", "-c", "echo '# 1 \"a.S\"'; echo nop; exec >&- 2>&-; sleep 0.3"]
    status, stdout, _ = run_preprocessor(command, str(tmp_path / "a.S"), Limits(cpp_seconds=5))
    assert status == 0 and stdout.endswith(b"nop\n")


@pytest.mark.parametrize("command", ["parse", "check"])
def test_ctrl_c_kills_the_preprocessor_runs_under_way(command, tmp_path):
    # the runs are process groups of their own, which a Ctrl-C at the terminal does not reach
    write(tmp_path, ".globl f\nf:\n ret\n")
    pid_file = tmp_path / "pid"
    process = subprocess.Popen([sys.executable, "-m", "proofs.cli", command, "--cpp",
                                f"sh -c 'echo $$ > {pid_file}; sleep 30'", "a.S"], cwd=tmp_path,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    assert process.communicate(timeout=10)[1] == "tdxproof: interrupted\n"
    assert process.returncode == 130
    assert not _group_alive(int(pid_file.read_text()))


def test_closing_the_preprocessing_kills_the_runs_under_way(tmp_path):
    write(tmp_path, "nop\n")
    pid_file = tmp_path / "pid"
    options = FrontEndOptions(cpp=f"sh -c 'echo $$ > {pid_file}; sleep 30'", use_shims=False)
    preprocessing = Preprocessing([([str(tmp_path / "a.S")], options)])
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.monotonic()
    preprocessing.close()
    assert time.monotonic() - start < 2
    assert not _group_alive(int(pid_file.read_text()))


def test_deep_expressions_cost_no_python_stack(tmp_path):
    depth = 3 * sys.getrecursionlimit()
    write(tmp_path, f".globl f\nf:\n movl ${'-' * depth}1, %eax\n addl ${'+'.join(['1'] * depth)}, %eax\n ret\n")
    program = load_program([str(tmp_path / "a.S")], NO_SHIMS)
    assert [str(i) for i in program.function("f").instructions][:2] == [
        f"movl ${'-0x1' if depth % 2 else '0x1'}, %eax", f"addl ${depth:#x}, %eax"]


# ---------------------------------------------------------------- function boundaries against GNU as

SIZE_CASES = {
    # name: (text, GNU as accepts it)
    "end-names-another-function": ("SYM_FUNC_START(f)\n RET\nSYM_FUNC_END(g)\n", False),
    "stray-end": (".text\n nop\nSYM_FUNC_END(f)\n", False),
    "stray-end-after-a-function": ("SYM_FUNC_START(f)\n RET\nSYM_FUNC_END(f)\nSYM_FUNC_END(h)\n", False),
    "code-end-misspelt": ("SYM_CODE_START(entry)\n ud2\nSYM_CODE_END(entyr)\n", False),
    "end-names-an-earlier-function": ("SYM_FUNC_START(g)\n RET\nSYM_FUNC_END(g)\n"
                                      "SYM_FUNC_START(f)\n RET\nSYM_FUNC_END(g)\n", True),
    "matched": ("SYM_FUNC_START(f)\n RET\nSYM_FUNC_END(f)\n", True),
    "start-without-end": ("SYM_FUNC_START(f)\n RET\n", True),
    "end-of-an-inner-label": ("SYM_FUNC_START(f)\n nop\ninner:\n RET\nSYM_FUNC_END(inner)\n", True),
    "size-forward-reference": (".globl f\n.size f, .Lend - f\nf: ret\n.Lend:\n", True),
    "size-constant-of-undefined": (".size nowhere, 8\n.globl f\nf: ret\n", True),
    "size-of-an-address": (".globl f\nf: ret\n.size f, f\n", False),
    "size-from-another-section": (".globl f\nf: ret\n.pushsection .data\n.size f, . - f\n.popsection\n", False),
    "size-mixing-sections": (".data\nd: .long 0\n.text\n.globl f\nf: ret\n.size f, d - f\n", False),
    "size-of-data-labels": (".data\nd: .long 0\ne: .long 0\n.text\n.globl f\nf: ret\n.size f, e - d\n", True),
    "size-scaled-difference": (".globl f\nf: ret\n.size f, 2 * (. - f)\n", True),
    "size-scaled-undefined": (".globl f\nf: ret\n.size f, 2 * (. - h)\n", False),
    "size-negated-difference": (".globl f\nf: ret\n.size f, -(f - .)\n", True),
    "size-undefined-cancels": (".globl f\nf: ret\n.size f, h - h\n", True),
    "size-through-absolute-symbol": (".set LEN, 1\n.globl f\nf: ret\n.size f, LEN\n", True),
    "size-missing-expression": (".globl f\nf: ret\n.size f\n", False),
    "size-empty-expression": (".globl f\nf: ret\n.size f,\n", False),
    "size-of-numeric-label": (".globl f\nf:\n1: ret\n.size 1b, . - 1b\n", False),
}
LINKAGE = "#include <linux/linkage.h>\n"


def _gnu_as_accepts(path: Path) -> bool:
    run = subprocess.run(["cc", "-c", "-x", "assembler-with-cpp", "-D__ASSEMBLY__", "-D__KERNEL__",
                          f"-I{ROOT / 'grammar' / 'shims'}", str(path), "-o", str(path.with_suffix(".o"))],
                         capture_output=True, text=True)
    return run.returncode == 0


@pytest.mark.parametrize("name", SIZE_CASES)
def test_function_boundaries_are_rejected_exactly_when_gnu_as_rejects_them(name, tmp_path):
    text, accepted = SIZE_CASES[name]
    path = write(tmp_path, LINKAGE + text)
    assert _gnu_as_accepts(path) == accepted, "the case's expectation is not GNU as's"
    if accepted:
        load_program([str(path)])
        return
    with pytest.raises(SourceError) as raised:
        load_program([str(path)])
    error = raised.value
    assert error.origin is not None and Path(error.origin.file).name == "a.S"
    assert ".size" in error.message
    last_line = LINKAGE.count("\n") + text.count("\n") - text.count("\n.popsection")
    assert error.origin.line == last_line, error.render()


def test_a_mismatched_end_names_the_open_function_and_the_expansion_chain(tmp_path):
    path = write(tmp_path, ".macro END name\n .size \\name, . - \\name\n.endm\n"
                           ".globl f\n.type f, @function\nf: ret\nEND g\n")
    with pytest.raises(SourceError) as raised:
        load_program([str(path)], NO_SHIMS)
    assert raised.value.render().endswith(
        "(in expansion of END at " + str(path) + ":7:1): error: .size expression for 'g' does not "
        "evaluate to a constant, as GNU as requires: 'g' is not defined in this file "
        "(the function open here is 'f')")


def test_code_outside_any_function_is_accepted(tmp_path):
    # alignment padding, an int3 after a function, replacement code in an
    # executable section of its own: real kernel files have all three.
    path = write(tmp_path, LINKAGE + " int3\nSYM_FUNC_START(f)\n RET\nSYM_FUNC_END(f)\n int3\n"
                                     ".pushsection .altinstr_replacement, \"ax\"\n lfence\n.popsection\n")
    program = load_program([str(path)])
    assert [function.name for function in program.functions] == ["f"]
