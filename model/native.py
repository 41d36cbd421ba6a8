"""The native harness: run assembly on the real CPU and report what it did.

This is the oracle the model is checked against (per-instruction and
whole-wrapper co-simulation) and the engine of counterexample replay.  It
decides how an assembled function meets a user-mode process:

* **Build once, run many.**  :meth:`NativeProgram.build` assembles the text
  with GNU ``as``, links it with the C runner ``model/runtime/runner.c``
  (``cc``) and caches the binary by content hash (``$TDXPROOF_NATIVE_CACHE``
  or ``<tmp>/tdxproof-native-<uid>``).  :meth:`NativeProgram.run` then feeds
  every case to one runner process over stdin and parses its text answer.
* **Fixed, distinctive addresses.**  The code is linked at
  :data:`CODE_BASE`, the stack is mapped at :data:`STACK_BASE` and the data
  (argument structs, scratch memory) at :data:`DATA_BASE`, with
  ``MAP_FIXED_NOREPLACE``: random register values cannot alias them by
  accident, and the same case always sees the same addresses.
* **Entry.**  Each case sets all sixteen GPRs, the arithmetic flags and DF,
  fills the stack and data regions with a byte pattern, writes the case's
  memory, and (function mode) writes the return address — a landing pad in
  the runner — at the entry RSP, which must lie in the stack region
  (default :data:`DEFAULT_RSP`).  IF cannot be changed in user mode; it is a
  bit the harness tracks: ``sti``/``cli`` raise #GP (SIGSEGV) and the
  handler sets/clears the bit and steps over them.
* **The TDX module.**  SEAMCALL/TDCALL raise #UD (SIGILL) in user mode; a
  handler on an alternate signal stack records the registers the module
  sees and plays the next :class:`TdxBehaviour` of the case's script:
  completion (RAX <- status, the given output registers, CF=PF=AF=ZF=SF=OF=0
  as for VMsucceed, RIP past the 4-byte instruction); VMfailInvalid (CF=1,
  PF=AF=ZF=SF=OF=0, no register change); fault #UD/#GP (no register change,
  the exception table decides).  Any flag outcome can be overridden.
* **The exception table.**  By default the assembly's own ``__ex_table``
  section is read the way the kernel reads it (``.long from - .``,
  ``.long to - .``, ``.long type``; type 2 or ``ex_handler_fault`` = fault,
  1 or ``ex_handler_default`` = default).  Or the caller gives the entries
  (``ExtableEntry`` nodes or ``(from, to[, kind])`` with label names or
  byte offsets from the first entry symbol).  A fault entry puts the trap
  number in RAX and resumes at the fixup; a default entry only resumes.  A
  fault (scripted, a ``ud2``, or a #GP) with no entry ends the case "oops".
* **Ends.**  "returned" (reached the return landing pad; ``ret`` and
  ``jmp __x86_return_thunk`` both get there — the runner provides the thunk),
  "panic" (called a declared never-returning symbol: the runner provides a
  stub for each, weak, so a real definition wins), "fallthrough" (left the
  code of the program's functions: see below), "oops" (unhandled fault
  or ``int3``), "crash" (anything else: page fault, timeout, a TDX
  instruction beyond the script).
* **Falling through.**  Natively, a function that runs past its end runs
  into whatever the assembler put next.  Built with the ``program`` the
  assembly holds, the harness puts a landing there instead: a ``ud2``
  right after each function's ``.size`` directive (what ``SYM_FUNC_END``
  emits; a function closed only by the next function's start or by the
  end of its file gets none, and runs on), and one at each named code
  label outside every function (``Program.labels`` says which), right
  after the label.  Reaching a landing ends the case "fallthrough", its
  detail saying which (``past the end of 'f'``, ``to 'L', code outside
  every function``): the same ends the model gives such a path.  Nothing
  but those landings is inserted, and nothing legitimately runs them.  The final GPRs, RFLAGS, the tracked IF,
  RIP, the requested memory, a window of the stack and the TDX events are
  captured by the signal handler from the signal context, so nothing of the
  harness runs between the function's last instruction and the capture.
* **Every instruction, when asked** (``NativeCase.trace``): the case runs
  with the trap flag set, so the CPU stops after every instruction (a
  debug trap, delivered as SIGTRAP) and the handler records a
  :class:`NativeStep` -- RIP, the sixteen GPRs and the 8 bytes at RBP --
  before each instruction of the code under test (the harness's own
  entry code, landings, stubs and return thunk excluded), and, where the
  handler itself resumes that code (after a TDX instruction, ``sti``/``cli``
  or a fixup), the state it resumes with.  So the CPU does report RBP at
  every instruction: what an interrupt there would find.  Nothing else
  changes (TF is masked out of the reported RFLAGS); a step costs a signal
  round trip, a few microseconds.

Public API::

    program = NativeProgram.build(assembly, "__tdcall_ret")
    [result] = program.run([NativeCase(
        regs={"rdi": 0, "rsi": ARGS_ADDRESS},
        flags={"cf": 1, "df": 0, "if": 1},
        memory={ARGS_ADDRESS: bytes(112)},
        tdx_script=[TdxBehaviour.completion(0, {"rcx": 5})])])
    result.end, result.regs["rax"], result.memory[ARGS_ADDRESS], result.events

Single-instruction mode (per-instruction co-simulation)::

    batch = InstructionBatch.build(["addq %rbx, %rax", "jne {taken}"])
    results = batch.run(1, [NativeCase(regs=..., flags=...)])
    results[0].detail  # "taken" or "return": which way the branch went
    batch.run_each([(0, case0), (1, case1)])  # several forms, one process

Each form becomes a tiny function ``form_i: <instruction>; jmp return
landing; taken_i: jmp taken landing``; ``{taken}`` in the text names
``taken_i`` (for ``jcc``/``jmp``/``call``), and
:meth:`InstructionBatch.return_address` is the address a ``call`` pushes.
All registers and flags come from the case, all are captured after the one
instruction; memory operands should point into :data:`SCRATCH_ADDRESS`.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence, Union

from grammar.ast import GPR64, ExtableEntry, Program
from grammar.source import SourceError
from model.abi import FLAGS, RFLAGS_BIT, TRAP_GP, TRAP_UD
from model.transfers import PathEnd, outside_label

CODE_BASE = 0x3C0D_0000
"""Where the runner's text segment (and so the code under test) is linked."""
STACK_BASE, STACK_SIZE = 0x57AC_0000_0000, 0x10000
"""The stack region."""
DATA_BASE, DATA_SIZE = 0x2A4D_0000_0000, 0x10000
"""The data region: argument structs and scratch memory."""
DEFAULT_RSP = STACK_BASE + 0x8000 - 8
"""Entry RSP unless a case says otherwise (8 mod 16, as after a ``call``),
with 32 KiB of stack above and below."""
PAGE = 0x1000
COUNTEREXAMPLE_RSP_PAGE = STACK_BASE + STACK_SIZE // 2
"""The page of a counterexample's entry RSP natively (the middle of the
stack region: room for the frame below and the caller's slots above)."""
ARGS_ADDRESS = DATA_BASE + 0x1000
"""A conventional place for an argument struct."""
SCRATCH_ADDRESS = DATA_BASE + 0x8000
"""Scratch memory for the memory operands of single-instruction forms."""
REGIONS: tuple[tuple[int, int], ...] = ((STACK_BASE, STACK_SIZE), (DATA_BASE, DATA_SIZE))
"""(base, size) of the memory a case may set: a counterexample to be
replayed must put its entry RSP and its structs here (pin them when
solving, e.g. RSP = :data:`DEFAULT_RSP`, a struct at :data:`ARGS_ADDRESS`)."""
STACK_WINDOW = (512, 128)
"""Bytes below and above the entry RSP captured as ``NativeResult.stack``."""

