"""The one place where Z3 bit-vectors are built, with explicit names.

Z3's Python operators on bit-vectors are a trap: ``<``, ``>>``, ``/`` and
``%`` are the *signed* forms.  Everything in tdxproof that builds Z3 terms
uses the helpers here instead, whose names say what they do (``ult`` vs
``slt``, ``lshr`` vs ``ashr``), plus the plain ``+ - & | ^ ~ ==`` operators
that have no signedness.

Decisions: a one-bit flag is a 1-bit bit-vector (``from_bool``/``to_bool``
convert to and from Z3 Booleans); widths are always given in bits and
``zext_to``/``sext_to`` take the *target* width (not the number of added
bits, which is what ``z3.ZeroExt`` takes).  z3py's own argument checks
(``Z3_DEBUG``, on unless Python runs with ``-O``) are off: Z3's C API
checks the sorts of what it builds itself and raises as they would, and
the Python checks cost 5-8% of the CPU of a ``check`` of the fixture forms
(measured in one process, 10.1 -> 9.4 s, the same report).

Z3's errors reach us through its error handler (:func:`_error`), which Z3
calls inside the API call that fails, and z3py's check after every call
(``Elementaries.Check``) reads what the handler recorded instead of asking
Z3 for its error code: the same exception, raised by the same call, but
one C call per API call instead of two (a million calls in a ``check`` of
the fixture forms; callgrind of ``check --matrix CONFIG_FRAME_POINTER``
of the hypercall with its flags in the wrong slot: 5.40 -> 5.14 G
instructions; the whole fixture forms' check, serially in one process:
38.97 -> 35.80 G, the same report).  Every context gets the handler: the main
one here, any other when it is made (z3py looks its handler up by name).
"""
from __future__ import annotations

import ctypes

import z3

from grammar.caches import CACHES

z3.z3.Z3_DEBUG = False

_ERRORS: list[int] = []
"""The codes of errors Z3 reported that no check has raised yet."""


def _error(context, code: int) -> None:
    """Z3's error handler: record the error for the check that follows the call."""
    _ERRORS.append(code)


def _check(elementaries, context) -> None:
    """z3py's check after an API call: raise the error Z3 reported in it."""
    if _ERRORS:
        code = _ERRORS[-1]
        _ERRORS.clear()
        raise elementaries.Exception(elementaries.get_error_message(context, code))


z3.z3.z3_error_handler = _error
_HANDLER = z3.z3core.Z3_set_error_handler(z3.main_ctx().ref(), _error)   # kept: Z3 holds a pointer to it
z3.z3core.Elementaries.Check = _check

BitVec = z3.BitVecRef
Bool = z3.BoolRef


_CONSTANTS = CACHES.cache("z3 constants", 100_000)
"""(Z3 context id, value, width) -> the constant term.  Dropping an entry
is safe: Z3 shares equal terms of a context, so the term made again is
the same AST (the same id) while the old one is alive."""


def const(value: int, width: int) -> BitVec:
    """The constant ``value`` (taken modulo 2**width), made once per Z3
    context (``z3.BitVecVal`` costs a dozen Python calls).

    >>> const(-1, 8), const(255, 8) is const(-1, 8)
    (255, True)
    """
    value &= (1 << width) - 1
    key = (id(z3.main_ctx()), value, width)
    term = _CONSTANTS.get(key)
    if term is None:
        term = _CONSTANTS[key] = z3.BitVecVal(value, width)
    return term


def variable(name: str, width: int) -> BitVec:
    """A named unconstrained bit-vector.

    >>> variable("rax0", 64).size()
    64
    """
    return z3.BitVec(name, width)


def width(value: BitVec) -> int:
    """The width in bits.

    >>> width(const(3, 16))
    16

    Two C calls (z3py's ``size()`` makes a Python object of the sort
    first, five times the cost).
    """
    context = value.ctx_ref()
    return z3.z3core.Z3_get_bv_sort_size(context, z3.z3core.Z3_get_sort(context, value.as_ast()))


