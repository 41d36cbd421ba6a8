"""The native harness itself, on small hand-written snippets.

Each test assembles a snippet whose effect on the CPU is obvious from the
text and checks that the harness reports exactly that: the TDX module's
outcomes (completion, VMfailInvalid, faults through the exception table,
oops), panics, sti/cli emulation, the return thunk, the fall-through
landings, and that random entry states survive a function that does
nothing.
"""
from __future__ import annotations

import random

import pytest

from grammar.ast import GPR64, ExtableEntry
from grammar.source import Origin
from model.abi import TDX_MODULE_ARGS, TDX_SEAMCALL_VMFAILINVALID, TDX_SW_ERROR
from model.native import (ARGS_ADDRESS, CODE_BASE, DATA_BASE, DEFAULT_RSP, SCRATCH_ADDRESS,
                          STACK_BASE, InstructionBatch, NativeBuildError, NativeCase, NativeProgram,
                          TdxBehaviour, flags_of, native_available)

pytestmark = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

M64 = (1 << 64) - 1
# A host wrapper in miniature: leaf in RDI, args in RSI; RCX/RDX from the
# struct; SEAMCALL; VMfailInvalid -> constant; outputs written back;
# a #UD/#GP fault lands at the fixup with the trap number in RAX.
SEAMCALL_RET = f"""
.text
.globl mini_seamcall_ret
mini_seamcall_ret:
    pushq %r12
    movq %rsi, %r12
    movq %rdi, %rax
    movq {TDX_MODULE_ARGS['rcx']}(%rsi), %rcx
    movq {TDX_MODULE_ARGS['rdx']}(%rsi), %rdx
.Lcall:
    seamcall
    jc .Lfail
    movq %rcx, {TDX_MODULE_ARGS['rcx']}(%r12)
    movq %rdx, {TDX_MODULE_ARGS['rdx']}(%r12)
.Lout:
    popq %r12
    ret
    int3
.Lfail:
    movabsq ${TDX_SEAMCALL_VMFAILINVALID:#x}, %rax
    jmp .Lout
.Lfault:
    movabsq ${TDX_SW_ERROR:#x}, %rdi
    orq %rdi, %rax
    jmp .Lout
.pushsection __ex_table, "a"
    .long .Lcall - .
    .long .Lfault - .
    .long 2
.popsection
"""


def random_value(rng: random.Random) -> int:
    """Random 64-bit values with random bit density, and edge values."""
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice([0, M64, 1 << 63, (1 << 63) - 1, 1 << 31, 0xFF, 0x80])
    density = rng.random()
    return sum(1 << bit for bit in range(64) if rng.random() < density)


def random_flags(rng: random.Random) -> dict[str, int]:
    return {name: rng.getrandbits(1) for name in ("cf", "pf", "af", "zf", "sf", "of", "df", "if")}


@pytest.fixture(scope="module")
def seamcall_ret() -> NativeProgram:
    return NativeProgram.build(SEAMCALL_RET, "mini_seamcall_ret")


def args_case(leaf: int, rcx: int, rdx: int, script, **extra) -> NativeCase:
    struct = rcx.to_bytes(8, "little") + rdx.to_bytes(8, "little") + bytes(range(16, 112))
    return NativeCase(regs={"rdi": leaf, "rsi": ARGS_ADDRESS, **extra.pop("regs", {})},
                      memory={ARGS_ADDRESS: struct}, tdx_script=script, **extra)


