"""The symbolic executor, the TDX instruction models and the exception table.

Small AT&T snippets (parsed by the real instruction parser, one function per
pretend file ``<name>.S``) run through the real lifter and symbolic
interpreter, and the resulting paths are checked with Z3: every claim below
is an obligation the solver proves (or refutes) on the path.
"""
from __future__ import annotations

import dataclasses
import textwrap

import pytest
import z3

from grammar import ast
from grammar.parser import parse_instruction
from grammar.source import Origin
from model import abi, bv, ir
from model.executor import ExecutorOptions, Path, PathEnd, Solver, _nearby_witness, execute_function
from model.extable import ExceptionTable, ExtableError
from model.outcomes import Verdict
from model.lift import lift
from model.symbolic import SymbolicState
from model.provenance import CalleeResult, EntryValue, ModuleFunction, ReturnAddress, SymbolAddress, Undefined
from model.tdx import ARITHMETIC_FLAGS, EFFECTS, KINDS, Outcome, TdxModel, outcome_changes
from model.transfers import loads_of



class Source:
    """Builds a program from AT&T text, one function at a time: each line is
    a label (``name:``), an instruction, or blank; origins are
    ``<function>.S:<line>``, counting from the first line of the text."""

    def __init__(self):
        self.functions: list[ast.Function] = []
        self.extable: list[ast.ExtableEntry] = []
        self.outside: list[str] = []

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
        labels.update({name: (None, -1) for name in self.outside})   # code labels outside every function
        return ast.Program(tuple(f"{f.name}.S" for f in self.functions), tuple(self.functions),
                           tuple(self.extable), labels)


TDX_OPTIONS = {field.name for field in dataclasses.fields(TdxModel)} | {"module_namespace"}


def run(source: Source, name: str, **options) -> list:
    """Every path of ``name``; the options of the TDX model (its fields,
    ``module_namespace`` for its namespace) go to it, the rest to the executor."""
    tdx = {("namespace" if key == "module_namespace" else key): options.pop(key)
           for key in set(options) & TDX_OPTIONS}
    return execute_function(source.program(), name, ExecutorOptions(tdx=TdxModel(**tdx), **options))


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


# --- leaving the function's code ---------------------------------------------------

def test_running_past_the_last_instruction_falls_through_to_what_follows():
    s = Source()
    s.function("f", """
        movq $1, %rax
        nop
    """)
    s.function("g", "ret")
    (path,) = run(s, "f")
    assert path.end is PathEnd.FALLTHROUGH and path.where == Origin("f.S", 2)
    assert path.leaves_to == "past the end of 'f' into what follows it in section .text; " \
                             "the next function there is 'g'"
    assert "f.S:2:1" in path.detail and holds(path, path.state.regs["rax"] == 1)
    (last,) = run(s, "g")
    assert last.end is PathEnd.RETURNED
    s = Source()
    s.function("g", "nop")
    (alone,) = run(s, "g")
    assert alone.end is PathEnd.FALLTHROUGH and alone.leaves_to.endswith("section .text")


def test_a_jump_to_the_end_or_outside_every_function_falls_through_there():
    s = Source()
    s.function("f", """
        testq %rdi, %rdi
        je end
        cmpq $1, %rdi
        je stray
        ret
    end:
    """)
    s.outside.append("stray")
    paths = run(s, "f")
    ends = sorted((p.end.value, p.where.line, p.leaves_to) for p in paths)
    assert ends == [("fallthrough", 2, "past the end of 'f' into what follows it in section .text"),
                    ("fallthrough", 4, "to 'stray', code outside every function"),
                    ("returned", 5, "")]
    # each path that leaves is its own (never merged): its condition says which
    (at_end,) = [p for p in paths if p.where.line == 2]
    assert holds(at_end, at_end.entry.regs["rdi"] == 0)


def test_a_fixup_outside_every_function_falls_through_but_a_call_there_is_unsupported():
    s = Source()
    s.function("f", """
    insn:
        ud2
        ret
    """)
    s.outside.append("recover")
    s.fault_entry("insn", "recover")
    (path,) = run(s, "f")
    assert path.end is PathEnd.FALLTHROUGH and path.leaves_to == "to 'recover', code outside every function"
    assert holds(path, path.state.regs["rax"] == abi.TRAP_UD)
    s = Source()
    s.function("f", "call stray\nret")
    s.outside.append("stray")
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and "code outside every function" in path.detail


def test_a_jump_into_another_function_is_followed():
    s = Source()
    s.function("g", """
        movq $7, %rax
    middle:
        ret
    """)
    s.function("f", "jmp middle")
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED and holds(path, path.state.regs["rax"] == path.entry.regs["rax"])


