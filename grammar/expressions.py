"""GNU-as integer expressions: the tree, its parser entry and its evaluator.

Decisions, each following GNU as 2.40 (checked against ``as`` in
tests/test_parser.py):

* Arithmetic is two's complement on 64 bits (GNU as's ``offsetT``): every
  result is wrapped to a *signed* 64-bit value, so ``0xffffffffffffffff`` and
  ``-1`` are the same number.  A literal wider than 64 bits is an error (GNU
  as only warns and truncates).
* ``/`` and ``%`` are signed and truncate toward zero (C's rules); division
  by zero is an error (GNU as warns and yields the dividend).
* ``>>`` is a *logical* shift of the 64-bit pattern; a shift count outside
  0..63 is an error rather than a host-dependent result.
* Comparisons are signed and yield -1 (all ones) for true, 0 for false;
  ``&&``/``||`` yield 1/0; unary ``!`` yields 1/0; binary ``!`` is "or not".
* Precedence is GNU as's, not C's (see grammar/att.lark).
* Symbols: names (including ``.``) and numeric local references ``1f``/``1b``
  are kept as names; whoever evaluates provides their values.  A symbol
  without a value is a :class:`SourceError` naming it: GNU as would emit a
  relocation, but the model needs the number.
"""
from __future__ import annotations

import enum
import hashlib
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar, Union

import lark

from grammar.caches import CACHES, cache_directory
from grammar.source import Origin, SourceError

_MASK64 = (1 << 64) - 1


def wrap64(value: int) -> int:
    """The signed 64-bit value with the same bit pattern as ``value``.

    >>> wrap64(0xffffffffffffffff), wrap64(1 << 63), wrap64(-5)
    (-1, -9223372036854775808, -5)
    """
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def _truncating_divide(left: int, right: int) -> int:
    quotient = abs(left) // abs(right)
    return quotient if (left < 0) == (right < 0) else -quotient


def _truncating_remainder(left: int, right: int) -> int:
    return left - right * _truncating_divide(left, right)


def _logical_right_shift(left: int, right: int) -> int:
    return (left & _MASK64) >> right


class BinaryOp(enum.Enum):
    """GNU-as binary operators; ``symbol`` is the spelling in source."""

    MULTIPLY = ("*", operator.mul)
    DIVIDE = ("/", _truncating_divide)
    REMAINDER = ("%", _truncating_remainder)
    SHIFT_LEFT = ("<<", operator.lshift)
    SHIFT_RIGHT = (">>", _logical_right_shift)
    BIT_OR = ("|", operator.or_)
    BIT_AND = ("&", operator.and_)
    BIT_XOR = ("^", operator.xor)
    BIT_OR_NOT = ("!", lambda left, right: left | ~right)
    ADD = ("+", operator.add)
    SUBTRACT = ("-", operator.sub)
    EQUAL = ("==", lambda left, right: -int(left == right))
    NOT_EQUAL = ("!=", lambda left, right: -int(left != right))
    LESS = ("<", lambda left, right: -int(left < right))
    GREATER = (">", lambda left, right: -int(left > right))
    LESS_EQUAL = ("<=", lambda left, right: -int(left <= right))
    GREATER_EQUAL = (">=", lambda left, right: -int(left >= right))
    LOGICAL_AND = ("&&", lambda left, right: int(bool(left) and bool(right)))
    LOGICAL_OR = ("||", lambda left, right: int(bool(left) or bool(right)))

    def __init__(self, symbol: str, function: Callable[[int, int], int]):
        self.symbol = symbol
        self.function = function

    @classmethod
    def spelled(cls, text: str) -> "BinaryOp":
        """The operator spelled ``text`` (``<>`` is ``!=``).

        >>> BinaryOp.spelled("<>") is BinaryOp.NOT_EQUAL
        True
        """
        if text == "<>":
            return cls.NOT_EQUAL
        return next(op for op in cls if op.symbol == text)


class UnaryOp(enum.Enum):
    NEGATE = ("-", operator.neg)
    COMPLEMENT = ("~", operator.invert)
    LOGICAL_NOT = ("!", lambda value: int(not value))
    PLUS = ("+", operator.pos)

    def __init__(self, symbol: str, function: Callable[[int], int]):
        self.symbol = symbol
        self.function = function

    @classmethod
    def spelled(cls, text: str) -> "UnaryOp":
        return next(op for op in cls if op.symbol == text)


