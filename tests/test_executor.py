"""The symbolic executor, the TDX instruction models and the exception table.

Small AT&T snippets (parsed by the real instruction parser, one function per
pretend file ``<name>.S``) run through the real lifter and symbolic
interpreter, and the resulting paths are checked with Z3: every claim below
is an obligation the solver proves (or refutes) on the path.
"""
from __future__ import annotations

import random
import textwrap

import pytest
import z3

from grammar import ast
from grammar.ast import GPR64
from grammar.parser import parse_instruction
from grammar.source import Origin
from model import abi, bv
from model.executor import ExecutorOptions, PathEnd, execute_function
from model.extable import ExceptionTable, ExtableError
from model.tdx import Outcome



class Source:
    """Builds a program from AT&T text, one function at a time: each line is
    a label (``name:``), an instruction, or blank; origins are
    ``<function>.S:<line>``, counting from the first line of the text."""

    def __init__(self):
        self.functions: list[ast.Function] = []
        self.extable: list[ast.ExtableEntry] = []

    def function(self, name: str, text: str) -> None:
        items: list[ast.Item] = []
        for number, line in enumerate(textwrap.dedent(text).strip("\n").splitlines(), start=1):
            line = line.strip()
            origin = Origin(f"{name}.S", number)
            if line.endswith(":"):
                items.append(ast.Label(line[:-1], origin))
            elif line:
                items.append(parse_instruction(line, origin, {}))
        self.functions.append(ast.Function(name, Origin(f"{name}.S", 0), ".text", tuple(items)))

    def fault_entry(self, from_label: str, to_label: str, kind: str = "fault") -> None:
        self.extable.append(ast.ExtableEntry(from_label, to_label, kind, Origin("extable.S", 1)))

    def program(self) -> ast.Program:
        labels = {item.name: (function.name, index)
                  for function in self.functions
                  for index, item in enumerate(function.items) if isinstance(item, ast.Label)}
        return ast.Program(tuple(f"{f.name}.S" for f in self.functions), tuple(self.functions),
                           tuple(self.extable), labels)


def run(source: Source, name: str, **options) -> list:
    return execute_function(source.program(), name, ExecutorOptions(**options))


def holds(path, claim: z3.BoolRef) -> bool:
    """``claim`` is true on every model of the path condition."""
    solver = z3.Solver()
    solver.add(path.condition, z3.Not(claim))
    return solver.check() == z3.unsat


def possible(path, claim: z3.BoolRef) -> bool:
    solver = z3.Solver()
    solver.add(path.condition, claim)
    return solver.check() == z3.sat


def q(value: int) -> z3.BitVecRef:
    return z3.BitVecVal(value, 64)


def by_outcome(paths) -> dict:
    return {path.outcomes: path for path in paths}


# --- forking, pruning, merging ----------------------------------------------

def test_branch_forks_into_two_paths_with_their_own_conditions():
    s = Source()
    s.function("f", """
        testq %rdi, %rdi
        je zero
        movq $1, %rax
        ret
    zero:
        movq $2, %rax
        ret
    """)
    paths = run(s, "f")
    assert len(paths) == 2 and all(p.end is PathEnd.RETURNED for p in paths)
    for path in paths:
        rdi, rax = path.entry.regs["rdi"], path.state.regs["rax"]
        assert holds(path, z3.If(rdi == 0, rax == 2, rax == 1))
        assert holds(path, path.state.regs["rsp"] == path.entry.regs["rsp"] + 8)
    zero = next(p for p in paths if possible(p, p.entry.regs["rdi"] == 0))
    assert not possible(zero, zero.entry.regs["rdi"] != 0)
    assert [origin.line for origin in zero.trace] == [1, 2, 6, 7]


def test_infeasible_side_is_dropped_by_the_solver():
    # rax = 2 * (rdi & 1) can never be 4, but only a solver query says so.
    s = Source()
    s.function("f", """
        movq %rdi, %rax
        andq $1, %rax
        addq %rax, %rax
        cmpq $4, %rax
        je never
        ret
    never:
        ud2
    """)
    paths = run(s, "f")
    assert [p.end for p in paths] == [PathEnd.RETURNED]
    assert all(origin.line != 8 for origin in paths[0].trace)


