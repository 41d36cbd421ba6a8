"""Random statement soup through the whole front end: a program or a
located bad-input error, never another exception, never a hang (the memory of such runaways is
measured in tests/test_limits.py).

The soup mixes what kernel files are made of (directives, macros and their
parameters, conditionals, repetitions, labels, instructions and operands,
section switches, symbol and ``.size`` directives) with garbage, deep
nesting and huge counts.  Each case runs through the C preprocessor, the
GNU-as layer and the program builder (:func:`load_program`), or through
``tdxproof parse`` itself, under limits small enough that every case ends
within its deadline; the runs are derandomised so CI is reproducible.
"""
from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from grammar.frontend import FrontEndOptions, load_program
from grammar.limits import Limits
from grammar.source import SourceError
from cli_runner import run_in_process

LIMITS = Limits(statements=600, rept=2000, statement_bytes=4096, expanded_bytes=1 << 18,
                macro_depth=40, function_instructions=500, cpp_seconds=10)
OPTIONS = FrontEndOptions(use_shims=False, limits=LIMITS)

names = st.sampled_from(["f", "g", "M", "N", "x", "a", ".Lout", "1", "2", "__tdcall", "rax", "\\a", "\\@"])
numbers = st.one_of(st.integers(-3, 12), st.sampled_from([0x7fffffff, 1 << 40, 100000000, -1 << 63]))
registers = st.sampled_from(["%rax", "%eax", "%al", "%ah", "%r8", "%r10d", "%rsp", "%rip", "%cs", "%xmm0",
                             "%\\a", "%rbz"])
atoms = st.one_of(numbers.map(str), names, st.sampled_from([".", "1f", "1b", "'a", "(", ")", "0x", "08"]))


@st.composite
def expressions(draw, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(atoms)
    op = draw(st.sampled_from(["+", "-", "*", "/", "%", "<<", ">>", "|", "&", "^", "!", "==", "<>",
                               "&&", "||", "<"]))
    left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    return draw(st.sampled_from([f"{left} {op} {right}", f"({left}{op}{right})", f"-{left}", f"~({right})"]))


@st.composite
def operands(draw) -> str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(registers)
    if kind == 1:
        return "$" + draw(expressions())
    if kind == 2:
        return f"{draw(expressions())}({draw(registers)},{draw(registers)},{draw(numbers)})"
    if kind == 3:
        return f"{draw(names)}(%rip)"
    if kind == 4:
        return "*" + draw(registers)
    return draw(names)


@st.composite
def instructions(draw) -> str:
    mnemonic = draw(st.sampled_from(["mov", "movq", "movl", "add", "xor", "push", "pop", "lea", "jmp", "je",
                                     "call", "ret", "nop", "tdcall", "seamcall", "cmovz", "shl", "lock",
                                     "rep", "movzbl", "test", "int3", "frobnicate"]))
    return f" {mnemonic} " + ", ".join(draw(st.lists(operands(), max_size=3)))


_OPENERS = [".macro {name} a, b=1, c:vararg", ".macro {name} a:req", ".rept {number}", ".rept {expr}",
            ".irp {name}, 1, 2, {expr}", ".irpc {name}, abc"]
"""Block openers, rarely drawn alone: an unterminated one swallows the rest of the file."""
_STATEMENTS = [
    ".endm", ".exitm", ".purgem {name}", ".endr", ".if {expr}", ".ifdef {name}", ".ifb {name}", ".ifc {name}, {name}", ".elseif {expr}", ".else",
    ".endif", ".set {name}, {expr}", "{name} = {expr}", ".equiv {name}, {expr}", "{name}:",
    "{name}: {instruction}", ".globl {name}", ".type {name}, @function", ".size {name}, . - {name}",
    ".size {name}, {expr}", ".text", ".data", ".section .text.x, \"ax\"", ".pushsection __ex_table, \"a\"",
    ".popsection", ".previous", ".long {expr}, {expr}", ".byte 0x66, 0x0f, 0x01, {byte}",
    ".p2align {number}", ".balign 16, {number}", ".nops {number}", ".skip {number}, 0x90",
    ".error \"{name}\"", "{name} {expr}, {expr}", "{name} \"{name}{name}\"", "{name} \\a\\a \\b", ".end",
    ".code32", ".foo {expr}", "{instruction}",
]
"""Statement templates; each ``{field}`` is drawn only when the template uses it."""


def _statement(draw, templates: list[str] = _STATEMENTS) -> str:
    template = draw(st.sampled_from(templates))
    fields = {"name": lambda: draw(names), "expr": lambda: draw(expressions()),
              "number": lambda: str(draw(numbers)), "instruction": lambda: draw(instructions()),
              "byte": lambda: draw(st.sampled_from(["0xcc", "0xcf", "0x00"]))}
    return re.sub(r"\{(\w+)\}", lambda match: fields[match.group(1)](), template)


def _clean_instruction(draw) -> str:
    return draw(st.sampled_from([" nop", " push %rax", " pop %rbx", " movq 8(%rsi), %r8", " xorl %eax, %eax",
                                 " jmp 1f", "1:", " je .Lout\\@", ".Lout\\@:", " addq $\\n, %rax",
                                 " call __tdcall", " RET", " movl $(\\n * 8), %ecx", " tdcall"]))


@st.composite
def blocks(draw, depth: int = 0) -> list[str]:
    """Balanced constructs (macro definitions and calls, repetitions,
    conditionals) around well-formed statements: the soup that gets deep."""
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 5 if depth < 3 else 0))
        if kind == 0:
            lines.append(_clean_instruction(draw))
        elif kind == 1:
            name = draw(st.sampled_from(["SAVE", "LOAD", "RET"]))
            recursive = [f" {name} \"(\\n-1)\""] if draw(st.booleans()) else []
            lines += ([f".macro {name} n=1", ".if \\n"] + recursive + draw(blocks(depth + 1)) +
                      [".endif", ".endm", f" {name} {draw(numbers)}", f" {name}"])
        elif kind == 2:
            lines += [f".rept {draw(st.integers(0, 60))}"] + draw(blocks(depth + 1)) + [".endr"]
        elif kind == 3:
            lines += [".irp n, 1, 2, 3"] + draw(blocks(depth + 1)) + [".endr"]
        elif kind == 4:
            lines += [f".if {draw(expressions())}"] + draw(blocks(depth + 1)) + [".else"] + \
                     draw(blocks(depth + 1)) + [".endif"]
        else:
            lines.append(_statement(draw))
    return lines


