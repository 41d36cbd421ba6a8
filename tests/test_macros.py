"""The GNU-as layer against GNU as itself.

Each case is a small ``.S`` text.  GNU as (through ``cc -c``, as Kbuild
runs it) assembles the original; our front end expands it and re-emits it
as plain assembly, which ``as`` assembles again; the ``.text`` bytes and the
relocations of ``.text`` and ``__ex_table`` must be identical.  Where the
feature is about what the model sees (functions, labels, origins, the
exception table) the program is checked as well.
"""
from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from grammar import ast
from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
from grammar.source import SourceError

NO_SHIMS = FrontEndOptions(use_shims=False)


def _object_facts(obj: Path) -> tuple[bytes, list[str]]:
    binary = obj.with_suffix(".bin")
    subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)], check=True)
    relocations = []
    for section in (".text", "__ex_table"):
        dump = subprocess.run(["objdump", "-r", "-j", section, str(obj)],
                              capture_output=True, text=True).stdout
        relocations += [f"{section} {line}" for line in dump.splitlines()
                        if line[:1] in "0123456789abcdef" and line[:1] and " R_X86" in line]
    return binary.read_bytes(), relocations


def gnu_as_facts(source: Path, options: FrontEndOptions = NO_SHIMS) -> tuple[bytes, list[str]]:
    """``.text`` bytes and relocations of the original, assembled by ``cc -c``."""
    obj = source.with_suffix(".orig.o")
    command = ["cc", "-c", "-x", "assembler-with-cpp", "-D__ASSEMBLY__"]
    command += [f"-D{name}=1" for name, on in options.configs.items() if on]
    command += [str(source), "-o", str(obj)]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return _object_facts(obj)