@dataclass(frozen=True)
class Number:
    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Symbol:
    """A symbol reference; ``offset`` is its 0-based position in the parsed
    text (for error columns), not part of its identity."""

    name: str
    offset: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Unary:
    op: UnaryOp
    operand: "Expr"

    def __str__(self) -> str:
        return fold(self, str, lambda op, operand: f"{op.symbol}({operand})",
                    lambda op, left, right: f"({left} {op.symbol} {right})")


@dataclass(frozen=True)
class Binary:
    op: BinaryOp
    left: "Expr"
    right: "Expr"

    def __str__(self) -> str:
        return fold(self, str, lambda op, operand: f"{op.symbol}({operand})",
                    lambda op, left, right: f"({left} {op.symbol} {right})")


Expr = Union[Number, Symbol, Unary, Binary]

T = TypeVar("T")


def fold(expr: Expr, leaf: Callable[[Number | Symbol], T], unary: Callable[[UnaryOp, T], T],
         binary: Callable[[BinaryOp, T, T], T]) -> T:
    """``expr`` reduced bottom-up: ``leaf`` of each number and symbol, then
    ``unary``/``binary`` of each operator and its operands' results.

    Without recursion, so that an expression nested however deep (``- - -
    ... 1``, a long ``1 + 1 + ...``) costs no Python stack.

    >>> fold(parse_expression("-(1 + 2) * 3", Origin("a.S", 1)), lambda leaf: 1,
    ...      lambda op, operand: operand, lambda op, left, right: left + right)
    3
    """
    results: list[T] = []
    work: list[tuple[Expr, bool]] = [(expr, False)]
    while work:
        node, operands_done = work.pop()
        if isinstance(node, Unary):
            if operands_done:
                results.append(unary(node.op, results.pop()))
            else:
                work += [(node, True), (node.operand, False)]
        elif isinstance(node, Binary):
            if operands_done:
                right = results.pop()
                results.append(binary(node.op, results.pop(), right))
            else:
                work += [(node, True), (node.right, False), (node.left, False)]
        else:
            results.append(leaf(node))
    (result,) = results
    return result