def test_completion_sets_status_outputs_and_clears_flags(seamcall_ret):
    case = args_case(0x1234, 0xAAAA, 0xBBBB, [TdxBehaviour.completion(0x77, {"rcx": 0x11, "rdx": 0x22})],
                     regs={"r12": 0xC0FFEE}, flags={"cf": 1, "zf": 1, "sf": 1})
    [result] = seamcall_ret.run([case])
    assert result.end == "returned" and result.detail == "return"
    assert result.regs["rax"] == 0x77
    assert result.regs["r12"] == 0xC0FFEE
    assert result.regs["rsp"] == DEFAULT_RSP + 8
    memory = result.memory[ARGS_ADDRESS]
    assert memory[:16] == (0x11).to_bytes(8, "little") + (0x22).to_bytes(8, "little")
    assert memory[16:] == bytes(range(16, 112))
    [event] = result.events
    assert event.kind == "seamcall" and event.outcome == "completion"
    assert (event.regs["rax"], event.regs["rcx"], event.regs["rdx"]) == (0x1234, 0xAAAA, 0xBBBB)
    assert event.regs["r12"] == ARGS_ADDRESS and event.regs["rsp"] == DEFAULT_RSP - 8
    assert event.flags["cf"] == 1  # the flags the module saw, before it cleared them
    assert seamcall_ret.describe(event.address).startswith("mini_seamcall_ret+")
    assert {name: result.flags[name] for name in ("cf", "zf", "sf", "of", "pf", "af")} == dict.fromkeys(
        ("cf", "zf", "sf", "of", "pf", "af"), 0)


def test_vmfailinvalid_sets_cf_and_changes_no_register(seamcall_ret):
    case = args_case(5, 1, 2, [TdxBehaviour.vmfailinvalid()])
    [result] = seamcall_ret.run([case])
    assert result.end == "returned"
    assert result.regs["rax"] == TDX_SEAMCALL_VMFAILINVALID
    assert result.regs["rcx"] == 1 and result.regs["rdx"] == 2  # what the wrapper loaded
    assert result.memory[ARGS_ADDRESS][:16] == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")
    assert result.flags["cf"] == 1 and result.flags["zf"] == 0
    assert [event.outcome for event in result.events] == ["vmfailinvalid"]


@pytest.mark.parametrize("trap", [6, 13])
def test_fault_goes_through_the_programs_own_exception_table(seamcall_ret, trap):
    [result] = seamcall_ret.run([args_case(5, 1, 2, [TdxBehaviour.fault(trap)])])
    assert result.end == "returned"
    assert result.regs["rax"] == TDX_SW_ERROR | trap
    assert result.memory[ARGS_ADDRESS][:16] == (1).to_bytes(8, "little") + (2).to_bytes(8, "little")
    assert [event.outcome for event in result.events] == [{6: "fault-ud", 13: "fault-gp"}[trap]]


def test_fault_without_entry_is_an_oops():
    program = NativeProgram.build(".text\n.globl f\nf:\n  tdcall\n  ret\n", "f")
    [result] = program.run([NativeCase(regs={"rax": 3}, tdx_script=[TdxBehaviour.fault(13)])])
    assert result.end == "oops" and result.detail.startswith("trap-13-at-")
    assert result.regs["rax"] == 3
    assert program.describe(result.rip) == "f"


def test_explicit_exception_table_by_label_offset_and_node():
    text = """
.text
.globl f
f:
    movq $1, %rax
probe:
    tdcall
    ret
fixup:
    addq $100, %rax
    ret
"""
    origin = Origin("t.S", 1)
    for extable in ([("probe", "fixup")], [(7, 12)], [ExtableEntry("probe", "fixup", "fault", origin)]):
        program = NativeProgram.build(text, "f", extable=extable)
        [result] = program.run([NativeCase(tdx_script=[TdxBehaviour.fault(6)])])
        assert (result.end, result.regs["rax"]) == ("returned", 106), extable
    default = NativeProgram.build(text, "f", extable=[("probe", "fixup", "default")])
    [result] = default.run([NativeCase(tdx_script=[TdxBehaviour.fault(6)])])
    assert (result.end, result.regs["rax"]) == ("returned", 101)  # default type: RAX untouched
    with pytest.raises(NativeBuildError):
        NativeProgram.build(text, "f", extable=[("probe", "fixup", "uaccess")])


def test_never_returning_call_is_a_panic_with_the_registers_at_the_call():
    text = """
.text
.globl f
f:
    tdcall
    testq %rax, %rax
    jnz 1f
    ret
1:  movq $42, %rdi
    call __tdx_hypercall_failed
    ret
"""
    program = NativeProgram.build(text, "f")
    ok, failed = program.run([NativeCase(tdx_script=[TdxBehaviour.completion(0)]),
                              NativeCase(tdx_script=[TdxBehaviour.completion(9)])])
    assert ok.end == "returned"
    assert (failed.end, failed.detail, failed.regs["rdi"]) == ("panic", "__tdx_hypercall_failed", 42)
    assert failed.regs["rsp"] == DEFAULT_RSP - 8  # the call pushed its return address
    custom = NativeProgram.build(text.replace("__tdx_hypercall_failed", "my_bug"), "f",
                                 never_returning=("my_bug",))
    [result] = custom.run([NativeCase(tdx_script=[TdxBehaviour.completion(1)])])
    assert (result.end, result.detail) == ("panic", "my_bug")


