"""The symbolic executor, the TDX instruction models and the exception table.

Small programs are built as AST nodes (one instruction per source line of a
pretend file ``t.S``), run through the real lifter and symbolic interpreter,
and the resulting paths are checked with Z3: every claim below is an
obligation the solver proves (or refutes) on the path, never a string match.
"""
from __future__ import annotations

import z3
import pytest

from grammar import ast
from grammar.source import Origin
from model import abi
from model.executor import ExecutorOptions, PathEnd, execute_function
from model.extable import ExceptionTable, ExtableError
from model.tdx import Outcome

R, I, T, M = ast.Register, ast.Immediate, ast.Target, ast.Memory
FILE = "t.S"


class Source:
    """Builds a program: each item gets the next line of ``t.S``."""

    def __init__(self):
        self.line = 0
        self.functions: list[ast.Function] = []
        self.extable: list[ast.ExtableEntry] = []

    def _origin(self) -> Origin:
        self.line += 1
        return Origin(FILE, self.line)

    def ins(self, base: str, *operands, width: int | None = None) -> ast.Instruction:
        return ast.Instruction(base, base, tuple(operands), self._origin(), width)

    def label(self, name: str) -> ast.Label:
        return ast.Label(name, self._origin())

    def function(self, name: str, *items) -> None:
        self.functions.append(ast.Function(name, self._origin(), ".text", tuple(items)))

    def fault_entry(self, from_label: str, to_label: str, kind: str = "fault") -> None:
        self.extable.append(ast.ExtableEntry(from_label, to_label, kind, self._origin()))

    def program(self) -> ast.Program:
        labels = {item.name: (function.name, index)
                  for function in self.functions
                  for index, item in enumerate(function.items) if isinstance(item, ast.Label)}
        return ast.Program((FILE,), tuple(self.functions), tuple(self.extable), labels)


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
    s.function("f",
               s.ins("test", R("rdi"), R("rdi"), width=64), s.ins("je", T("zero")),
               s.ins("mov", I(1), R("rax"), width=64), s.ins("ret"),
               s.label("zero"), s.ins("mov", I(2), R("rax"), width=64), s.ins("ret"))
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
    # rax = rdi & 1 can never be 2, but only a solver query says so.
    s = Source()
    s.function("f",
               s.ins("mov", R("rdi"), R("rax"), width=64), s.ins("and", I(1), R("rax"), width=64),
               s.ins("add", R("rax"), R("rax"), width=64),
               s.ins("cmp", I(4), R("rax"), width=64), s.ins("je", T("never")),
               s.ins("ret"),
               s.label("never"), s.ins("ud2"))
    paths = run(s, "f")
    assert [p.end for p in paths] == [PathEnd.RETURNED]
    assert all(origin.line != 8 for origin in paths[0].trace)


def diamonds(s: Source, count: int) -> None:
    """``count`` independent if-then blocks: rax counts the clear low bits of rdi."""
    items = [s.ins("xor", R("eax"), R("eax"), width=32)]
    for k in range(count):
        items += [s.ins("bt", I(k), R("rdi"), width=64), s.ins("jc", T(f"skip{k}")),
                  s.ins("add", I(1), R("rax"), width=64), s.label(f"skip{k}")]
    items.append(s.ins("ret"))
    s.function("f", *items)


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
    adds = [origin for origin in lines if origin.line % 4 == 0]
    assert len(adds) == 18


def test_without_merging_diamonds_multiply():
    s = Source()
    diamonds(s, 5)
    assert len(run(s, "f", merge=False)) == 32
    assert len(run(s, "f")) == 1


# --- loops -------------------------------------------------------------------------

def counted_loop(s: Source, count: int) -> None:
    s.function("f",
               s.ins("mov", I(count), R("ecx"), width=32),
               s.label("again"), s.ins("dec", R("ecx"), width=32), s.ins("jne", T("again")),
               s.ins("ret"))


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
    s.function("f", s.label("top"), s.ins("dec", R("rdi"), width=64), s.ins("jne", T("top")), s.ins("ret"))
    paths = run(s, "f", loop_bound=4)
    ends = sorted(p.end.value for p in paths)
    assert ends.count("bound") == 1 and ends.count("returned") >= 1