def expanded_facts(source: Path, options: FrontEndOptions = NO_SHIMS) -> tuple[bytes, list[str]]:
    """The same facts for our re-emitted expansion, assembled by ``as``."""
    text = expand_to_assembly([str(source)], options)
    emitted = source.with_suffix(".expanded.s")
    emitted.write_text(text)
    obj = source.with_suffix(".expanded.o")
    run = subprocess.run(["as", "--64", str(emitted), "-o", str(obj)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr + "\n" + text
    return _object_facts(obj)


def write(tmp_path: Path, text: str, name: str = "case.S") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_same_as_gnu_as(tmp_path: Path, text: str,
                          options: FrontEndOptions = NO_SHIMS) -> bytes:
    source = write(tmp_path, text)
    original = gnu_as_facts(source, options)
    assert original[0], "the case must produce .text bytes"
    assert expanded_facts(source, options) == original
    return original[0]


def program(tmp_path: Path, text: str) -> ast.Program:
    return load_program([str(write(tmp_path, text))], NO_SHIMS)


def mnemonics(prog: ast.Program, name: str) -> list[str]:
    return [str(instruction) for instruction in prog.function(name).instructions]


# -- statements, comments, labels ------------------------------------------------


def test_statements_split_on_semicolons_and_hash_comments(tmp_path):
    text = """
    push %rax; push %rbx ; pop %rbx  # pop %rax; this is all a comment
    movq $0x23, %rcx   # '#' after code
    movb $'#', %al ; movb $';', %cl ; movb $';, %dl; movb $'a', %bl
    .byte 0x90 # nop written as data is not allowed in code, but this is a comment
    """.replace(".byte 0x90 ", "")
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data[:3] == bytes([0x50, 0x53, 0x5B])
    prog = program(tmp_path, ".globl f\nf:\n" + text)
    assert [i.base for i in prog.function("f").instructions] == \
        ["push", "push", "pop", "mov", "mov", "mov", "mov", "mov"]


def test_numeric_local_labels_forward_and_backward(tmp_path):
    text = """
    .globl f
    f:
    1:  dec %eax
        jnz 1b
    1:  jmp 2f
        jmp 1b
    2:  jmp 1f
    1:  ret
    """
    assert_same_as_gnu_as(tmp_path, text)
    items = program(tmp_path, text).function("f").items
    targets = [op.label for i in items if isinstance(i, ast.Instruction)
               for op in i.operands if isinstance(op, ast.Target)]
    labels = [i.name for i in items if isinstance(i, ast.Label)]
    assert labels == ["f", ".Lnum.1.1", ".Lnum.1.2", ".Lnum.2.1", ".Lnum.1.3"]
    assert targets == [".Lnum.1.1", ".Lnum.2.1", ".Lnum.1.2", ".Lnum.1.3"]


def test_named_and_local_labels_and_several_per_statement(tmp_path):
    text = ".globl f\nf: .Lx: 3: mov %eax, %ecx\n jmp .Lx\n jmp 3b\n"
    assert_same_as_gnu_as(tmp_path, text)
    prog = program(tmp_path, text)
    assert prog.labels[".Lx"] == ("f", 1) and prog.labels[".Lnum.3.1"] == ("f", 2)


# -- macros -------------------------------------------------------------------


def test_macro_parameters_required_default_vararg_keyword(tmp_path):
    text = r"""
    .macro LOAD dst:req, value=7, rest:vararg
        movl $\value, \dst
        .ifnb \rest
        .irp r, \rest
        push \r
        .endr
        .endif
    .endm
    LOAD %eax
    LOAD %ecx 9
    LOAD value=3 dst=%edx
    LOAD %esi, 1, %rax, %rbx
    LOAD %edi 2 %r8 %r9
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data[:5] == bytes([0xB8, 7, 0, 0, 0])


def test_macro_arguments_follow_gnu_as_whitespace_rules(tmp_path):
    # '2 +1' is one argument (GNU as drops the blank before '+'), '2 -1' two.
    text = r"""
    .macro TWO a, b=7
        movl $\a, %eax
        movl $\b, %ecx
    .endm
    TWO 2 +1
    TWO 2 -1
    TWO (1 + 2),4
    TWO "5 + 5"
    TWO 1,2
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data[1] == 3 and data[6] == 7 and data[11] == 2 and data[16] == 0xFF


def test_backslash_parens_and_at_counter(tmp_path):
    text = r"""
    .macro INNER
    .Linner\@: jmp .Linner\@
    .endm
    .macro OUTER reg
        mov %\reg\()d, %eax
    .Louter\@:
        INNER
        jmp .Louter\@
        INNER
    .endm
    OUTER r8
    OUTER r9
    """
    assert_same_as_gnu_as(tmp_path, text)
    prog = program(tmp_path, ".globl f\nf:\n" + text)
    labels = [i.name for i in prog.function("f").items if isinstance(i, ast.Label)]
    # \@ counts every expansion, nested ones included: OUTER=0, INNER=1, 2; OUTER=3 ...
    assert labels == ["f", ".Louter0", ".Linner1", ".Linner2", ".Louter3", ".Linner4",
                      ".Linner5"]


def test_macro_names_are_case_insensitive_and_override_instructions(tmp_path):
    text = """
    .macro Push reg
        pushq \\reg
        pushq \\reg
    .endm
    PUSH %rax
    push %rbx
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data == bytes([0x50, 0x50, 0x53, 0x53])


def test_exitm_and_purgem(tmp_path):
    text = """
    .macro M n
        .if \\n == 0
            .exitm
        .endif
        push %rax
        M "(\\n - 1)"
    .endm
    M 3
    .purgem M
    .macro M
        pop %rcx
    .endm
    M
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data == bytes([0x50, 0x50, 0x50, 0x59])


def test_recursion_is_bounded(tmp_path):
    with pytest.raises(SourceError, match=r"macro nesting \(macro 'R' expands itself\) exceeds the limit of 100 levels \(raise it with --limit macro-depth=N\)") as error:
        program(tmp_path, ".macro R\nR\n.endm\nR\n")
    assert error.value.origin.expansion  # the chain of expansions is reported


def test_expansion_chain_outermost_first(tmp_path):
    text = ".macro A\n nop\n.endm\n.macro B\n A\n.endm\n.globl f\nf:\n B\n"
    instruction = program(tmp_path, text).function("f").instructions[0]
    assert instruction.origin.line == 2
    assert [(frame.name, frame.line) for frame in instruction.origin.expansion] == \
        [("B", 9), ("A", 5)]


# -- conditionals ---------------------------------------------------------------


def test_conditionals_with_expressions_and_nesting(tmp_path):
    text = """
    X = 3
    .set Y, X * 2
    .if (X == 3) && !(Y < 6) || 0
        inc %eax
    .elseif 1
        inc %ebx
    .else
        inc %ecx
    .endif
    .if X > 5
        .if 1 / 0
            bad instruction is skipped
        .endif
        inc %edx
    .elseif Y - 6
        inc %esi
    .else
        inc %edi
    .endif
    .ifeq X - 3
        push %rax
    .endif
    .ifne X - 3
        push %rbx
    .endif
    .ifgt X
        push %rcx
    .endif
    .iflt X
        push %rdx
    .endif
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data == bytes([0xFF, 0xC0, 0xFF, 0xC7, 0x50, 0x51])


def test_ifdef_ifb_ifc(tmp_path):
    text = r"""
    .equ DEFINED_SYM, 1
    .macro CHECK a, b
    .ifb \a
        push %rax
    .endif
    .ifnb \b
        push %rcx
    .endif
    .ifc \a,\b
        push %rdx
    .endif
    .ifnc \a,\b
        push %rbx
    .endif
    .endm
    CHECK
    CHECK x, x
    CHECK x, y
    .ifdef DEFINED_SYM
        pop %rax
    .endif
    .ifndef UNDEFINED_SYM
        pop %rcx
    .endif
    .ifdef UNDEFINED_SYM
        pop %rdx
    .endif
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data == bytes([0x50, 0x52, 0x51, 0x52, 0x51, 0x53, 0x58, 0x59])


# -- repetition -------------------------------------------------------------------


def test_irp_irpc_rept_nested(tmp_path):
    text = """
    .irp reg, rax, rbx, r12
        push %\\reg
    .endr
    .irpc n, 123
        .rept \\n
        nop
        .endr
    .endr
    .rept 0
        hlt
    .endr
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data == bytes([0x50, 0x53, 0x41, 0x54]) + b"\x90" * 6


# -- symbols ------------------------------------------------------------------------


def test_set_equ_assignment_and_redefinition(tmp_path):
    text = """
    .set A, 1
    movl $A, %eax
    .set A, A + 1
    movl $A, %ecx
    B = A << 4
    .equ C, B | 1
    movl $C, %edx
    .equiv D, 5
    movl $D, %esi
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    prog = program(tmp_path, text)
    assert prog.symbols == {"A": 2, "B": 32, "C": 33, "D": 5}
    assert data[1] == 1 and data[6] == 2 and data[11] == 33


def test_equiv_cannot_redefine(tmp_path):
    with pytest.raises(SourceError, match="already defined"):
        program(tmp_path, ".equ A, 1\n.equiv A, 2\n")


# -- sections, data, alignment, functions, exception table -------------------------


SECTIONS = """
    .section .noinstr.text, "ax"
    .globl first
    .type first, @function
    .balign 16, 0x90
first:
    call helper
1:  mov (%rdi), %rax
2:  ret
    .pushsection __ex_table, "a"
    .balign 4
    .long 1b - .
    .long 2b - .
    .long 2
    .popsection
    .pushsection .rodata
    .quad 0x1122334455667788, first
    .octa 0x0123456789abcdef0123456789abcdef
    .word 7, 8
    .ascii "text; # not a comment"
    .popsection
    .size first, .-first

    .text
    .p2align 4
    .globl second
second:
    push %rbx
    .globl inner
inner:
    pop %rbx
    .section .data
    .long 1, 2
    .previous
    jmp helper
    .size second, .-second
    .align 8
helper:
    ret
"""


def test_sections_data_alignment_against_as(tmp_path):
    source = write(tmp_path, SECTIONS)
    original = gnu_as_facts(source)
    assert expanded_facts(source) == original
    assert any("__ex_table" in line for line in original[1])


def test_functions_labels_and_extable(tmp_path):
    prog = program(tmp_path, SECTIONS)
    assert [f.name for f in prog.functions] == ["first", "second"]
    first, second = prog.functions
    assert first.section == ".noinstr.text" and second.section == ".text"
    assert [i.base for i in first.instructions] == ["call", "mov", "ret"]
    assert [i.base for i in second.instructions] == ["push", "pop", "jmp"]
    assert prog.labels["inner"] == ("second", 2)
    assert prog.labels["helper"] == (None, -1)
    assert prog.globals == {"first", "second", "inner"}
    (entry,) = prog.extable
    assert (entry.from_label, entry.to_label, entry.kind) == (".Lnum.1.1", ".Lnum.2.1", "fault")
    assert prog.labels[entry.from_label] == ("first", 2)


def test_extable_types_and_old_handler_form(tmp_path):
    text = """
    .globl f
f:
1:  mov (%rdi), %rax
2:  ret
    .pushsection __ex_table, "a"
    .long (1b) - ., (2b) - ., 1
    .long 1b - .
    .long 2b - .
    .long ex_handler_fault - .
    .long 1b - ., 2b - ., 12
    .popsection
    """
    prog = program(tmp_path, text)
    assert [entry.kind for entry in prog.extable] == ["default", "fault", "12"]


def test_tdx_instructions_written_as_bytes(tmp_path):
    text = """
    .globl f
f:
    .byte 0x66, 0x0f, 0x01, 0xcc
    .byte 0x66,0x0f,0x01,0xcf, 0x66,0x0f,0x01,0xcc
    ret
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data.startswith(bytes([0x66, 0x0F, 0x01, 0xCC]))
    instructions = program(tmp_path, text).function("f").instructions
    assert [i.base for i in instructions] == ["tdcall", "seamcall", "tdcall", "ret"]
    assert instructions[1].origin.line == 5


def test_prefix_statement_joins_the_next_instruction(tmp_path):
    text = ".globl f\nf:\n lock; incl (%rdi)\n ret\n"
    assert_same_as_gnu_as(tmp_path, text)
    (lock, _) = program(tmp_path, text).function("f").instructions
    assert lock.prefixes == ("lock",)


def test_cpp_include_and_line_mapping(tmp_path):
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "defs.h").write_text(
        "#ifndef DEFS\n#define DEFS\n#define MASK 0xFFCC\n"
        "#define SAVE(r) push r; \\\n  pop r\n#endif\n")
    text = ('#include "inc/defs.h"\n#include "inc/defs.h"\n#define MASK 0xFC00\n'
            "/* a comment\n   over lines */\n.globl f\nf:\n"
            "  movl $MASK, %ecx\n  SAVE(%rbx)\n")
    source = write(tmp_path, text)
    prog = load_program([str(source)], NO_SHIMS)
    mov, push, pop = prog.function("f").instructions
    assert mov.operands[0] == ast.Immediate(0xFC00)
    assert (Path(mov.origin.file).name, mov.origin.line) == ("case.S", 8)
    assert (push.origin.line, pop.origin.line) == (9, 9) and pop.origin.column > push.origin.column
    assert expanded_facts(source) == gnu_as_facts(source)


def test_config_options_reach_the_preprocessor(tmp_path):
    text = ("#ifdef CONFIG_FOO\n push %rbp\n#else\n push %rbx\n#endif\n"
            "#ifndef CONFIG_BAR\n ret\n#endif\n")
    for foo in (True, False):
        options = FrontEndOptions(use_shims=False, configs={"CONFIG_FOO": foo, "CONFIG_BAR": False})
        data = assert_same_as_gnu_as(tmp_path, text, options)
        assert data == bytes([0x55 if foo else 0x53, 0xC3])


def test_undefined_labels(tmp_path):
    ok = program(tmp_path, ".globl f\nf:\n call external_fn\n jmp other_external\n")
    assert [str(i) for i in ok.function("f").instructions] == ["call external_fn",
                                                              "jmp other_external"]
    for text, message in [(".globl f\nf:\n jmp .Lnowhere\n", "'.Lnowhere'"),
                          (".globl f\nf:\n jmp 1f\n", "'1f'"),
                          (".globl f\nf:\n jnz external\n", "only call/jmp"),
                          (".globl f\nf:\n jmp 1b\n", "'1b'")]:
        with pytest.raises(SourceError, match=message) as error:
            program(tmp_path, text)
        assert error.value.origin.line == 3


def test_several_files_are_separate_units(tmp_path):
    body = ".globl {0}\n{0}:\n1: jmp .Lout\n.Lout: jmp 1b\n" \
           ".pushsection __ex_table, \"a\"\n.long 1b - ., .Lout - ., 2\n.popsection\n"
    first = write(tmp_path, body.format("one"), "one.S")
    second = write(tmp_path, body.format("two"), "two.S")
    prog = load_program([str(first), str(second)], NO_SHIMS)
    assert [str(i) for i in prog.function("two").instructions] == ["jmp .Lout__1",
                                                                  "jmp .Lnum.1.1__1"]
    assert [(e.from_label, e.to_label) for e in prog.extable] == \
        [(".Lnum.1.1", ".Lout"), (".Lnum.1.1__1", ".Lout__1")]
    emitted = tmp_path / "both.s"
    emitted.write_text(expand_to_assembly([str(first), str(second)], NO_SHIMS))
    run = subprocess.run(["as", "--64", str(emitted), "-o", str(tmp_path / "both.o")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with pytest.raises(SourceError, match="more than one input file"):
        load_program([str(first), str(first)], NO_SHIMS)


def test_at_counter_values_match_gnu_as(tmp_path):
    # The counter's value itself is observable through an immediate.
    text = r"""
    .macro N
        movl $\@, %ecx
    .endm
    .macro O
        movl $\@, %eax
        N
        .irp x, 1, 2
        N
        .endr
        movl $\@, %edx
    .endm
    N
    O
    .rept 2
    O
    .endr
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert data[1] == 0 and data[6] == 1


def test_alignment_padding_inside_a_function(tmp_path):
    text = ".globl f\nf:\n nop\n .balign 8, 0x90\n nop\n .p2align 3\n ret\n"
    assert_same_as_gnu_as(tmp_path, text)
    assert [i.base for i in program(tmp_path, text).function("f").instructions] == \
        ["nop", "nop", "ret"]
    for bad in (".balign 8, 0xcc", ".balignw 8, 0x9090"):
        with pytest.raises(SourceError, match="padding would be executed"):
            program(tmp_path, f".globl f\nf:\n nop\n {bad}\n ret\n")


ARGUMENT_SPELLINGS = [
    "2 +1", "2 + 1", "2+ 1", "2 1", "2,1", "2 , 1", "2 ,1", "2 -1", "x 1", "x -1", "-x 1",
    "2 (1)", "2 / 1", "x (1)", "2 !1", "2 <1", "2 'a", '2 "1"', "2\t1", "x\t-1", '"2 + 1"',
    '"1" "2"', "(1)+(2),3", "b=3", "b=3 a=4", "a=(1 + 1)", "", "x*2 1", "(x) -1",
    "'a'", "'a' 'b", "'a 'b", "';' 1", "'\\n 'x'", ",2", " , 3", "a=,b=2", "1,,", "a= 4",
    "b = 5", "1 ;", "x%2 1", "1,\t2", "-1 -2", "~1",
]


def test_argument_spellings_bind_like_gnu_as(tmp_path):
    invocations = "\n".join(f"TWO {spelling}" for spelling in ARGUMENT_SPELLINGS)
    text = f"""
    x = 5
    .macro TWO a=9, b=7
        movl $(\\a), %eax
        movl $(\\b), %ecx
    .endm
    {invocations}
    """
    data = assert_same_as_gnu_as(tmp_path, text)
    assert len(data) == 10 * len(ARGUMENT_SPELLINGS)


def test_alternative_style_nop_padding_and_replacement_code(tmp_path):
    # The kernel's ALTERNATIVE pattern: the original instruction padded with
    # NOPs to the replacement's length, the replacement in its own code section.
    text = r"""
    .macro ALT old, new, feature
    140: \old
    141: .skip -(((144f-143f)-(141b-140b)) > 0) * ((144f-143f)-(141b-140b)), 0x90
    142: .pushsection .altinstructions, "a"
        .long 140b - ., 143f - .
        .short \feature
        .byte 142b - 140b, 144f - 143f
        .popsection
        .pushsection .altinstr_replacement, "ax"
    143: \new
    144: .popsection
    .endm
    .globl f
    .type f, @function
f:
    ALT "ret", "jmp __x86_return_thunk", 123
    .nops 3
    .fill 2, 1, 0x90
    int3
    .size f, .-f
    """
    assert_same_as_gnu_as(tmp_path, text)
    instructions = program(tmp_path, text).function("f").instructions
    assert [i.base for i in instructions] == ["ret", "int3"]
    with pytest.raises(SourceError, match=r"data \('.skip'\) in code"):
        program(tmp_path, ".globl f\nf:\n .skip 4, 0xcc\n")
    with pytest.raises(SourceError, match=r"data \('.fill'\) in code"):
        program(tmp_path, ".globl f\nf:\n .fill 2, 2, 0x90\n")


def _random_block(rng, depth: int = 0) -> list[str]:
    """A random, valid mix of the layer's features (for the differential test)."""
    registers = ["%rax", "%rbx", "%rcx", "%r8", "%r12"]
    lines: list[str] = []
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(["insn", "set", "if", "irp", "rept", "macro", "label", "jump"]
                          if depth < 2 else ["insn", "set", "label", "jump"])
        if kind == "insn":
            lines.append(f"movq ${rng.randint(-99, 99)} + V, {rng.choice(registers)}")
        elif kind == "set":
            lines.append(rng.choice(["V = V + 1", ".set V, V * 2 & 0x7f", ".equ V, (V ^ 5) % 13"]))
        elif kind == "if":
            condition = rng.choice(["V > 3", "(V & 1) == 0", "!(V < 2) && V != 7", "V - 4",
                                    "1 || V", "V <= 2 || V >= 9"])
            lines.append(f".if {condition}")
            lines += _random_block(rng, depth + 1)
            if rng.random() < 0.5:
                lines.append(".elseif V == 5")
                lines += _random_block(rng, depth + 1)
            lines.append(".else")
            lines += _random_block(rng, depth + 1)
            lines.append(".endif")
        elif kind == "irp":
            chosen = ", ".join(rng.sample(registers, 2))
            lines += [f".irp reg, {chosen}", "push \\reg", ".endr"]
        elif kind == "rept":
            lines += [f".rept {rng.randint(0, 2)}"] + _random_block(rng, depth + 1) + [".endr"]
        elif kind == "macro":
            lines.append(rng.choice(["ADD", "SWAP", "ADD value=3", "ADD 5 %rcx",
                                     "SWAP %r8 %r9", "NEST 2", "NEST"]))
        elif kind == "label":
            lines.append(f"{rng.randint(1, 3)}:")
        else:
            lines.append(f"jmp {rng.randint(1, 3)}{rng.choice('fb')}")
    return lines


@pytest.mark.parametrize("seed", [20261124, 7, 31])
def test_random_programs_expand_like_gnu_as(tmp_path, seed):
    rng = random.Random(seed)
    prologue = r"""
    V = 4
    .macro ADD value=1 reg=%rax
        addq $\value + \@, \reg
    .endm
    .macro SWAP a=%rax, b=%rbx
        xchg \a, \b
    1:  movl $\@, %eax
    .endm
    .macro NEST n=1
        .if \n
            ADD \n
            NEST "(\n - 1)"
        .endif
        movl $\@, %edx
    .endm
    1: 2: 3:
    """
    blocks = [line for _ in range(12) for line in _random_block(rng)]
    text = prologue + "\n".join(blocks) + "\n1: 2: 3:\n ret\n"
    assert_same_as_gnu_as(tmp_path, text)


def test_kernel_tree_linkage_style(tmp_path):
    # The real <linux/linkage.h> spelling: '.type name STT_FUNC' without a
    # comma, the size through a local '.set', inner global labels typed NOTYPE.
    text = """
#define ASM_NL ;
#define SYM_FUNC_START(name) .globl name ASM_NL .balign 16, 0x90 ASM_NL name:
#define SYM_FUNC_END(name) .type name STT_FUNC ASM_NL \\
    .set .L__sym_size_##name, .-name ASM_NL .size name, .L__sym_size_##name
#define SYM_INNER_LABEL(name) .type name STT_NOTYPE ASM_NL .globl name ASM_NL name:
    .section .noinstr.text, "ax"
SYM_FUNC_START(outer)
    push %rbx
SYM_INNER_LABEL(outer_inner)
    pop %rbx
    ret
SYM_FUNC_END(outer)
SYM_FUNC_START(second)
    ret
SYM_FUNC_END(second)
"""
    assert_same_as_gnu_as(tmp_path, text.replace(".noinstr.text", ".text"))
    prog = program(tmp_path, text)
    assert [(f.name, len(f.instructions)) for f in prog.functions] == [("outer", 3), ("second", 1)]
    assert prog.labels["outer_inner"] == ("outer", 2)
