"""Native replay of a counterexample: does the CPU really do what the model said?

``tdxproof replay CEX.json`` takes a counterexample file the tool wrote
(``check --cex-dir``, or an ``equiv`` counterexample), validated by
:mod:`proofs.cex_file` before anything in it is used, and runs it on this
machine with the native harness (:mod:`model.native`): the function is
re-assembled with GNU ``as`` from the recorded files and front-end options
(:func:`grammar.frontend.expand_to_assembly`), the entry registers, flags
and memory bytes are set from the file, and the SIGILL handler plays the
TDX module with the recorded outcomes and returned registers, the
exception table being the assembly's own.  The native final state is shown
next to the model's prediction (the concrete interpreter's replay of the
same scenario, :func:`proofs.counterexample.replay`), and the property's
violated condition is evaluated on the *native* state by the same checker
that refuted it (:mod:`proofs.properties`, through a concrete
:class:`~proofs.properties.PathView`).

Decisions recorded here:

* **Relocation.**  The solver picks any addresses; the harness can only map
  its fixed stack and data regions (:data:`model.native.REGIONS`).  The
  counterexample is therefore moved, consistently, by whole windows: the
  stack window around the entry RSP onto the native stack (keeping the
  address modulo 4096, hence alignment), and every run of 4 KiB pages that
  holds a recorded memory byte, a contract/spec struct pointer's struct or
  the address a claim names, onto the data region.  Every value that falls
  in a window -- entry registers, the module's returned registers,
  addresses -- is moved with it; other values are untouched.  Pointers keep
  their order, alignment and distances inside a window, so the run is the
  same up to the move.  The moves are printed.  The tool places its own
  counterexamples in the harness's memory where it can
  (:func:`proofs.counterexample.native_placement`): then nothing moves.
* **The return slot** at the entry RSP holds the harness's landing pad
  natively; the model's prediction is given the same value.  A run that
  ``ret``\\ s through a corrupted slot faults at the address it popped: that is
  reported as a return (to that address), so ``return-address`` can be
  judged.
* **What the CPU cannot show.**  The native run yields final registers,
  flags, memory and the TDX events with the registers the module saw.  The
  writes of ``frame`` are judged from native memory (every byte that
  differs from its entry value in the watched windows).  ``no-red-zone``
  needs the stack pointer at each access, which the CPU does not report:
  it is judged on the model's access list, and counts as reproduced only
  when the native run also agrees with the model's prediction on the end,
  the TDX events and every final register (the same execution).
  ``frame-pointer`` is judged on what the CPU reports before every
  instruction: the case runs single-stepped (:attr:`model.native.NativeCase.trace`),
  so RBP and the 8 bytes it points at are the CPU's own at each step.
  Which function each step runs in (the entry RSP and RBP it is judged
  against: the outermost function's, or an inlined callee's right after
  its call) and which steps are calls is the program's structure, taken
  from the model's replay of the same path -- used only when the two
  line up (as many steps, each address always the same source
  instruction); otherwise the CPU's steps are not judged, and the replay
  says so.
* **Not played natively**: a path through an external call (the model
  clobbers the caller-saved registers with the file's values; the linked
  runner has no such callee) is refused as bad input; symbol addresses the
  model chose are the runner's own natively (none of the wrappers compares
  them).  A counterexample inside a ``check --json`` report is not a file
  replay takes: it lacks the front-end options and digests (write files
  with ``--cex-dir``).
* **Trust**: the preprocessor is replay's own ``--cpp`` (default ``cc
  -E``), never the one the file records (a note says when they differ);
  the function must be one the recorded files define before anything is
  assembled.
* **Changed sources**: when a digest no longer matches, the replay still
  runs (replaying after a fix is the point), but its first line names each
  changed file and the verdict line says "(sources changed since the
  counterexample was written)"; a missing source is bad input.
* **Exit status**: 0 reproduced, 1 not reproduced, 2 bad input or no
  native platform (:class:`model.native.NativeUnavailable`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from grammar.ast import GPR64
from grammar.cpp import DEFAULT_CPP
from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
from grammar.source import Origin, SourceError
from model import concrete
from model.native import (CODE_BASE, COUNTEREXAMPLE_RSP_PAGE, CRASH, DATA_BASE, DATA_SIZE, PAGE, STACK_BASE,
                          STACK_SIZE, NativeCase, NativeError, NativeProgram, NativeResult, TdxBehaviour, in_region)
from model.tdx import Outcome
from model.transfers import PathEnd
from proofs.contracts import contract_from_record
from proofs import cex_file
from proofs.cex_file import number
from proofs.counterexample import (STACK_WATCH, ConcreteRun, ReplayDiverged, Scenario, origin_from_json, replay,
                                   scenario_from_json)
from proofs.properties import (PROPERTIES, STACK_DEPTH, AccessView, ConcreteOps, EventView, FaultView,
                               FramePoint, PathView)

_OUTCOME_TO_NATIVE = {Outcome.COMPLETION: "completion", Outcome.VMFAILINVALID: "vmfailinvalid",
                      Outcome.FAULT_UD: "fault-ud", Outcome.FAULT_GP: "fault-gp"}
_M64 = 2**64 - 1


class ReplayInputError(SourceError):
    """The counterexample file cannot be replayed as it stands (exit 2)."""


# --- relocation ------------------------------------------------------------------------

@dataclass(frozen=True)
class Relocation:
    """Windows ``(old base, new base, length)``; an address in a window
    moves with it, anything else stays."""

    windows: tuple[tuple[int, int, int], ...]

    def move(self, value: int) -> int:
        """
        >>> Relocation(((0x1000, 0x9000, 0x100),)).move(0x1010), hex(Relocation(()).move(5))
        (36880, '0x5')
        """
        for old, new, length in self.windows:
            if old <= value < old + length:
                return new + value - old
        return value

    def lines(self) -> list[str]:
        return [f"  {old:#x}..{old + length:#x} -> {new:#x}..{new + length:#x}"
                for old, new, length in self.windows if old != new]


def plan_relocation(entry_rsp: int, addresses: Sequence[int]) -> Relocation:
    """The stack window around ``entry_rsp`` onto the native stack, and the
    page runs holding ``addresses`` (outside it) onto the data region, one
    free page between runs -- or, when every one of them already lies in
    the data region past its first page (as :func:`proofs.counterexample.native_placement`
    chooses them), where they are.

    >>> r = plan_relocation(0xfffffffffffefff0, [0x10, 0x18, 0x2ff8, 0x3000])
    >>> [hex(r.move(a)) for a in (0xfffffffffffefff0, 0x10, 0x2ff8, 0x3000)]
    ['0x57ac00008ff0', '0x2a4d00001010', '0x2a4d00003ff8', '0x2a4d00004000']
    >>> r = plan_relocation(COUNTEREXAMPLE_RSP_PAGE + 0x38, [DATA_BASE + 0x5008, DATA_BASE + 0x2000])
    >>> [hex(r.move(a)) for a in (COUNTEREXAMPLE_RSP_PAGE + 0x38, DATA_BASE + 0x5008, DATA_BASE + 0x2000)]
    ['0x57ac00008038', '0x2a4d00005008', '0x2a4d00002000']
    """
    native_rsp = COUNTEREXAMPLE_RSP_PAGE + entry_rsp % PAGE
    below, above = native_rsp - STACK_BASE, STACK_BASE + STACK_SIZE - native_rsp
    if entry_rsp < below or entry_rsp + above > 2**64:
        raise ReplayInputError(f"entry RSP {entry_rsp:#x} is too close to the end of the address space "
                               "to move onto the native stack")
    stack = (entry_rsp - below, STACK_BASE, STACK_SIZE)
    pages = sorted({address // PAGE for address in addresses
                    if not stack[0] <= address < stack[0] + STACK_SIZE})
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][-1] + 1:
            runs[-1].append(page)
        else:
            runs.append([page])
    if all(DATA_BASE + PAGE <= page * PAGE < DATA_BASE + DATA_SIZE for page in pages):
        return Relocation((stack,) + tuple((run[0] * PAGE, run[0] * PAGE, len(run) * PAGE) for run in runs))
    windows, free = [stack], DATA_BASE + PAGE
    for run in runs:
        length = len(run) * PAGE
        if free + length > DATA_BASE + DATA_SIZE:
            raise ReplayInputError("the counterexample's memory is spread over more pages than the "
                                   "native data region holds")
        windows.append((run[0] * PAGE, free, length))
        free += length + PAGE
    return Relocation(tuple(windows))


# --- one side of a counterexample ----------------------------------------------------------

@dataclass
class Side:
    """One function run of a counterexample (a ``check`` file has one, an
    ``equiv`` file two): what the file says, decoded.  ``pointers`` are the
    (register, size) of the structs its entry registers point to."""

    label: str
    function: str
    files: list[str]
    front_end: FrontEndOptions
    registers: dict[str, int]
    flags: dict[str, int]
    memory: dict[int, int]
    scripts: list[list[dict]]
    pointers: list[tuple[str, int]] = field(default_factory=list)
    external: dict = field(default_factory=dict)

    def addresses(self) -> list[int]:
        """The addresses the relocation must keep: every recorded memory
        byte and the first and last byte of each struct pointed to."""
        found = list(self.memory)
        for register, size in self.pointers:
            if self.registers[register]:
                found += [self.registers[register], self.registers[register] + size - 1]
        return found


def _side(label: str, part: Mapping, relational: bool, pointers: list[tuple[str, int]], cpp: str | None) -> Side:
    """A validated run of the file (``relational``: with its varied module;
    a flag recorded as null is 0 here, natively and in the model alike)."""
    scenarios = [scenario_from_json(part)] + ([scenario_from_json(part, varied=True)] if relational else [])
    first = scenarios[0]
    flags = {name: value or 0 for name, value in first.flags.items()}
    return Side(label, part["function"], list(part["files"]), cex_file.front_end_options(part["front_end"], cpp),
                first.registers, flags, first.memory, [s.events for s in scenarios], pointers, first.external)


# --- running -----------------------------------------------------------------------------------

@dataclass
class SideRun:
    """A side relocated, run natively and predicted by the model."""

    side: Side
    entry: dict[str, int]
    entry_bytes: dict[int, int]
    results: list[NativeResult]
    models: list[ConcreteRun | None]
    model_problem: str
    native: NativeProgram

    def code_byte(self, address: int) -> int | None:
        """The byte of the runner's code at ``address`` (the text segment is
        linked at ``CODE_BASE`` from file offset 0)."""
        data = self.native.binary.read_bytes()
        offset = address - CODE_BASE
        return data[offset] if 0 <= offset < len(data) else None


def _behaviour(event: Mapping, relocation: Relocation) -> TdxBehaviour:
    outcome = Outcome(event["outcome"])
    if outcome is not Outcome.COMPLETION:
        return TdxBehaviour(_OUTCOME_TO_NATIVE[outcome])
    outputs = {reg: relocation.move(number(v)) for reg, v in event["registers"].items()}
    return TdxBehaviour.completion(relocation.move(number(event["status"])), outputs)


def _moved_event(event: Mapping, relocation: Relocation) -> dict:
    moved = dict(event)
    moved["registers"] = {r: hex(relocation.move(number(v))) for r, v in event["registers"].items()}
    if event["status"] is not None:
        moved["status"] = hex(relocation.move(number(event["status"])))
    return moved


def _chunks(byte_map: Mapping[int, int]) -> dict[int, bytes]:
    """Contiguous runs of a byte map.

    >>> _chunks({5: 1, 6: 2, 9: 3})
    {5: b'\\x01\\x02', 9: b'\\x03'}
    """
    chunks: dict[int, bytearray] = {}
    start = None
    for address in sorted(byte_map):
        if start is None or address != start + len(chunks[start]):
            start = address
            chunks[start] = bytearray()
        chunks[start].append(byte_map[address])
    return {a: bytes(b) for a, b in chunks.items()}


def run_side(side: Side, relocation: Relocation, windows: list[tuple[int, int]]) -> SideRun:
    """Assemble ``side``, run each of its scripts natively and in the model."""
    if side.external:
        raise ReplayInputError(f"the {side.label + ' ' if side.label else ''}path calls external functions "
                               f"({', '.join(sorted(side.external))}), which the native harness cannot play")
    program = load_program(side.files, side.front_end)
    names = [fn.name for fn in program.functions]
    if side.function not in names:
        raise ReplayInputError(f"no function named {side.function!r} in {', '.join(side.files)} "
                               f"(functions: {', '.join(names) or 'none'})")
    native = NativeProgram.build(expand_to_assembly(side.files, side.front_end), side.function, program=program)
    landing = native.symbol("tdxproof_return_landing")
    entry = {reg: relocation.move(value) for reg, value in side.registers.items()}
    rsp = entry["rsp"]
    moved = {relocation.move(a): b for a, b in side.memory.items()}
    for address in moved:
        if not in_region(address, 1):
            raise ReplayInputError(f"memory byte {address:#x} lies outside every window the replay can map")
    case_memory = {a: b for a, b in moved.items() if not rsp <= a < rsp + 8}
    low = max(STACK_BASE, rsp - STACK_DEPTH - STACK_WATCH)
    watched = [(low, min(STACK_BASE + STACK_SIZE, rsp + STACK_WATCH) - low)] + list(windows)
    cases = [NativeCase(regs=entry, flags=side.flags, memory=_chunks(case_memory), observe=tuple(watched),
                        tdx_script=[_behaviour(e, relocation) for e in script], trace=True)
             for script in side.scripts]
    results = native.run(cases)
    entry_bytes = {}
    for base, length in watched:
        fill = 0xA5 if DATA_BASE <= base < DATA_BASE + DATA_SIZE else 0x5A
        entry_bytes.update({base + i: fill for i in range(length)})
    entry_bytes.update(case_memory)
    entry_bytes.update({rsp + i: landing >> 8 * i & 0xFF for i in range(8)})
    models, problem = [], ""
    for script in side.scripts:
        scenario = Scenario(dict(entry), dict(side.flags), dict(entry_bytes),
                            [_moved_event(e, relocation) for e in script], {}, {})
        try:
            models.append(replay(program, side.function, scenario))
        except (ReplayDiverged, concrete.UndefinedValue, concrete.MissingSymbol) as error:
            models.append(None)
            problem = str(error)
    return SideRun(side, entry, entry_bytes, results, models, problem, native)


def _u64(byte_map: Mapping[int, int], address: int) -> int | None:
    values = [byte_map.get(address + i) for i in range(8)]
    return None if None in values else sum(b << 8 * i for i, b in enumerate(values))


def _canonical(address: int) -> bool:
    """
    >>> _canonical(0x7fffffffffff), _canonical(0x102030480060501), _canonical(2**64 - 8)
    (True, False, True)
    """
    return address < 2**47 or address >= 2**64 - 2**47


def _end(run: SideRun, result: NativeResult, final_bytes: Mapping[int, int]) -> tuple[str, dict[str, int]]:
    """The path end the checkers see, and the final registers.  A ``ret``
    through a corrupted or misplaced slot is a return (SPEC: the caller is
    gone): the CPU then faults at the popped address, or -- when that is
    non-canonical -- at the ``ret`` itself, before it pops (RSP is
    advanced here as the pop would have).  A run that reached one of the
    harness's fall-through landings (:func:`model.native.with_landings`)
    ends "fallthrough", as the model's path does."""
    regs = dict(result.regs)
    if result.end not in (CRASH, PathEnd.OOPS):
        return result.end, regs
    if result.rip == _u64(final_bytes, (regs["rsp"] - 8) & _M64):
        return PathEnd.RETURNED, regs
    slot = _u64(final_bytes, regs["rsp"])
    if slot is not None and not _canonical(slot) and run.code_byte(result.rip) == 0xC3:
        regs["rsp"] = (regs["rsp"] + 8) & _M64
        return PathEnd.RETURNED, regs
    return result.end, regs


