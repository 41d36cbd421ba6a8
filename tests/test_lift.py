"""The lifter and the two IR interpreters, from AT&T text.

Each case parses one statement with the real parser, lifts it, runs the
concrete interpreter and compares the registers, flags and memory that
changed with what the Intel SDM says; the Z3 interpreter must agree with the
concrete one on the same inputs.  (The per-instruction co-simulation against
the CPU lives with the native harness.)
"""
from __future__ import annotations

import random
import typing

import pytest
import z3

from grammar import ast
from grammar.parser import KNOWN_MNEMONICS, parse_instruction
from grammar.source import Origin
from model import bv, concrete, ir, printer, symbolic
from model import lift as lift_module
from model.abi import FLAGS
from model.lift import SUPPORTED, UNSUPPORTED, UnsupportedInstruction, lift, write_register
from model.registry import DuplicateHandler

M64 = (1 << 64) - 1
STACK = 0x7000_0000_1000
BUFFER = 0x5000_0000_0000


def parse(text: str, line: int = 1) -> ast.Instruction:
    return parse_instruction(text, Origin("case.S", line), {"K": 0x40})


def state(regs: dict[str, int] | None = None, flags: dict[str, int | None] | None = None,
          memory: dict[int, int] | None = None) -> concrete.ConcreteState:
    start = concrete.ConcreteState.zero()
    start.regs.update({"rsp": STACK, "rsi": BUFFER})
    start.regs.update(regs or {})
    start.flags.update(flags or {})
    start.memory.update(memory or {})
    return start


ENV = concrete.ConcreteEnv(symbols={"table": 0x6000_0000_0000}, return_address=0x4000_1234)


def run(text: str, **initial) -> concrete.ConcreteState:
    return concrete.execute(lift(parse(text)), state(**initial), ENV)


def changes(before: concrete.ConcreteState, after: concrete.ConcreteState) -> dict[str, object]:
    """Every register, flag and memory byte that differs."""
    diff: dict[str, object] = {}
    diff.update({r: v for r, v in after.regs.items() if before.regs[r] != v})
    diff.update({f: v for f, v in after.flags.items() if before.flags[f] != v})
    diff.update({f"[{a:#x}]": v for a, v in after.memory.items() if before.memory.get(a) != v})
    return diff


def little_endian(address: int, value: int, size: int) -> dict[int, int]:
    return {address + k: value >> (8 * k) & 0xFF for k in range(size)}


# --- register views and data movement -------------------------------------------

RAX = 0x1122_3344_5566_7788

MOVES = [
    ("movl $-1, %eax", {"rax": RAX}, {"rax": 0xFFFF_FFFF}),
    ("movw $0x1234, %ax", {"rax": RAX}, {"rax": 0x1122_3344_5566_1234}),
    ("movb $0x99, %al", {"rax": RAX}, {"rax": 0x1122_3344_5566_7799}),
    ("movb $0x99, %ah", {"rax": RAX}, {"rax": 0x1122_3344_5566_9988}),
    ("movb %ah, %al", {"rax": RAX}, {"rax": 0x1122_3344_5566_7777}),
    ("xchgb %al, %ah", {"rax": RAX}, {"rax": 0x1122_3344_5566_8877}),
    ("movq $-3, %r9", {}, {"r9": M64 - 2}),
    ("movabsq $0x123456789abcdef0, %r10", {}, {"r10": 0x1234_5678_9ABC_DEF0}),
    ("movl %r8d, %r9d", {"r8": RAX, "r9": M64}, {"r9": 0x5566_7788}),
    ("movw %r8w, %r9w", {"r8": RAX, "r9": M64}, {"r9": 0xFFFF_FFFF_FFFF_7788}),
    ("movb %sil, %dil", {"rsi": 0xAB, "rdi": M64}, {"rsi": 0xAB, "rdi": 0xFFFF_FFFF_FFFF_FFAB}),
    ("movzbl %ah, %ecx", {"rax": RAX, "rcx": M64}, {"rcx": 0x77}),
    ("movzwq %ax, %rcx", {"rax": RAX}, {"rcx": 0x7788}),
    ("movsbw %al, %cx", {"rax": 0x80, "rcx": M64}, {"rcx": 0xFFFF_FFFF_FFFF_FF80}),
    ("movsbl %al, %ecx", {"rax": 0x80, "rcx": M64}, {"rcx": 0xFFFF_FF80}),
    ("movslq %eax, %rcx", {"rax": 0x8000_0000}, {"rcx": 0xFFFF_FFFF_8000_0000}),
    ("movsxd %eax, %rcx", {"rax": 0x7FFF_FFFF}, {"rcx": 0x7FFF_FFFF}),
    ("leaq 8(%rdi,%rbx,4), %rax", {"rdi": 0x100, "rbx": 3}, {"rax": 0x114}),
    ("leal -1(%rdi), %eax", {"rdi": 0x1_0000_0000, "rax": M64}, {"rax": 0xFFFF_FFFF}),
    ("leaq table+16(%rip), %rdx", {}, {"rdx": 0x6000_0000_0010}),
    ("leaq K(%rdi), %rdx", {"rdi": 2}, {"rdx": 0x42}),
    ("xchgq %rax, %rbx", {"rax": 1, "rbx": 2}, {"rax": 2, "rbx": 1}),
]