def test_sti_cli_are_emulated_as_a_tracked_if_bit():
    text = ".text\n.globl f\nf:\n  cli\n  tdcall\n  sti\n  tdcall\n  ret\n"
    program = NativeProgram.build(text, "f")
    for start in (0, 1):
        [result] = program.run([NativeCase(flags={"if": start}, tdx_script=[TdxBehaviour.completion(0)] * 2)])
        assert result.end == "returned"
        assert [event.if_flag for event in result.events] == [0, 1]
        assert result.if_flag == 1 and result.flags["if"] == 1
    [result] = program.run([NativeCase(flags={"if": 1}, tdx_script=[TdxBehaviour.completion(0)])])
    assert result.end == "crash" and result.detail == "unscripted-tdcall"
    assert [event.outcome for event in result.events] == ["completion", "unscripted"]


def test_return_thunk_returns():
    text = ".text\n.globl f\nf:\n  pushq %rbx\n  movq $7, %rbx\n  popq %rbx\n  jmp __x86_return_thunk\n"
    program = NativeProgram.build(text, "f")
    [result] = program.run([NativeCase(regs={"rbx": 0x55})])
    assert result.end == "returned"
    assert result.regs["rsp"] == DEFAULT_RSP + 8 and result.regs["rbx"] == 0x55
    offset = DEFAULT_RSP - 8 - result.stack_address  # the push left RBX's value below the entry RSP
    assert result.stack[offset:offset + 8] == (0x55).to_bytes(8, "little")


def test_int3_is_an_oops_and_a_wild_access_a_crash():
    program = NativeProgram.build(".text\n.globl f, g\nf:\n  int3\ng:\n  movq (%rax), %rax\n  ret\n",
                                  ["f", "g"])
    trapped, crashed = program.run([NativeCase(entry="f"), NativeCase(entry="g", regs={"rax": 0x1000})])
    assert trapped.end == "oops" and trapped.detail.startswith("trap-3-at-")
    assert crashed.end == "crash" and "addr-1000" in crashed.detail


FALLS_THROUGH = """
.text
.globl f
f:
    movq $1, %rax
    testq %rdi, %rdi
    jnz outside
.size f, .-f
.globl g
g:
    movq $2, %rax
    ret
.size g, .-g
outside:
    movq $3, %rax
    ret
"""


def test_running_past_a_function_or_into_code_outside_them_lands_on_a_landing(tmp_path):
    from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
    source = tmp_path / "falls.S"
    source.write_text(FALLS_THROUGH)
    options = FrontEndOptions(use_shims=False)
    program = load_program([str(source)], options)
    landed = NativeProgram.build(expand_to_assembly([str(source)], options), "f", program=program)
    past, outside = landed.run([NativeCase(regs={"rdi": 0}), NativeCase(regs={"rdi": 1})])
    assert (past.end, past.detail, past.regs["rax"]) == ("fallthrough", "past the end of 'f'", 1)
    assert (outside.end, outside.detail) == ("fallthrough", "to 'outside', code outside every function")
    assert outside.regs["rax"] == 1 and past.regs["rsp"] == DEFAULT_RSP   # stopped before running on
    # Without the program, the CPU runs on into g and into the stray code, which return.
    plain = NativeProgram.build(FALLS_THROUGH, "f")
    into_g, stray = plain.run([NativeCase(regs={"rdi": 0}), NativeCase(regs={"rdi": 1})])
    assert (into_g.end, into_g.regs["rax"]) == ("returned", 2)
    assert (stray.end, stray.regs["rax"]) == ("returned", 3)
    # g itself still returns with the landings in place
    [g] = NativeProgram.build(expand_to_assembly([str(source)], options), "g", program=program).run(
        [NativeCase()])
    assert (g.end, g.regs["rax"]) == ("returned", 2)