def value_of(term: BitVec) -> int:
    """The unsigned value of a term that simplifies to a constant.

    >>> value_of(const(5, 8) + const(255, 8))
    4
    """
    simple = z3.simplify(term)
    if not z3.is_bv_value(simple):
        raise ValueError(f"not a constant: {term}")
    return simple.as_long()


def is_value(term: z3.ExprRef) -> bool:
    """Whether ``term`` is a value: a numeral, true or false (two C calls
    at most; ``z3.is_bv_value`` and ``z3.is_true`` make a dozen).

    >>> is_value(const(3, 8)), is_value(z3.BoolVal(False)), is_value(variable("x", 8)), is_value(z3.Bool("p"))
    (True, True, False, False)
    """
    context, ast = term.ctx_ref(), term.as_ast()
    return (z3.z3core.Z3_get_ast_kind(context, ast) == z3.Z3_NUMERAL_AST
            or z3.z3core.Z3_get_bool_value(context, ast) != z3.Z3_L_UNDEF)


def value_in(model: z3.ModelRef, term: z3.ExprRef) -> int:
    """``term``'s value in ``model`` (completed): a bit-vector's number, a
    Boolean's 0 or 1.  Read through Z3's C API, without the z3py objects of
    the value and of its number (callgrind of ``check --matrix
    CONFIG_FRAME_POINTER`` of the hypercall with its flags in the wrong
    slot, in one process, both from compiled modules: 4.12 -> 4.04 G
    instructions, the same report); a constant's value is looked up in the
    model, not evaluated (an evaluation costs about 10 us in the models of
    a ``check``, a look-up under 1 us; one the model lacks is completed to
    0 or false, as the evaluation completes it); a value (a numeral, true or
    false) is its own (of the forms check's 16,000 values, 3,700 are of
    ``true``: 20 ms evaluated, 7 ms so).

    >>> solver = z3.Solver(); x = z3.BitVec("x", 64); solver.add(x == 2**64 - 1); solver.check()
    sat
    >>> model = solver.model()
    >>> value_in(model, x), value_in(model, x == 0), value_in(model, z3.BitVec("unset", 8))
    (18446744073709551615, 0, 0)
    >>> value_in(model, z3.Bool("unset")), value_in(model, z3.Not(z3.Bool("unset")))
    (0, 1)
    >>> value_in(model, z3.Concat(x, x)) == 2**128 - 1
    True
    >>> value_in(model, z3.BoolVal(True)), value_in(model, const(2**70 + 1, 72)) == 2**70 + 1
    (1, True)
    """
    if not isinstance(model, z3.ModelRef):        # a model-like object: model.executor.Reinterpreted
        value = model.eval(term, model_completion=True)
        return int(z3.is_true(value)) if z3.is_bool(value) else value.as_long()
    known = _without_evaluation(model, term)
    return _evaluated(model, term) if known is None else known


def _without_evaluation(model: z3.ModelRef, term: z3.ExprRef) -> int | None:
    """``term``'s value in ``model`` if it is a value or a constant (None:
    it must be evaluated)."""
    core, context, ast = z3.z3core, term.ctx_ref(), term.as_ast()
    kind = core.Z3_get_ast_kind(context, ast)
    if kind == z3.Z3_NUMERAL_AST or core.Z3_get_bool_value(context, ast) != z3.Z3_L_UNDEF:
        return _number(context, ast, term)                  # a value already: nothing to evaluate
    if kind == z3.Z3_APP_AST and core.Z3_get_app_num_args(context, ast) == 0:
        declaration = core.Z3_get_app_decl(context, ast)
        if core.Z3_get_decl_kind(context, declaration) == z3.Z3_OP_UNINTERPRETED:
            value = core.Z3_model_get_const_interp(context, model.model, declaration)
            return 0 if value.value is None else _number(context, value, term)     # completed: 0, false
    return None