def native_frame_points(run: SideRun, index: int) -> tuple[tuple[FramePoint, ...], str]:
    """What an interrupt before each instruction would have found on the
    CPU in native run ``index`` (see the module doc), and, when the CPU's
    steps cannot be lined up with the model's, why not (no points)."""
    result, model = run.results[index], run.models[index]
    if model is None:
        return (), "the model could not replay the scenario"
    if len(result.steps) != len(model.points):
        return (), (f"the CPU ran {len(result.steps)} instructions of the function, the model "
                    f"{len(model.points)}: not the same path")
    sources: dict[int, Origin | None] = {}
    for step, point in zip(result.steps, model.points):
        if sources.setdefault(step.rip, point.origin) != point.origin:
            return (), f"the CPU's instruction at {step.rip:#x} is two source instructions in the model's trace"
    points = []
    for step, point, first in zip(result.steps, model.points, model.frame_starts):
        entry = result.steps[first].regs
        points.append(FramePoint(point.origin, step.regs["rbp"], step.at_rbp, entry["rsp"], entry["rbp"],
                                 point.call, True))
    return tuple(points), ""


def native_end(run: SideRun, index: int) -> tuple[dict[int, int], str, dict[str, int]]:
    """Native run ``index`` as the checkers see it: the final bytes of the
    watched memory, the path end (:func:`_end`) and the final registers."""
    result = run.results[index]
    final_bytes = dict(run.entry_bytes)
    for address, data in list(result.memory.items()) + [(result.stack_address, result.stack)]:
        final_bytes.update({address + i: b for i, b in enumerate(data)})
    end, final = _end(run, result, final_bytes)
    return final_bytes, end, final