# --- path ends ----------------------------------------------------------------------

def test_call_to_never_returning_function_is_panic():
    s = Source()
    s.function("f", s.ins("test", R("rax"), R("rax"), width=64), s.ins("jne", T("fail")),
               s.ins("ret"), s.label("fail"), s.ins("call", T("__tdx_hypercall_failed")))
    paths = run(s, "f")
    ends = {p.end for p in paths}
    assert ends == {PathEnd.RETURNED, PathEnd.PANIC}
    panic = next(p for p in paths if p.end is PathEnd.PANIC)
    assert holds(panic, panic.entry.regs["rax"] != 0)
    assert "__tdx_hypercall_failed" in panic.detail
    ends = {p.end for p in run(s, "f", never_returning=frozenset())}
    assert ends == {PathEnd.RETURNED, PathEnd.UNSUPPORTED}   # the call returns, then falls off the end


def test_unsupported_instruction_ends_the_path_with_its_name():
    s = Source()
    s.function("f", s.ins("jmp", ast.Indirect(R("rax"))))
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and "jmp" in path.detail and path.where.line == 1


def test_falling_off_the_end_is_unsupported():
    s = Source()
    s.function("f", s.ins("nop"))
    (path,) = run(s, "f")
    assert path.end is PathEnd.UNSUPPORTED and "falls off" in path.detail


def test_int3_and_unhandled_ud2_are_oops():
    s = Source()
    s.function("f", s.ins("int3"))
    s.function("g", s.ins("ud2"))
    assert [p.end for p in run(s, "f")] == [PathEnd.OOPS]
    (path,) = run(s, "g")
    assert path.end is PathEnd.OOPS and not path.faults[0].handled


def test_ud2_with_fault_entry_puts_trap_in_rax_and_resumes():
    s = Source()
    s.function("f", s.label("insn"), s.ins("ud2"), s.label("fixup"), s.ins("ret"))
    s.fault_entry("insn", "fixup")
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED and holds(path, path.state.regs["rax"] == abi.TRAP_UD)
    assert path.faults[0].handled and path.faults[0].fixup == "fixup"


# --- calls -------------------------------------------------------------------------

def test_internal_call_is_inlined_and_returns_after_the_call():
    s = Source()
    s.function("g", s.ins("mov", I(5), R("eax"), width=32), s.ins("ret"))
    s.function("f", s.ins("call", T("g")), s.ins("add", I(1), R("rax"), width=64), s.ins("ret"))
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED
    assert holds(path, path.state.regs["rax"] == 6)
    assert holds(path, path.state.regs["rsp"] == path.entry.regs["rsp"] + 8)
    assert holds(path, path.returned_to == path.entry.load(path.entry.regs["rsp"], 8))
    writes = [a for a in path.accesses if a.kind == "write"]
    assert len(writes) == 1 and holds(path, writes[0].address == path.entry.regs["rsp"] - 8)


def test_call_depth_bound():
    s = Source()
    s.function("f", s.ins("call", T("f")), s.ins("ret"))
    paths = run(s, "f", call_depth=3)
    assert [p.end for p in paths] == [PathEnd.BOUND] and paths[0].bound == 3


def test_external_call_clobbers_caller_saved_and_is_an_assumption():
    s = Source()
    s.function("f", s.ins("mov", I(7), R("rbx"), width=64), s.ins("mov", I(7), R("rdi"), width=64),
               s.ins("call", T("memset")), s.ins("ret"))
    (path,) = run(s, "f")
    regs = path.state.regs
    assert holds(path, regs["rbx"] == 7)
    assert possible(path, regs["rdi"] != 7)
    assert holds(path, regs["rsp"] == path.entry.regs["rsp"] + 8)
    assert holds(path, path.state.flags["df"] == 0)
    assert any("memset" in text for text in path.assumptions)


def test_return_thunk_is_a_return_and_jmp_to_a_function_is_a_tail_call():
    s = Source()
    s.function("g", s.ins("mov", I(3), R("eax"), width=32), s.ins("jmp", T("__x86_return_thunk")))
    s.function("f", s.ins("jmp", T("g")))
    (path,) = run(s, "f")
    assert path.end is PathEnd.RETURNED and holds(path, path.state.regs["rax"] == 3)
    assert holds(path, path.state.regs["rsp"] == path.entry.regs["rsp"] + 8)