def diamonds(s: Source, count: int) -> None:
    """``count`` independent if-then blocks: rax counts the clear low bits
    of rdi; the ``incq`` of block k is on line 4k+4."""
    blocks = "".join(f"btq ${k}, %rdi\njc skip{k}\nincq %rax\nskip{k}:\n" for k in range(count))
    s.function("f", "xorl %eax, %eax\n" + blocks + "ret\n")


def test_twenty_diamonds_merge_into_one_path():
    s = Source()
    diamonds(s, 20)
    paths = run(s, "f")
    assert len(paths) == 1 and paths[0].end is PathEnd.RETURNED
    path = paths[0]
    rdi, rax = path.entry.regs["rdi"], path.state.regs["rax"]
    clear_bits = sum(z3.If(z3.Extract(k, k, rdi) == 0, q(1), q(0)) for k in range(20))
    assert holds(path, rax == clear_bits)
    # the merged trace still tells each concrete path's lines apart
    solver = z3.Solver()
    solver.add(path.condition, rdi == 0b101)
    assert solver.check() == z3.sat
    lines = path.path_in(solver.model())
    increments = [origin for origin in lines if origin.line % 4 == 0]
    assert len(increments) == 18


def test_without_merging_diamonds_multiply():
    s = Source()
    diamonds(s, 5)
    assert len(run(s, "f", merge=False)) == 32
    assert len(run(s, "f")) == 1


def test_paths_meet_at_an_instruction_whatever_label_they_arrive_by():
    s = Source()
    s.function("f", """
        testq %rdi, %rdi
        je second
    first:
    second:
        movq $1, %rax
        ret
    """)
    (path,) = run(s, "f")
    assert [origin.line for origin in path.trace].count(5) == 1


def test_merging_keeps_tdx_outcomes_apart():
    s = Source()
    blocks = ["btq ${k}, %rdi\njc skip{k}\nincq %rax\nskip{k}:\n".format(k=k) for k in range(16)]
    s.function("f", "xorl %eax, %eax\n" + "".join(blocks[:8])
               + "call:\nseamcall\ndone:\n" + "".join(blocks[8:]) + "ret\n")
    s.fault_entry("call", "done")
    paths = run(s, "f")
    assert sorted(p.outcomes[0].value for p in paths) == sorted(o.value for o in Outcome)
    fault = next(p for p in paths if p.outcomes == (Outcome.FAULT_GP,))
    rdi, rax = fault.entry.regs["rdi"], fault.state.regs["rax"]
    later_clear = sum(z3.If(z3.Extract(k, k, rdi) == 0, q(1), q(0)) for k in range(8, 16))
    assert holds(fault, rax == 13 + later_clear)


# --- loops -------------------------------------------------------------------------

def counted_loop(s: Source, count: int) -> None:
    s.function("f", f"""
        movl ${count}, %ecx
    again:
        decl %ecx
        jne again
        ret
    """)


def test_loop_within_the_bound_returns():
    s = Source()
    counted_loop(s, 5)
    paths = run(s, "f", loop_bound=8)
    assert [p.end for p in paths] == [PathEnd.RETURNED]
    assert holds(paths[0], paths[0].state.regs["rcx"] == 0)


def test_loop_beyond_the_bound_ends_as_bound_and_reports_it():
    s = Source()
    counted_loop(s, 5)
    paths = run(s, "f", loop_bound=3)
    assert [p.end for p in paths] == [PathEnd.BOUND]
    assert paths[0].bound == 3 and "again" in paths[0].detail


def test_symbolic_loop_is_cut_at_the_bound():
    s = Source()
    s.function("f", """
    top:
        decq %rdi
        jne top
        ret
    """)
    paths = run(s, "f", loop_bound=4)
    ends = [p.end for p in paths]
    assert ends.count(PathEnd.BOUND) == 1 and ends.count(PathEnd.RETURNED) >= 1


# --- path ends ----------------------------------------------------------------------

PANIC_ON_NONZERO = """
    testq %rax, %rax
    jne fail
    ret
fail:
    call __tdx_hypercall_failed
"""