def test_padding_after_ret_and_ends_that_never_return_do_not_fall_through():
    s = Source()
    s.function("padded", "ret\nint3")
    s.function("trapped", "ud2")
    s.function("panics", "call __tdx_hypercall_failed")
    s.function("tail", "jmp elsewhere")
    assert [p.end for p in run(s, "padded")] == [PathEnd.RETURNED]
    assert [p.end for p in run(s, "trapped")] == [PathEnd.OOPS]
    assert [p.end for p in run(s, "panics")] == [PathEnd.PANIC]
    assert [p.end for p in run(s, "tail")] == [PathEnd.RETURNED]


def test_an_external_call_as_the_last_instruction_is_unsupported_not_a_fall_through():
    s = Source()
    s.function("g", "ret")
    s.function("f", """
        testq %rdi, %rdi
        je last
        call g
    last:
        call panic
    """)
    paths = run(s, "f")
    assert {p.end for p in paths} == {PathEnd.UNSUPPORTED}
    assert all("call to panic at f.S:5:1 is the function's last instruction" in p.detail for p in paths)
    s = Source()
    s.function("g", "ret")
    s.function("f", "call g")
    (path,) = run(s, "f")
    assert path.end is PathEnd.FALLTHROUGH   # the model ran g: it returns


# --- stores into code ------------------------------------------------------------------

STORES_INTO_CODE = ["movq %rax, f(%rip)", "movq %rax, here+8(%rip)",
                    "leaq here(%rip), %rdx\nmovl %eax, 8(%rdx,%rcx,4)",
                    "leaq here(%rip), %rdx\nmovq %rax, 16(%rdx)",
                    "leaq f(%rip), %rdx\nmovq %rdx, %rsi\naddq $3, %rsi\nmovb %al, (%rsi)",
                    # on one of two merged paths only
                    "leaq -8(%rsp), %rdx\ntestq %rdi, %rdi\nje join\nleaq here(%rip), %rdx\njoin:\nmovq %rax, (%rdx)"]


@pytest.mark.parametrize("store", STORES_INTO_CODE)
def test_a_store_into_code_is_unsupported_and_names_the_label(store):
    s = Source()
    s.function("f", f"here:\n{store}\nret")
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and path.detail.startswith("store into code: ")
    assert ("'f'" in path.detail or "'here'" in path.detail) and "section .text" in path.detail
    assert path.where.line == len(store.splitlines()) + 1
    assert not [a for a in path.accesses if a.kind == "write"]   # it ended before writing


def test_loads_from_code_and_stores_through_pointers_read_there_are_ordinary():
    s = Source()
    s.function("f", """
    table:
        movq table+8(%rip), %rdx
        movq %rax, (%rdx)
        movq f(%rip), %rax
        ret
    """)
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED
    s = Source()
    s.function("f", "movq %rax, data(%rip)\nret")
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED   # not a label of code: ordinary memory


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


def test_preconditions_prune_paths_that_break_them():
    # g writes through RDI: only an overlap with g's return-address slot
    # sends its ret astray, and the precondition rules that out.
    s = Source()
    s.function("g", """
        movq %rsi, (%rdi)
        ret
    """)
    s.function("f", """
        call g
        ret
    """)
    assert PathEnd.UNSUPPORTED in {p.end for p in run(s, "f")}
    entry = SymbolicState.fresh("entry")
    rsp, rdi = entry.regs["rsp"], entry.regs["rdi"]
    no_wrap = z3.And(bv.ult(rdi, rdi + 8), bv.ult(rsp - 64, rsp), bv.ult(rsp, rsp + 8))
    apart = z3.And(no_wrap, z3.Or(bv.ule(rsp + 8, rdi), bv.ule(rdi + 8, rsp - 64)))
    paths = run(s, "f", preconditions=(apart,))
    assert [p.end for p in paths] == [PathEnd.RETURNED]
    assert holds(paths[0], apart)


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
    assert holds(path, z3.Implies(bv.ule(bv.const(16, 64), rsp0), under[1]))


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


# --- what an interrupt would find --------------------------------------------------------

