"""Per-instruction co-simulation: the model against the CPU (issue 3).

Every mnemonic the lifter supports, in every operand form and width the
parser's form table lists (``grammar.parser.FORMS``), is written as AT&T
text, assembled into one native batch (``model.native.InstructionBatch``),
and run on the CPU from 200 random register-and-flag states (random values
with random bit density, plus 0, -1 and sign bits).  On each state the
native result is compared with

* the concrete interpreter (``model.concrete``) on every output it defines
  (all sixteen registers, every flag it does not report undefined, the
  memory windows, and where control went), and
* the Z3 interpreter (``model.symbolic``): the form is executed once on a
  fully symbolic entry state; each output term is evaluated on the same
  concrete inputs by substituting them and simplifying.  Terms that contain
  the interpreter's fresh "undefined" variables are evaluated twice (those
  variables all-zero and all-ones): a difference must coincide with the
  concrete interpreter reporting the output undefined.

Memory operands point into the harness's scratch page (base ``%rbp``,
index ``%rdi`` in 0..7); the window there (and, for stack forms, a window
around RSP inside the harness stack) holds random 64-bit words, which Z3
sees as one variable per word.  ``ret`` finds the address of the harness's
"taken" landing pad on the stack.  For speed, the Z3 outputs of a form are
one concatenated term, with the registers that are the same in every state
(RBP, a stack form's RSP) substituted once and one specialisation per
value of the index register; each state then costs one substitution and
one simplification.

Not co-simulated here: ``tdcall``/``seamcall`` (their effect is the
executor's TDX-module model, checked by the whole-wrapper co-simulation
and the harness tests), and the forms the lifter refuses by design
(``refused_by_design``: checked to raise ``UnsupportedInstruction``).
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from functools import cached_property

import pytest
import z3

from grammar import ast
from grammar.ast import GPR64
from grammar.parser import FORMS, WIDTH_SUFFIXES, parse_instruction
from grammar.source import Origin, SourceError
from model import bv, concrete, ir, symbolic
from model.abi import FLAGS
from model.lift import SUPPORTED, UnsupportedInstruction, lift
from model.native import (SCRATCH_ADDRESS, STACK_BASE, TAKEN, InstructionBatch, NativeCase, NativeResult,
                          native_available)

pytestmark = pytest.mark.skipif(native_available() is not None, reason=str(native_available()))

STATES = 200
M64 = (1 << 64) - 1
ORIGIN = Origin("cosim.S", 1)
MEMORY_BASE = SCRATCH_ADDRESS + 0x40
"""``%rbp`` in every state: memory operands are ``disp(%rbp[,%rdi,4])``."""
WINDOW = (MEMORY_BASE - 0x10, 0x40)
"""The scratch bytes given to the CPU and the interpreters, compared after."""
STACK_WINDOW_BELOW, STACK_WINDOW_WORDS = 16, 4
"""The stack bytes of stack forms: 16 below RSP to 16 above."""
NOT_COSIMULATED = {"tdcall", "seamcall"}

# --- the forms ------------------------------------------------------------------

REGISTERS_BY_WIDTH = {
    64: (("rbx", "rax"), ("r9", "r15"), ("rdx", "rdx")),
    32: (("ebx", "eax"), ("r8d", "esi")),
    16: (("bx", "ax"), ("r10w", "si")),
    8: (("bl", "al"), ("ah", "dh"), ("sil", "r11b")),
}
"""(source, destination) register pairs per width; none is %rcx (the shift
count), %rbp/%rdi (memory base and index) or %rsp."""
MEMORY_OPERANDS = ("0x10(%rbp)", "-0x8(%rbp,%rdi,4)")
ADDRESS_OPERANDS = ("0x7f(%rbx,%rdx,8)", "-0x80(%rsi)")
IMMEDIATES = (-3, 0x5A5A5A5A)
SHIFT_COUNTS = (0, 1, 7, 33)
BIT_OFFSETS = (3, 45)
FIXED_OPERANDS = {"I": "$0x8123456789abcdef", "c": "%cl", "w": "$16", "t": TAKEN,
                  "*r": "*%rax", "*m": "*0x10(%rbp)"}
SIZED_TOKENS = {"r", "m", "i", "I", "c", "b", "x", "y", "a"}


@dataclass(frozen=True)
class Form:
    """One instruction text and what the model makes of it."""

    text: str
    instr: ast.Instruction

    @cached_property
    def step(self) -> ir.Step:
        return lift(self.instr)

    @property
    def uses_stack(self) -> bool:
        return self.instr.base in ("push", "pop", "call", "ret")

    @property
    def uses_memory(self) -> bool:
        return self.instr.base != "lea" and any(isinstance(op, ast.Memory) for op in self.instr.operands)


def _immediate(value: int, width: int) -> str:
    if width < 32 and value > 0:
        value &= (1 << width) - 1
    return f"${value:#x}" if value >= 0 else f"$-{-value:#x}"


def _variant_count(form, tokens: list[str]) -> int:
    """How many texts one (form, signature, width) gets: two shift counts
    for ``shl $n, %reg``-style forms, else one."""
    if "b" in tokens and "r" in tokens and form.base != "bt":
        return 2
    return 1


def _text(spelling: str, form, tokens: list[str], width: int | None, source: int | None,
          choice: random.Random, variant: int) -> str:
    """A text of one (form, signature, width): registers, addressing modes
    and immediates are drawn with ``choice``; shift counts and bit offsets
    are taken in turn by ``variant``."""
    counts = BIT_OFFSETS if form.base == "bt" else SHIFT_COUNTS
    register_positions = [i for i, token in enumerate(tokens) if token in ("r", "x")]
    suffix = ""
    if (width is not None and len(form.widths) > 1 and WIDTH_SUFFIXES[width] in form.suffixes
            and not form.suffix_sizes_source):
        suffix = WIDTH_SUFFIXES[width]
    operands = []
    for position, token in enumerate(tokens):
        if token in ("r", "x"):
            pair = choice.choice(REGISTERS_BY_WIDTH[source if token == "x" else width])
            is_source = len(register_positions) == 2 and position == register_positions[0]
            operands.append("%" + pair[0 if is_source else 1])
        elif token in ("m", "y"):
            operands.append(choice.choice(MEMORY_OPERANDS))
        elif token == "a":
            operands.append(choice.choice(ADDRESS_OPERANDS))
        elif token == "i":
            operands.append(_immediate(choice.choice(IMMEDIATES), width))
        elif token == "b":
            operands.append(f"${counts[variant % len(counts)]}")
        elif token in FIXED_OPERANDS:
            operands.append(FIXED_OPERANDS[token])
        else:
            raise AssertionError(f"operand token {token!r} not generated")
    return f"{spelling}{suffix} {', '.join(operands)}".strip()


def _spellings() -> dict[object, tuple[str, object]]:
    """One spelling per distinct parser form (the canonical one where it
    exists: ``jz`` and ``je`` are one form)."""
    chosen: dict[object, tuple[str, object]] = {}
    for spelling, form in FORMS.items():
        if form.suffix_sizes_source:
            continue  # movzx/movsx with a source suffix: the movzb/movsw... spellings cover them
        if form not in chosen or spelling == form.base:
            chosen[form] = (spelling, form)
    return chosen


def _parse(text: str) -> ast.Instruction:
    return parse_instruction(text.replace(TAKEN, "taken"), ORIGIN, {})


def _table_texts() -> tuple[list[str], dict[str, str], list[str]]:
    """One text per (form, signature, width) of the parser's table (two
    for shifts by an immediate), for every supported mnemonic; a text the
    parser rejects (``%ah`` next to a REX register) is replaced by another
    choice.  Returns the texts, the rejected ones with the reason, and the
    (form, signature, width) combinations no choice could express."""
    texts, rejected, missing = [], {}, []
    variant = 0  # shift counts rotate across all shift forms
    for spelling, form in _spellings().values():
        if form.base not in SUPPORTED or form.base in NOT_COSIMULATED:
            continue
        for signature in form.signatures:
            tokens = signature.split()
            sized = any(token in SIZED_TOKENS for token in tokens)
            widths = sorted(form.widths) if sized and form.widths else [None]
            for width in widths:
                for source in sorted(form.source_widths) or [None]:
                    choice = random.Random(zlib.crc32(f"{spelling} {signature} {width} {source}".encode()))
                    for _ in range(_variant_count(form, tokens)):
                        for _attempt in range(5):
                            text = _text(spelling, form, tokens, width, source, choice, variant)
                            try:
                                _parse(text)
                            except SourceError as error:
                                rejected[text] = error.message
                                continue
                            texts.append(text)
                            break
                        else:
                            missing.append(f"{spelling} {signature!r} width {width} source {source}")
                        variant += 1
    return texts, rejected, missing


EXTRA_TEXTS = ("addb %ah, %bh", "subb %bl, %ah", "movb %ah, %al", "xchgb %al, %ah", "movzbl %ah, %eax",
               "movsbq %sil, %r8", "shlb %cl, %ah", "rolb $1, %bh", "incb %ah", "sete %ah",
               "cmovgl %r8d, %r8d", "xorl %eax, %eax", "leaq (%rax), %rax", "movl $-1, %eax")
"""Sub-register corners the table's rotation might not reach: high-byte
registers as source and destination, 32-bit writes onto the same register."""


def _all_forms() -> tuple[list[Form], list[Form], dict[str, str], list[str]]:
    """(co-simulated forms, refused forms, texts the parser rejected,
    table combinations left without a text)."""
    texts, rejected, missing = _table_texts()
    forms, refused = [], []
    for text in texts + list(EXTRA_TEXTS):
        candidate = Form(text, _parse(text))
        try:
            candidate.step
        except UnsupportedInstruction:
            refused.append(candidate)
            continue
        forms.append(candidate)
    return forms, refused, rejected, missing


FORMS_UNDER_TEST, REFUSED_FORMS, REJECTED_TEXTS, MISSING_FORMS = _all_forms()


def refused_by_design(instr: ast.Instruction) -> bool:
    """Forms the parser accepts and the lifter refuses by design: indirect
    branches, ``ret $n``, ``bt`` with a register bit offset into memory
    (bit-string addressing)."""
    kinds = tuple(type(operand) for operand in instr.operands)
    return ((instr.base in ("jmp", "call") and kinds == (ast.Indirect,))
            or (instr.base == "ret" and kinds == (ast.Immediate,))
            or (instr.base == "bt" and kinds == (ast.Register, ast.Memory)))


# --- random states ---------------------------------------------------------------------

EDGE_VALUES = (0, M64, 1 << 63, (1 << 63) - 1, 1 << 31, (1 << 31) - 1, 0x8000, 0x80, 0x7F, 1)


def random_value(rng: random.Random) -> int:
    """A 64-bit value: an edge value (0, -1, sign bits), a small number, or
    random bits at a random density (1/8 ... 7/8 of the bits set)."""
    kind = rng.getrandbits(3)
    if kind == 0:
        return EDGE_VALUES[rng.getrandbits(8) % len(EDGE_VALUES)]
    if kind == 1:
        return rng.getrandbits(1 + rng.getrandbits(4))
    value = rng.getrandbits(64)
    if kind < 5:  # sparse: and-ing halves the density each time
        for _ in range(kind - 2):
            value &= rng.getrandbits(64)
    else:  # dense
        for _ in range(kind - 4):
            value |= rng.getrandbits(64)
    return value


@dataclass(frozen=True)
class State:
    """One entry state.  ``memory`` holds, per window the form may touch
    ("scratch" at :data:`WINDOW`, "stack" around RSP), its initial contents
    as 64-bit little-endian words."""

    regs: dict[str, int]
    flags: dict[str, int]
    memory: dict[str, tuple[int, ...]]

    def window_start(self, window: str) -> int:
        return WINDOW[0] if window == "scratch" else self.regs["rsp"] - STACK_WINDOW_BELOW

    @property
    def windows(self) -> dict[int, bytes]:
        """Window start address -> initial bytes."""
        return {self.window_start(window): b"".join(word.to_bytes(8, "little") for word in words)
                for window, words in self.memory.items()}


def fixed_registers(form: Form) -> dict[str, int]:
    """Registers with the same value in every state of a form: the memory
    base, and a stack form's RSP (inside the harness stack)."""
    fixed = {"rbp": MEMORY_BASE}
    if form.uses_stack:
        fixed["rsp"] = STACK_BASE + 0x4000 + 8 * (zlib.crc32(form.text.encode()) % 64)
    return fixed