def _evaluated(model: z3.ModelRef, term: z3.ExprRef) -> int:
    core, context = z3.z3core, term.ctx_ref()
    result = (z3.z3types.Ast * 1)()
    if not core.Z3_model_eval(context, model.model, term.as_ast(), True, result):
        raise z3.Z3Exception("failed to evaluate expression in the model")
    value = result[0]
    core.Z3_inc_ref(context, value)
    try:
        return _number(context, value, term)
    finally:
        core.Z3_dec_ref(context, value)


def values_in(model: z3.ModelRef, terms: list[z3.ExprRef]) -> list[int]:
    """Each of ``terms``' :func:`value_in` ``model``, the ones that are
    neither values nor constants evaluated in one evaluation of their
    concatenation (a Boolean as one bit).  An evaluation costs Z3 about
    the same whatever the term: it marks what it visits in a bit set as
    large as every term the process has made, which it clears first (on
    the forms check, about 200,000 instructions an evaluation, 8.7% of the
    run's, of which a third clearing that set).  Completed as
    :func:`value_in` completes each.

    >>> solver = z3.Solver(); x = z3.BitVec("x", 8); p = z3.Bool("p"); solver.add(x == 5, p); solver.check()
    sat
    >>> values_in(solver.model(), [x + 1, z3.Not(p), x, x * 2, p, z3.BitVec("unset", 4) + 1, const(7, 3)])
    [6, 0, 5, 10, 1, 1, 7]
    """
    if not isinstance(model, z3.ModelRef):
        return [value_in(model, term) for term in terms]
    values = [_without_evaluation(model, term) for term in terms]
    asked = [(position, term if z3.is_bv(term) else from_bool(term))
             for position, (term, value) in enumerate(zip(terms, values)) if value is None]
    if asked:
        together = asked[-1][1]
        for _, term in reversed(asked[:-1]):
            together = concat(term, together)
        number = _evaluated(model, together)
        for position, term in reversed(asked):
            size = width(term)
            values[position] = number & ((1 << size) - 1)
            number >>= size
    return values


def _number(context, value, term: z3.ExprRef) -> int:
    """A value's number (a Boolean's 0 or 1); ``term``: whose value it is."""
    truth = z3.z3core.Z3_get_bool_value(context, value)
    if truth != z3.Z3_L_UNDEF:
        return int(truth == z3.Z3_L_TRUE)
    number = ctypes.c_ulonglong()
    if z3.z3core.Z3_get_numeral_uint64(context, value, ctypes.byref(number)):
        return number.value
    if z3.z3core.Z3_get_ast_kind(context, value) == z3.Z3_NUMERAL_AST:
        return int(z3.z3core.Z3_get_numeral_string(context, value))
    raise z3.Z3Exception(f"the model has no value for {term}")


# --- comparisons (Z3 Booleans) --------------------------------------------

def ult(a: BitVec, b: BitVec) -> Bool:
    """Unsigned a < b.

    >>> z3.simplify(ult(const(1, 8), const(255, 8)))
    True
    """
    return _relation(z3.Z3_mk_bvult, a, b)


def ule(a: BitVec, b: BitVec) -> Bool:
    """Unsigned a <= b.

    >>> z3.simplify(ule(const(255, 8), const(255, 8)))
    True
    """
    return _relation(z3.Z3_mk_bvule, a, b)


def slt(a: BitVec, b: BitVec) -> Bool:
    """Signed a < b (255 is -1 in 8 bits).

    >>> z3.simplify(slt(const(255, 8), const(1, 8)))
    True
    """
    return _relation(z3.Z3_mk_bvslt, a, b)


def sle(a: BitVec, b: BitVec) -> Bool:
    """Signed a <= b.

    >>> z3.simplify(sle(const(128, 8), const(127, 8)))
    True
    """
    return _relation(z3.Z3_mk_bvsle, a, b)


def _relation(make, a: BitVec, b: BitVec) -> Bool:
    """``make`` of two terms of one sort, a Z3 Boolean (through the C API,
    as :func:`_binary` is)."""
    ctx = a.ctx
    return z3.BoolRef(make(ctx.ref(), a.as_ast(), b.as_ast()), ctx)