def test_interrupt_points_hold_rbp_memory_and_the_frame_before_each_instruction():
    s = Source()
    s.function("g", """
        push %rbp
        mov %rsp, %rbp
        pop %rbp
        ret
    """)
    s.function("f", """
        push %rbp
        mov %rsp, %rbp
        call g
        pop %rbp
        ret
    """)
    (path,) = run(s, "f")
    rsp, rbp = path.entry.regs["rsp"], path.entry.regs["rbp"]
    assert [(p.origin.file, p.origin.line) for p in path.points] == [
        ("f.S", 1), ("f.S", 2), ("f.S", 3), ("g.S", 1), ("g.S", 2), ("g.S", 3), ("g.S", 4), ("f.S", 4), ("f.S", 5)]
    assert [p.call for p in path.points] == [False, False, True] + [False] * 6
    first, framed, call, callee_entry, callee_framed = path.points[:5]
    # the state *before* each instruction: RBP is the caller's until `mov %rsp, %rbp` has run
    assert first.rbp.eq(rbp) and framed.rbp.eq(rbp) and holds(path, call.rbp == rsp - 8)
    assert holds(path, call.memory.load(rsp - 8, 8) == rbp)
    assert all(p.frame_rsp.eq(rsp) and p.frame_rbp.eq(rbp) for p in path.points[:3] + path.points[7:])
    # the inlined callee's entry: the slot its call pushed, the RBP at the call
    for point in path.points[3:7]:
        assert holds(path, z3.And(point.frame_rsp == rsp - 16, point.frame_rbp == rsp - 8))
    assert holds(path, callee_framed.memory.load(callee_framed.frame_rsp - 8, 8) == rsp - 8)
    assert holds(path, path.points[-1].rbp == rbp)


def test_the_point_after_a_tdx_instruction_sees_what_the_module_left():
    s = Source()
    s.function("f", """
        movq %rdi, %rax
        seamcall
        ret
    """)
    for firmware, changed in (("spec", False), ("clobbers-rbp", True)):
        completion = by_outcome(run(s, "f", firmware=firmware))[(Outcome.COMPLETION,)]
        after = completion.points[2]
        assert after.origin.line == 3
        assert possible(completion, after.rbp != completion.entry.regs["rbp"]) is changed


def test_interrupt_points_of_merged_paths_keep_their_guards():
    s = Source()
    s.function("f", """
        testq %rdi, %rdi
        je skip
        movq %rsi, %rbp
    skip:
        ret
    """)
    (path,) = run(s, "f")
    lines = [p.origin.line for p in path.points]
    assert sorted(lines) == [1, 2, 3, 5] and lines[-1] == 5
    clobber = next(p for p in path.points if p.origin.line == 3)
    assert possible(path, clobber.guard) and possible(path, z3.Not(clobber.guard))
    ret = path.points[-1]
    assert z3.is_true(ret.guard)
    # at the join, RBP is the clobbered value on the side that ran line 3 only
    assert holds(path, z3.Implies(clobber.guard, ret.rbp == path.entry.regs["rsi"]))
    assert holds(path, z3.Implies(z3.Not(clobber.guard), ret.rbp == path.entry.regs["rbp"]))


def test_every_tdx_outcome_has_one_effect_both_interpreters_read():
    assert set(EFFECTS) == {(kind, outcome) for kind in KINDS for outcome in Outcome}
    registers, flags = outcome_changes("seamcall", Outcome.VMFAILINVALID, lambda value, width: value)
    assert registers == {} and flags == {"cf": 1, "pf": 0, "af": 0, "zf": 0, "sf": 0, "of": 0}
    registers, flags = outcome_changes("tdcall", Outcome.COMPLETION, lambda value, width: value,
                                       outputs={"r10": 5}, status=0, module_flags={"cf": None})
    assert registers == {"r10": 5, "rax": 0} and flags == {"cf": None}


def test_each_fresh_value_has_a_provenance_record_by_name():
    s = Source()
    s.function("g", "ret")
    s.function("f", """
        leaq table(%rip), %rax
        call g
        call memset
        shlq %cl, %rdx
        tdcall
        ret
    """)
    (path,) = run(s, "f", outcomes=COMPLETION_ONLY)
    sources = dict(path.provenance)
    assert sources["symbol_table"] == SymbolAddress("table")
    assert sources["return_f_1"] == ReturnAddress(("f", 1))
    assert sources["entry_rsp"] == EntryValue("rsp")
    callee = {name: source for name, source in sources.items() if isinstance(source, CalleeResult)}
    assert {source.register for source in callee.values()} == set(abi.CALLER_SAVED) | set(ARITHMETIC_FLAGS)
    assert all(source.target == "memset" for source in callee.values())
    assert any(isinstance(source, Undefined) for source in sources.values())
    module = {source.what for source in sources.values() if isinstance(source, ModuleFunction)}
    assert "status" in module and "flag_cf" in module
    assert not any(source.per_run for source in sources.values()
                   if isinstance(source, (EntryValue, SymbolAddress, ModuleFunction)))