def test_inlined_ret_to_a_clobbered_slot_is_unsupported():
    s = Source()
    s.function("g", s.ins("mov", R("rdi"), M(base=R("rsp"), width=64), width=64), s.ins("ret"))
    s.function("f", s.ins("call", T("g")), s.ins("ret"))
    ends = {p.end for p in run(s, "f")}
    assert PathEnd.UNSUPPORTED in ends


# --- SEAMCALL ------------------------------------------------------------------------

def seamcall_function(s: Source, with_entry: bool = True, kind: str = "fault") -> None:
    s.function("f", s.ins("mov", R("rdi"), R("rax"), width=64), s.label("call"), s.ins("seamcall"),
               s.label("done"), s.ins("ret"))
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
    ends = {path.outcomes: path.end for path in run(s, "f")}
    assert ends[(Outcome.FAULT_UD,)] is ends[(Outcome.FAULT_GP,)] is PathEnd.OOPS
    assert ends[(Outcome.COMPLETION,)] is PathEnd.RETURNED
    assert all(not site.handled for path in run(s, "f") for site in path.faults)


def test_default_type_entry_resumes_without_writing_rax():
    s = Source()
    seamcall_function(s, kind="default")
    fault = by_outcome(run(s, "f"))[(Outcome.FAULT_GP,)]
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


def test_module_outputs_are_functions_of_the_inputs():
    # Two implementations handing the module the same registers get the same
    # outputs; two calls in sequence, or another namespace, need not.
    s = Source()
    s.function("a", s.ins("mov", R("rdi"), R("rax"), width=64), s.ins("seamcall"), s.ins("ret"))
    s.function("b", s.ins("xchg", R("rdi"), R("rax"), width=64), s.ins("mov", R("rax"), R("rdi"), width=64),
               s.ins("seamcall"), s.ins("ret"))
    s.function("twice", s.ins("seamcall"), s.ins("mov", R("r12"), R("rcx"), width=64), s.ins("seamcall"),
               s.ins("ret"))
    only = {"seamcall": frozenset({Outcome.COMPLETION})}
    (a,) = run(s, "a", outcomes=only)
    (b,) = run(s, "b", outcomes=only)
    assert holds(a, z3.And(a.state.regs["rcx"] == b.state.regs["rcx"], a.state.regs["rax"] == b.state.regs["rax"]))
    (other,) = run(s, "a", outcomes=only, module_namespace="other")
    assert possible(a, a.state.regs["rcx"] != other.state.regs["rcx"])
    (twice,) = run(s, "twice", outcomes=only)
    first, second = twice.events
    assert (first.index, second.index) == (0, 1)
    assert possible(twice, first.outputs["rdx"] != second.outputs["rdx"])


def test_extended_state_preserved_unless_leaf_declared_to_reset():
    s = Source()
    s.function("f", s.ins("mov", I(0x21), R("eax"), width=32), s.ins("seamcall"), s.ins("ret"))
    only = {"seamcall": frozenset({Outcome.COMPLETION})}
    (kept,) = run(s, "f", outcomes=only)
    assert holds(kept, kept.extended == kept.entry_extended)
    (reset,) = run(s, "f", outcomes=only, extended_resets={"seamcall": (0x21,)})
    assert possible(reset, reset.extended != reset.entry_extended)
    (other,) = run(s, "f", outcomes=only, extended_resets={"seamcall": (0x22,)})
    assert holds(other, other.extended == other.entry_extended)


# --- TDCALL ------------------------------------------------------------------------------

def test_tdcall_completes_only_unless_it_may_fault():
    s = Source()
    s.function("f", s.label("call"), s.ins("tdcall"), s.label("done"), s.ins("ret"))
    s.fault_entry("call", "done")
    (path,) = run(s, "f")
    assert path.outcomes == (Outcome.COMPLETION,) and path.faults == ()
    assert len(run(s, "f", tdcall_may_fault=True)) == 3