def eq(a: BitVec, b: BitVec) -> Bool:
    """a == b as a Z3 Boolean (through the C API, which checks the sorts;
    ``==`` coerces them through several Python layers).

    >>> z3.simplify(eq(const(2, 4), const(18, 4)))
    True
    """
    return _relation(z3.Z3_mk_eq, a, b)


def add(a: BitVec, b: BitVec) -> BitVec:
    """a + b (modulo 2**width), through the C API.

    >>> value_of(add(const(250, 8), const(10, 8)))
    4
    """
    return _binary(z3.Z3_mk_bvadd, a, b)


def sub(a: BitVec, b: BitVec) -> BitVec:
    """a - b (modulo 2**width), through the C API.

    >>> value_of(sub(const(3, 8), const(10, 8)))
    249
    """
    return _binary(z3.Z3_mk_bvsub, a, b)


def mul(a: BitVec, b: BitVec) -> BitVec:
    """a * b (modulo 2**width), through the C API.

    >>> value_of(mul(const(16, 8), const(17, 8)))
    16
    """
    return _binary(z3.Z3_mk_bvmul, a, b)


def bitand(a: BitVec, b: BitVec) -> BitVec:
    """a & b, through the C API.

    >>> value_of(bitand(const(0b1100, 4), const(0b1010, 4)))
    8
    """
    return _binary(z3.Z3_mk_bvand, a, b)


def bitor(a: BitVec, b: BitVec) -> BitVec:
    """a | b, through the C API.

    >>> value_of(bitor(const(0b1100, 4), const(0b1010, 4)))
    14
    """
    return _binary(z3.Z3_mk_bvor, a, b)


def bitxor(a: BitVec, b: BitVec) -> BitVec:
    """a ^ b, through the C API.

    >>> value_of(bitxor(const(0b1100, 4), const(0b1010, 4)))
    6
    """
    return _binary(z3.Z3_mk_bvxor, a, b)


def _binary(make, a: BitVec, b: BitVec) -> BitVec:
    """``make`` of two bit-vectors, through the C API (z3py's operators
    coerce and check their operands in Python first, about five times the
    cost; Z3 checks the sorts itself and raises as they would).

    >>> add(const(1, 8), const(1, 16))
    Traceback (most recent call last):
    ...
    z3.z3types.Z3Exception: b'Argument #x0001 at position 1 has sort (_ BitVec 16) it does not match declaration (declare-fun bvadd ((_ BitVec 8) (_ BitVec 8)) (_ BitVec 8))'
    """
    ctx = a.ctx
    return z3.BitVecRef(make(ctx.ref(), a.as_ast(), b.as_ast()), ctx)


# --- Boolean connectives (C API: z3.And/Or/Not re-check every operand in Python) ---

def negation(condition: Bool) -> Bool:
    """Not ``condition``.

    >>> negation(z3.Bool("p"))
    Not(p)
    """
    ctx = condition.ctx
    return z3.BoolRef(z3.Z3_mk_not(ctx.ref(), condition.as_ast()), ctx)


def conjunction(conditions: list[Bool]) -> Bool:
    """All of ``conditions`` (True when there are none).

    >>> conjunction([z3.Bool("p"), z3.Bool("q")]), conjunction([])
    (And(p, q), True)
    """
    return _connective(z3.Z3_mk_and, conditions, True)


def disjunction(conditions: list[Bool]) -> Bool:
    """Any of ``conditions`` (False when there are none).

    >>> disjunction([z3.Bool("p"), z3.Bool("q")]), disjunction([])
    (Or(p, q), False)
    """
    return _connective(z3.Z3_mk_or, conditions, False)


def _connective(make, conditions: list[Bool], empty: bool) -> Bool:
    if not conditions:
        return z3.BoolVal(empty)
    ctx = conditions[0].ctx
    array = (z3.Ast * len(conditions))(*[condition.as_ast() for condition in conditions])
    return z3.BoolRef(make(ctx.ref(), len(conditions), array), ctx)


# --- shifts and rotates (amount has the operand's width) -------------------