def native_view(run: SideRun, index: int, model_accesses: bool) -> PathView:
    """The property checker's view of native run ``index`` of ``run``."""
    result = run.results[index]
    final_bytes, end, final = native_end(run, index)

    def reader(byte_map):
        def load(address: int, size: int) -> int:
            missing = [a for a in range(address, address + size) if a not in byte_map]
            if missing:
                raise NativeError(f"the replay did not watch memory at {missing[0]:#x}")
            return sum(byte_map[address + i] << 8 * i for i in range(size))
        return load

    script = run.side.scripts[index]
    events = []
    for position, event in enumerate(result.events):
        recorded = script[position] if position < len(script) else {}
        outcome = Outcome(recorded["outcome"]) if recorded else Outcome.COMPLETION
        after, status = dict(event.regs), None
        if outcome is Outcome.COMPLETION and recorded:
            for reg, value in recorded["registers"].items():
                after[reg] = number(value)
            after["rax"] = status = number(recorded["status"])
        source = recorded.get("source")
        events.append(EventView(event.kind, outcome, origin_from_json(source) if source else None, event.regs,
                                after, status))
    faults = tuple(FaultView(e.kind, not (end == PathEnd.OOPS and i == len(events) - 1), e.origin, True)
                   for i, e in enumerate(events) if e.outcome.is_fault)
    model = run.models[index]
    if model_accesses and model is not None:
        accesses = tuple(model.accesses)
    else:
        accesses = tuple(AccessView("write", a, 1, None, None, None, True)
                         for a in sorted(final_bytes) if final_bytes[a] != run.entry_bytes.get(a))
    return PathView(ConcreteOps(), end, run.entry, final, result.flags, reader(final_bytes),
                    reader(run.entry_bytes), tuple(events), accesses, faults, None,
                    result.detail if end == PathEnd.FALLTHROUGH else "", native_frame_points(run, index)[0])