def form_windows(form: Form) -> dict[str, int]:
    """The memory windows a form may touch -> their size in 64-bit words."""
    windows = {"scratch": WINDOW[1] // 8} if form.uses_memory else {}
    if form.uses_stack:
        windows["stack"] = STACK_WINDOW_WORDS
    return windows


def random_state(rng: random.Random, form: Form, taken_landing: int) -> State:
    regs = {name: random_value(rng) for name in GPR64}
    regs["rdi"] = rng.getrandbits(3)
    if rng.getrandbits(2) == 0:
        regs["rcx"] = rng.randrange(70)  # shift counts around the interesting range
    regs.update(fixed_registers(form))
    memory = {window: [random_value(rng) for _ in range(words)] for window, words in form_windows(form).items()}
    if form.instr.base == "ret":  # the return address: the harness's "taken" landing pad
        memory["stack"][STACK_WINDOW_BELOW // 8] = taken_landing
    flags = {name: rng.getrandbits(1) for name in FLAGS}
    return State(regs, flags, {window: tuple(words) for window, words in memory.items()})


def native_case(state: State) -> NativeCase:
    return NativeCase(regs=state.regs, flags=state.flags, memory=state.windows)


# --- the concrete interpreter --------------------------------------------------------------

@dataclass
class Outcome:
    """A model's prediction: final registers, flags (None = undefined), the
    bytes of the windows, and the control decision ("return", "taken",
    or "trap-N")."""

    regs: dict[str, int]
    flags: dict[str, int | None]
    windows: dict[int, bytes]
    control: str


def concrete_outcome(form: Form, state: State, return_address: int, taken_landing: int) -> Outcome:
    memory = {}
    for start, data in state.windows.items():
        memory.update(zip(range(start, start + len(data)), data))
    before = concrete.ConcreteState(dict(state.regs), dict(state.flags), memory)

    def outside(address: int) -> int:
        raise AssertionError(f"{form.text}: the model reads {address:#x}, outside the windows")

    env = concrete.ConcreteEnv(return_address=return_address, read_missing=outside)
    after = concrete.execute(form.step, before, env)
    control = form.step.control
    if control is None:
        decision = "return"
    elif isinstance(control, (ir.Jump, ir.Call)):
        decision = "taken"
    elif isinstance(control, ir.Branch):
        decision = "taken" if concrete.evaluate(control.condition, before, env) else "return"
    elif isinstance(control, ir.Return):
        target = concrete.evaluate(control.address, before, env)
        decision = "taken" if target == taken_landing else f"return-to-{target:#x}"
    elif isinstance(control, ir.Trap):
        decision = f"trap-{control.vector}"
    else:
        raise AssertionError(f"{form.text}: control {control} not co-simulated")
    windows = {start: bytes(after.memory[start + offset] for offset in range(len(data)))
               for start, data in state.windows.items()}
    return Outcome(after.regs, after.flags, windows, decision)


def native_outcome(result: NativeResult) -> Outcome:
    if result.end == "returned":
        decision = result.detail
    elif result.end == "oops" and result.detail.startswith("trap-"):
        decision = "-".join(result.detail.split("-")[:2])
    else:
        decision = f"{result.end}:{result.detail}"
    return Outcome(result.regs, result.flags, dict(result.memory), decision)


# --- the Z3 interpreter ------------------------------------------------------------------

_CTX = z3.main_ctx()


class _Raw:
    """Z3's C functions without the Python wrappers' per-call error checks
    (each wrapper keeps its ctypes function as a default argument): a state
    costs a handful of calls, and the wrappers' overhead dominated."""

    def __getattr__(self, name: str):
        return getattr(z3.z3core, name).__defaults__[0].f


_RAW = _Raw()


class RecordingEnv(symbolic.SymbolicEnv):
    """The plain symbolic environment, remembering the fresh variables it
    made for undefined values."""

    def __init__(self, return_address: z3.BitVecRef):
        super().__init__(prefix="undef", return_address=return_address)
        self.undefined: list[z3.BitVecRef] = []

    def fresh(self, width: int, reason: str) -> z3.BitVecRef:
        variable = super().fresh(width, reason)
        self.undefined.append(variable)
        return variable


class SymbolicForm:
    """The form's outputs as Z3 terms of the entry state, in one
    concatenation, ready to be evaluated on concrete entry values."""

    def __init__(self, form: Form, return_address: int):
        entry = symbolic.SymbolicState.fresh("entry")
        env = RecordingEnv(return_address=bv.const(return_address, 64))
        final = symbolic.execute(form.step, entry, env)
        outputs: list[tuple[str, z3.BitVecRef]] = []
        for effect in form.step.effects:
            if isinstance(effect, ir.SetReg):
                outputs.append((f"reg:{effect.name}", final.regs[effect.name]))
            elif isinstance(effect, ir.SetFlag):
                outputs.append((f"flag:{effect.name}", final.flags[effect.name]))
            else:
                address = symbolic.evaluate(effect.address, entry, env)
                outputs.append(("store-address", address))
                for offset in range(effect.value.width // 8):
                    outputs.append((f"store-byte:{offset}",
                                    z3.Select(final.memory.array, address + bv.const(offset, 64))))
        control = form.step.control
        if isinstance(control, ir.Branch):
            outputs.append(("branch", symbolic.evaluate(control.condition, entry, env)))
        elif isinstance(control, ir.Return):
            outputs.append(("return-address", symbolic.evaluate(control.address, entry, env)))
        self.labels = [label for label, _ in outputs]
        self.widths = [term.size() for _, term in outputs]
        # entry memory := the windows' bytes, taken from one variable per 64-bit word
        words: list[tuple[str, int, z3.BitVecRef]] = []
        memory = z3.K(z3.BitVecSort(64), bv.const(0, 8))
        for window, count in form_windows(form).items():
            start = (bv.const(WINDOW[0], 64) if window == "scratch"
                     else entry.regs["rsp"] - bv.const(STACK_WINDOW_BELOW, 64))
            for index in range(count):
                word = bv.variable(f"{window}_word{index}", 64)
                words.append((window, index, word))
                for offset in range(8):
                    memory = z3.Store(memory, start + bv.const(8 * index + offset, 64),
                                      bv.extract(8 * offset + 7, 8 * offset, word))
        terms = [z3.substitute(term, (entry.memory.array, memory)) for _, term in outputs]
        # outputs that mention an undefined value get a second copy: with
        # those values all-zero (first copy) and all-ones (second copy)
        zero = [(var, bv.const(0, var.size())) for var in env.undefined]
        ones = [(var, bv.const(-1, var.size())) for var in env.undefined]
        low = [z3.substitute(term, *zero) if zero else term for term in terms]
        self.doubled = [i for i, (term, value) in enumerate(zip(terms, low)) if not term.eq(value)]
        high = [z3.substitute(terms[i], *ones) for i in self.doubled]
        # RBP (and a stack form's RSP) are the same in every state: substitute
        # them now, and specialise on the index register's eight values, so
        # that the windows' loads resolve here and not once per state
        regs, flags, _ = _reads(form.step)
        fixed = {name: value for name, value in fixed_registers(form).items()}
        combined = z3.substitute(_concat(low + high), *[(entry.regs[name], bv.const(value, 64))
                                                         for name, value in fixed.items()]) if terms else None
        self.indexed = "rdi" in regs
        self.combined = {}
        for index in range(8) if self.indexed else (None,):
            if combined is not None:
                specialised = (z3.substitute(combined, (entry.regs["rdi"], bv.const(index, 64)))
                               if self.indexed else combined)
                self.combined[index] = z3.simplify(specialised)
        regs -= set(fixed) | {"rdi"}
        self.inputs = ([(f"reg:{name}", entry.regs[name]) for name in GPR64 if name in regs]
                       + [(f"flag:{name}", entry.flags[name]) for name in FLAGS if name in flags]
                       + [(f"{window}:{index}", word) for window, index, word in words])
        self._from = (z3.Ast * len(self.inputs))(*[term.as_ast() for _, term in self.inputs])
        self._sort_refs = [term.sort() for _, term in self.inputs]  # keeps the sorts alive
        self._sorts = [sort.ast for sort in self._sort_refs]

    def evaluate(self, state: State) -> list[tuple[str, int, int]]:
        """(output label, value with undefined = 0, value with undefined = -1)
        for each output, in order."""
        if not self.combined:
            return []
        combined = self.combined[state.regs["rdi"] if self.indexed else None]
        ctx = _CTX.ref()
        numerals = []
        for (label, _), sort in zip(self.inputs, self._sorts):
            kind, _, name = label.partition(":")
            value = (state.regs[name] if kind == "reg" else state.flags[name] if kind == "flag"
                     else state.memory[kind][int(name)])
            numeral = _RAW.Z3_mk_unsigned_int64(ctx, value, sort)
            _RAW.Z3_inc_ref(ctx, numeral)  # before the next call may free it
            numerals.append(numeral)
        to = (z3.Ast * len(numerals))(*numerals)
        substituted = _RAW.Z3_substitute(ctx, combined.as_ast(), len(numerals), self._from, to)
        _RAW.Z3_inc_ref(ctx, substituted)
        simple = _RAW.Z3_simplify(ctx, substituted)
        _RAW.Z3_inc_ref(ctx, simple)
        try:
            if not _RAW.Z3_is_numeral_ast(ctx, simple):
                raise AssertionError("the Z3 outputs did not simplify to constants")
            number = int(_RAW.Z3_get_numeral_string(ctx, simple))
        finally:
            for node in numerals + [substituted, simple]:
                _RAW.Z3_dec_ref(ctx, node)
        fields = []
        for width in reversed(self.widths + [self.widths[i] for i in self.doubled]):
            fields.append(number & ((1 << width) - 1))
            number >>= width
        fields.reverse()
        high = dict(zip(self.doubled, fields[len(self.labels):]))
        return [(label, value, high.get(i, value)) for i, (label, value) in enumerate(zip(self.labels, fields))]


def _reads(step: ir.Step) -> tuple[set[str], set[str], bool]:
    """The registers, flags and (whether) memory the step's IR reads."""
    regs, flags, memory = set(), set(), False
    stack: list[object] = []
    for effect in step.effects:
        stack += [effect.value] + ([effect.address] if isinstance(effect, ir.Store) else [])
    control = step.control
    if isinstance(control, ir.Branch):
        stack.append(control.condition)
    elif isinstance(control, ir.Return):
        stack.append(control.address)
    while stack:
        node = stack.pop()
        if isinstance(node, ir.Reg):
            regs.add(node.name)
        elif isinstance(node, ir.Flag):
            flags.add(node.name)
        elif isinstance(node, ir.Load):
            memory = True
        stack += [value for value in vars(node).values() if hasattr(value, "width")]
    return regs, flags, memory


def _concat(terms: list[z3.BitVecRef]) -> z3.BitVecRef:
    result = terms[0]
    for term in terms[1:]:
        result = bv.concat(result, term)
    return result


# --- the comparison --------------------------------------------------------------------------

def _describe(state: State) -> str:
    regs = " ".join(f"{name}={value:#x}" for name, value in state.regs.items())
    flags = "".join(name.upper() if bit else name for name, bit in state.flags.items())
    memory = " ".join(f"{start:#x}:{data.hex()}" for start, data in state.windows.items())
    return f"{regs} flags={flags} memory {memory}"


def differences(form: Form, state: State, native: Outcome, model: Outcome,
                z3_values: list[tuple[str, int, int]]) -> list[str]:
    found = []
    if native.control != model.control:
        found.append(f"control: native {native.control}, model {model.control}")
    for name in GPR64:
        if native.regs[name] != model.regs[name]:
            found.append(f"{name}: native {native.regs[name]:#x}, concrete {model.regs[name]:#x}")
    for name in FLAGS:
        if model.flags[name] is not None and native.flags[name] != model.flags[name]:
            found.append(f"{name}: native {native.flags[name]}, concrete {model.flags[name]}")
    for start, data in model.windows.items():
        if native.windows[start] != data:
            found.append(f"memory at {start:#x}: native {native.windows[start].hex()}, concrete {data.hex()}")
    store_address = None
    for label, low, high in z3_values:
        kind, _, name = label.partition(":")
        if kind == "flag" and model.flags[name] is None:
            continue
        if low != high:
            found.append(f"Z3 {label} depends on an undefined value where the concrete model defines it")
            continue
        if kind == "reg":
            expected = native.regs[name]
        elif kind == "flag":
            expected = native.flags[name]
        elif kind == "store-address":
            store_address = low
            continue
        elif kind == "store-byte":
            address = store_address + int(name)
            start = next((s for s in native.windows if s <= address < s + len(native.windows[s])), None)
            if start is None:
                found.append(f"Z3 stores at {address:#x}, outside the windows")
                continue
            expected = native.windows[start][address - start]
        elif kind == "branch":
            expected = int(native.control == "taken")
        else:  # return-address
            expected = low if native.control == "taken" else None
        if low != expected:
            found.append(f"Z3 {label}: {low:#x}, native "
                         + (f"{expected:#x}" if expected is not None else "did not return there"))
    return found


@pytest.fixture(scope="module")
def batch() -> InstructionBatch:
    return InstructionBatch.build([form.text for form in FORMS_UNDER_TEST])


BASES = sorted({form.instr.base for form in FORMS_UNDER_TEST})


@pytest.mark.parametrize("base", BASES)
def test_instruction_forms_agree_with_the_cpu(batch, base):
    plans = []
    for index, form in enumerate(FORMS_UNDER_TEST):
        if form.instr.base == base:
            rng = random.Random(zlib.crc32(form.text.encode()))
            plans.append((index, form, [random_state(rng, form, batch.taken_landing) for _ in range(STATES)]))
    results = batch.run_each([(index, native_case(state)) for index, _, states in plans for state in states])
    failures = []
    for number, (index, form, states) in enumerate(plans):
        return_address = batch.return_address(index)
        symbolic_form = SymbolicForm(form, return_address)
        for state, result in zip(states, results[number * STATES:(number + 1) * STATES]):
            model = concrete_outcome(form, state, return_address, batch.taken_landing)
            found = differences(form, state, native_outcome(result), model, symbolic_form.evaluate(state))
            if found:
                failures.append(f"{form.text}: {'; '.join(found)}\n    from {_describe(state)}")
                break  # one state per form is enough to show the disagreement
    assert not failures, "\n".join(failures)


def test_every_supported_mnemonic_is_cosimulated():
    known = {form.base for form in FORMS.values()}
    expected = (SUPPORTED & known) - NOT_COSIMULATED
    assert expected <= set(BASES), sorted(expected - set(BASES))


def test_forms_the_lifter_refuses_are_exactly_the_documented_ones():
    assert REFUSED_FORMS and all(refused_by_design(form.instr) for form in REFUSED_FORMS), \
        [form.text for form in REFUSED_FORMS if not refused_by_design(form.instr)]
    assert not any(refused_by_design(form.instr) for form in FORMS_UNDER_TEST)
    for form in REFUSED_FORMS:
        with pytest.raises(UnsupportedInstruction):
            lift(form.instr)


def test_every_form_and_width_of_the_parser_table_was_generated():
    """Each (form, signature, width) of the parser's table got a text; a
    text the parser rejected was a register combination GNU as refuses too
    (a high-byte register next to one that needs REX)."""
    assert not MISSING_FORMS
    assert all("REX" in message for message in REJECTED_TEXTS.values()), REJECTED_TEXTS