def test_call_to_never_returning_function_is_panic():
    s = Source()
    s.function("f", PANIC_ON_NONZERO)
    paths = run(s, "f")
    assert {p.end for p in paths} == {PathEnd.RETURNED, PathEnd.PANIC}
    panic = next(p for p in paths if p.end is PathEnd.PANIC)
    assert holds(panic, panic.entry.regs["rax"] != 0)
    assert "__tdx_hypercall_failed" in panic.detail and panic.where.line == 5
    # not declared never-returning: the call returns and execution falls off the end
    ends = {p.end for p in run(s, "f", never_returning=frozenset())}
    assert ends == {PathEnd.RETURNED, PathEnd.UNSUPPORTED}


def test_unsupported_instruction_ends_the_path_with_its_name():
    s = Source()
    s.function("f", "jmp *%rax")
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and "jmp" in path.detail and path.where.line == 1


def test_falling_off_the_end_is_unsupported():
    s = Source()
    s.function("f", "nop")
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and "falls off" in path.detail


def test_int3_and_unhandled_ud2_are_oops():
    s = Source()
    s.function("f", "int3")
    s.function("g", "ud2")
    assert [p.end for p in run(s, "f")] == [PathEnd.OOPS]
    (path,) = run(s, "g")
    assert path.end is PathEnd.OOPS and not path.faults[0].handled


def test_ud2_with_fault_entry_puts_trap_in_rax_and_resumes():
    s = Source()
    s.function("f", """
    insn:
        ud2
    fixup:
        ret
    """)
    s.fault_entry("insn", "fixup")
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED and holds(path, path.state.regs["rax"] == abi.TRAP_UD)
    assert path.faults[0].handled and path.faults[0].fixup == "fixup"


# --- calls -------------------------------------------------------------------------

def test_internal_call_is_inlined_and_returns_after_the_call():
    s = Source()
    s.function("g", """
        movl $5, %eax
        ret
    """)
    s.function("f", """
        call g
        addq $1, %rax
        ret
    """)
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED
    assert holds(path, path.state.regs["rax"] == 6)
    assert holds(path, path.state.regs["rsp"] == path.entry.regs["rsp"] + 8)
    assert holds(path, path.returned_to == path.entry.load(path.entry.regs["rsp"], 8))
    writes = [a for a in path.accesses if a.kind == "write"]
    assert len(writes) == 1 and holds(path, writes[0].address == path.entry.regs["rsp"] - 8)


def test_call_depth_bound():
    s = Source()
    s.function("f", """
        call f
        ret
    """)
    paths = run(s, "f", call_depth=3)
    assert [p.end for p in paths] == [PathEnd.BOUND] and paths[0].bound == 3


def test_external_call_clobbers_caller_saved_and_is_an_assumption():
    s = Source()
    s.function("f", """
        movq $7, %rbx
        movq $7, %rdi
        std
        call memset
        ret
    """)
    (path,) = run(s, "f")
    regs = path.state.regs
    assert holds(path, regs["rbx"] == 7)
    assert possible(path, regs["rdi"] != 7)
    assert holds(path, regs["rsp"] == path.entry.regs["rsp"] + 8)
    assert holds(path, path.state.flags["df"] == 0)
    assert any("memset" in text for text in path.assumptions)


def test_return_thunk_is_a_return_and_jmp_to_a_function_is_a_tail_call():
    s = Source()
    s.function("g", """
        movl $3, %eax
        jmp __x86_return_thunk
    """)
    s.function("f", "jmp g")
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED and holds(path, path.state.regs["rax"] == 3)
    assert holds(path, path.state.regs["rsp"] == path.entry.regs["rsp"] + 8)


def test_inlined_ret_to_a_clobbered_slot_is_unsupported():
    s = Source()
    s.function("g", """
        movq %rdi, (%rsp)
        ret
    """)
    s.function("f", """
        call g
        ret
    """)
    paths = run(s, "f")
    stray = [p for p in paths if p.end is PathEnd.UNSUPPORTED]
    assert len(stray) == 1 and "other than its caller's" in stray[0].detail


# --- SEAMCALL ------------------------------------------------------------------------

def seamcall_function(s: Source, with_entry: bool = True, kind: str = "fault") -> None:
    s.function("f", """
        movq %rdi, %rax
    call:
        seamcall
    done:
        ret
    """)
    if with_entry:
        s.fault_entry("call", "done", kind)