def shl(a: BitVec, amount: BitVec) -> BitVec:
    """Shift left; amounts >= the width give 0.

    >>> value_of(shl(const(0x81, 8), const(1, 8)))
    2
    >>> value_of(shl(const(1, 8), const(9, 8)))
    0
    """
    return a << amount


def lshr(a: BitVec, amount: BitVec) -> BitVec:
    """Logical (unsigned) shift right.

    >>> value_of(lshr(const(0x80, 8), const(7, 8)))
    1
    """
    return z3.LShR(a, amount)


def ashr(a: BitVec, amount: BitVec) -> BitVec:
    """Arithmetic (signed) shift right; amounts >= the width fill with the sign.

    >>> hex(value_of(ashr(const(0x80, 8), const(7, 8))))
    '0xff'
    >>> hex(value_of(ashr(const(0x80, 8), const(20, 8))))
    '0xff'
    """
    return a >> amount


def rol(a: BitVec, amount: BitVec) -> BitVec:
    """Rotate left by ``amount`` modulo the width.

    >>> hex(value_of(rol(const(0x81, 8), const(9, 8))))
    '0x3'
    """
    return z3.RotateLeft(a, amount)


def ror(a: BitVec, amount: BitVec) -> BitVec:
    """Rotate right by ``amount`` modulo the width.

    >>> hex(value_of(ror(const(0x81, 8), const(1, 8))))
    '0xc0'
    """
    return z3.RotateRight(a, amount)


# --- widths and bits -------------------------------------------------------

def zext_to(target: int, a: BitVec) -> BitVec:
    """Zero-extend ``a`` to ``target`` bits.

    >>> value_of(zext_to(16, const(0xff, 8)))
    255
    """
    added = target - a.size()
    if added < 0:
        raise ValueError(f"zero-extension of {a.size()} bits to {target}")
    return a if added == 0 else z3.ZeroExt(added, a)


def sext_to(target: int, a: BitVec) -> BitVec:
    """Sign-extend ``a`` to ``target`` bits.

    >>> hex(value_of(sext_to(16, const(0x80, 8))))
    '0xff80'
    """
    added = target - a.size()
    if added < 0:
        raise ValueError(f"sign-extension of {a.size()} bits to {target}")
    return a if added == 0 else z3.SignExt(added, a)


def extract(high: int, low: int, a: BitVec) -> BitVec:
    """Bits ``high`` down to ``low`` inclusive.

    >>> hex(value_of(extract(15, 8, const(0x1234, 16))))
    '0x12'
    """
    return z3.Extract(high, low, a)


def bit(a: BitVec, index: int) -> BitVec:
    """Bit ``index`` of ``a`` as a 1-bit vector.

    >>> value_of(bit(const(0b100, 8), 2))
    1
    """
    return z3.Extract(index, index, a)


def concat(high: BitVec, low: BitVec) -> BitVec:
    """``high`` above ``low``.

    >>> hex(value_of(concat(const(0x12, 8), const(0x34, 8))))
    '0x1234'
    """
    return _binary(z3.Z3_mk_concat, high, low)


def from_bool(condition: Bool) -> BitVec:
    """A Z3 Boolean as a 1-bit vector (1 for true).

    >>> value_of(from_bool(z3.BoolVal(True)))
    1
    """
    return ite(condition, const(1, 1), const(0, 1))


def to_bool(flag: BitVec) -> Bool:
    """A 1-bit vector as a Z3 Boolean (true for 1).

    >>> z3.simplify(to_bool(const(1, 1)))
    True
    """
    if flag.size() != 1:
        raise ValueError(f"a condition is one bit, not {flag.size()}")
    return eq(flag, const(1, 1))


def ite(condition: Bool, then: BitVec, otherwise: BitVec) -> BitVec:
    """``then`` if ``condition`` else ``otherwise``.

    >>> value_of(ite(z3.BoolVal(False), const(1, 4), const(2, 4)))
    2
    >>> ite(z3.Bool("c"), const(1, 4), const(2, 8))
    Traceback (most recent call last):
    z3.z3types.Z3Exception: b'Sorts (_ BitVec 4) and (_ BitVec 8) are incompatible'

    The term is the one ``z3.If`` makes, made by the C API directly (which
    checks the sorts): ``z3.If`` spends most of its time coercing its
    arguments, and the memory model's byte-wise loads make tens of
    thousands of these.
    """
    ctx = then.ctx
    return z3.BitVecRef(z3.Z3_mk_ite(ctx.ref(), condition.as_ast(), then.as_ast(), otherwise.as_ast()), ctx)