def test_a_function_that_never_ends_is_stopped():
    program = NativeProgram.build(".text\n.globl spin\nspin:\n  jmp spin\n", "spin")
    spinning, _ = program.run([NativeCase(time_limit=0.05), NativeCase(time_limit=0.05)])
    assert (spinning.end, spinning.detail) == ("crash", "timeout")
    assert program.describe(spinning.rip) == "spin"


def test_random_states_survive_a_trivial_function():
    rng = random.Random(20261124)
    program = NativeProgram.build(".text\n.globl nothing\nnothing:\n  ret\n", "nothing")
    cases = []
    for _ in range(200):
        regs = {name: random_value(rng) for name in GPR64 if name != "rsp"}
        cases.append(NativeCase(regs=regs, flags=random_flags(rng)))
    for case, result in zip(cases, program.run(cases)):
        assert result.end == "returned"
        assert result.regs == {**case.entry_regs(), "rsp": DEFAULT_RSP + 8}
        assert result.flags == {**dict.fromkeys(result.flags, 0), **case.flags}


def test_addresses_are_fixed_and_distinctive(seamcall_ret):
    assert CODE_BASE <= seamcall_ret.symbol("mini_seamcall_ret") < CODE_BASE + 0x100000
    assert STACK_BASE <= DEFAULT_RSP and DATA_BASE <= ARGS_ADDRESS < SCRATCH_ADDRESS
    again = NativeProgram.build(SEAMCALL_RET, "mini_seamcall_ret")
    assert again.binary == seamcall_ret.binary  # cached by content


def test_bad_input_is_refused(seamcall_ret):
    with pytest.raises(NativeBuildError, match="no-such-insn"):
        NativeProgram.build(".text\n.globl f\nf:\n  no-such-insn %rax\n", "f")
    with pytest.raises(ValueError, match="outside"):
        seamcall_ret.run([NativeCase(memory={0x1000: b"x"})])
    with pytest.raises(ValueError, match="return-address slot"):
        seamcall_ret.run([NativeCase(memory={DEFAULT_RSP: bytes(8)})])
    with pytest.raises(ValueError):
        TdxBehaviour.fault(14)


def test_single_instruction_forms():
    batch = InstructionBatch.build(["addq %rbx, %rax", "jne {taken}", "call {taken}", "ret",
                                    "movl 4(%rsi), %edx"])
    rng = random.Random(7)
    cases = [NativeCase(regs={name: random_value(rng) for name in GPR64}, flags=random_flags(rng))
             for _ in range(50)]
    for case, result in zip(cases, batch.run(0, cases)):
        assert result.regs["rax"] == (case.regs["rax"] + case.regs["rbx"]) & M64
        carry = case.regs["rax"] + case.regs["rbx"] > M64
        assert result.flags["cf"] == carry and result.flags["df"] == case.flags["df"]
    for case, result in zip(cases, batch.run(1, cases)):
        assert result.detail == ("return" if case.flags["zf"] else "taken")
    [called] = batch.run(2, [NativeCase(regs={"rsp": DEFAULT_RSP}, observe=[(DEFAULT_RSP - 8, 8)])])
    assert called.detail == "taken" and called.regs["rsp"] == DEFAULT_RSP - 8
    assert called.memory[DEFAULT_RSP - 8] == batch.return_address(2).to_bytes(8, "little")
    [returned] = batch.run(3, [NativeCase(regs={"rsp": DEFAULT_RSP},
                                          memory={DEFAULT_RSP: batch.taken_landing.to_bytes(8, "little")})])
    assert returned.detail == "taken" and returned.regs["rsp"] == DEFAULT_RSP + 8
    [loaded] = batch.run(4, [NativeCase(regs={"rsi": SCRATCH_ADDRESS, "rdx": M64},
                                        memory={SCRATCH_ADDRESS: bytes(range(16))})])
    assert loaded.regs["rdx"] == 0x07060504  # a 32-bit write zero-extends


def test_flags_of_rflags_round_trip():
    assert flags_of(0x8D5 | 0x400, 1) == dict.fromkeys(("cf", "pf", "af", "zf", "sf", "of", "df", "if"), 1)