def test_seamcall_has_four_outcomes_as_the_spec_says():
    s = Source()
    seamcall_function(s)
    paths = by_outcome(run(s, "f"))
    assert set(paths) == {(o,) for o in Outcome}
    entry = paths[(Outcome.COMPLETION,)].entry
    unchanged = [reg for reg in entry.regs if reg not in ("rax", "rsp")]

    fail = paths[(Outcome.VMFAILINVALID,)]
    assert holds(fail, z3.And(fail.state.flags["cf"] == 1, fail.state.flags["zf"] == 0))
    assert holds(fail, z3.And([fail.state.regs[r] == entry.regs[r] for r in unchanged]))
    assert holds(fail, fail.state.regs["rax"] == entry.regs["rdi"])

    done = paths[(Outcome.COMPLETION,)]
    (event,) = done.events
    assert holds(done, z3.And(done.state.flags["cf"] == 0, done.state.flags["zf"] == 0))
    assert holds(done, done.state.regs["rax"] == event.status)
    assert set(event.outputs) == set(abi.MODULE_WORST_CASE_OUTPUTS)
    assert possible(done, done.state.regs["rcx"] != entry.regs["rcx"])
    assert holds(done, done.state.regs["rbp"] == entry.regs["rbp"])
    assert holds(done, event.inputs["rax"] == entry.regs["rdi"])

    for outcome, trap in ((Outcome.FAULT_UD, 6), (Outcome.FAULT_GP, 13)):
        fault = paths[(outcome,)]
        assert fault.end is PathEnd.RETURNED
        assert holds(fault, fault.state.regs["rax"] == trap)
        assert holds(fault, z3.And([fault.state.regs[r] == entry.regs[r] for r in unchanged]))
        assert fault.faults[0].handled and fault.faults[0].traps == (6, 13)


def test_seamcall_fault_without_entry_is_oops():
    s = Source()
    seamcall_function(s, with_entry=False)
    paths = run(s, "f")
    ends = {path.outcomes: path.end for path in paths}
    assert ends[(Outcome.FAULT_UD,)] is ends[(Outcome.FAULT_GP,)] is PathEnd.OOPS
    assert ends[(Outcome.COMPLETION,)] is PathEnd.RETURNED
    assert all(not site.handled for path in paths for site in path.faults)


def test_default_type_entry_resumes_without_writing_rax():
    s = Source()
    seamcall_function(s, kind="default")
    fault = by_outcome(run(s, "f"))[(Outcome.FAULT_GP,)]
    assert fault.end is PathEnd.RETURNED
    assert holds(fault, fault.state.regs["rax"] == fault.entry.regs["rdi"])


def test_firmware_mode_and_narrowed_outputs():
    s = Source()
    seamcall_function(s)
    done = by_outcome(run(s, "f", firmware="clobbers-rbp"))[(Outcome.COMPLETION,)]
    assert possible(done, done.state.regs["rbp"] != done.entry.regs["rbp"])
    narrowed = by_outcome(run(s, "f", firmware="clobbers-rbp",
                              module_outputs={"seamcall": abi.MODULE_CALL_OUTPUTS}))
    done = narrowed[(Outcome.COMPLETION,)]
    for reg in ("rbp", "rbx", "r12", "rsi"):
        assert holds(done, done.state.regs[reg] == done.entry.regs[reg])
    assert possible(done, done.state.regs["r11"] != done.entry.regs["r11"])


def test_outcomes_can_be_narrowed():
    s = Source()
    seamcall_function(s)
    paths = run(s, "f", outcomes={"seamcall": frozenset({Outcome.COMPLETION})})
    assert [p.outcomes for p in paths] == [(Outcome.COMPLETION,)]


COMPLETION_ONLY = {"seamcall": frozenset({Outcome.COMPLETION})}


