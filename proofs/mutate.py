"""Mutation analysis: which small changes to a function do the properties catch?

``tdxproof mutate FILE... --function NAME`` expands the input once to plain
assembly (:func:`grammar.frontend.expand_to_assembly`: no cpp, no macros,
one statement per line) and derives *mutants* of the named function's
instruction lines, in a fixed order -- by instruction, then by operator:

* ``delete`` an instruction (``drop-jump`` for a conditional jump,
  ``drop-push``/``drop-pop`` for a push or pop); a ``ret`` that the
  kernel's ``int3`` straight-line-speculation padding follows goes with
  its padding, as deleting ``RET`` does (deleting the ``ret`` alone would
  leave the ``int3`` to trap, a mutant ``fault-handled`` catches but not
  the mistake people make: the function then runs on past the return,
  which ``no-fallthrough`` refutes);
* ``swap`` it with the next instruction when no label lies between them
  (the same order the processor would see otherwise);
* ``register``: each register operand (also a memory base or index) is
  replaced by the next register of the same width in encoding order
  (skipping RSP, whose replacement would only crash; RSP itself is not
  replaced) -- one replacement per operand keeps the count linear;
* ``immediate``: an immediate ``$v`` becomes ``$v+1``; ``displacement``:
  a memory displacement ``d`` becomes ``d+8`` (the next struct field);
* ``invert-jump``: a conditional jump on the opposite condition.

Every mutant is checked as the whole expanded file with that one line
changed, so labels, the exception table and the other functions stay as
they were; the kernel options the properties need (``CONFIG_FRAME_POINTER``
for ``frame-pointer``) are those the input was expanded under, since the
expansion is all the mutant has.  A mutant that GNU-as syntax or the model
rejects is ``invalid`` (not counted).  A mutant is ``killed`` by the first
property, in catalog order, with a refuted obligation whose counterexample
replays (:func:`first_kill`: the function is executed once and its
properties decided one by one, as ``check`` decides them, and the ones
after the killer are not asked -- a killed mutant needs one
counterexample, and the slowest refutations were of properties a cheaper
one before them already refuted), and ``survived`` otherwise (``unknown``
obligations of the properties asked are shown and do not kill).  Each
survivor is then compared with the original by ``equiv``
(:mod:`proofs.equiv`; both sides the plain assembly, every register
related, the default observables): ``equivalent`` means no caller can tell
them apart, so no property could catch it; anything else is listed as a
gap in the properties.  The mutation score is killed / (valid - equivalent).

Mutants are independent; they run in ``--jobs`` worker processes (the
CPUs by default),
a task each as ``check``'s functions are (:mod:`proofs.scheduling`),
results in mutant order.
The analysis leaves nothing in the process's caches
(:data:`grammar.caches.CACHES`): a caller that analyses one function after
another in one process holds no entries of the functions done.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from grammar import ast
from grammar.ast import GPR64, REGISTERS, Register
from grammar.caches import CACHES
from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
from grammar.parser import format_instruction
from grammar.source import Origin, SourceError
from proofs.contracts import load_contracts
from proofs.counterexample import Replays
from proofs.equiv import check_equivalence
from proofs.equiv_spec import load_spec
from proofs.outcomes import Equivalence, MutantStatus, Status
from proofs.obligations import prove
from proofs.properties import CATALOG
from proofs.prover import function_paths, function_result
from proofs.scheduling import run_in_forks
from proofs.selectors import SelectorUse, not_a_c_function
from proofs.settings import Settings, row_configs

TDX_BASES = ("tdcall", "seamcall")
CONDITIONS = {"o": "no", "b": "ae", "e": "ne", "be": "a", "s": "ns", "p": "np", "l": "ge", "le": "g"}
INVERSE = {**CONDITIONS, **{v: k for k, v in CONDITIONS.items()}}
"""Condition code -> its negation (``jb`` <-> ``jae`` ...)."""


@dataclass(frozen=True)
class Mutant:
    """One change: ``operator``, where (``origin``, instruction ``position``)
    and the line(s) before and after."""

    number: int
    operator: str
    position: int
    origin: Origin
    before: str
    after: str
    lines: tuple[str, ...] = field(repr=False, default=())

    @property
    def description(self) -> str:
        return f"{self.operator}: {self.before} -> {self.after}" if self.after else \
            f"{self.operator}: {self.before}"


@dataclass
class MutantResult:
    mutant: Mutant
    status: MutantStatus
    killed_by: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    equivalence: str = ""            # equivalent / different / unknown / not checked
    reason: str = ""
    seconds: float = 0.0


@dataclass
class Analysis:
    function: str
    files: tuple[str, ...]
    results: list[MutantResult]
    seconds: float

    def count(self, status: MutantStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def equivalent(self) -> int:
        return sum(1 for r in self.results
                   if r.status == MutantStatus.SURVIVED and r.equivalence == Equivalence.EQUIVALENT)

    @property
    def scored(self) -> int:
        """The mutants the score counts: killed and non-equivalent survivors."""
        return self.count(MutantStatus.KILLED) + self.count(MutantStatus.SURVIVED) - self.equivalent

    @property
    def score(self) -> float | None:
        """killed / scored."""
        return self.count(MutantStatus.KILLED) / self.scored if self.scored else None

    def json(self) -> dict:
        return {"function": self.function, "files": list(self.files), "mutants": len(self.results),
                "killed": self.count(MutantStatus.KILLED), "survived": self.count(MutantStatus.SURVIVED),
                "equivalent": self.equivalent, "invalid": self.count(MutantStatus.INVALID), "score": self.score,
                "results": [{"number": r.mutant.number, "operator": r.mutant.operator,
                             "file": r.mutant.origin.file, "line": r.mutant.origin.line,
                             "before": r.mutant.before, "after": r.mutant.after, "status": r.status,
                             "killed_by": list(r.killed_by), "unknown": list(r.unknown),
                             "equivalence": r.equivalence, "reason": r.reason} for r in self.results]}


# --- deriving mutants -----------------------------------------------------------------------

def next_register(name: str) -> str | None:
    """The next register of the same width in encoding order, RSP skipped.

    >>> next_register("rax"), next_register("r15d"), next_register("rbx"), next_register("sil")
    ('rcx', 'eax', 'rbp', 'dil')
    >>> next_register("rsp") is None, next_register("ah") is None
    (True, True)
    """
    family, width, offset = REGISTERS[name]
    if family in ("rsp", "rip") or offset:
        return None
    order = [reg for reg in GPR64 if reg != "rsp"]
    target = order[(order.index(family) + 1) % len(order)]
    return next(n for n, (f, w, o) in REGISTERS.items() if f == target and w == width and o == 0)


def _replace_register(operand, old: Register, new: Register):
    if isinstance(operand, ast.Memory):
        return dataclasses.replace(operand, base=new if operand.base == old else operand.base,
                                   index=new if operand.index == old else operand.index)
    return new if operand == old else operand


def _registers_of(instr: ast.Instruction) -> list[Register]:
    found = []
    for operand in instr.operands:
        inner = operand.operand if isinstance(operand, ast.Indirect) else operand
        if isinstance(inner, Register):
            found.append(inner)
        elif isinstance(inner, ast.Memory):
            found += [r for r in (inner.base, inner.index) if r is not None]
    return list(dict.fromkeys(found))


def _condition(instr: ast.Instruction) -> str | None:
    base = instr.base
    if base.startswith("j") and base not in ("jmp",) and base[1:] in INVERSE:
        return base[1:]
    return None


def _operand_changes(instr: ast.Instruction) -> list[tuple[str, ast.Instruction]]:
    changes = []
    for reg in _registers_of(instr):
        new = next_register(reg.name)
        if new is not None:
            operands = tuple(_replace_register(op, reg, Register(new)) for op in instr.operands)
            changes.append(("register", dataclasses.replace(instr, operands=operands)))
    for index, operand in enumerate(instr.operands):
        if isinstance(operand, ast.Immediate):
            new_operand, operator = ast.Immediate(operand.value + 1), "immediate"
        elif isinstance(operand, ast.Memory) and operand.symbol is None and (operand.base or operand.index):
            new_operand, operator = dataclasses.replace(operand, disp=operand.disp + 8), "displacement"
        else:
            continue
        operands = instr.operands[:index] + (new_operand,) + instr.operands[index + 1:]
        changes.append((operator, dataclasses.replace(instr, operands=operands)))
    condition = _condition(instr)
    if condition is not None:
        inverted = "j" + INVERSE[condition]
        changes.append(("invert-jump", dataclasses.replace(instr, mnemonic=inverted, base=inverted)))
    return changes


def _deletion(instr: ast.Instruction) -> str:
    if _condition(instr) is not None:
        return "drop-jump"
    if instr.base in ("push", "pop"):
        return f"drop-{instr.base}"
    return "delete"


def _code(line: str) -> str:
    return line.split("\t#", 1)[0].strip()


def instruction_lines(lines: Sequence[str], function: ast.Function) -> list[int]:
    """Indices of ``lines`` holding the function's instructions, in order
    (a raw ``.byte`` TDX encoding stands for its instruction)."""
    start = next((i for i, line in enumerate(lines) if _code(line) == f"{function.name}:"), None)
    if start is None:
        raise SourceError(f"function {function.name!r} not found in the expanded assembly")
    found, pending = [], list(function.instructions)
    for index in range(start + 1, len(lines)):
        if not pending:
            break
        code = _code(lines[index])
        instr = pending[0]
        if code == format_instruction(instr) or (instr.base in TDX_BASES and code.startswith(".byte")):
            found.append(index)
            pending.pop(0)
    if pending:
        raise SourceError(f"cannot find {pending[0]} ({pending[0].origin.render()}) in the expanded assembly")
    return found


def derive_mutants(assembly: str, function: ast.Function) -> list[Mutant]:
    """Every mutant of ``function`` in ``assembly``, in a fixed order."""
    lines = assembly.splitlines()
    where = instruction_lines(lines, function)
    instructions = function.instructions
    mutants: list[Mutant] = []

    def add(operator, position, before, after, new_lines):
        mutants.append(Mutant(len(mutants) + 1, operator, position, instructions[position].origin,
                              before, after, tuple(new_lines)))

    for position, (index, instr) in enumerate(zip(where, instructions)):
        text = _code(lines[index])
        adjacent = position + 1 < len(where) and where[position + 1] == index + 1
        if instr.base == "ret" and adjacent and instructions[position + 1].base == "int3":
            add(_deletion(instr), position, f"{text}; {_code(lines[index + 1])}", "",
                lines[:index] + lines[index + 2:])
        else:
            add(_deletion(instr), position, text, "", lines[:index] + lines[index + 1:])
        if adjacent:
            following = _code(lines[index + 1])
            swapped = lines[:index] + [lines[index + 1], lines[index]] + lines[index + 2:]
            add("swap", position, f"{text}; {following}", f"{following}; {text}", swapped)
        if instr.base in TDX_BASES:
            continue
        for operator, changed in _operand_changes(instr):
            try:
                after = format_instruction(changed)
            except (SourceError, ValueError, KeyError):
                continue
            add(operator, position, text, after, lines[:index] + ["\t" + after] + lines[index + 1:])
    return mutants


# --- checking them ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    directory: str
    original: str
    function: str
    settings: object
    equivalence: bool
    timeout: float


def _check_mutant(arguments: tuple[_Job, Mutant]) -> MutantResult:
    job, mutant = arguments
    started = time.monotonic()
    path = Path(job.directory) / f"mutant{mutant.number}.s"
    path.write_text("\n".join(mutant.lines) + "\n")
    try:
        program = load_program([str(path)], FrontEndOptions(use_shims=False))
        killed, unknown = first_kill(program, job.function, job.settings)
    except SourceError as error:
        return MutantResult(mutant, MutantStatus.INVALID, reason=str(error).splitlines()[0],
                            seconds=time.monotonic() - started)
    outcome = MutantResult(mutant, MutantStatus.KILLED if killed else MutantStatus.SURVIVED, killed, unknown)
    if not killed:
        outcome.equivalence, outcome.reason = (_equivalence(job, path) if job.equivalence
                                               else ("not checked", ""))
    outcome.seconds = time.monotonic() - started
    return outcome


def first_kill(program: ast.Program, function: str, settings: Settings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The property that kills ``function`` of ``program`` (none, or the
    first in catalog order with a confirmed refutation) and the properties
    decided before it (all of them, for a survivor) left unknown.

    The function is executed once; its obligations are decided property by
    property (:func:`proofs.obligations.prove` on the same paths) and the
    properties after the killer are not asked: a killed mutant needs one
    counterexample.  Each obligation is the same question whatever else is
    asked with it, so the killer is the first property refuted by a check
    of all of them (up to a solver timeout, which leaves an obligation
    unknown in either)."""
    choice, paths = function_paths(program, function, settings)
    unknown = []
    for pid in (pid for pid in CATALOG if pid in settings.properties):
        one = dataclasses.replace(settings, properties=(pid,))
        obligations, texts = prove(choice.contract, one, paths)
        result = function_result(Replays(program, function), "default", choice.contract, obligations, texts, one)
        if any(o.status == Status.REFUTED for o in result.obligations):
            return (pid,), tuple(unknown)
        if any(o.status == Status.UNKNOWN for o in result.obligations):
            unknown.append(pid)
    return (), tuple(unknown)