def vmcall(s: Source, *setup) -> None:
    s.function("f", s.ins("xor", R("eax"), R("eax"), width=32), *setup, s.ins("tdcall"), s.ins("ret"))


def test_vmcall_with_constant_bitmap_exposes_exactly_its_registers():
    s = Source()
    vmcall(s, s.ins("mov", I(abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST), R("ecx"), width=32))
    (path,) = run(s, "f")
    (event,) = path.events
    assert event.bitmap == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST
    exposed = abi.exposed_registers(abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST)
    assert set(event.outputs) == set(exposed)
    for reg in ("rdx", "rbx", "rsi", "rdi", "r8", "r9", "rbp"):
        assert holds(path, path.state.regs[reg] == path.entry.regs[reg])
    for reg in ("r10", "r11"):
        assert possible(path, path.state.regs[reg] != path.entry.regs[reg])
    assert holds(path, path.state.regs["rcx"] == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST)


def test_vmcall_bitmap_known_only_through_the_path_condition():
    s = Source()
    vmcall(s, s.ins("mov", R("rdi"), R("rcx"), width=64),
           s.ins("cmp", I(abi.TDVMCALL_EXPOSE_REGS_MASK), R("rcx"), width=64), s.ins("jne", T("out")))
    s.functions[-1] = ast.Function("f", s.functions[-1].origin, ".text",
                                   s.functions[-1].items + (s.label("out"), s.ins("ret")))
    paths = run(s, "f")
    with_call = [p for p in paths if p.events]
    assert len(with_call) == 1
    assert with_call[0].events[0].bitmap == abi.TDVMCALL_EXPOSE_REGS_MASK
    assert holds(with_call[0], with_call[0].state.regs["rbp"] == with_call[0].entry.regs["rbp"])


def test_unknown_bitmap_or_leaf_means_worst_case():
    s = Source()
    vmcall(s, s.ins("mov", R("rdi"), R("rcx"), width=64))
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None and set(event.outputs) == set(abi.MODULE_WORST_CASE_OUTPUTS)
    s = Source()
    s.function("f", s.ins("mov", I(0xFFCC), R("ecx"), width=32), s.ins("tdcall"), s.ins("ret"))
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None


def test_bitmap_exposing_rsp_is_not_trusted():
    s = Source()
    vmcall(s, s.ins("mov", I(0x10), R("ecx"), width=32))
    (event,) = run(s, "f")[0].events
    assert event.bitmap is None


# --- memory accesses and the exception table ------------------------------------------------

def test_accesses_record_address_width_and_rsp():
    s = Source()
    s.function("f", s.ins("push", R("rbx"), width=64), s.ins("mov", R("eax"), M(disp=-8, base=R("rsp"), width=32),
                                                             width=32),
               s.ins("pop", R("rbx"), width=64), s.ins("ret"))
    (path,) = run(s, "f")
    rsp0 = path.entry.regs["rsp"]
    kinds = [(a.kind, a.width, a.origin.line) for a in path.accesses]
    assert kinds == [("write", 64, 1), ("write", 32, 2), ("read", 64, 3), ("read", 64, 4)]
    below = path.accesses[1]
    assert holds(path, z3.And(below.rsp == rsp0 - 8, below.address == rsp0 - 16))


def test_extable_covers_the_next_instruction_and_rejects_bad_entries():
    s = Source()
    s.function("f", s.label("a"), s.label("b"), s.ins("seamcall"), s.label("end"), s.ins("ret"))
    s.fault_entry("a", "end")
    table = ExceptionTable(s.program())
    assert table.route(("f", 2), 13).rax == 13 and table.route(("f", 4), 6) is None
    s.fault_entry("b", "end")
    with pytest.raises(ExtableError, match="two exception-table entries"):
        ExceptionTable(s.program())
    s = Source()
    s.function("f", s.ins("ret"))
    s.fault_entry("nowhere", "f")
    with pytest.raises(ExtableError, match="undefined label"):
        ExceptionTable(s.program())


def test_unmodelled_extable_type_is_unsupported_not_guessed():
    s = Source()
    seamcall_function(s, kind="uaccess")
    ends = {p.end for p in run(s, "f")}
    assert PathEnd.UNSUPPORTED in ends