def test_module_outputs_are_functions_of_the_inputs():
    # Two implementations handing the module the same registers get the same
    # outputs; two calls in sequence, or another namespace, need not.
    s = Source()
    s.function("a", """
        movq %rdi, %rax
        seamcall
        ret
    """)
    s.function("b", """
        xchgq %rdi, %rax
        movq %rax, %rdi
        seamcall
        ret
    """)
    s.function("twice", """
        seamcall
        movq %r12, %rcx
        seamcall
        ret
    """)
    (a,) = run(s, "a", outcomes=COMPLETION_ONLY)
    (b,) = run(s, "b", outcomes=COMPLETION_ONLY)
    assert holds(a, z3.And(a.state.regs["rcx"] == b.state.regs["rcx"],
                           a.state.regs["rax"] == b.state.regs["rax"]))
    (other,) = run(s, "a", outcomes=COMPLETION_ONLY, module_namespace="other")
    assert possible(a, a.state.regs["rcx"] != other.state.regs["rcx"])
    (twice,) = run(s, "twice", outcomes=COMPLETION_ONLY)
    first, second = twice.events
    assert (first.index, second.index) == (0, 1)
    assert possible(twice, first.outputs["rdx"] != second.outputs["rdx"])


def test_extended_state_preserved_unless_leaf_declared_to_reset():
    s = Source()
    s.function("f", """
        movl $0x21, %eax
        seamcall
        ret
    """)
    (kept,) = run(s, "f", outcomes=COMPLETION_ONLY)
    assert holds(kept, kept.extended == kept.entry_extended)
    (reset,) = run(s, "f", outcomes=COMPLETION_ONLY, extended_resets={"seamcall": (0x21,)})
    assert possible(reset, reset.extended != reset.entry_extended)
    (other,) = run(s, "f", outcomes=COMPLETION_ONLY, extended_resets={"seamcall": (0x22,)})
    assert holds(other, other.extended == other.entry_extended)


# --- TDCALL ------------------------------------------------------------------------------

def test_tdcall_completes_only_unless_it_may_fault():
    s = Source()
    s.function("f", """
    call:
        tdcall
    done:
        ret
    """)
    s.fault_entry("call", "done")
    (path,) = run(s, "f")
    assert path.outcomes == (Outcome.COMPLETION,) and path.faults == ()
    paths = run(s, "f", tdcall_may_fault=True)
    assert sorted(p.outcomes[0].value for p in paths) == ["completion", "fault #GP", "fault #UD"]


def vmcall(s: Source, setup: str) -> None:
    s.function("f", f"""
        xorl %eax, %eax
        {setup}
        tdcall
        ret
    out:
        ret
    """)


def test_vmcall_with_constant_bitmap_exposes_exactly_its_registers():
    s = Source()
    vmcall(s, "movl $0xfc00, %ecx")
    (path,) = run(s, "f")
    (event,) = path.events
    assert event.bitmap == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST
    assert set(event.outputs) == set(abi.exposed_registers(abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST))
    for reg in ("rdx", "rbx", "rsi", "rdi", "r8", "r9", "rbp"):
        assert holds(path, path.state.regs[reg] == path.entry.regs[reg])
    for reg in ("r10", "r11"):
        assert possible(path, path.state.regs[reg] != path.entry.regs[reg])
    assert holds(path, path.state.regs["rcx"] == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST)


def test_vmcall_bitmap_known_only_through_the_path_condition():
    s = Source()
    vmcall(s, """
        movq %rdi, %rcx
        cmpq $0xffcc, %rcx
        jne out
    """)
    paths = run(s, "f")
    (called,) = [p for p in paths if p.events]
    assert called.events[0].bitmap == abi.TDVMCALL_EXPOSE_REGS_MASK
    assert holds(called, called.state.regs["rbp"] == called.entry.regs["rbp"])


def test_unknown_bitmap_or_leaf_means_worst_case():
    s = Source()
    vmcall(s, "movq %rdi, %rcx")
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None and set(event.outputs) == set(abi.MODULE_WORST_CASE_OUTPUTS)
    s = Source()
    s.function("f", """
        movl $0xffcc, %ecx
        tdcall
        ret
    """)
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None


def test_bitmap_exposing_rsp_is_not_trusted():
    s = Source()
    vmcall(s, "movl $0x10, %ecx")
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None


# --- memory accesses and the exception table ------------------------------------------------