def agrees(run: SideRun, index: int) -> list[str]:
    """Where native run ``index``, as the checkers see it (:func:`native_end`:
    a ``ret`` through a corrupted slot is a return), and the model's
    prediction differ (empty: they agree)."""
    model, result = run.models[index], run.results[index]
    if model is None:
        return [f"the model could not replay the scenario: {run.model_problem}"]
    _, end, final = native_end(run, index)
    differences = [f"{reg}: model {model.final.regs[reg]:#x}, CPU {final[reg]:#x}"
                   for reg in GPR64 if model.final.regs[reg] != final[reg]]
    if model.end != end:
        differences.insert(0, f"end: model {model.end}, CPU {end} ({result.end})")
    if [e.kind for e in model.events] != [e.kind for e in result.events]:
        differences.append("TDX events differ")
    return differences


# --- the two kinds of counterexample ------------------------------------------------------------

@dataclass
class Verdict:
    """The outcome of a replay: ``reproduced``, the report's ``lines``, its
    last line ``outcome``, and ``warnings`` to print first."""

    reproduced: bool
    lines: list[str]
    outcome: str
    warnings: list[str] = field(default_factory=list)
    sources_changed: bool = False

    @property
    def text(self) -> str:
        outcome = self.outcome + (" (sources changed since the counterexample was written)"
                                  if self.sources_changed else "")
        return "\n".join(self.warnings + self.lines + [outcome]) + "\n"