_ESCAPES = {"b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "\\": 92, "'": 39, '"': 34}


def literal_value(text: str) -> int:
    """The value of one GNU-as integer literal (decimal, ``0x``, ``0b``,
    leading-``0`` octal), wrapped to signed 64 bits.

    >>> [literal_value(t) for t in ("42", "0x1F", "0b101", "010", "0")]
    [42, 31, 5, 8, 0]
    >>> literal_value("0xffffffffffffffff")
    -1
    """
    lowered = text.lower()
    if lowered.startswith("0x"):
        value = int(lowered[2:], 16)
    elif lowered.startswith("0b"):
        value = int(lowered[2:], 2)
    elif len(lowered) > 1 and lowered.startswith("0"):
        if any(digit in "89" for digit in lowered):
            raise ValueError(f"bad octal number '{text}'")
        value = int(lowered, 8)
    else:
        value = int(lowered, 10)
    if value > _MASK64:
        raise ValueError(f"integer literal '{text}' does not fit in 64 bits")
    return wrap64(value)


def character_value(text: str) -> int:
    """The value of a character constant ``'c`` (or ``'c'``).

    >>> character_value("'a"), character_value("'a'"), character_value("'\\\\n")
    (97, 97, 10)
    """
    body = text[1:]
    if len(body) > 1 and body.endswith("'") and not body.endswith("\\'"):
        body = body[:-1]
    if not body.startswith("\\"):
        return ord(body)
    escaped = body[1:]
    if escaped[0] in "01234567":
        return int(escaped, 8) & 0xFF
    if escaped[0] == "x":
        return int(escaped[1:], 16) & 0xFF
    return _ESCAPES.get(escaped, ord(escaped))


class ExpressionBuilder(lark.visitors.Transformer_NonRecursive):
    """Parse tree -> :data:`Expr` (one method per aliased expression node);
    without recursion, as :func:`fold`."""

    def number(self, children):
        (token,) = children
        try:
            return Number(literal_value(str(token)))
        except ValueError as error:
            raise _LiteralError(str(error), token.start_pos) from None

    def character(self, children):
        (token,) = children
        return Number(character_value(str(token)))

    def symbol(self, children):
        (token,) = children
        return Symbol(str(token), token.start_pos)

    def unary(self, children):
        op, operand = children
        return Unary(UnaryOp.spelled(str(op)), operand)

    def binary(self, children):
        left, op, right = children
        return Binary(BinaryOp.spelled(str(op)), left, right)

    def expression(self, children):
        (expr,) = children
        return expr


class _LiteralError(Exception):
    """A malformed literal found while building the tree (position kept)."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.message = message
        self.position = position


GRAMMAR_PATH = Path(__file__).with_name("att.lark")


def tables_file(grammar: str) -> str | bool:
    """Where lark keeps the LALR tables of ``grammar`` across runs (its
    ``cache=`` option): a file of the user's cache directory named after
    the grammar's digest, so that two versions of the tool do not replace
    each other's; ``False`` (build every time) when there is no such
    directory.  Lark checks the digest of the grammar, its options and
    its version inside the file, rebuilds the tables when the file does not
    match or does not load, and writes them back; a file it cannot write is
    no error.  Building the tables costs about 80 ms, loading them about
    9 ms (measured on a 2-core machine)."""
    directory = cache_directory()
    if directory is None:
        return False
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:   # a place that cannot hold a directory: no cache, no error
        return False
    return str(directory / f"lark-{hashlib.sha256(grammar.encode()).hexdigest()[:32]}.pickle")


_GRAMMAR = GRAMMAR_PATH.read_text()
PARSER = lark.Lark(
    _GRAMMAR,
    parser="lalr",
    start=["statement", "expression"],
    propagate_positions=True,
    maybe_placeholders=False,
    cache=tables_file(_GRAMMAR),
)
"""The one lark parser for grammar/att.lark (statements and expressions)."""


_EXPRESSION_ERRORS = {
    "expected an operand after an operator": ["1 +", "1 *", "(1 <<", "-"],
    "unbalanced parenthesis": ["(1 + 2", "((1)"],
    "unexpected ')'": ["1 + 2)", ")"],
    "missing operator between operands": ["1 2", "a b", "(1) 2"],
    "empty expression": [""],
}


def syntax_error(error: lark.exceptions.UnexpectedInput, text: str, origin: Origin,
                 parse: Callable[[str], object], examples: Mapping[str, list[str]],
                 what: str) -> SourceError:
    """A lark parse error as a SourceError at the offending column."""
    label = error.match_examples(parse, examples, use_accepts=True)
    column = getattr(error, "column", None)
    if not isinstance(column, int) or column < 1:
        column = len(text) + 1
    found = ""
    if isinstance(error, lark.exceptions.UnexpectedToken):
        found = "end of line" if error.token.type == "$END" else f"'{error.token}'"
    elif isinstance(error, lark.exceptions.UnexpectedCharacters):
        found = f"'{text[error.pos_in_stream]}'"
    message = f"bad {what} '{text.strip()}'"
    if label:
        message += f": {label}"
    if found:
        message += f" (unexpected {found})"
    return SourceError(message, origin.at_column(origin.column + column - 1))


_TREES = CACHES.cache("parse trees", 5_000)
"""(statement or expression text, start rule) -> its lark tree (at most 212
in one ``check`` of any shipped fixture group: the bound is 25 times that)."""


def parse_tree(text: str, start: str, origin: Origin,
               examples: Mapping[str, list[str]], what: str) -> lark.Tree:
    """Parse ``text`` from ``start``; syntax errors become SourceErrors.

    Trees are kept per text (the same statements recur in every
    configuration of a file; the transformers never change a tree)."""
    def parse(sample: str) -> lark.Tree:
        return PARSER.parse(sample, start=start)
    key = (text, start)
    tree = _TREES.get(key)
    if tree is None:
        try:
            tree = _TREES[key] = parse(text)
        except lark.exceptions.UnexpectedInput as error:
            raise syntax_error(error, text, origin, parse, examples, what) from None
    return tree


def build(tree: lark.Tree | lark.Token, origin: Origin, builder: lark.Transformer):
    """Run a transformer, turning literal errors into SourceErrors."""
    try:
        return builder.transform(tree)
    except lark.exceptions.VisitError as error:
        cause = error.orig_exc
        if isinstance(cause, _LiteralError):
            raise SourceError(cause.message,
                              origin.at_column(origin.column + cause.position)) from None
        if isinstance(cause, SourceError):
            raise cause from None
        raise


def parse_expression(text: str, origin: Origin) -> Expr:
    """Parse one GNU-as expression.

    >>> str(parse_expression("1 + 2 * x", Origin("a.S", 1)))
    '(1 + (2 * x))'
    >>> parse_expression("0x10 | 1", Origin("a.S", 1))
    Binary(op=<BinaryOp.BIT_OR: ('|', <built-in function or_>)>, left=Number(value=16), right=Number(value=1))
    """
    tree = parse_tree(text, "expression", origin, _EXPRESSION_ERRORS, "expression")
    return build(tree, origin, ExpressionBuilder())


def symbol_origin(symbol: Symbol, origin: Origin) -> Origin:
    """Where ``symbol`` is, given the origin of the text it was parsed from."""
    if symbol.offset is None:
        return origin
    return origin.at_column(origin.column + symbol.offset)


def evaluate(expr: Expr, symbols: Mapping[str, int], origin: Origin) -> int:
    """The absolute value of ``expr`` (signed 64-bit), GNU-as arithmetic.

    >>> o = Origin("a.S", 1)
    >>> evaluate(parse_expression("1 | 6 & 4", o), {}, o)
    4
    >>> evaluate(parse_expression("-1 >> 60", o), {}, o)
    15
    >>> evaluate(parse_expression("3 > 2", o), {}, o)
    -1
    >>> evaluate(parse_expression("X + 1", o), {"X": 41}, o)
    42
    """
    def leaf(node: Number | Symbol) -> int:
        if isinstance(node, Number):
            return node.value
        if node.name not in symbols:
            raise SourceError(f"undefined symbol '{node.name}' (its value is needed: define it with "
                              f"-D {node.name}=VALUE, or check the file inside the kernel tree whose "
                              f"headers define it)",
                              symbol_origin(node, origin))
        return wrap64(symbols[node.name])

    def binary(op: BinaryOp, left: int, right: int) -> int:
        if op in (BinaryOp.DIVIDE, BinaryOp.REMAINDER) and right == 0:
            raise SourceError(f"division by zero in '{expr}'", origin)
        if op in (BinaryOp.SHIFT_LEFT, BinaryOp.SHIFT_RIGHT) and not 0 <= right < 64:
            raise SourceError(f"shift count {right} out of range 0..63 in '{expr}'", origin)
        return wrap64(op.function(left, right))

    return fold(expr, leaf, lambda op, operand: wrap64(op.function(operand)), binary)


def symbols_of(expr: Expr) -> set[str]:
    """Every symbol name ``expr`` refers to.

    >>> sorted(symbols_of(parse_expression("a + (b << 1f) - 3", Origin("a.S", 1))))
    ['1f', 'a', 'b']
    """
    return fold(expr, lambda leaf: {leaf.name} if isinstance(leaf, Symbol) else set(),
                lambda op, operand: operand, lambda op, left, right: left | right)


def relocatable(expr: Expr, symbols: Mapping[str, int],
                origin: Origin) -> tuple[Symbol | None, int]:
    """Split ``expr`` into (one symbol without a value, absolute addend).

    This is what a RIP-relative displacement may be: ``sym``, ``sym + c``,
    ``c + sym``, ``sym - c`` (``c`` absolute).  Anything else that still has
    an undefined symbol is an error.

    >>> o = Origin("a.S", 1)
    >>> relocatable(parse_expression("8 + buf - 2", o), {}, o)
    (Symbol(name='buf', offset=4), 6)
    >>> relocatable(parse_expression("K * 2", o), {"K": 4}, o)
    (None, 8)
    """
    class NotRelocatable(Exception):
        pass

    def leaf(node: Number | Symbol) -> tuple[Symbol | None, int]:
        if isinstance(node, Symbol) and node.name not in symbols:
            return node, 0
        return None, evaluate(node, symbols, origin)

    def unary(op: UnaryOp, operand: tuple[Symbol | None, int]) -> tuple[Symbol | None, int]:
        if operand[0] is not None:
            raise NotRelocatable()
        return None, wrap64(op.function(operand[1]))

    def binary(op: BinaryOp, left: tuple[Symbol | None, int],
               right: tuple[Symbol | None, int]) -> tuple[Symbol | None, int]:
        if left[0] is None and right[0] is None:
            return None, evaluate(Binary(op, Number(left[1]), Number(right[1])), {}, origin)
        if op is BinaryOp.ADD and (left[0] is None or right[0] is None):
            return left[0] or right[0], wrap64(left[1] + right[1])
        if op is BinaryOp.SUBTRACT and right[0] is None:
            return left[0], wrap64(left[1] - right[1])
        raise NotRelocatable()

    if not symbols_of(expr) - set(symbols):
        return None, evaluate(expr, symbols, origin)
    try:
        return fold(expr, leaf, unary, binary)
    except NotRelocatable:
        raise SourceError(f"'{expr}' is not a symbol plus a constant", origin) from None
