"""GCC's compiler proper, run as its driver would run it (grammar.cpp):
the same output as the driver's own run, byte for byte, on every fixture
under both frame-pointer configurations and on a file that fails; any
driver whose ``-###`` answer is not one ``cc1`` command is run as given.
And the macros GCC lists in the main run (``-dU``, for the shims' struct
layout: grammar.shim_layout): the same lines and origins as a run without
the listing, and the same layout as the listing run of its own that any
other preprocessor gets."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from expectations import FIXTURES, defines_for, include_dirs_for, translation_units
from grammar import cpp, shim_layout
from grammar.frontend import SHIM_DIR, FrontEndOptions, layout_defines
from grammar.limits import Limits


def _command(path: str, frame_pointer: bool, cpp_command: str | None = None) -> list[str]:
    return cpp.preprocessor_command(str(FIXTURES / path), include_dirs_for(path), defines_for(path),
                                    configs={"CONFIG_FRAME_POINTER": frame_pointer}, cpp=cpp_command,
                                    shim_dir=str(SHIM_DIR))


def _as_given(command: list[str]) -> tuple[int, bytes, str]:
    """The run of ``command`` itself (the driver)."""
    return cpp._run_bounded(command, None, command[0], command[-1], Limits(), None)


@pytest.mark.parametrize("frame_pointer", [False, True])
def test_every_fixture_preprocesses_as_the_driver_does(frame_pointer):
    for path in translation_units():
        command = _command(path, frame_pointer)
        assert cpp.run_preprocessor(command, command[-1]) == _as_given(command), path


def test_a_failing_file_fails_as_it_does_under_the_driver(tmp_path):
    source = tmp_path / "broken.S"
    source.write_text("#include <no/such/header.h>\n\tret\n")
    command = cpp.preprocessor_command(str(source))
    direct, driver = cpp.run_preprocessor(command, str(source)), _as_given(command)
    assert direct[0] != 0 and (direct[0], direct[1]) == (driver[0], driver[1])
    assert "no/such/header.h: No such file or directory" in direct[2]
    assert direct[2] == driver[2]


def test_the_driver_is_asked_once_per_set_of_options():
    first, second = "unified/arch/x86/coco/tdx/tdcall.S", "unified/arch/x86/virt/vmx/tdx/seamcall.S"
    commands = [_command(path, False) for path in (first, second)]
    assert commands[0][:-1] == commands[1][:-1]
    for command in commands:
        cpp.run_preprocessor(command, command[-1])
    plan = cpp._PLANS[(*commands[0][:-1], ".S")]
    assert plan is not None and os.path.basename(plan.argv[0]) == "cc1"   # this machine's GCC is run directly
    proper, _ = cpp._compiler_proper(commands[1], Limits(), None)
    assert proper.count(commands[1][-1]) == 1 and "seamcall.S" in proper


def _driver(tmp_path: Path, answer: str) -> str:
    """A ``--cpp`` that answers ``-###`` with ``answer`` on stderr and
    otherwise runs ``cc``."""
    script = tmp_path / "odd-driver"
    script.write_text('#!/bin/sh\nfor word; do [ "$word" = "-###" ] && { printf \'%s\\n\' '
                      f'"{answer}" >&2; exit 0; }}; done\nexec cc "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{script} -E"


@pytest.mark.parametrize("answer", [
    " /bin/echo not-a-compiler",                                          # not cc1
    " /usr/lib/gcc/cc1 -E tdxproof-stand-in/tdxproof-input.S tdxproof-stand-in/tdxproof-input.S",   # twice
    " /usr/lib/gcc/cc1 -E other.S",                                       # the input is not where it goes
    " cc1 -E tdxproof-stand-in/tdxproof-input.S",                         # not a path
    "nothing that looks like a command",
])
def test_any_other_answer_runs_the_command_as_given(tmp_path, answer):
    path = "unified/arch/x86/coco/tdx/tdcall.S"
    command = _command(path, True, _driver(tmp_path, answer))
    assert cpp._compiler_proper(command, Limits(), None) is None
    assert cpp.run_preprocessor(command, command[-1]) == _as_given(_command(path, True))


def _options(path: str, frame_pointer: bool, cpp_command: str | None = None) -> FrontEndOptions:
    return FrontEndOptions(include_dirs=include_dirs_for(path), defines=defines_for(path),
                           configs={"CONFIG_FRAME_POINTER": frame_pointer}, cpp=cpp_command)


@pytest.mark.parametrize("frame_pointer", [False, True])
def test_a_listing_run_has_the_lines_and_origins_of_a_plain_one(frame_pointer):
    for path in translation_units():
        options = dict(include_dirs=include_dirs_for(path), defines=defines_for(path),
                       configs={"CONFIG_FRAME_POINTER": frame_pointer}, shim_dir=str(SHIM_DIR))
        listing = cpp.MacroListing()
        listed = cpp.preprocess(str(FIXTURES / path), listing=listing, **options)
        plain = cpp.preprocess(str(FIXTURES / path), **options)
        assert listing.lines and all(line.startswith(("#define ", "#undef ")) for line in listing.lines)
        assert [(line.text, line.origin) for line in listed if line.text.strip()] == \
               [(line.text, line.origin) for line in plain if line.text.strip()], path


@pytest.mark.parametrize("frame_pointer", [False, True])
def test_the_layout_is_chosen_alike_from_the_listing_and_from_a_run_of_its_own(frame_pointer):
    chosen = {}
    for path in translation_units():
        options = _options(path, frame_pointer)
        command = _command(path, frame_pointer)
        read: list[str] = []
        cpp.preprocess(command[-1], include_dirs_for(path), defines_for(path),
                       configs=options.configs, shim_dir=str(SHIM_DIR), read=read)
        own_run = shim_layout.selection(command, read, str(SHIM_DIR), options.defines, options.undefines)
        chosen[path] = layout_defines(command[-1], options)
        assert chosen[path] == own_run, path
    assert chosen["v5.19/arch/x86/coco/tdx/tdcall.S"] == (shim_layout.SELECTOR,)   # the six-register form
    assert chosen["v6.3/arch/x86/coco/tdx/tdcall.S"] == ()


def test_another_preprocessor_gets_the_listing_run(tmp_path):
    path = "v5.19/arch/x86/coco/tdx/tdcall.S"
    odd = _driver(tmp_path, " /bin/echo not-a-compiler")
    assert layout_defines(str(FIXTURES / path), _options(path, False, odd)) == (shim_layout.SELECTOR,)


def test_a_run_without_line_markers_is_not_listed():
    # without markers (-P) the listing's lines would move every line after them
    path = "v6.3/arch/x86/coco/tdx/tdcall.S"
    options = dict(include_dirs=include_dirs_for(path), defines=defines_for(path), shim_dir=str(SHIM_DIR),
                   cpp="cc -E -P")
    listing = cpp.MacroListing()
    listed = cpp.preprocess(str(FIXTURES / path), listing=listing, **options)
    assert listing.lines is None
    assert listed == cpp.preprocess(str(FIXTURES / path), **options)


@pytest.mark.parametrize("define", ["X=(1 + 2)", 'X="q\\"uote"', "X=$HOME", "X=a\\b", "X=`date`"])
def test_options_the_driver_quotes_preprocess_as_under_the_driver(tmp_path, define):
    (tmp_path / "sp ace").mkdir()
    (tmp_path / "sp ace" / "h.h").write_text("#define FROM_HEADER 7\n")
    source = tmp_path / "q.S"
    source.write_text("#include <h.h>\n\tmovq $FROM_HEADER, %rax\n\tmovq $X, %rbx\n")
    command = cpp.preprocessor_command(str(source), [str(tmp_path / "sp ace")], [define])
    direct = cpp.run_preprocessor(command, command[-1])
    assert direct == _as_given(command) and b"movq $7, %rax" in direct[1]
