"""The executor's paths against the real CPU (co-simulation).

A wrapper goes through the whole pipeline twice: the front end's program
into the symbolic executor, and the front end's re-emitted assembly into the
native harness (``model.native``), whose SIGILL handler plays the TDX module
and the exception table.  For random entry states and module behaviours, the
one path whose condition the concrete inputs satisfy must predict the CPU's
end, final registers, defined flags, struct memory and the registers the
module saw.  Two miniature wrappers written for this file, then every
fixture wrapper, kernel-tree fixtures with the frame pointer off and on, the
single-file variants and broken wrappers with it on.  By default (set
``TDXPROOF_COSIM_CASES`` to change it) at least 100 cases per wrapper and
TDX outcome are compared for the miniatures and the kernel-tree wrappers
(random cases are added until there are); a variant or broken wrapper is
run on 100 per outcome, of which at least 50 in all must be compared.

The prediction is fast because nothing per case goes through Z3: each
path's condition and observables are compiled once into a Python evaluator
(:mod:`model.zeval`), the path selection and the prediction then cost a few
milliseconds per case.  The first case of every wrapper and outcome is also
predicted the slow way -- the concrete values substituted into the Z3 terms
and ``z3.simplify`` (:class:`Pinned`) -- and the two must agree exactly, on
every candidate path's condition and on every observable.
"""
from __future__ import annotations

import collections
import os
import random
from pathlib import Path

import pytest
import z3

from grammar.ast import GPR64
from model import abi, bv, native, symbolic
from model.executor import ExecutorOptions, PathEnd, execute_function
from model.memory import select_bytes
from model.tdx import Outcome, TdxModel
from model.zeval import Evaluator
from proofs.assumptions import memory_regions

pytestmark = pytest.mark.skipif(native.native_available() is not None,
                                reason=str(native.native_available()))


def q(value: int) -> z3.BitVecRef:
    return z3.BitVecVal(value, 64)


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
COSIM_CASES = int(os.environ.get("TDXPROOF_COSIM_CASES", "100"))
"""Random cases per wrapper and TDX outcome (the miniature and the fixture
runs alike)."""
M64 = (1 << 64) - 1
NATIVE_FLAGS = ("cf", "pf", "af", "zf", "sf", "of", "df", "if")
NATIVE_OUTCOME = {"completion": Outcome.COMPLETION, "vmfailinvalid": Outcome.VMFAILINVALID,
                  "fault-ud": Outcome.FAULT_UD, "fault-gp": Outcome.FAULT_GP}
NATIVE_END = {PathEnd.RETURNED: "returned", PathEnd.PANIC: "panic", PathEnd.OOPS: "oops",
              PathEnd.FALLTHROUGH: "fallthrough"}


def random_value(rng) -> int:
    """Random 64-bit values with random bit density, and edge values."""
    if rng.randrange(8) == 0:
        return rng.choice([0, M64, 1 << 63, (1 << 63) - 1, 1 << 31, 0xFF])
    density = rng.random()
    return sum(1 << bit for bit in range(64) if rng.random() < density)


def entry_memory(case, landing: int) -> dict[int, int]:
    """The bytes the harness writes at entry (the case's memory and the
    return slot) over its fill pattern."""
    assert case.stack_fill == case.data_fill, "one fill pattern: a constant array below the stores"
    slot = case.entry_regs()["rsp"]   # the harness's return address
    return {start + offset: byte for start, data in list(case.memory.items()) + [(slot, landing.to_bytes(8, "little"))]
            for offset, byte in enumerate(data)}


def module_answers(paths, case) -> dict:
    """The module's functions (by declaration) -> their value in this case,
    from the case's script (one TDX instruction per path)."""
    answers = {}
    for path in paths:
        for event, behaviour in zip(path.events, case.tdx_script):
            if event.status is not None and behaviour.outcome == "completion":
                outputs = {**case.entry_regs(), **behaviour.outputs}
                answers[event.status.decl()] = q(behaviour.status)
                answers.update((term.decl(), q(outputs[name])) for name, term in event.outputs.items())
                answers.update((flag.decl(), z3.BitVecVal(behaviour._effective_flags()[name], 1))
                               for name, flag in event.flags.items() if is_module_value(flag))
    return answers