def _mutant_label(arguments: tuple[_Job, Mutant]) -> str:
    return f"mutant #{arguments[1].number}"


def _equivalence(job: _Job, mutant: Path) -> tuple[str, str]:
    """``equiv`` of the original and the mutant: every register related,
    the default observables."""
    spec = mutant.with_suffix(".toml")
    registers = ", ".join(f'"{reg}"' for reg in GPR64 if reg != "rsp")
    spec.write_text(f'[left]\nfiles = ["{Path(job.original).name}"]\nfunction = "{job.function}"\n'
                    f'[right]\nfiles = ["{mutant.name}"]\nfunction = "{job.function}"\n'
                    f'[relation]\nsame = [{registers}]\n')
    try:
        result = check_equivalence(load_spec(str(spec)), timeout=job.timeout)
    except SourceError as error:
        return "not checked", str(error).splitlines()[0]
    reason = ""
    if result.counterexample:
        difference = result.counterexample.get("difference", {})
        reason = f"{difference.get('kind', '')} {difference.get('observable', '')} differs".strip()
    elif result.reasons:
        reason = result.reasons[0]
    return result.verdict, reason


def run_mutants(files: Sequence[str], front_end, function: str, *, properties: tuple[str, ...],
                era: str | None = None, firmware: str = "spec", timeout: float = 10.0, jobs: int = 1,
                equivalence: bool = True, properties_given: bool = False) -> Analysis:
    """Derive the mutants of ``function`` and check each one (``--abi`` and
    ``--property`` must select something, as for ``check``)."""
    started = time.monotonic()
    program = load_program(list(files), front_end)
    try:
        target = program.function(function)
    except KeyError:
        raise SourceError(f"no function named {function!r} in {', '.join(files)} "
                          f"(functions: {', '.join(f.name for f in program.c_functions) or 'none'})") from None
    if target.kind == "code":
        raise not_a_c_function("--function", target)
    assembly = expand_to_assembly(list(files), front_end)
    mutants = derive_mutants(assembly, target)
    settings = Settings(properties=properties, era=era, firmware=firmware, timeout=timeout,
                        contracts=load_contracts(), configs=row_configs(front_end))
    selectors = SelectorUse(settings, properties_given)
    selectors.function(program, function, settings)
    selectors.finish([function])
    with tempfile.TemporaryDirectory(prefix="tdxproof-mutate-") as directory:
        original = Path(directory) / "original.s"
        original.write_text(assembly)
        job = _Job(directory, str(original), function, settings, equivalence, timeout)
        _, results = run_in_forks([[((job, m), 0) for m in mutants]], _check_mutant, max(1, jobs), _mutant_label)
    CACHES.clear()
    return Analysis(function, tuple(files), results, time.monotonic() - started)