@st.composite
def soups(draw) -> str:
    lines = [".globl f", "f:"] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 30))):
        choice = draw(st.integers(0, 11))
        if choice < 6:
            lines.append(_statement(draw))
        elif choice < 8:
            lines += draw(blocks())
        elif choice == 8:
            lines.append(draw(st.text(st.characters(min_codepoint=1, max_codepoint=0x7f), max_size=30)))
        elif choice == 9:
            lines.append(_statement(draw, _OPENERS))
        else:  # a deep nest or a runaway
            depth = draw(st.integers(1, 60))
            opener = draw(st.sampled_from([".rept 3", ".if 1", ".irp x, 1, 2"]))
            closer = {".rept 3": ".endr", ".if 1": ".endif", ".irp x, 1, 2": ".endr"}[opener]
            lines += [opener] * depth + [" nop"] + [closer] * draw(st.integers(0, depth))
    joiner = draw(st.sampled_from(["\n", "\n", "; "]))
    return joiner.join(lines) + "\n"


FUZZ = settings(max_examples=30, derandomize=True, database=None, deadline=15_000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(soups())
def test_statement_soup_is_a_program_or_a_source_error(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("soup")) / "soup.S"
    path.write_text(text)
    try:
        load_program([str(path)], OPTIONS)
    except SourceError as error:
        assert error.message and "\n" not in error.render()


@settings(FUZZ, max_examples=8)
@given(soups())
def test_statement_soup_through_the_command_exits_0_or_2(tmp_path_factory, text):
    path = Path(tmp_path_factory.mktemp("soup")) / "soup.S"
    path.write_text(text)
    status, _, stderr = run_in_process(["parse", "--no-shims", "--limit", "statements=600", "--limit",
                                        "rept=2000", "--limit", "macro-depth=40", str(path)], 60)
    assert status in (0, 2), stderr
    assert (status == 2) == bool(stderr)
    assert "internal error" not in stderr and "Traceback" not in stderr