def test_accesses_record_address_width_and_rsp():
    s = Source()
    s.function("f", """
        pushq %rbx
        movl %eax, -8(%rsp)
        popq %rbx
        ret
    """)
    (path,) = run(s, "f")
    rsp0 = path.entry.regs["rsp"]
    kinds = [(a.kind, a.width, a.origin.line) for a in path.accesses]
    assert kinds == [("write", 64, 1), ("write", 32, 2), ("read", 64, 3), ("read", 64, 4)]
    push, below, pop, ret = path.accesses
    assert holds(path, z3.And(below.rsp == rsp0 - 8, below.address == rsp0 - 16))
    # push writes above its new RSP, pop and ret read above their old one;
    # only the store below RSP is under its stack floor
    under = [bv.ult(a.address, a.stack_floor) for a in path.accesses]
    assert [possible(path, u) for u in under] == [False, True, False, False]
    assert holds(path, z3.Implies(bv.ule(16, rsp0), under[1]))


def test_extable_covers_the_next_instruction_and_rejects_bad_entries():
    s = Source()
    s.function("f", """
    a:
    b:
        seamcall
    end:
        ret
    """)
    s.fault_entry("a", "end")
    table = ExceptionTable(s.program())
    assert table.route(("f", 2), 13).rax == 13 and table.route(("f", 4), 6) is None
    s.fault_entry("b", "end")
    with pytest.raises(ExtableError, match="two exception-table entries"):
        ExceptionTable(s.program())
    s = Source()
    s.function("f", "ret")
    s.fault_entry("nowhere", "f")
    with pytest.raises(ExtableError, match="undefined label"):
        ExceptionTable(s.program())


def test_unmodelled_extable_type_is_unsupported_not_guessed():
    s = Source()
    seamcall_function(s, kind="uaccess")
    assert PathEnd.UNSUPPORTED in {p.end for p in run(s, "f")}


# --- the executor's paths against the CPU -------------------------------------------------
#
# A wrapper goes through the whole pipeline twice: the front end's program
# into the executor, and the front end's re-emitted assembly into the native
# harness, whose SIGILL handler plays the TDX module and the exception table.
# For random entry states and module behaviours, the one path whose condition
# the concrete inputs satisfy must predict the CPU's end, registers, flags,
# struct memory and the registers the module saw.

# A host wrapper in miniature, written for this test: leaf in RDI, args in
# RSI (saved on the stack across SEAMCALL, whose worst case may change RSI),
# RCX..R11 in and out through the struct, the status codes of SPEC section 5.
COSIM_WRAPPER = f"""
.text
.globl mini
mini:
    pushq %rbp
    movq %rsp, %rbp
    pushq %rsi
    movq %rdi, %rax
    movq 0(%rsi), %rcx
    movq 8(%rsi), %rdx
    movq 16(%rsi), %r8
    movq 24(%rsi), %r9
    movq 32(%rsi), %r10
    movq 40(%rsi), %r11
1:  seamcall
    jc 2f
    popq %rsi
    movq %rcx, 0(%rsi)
    movq %rdx, 8(%rsi)
    movq %r8, 16(%rsi)
    movq %r9, 24(%rsi)
    movq %r10, 32(%rsi)
    movq %r11, 40(%rsi)
4:  popq %rbp
    ret
2:  popq %rsi
    movabsq ${abi.TDX_SEAMCALL_VMFAILINVALID:#x}, %rax
    jmp 4b
3:  popq %rsi
    movabsq ${abi.TDX_SW_ERROR:#x}, %rdi
    orq %rdi, %rax
    jmp 4b
.pushsection __ex_table, "a"
    .long 1b - .
    .long 3b - .
    .long 2
.popsection
"""
# A TDG.VP.VMCALL in miniature: a constant bitmap exposing R10..R15, a
# panic on a nonzero TDCALL status, R10 -> RAX.
COSIM_HYPERCALL = f"""
.text
.globl minihc
minihc:
    pushq %r12
    pushq %rdi
    movq 0(%rdi), %r8
    movq 8(%rdi), %r10
    movq 16(%rdi), %r12
    xorl %eax, %eax
    movl ${abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST:#x}, %ecx
    tdcall
    testq %rax, %rax
    jnz 1f
    popq %rdi
    movq %r10, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r10, %rax
    xorl %r10d, %r10d
    xorl %r11d, %r11d
    popq %r12
    ret
1:  call __tdx_hypercall_failed
"""
M64 = (1 << 64) - 1
NATIVE_FLAGS = ("cf", "pf", "af", "zf", "sf", "of", "df", "if")
NATIVE_OUTCOME = {"completion": Outcome.COMPLETION, "vmfailinvalid": Outcome.VMFAILINVALID,
                  "fault-ud": Outcome.FAULT_UD, "fault-gp": Outcome.FAULT_GP}