# --- uninterpreted constants and functions ---------------------------------

def free_constants(terms, seen: set[int] | None = None) -> dict[str, z3.ExprRef]:
    """The uninterpreted constants ``terms`` are built from, by name
    (``seen``: ids of nodes already walked, to share one walk over several
    calls).

    >>> sorted(free_constants([variable("a", 8) + variable("b", 8) + 1]))
    ['a', 'b']
    """
    seen = set() if seen is None else seen
    found: dict[str, z3.ExprRef] = {}
    stack = list(terms)
    while stack:
        node = stack.pop()
        if node.get_id() in seen:
            continue
        seen.add(node.get_id())
        if z3.is_const(node) and node.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            found.setdefault(node.decl().name(), node)
        elif z3.is_app(node):
            stack.extend(node.children())
    return found


# --- uninterpreted functions -----------------------------------------------

_FUNCTIONS = CACHES.cache("z3 functions", 4_096)
"""(Z3 context id, name, arity, width) -> the function declaration (at most
40 in one proof task of the shipped fixtures; one made again is the same
declaration, as Z3 identifies them by name and sorts)."""


def function(name: str, arity: int, width: int) -> z3.FuncDeclRef:
    """The uninterpreted function ``name`` from ``arity`` 64-bit arguments
    to ``width`` bits (made once per Z3 context).

    >>> function("f", 2, 1).arity(), function("f", 2, 1).range()
    (2, BitVec(1))
    """
    key = (id(z3.main_ctx()), name, arity, width)
    declaration = _FUNCTIONS.get(key)
    if declaration is None:
        declaration = _FUNCTIONS[key] = z3.Function(name, *[z3.BitVecSort(64)] * arity, z3.BitVecSort(width))
    return declaration


def apply(declaration: z3.FuncDeclRef, arguments: list[BitVec]) -> z3.ExprRef:
    """``declaration(*arguments)`` through the C API: calling the
    declaration re-checks every argument's sort through several Python
    layers (Z3 checks them anyway).

    >>> apply(function("g", 1, 8), [const(3, 64)])
    g(3)
    """
    ctx = declaration.ctx
    array = (z3.Ast * len(arguments))(*[argument.as_ast() for argument in arguments])
    return z3.z3._to_expr_ref(z3.Z3_mk_app(ctx.ref(), declaration.as_ast(), len(arguments), array), ctx)


def substitution(pairs: list[tuple[z3.ExprRef, z3.ExprRef]]):
    """A rewrite of terms replacing each pair's first term by its second
    (what ``z3.substitute(term, *pairs)`` does), with the pairs marshalled
    once, not once per term.  Z3 checks the pairs' sorts at each rewrite
    (a pair of two sorts is a ``z3.Z3Exception``).

    >>> x, y = variable("x", 8), variable("y", 8)
    >>> substitution([(x, y + 1)])(x & y)
    y + 1 & y
    >>> substitution([(x, variable("z", 16))])(x)
    Traceback (most recent call last):
    ...
    z3.z3types.Z3Exception: b'type error'
    """
    pairs = list(pairs)
    count = len(pairs)
    sources = (z3.Ast * count)(*[source.as_ast() for source, _ in pairs])
    targets = (z3.Ast * count)(*[target.as_ast() for _, target in pairs])

    def rewrite(term: z3.ExprRef) -> z3.ExprRef:
        if not pairs:            # (the closure keeps the terms the arrays point to alive)
            return term
        ctx = term.ctx
        return z3.z3._to_expr_ref(z3.Z3_substitute(ctx.ref(), term.as_ast(), count, sources, targets), ctx)

    return rewrite