class Pinned:
    """The reference values of a run's terms for one native case, by Z3:
    entry registers, flags and memory as the harness sets them (its fill
    pattern, the case's memory and the return slot) substituted, the
    module's functions replaced by the case's script answers, and
    ``z3.simplify``.  A term that stays symbolic depends on a value the SDM
    leaves undefined and has the value ``None``.  Slow (milliseconds per
    term): it cross-checks :class:`Predicted` on a few cases per run."""

    def __init__(self, paths, case, landing: int):
        entry = paths[0].entry
        self.pairs = [(entry.regs[name], q(value)) for name, value in case.entry_regs().items()]
        self.pairs += [(entry.flags[name], z3.BitVecVal(case.flags.get(name, 0), 1)) for name in NATIVE_FLAGS]
        memory = z3.K(z3.BitVecSort(64), z3.BitVecVal(case.data_fill, 8))
        for address, byte in entry_memory(case, landing).items():
            memory = z3.Store(memory, q(address), z3.BitVecVal(byte, 8))
        self.pairs.append((entry.memory.array, memory))
        self.functions = list(module_answers(paths, case).items())

    def values(self, terms: list) -> list:
        term = z3.substitute(z3.Concat(*terms) if len(terms) > 1 else terms[0], *self.pairs)
        whole = z3.simplify(z3.substitute_funs(term, *self.functions) if self.functions else term)
        if not z3.is_bv_value(whole):   # one evaluation for all, unless some are undefined
            return [self.values([term])[0] if len(terms) > 1 else None for term in terms]
        number, result = whole.as_long(), []
        for term in reversed(terms):
            result.append(number & ((1 << term.size()) - 1))
            number >>= term.size()
        return result[::-1]


class Predicted:
    """The same values as :class:`Pinned`, fast: each path's condition and
    observables compiled once (:class:`model.zeval.Evaluator`) and
    evaluated per case in Python.  The entry constants are bound to the
    case's values, the module's functions to its script answers, every
    other constant (a value the SDM leaves undefined, a return address the
    model names) to unknown (``None``)."""

    def __init__(self, paths, regions):
        entry = paths[0].entry
        self.entry_names = {str(entry.regs[name]): name for name in GPR64}
        self.flag_names = {str(entry.flags[name]): name for name in NATIVE_FLAGS}
        self.memory_name = str(entry.memory.array)
        self.conditions = {id(path): Evaluator([path.condition]) for path in paths}
        self.regions = regions
        self.observed = {id(path): observables(path, regions) for path in paths}   # (names, terms)
        self.compiled = {}   # id(path) -> the names but memory's, their evaluator (final memory last)
        for path in paths:
            named = [(name, term) for name, term in zip(*self.observed[id(path)]) if name[0] != "memory"]
            self.compiled[id(path)] = ([name for name, _ in named],
                                       Evaluator([term for _, term in named] + [path.state.memory.array]))

    def bind(self, case, landing: int, answers: dict) -> tuple[dict, dict]:
        """The case's constants (by name; missing ones are unknown) and the
        module's functions (by name, whatever their arguments)."""
        regs, memory, fill = case.entry_regs(), entry_memory(case, landing), case.data_fill
        constants = {self.memory_name: lambda address: memory.get(address, fill)}
        constants.update((constant, regs[name]) for constant, name in self.entry_names.items())
        constants.update((constant, case.flags.get(name, 0)) for constant, name in self.flag_names.items())
        functions = {decl.name(): (lambda *arguments, number=value.as_long(): number)
                     for decl, value in answers.items()}
        return constants, functions

    @staticmethod
    def _evaluate(evaluator, bound: tuple[dict, dict]) -> list:
        constants, functions = bound
        return evaluator({name: constants.get(name) for name in evaluator.constants}, functions)

    def condition(self, path, bound: tuple[dict, dict]) -> bool | None:
        return self._evaluate(self.conditions[id(path)], bound)[0]

    def values(self, path, bound: tuple[dict, dict]) -> dict:
        """``path``'s observables (as :func:`observables` names them); the
        memory regions read from the final memory array."""
        names, evaluator = self.compiled[id(path)]
        *values, memory = self._evaluate(evaluator, bound)
        predicted = dict(zip(names, values))
        for start, size in self.regions:
            data = None if memory is None else [memory.select(start + offset) for offset in range(size)]
            predicted["memory", start] = None if data is None or None in data else int.from_bytes(bytes(data), "little")
        return predicted

    def cross_check(self, pinned: Pinned, candidates, path, bound: tuple[dict, dict], predicted: dict) -> None:
        """The candidate paths' conditions and ``path``'s observables, as
        evaluated, equal what Z3 simplifies them to (``pinned``)."""
        as_bit = {True: 1, False: 0, None: None}
        for candidate in candidates:
            assert pinned.values([bv.from_bool(candidate.condition)]) == [as_bit[self.condition(candidate, bound)]]
        names, terms = self.observed[id(path)]
        assert dict(zip(names, pinned.values(terms))) == predicted


def is_module_value(term) -> bool:
    """An application of one of the module's uninterpreted functions."""
    return z3.is_app(term) and term.decl().kind() == z3.Z3_OP_UNINTERPRETED and term.num_args() > 0