NATIVE_END = {PathEnd.RETURNED: "returned", PathEnd.PANIC: "panic", PathEnd.OOPS: "oops"}


def random_value(rng) -> int:
    """Random 64-bit values with random bit density, and edge values."""
    if rng.randrange(8) == 0:
        return rng.choice([0, M64, 1 << 63, (1 << 63) - 1, 1 << 31, 0xFF])
    density = rng.random()
    return sum(1 << bit for bit in range(64) if rng.random() < density)


class Pinned:
    """The values of a run's terms for one native case: entry registers,
    flags and memory as the harness sets them (its fill patterns included)
    and, per path, the module's values as the case's script gives them.
    A term that stays symbolic depends on a value the SDM leaves undefined
    and has the value ``None``."""

    def __init__(self, entry, case, native):
        self.case = case
        self.pairs = [(entry.regs[name], q(value)) for name, value in case.entry_regs().items()]
        self.pairs += [(entry.flags[name], z3.BitVecVal(case.flags.get(name, 0), 1)) for name in NATIVE_FLAGS]
        address = z3.BitVec("address", 64)
        byte = z3.If(bv.ult(address - native.STACK_BASE, q(native.STACK_SIZE)),
                     z3.BitVecVal(case.stack_fill, 8),
                     z3.If(bv.ult(address - native.DATA_BASE, q(native.DATA_SIZE)),
                           z3.BitVecVal(case.data_fill, 8), z3.BitVecVal(0, 8)))
        for start, data in case.memory.items():   # each region as one wide constant
            width = 8 * len(data)
            offset = bv.zext_to(width, address - q(start)) * z3.BitVecVal(8, width)
            region = bv.extract(7, 0, bv.lshr(z3.BitVecVal(int.from_bytes(data, "little"), width), offset))
            byte = z3.If(bv.ult(address - q(start), q(len(data))), region, byte)
        self.pairs.append((entry.memory, z3.Lambda([address], byte)))

    def values(self, path, terms: list) -> list:
        functions = []
        for event, behaviour in zip(path.events, self.case.tdx_script):
            if event.status is not None:
                outputs = {**self.case.entry_regs(), **behaviour.outputs}
                functions.append((event.status.decl(), q(behaviour.status)))
                functions += [(term.decl(), q(outputs[name])) for name, term in event.outputs.items()]
                functions += [(flag.decl(), z3.BitVecVal(behaviour._effective_flags()[name], 1))
                              for name, flag in event.flags.items() if is_module_value(flag)]
        return self._values(terms, functions)

    def _values(self, terms: list, functions: list) -> list:
        # one substitution for all terms: substituting is what costs
        term = z3.substitute(z3.Concat(*terms) if len(terms) > 1 else terms[0], *self.pairs)
        term = z3.simplify(z3.substitute_funs(term, *functions) if functions else term)
        if z3.is_bv_value(term):
            whole, result = term.as_long(), []
            for part in reversed(terms):
                result.append(whole & ((1 << part.size()) - 1))
                whole >>= part.size()
            return result[::-1]
        if len(terms) == 1:
            return [None]
        return self._values(terms[:1], functions) + self._values(terms[1:], functions)


def is_module_value(term) -> bool:
    """An application of one of the module's uninterpreted functions."""
    return z3.is_app(term) and term.decl().kind() == z3.Z3_OP_UNINTERPRETED and term.num_args() > 0


POINTER_REGISTERS = ("rdi", "rsi", "r9")
"""Argument registers that point to a struct in some wrapper: each gets its
own 128-byte region of random bytes (usually; sometimes a small number)."""