NEVER_RETURNING = ("__tdx_hypercall_failed",)
"""Symbols that end a case as "panic" unless the caller says otherwise."""

CRASH = "crash"
"""The end of a case that no path of the model has: the CPU stopped elsewhere."""
ENDS = (PathEnd.RETURNED, PathEnd.PANIC, PathEnd.FALLTHROUGH, PathEnd.OOPS, CRASH)
"""How a case ends: the model's path ends (:class:`model.transfers.PathEnd`), or :data:`CRASH`."""
OUTCOMES = ("completion", "vmfailinvalid", "fault-ud", "fault-gp")
ARITHMETIC_FLAGS = ("cf", "pf", "af", "zf", "sf", "of")
_SETTABLE_FLAGS = ARITHMETIC_FLAGS + ("df",)
_EXTABLE_KIND = {"default": 1, "fault": 2}
_TRAP_OF = {"fault-ud": TRAP_UD, "fault-gp": TRAP_GP}


class NativeError(SourceError):
    """The native harness cannot do what was asked (the CLI exits 2)."""


class NativeUnavailable(NativeError):
    """Not an x86-64 Linux machine, or no ``as``/``cc``."""


class NativeBuildError(NativeError):
    """``as`` or the linker rejected the program; the message says why."""


def native_available() -> str | None:
    """``None`` when native runs are possible here, else the reason."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"native runs need x86-64 Linux, this is {platform.system()} {platform.machine()}"
    for tool in ("as", "cc", "nm"):
        if shutil.which(tool) is None:
            return f"native runs need '{tool}' on PATH"
    return None


def rflags_of(flags: Mapping[str, int | None]) -> int:
    """The RFLAGS image of named flags (IF excluded: it is tracked apart).

    >>> hex(rflags_of({"cf": 1, "zf": 1, "df": 1, "if": 1}))
    '0x441'
    """
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown flags {sorted(unknown)}")
    return sum(1 << RFLAGS_BIT[name] for name, bit in flags.items() if bit and name != "if")


def flags_of(rflags: int, if_flag: int) -> dict[str, int]:
    """Named flags from an RFLAGS image and the tracked IF bit.

    >>> flags_of(0x441, 0) == {"cf": 1, "pf": 0, "af": 0, "zf": 1, "sf": 0, "of": 0, "df": 1, "if": 0}
    True
    """
    named = {name: rflags >> RFLAGS_BIT[name] & 1 for name in FLAGS if name != "if"}
    named["if"] = if_flag & 1
    return named


@dataclass(frozen=True)
class TdxBehaviour:
    """What the TDX module does at one SEAMCALL/TDCALL.

    ``outcome`` is one of :data:`OUTCOMES`; ``status`` goes to RAX and
    ``outputs`` (register -> value) to the registers on completion;
    ``flags`` overrides the flags the outcome sets (``cf pf af zf sf of
    df``; the default is VMsucceed / VMfailInvalid).
    """

    outcome: str
    status: int = 0
    outputs: Mapping[str, int] = field(default_factory=dict)
    flags: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown TDX outcome {self.outcome!r}")
        if set(self.outputs) - set(GPR64):
            raise ValueError(f"not registers: {sorted(set(self.outputs) - set(GPR64))}")
        if self.flags is not None and set(self.flags) - set(_SETTABLE_FLAGS):
            raise ValueError(f"the module can only set {_SETTABLE_FLAGS}")

    @classmethod
    def completion(cls, status: int = 0, outputs: Mapping[str, int] | None = None,
                   flags: Mapping[str, int] | None = None) -> "TdxBehaviour":
        return cls("completion", status, dict(outputs or {}), flags)

    @classmethod
    def vmfailinvalid(cls, flags: Mapping[str, int] | None = None) -> "TdxBehaviour":
        return cls("vmfailinvalid", flags=flags)

    @classmethod
    def fault(cls, trap: int) -> "TdxBehaviour":
        """A fault with trap number ``trap`` (6 = #UD, 13 = #GP)."""
        for outcome, number in _TRAP_OF.items():
            if number == trap:
                return cls(outcome)
        raise ValueError(f"the module model faults with #UD (6) or #GP (13), not {trap}")

    def _effective_flags(self) -> dict[str, int]:
        default = {name: 0 for name in ARITHMETIC_FLAGS}
        if self.outcome == "vmfailinvalid":
            default["cf"] = 1
        return {**default, **(self.flags or {})}

    def _command(self) -> str:
        if self.outcome in _TRAP_OF:
            return f"fault {_TRAP_OF[self.outcome]:x}"
        flags = self._effective_flags()
        clear = rflags_of({name: 1 for name in flags})
        set_ = rflags_of(flags)
        if self.outcome == "vmfailinvalid":
            return f"vmfail {clear:x} {set_:x}"
        mask = sum(1 << GPR64.index(name) for name in self.outputs)
        values = " ".join(f"{self.outputs[name] & _M64:x}" for name in GPR64 if name in self.outputs)
        return f"complete {self.status & _M64:x} {mask:x} {clear:x} {set_:x} {values}".rstrip()


_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class NativeCase:
    """One entry state and module script.

    ``regs``: register -> value (absent registers are 0; RSP defaults to
    :data:`DEFAULT_RSP`).  ``flags``: ``cf pf af zf sf of df`` and the
    tracked ``if`` (absent flags are 0).  ``memory``: address -> bytes,
    inside the stack or data region.  ``observe``: extra (address, length)
    ranges to report.  ``entry``: which entry symbol (default the first).
    ``return_slot``: write the return landing address at the entry RSP
    (function mode; single-instruction mode turns it off).
    """

    regs: Mapping[str, int] = field(default_factory=dict)
    flags: Mapping[str, int] = field(default_factory=dict)
    memory: Mapping[int, bytes] = field(default_factory=dict)
    tdx_script: Sequence[TdxBehaviour] = ()
    entry: str | None = None
    observe: Sequence[tuple[int, int]] = ()
    return_slot: bool = True
    stack_fill: int = 0x5A
    data_fill: int = 0xA5
    time_limit: float = 2.0
    """Seconds of real time before the case ends as a "crash" ("timeout")."""
    trace: bool = False
    """Record a :class:`NativeStep` before every instruction (``NativeResult.steps``)."""

    def entry_regs(self) -> dict[str, int]:
        """All sixteen entry registers, defaults filled in."""
        regs = {name: 0 for name in GPR64}
        regs["rsp"] = DEFAULT_RSP
        unknown = set(self.regs) - set(GPR64)
        if unknown:
            raise ValueError(f"not 64-bit registers: {sorted(unknown)}")
        regs.update({name: value & _M64 for name, value in self.regs.items()})
        return regs


@dataclass(frozen=True)
class NativeTdxEvent:
    """One SEAMCALL/TDCALL as the module saw it: the registers, RFLAGS and
    tracked IF at the instruction, its address, and the scripted outcome
    ("unscripted" when the script had run out)."""

    kind: str
    address: int
    outcome: str
    regs: dict[str, int]
    rflags: int
    if_flag: int

    @property
    def flags(self) -> dict[str, int]:
        return flags_of(self.rflags, self.if_flag)


@dataclass(frozen=True)
class NativeStep:
    """The state before one instruction of a traced case: its address, the
    registers, and the 8 bytes at RBP (``at_rbp``; None when RBP does not
    point into the stack or data region)."""

    rip: int
    regs: dict[str, int]
    at_rbp: int | None


@dataclass(frozen=True)
class NativeResult:
    """What the CPU did with one case.

    ``end`` is one of :data:`ENDS`; ``detail`` says more: the landing pad
    for "returned" ("return", or "taken" in single-instruction mode), the
    symbol for "panic", the landing for "fallthrough" (where the code was
    left for), the trap and address for "oops", the signal for "crash".
    ``regs``, ``rflags``, ``rip`` and ``flags`` (named, with the
    tracked IF) are the state at the end; ``memory`` holds, for each range
    of the case's memory and ``observe``, its final bytes; ``stack`` the
    final bytes from ``stack_address`` (a window around the entry RSP);
    ``steps`` the state before each instruction of a traced case.
    """

    end: str
    detail: str
    regs: dict[str, int]
    rflags: int
    if_flag: int
    rip: int
    memory: dict[int, bytes]
    stack_address: int
    stack: bytes
    events: tuple[NativeTdxEvent, ...]
    steps: tuple[NativeStep, ...] = ()

    @property
    def flags(self) -> dict[str, int]:
        return flags_of(self.rflags, self.if_flag)


Extable = Union[ExtableEntry, tuple]


def _cache_dir() -> Path:
    configured = os.environ.get("TDXPROOF_NATIVE_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"tdxproof-native-{os.getuid()}"


def _runner_source() -> str:
    return resources.files("model").joinpath("runtime/runner.c").read_text()


def _defines() -> list[str]:
    return [f"-DTDXPROOF_STACK_BASE={STACK_BASE:#x}ULL", f"-DTDXPROOF_STACK_SIZE={STACK_SIZE:#x}ULL",
            f"-DTDXPROOF_DATA_BASE={DATA_BASE:#x}ULL", f"-DTDXPROOF_DATA_SIZE={DATA_SIZE:#x}ULL"]


def _tool(command: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise NativeBuildError(f"{what} failed ({' '.join(command[:1])}):\n{done.stderr.strip()}")


def _extable_label(item: str | int, anchor: str) -> str:
    if isinstance(item, int):
        return f"{anchor} + {item}"
    return item


def _tables(entries: Sequence[str], extable: Sequence[Extable] | None, landings: int = 0) -> str:
    """Assembly appended to the program: the entry, landing and extable tables."""
    lines = [".pushsection .rodata.tdxproof_tables, \"a\"", ".balign 8",
             ".globl tdxproof_entries", f"tdxproof_entries: .quad {len(entries)}"]
    lines += [f".quad {name}" for name in entries]
    lines += [".globl tdxproof_landings", f"tdxproof_landings: .quad {landings}"]
    lines += [f".quad tdxproof_landing_{index}" for index in range(landings)]
    lines += [".globl tdxproof_use_ex_table", f"tdxproof_use_ex_table: .quad {int(extable is None)}",
              ".globl tdxproof_extable", f"tdxproof_extable: .quad {len(extable or ())}"]
    for item in extable or ():
        if isinstance(item, ExtableEntry):
            origin, fixup, kind = item.from_label, item.to_label, item.kind
        else:
            origin, fixup, kind = (tuple(item) + ("fault",))[:3]
        if kind not in _EXTABLE_KIND:
            raise NativeBuildError(f"exception-table entry of unsupported type {kind!r}")
        lines.append(f".quad {_extable_label(origin, entries[0])}, {_extable_label(fixup, entries[0])}, "
                     f"{_EXTABLE_KIND[kind]}")
    lines += [".popsection", ".section .note.GNU-stack,\"\",@progbits", ""]
    return "\n".join(lines)


_SIZE = re.compile(r"^\s*\.size\s+([^\s,]+)\s*,")
_LABEL = re.compile(r"^\s*([^\s:#\"]+):")


def with_landings(assembly: str, program: Program) -> tuple[str, tuple[str, ...]]:
    """``assembly`` with a landing after each function of ``program`` and at
    each of its code labels outside every function (see the module doc),
    and what reaching each landing means, in order.

    >>> from grammar.ast import Function
    >>> from grammar.source import Origin
    >>> f = Function("f", Origin("a.S", 1), ".text", ())
    >>> text, meaning = with_landings("f:\\n nop\\n .size f, .-f\\nstray:\\n nop\\n",
    ...                               Program(("a.S",), (f,), labels={"f": ("f", 0), "stray": (None, -1)}))
    >>> text.splitlines()[3:6]
    ['tdxproof_landing_0:\\tud2', 'stray:', 'tdxproof_landing_1:\\tud2']
    >>> meaning
    ("past the end of 'f'", "to 'stray', code outside every function")
    """
    functions = {fn.name for fn in program.functions}
    stray = {name for name, (function, _) in program.labels.items() if function is None}
    lines, meaning = [], []
    for line in assembly.splitlines():
        lines.append(line)
        size, label = _SIZE.match(line), _LABEL.match(line)
        if size and size[1] in functions:
            meaning.append(f"past the end of {size[1]!r}")
        elif label and label[1] in stray:
            meaning.append(outside_label(label[1]))
        else:
            continue
        lines.append(f"tdxproof_landing_{len(meaning) - 1}:\tud2")
    return "\n".join(lines) + "\n", tuple(meaning)


def _glue(never_returning: Sequence[str]) -> str:
    """The never-returning stubs and the old-style extable handler symbols."""
    lines = [".text", ".balign 16"]
    for index, name in enumerate(never_returning):
        lines += [f".weak {name}", f"{name}:", f"tdxproof_panic_{index}: ud2", ".balign 16"]
    lines += [".section .rodata", ".balign 8", ".globl tdxproof_panic_stubs",
              f"tdxproof_panic_stubs: .quad {len(never_returning)}"]
    lines += [f".quad tdxproof_panic_{index}" for index in range(len(never_returning))]
    lines += [".weak ex_handler_default, ex_handler_fault",
              "ex_handler_default: .byte 1", "ex_handler_fault: .byte 2",
              ".section .note.GNU-stack,\"\",@progbits", ""]
    return "\n".join(lines)


class NativeProgram:
    """An assembled and linked runner binary for one program."""

    def __init__(self, binary: Path, entries: tuple[str, ...], never_returning: tuple[str, ...],
                 symbols: dict[str, int], landings: tuple[str, ...] = ()):
        self.binary = binary
        self.entries = entries
        self.never_returning = never_returning
        self.symbols = symbols
        self.landings = landings

    @classmethod
    def build(cls, assembly: str, entry: str | Sequence[str], *,
              extable: Sequence[Extable] | None = None,
              never_returning: Sequence[str] = NEVER_RETURNING,
              program: Program | None = None) -> "NativeProgram":
        """Assemble ``assembly`` and link it with the runner (cached).

        ``entry``: the symbol (or symbols) a case may start at.
        ``extable``: ``None`` to use the assembly's own ``__ex_table``
        section, else the entries to use instead.  ``never_returning``:
        symbols whose call ends a case as "panic".  ``program``: the
        program ``assembly`` holds, to put fall-through landings in it
        (:func:`with_landings`).
        """
        reason = native_available()
        if reason:
            raise NativeUnavailable(reason)
        entries = (entry,) if isinstance(entry, str) else tuple(entry)
        if not entries:
            raise ValueError("at least one entry symbol is needed")
        never_returning = tuple(never_returning)
        landings: tuple[str, ...] = ()
        if program is not None:
            assembly, landings = with_landings(assembly, program)
        program_text = assembly.rstrip("\n") + "\n" + _tables(entries, extable, len(landings))
        glue_text = _glue(never_returning)
        runner_text = _runner_source()
        key = hashlib.sha256(json.dumps([program_text, glue_text, runner_text, _defines(),
                                         CODE_BASE]).encode()).hexdigest()[:24]
        cache = _cache_dir()
        binary = cache / f"runner-{key}"
        symbols_file = cache / f"runner-{key}.symbols.json"
        if not (binary.exists() and symbols_file.exists()):
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as work:
                workdir = Path(work)
                (workdir / "program.s").write_text(program_text)
                (workdir / "glue.s").write_text(glue_text)
                (workdir / "runner.c").write_text(runner_text)
                _tool(["as", "--64", "-o", "program.o", "program.s"], workdir, "assembling the program")
                _tool(["as", "--64", "-o", "glue.o", "glue.s"], workdir, "assembling the harness glue")
                _tool(["cc", "-O2", "-std=gnu11", "-Wall", "-no-pie", *_defines(), "-c", "-o", "runner.o",
                       "runner.c"], workdir, "compiling the runner")
                _tool(["cc", "-no-pie", f"-Wl,-Ttext-segment={CODE_BASE:#x}", "-o", "runner",
                       "runner.o", "program.o", "glue.o"], workdir, "linking the runner")
                symbols = _read_symbols(workdir / "runner")
                (workdir / "symbols.json").write_text(json.dumps(symbols))
                os.replace(workdir / "symbols.json", symbols_file)
                os.replace(workdir / "runner", binary)
        symbols = json.loads(symbols_file.read_text())
        return cls(binary, entries, never_returning, symbols, landings)

    def symbol(self, name: str) -> int:
        """The address of a (global or local, non-``.L``) symbol."""
        try:
            return self.symbols[name]
        except KeyError:
            raise NativeError(f"no symbol {name!r} in the native program") from None

    def describe(self, address: int) -> str:
        """``symbol+offset`` for the nearest symbol at or below ``address``."""
        best = max(((value, name) for name, value in self.symbols.items() if value <= address),
                   default=None)
        if best is None:
            return f"{address:#x}"
        value, name = best
        return name if value == address else f"{name}+{address - value:#x}"

    def run(self, cases: Sequence[NativeCase], timeout: float = 120.0) -> list[NativeResult]:
        """Run every case in one runner process; results in case order."""
        text = "".join(self._serialise(case) for case in cases)
        done = subprocess.run([str(self.binary)], input=text, capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            raise NativeError(f"native runner failed (status {done.returncode}): {done.stderr.strip()}")
        results = self._parse(done.stdout)
        if len(results) != len(cases):
            raise NativeError(f"native runner answered {len(results)} of {len(cases)} cases")
        return results

    # --- protocol --------------------------------------------------------

    def _serialise(self, case: NativeCase) -> str:
        entry = self.entries.index(case.entry) if case.entry is not None else 0
        unknown = set(case.flags) - set(FLAGS)
        if unknown:
            raise ValueError(f"unknown flags {sorted(unknown)}")
        regs = case.entry_regs()
        lines = [f"case {entry:x} {rflags_of(case.flags):x} {case.flags.get('if', 0) & 1:x} "
                 f"{case.stack_fill & 0xFF:x} {case.data_fill & 0xFF:x} {int(case.return_slot)} "
                 f"{max(1, round(case.time_limit * 1e6)):x} {int(case.trace)}",
                 "regs " + " ".join(f"{regs[name]:x}" for name in GPR64)]
        if case.return_slot:
            _check_in_region(regs["rsp"], 8, "the entry RSP's return slot", stack_only=True)
        for address, data in case.memory.items():
            _check_in_region(address, len(data), f"memory at {address:#x}")
            if case.return_slot and address < regs["rsp"] + 8 and regs["rsp"] < address + len(data):
                raise ValueError(f"memory at {address:#x} overlaps the return-address slot")
            lines.append(f"mem {address:x} {bytes(data).hex()}")
        for address, length in self._observed(case, regs):
            _check_in_region(address, length, f"observed range at {address:#x}")
            lines.append(f"observe {address:x} {length:x}")
        lines += [behaviour._command() for behaviour in case.tdx_script]
        lines.append("run")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _observed(case: NativeCase, regs: dict[str, int]) -> list[tuple[int, int]]:
        ranges = [(address, len(data)) for address, data in case.memory.items()]
        ranges += [tuple(item) for item in case.observe]
        ranges.append(_stack_window(regs["rsp"]) if case.return_slot else (STACK_BASE, 0))
        return ranges

    def _parse(self, text: str) -> list[NativeResult]:
        results: list[NativeResult] = []
        lines = iter(text.splitlines())
        for line in lines:
            _, word, detail = line.split()
            end = CRASH if word == CRASH else PathEnd(word)
            state = [int(word, 16) for word in next(lines).split()[1:]]
            events, memory, steps = [], [], []
            for item in lines:
                words = item.split()
                if words[0] == "done":
                    break
                if words[0] == "event":
                    values = [int(word, 16) for word in words[4:]]
                    events.append(NativeTdxEvent(words[1], int(words[2], 16), words[3],
                                                 dict(zip(GPR64, values[:16])), values[16], values[17]))
                elif words[0] == "step":
                    values = [int(word, 16) for word in words[1:]]
                    steps.append(NativeStep(values[0], dict(zip(GPR64, values[1:17])),
                                            values[18] if values[17] else None))
                else:
                    memory.append((int(words[1], 16), bytes.fromhex(words[2] if len(words) > 2 else "")))
            if end == PathEnd.PANIC:
                detail = self.never_returning[int(detail)]
            elif end == PathEnd.FALLTHROUGH:
                detail = self.landings[int(detail)]
            *ranges, (stack_address, stack) = memory
            results.append(NativeResult(
                end=end, detail=detail, regs=dict(zip(GPR64, state[:16])), rflags=state[16],
                if_flag=state[17], rip=state[18], memory=dict(ranges), stack_address=stack_address,
                stack=stack, events=tuple(events), steps=tuple(steps)))
        return results


def _stack_window(rsp: int) -> tuple[int, int]:
    below, above = STACK_WINDOW
    start = max(STACK_BASE, rsp - below)
    stop = min(STACK_BASE + STACK_SIZE, rsp + above)
    return start, stop - start


def in_region(address: int, length: int, regions: Sequence[tuple[int, int]] = REGIONS) -> bool:
    """Whether ``length`` bytes at ``address`` lie inside one of ``regions``.

    >>> in_region(ARGS_ADDRESS, 112), in_region(STACK_BASE - 8, 16), in_region(0x1000, 8)
    (True, False, False)
    """
    return any(base <= address and address + length <= base + size for base, size in regions)


def _check_in_region(address: int, length: int, what: str, stack_only: bool = False) -> None:
    if not in_region(address, length, REGIONS[:1] if stack_only else REGIONS):
        where = "the stack region" if stack_only else "the stack or data region"
        raise ValueError(f"{what} (+{length} bytes) is outside {where}")


def _read_symbols(binary: Path) -> dict[str, int]:
    done = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True)
    if done.returncode != 0:
        raise NativeBuildError(f"nm failed: {done.stderr.strip()}")
    symbols: dict[str, int] = {}
    for line in done.stdout.splitlines():
        words = line.split()
        if len(words) == 3:
            symbols.setdefault(words[2], int(words[0], 16))
    return symbols


TAKEN = "{taken}"
"""The placeholder for a branch/call target in single-instruction forms."""


class InstructionBatch:
    """Single instructions, each wrapped as a tiny function, in one binary.

    Form ``i`` runs from ``tdxproof_form_i``: the instruction, then a jump
    to the return landing (result detail "return"); its ``{taken}`` target
    jumps to the taken landing (detail "taken").  No return slot is
    written: RSP is whatever the case says.
    """

    def __init__(self, program: NativeProgram, forms: tuple[str, ...]):
        self.program = program
        self.forms = forms

    @classmethod
    def build(cls, forms: Sequence[str]) -> "InstructionBatch":
        forms = tuple(forms)
        lines = [".text"]
        for index, form in enumerate(forms):
            if "\n" in form or ";" in form:
                raise ValueError(f"a form is one instruction: {form!r}")
            lines += [f".globl tdxproof_form_{index}", f"tdxproof_form_{index}:",
                      "\t" + form.replace(TAKEN, f"tdxproof_taken_{index}"),
                      f"tdxproof_after_{index}:", "\tjmp tdxproof_return_landing",
                      f"tdxproof_taken_{index}:", "\tjmp tdxproof_taken_landing"]
        entries = [f"tdxproof_form_{index}" for index in range(len(forms))]
        program = NativeProgram.build("\n".join(lines) + "\n", entries, extable=(), never_returning=())
        return cls(program, forms)

    def return_address(self, index: int) -> int:
        """The address a ``call`` in form ``index`` pushes."""
        return self.program.symbol(f"tdxproof_after_{index}")

    @property
    def taken_landing(self) -> int:
        """Where a ``ret`` form should find its return address to report "taken"."""
        return self.program.symbol("tdxproof_taken_landing")

    def run(self, index: int, cases: Sequence[NativeCase], timeout: float = 120.0) -> list[NativeResult]:
        """Run form ``index`` on every case (entry and return slot are set here)."""
        return self.run_each([(index, case) for case in cases], timeout)

    def run_each(self, items: Sequence[tuple[int, NativeCase]], timeout: float = 120.0) -> list[NativeResult]:
        """Run each (form index, case) pair, all in one runner process."""
        prepared = [NativeCase(regs=case.regs, flags=case.flags, memory=case.memory,
                               entry=f"tdxproof_form_{index}", observe=case.observe, return_slot=False,
                               stack_fill=case.stack_fill, data_fill=case.data_fill, time_limit=case.time_limit,
                               trace=case.trace)
                    for index, case in items]
        return self.program.run(prepared, timeout=timeout)