POINTER_REGISTERS = ("rdi", "rsi", "r9")
"""Argument registers that point to a struct in some wrapper: each gets its
own 128-byte region of random bytes (usually; sometimes a small number)."""


def front_end_views(files, front_end):
    """The program (for the executor) and its re-emitted assembly built for
    the CPU, every function an entry."""
    from grammar.frontend import expand_to_assembly, load_program
    program = load_program(files, front_end)
    names = [function.name for function in program.functions]
    return program, native.NativeProgram.build(expand_to_assembly(files, front_end), names, program=program)


STRUCT_REGIONS = tuple((native.ARGS_ADDRESS + 0x400 * number, 128) for number in range(len(POINTER_REGISTERS)))
"""The argument structs' regions (one per pointer register), compared byte by byte."""


def random_case(rng, function: str, script: list) -> native.NativeCase:
    """Random registers, flags, struct bytes and fill pattern."""
    regs = {name: random_value(rng) for name in GPR64 if name != "rsp"}
    memory = {}
    for name, (address, size) in zip(POINTER_REGISTERS, STRUCT_REGIONS):
        memory[address] = bytes(rng.getrandbits(8) for _ in range(size))
        regs[name] = address if rng.random() < 0.9 else rng.randrange(4)
    flags = {name: rng.getrandbits(1) for name in NATIVE_FLAGS}
    fill = rng.getrandbits(8)
    return native.NativeCase(regs=regs, flags=flags, memory=memory, tdx_script=script,
                             entry=function, stack_fill=fill, data_fill=fill)


def cosimulate(views, function: str, cases_per_outcome: int, seed: int,
               options: ExecutorOptions = ExecutorOptions()) -> collections.Counter:
    """Run ``function`` both ways and compare; the number of cases compared
    per planned TDX outcome (``None`` without a TDX instruction).  Cases
    outside the model (a crash) or where the CPU went astray as predicted
    (a ``ret`` to a wrong address) are not compared: the plans that fall
    short of ``cases_per_outcome`` get more cases, in up to four rounds, as
    long as a round still compares some."""
    source, program = views
    paths = execute_function(source, function, options)
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
    landing = program.symbol("tdxproof_return_landing")
    prediction = Predicted(paths, STRUCT_REGIONS)
    compared, cross_checked = collections.Counter({outcome: 0 for _, outcome in plans}), set()
    wanted = {plan: cases_per_outcome for plan in plans}
    for _ in range(4):
        planned = [(outcome, random_case(rng, function, [] if kind is None else [behaviours[outcome](kind)]))
                   for kind, outcome in plans for _ in range(wanted.get((kind, outcome), 0))]
        before = collections.Counter(compared)
        for (outcome, case), result in zip(planned, program.run([case for _, case in planned])):
            if compare(function, paths, prediction, case, result, landing, cross_checked):
                compared[outcome] += 1
        wanted = {(kind, outcome): (cases_per_outcome - compared[outcome]) * 3 // 2 + 1 for kind, outcome in plans
                  if compared[outcome] < cases_per_outcome and compared[outcome] > before[outcome]}
        if not wanted:
            break
    return compared


def compare(function: str, paths, prediction: Predicted, case, result, landing: int, cross_checked: set) -> bool:
    """Whether the CPU's ``result`` for ``case`` was compared with the one
    path the case takes (asserting they agree); the first case of each
    outcome sequence (``cross_checked``) is also predicted by Z3."""
    if result.end == "crash":   # e.g. a small number used as a pointer: outside the model
        return False
    bound = prediction.bind(case, landing, module_answers(paths, case))
    outcomes = tuple(NATIVE_OUTCOME[event.outcome] for event in result.events)
    candidates = [p for p in paths if p.outcomes == outcomes]
    taken = [p for p in candidates if prediction.condition(p, bound) is True]
    assert len(taken) == 1, (case, result)
    (path,) = taken
    where = (function, path.outcomes, case)
    predicted = prediction.values(path, bound)
    if outcomes not in cross_checked:
        cross_checked.add(outcomes)
        prediction.cross_check(Pinned(paths, case, landing), candidates, path, bound, predicted)
    if predicted.get(("returned to",), landing) != landing:
        assert result.end != "returned", where   # a ret to a wrong address: the CPU went astray
        return False
    assert NATIVE_END.get(path.end) == result.end, where
    assert {name: predicted["reg", name] for name in GPR64} == result.regs, where
    for start, data in case.memory.items():
        assert predicted["memory", start].to_bytes(len(data), "little") == result.memory[start], where
    for index, seen in enumerate(result.events):
        assert {name: predicted["seen", index, name] for name in GPR64} == seen.regs, where
    for name in NATIVE_FLAGS:
        if ("flag", name) in predicted:   # else a value the SDM leaves undefined
            assert predicted["flag", name] == result.flags[name], (name, where)
    return True