def test_map_terms_rewrites_every_record_and_carries_the_provenance_along():
    s = Source()
    s.function("f", """
        call memset
        movq %rax, (%rbx)
        ret
    """)
    (path,) = run(s, "f")
    name = next(name for name, source in path.provenance
                if isinstance(source, CalleeResult) and source.register == "rax")
    renamed = path.map_terms(lambda term: z3.substitute(term, (bv.variable(name, 64), bv.variable("other", 64))),
                             {name: "other"})
    assert renamed.provenance.of("other") == path.provenance.of(name) and renamed.provenance.of(name) is None
    assert renamed.state.regs["rax"].eq(bv.variable("other", 64))
    stored = renamed.state.load(renamed.entry.regs["rbx"], 8)
    assert z3.is_true(z3.simplify(z3.substitute(stored, (bv.variable("other", 64), bv.const(9, 64))) == 9))


# --- the stepping loop's bookkeeping -----------------------------------------------

def _every_load(node) -> list:
    """A plain walk of an IR tree: every load, once per place it occurs, outermost first."""
    found = [node] if isinstance(node, ir.Load) else []
    for item in dataclasses.fields(node):
        child = getattr(node, item.name)
        if dataclasses.is_dataclass(child) and not isinstance(child, type):
            found += _every_load(child)
    return found


@pytest.mark.parametrize("text", ["addq 8(%rdi), %rax", "xchgq %rax, 16(%rsp)", "popq %rbx", "ret",
                                  "cmpq $3, (%rdi,%rcx,8)", "movq (%rsi), %rdx", "addl %eax, (%rdi)"])
def test_loads_of_a_step_are_every_occurrence_outermost_first(text):
    step = lift(parse_instruction(text, Origin("t.S", 1), {}))
    roots = list(step.effects) + ([step.control] if isinstance(step.control, (ir.Branch, ir.Return)) else [])
    expected = [load for root in roots for load in _every_load(root)]
    found = loads_of(step)
    assert len(found) == len(expected) and all(a is b for a, b in zip(found, expected))


def test_loads_of_counts_a_shared_load_at_each_place():
    load = ir.Load(ir.Reg("rdi"), 64)
    step = ir.Step((ir.SetReg("rax", load), ir.SetReg("rbx", ir.Binary(ir.BinOp.ADD, load, load))))
    assert [found is load for found in loads_of(step)] == [True, True, True]


def test_a_path_with_a_field_replaced_leaves_the_original_and_rejects_unknown_fields():
    entry = SymbolicState.fresh("entry")
    path = Path(("f", 0), (), entry, bv.variable("x", 8))
    moved = path.with_(location=("f", 1), assumptions=("a",))
    assert (moved.location, moved.assumptions, moved.state) == (("f", 1), ("a",), entry)
    assert (path.location, path.assumptions) == (("f", 0), ())
    with pytest.raises(TypeError, match="locaton"):
        path.with_(locaton=("f", 2))


def test_a_model_next_to_the_witness_shows_the_other_side_and_never_an_infeasible_one():
    x = bv.variable("x", 64)
    status = z3.Function("status", z3.BitVecSort(64), z3.BitVecSort(64))
    conditions = (bv.ult(x, bv.const(100, 64)),)
    solver = z3.Solver()
    solver.add(*conditions, status(x) == 0, z3.Extract(0, 0, x) == 0)
    assert solver.check() == z3.sat
    model = solver.model()
    for side in (status(x) != 0, z3.Extract(0, 0, x) == 1):
        other = _nearby_witness(conditions, side, model)
        assert other is not None and z3.is_true(other.eval(side)) and z3.is_true(other.eval(conditions[0]))
    assert _nearby_witness(conditions, bv.ult(bv.const(200, 64), x), model) is None


def test_a_held_context_constrains_only_the_scopes_that_start_with_it():
    x = z3.BitVec("held_x", 8)
    solver = Solver(10.0, (z3.ULT(x, 100),))
    one, two = x == 1, x == 2
    with solver.holding((one,)):
        with solver.scope((one,)) as ask:
            assert ask(two)[0] is Verdict.UNSAT and ask()[0] is Verdict.SAT
        with solver.scope((solver.preconditions[0], one, z3.UGT(x, 0))) as ask:
            answer, model = ask()
            assert answer is Verdict.SAT and model.eval(x).as_long() == 1
            with solver.scope((two,)) as inner:         # nested: on top of the outer scope, hold and all
                assert inner()[0] is Verdict.UNSAT
        with solver.scope((two,)) as ask:               # not the hold: it ends
            answer, model = ask()
            assert answer is Verdict.SAT and model.eval(x).as_long() == 2
        with solver.scope((one,)) as ask:
            assert ask(two)[0] is Verdict.UNSAT
        assert solver.check((two,))[0] is Verdict.SAT
    assert solver.check((two,))[0] is Verdict.SAT and solver.check((x == 200,))[0] is Verdict.UNSAT
    with solver.holding((one,)):
        with solver.scope((one,)) as ask:
            assert ask(two)[0] is Verdict.UNSAT
    assert solver.check((two,))[0] is Verdict.SAT              # the hold, asserted, is gone with it