def _hex(value) -> str:
    return "-" if value is None else f"{value:#x}" if isinstance(value, int) else str(value)


def _state_table(runs: Sequence[tuple[str, SideRun, int]]) -> list[str]:
    """Entry, the model's final state and the CPU's, one column each per
    run; ``!`` marks a register where the CPU and the model disagree."""
    names = list(GPR64) + ["df", "end", "tdx"]
    columns: list[tuple[str, dict[str, str]]] = []
    for label, run, index in runs:
        model, result = run.models[index], run.results[index]
        entry = {reg: _hex(run.entry[reg]) for reg in GPR64}
        entry.update(df=str(run.side.flags.get("df", 0)), end="", tdx="")
        predicted = {name: "-" for name in names}
        if model is not None:
            predicted.update({reg: _hex(model.final.regs[reg]) for reg in GPR64})
            predicted.update(df=str(model.final.flags.get("df")), end=model.end,
                             tdx=",".join(f"{e.kind}:{e.outcome.value}" for e in model.events))
        native = {reg: _hex(result.regs[reg]) + ("" if model is None or model.final.regs[reg] == result.regs[reg]
                                                 else " !") for reg in GPR64}
        native.update(df=str(result.flags["df"]), end=f"{result.end} ({result.detail})",
                      tdx=",".join(f"{e.kind}:{e.outcome}" for e in result.events))
        columns += [(f"{label}entry", entry), (f"{label}model", predicted), (f"{label}CPU", native)]
    lines = ["  " + " ".join(["".ljust(9)] + [title.ljust(19) for title, _ in columns]).rstrip()]
    for name in names:
        lines.append("  " + " ".join([name.ljust(9)] + [values[name].ljust(19) for _, values in columns]).rstrip())
    return lines