@pytest.mark.parametrize("text, regs, expected", MOVES, ids=[m[0] for m in MOVES])
def test_moves_follow_the_register_views(text, regs, expected):
    before = state(regs)
    assert changes(before, concrete.execute(lift(parse(text)), before, ENV)) == {
        name: value for name, value in expected.items() if before.regs[name] != value}


def test_memory_is_little_endian_and_sized():
    after = run("movl %eax, 8(%rsi)", regs={"rax": RAX})
    assert changes(state(regs={"rax": RAX}), after) == {
        f"[{a:#x}]": v for a, v in little_endian(BUFFER + 8, 0x5566_7788, 4).items()}
    loaded = run("movw 2(%rsi), %bx", regs={"rbx": M64}, memory=little_endian(BUFFER, RAX, 8))
    assert loaded.regs["rbx"] == 0xFFFF_FFFF_FFFF_5566


def test_push_pop_call_ret_move_rsp_by_eight():
    pushed = run("pushq %rsp")
    assert pushed.regs["rsp"] == STACK - 8
    assert pushed.memory == little_endian(STACK - 8, STACK, 8)  # the old value
    immediate = run("pushq $-1")
    assert immediate.memory == little_endian(STACK - 8, M64, 8)
    popped = run("popq %rbx", memory=little_endian(STACK, RAX, 8))
    assert (popped.regs["rbx"], popped.regs["rsp"]) == (RAX, STACK + 8)
    pop_rsp = run("popq %rsp", memory=little_endian(STACK, RAX, 8))
    assert pop_rsp.regs["rsp"] == RAX  # the loaded value wins over the increment
    call_step = lift(parse("call helper"))
    called = concrete.execute(call_step, state(), ENV)
    assert call_step.control == ir.Call("helper")
    assert called.regs["rsp"] == STACK - 8
    assert called.memory == little_endian(STACK - 8, 0x4000_1234, 8)
    ret_step = lift(parse("retq"))
    before = state(memory=little_endian(STACK, 0xDEAD_BEEF, 8))
    assert concrete.execute(ret_step, before, ENV).regs["rsp"] == STACK + 8
    assert concrete.evaluate(ret_step.control.address, before, ENV) == 0xDEAD_BEEF


# --- flags ------------------------------------------------------------------------