def cosimulate(files, function: str, cases_per_outcome: int, seed: int, front_end=None) -> int:
    """Run ``function`` both ways and compare; the number of cases compared."""
    from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
    from model import native

    front_end = front_end or FrontEndOptions()
    paths = execute_function(load_program(files, front_end), function)
    program = native.NativeProgram.build(expand_to_assembly(files, front_end), function)
    rng = random.Random(seed)
    outputs = {}   # per kind: the registers the module may change, from the model
    for path in paths:
        for event in path.events:
            outputs.setdefault(event.kind, set()).update(event.outputs)
    behaviours = {
        Outcome.COMPLETION: lambda kind: native.TdxBehaviour.completion(
            0 if rng.random() < 0.5 else random_value(rng),
            {name: random_value(rng) for name in sorted(outputs.get(kind, ()))}),
        Outcome.VMFAILINVALID: lambda kind: native.TdxBehaviour.vmfailinvalid(),
        Outcome.FAULT_UD: lambda kind: native.TdxBehaviour.fault(6),
        Outcome.FAULT_GP: lambda kind: native.TdxBehaviour.fault(13),
    }
    plans = sorted({(p.events[0].kind, p.outcomes[0]) if p.events else (None, None) for p in paths},
                   key=str)
    cases = []
    for kind, outcome in plans:
        for _ in range(cases_per_outcome):
            regs = {name: random_value(rng) for name in GPR64 if name != "rsp"}
            memory = {}
            for number, name in enumerate(POINTER_REGISTERS):
                address = native.ARGS_ADDRESS + 0x400 * number
                memory[address] = bytes(rng.getrandbits(8) for _ in range(128))
                regs[name] = address if rng.random() < 0.9 else rng.randrange(4)
            flags = {name: rng.getrandbits(1) for name in NATIVE_FLAGS}
            script = [] if kind is None else [behaviours[outcome](kind)]
            cases.append(native.NativeCase(regs=regs, flags=flags, memory=memory, tdx_script=script))
    observed = {id(path): observables(path, [(start, len(data)) for start, data in cases[0].memory.items()])
                for path in paths}
    compared = 0
    for case, result in zip(cases, program.run(cases)):
        if result.end == "crash":   # e.g. a small number used as a pointer: outside the model
            continue
        pinned = Pinned(paths[0].entry, case, native)
        outcomes = tuple(NATIVE_OUTCOME[event.outcome] for event in result.events)
        taken = [p for p in paths
                 if p.outcomes == outcomes and pinned.values(p, [bv.from_bool(p.condition)]) == [1]]
        assert len(taken) == 1, (case, result)
        (path,) = taken
        where = (function, path.outcomes, case)
        assert NATIVE_END.get(path.end) == result.end, where
        names, terms = observed[id(path)]
        predicted = dict(zip(names, pinned.values(path, terms)))
        assert {name: predicted["reg", name] for name in GPR64} == result.regs, where
        for start, data in case.memory.items():
            assert predicted["memory", start].to_bytes(len(data), "little") == result.memory[start], where
        for index, seen in enumerate(result.events):
            assert {name: predicted["seen", index, name] for name in GPR64} == seen.regs, where
        flags = pinned.values(path, [path.state.flags[name] for name in NATIVE_FLAGS])
        for name, flag in zip(NATIVE_FLAGS, flags):
            if flag is not None:   # else a value the SDM leaves undefined
                assert flag == result.flags[name], (name, where)
        compared += 1
    return compared


def observables(path, regions) -> tuple[list, list]:
    """What the comparison looks at on ``path``, as (names, terms): final
    registers, the memory regions, the registers each TDX instruction saw."""
    named = [(("reg", name), path.state.regs[name]) for name in GPR64]
    named += [(("memory", start), path.state.load(q(start), size)) for start, size in regions]
    named += [(("seen", index, name), event.inputs[name])
              for index, event in enumerate(path.events) for name in GPR64]
    return [name for name, _ in named], [term for _, term in named]


@pytest.mark.parametrize("text, function", [(COSIM_WRAPPER, "mini"), (COSIM_HYPERCALL, "minihc")],
                         ids=["host-wrapper", "hypercall"])
def test_wrapper_paths_predict_what_the_cpu_does(tmp_path, text, function):
    from model import native

    if native.native_available() is not None:
        pytest.skip(native.native_available())
    from grammar.frontend import FrontEndOptions
    source = tmp_path / f"{function}.S"
    source.write_text(text)
    compared = cosimulate([str(source)], function, 25, 2024, FrontEndOptions(use_shims=False))
    plans = 4 if function == "mini" else 1
    assert compared >= plans * 25 * 0.7