def observables(path, regions) -> tuple[list, list]:
    """What the comparison looks at on ``path``, as (names, terms): final
    registers, the memory regions, the registers each TDX instruction saw,
    the flags that do not depend on a value the SDM leaves undefined, and
    where the final ``ret`` went."""
    named = [(("reg", name), path.state.regs[name]) for name in GPR64]
    # read from the built array: a 128-byte read at a constant address, resolved
    # byte by byte through stores made through symbolic pointers, is a large term
    named += [(("memory", start), select_bytes(path.state.memory.array, q(start), size)) for start, size in regions]
    named += [(("seen", index, name), event.inputs[name])
              for index, event in enumerate(path.events) for name in GPR64]
    named += [(("flag", name), path.state.flags[name]) for name in NATIVE_FLAGS
              if not any(leaf.startswith("undefined") for leaf in bv.free_constants([path.state.flags[name]]))]
    if path.returned_to is not None:
        named.append((("returned to",), path.returned_to))
    return [name for name, _ in named], [term for _, term in named]


@pytest.mark.parametrize("text, function", [(COSIM_WRAPPER, "mini"), (COSIM_HYPERCALL, "minihc")],
                         ids=["host-wrapper", "hypercall"])
def test_wrapper_paths_predict_what_the_cpu_does(tmp_path, text, function):
    from grammar.frontend import FrontEndOptions
    source = tmp_path / f"{function}.S"
    source.write_text(text)
    compared = cosimulate(front_end_views([str(source)], FrontEndOptions(use_shims=False)), function,
                          COSIM_CASES, 2024)
    assert len(compared) == (4 if function == "mini" else 1)
    assert min(compared.values()) >= COSIM_CASES, compared


ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TREE_FILES = sorted(str(path.relative_to(ROOT)) for path in FIXTURES.glob("*/arch/x86/**/*.S")
                    if path.name != "tdxcall.S")   # tdxcall.S: the macro, included by the others
SINGLE_FILES = sorted(str(path.relative_to(ROOT)) for directory in ("variants", "broken")
                      for path in (FIXTURES / directory).glob("*.S"))
FIXTURE_RUNS = ([(relative, False) for relative in TREE_FILES] + [(relative, True) for relative in TREE_FILES]
                + [(relative, True) for relative in SINGLE_FILES])
"""Kernel-tree fixtures with CONFIG_FRAME_POINTER off and on; the single-file
variants and broken wrappers (still code the CPU runs) with it on."""


@pytest.mark.parametrize("relative, frame_pointer", FIXTURE_RUNS,
                         ids=[f"{relative.removeprefix('tests/fixtures/')}-{'fp' if fp else 'nofp'}"
                              for relative, fp in FIXTURE_RUNS])
def test_fixture_wrappers_paths_predict_what_the_cpu_does(relative, frame_pointer):
    """Every function of every fixture file, under the module outputs its
    contract assumes (a non-``saved`` wrapper is only for leaves that change
    RCX, RDX, R8-R11, and its write-back through RSI relies on that).  The
    kernel-tree wrappers are compared on ``COSIM_CASES`` cases for every
    outcome; a variant or broken wrapper on half as many in all (a broken
    one may send some outcomes astray, which is checked but not compared)."""
    from expectations import defines_for
    from grammar.frontend import FrontEndOptions
    from proofs.abi_choice import choose
    from proofs.contracts import load_contracts

    if native.native_available() is not None:
        pytest.skip(native.native_available())
    views = front_end_views([str(ROOT / relative)],
                            FrontEndOptions(defines=defines_for(str(Path(relative).relative_to("tests/fixtures"))),
                                            configs={"CONFIG_FRAME_POINTER": frame_pointer}))
    contracts = load_contracts()
    for function in views[0].functions:
        contract = choose(views[0], function.name, contracts).contract
        narrowed = {contract.instruction: abi.MODULE_CALL_OUTPUTS} if contract and contract.module_outputs == "call" \
            else {}
        # The executor as the prover runs it, with the frame and the contract's
        # struct as regions: the harness keeps them apart whatever a case's
        # pointers hold (the stack is far from the structs and from small values).
        regions = memory_regions(symbolic.SymbolicState.fresh(ExecutorOptions.entry_prefix), contract)
        compared = cosimulate(views, function.name, COSIM_CASES, 11,
                              ExecutorOptions(tdx=TdxModel(module_outputs=narrowed), regions=regions))
        if relative in TREE_FILES:
            assert min(compared.values()) >= COSIM_CASES, (function.name, compared)
        assert sum(compared.values()) >= COSIM_CASES * 0.5, (function.name, compared)
