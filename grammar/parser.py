"""One AT&T statement -> a size-inferred :class:`ast.Instruction`, and back.

The syntax is grammar/att.lark; what each mnemonic accepts is the one table
of instruction forms, :data:`FORMS`, below.  Decisions, each following GNU as
2.40 in 64-bit mode (tests/test_parser.py checks them against ``as``):

* Mnemonic lookup is GNU as's: the word as written (any case) is looked up
  first; only if that fails is a trailing ``b w l q`` taken as a size suffix
  (so ``setb``/``cmovl`` are conditions, ``setbb``/``cmovll`` carry a suffix).
* The operation size comes from the suffix, else from the register operands
  (which must agree with it and with each other), else from the form's only
  size or its default (``push``/``pop``: 64 bits).  An instruction that
  nothing sizes (``movl``-less ``mov $1, (%rax)``, ``inc (%rax)``) is
  rejected: GNU as only warns and guesses.
* Immediates: at 8/16/32 bits a value whose magnitude needs more bits is
  rejected (GNU as warns "shortened"); at 64 bits it must be a sign-extended
  32-bit value except for ``mov`` to a 64-bit register and ``movabs``; shift
  and ``bt`` counts are imm8 (-128..255), ``ret`` takes imm16.
* Memory: 64-bit base/index registers or ``%rip`` (no 32-bit addressing),
  scale 1/2/4/8, ``%rsp`` never an index, displacement a signed 32-bit value;
  a RIP-relative displacement may be one symbol (passed through ``resolve``)
  plus a constant; every other symbol must have a value.
* ``%ah``/``%bh``/``%ch``/``%dh`` are rejected in an instruction that needs a
  REX prefix (``%sil``, ``%r8``..., or a 64-bit operation).
* ``%r8l``..``%r15l`` are in :data:`ast.REGISTERS` but GNU as 2.40 rejects
  them ("bad register name"), and so do we.
* Deliberately stricter than GNU as (each rejected with a message): 32-bit
  address registers; ``movzx``/``movsx`` of a memory operand without a size;
  ``movsxd`` to a 32-bit register; ``jmp``/``call`` of a register or memory
  without ``*``; ``retw``; prefixes other than ``lock`` (on a lockable
  instruction with a memory destination), ``rep``-family on ``ret``, and
  ``notrack`` on indirect ``jmp``/``call``.
* ``base`` is canonical: suffix stripped, condition aliases to one name
  (``jz`` -> ``je``, ``jnae``/``jc`` -> ``jb``, ``cmovz`` -> ``cmove``),
  ``sal`` -> ``shl``, ``retq`` -> ``ret``, every zero/sign extension ->
  ``movzx``/``movsx`` (source width on the source operand, operation width =
  destination width).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping, Union

import lark
from lark import v_args

from grammar import ast
from grammar.caches import CACHES
from grammar.expressions import (ExpressionBuilder, Expr, Symbol, build, evaluate,
                                 parse_tree, relocatable, symbol_origin)
from grammar.source import Origin, SourceError

SUFFIX_WIDTHS = {"b": 8, "w": 16, "l": 32, "q": 64}
WIDTH_SUFFIXES = {width: letter for letter, width in SUFFIX_WIDTHS.items()}

CONDITIONS: dict[str, str] = {
    "o": "o", "no": "no",
    "b": "b", "c": "b", "nae": "b",
    "ae": "ae", "nb": "ae", "nc": "ae",
    "e": "e", "z": "e",
    "ne": "ne", "nz": "ne",
    "be": "be", "na": "be",
    "a": "a", "nbe": "a",
    "s": "s", "ns": "ns",
    "p": "p", "pe": "p",
    "np": "np", "po": "np",
    "l": "l", "nge": "l",
    "ge": "ge", "nl": "ge",
    "le": "le", "ng": "le",
    "g": "g", "nle": "g",
}
"""Condition-code spelling -> canonical spelling (the one objdump prints)."""

SEGMENT_REGISTERS = frozenset({"cs", "ds", "es", "fs", "gs", "ss"})
REP_PREFIXES = frozenset({"rep", "repe", "repz", "repne", "repnz"})
HIGH_BYTE_REGISTERS = frozenset({"ah", "bh", "ch", "dh"})
REJECTED_REGISTERS = frozenset(f"r{number}l" for number in range(8, 16))
"""Names in ast.REGISTERS that GNU as 2.40 does not accept."""


@dataclass(frozen=True)
class Form:
    """What one mnemonic accepts.

    ``signatures`` lists the operand patterns, one space-separated token per
    operand (AT&T order): ``r``/``m``/``i`` a register/memory/immediate of the
    operation size; ``I`` an immediate of any 64-bit value; ``c`` ``%cl``;
    ``b`` an imm8 count; ``w`` an imm16; ``x``/``y`` a register/memory
    extension source; ``a`` an address (``lea``: memory without a size);
    ``t`` a direct target; ``*r``/``*m`` an indirect register/memory.
    """

    base: str
    signatures: tuple[str, ...]
    widths: frozenset[int] = frozenset()
    suffixes: str = ""
    default_width: int | None = None
    sized: bool = True
    """Instruction.width is the operation size (False: jumps, calls, ret)."""
    rex_w: bool = True
    """A 64-bit operation needs REX.W (False: push, pop, jmp, call)."""
    wide_immediate: bool = False
    """``mov``: any 64-bit immediate to a 64-bit register."""
    source_widths: frozenset[int] = frozenset()
    """Extensions: the allowed source widths."""
    suffix_sizes_source: bool = False
    """``movzx``/``movsx``: the suffix is the source width."""
    prefixes: frozenset[str] = frozenset()
    suffix_with_target: bool = True


_ALL = frozenset({8, 16, 32, 64})
_WLQ = frozenset({16, 32, 64})
_ALU = ("i r", "i m", "r r", "r m", "m r")
_SHIFT = ("r", "m", "b r", "b m", "c r", "c m")
_LOCK = frozenset({"lock"})


def _forms() -> dict[str, Form]:
    forms: dict[str, Form] = {}

    def add(spellings: tuple[str, ...] | str, form: Form) -> None:
        for spelling in (spellings,) if isinstance(spellings, str) else spellings:
            forms[spelling] = form

    for name in ("add", "sub", "adc", "sbb", "and", "or", "xor"):
        add(name, Form(name, _ALU, _ALL, "bwlq", prefixes=_LOCK))
    add("cmp", Form("cmp", _ALU, _ALL, "bwlq"))
    add("test", Form("test", _ALU, _ALL, "bwlq"))
    add("mov", Form("mov", _ALU, _ALL, "bwlq", wide_immediate=True))
    add("movabs", Form("movabs", ("I r",), frozenset({64}), "q"))
    add("xchg", Form("xchg", ("r r", "r m", "m r"), _ALL, "bwlq", prefixes=_LOCK))
    for name in ("not", "neg", "inc", "dec"):
        add(name, Form(name, ("r", "m"), _ALL, "bwlq", prefixes=_LOCK))
    for name in ("shl", "shr", "sar", "rol", "ror"):
        add(name, Form(name, _SHIFT, _ALL, "bwlq"))
    add("sal", forms["shl"])
    add("bt", Form("bt", ("r r", "r m", "b r", "b m"), _WLQ, "wlq"))
    add("lea", Form("lea", ("a r",), _WLQ, "wlq"))
    stack = frozenset({16, 64})
    add("push", Form("push", ("r", "m", "i"), stack, "wq", default_width=64, rex_w=False))
    add("pop", Form("pop", ("r", "m"), stack, "wq", default_width=64, rex_w=False))
    for spelling, canonical in CONDITIONS.items():
        add(f"cmov{spelling}", Form(f"cmov{canonical}", ("r r", "m r"), _WLQ, "wlq"))
        add(f"set{spelling}", Form(f"set{canonical}", ("r", "m"), frozenset({8}), "b"))
        add(f"j{spelling}", Form(f"j{canonical}", ("t",), sized=False))
    add("jmp", Form("jmp", ("t", "*r", "*m"), frozenset({64}), "q", sized=False, rex_w=False,
                    prefixes=frozenset({"notrack"}), suffix_with_target=False))
    add("call", Form("call", ("t", "*r", "*m"), frozenset({64}), "q", sized=False, rex_w=False,
                     prefixes=frozenset({"notrack"})))
    add("ret", Form("ret", ("", "w"), suffixes="q", sized=False, prefixes=REP_PREFIXES))
    add("nop", Form("nop", ("", "r", "m"), _WLQ, "wlq"))
    for name in ("int3", "ud2", "endbr64", "lfence", "mfence", "sfence", "sti", "cli",
                 "clc", "stc", "cmc", "cld", "std", "tdcall", "seamcall", "hlt",
                 "pause", "cpuid"):
        add(name, Form(name, ("",), sized=False))
    extension = ("x r", "y r")
    for kind in ("z", "s"):
        base = f"mov{kind}x"
        add(f"mov{kind}b", Form(base, extension, _WLQ, "wlq", source_widths=frozenset({8})))
        add(f"mov{kind}w", Form(base, extension, frozenset({32, 64}), "lq",
                                source_widths=frozenset({16})))
    add("movzx", Form("movzx", extension, _WLQ, "bw", source_widths=frozenset({8, 16}),
                      suffix_sizes_source=True))
    add("movsx", Form("movsx", extension, _WLQ, "bwl", source_widths=frozenset({8, 16, 32}),
                      suffix_sizes_source=True))
    add(("movslq", "movsxd"), Form("movsx", extension, frozenset({64}),
                                   source_widths=frozenset({32})))
    return forms


FORMS: dict[str, Form] = _forms()
"""Mnemonic as spelled without a size suffix (lower case) -> its form."""

KNOWN_MNEMONICS: frozenset[str] = frozenset(form.base for form in FORMS.values())
"""Every canonical ``Instruction.base`` the parser can produce."""

_FORMS_BY_BASE: dict[str, Form] = {form.base: form for form in FORMS.values()
                                   if form.base not in ("movzx", "movsx")}


# ------------------------------------------------------------------ operands

@dataclass(frozen=True)
class _Direct:
    """A bare expression operand: a branch target or an absolute address."""

    expr: Expr
    relocation: str = ""


@dataclass(frozen=True)
class _Operand:
    """A parsed operand before the mnemonic decides what it is."""

    value: Union[ast.Register, ast.Immediate, ast.Memory, ast.Indirect, _Direct]
    origin: Origin


@dataclass(frozen=True)
class _Address:
    base: ast.Register | None
    index: ast.Register | None
    scale: int


def _fits_signed(value: int, bits: int) -> bool:
    """Whether ``value`` is a signed ``bits``-bit integer.

    >>> _fits_signed(-2**31, 32), _fits_signed(2**31, 32)
    (True, False)
    """
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


class _StatementBuilder(ExpressionBuilder):
    """Parse tree -> prefixes, mnemonic and :class:`_Operand` values."""

    def __init__(self, origin: Origin, symbols: Mapping[str, int],
                 resolve: Callable[[str], str]):
        super().__init__()
        self.origin = origin
        self.symbols = symbols
        self.resolve = resolve

    def at(self, meta) -> Origin:
        return self.origin.at_column(self.origin.column + meta.column - 1)

    def register_named(self, token: lark.Token) -> ast.Register:
        name = str(token)[1:].lower()
        where = self.origin.at_column(self.origin.column + token.column - 1)
        if name in SEGMENT_REGISTERS:
            raise SourceError(f"segment register '%{name}' is not supported here", where)
        if name not in ast.REGISTERS or name in REJECTED_REGISTERS:
            raise SourceError(f"bad register name '{token}'", where)
        return ast.Register(name)

    def address_register(self, token: lark.Token, role: str) -> ast.Register:
        register = self.register_named(token)
        where = self.origin.at_column(self.origin.column + token.column - 1)
        if register.width != 64:
            raise SourceError(f"{role} register '{token}': only 64-bit addressing is "
                              f"supported", where)
        if role == "index" and register.name in ("rsp", "rip"):
            raise SourceError(f"'{token}' cannot be an index register", where)
        return register

    def scale_of(self, expr: Expr, meta) -> int:
        scale = evaluate(expr, self.symbols, self.origin)
        if scale not in (1, 2, 4, 8):
            raise SourceError(f"expecting scale factor of 1, 2, 4, or 8: got {scale}",
                              self.at(meta))
        return scale

    # address parts
    @v_args(meta=True)
    def base(self, meta, children):
        return _Address(self.address_register(children[0], "base"), None, 1)

    @v_args(meta=True)
    def base_index(self, meta, children):
        base, index = children
        return self.indexed(self.address_register(base, "base"),
                            self.address_register(index, "index"), 1, meta)

    @v_args(meta=True)
    def base_index_scale(self, meta, children):
        base, index, scale = children
        return self.indexed(self.address_register(base, "base"),
                            self.address_register(index, "index"),
                            self.scale_of(scale, meta), meta)

    @v_args(meta=True)
    def index(self, meta, children):
        return _Address(None, self.address_register(children[0], "index"), 1)

    @v_args(meta=True)
    def index_scale(self, meta, children):
        index, scale = children
        return _Address(None, self.address_register(index, "index"),
                        self.scale_of(scale, meta))

    def indexed(self, base, index, scale, meta) -> _Address:
        if base.name == "rip":
            raise SourceError("'%rip' cannot be used with an index register", self.at(meta))
        return _Address(base, index, scale)

    # memory
    def memory(self, expr: Expr | None, address: _Address | None, segment, meta) -> ast.Memory:
        where = self.at(meta)
        symbol_name = None
        disp = 0
        if expr is not None:
            if address is not None and address.base is not None and address.base.name == "rip":
                symbol, disp = relocatable(expr, self.symbols, self.origin)
                symbol_name = None if symbol is None else _label(symbol, self.origin,
                                                                   self.resolve)
            else:
                disp = evaluate(expr, self.symbols, self.origin)
        if not _fits_signed(disp, 32):
            raise SourceError(f"{disp:#x} out of range of signed 32bit displacement", where)
        base = index = None
        scale = 1
        if address is not None:
            base, index, scale = address.base, address.index, address.scale
        return ast.Memory(disp, base, index, scale, segment, symbol_name)

    def segment_named(self, token: lark.Token) -> str:
        name = str(token)[1:].lower()
        if name not in SEGMENT_REGISTERS:
            raise SourceError(f"'{token}' is not a segment register",
                              self.origin.at_column(self.origin.column + token.column - 1))
        return name

    @v_args(meta=True)
    def displaced(self, meta, children):
        expr, address = children
        return _Operand(self.memory(expr, address, None, meta), self.at(meta))

    @v_args(meta=True)
    def undisplaced(self, meta, children):
        return _Operand(self.memory(None, children[0], None, meta), self.at(meta))

    # operands
    @v_args(meta=True)
    def register(self, meta, children):
        return _Operand(self.register_named(children[0]), self.at(meta))

    @v_args(meta=True)
    def immediate(self, meta, children):
        return _Operand(ast.Immediate(evaluate(children[0], self.symbols, self.origin)),
                        self.at(meta))

    @v_args(meta=True)
    def direct(self, meta, children):
        return _Operand(_Direct(children[0]), self.at(meta))

    @v_args(meta=True)
    def plt_target(self, meta, children):
        (token,) = children
        name, _, relocation = str(token).partition("@")
        return _Operand(_Direct(Symbol(name, token.start_pos), relocation), self.at(meta))

    @v_args(meta=True)
    def segment_absolute(self, meta, children):
        segment, expr = children
        return _Operand(self.memory(expr, None, self.segment_named(segment), meta),
                        self.at(meta))

    @v_args(meta=True)
    def segment_memory(self, meta, children):
        segment, memory = children
        return _Operand(replace(memory.value, segment=self.segment_named(segment)),
                        self.at(meta))

    @v_args(meta=True)
    def indirect_register(self, meta, children):
        return _Operand(ast.Indirect(self.register_named(children[0])), self.at(meta))

    @v_args(meta=True)
    def indirect_absolute(self, meta, children):
        return _Operand(ast.Indirect(self.memory(children[0], None, None, meta)), self.at(meta))

    @v_args(meta=True)
    def indirect_memory(self, meta, children):
        return _Operand(ast.Indirect(children[0].value), self.at(meta))

    # statements
    def instruction(self, children):
        prefixes = [child for child in children if isinstance(child, lark.Token)
                    and child.type == "PREFIX"]
        mnemonic = next(child for child in children if isinstance(child, lark.Token)
                        and child.type == "MNEMONIC")
        operands = [child for child in children if isinstance(child, _Operand)]
        return prefixes, mnemonic, operands

    def prefix_only(self, children):
        raise SourceError(f"prefix '{children[-1]}' without an instruction on the same "
                          f"line is not supported",
                          self.origin.at_column(self.origin.column + children[-1].column - 1))


_STATEMENT_ERRORS = {
    "expected an operand after ','": ["mov %rax,", "add $1,"],
    "missing ',' between operands": ["mov %rax %rbx", "mov $1 %rax", "mov (%rax) %rbx"],
    "unbalanced parenthesis": ["mov (%rax, %rbx", "mov 8(%rax", "mov (%rax,%rbx,8"],
    "expected an expression after '$'": ["mov $, %rax", "mov $"],
    "expected a register in the address": ["mov (1,%rax), %rbx", "mov (,1), %rbx"],
    "expected a mnemonic": ["%rax", "$1", "lock $1"],
}


# ------------------------------------------------------------- size inference

def _lookup(mnemonic: str, where: Origin) -> tuple[Form, int | None]:
    if mnemonic in FORMS:
        return FORMS[mnemonic], None
    stem, letter = mnemonic[:-1], mnemonic[-1:]
    form = FORMS.get(stem)
    if form is not None and letter in SUFFIX_WIDTHS:
        if letter not in form.suffixes:
            raise SourceError(f"invalid instruction suffix for '{stem}'", where)
        return form, SUFFIX_WIDTHS[letter]
    raise SourceError(f"no such instruction (or not supported): '{mnemonic}'", where)


def _kind_matches(token: str, value) -> bool:
    if token in ("r", "x"):
        return isinstance(value, ast.Register)
    if token == "c":
        return isinstance(value, ast.Register) and value.name == "cl"
    if token in ("i", "I", "b", "w"):
        return isinstance(value, ast.Immediate)
    if token in ("m", "a", "y"):
        return isinstance(value, (ast.Memory, _Direct))
    if token == "t":
        return isinstance(value, _Direct)
    if token == "*r":
        return isinstance(value, ast.Indirect) and isinstance(value.operand, ast.Register)
    if token == "*m":
        return isinstance(value, ast.Indirect) and isinstance(value.operand, ast.Memory)
    raise AssertionError(token)


def _signature(form: Form, operands: list[_Operand], name: str, where: Origin) -> list[str]:
    for signature in form.signatures:
        tokens = signature.split()
        if len(tokens) == len(operands) and all(
                _kind_matches(token, op.value) for token, op in zip(tokens, operands)):
            return tokens
    counts = sorted({len(signature.split()) for signature in form.signatures})
    if len(operands) not in counts:
        wanted = " or ".join(str(count) for count in counts)
        raise SourceError(f"'{name}' takes {wanted} operand(s), got {len(operands)}", where)
    for op in operands:
        if isinstance(op.value, ast.Indirect) and "*r" not in form.signatures:
            raise SourceError(f"indirect operand '{op.value}' is only valid with jmp/call",
                              op.origin)
    raise SourceError(f"operand type mismatch for '{name}'", where)


def _label(symbol: Symbol, origin: Origin, resolve: Callable[[str], str]) -> str:
    """The label a branch target or RIP-relative symbol names, resolved.

    ``origin`` is where the statement starts (symbol offsets count from it).
    """
    if symbol.name == ".":
        raise SourceError("the location counter '.' is not supported as a label here",
                          symbol_origin(symbol, origin))
    return resolve(symbol.name)


def _resolve_direct(op: _Operand, token: str, symbols: Mapping[str, int],
                    resolve: Callable[[str], str], origin: Origin):
    """A bare expression: a branch target (``t``) or an absolute address.

    ``origin`` is where the statement starts (symbol offsets count from it).
    """
    expr = op.value.expr
    if token == "t":
        if not isinstance(expr, Symbol) or expr.name in symbols:
            raise SourceError(f"branch target '{expr}' must be a label", op.origin)
        return ast.Target(_label(expr, origin, resolve), op.value.relocation)
    if op.value.relocation:
        raise SourceError(f"'{expr}@{op.value.relocation}' is only valid as a branch target",
                          op.origin)
    address = evaluate(expr, symbols, origin)
    if not _fits_signed(address, 32):
        raise SourceError(f"absolute address {address:#x} out of range of signed 32bit "
                          f"displacement", op.origin)
    return ast.Memory(disp=address)


def _check_immediate(value: int, token: str, width: int | None, destination,
                     form: Form, where: Origin) -> None:
    if token == "b":
        low, high, what = -128, 255, "an 8-bit count"
    elif token == "w":
        low, high, what = -(1 << 15), (1 << 16) - 1, "a 16-bit immediate"
    elif token == "I" or (form.wide_immediate and width == 64
                          and isinstance(destination, ast.Register)):
        return
    elif width == 64:
        if not _fits_signed(value, 32):
            raise SourceError(f"immediate {value:#x} is not a sign-extended 32-bit value "
                              f"(only mov to a 64-bit register or movabs takes a 64-bit "
                              f"immediate)", where)
        return
    else:
        low, high, what = -((1 << width) - 1), (1 << width) - 1, f"{width} bits"
    if not low <= value <= high:
        raise SourceError(f"immediate {value:#x} does not fit in {what}", where)


def _infer(form: Form, tokens: list[str], values: list, suffix: int | None,
           name: str, where: Origin) -> tuple[int | None, int | None]:
    """(operation width, extension source width)."""
    letter = WIDTH_SUFFIXES.get(suffix, "")
    operation = None if form.suffix_sizes_source else suffix
    source = suffix if form.suffix_sizes_source else None
    if form.source_widths and len(form.source_widths) == 1:
        (source,) = form.source_widths
    for token, value in zip(tokens, values):
        if token == "r":
            if operation is not None and value.width != operation:
                if suffix is not None and not form.suffix_sizes_source:
                    raise SourceError(f"incorrect register '{value}' used with '{letter}' "
                                      f"suffix", where)
                raise SourceError(f"operand size mismatch for '{name}'", where)
            operation = value.width
        elif token == "x":
            if source is not None and value.width != source:
                raise SourceError(f"operand size mismatch for '{name}': source register "
                                  f"'{value}'", where)
            source = value.width
    if operation is None:
        if len(form.widths) == 1:
            (operation,) = form.widths
        elif form.default_width is not None:
            operation = form.default_width
        elif form.widths and any(token in ("m", "i") for token in tokens):
            raise SourceError(f"no instruction mnemonic suffix given and no register "
                              f"operands; can't size '{name}'", where)
    if operation is not None and form.widths and operation not in form.widths:
        raise SourceError(f"operand size mismatch for '{name}'", where)
    if form.source_widths:
        if source is None:
            raise SourceError(f"can't size the memory source of '{name}': spell the "
                              f"sizes (movzbl, movzwl, movsbq, ...)", where)
        if source not in form.source_widths or operation is None or source >= operation:
            raise SourceError(f"operand size mismatch for '{name}'", where)
    return operation, source


def _needs_rex(form: Form, operands, width: int | None) -> bool:
    registers = []
    for op in operands:
        inner = op.operand if isinstance(op, ast.Indirect) else op
        if isinstance(inner, ast.Register):
            registers.append(inner)
        elif isinstance(inner, ast.Memory):
            registers += [reg for reg in (inner.base, inner.index) if reg is not None]
    return (width == 64 and form.rex_w) or any(
        reg.needs_rex or reg.family in ast.GPR64[8:] for reg in registers)


def _check_prefixes(form: Form, prefixes: list[lark.Token], operands, name: str,
                    where: Origin) -> None:
    seen: set[str] = set()
    for token in prefixes:
        prefix = str(token).lower()
        group = "rep" if prefix in REP_PREFIXES else prefix
        if group in seen:
            raise SourceError("same type of prefix used twice", where)
        seen.add(group)
        lockable = operands and isinstance(operands[-1], ast.Memory)
        if prefix == "lock" and not (prefix in form.prefixes and lockable):
            raise SourceError("expecting lockable instruction after 'lock' (add, sub, adc, "
                              "sbb, and, or, xor, not, neg, inc, dec or xchg with a memory "
                              "destination)", where)
        if prefix not in form.prefixes:
            raise SourceError(f"prefix '{prefix}' is not supported with '{name}'", where)
        if prefix == "notrack" and not (operands and isinstance(operands[0], ast.Indirect)):
            raise SourceError("expecting indirect branch instruction after 'notrack'", where)


class _Consulted(Mapping):
    """``symbols`` and ``resolve`` as given, noting whether either was used."""

    def __init__(self, symbols: Mapping[str, int], resolve: Callable[[str], str]):
        self._symbols, self._resolve, self.used = symbols, resolve, False

    def __getitem__(self, name: str) -> int:
        self.used = True
        return self._symbols[name]

    def __iter__(self):
        self.used = True
        return iter(self._symbols)

    def __len__(self) -> int:
        self.used = True
        return len(self._symbols)

    def resolve(self, name: str) -> str:
        self.used = True
        return self._resolve(name)


_PARSED = CACHES.cache("instructions", 5_000)
"""Statement text that names no symbol -> its instruction at the first origin
(at most 148 in one ``check`` of any shipped fixture group)."""


def parse_instruction(text: str, origin: Origin, symbols: Mapping[str, int],
                      resolve: Callable[[str], str] = lambda name: name) -> ast.Instruction:
    """One statement (prefixes, mnemonic, operands) -> a sized Instruction.

    ``origin`` is where ``text`` starts; errors carry the column inside it.
    A statement that names no symbol or label is parsed once per text
    (the same lines recur in every configuration and kernel tree).

    >>> i = parse_instruction("movq %rax, 8(%rsi)", Origin("a.S", 3), {})
    >>> i.base, i.width, i.operands[1]
    ('mov', 64, Memory(disp=8, base=Register(name='rsi'), index=None, scale=1, segment=None, symbol=None, width=64))
    >>> parse_instruction("JZ 1f", Origin("a.S", 3), {}).base
    'je'
    """
    known = _PARSED.get(text)
    if known is not None:
        return replace(known, origin=origin)
    consulted = _Consulted(symbols, resolve)
    instr = _parse_instruction(text, origin, consulted, consulted.resolve)
    if not consulted.used:
        _PARSED[text] = instr
    return instr


def _parse_instruction(text: str, origin: Origin, symbols: Mapping[str, int],
                       resolve: Callable[[str], str]) -> ast.Instruction:
    tree = parse_tree(text, "statement", origin, _STATEMENT_ERRORS, "instruction")
    builder = _StatementBuilder(origin, symbols, resolve)
    prefixes, mnemonic_token, parsed = build(tree, origin, builder)
    name = str(mnemonic_token).lower()
    where = origin.at_column(origin.column + mnemonic_token.column - 1)
    form, suffix = _lookup(name, where)
    tokens = _signature(form, parsed, name, where)
    values = [_resolve_direct(op, token, symbols, resolve, origin) if isinstance(op.value, _Direct)
              else op.value for op, token in zip(parsed, tokens)]
    if suffix is not None and ((not form.suffix_with_target and "t" in tokens)
                               or (form.sized and not tokens)):
        raise SourceError(f"invalid instruction suffix for '{form.base}'", where)
    width, source = _infer(form, tokens, values, suffix, name, where)
    operands = []
    for token, value, op in zip(tokens, values, parsed):
        if token in ("i", "I", "b", "w"):
            _check_immediate(value.value, token, width, values[-1], form, op.origin)
        elif token in ("m", "y"):
            value = replace(value, width=width if token == "m" else source)
        elif token == "*m":
            value = ast.Indirect(replace(value.operand, width=64))
        elif token == "*r" and value.operand.width != 64:
            raise SourceError(f"operand size mismatch for '{name}'", op.origin)
        operands.append(value)
    if _needs_rex(form, operands, width):
        for value, op in zip(operands, parsed):
            if isinstance(value, ast.Register) and value.name in HIGH_BYTE_REGISTERS:
                raise SourceError(f"can't encode register '{value}' in an instruction "
                                  f"requiring REX prefix", op.origin)
    if "a" in tokens and operands[0].segment is not None:
        raise SourceError(f"segment override on '{name}' is ineffectual", parsed[0].origin)
    _check_prefixes(form, prefixes, operands, name, where)
    return ast.Instruction(
        mnemonic=name,
        base=form.base,
        operands=tuple(operands),
        origin=origin,
        width=width if form.sized else None,
        prefixes=tuple(str(token).lower() for token in prefixes),
    )


def _spelling(instr: ast.Instruction) -> str:
    """The mnemonic GNU as reads back as the same operation and sizes."""
    if instr.base in ("movzx", "movsx"):
        source = instr.operands[0].width
        if instr.base == "movsx" and source == 32:
            return "movslq"
        return (f"mov{instr.base[3]}{WIDTH_SUFFIXES[source]}"
                f"{WIDTH_SUFFIXES[instr.width]}")
    form = _FORMS_BY_BASE[instr.base]
    if instr.width is not None and len(form.widths) > 1 and instr.operands:
        return instr.base + WIDTH_SUFFIXES[instr.width]
    return instr.base


def format_instruction(instr: ast.Instruction) -> str:
    """Canonical AT&T text for ``instr``, explicit about sizes.

    >>> o = Origin("a.S", 1)
    >>> format_instruction(parse_instruction("mov %eax, -8(%rbp)", o, {}))
    'movl %eax, -0x8(%rbp)'
    >>> format_instruction(parse_instruction("movzx %al, %ecx", o, {}))
    'movzbl %al, %ecx'
    >>> format_instruction(parse_instruction("lock incq sym+8(%rip)", o, {}))
    'lock incq sym+0x8(%rip)'
    """
    head = " ".join(instr.prefixes + (_spelling(instr),))
    operands = ", ".join(str(op) for op in instr.operands)
    return f"{head} {operands}" if operands else head