FLAG_CASES = [
    # text, regs, flags before, expected changes (registers and flags)
    ("addq $1, %rax", {"rax": (1 << 63) - 1}, {},
     {"rax": 1 << 63, "of": 1, "sf": 1, "af": 1, "pf": 1}),
    ("addb $1, %al", {"rax": 0xFF}, {}, {"rax": 0, "cf": 1, "zf": 1, "af": 1, "pf": 1}),
    ("subl $1, %eax", {"rax": 1 << 40}, {},
     {"rax": 0xFFFF_FFFF, "cf": 1, "sf": 1, "af": 1, "pf": 1}),
    ("adcq $0, %rax", {"rax": M64}, {"cf": 1}, {"rax": 0, "zf": 1, "af": 1, "pf": 1}),
    ("adcb %bl, %al", {"rax": 0x7F, "rbx": 0}, {"cf": 1}, {"rax": 0x80, "of": 1, "sf": 1, "af": 1, "cf": 0}),
    ("sbbq %rax, %rax", {"rax": 5}, {"cf": 1},
     {"rax": M64, "sf": 1, "af": 1, "pf": 1}),
    ("sbbb $0x7f, %al", {"rax": 0x80}, {"cf": 1}, {"rax": 0, "of": 1, "zf": 1, "pf": 1, "af": 1, "cf": 0}),
    ("cmpq %rbx, %rax", {"rax": 1, "rbx": 2}, {},
     {"cf": 1, "sf": 1, "af": 1, "pf": 1}),
    ("cmpb $0x80, %al", {"rax": 0x7F}, {}, {"cf": 1, "of": 1, "sf": 1, "pf": 1}),
    ("negq %rax", {"rax": 0}, {"cf": 1}, {"cf": 0, "zf": 1, "pf": 1}),
    ("negl %eax", {"rax": 0x8000_0000}, {}, {"cf": 1, "of": 1, "sf": 1, "pf": 1}),
    ("incq %rax", {"rax": M64}, {"cf": 0}, {"rax": 0, "zf": 1, "af": 1, "pf": 1}),
    ("decb %al", {"rax": 0x80}, {"cf": 1}, {"rax": 0x7F, "of": 1, "af": 1}),
    ("xorl %eax, %eax", {"rax": M64}, {"cf": 1, "of": 1},
     {"rax": 0, "cf": 0, "of": 0, "zf": 1, "pf": 1, "af": None}),
    ("testq %rax, %rax", {"rax": 1 << 63}, {}, {"sf": 1, "pf": 1, "af": None}),
    ("andb $0x0f, %al", {"rax": 0xF3}, {"cf": 1}, {"rax": 3, "cf": 0, "pf": 1, "af": None}),
    ("orw $0x8000, %ax", {"rax": 1}, {}, {"rax": 0x8001, "sf": 1, "af": None}),
    ("notq %rax", {"rax": 0}, {"cf": 1}, {"rax": M64}),
    ("clc", {}, {"cf": 1}, {"cf": 0}),
    ("stc", {}, {}, {"cf": 1}),
    ("cmc", {}, {"cf": 1}, {"cf": 0}),
    ("std", {}, {}, {"df": 1}),
    ("cld", {}, {"df": 1}, {"df": 0}),
    ("sti", {}, {}, {"if": 1}),
    ("cli", {}, {"if": 1}, {"if": 0}),
]