def _data_windows(relocation: Relocation) -> list[tuple[int, int]]:
    return [(new, length) for old, new, length in relocation.windows if new != STACK_BASE]


def replay_check(cex: Mapping, cpp: str | None = None) -> Verdict:
    """Replay a validated ``check`` counterexample natively and judge it
    by the contract it carries (``cpp``: the preprocessor)."""
    pid, detail = cex["property"], cex["detail"]
    prop = PROPERTIES[pid]
    contract = contract_from_record(cex["abi"], "abi") if cex.get("abi") else None
    if prop.needs_contract and contract is None:
        raise ReplayInputError(f"{pid} is judged by a wrapper contract, and the counterexample names none")
    pointers = [(contract.struct_pointer, contract.struct_size)] if contract is not None else []
    side = _side("", cex, prop.relational, pointers, cpp)
    addresses = side.addresses()
    if pid in ("frame", "no-red-zone") and cex["actual"] is not None:
        addresses.append(number(cex["actual"]))
    relocation = plan_relocation(side.registers["rsp"], addresses)
    run = run_side(side, relocation, _data_windows(relocation))
    model_accesses = pid == "no-red-zone"
    views = [native_view(run, index, model_accesses) for index in range(len(side.scripts))]
    claims = prop.check(*views, contract) if prop.relational else prop.check(views[0], contract)
    hits = [claim for claim in claims if claim.detail == detail and claim.violated is True]
    differences = agrees(run, 0)
    name = f"{pid}[{detail}]" if detail else pid
    lines = [f"replay of {name} on {side.function} ({', '.join(side.files)}; config {cex['config']})"]
    if relocation.lines():
        lines += ["moved onto the harness's memory:"] + relocation.lines()
    labels = ("", "varied.")[:len(side.scripts)]
    lines += _state_table([(label, run, index) for index, label in enumerate(labels)])
    lines.append("the CPU agrees with the model's prediction" if not differences else
                 "the CPU differs from the model's prediction: " + "; ".join(differences))
    reproduced = bool(hits) and not (model_accesses and differences)
    if pid == "frame-pointer":
        unaligned = native_frame_points(run, 0)[1]
        lines.append("the CPU, stepped one instruction at a time, "
                     + (f"cannot be judged: {unaligned}" if unaligned else
                        f"reports RBP and the bytes it points at before each of its "
                        f"{len(run.results[0].steps)} instructions"))
    if hits:
        claim = hits[0]
        where = f" at {claim.origin.render()}" if claim.origin else ""
        lines.append(f"{name} violated on the CPU{where}: expected {_hex(claim.expected)}, got {_hex(claim.actual)}"
                     + (" (accesses from the model, same final state on the CPU)" if model_accesses else ""))
    return Verdict(reproduced, lines,
                   "REPRODUCED" if reproduced else "NOT REPRODUCED: the native run does not violate " + name)