def mutation_report(analysis: Analysis) -> str:
    """The text report: one line per mutant, the survivors, the score."""
    lines = [f"mutants of {analysis.function} ({', '.join(analysis.files)}): {len(analysis.results)}"]
    for r in analysis.results:
        m = r.mutant
        where = f"{Path(m.origin.file).name}:{m.origin.line}"
        if r.status == MutantStatus.KILLED:
            verdict = "killed by " + ", ".join(r.killed_by)
        elif r.status == MutantStatus.INVALID:
            verdict = f"invalid ({r.reason})"
        else:
            detail = f"{r.equivalence}: {r.reason}" if r.reason else r.equivalence
            verdict = {Equivalence.EQUIVALENT: "survived, equivalent to the original (equiv)",
                       "not checked": "survived, equivalence not checked"}.get(
                r.equivalence, f"survived, not shown equivalent ({detail})")
            if r.unknown:
                verdict += f"; unknown: {', '.join(r.unknown)}"
        lines.append(f"  #{m.number:<3} {where:<18} {m.description:<60} {verdict}")
    gaps = [r for r in analysis.results
            if r.status == MutantStatus.SURVIVED and r.equivalence != Equivalence.EQUIVALENT]
    lines.append(f"killed {analysis.count(MutantStatus.KILLED)}, survived {analysis.count(MutantStatus.SURVIVED)} "
                 f"(equivalent {analysis.equivalent}), invalid {analysis.count(MutantStatus.INVALID)}")
    if gaps:
        lines.append("survivors that are not shown equivalent (gaps in the properties, or unchecked):")
        lines += [f"  #{r.mutant.number} {Path(r.mutant.origin.file).name}:{r.mutant.origin.line} "
                  f"{r.mutant.description}" for r in gaps]
    score = "n/a" if analysis.score is None else \
        f"{analysis.score:.1%} ({analysis.count(MutantStatus.KILLED)} killed of {analysis.scored} non-equivalent)"
    lines.append(f"mutation score: {score} in {analysis.seconds:.0f} s")
    return "\n".join(lines) + "\n"