@pytest.mark.parametrize("text, regs, flags, expected", FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_arithmetic_and_logic_flags_follow_the_sdm(text, regs, flags, expected):
    before = state(regs, flags)
    assert changes(before, concrete.execute(lift(parse(text)), before, ENV)) == {
        name: value for name, value in expected.items()
        if (before.regs.get(name) if name in before.regs else before.flags[name]) != value}


SHIFT_CASES = [
    ("shlq $1, %rax", {"rax": 1 << 63}, {}, {"rax": 0, "cf": 1, "of": 1, "zf": 1, "pf": 1, "af": None}),
    ("shlb $3, %al", {"rax": 0x21}, {}, {"rax": 0x08, "cf": 1, "of": None, "af": None}),
    ("shlb $8, %al", {"rax": 0x01}, {}, {"rax": 0, "cf": None, "of": None, "zf": 1, "pf": 1, "af": None}),
    ("shrw $1, %ax", {"rax": 0x8001}, {}, {"rax": 0x4000, "cf": 1, "of": 1, "pf": 1, "af": None}),
    ("sarb $7, %al", {"rax": 0x80}, {}, {"rax": 0xFF, "sf": 1, "pf": 1, "of": None, "af": None}),
    ("sarb $20, %al", {"rax": 0x80}, {}, {"rax": 0xFF, "cf": 1, "sf": 1, "pf": 1, "of": None, "af": None}),
    ("sarl $1, %eax", {"rax": 3}, {"of": 1}, {"rax": 1, "cf": 1, "of": 0, "af": None}),
    ("shrq $0, %rax", {"rax": 1}, {"cf": 1, "af": 1}, {}),
    ("shll $0, %eax", {"rax": M64}, {}, {"rax": 0xFFFF_FFFF}),  # the write still zero-extends
    ("shlq $64, %rax", {"rax": 5}, {"cf": 1}, {}),  # count masked to 0
    ("shlb %cl, %al", {"rax": 0xFF, "rcx": 0x20}, {"cf": 1, "af": 1}, {}),  # %cl masked to 0
    ("shlw %cl, %ax", {"rax": 0x4001, "rcx": 1}, {},
     {"rax": 0x8002, "of": 1, "sf": 1, "af": None}),
    ("rolq $1, %rax", {"rax": 1 << 63}, {}, {"rax": 1, "cf": 1, "of": 1}),
    ("rolb $8, %al", {"rax": 0x81}, {}, {"cf": 1, "of": None}),  # rotated fully round
    ("rorb $1, %al", {"rax": 0x01}, {}, {"rax": 0x80, "cf": 1, "of": 1}),
    ("rorl %cl, %eax", {"rax": M64, "rcx": 0}, {"cf": 0}, {"rax": 0xFFFF_FFFF}),
    ("btq $63, %rax", {"rax": 1 << 63}, {"zf": 1},
     {"cf": 1, "of": None, "sf": None, "af": None, "pf": None}),
    ("btl %ecx, %eax", {"rax": 4, "rcx": 34}, {}, {"cf": 1, "of": None, "sf": None, "af": None, "pf": None}),
]


@pytest.mark.parametrize("text, regs, flags, expected", SHIFT_CASES, ids=[c[0] for c in SHIFT_CASES])
def test_shift_rotate_and_bt_flags_follow_the_sdm(text, regs, flags, expected):
    test_arithmetic_and_logic_flags_follow_the_sdm(text, regs, flags, expected)


def test_cmov_zero_extends_even_when_not_taken():
    assert run("cmovel %ebx, %eax", regs={"rax": M64, "rbx": 7}, flags={"zf": 0}).regs["rax"] == 0xFFFF_FFFF
    assert run("cmovel %ebx, %eax", regs={"rax": M64, "rbx": 7}, flags={"zf": 1}).regs["rax"] == 7
    assert run("cmovq (%rsi), %rax".replace("cmovq", "cmovneq"), regs={"rax": 1}, flags={"zf": 1},
               memory=little_endian(BUFFER, 9, 8)).regs["rax"] == 1


CONDITIONS = {
    # canonical condition -> its meaning after ``cmp b, a`` (AT&T: a - b)
    "e": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "b": lambda a, b: a < b, "ae": lambda a, b: a >= b,
    "be": lambda a, b: a <= b, "a": lambda a, b: a > b,
    "l": lambda a, b: signed(a) < signed(b), "ge": lambda a, b: signed(a) >= signed(b),
    "le": lambda a, b: signed(a) <= signed(b), "g": lambda a, b: signed(a) > signed(b),
    "s": lambda a, b: (a - b) & M64 >= 1 << 63, "ns": lambda a, b: (a - b) & M64 < 1 << 63,
    "o": lambda a, b: not -(1 << 63) <= signed(a) - signed(b) < 1 << 63,
    "no": lambda a, b: -(1 << 63) <= signed(a) - signed(b) < 1 << 63,
    "p": lambda a, b: bin((a - b) & 0xFF).count("1") % 2 == 0,
    "np": lambda a, b: bin((a - b) & 0xFF).count("1") % 2 == 1,
}


def signed(value: int) -> int:
    return concrete.signed(value, 64)


def test_every_condition_code_after_cmp_matches_its_meaning():
    rng = random.Random(7)
    values = [0, 1, 2, M64, 1 << 63, (1 << 63) - 1] + [rng.getrandbits(64) for _ in range(6)]
    cmp = lift(parse("cmpq %rbx, %rax"))
    users = {code: (lift(parse(f"j{code} away")).control, lift(parse(f"set{code} %dl")),
                    lift(parse(f"cmov{code}q %rbx, %rdx"))) for code in CONDITIONS}
    for a in values:
        for b in values:
            after = concrete.execute(cmp, state({"rax": a, "rbx": b, "rdx": M64}), ENV)
            for code, meaning in CONDITIONS.items():
                branch, setcc, cmov = users[code]
                expected = int(meaning(a, b))
                assert concrete.evaluate(branch.condition, after, ENV) == expected, (code, a, b)
                assert concrete.execute(setcc, after, ENV).regs["rdx"] == M64 - 0xFF + expected
                assert concrete.execute(cmov, after, ENV).regs["rdx"] == (b if expected else M64)


def test_condition_aliases_lift_like_their_canonical_form():
    assert lift(parse("jz out")) == lift(parse("je out"))
    assert lift(parse("jnae out")) == lift(parse("jc out")) == lift(parse("jb out"))
    assert lift(parse("setnle %al")) == lift(parse("setg %al"))


# --- control and special instructions ------------------------------------------------

def test_control_transfers():
    assert lift(parse("jmp .Lout")) == ir.Step((), ir.Jump(".Lout"))
    assert lift(parse("int3")).control == ir.Trap("#BP", 3)
    assert lift(parse("ud2")).control == ir.Trap("#UD", 6)
    assert lift(parse("tdcall")) == ir.Step((), ir.TdxInstruction("tdcall"))
    assert lift(parse("seamcall")) == ir.Step((), ir.TdxInstruction("seamcall"))
    for text in ("nop", "nopl 0(%rax,%rax,1)", "nopw %ax", "endbr64", "lfence", "mfence", "pause"):
        assert lift(parse(text)) == ir.Step(()), text


@pytest.mark.parametrize("text", [
    "hlt", "cpuid", "jmp *%rax", "call *8(%rdi)", "lock addq $1, (%rdi)", "ret $8",
    "movq %gs:8, %rax", "btq %rax, (%rdi)", "popq 8(%rsp)",
])
def test_unsupported_forms_are_named_errors_with_their_origin(text):
    with pytest.raises(UnsupportedInstruction) as error:
        lift(parse(text, line=42))
    assert error.value.origin.line == 42 and error.value.origin.file == "case.S"
    assert "unsupported instruction" in error.value.render()


def test_every_parser_base_has_semantics_or_is_listed_unsupported():
    assert not SUPPORTED & set(UNSUPPORTED)
    assert KNOWN_MNEMONICS - SUPPORTED - set(UNSUPPORTED) == set()
    assert set(UNSUPPORTED) <= KNOWN_MNEMONICS  # the list names real instructions


def test_register_write_helper_checks_widths():
    with pytest.raises(ir.WidthError):
        write_register(ast.Register("eax"), ir.Const(1, 16), ir.Reg("rax"))


# --- the two interpreters ------------------------------------------------------------

def test_every_ir_node_has_both_interpreters_and_a_printer():
    expressions = set(typing.get_args(ir.Expr))
    effects = set(typing.get_args(ir.Effect))
    controls = set(typing.get_args(ir.Control))
    assert expressions <= set(concrete.EVALUATORS) and expressions <= set(symbolic.EVALUATORS)
    assert effects <= set(concrete.APPLIERS) and effects <= set(symbolic.APPLIERS)
    assert expressions | effects | controls <= set(printer.RENDERERS)
    assert set(concrete.BINARY) == set(symbolic.BINARY) == set(ir.BinOp)
    assert set(concrete.UNARY) == set(symbolic.UNARY) == set(ir.UnOp)


AGREEMENT_FORMS = [
    "addq %rbx, %rax", "adcl $-2, %eax", "subw (%rsi), %ax", "sbbb %bl, 3(%rsi)", "cmpq $0x7f, %rcx",
    "andl %ebx, %eax", "orq $-1, %rax", "xorb %ah, %bl", "testw $0x8000, %cx", "notl %eax",
    "negq %rdx", "incb %al", "decw 4(%rsi)", "shlq %cl, %rax", "shrb %cl, %al", "sarw %cl, %bx",
    "rolb %cl, %dl", "rorq %cl, %rbx", "shll $5, %eax", "sarq $63, %rax", "rolw $1, %ax",
    "btq %rcx, %rax", "btw $17, (%rsi)", "cmovlq %rbx, %rax", "cmovbel (%rsi), %eax", "setg %al",
    "setnp 5(%rsi)", "movzwl (%rsi), %eax", "movsbq %bl, %rcx", "leaq -8(%rsp,%rcx,8), %rdi",
    "xchgb %al, %ah", "xchgl %eax, (%rsi)", "pushq 8(%rsi)", "popq %rbx", "pushw %ax",
    "movb %bh, %ch", "cmc", "call somewhere", "retq",
]


def _random_value(rng: random.Random) -> int:
    if rng.random() < 0.2:
        return rng.choice([0, M64, 1 << 63, (1 << 63) - 1, 0x80, 0xFF, 0x7FFF_FFFF, 1])
    density = rng.random()
    return sum(1 << bit for bit in range(64) if rng.random() < density)


def _as_z3(entry: symbolic.SymbolicState, start: concrete.ConcreteState):
    memory = z3.K(z3.BitVecSort(64), bv.const(0, 8))
    for address, byte in start.memory.items():
        memory = z3.Store(memory, bv.const(address, 64), bv.const(byte, 8))
    return ([(entry.regs[r], bv.const(v, 64)) for r, v in start.regs.items()]
            + [(entry.flags[f], bv.const(v, 1)) for f, v in start.flags.items()]
            + [(entry.memory.array, memory)])


@pytest.mark.parametrize("text", AGREEMENT_FORMS)
def test_symbolic_interpreter_agrees_with_concrete(text):
    rng = random.Random(text)
    step = lift(parse(text))
    entry = symbolic.SymbolicState.fresh("entry")
    env = symbolic.SymbolicEnv(symbols={}, return_address=bv.const(0x4000_1234, 64))
    final = symbolic.execute(step, entry, env)
    for _ in range(4):
        memory = {BUFFER + k: rng.getrandbits(8) for k in range(16)}
        memory.update({STACK - 8 + k: rng.getrandbits(8) for k in range(16)})
        regs = {r: _random_value(rng) for r in ast.GPR64}
        regs.update({"rsi": BUFFER, "rsp": STACK})
        if rng.random() < 0.5:
            regs["rcx"] = rng.randrange(0, 80)
        start = state(regs, {f: rng.getrandbits(1) for f in FLAGS}, memory)
        expected = concrete.execute(step, start, ENV)
        substitution = _as_z3(entry, start)
        for name in ast.GPR64:
            if final.regs[name].eq(entry.regs[name]):
                assert expected.regs[name] == start.regs[name], name
                continue
            assert bv.value_of(z3.substitute(final.regs[name], *substitution)) == expected.regs[name], name
        for name in FLAGS:
            if final.flags[name].eq(entry.flags[name]):
                assert expected.flags[name] == start.flags[name], name
                continue
            got = z3.simplify(z3.substitute(final.flags[name], *substitution))
            if expected.flags[name] is None:
                assert not z3.is_bv_value(got), f"{name} should be unconstrained"
            else:
                assert bv.value_of(got) == expected.flags[name], name
        if final.memory is entry.memory:
            assert expected.memory == start.memory
        else:
            for address, byte in expected.memory.items():
                got = z3.substitute(final.memory.load(bv.const(address, 64), 1), *substitution)
                assert bv.value_of(got) == byte, hex(address)
        if isinstance(step.control, ir.Return):
            assert (bv.value_of(z3.substitute(symbolic.evaluate(step.control.address, entry, env),
                                              *substitution))
                    == concrete.evaluate(step.control.address, start, ENV))


def test_undefined_flags_are_unconstrained_symbolically():
    step = lift(parse("andq %rbx, %rax"))
    final = symbolic.execute(step, symbolic.SymbolicState.fresh("e"), symbolic.SymbolicEnv())
    solver = z3.Solver()
    for value in (0, 1):
        solver.push()
        solver.add(final.flags["af"] == bv.const(value, 1))
        assert solver.check() == z3.sat
        solver.pop()


def test_concrete_reports_missing_memory_and_undefined_writes():
    with pytest.raises(concrete.MissingMemory):
        concrete.execute(lift(parse("movq (%rdi), %rax")), state({"rdi": 0x1000}), ENV)
    filled = concrete.ConcreteEnv(read_missing=lambda address: address & 0xFF)
    after = concrete.execute(lift(parse("movw (%rdi), %ax")), state({"rdi": 0x1010}), filled)
    assert after.regs["rax"] == 0x1110
    undefined = ir.Step((ir.SetReg("rax", ir.ZeroExt(64, ir.Undefined(1, "test"))),))
    with pytest.raises(concrete.UndefinedValue):
        concrete.execute(undefined, state(), ENV)


# --- the printer ----------------------------------------------------------------------

def test_ir_text_shows_each_step_with_its_source_line():
    lines = ["movl %edi, %eax", "addb $1, %ah", "jne .Lout", "seamcall"]
    items = tuple(parse(text, line=10 + n) for n, text in enumerate(lines)) + (
        ast.Label(".Lout", Origin("case.S", 20)), parse("ret", line=21))
    program = ast.Program(("case.S",), (ast.Function("f", Origin("case.S", 9), ".text", items),))
    text = printer.ir_text(program, ["f"])
    assert "case.S:10: movl %edi, %eax\n    eax := edi\n" in text
    assert "ah := (ah + 0x1)" in text and "pf := parity8((ah + 0x1))" in text
    assert "case.S:12: jne .Lout\n    if ~zf goto .Lout" in text
    assert "seamcall (TDX module)" in text and "  .Lout:" in text
    assert "return to mem64[rsp]" in text
    with pytest.raises(Exception, match="no function named 'g'"):
        printer.ir_text(program, ["g"])


def test_tdxproof_ir_prints_the_ir_of_a_source_file(tmp_path, capsys):
    from proofs.cli import main
    source = tmp_path / "wrapper.S"
    source.write_text(
        "#include <linux/linkage.h>\n"
        ".macro LOAD reg\n"
        "\tmovq (%rsi), \\reg\n"
        ".endm\n"
        "SYM_FUNC_START(probe)\n"
        "\tLOAD %rcx\n"
        "\tseamcall\n"
        "\tRET\n"
        "SYM_FUNC_END(probe)\n"
        "SYM_FUNC_START(broken)\n"
        "\tcpuid\n"
        "SYM_FUNC_END(broken)\n")
    assert main(["ir", str(source), "--function", "probe"]) == 0
    out = capsys.readouterr().out
    assert (f"  # in LOAD at {source}:6\n  {source}:3: movq (%rsi), %rcx\n"
            "    rcx := mem64[rsi]\n  # not in a macro\n") in out
    assert f"{source}:7: seamcall\n    seamcall (TDX module)" in out
    assert main(["ir", str(source)]) == 2  # cpuid is not modelled: an error, never skipped
    assert f"{source}:11:" in capsys.readouterr().err


def test_a_second_handler_for_a_key_is_refused():
    with pytest.raises(DuplicateHandler, match="two semantic functions for 'mov'"):
        lift_module.semantics("mov")(lambda lifting: None)
    for table, decorator in ((concrete.EVALUATORS, concrete.evaluates), (symbolic.APPLIERS, symbolic.applies),
                             (printer.RENDERERS, printer.renders)):
        with pytest.raises(DuplicateHandler, match=table.what):
            decorator(next(iter(table)))(lambda *arguments: None)