def _native_value(kind: str, name: str, view: PathView, result: NativeResult, difference: Mapping,
                  relocation: Relocation):
    if kind == "register":
        return view.final[name]
    if kind == "flag":
        return view.flags[name]
    if kind == "end":
        return view.end
    if kind == "tdx":
        return ", ".join(f"{e.kind} {e.outcome}" for e in result.events)
    if kind == "memory":
        return view.load(relocation.move(number(difference["address"])), 1)
    return None


def replay_equiv(cex: Mapping, cpp: str | None = None) -> Verdict:
    """Replay both sides of a validated ``equiv`` counterexample and
    compare the observable it reports as different (``cpp``: the
    preprocessor)."""
    difference = cex["difference"]
    kind, name = difference["kind"], difference["observable"]
    sides = {label: _side(label, cex[label], False,
                          [(s["register"], s["size"]) for s in cex["structs"] if s["side"] == label], cpp)
             for label in ("left", "right")}
    addresses = sides["left"].addresses() + sides["right"].addresses()
    if kind == "memory":
        addresses.append(number(difference["address"]))
    relocation = plan_relocation(sides["left"].registers["rsp"], addresses)
    runs = {label: run_side(side, relocation, _data_windows(relocation)) for label, side in sides.items()}
    views = {label: native_view(run, 0, False) for label, run in runs.items()}
    values = {label: _native_value(kind, name, views[label], runs[label].results[0], difference, relocation)
              for label in runs}
    lines = [f"replay of an equivalence counterexample ({cex['spec']}): {kind} {name} differs"]
    if relocation.lines():
        lines += ["moved onto the harness's memory:"] + relocation.lines()
    lines += _state_table([("L.", runs["left"], 0), ("R.", runs["right"], 0)])
    for label, run in runs.items():
        differences = agrees(run, 0)
        lines.append(f"{label}: the CPU " + ("agrees with the model's prediction" if not differences else
                                              "differs from the model's prediction: " + "; ".join(differences)))
    if values["left"] is None:
        return Verdict(False, lines, f"NOT REPRODUCED: a {kind} observable cannot be compared natively")
    reproduced = values["left"] != values["right"]
    lines.append(f"{kind} {name} on the CPU: left {_hex(values['left'])}, right {_hex(values['right'])}")
    return Verdict(reproduced, lines, "REPRODUCED" if reproduced else "NOT REPRODUCED: the two sides agree natively")


def replay_file(path: str, cpp: str | None = None) -> Verdict:
    """Replay the counterexample in ``path`` (``check`` or ``equiv``),
    preprocessing with ``cpp`` (default ``cc -E``; never the file's)."""
    cex = cex_file.read(path)
    changed = cex_file.changed_sources(cex, path)
    verdict = replay_equiv(cex, cpp) if cex.get("kind") == "equiv" else replay_check(cex, cpp)
    verdict.warnings = [f"warning: {name} changed since the counterexample was written" for name in changed]
    used = cpp or DEFAULT_CPP
    for recorded in sorted({run["front_end"]["cpp"] or DEFAULT_CPP for run in cex_file.runs_of(cex)} - {used}):
        verdict.warnings.append(f"note: the counterexample records the C preprocessor {recorded!r}; replay ran "
                                f"{used!r}, its own --cpp (it never runs a command named by the file)")
    verdict.sources_changed = bool(changed)
    return verdict
