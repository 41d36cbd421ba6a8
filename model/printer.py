"""The IR as readable text (``tdxproof ir``).

Each instruction is shown with its source ``file:line`` (a comment line
names the macro chain whenever it changes), followed by its IR step: the parallel assignment, one effect a
line, then the control transfer.  Decisions, all about readability:

* registers are shown by their architectural view where the IR is exactly
  one (``Extract(31, 0, rax)`` prints as ``eax``, a 32-bit write as
  ``eax := ...``, a merged 8-bit write as ``al := ...``);
* the parity computation the lifter spells out bit by bit prints as
  ``parity8(x)`` (1 when the low byte of ``x`` has an even number of ones);
* constants print in hex, one-bit constants as 0/1, loads as
  ``mem64[address]``, symbol addresses as ``&name``.

One renderer per IR node class (``@renders``); a test checks that every
expression, effect and control class has one.
"""
from __future__ import annotations

from grammar import ast
from grammar.source import Expansion, Origin, SourceError
from model import ir
from model.lift import lift
from model.registry import Registry

RENDERERS = Registry("renderers")
"""IR node type -> its text form ``(node) -> str`` (``@renders(ir.Const)``)."""
renders = RENDERERS.register


def text(node: object) -> str:
    """The text of an IR expression, effect or control transfer.

    >>> text(ir.Binary(ir.BinOp.ADD, ir.Extract(31, 0, ir.Reg("rdi")), ir.Const(8, 32)))
    '(edi + 0x8)'
    """
    return RENDERERS[type(node)](node)


_VIEWS: dict[tuple[str, int, int], str] = {}
for _name, _view in ast.REGISTERS.items():
    _VIEWS.setdefault(_view, _name)  # the first (canonical) spelling wins


def _view_name(family: str, high: int, low: int) -> str | None:
    return _VIEWS.get((family, high - low + 1, low))


def _parity_operand(node: ir.Expr) -> ir.Expr | None:
    """``x`` when ``node`` is the lifter's bitwise even-parity of ``x[7:0]``."""
    if not (isinstance(node, ir.Unary) and node.op is ir.UnOp.NOT):
        return None
    bits: list[ir.Expr] = []
    chain = node.operand
    while isinstance(chain, ir.Binary) and chain.op is ir.BinOp.XOR:
        bits.append(chain.right)
        chain = chain.left
    bits.append(chain)
    bits.reverse()
    if len(bits) != 8 or not all(isinstance(b, ir.Extract) and b.high == b.low == i
                                 for i, b in enumerate(bits)):
        return None
    operand = bits[0].operand  # type: ignore[union-attr]
    return operand if all(b.operand == operand for b in bits) else None  # type: ignore[union-attr]


@renders(ir.Const)
def _const(node: ir.Const) -> str:
    return str(node.value) if node.width == 1 else hex(node.value)


@renders(ir.Reg)
def _reg(node: ir.Reg) -> str:
    return node.name


@renders(ir.Flag)
def _flag(node: ir.Flag) -> str:
    return node.name


@renders(ir.Load)
def _load(node: ir.Load) -> str:
    return f"mem{node.width}[{text(node.address)}]"


@renders(ir.Unary)
def _unary(node: ir.Unary) -> str:
    parity_of = _parity_operand(node)
    if parity_of is not None:
        return f"parity8({text(parity_of)})"
    return f"{node.op.value}{text(node.operand)}"


@renders(ir.Binary)
def _binary(node: ir.Binary) -> str:
    if node.op in (ir.BinOp.ROL, ir.BinOp.ROR):
        return f"{node.op.value}({text(node.left)}, {text(node.right)})"
    return f"({text(node.left)} {node.op.value} {text(node.right)})"


@renders(ir.Extract)
def _extract(node: ir.Extract) -> str:
    if isinstance(node.operand, ir.Reg):
        view = _view_name(node.operand.name, node.high, node.low)
        if view is not None:
            return view
    bits = f"{node.high}" if node.high == node.low else f"{node.high}:{node.low}"
    return f"{text(node.operand)}[{bits}]"


@renders(ir.ZeroExt)
def _zero_ext(node: ir.ZeroExt) -> str:
    return f"zext{node.width}({text(node.operand)})"


@renders(ir.SignExt)
def _sign_ext(node: ir.SignExt) -> str:
    return f"sext{node.width}({text(node.operand)})"


@renders(ir.Concat)
def _concat(node: ir.Concat) -> str:
    return f"concat({text(node.high)}, {text(node.low)})"


@renders(ir.Ite)
def _ite(node: ir.Ite) -> str:
    return f"({text(node.condition)} ? {text(node.then)} : {text(node.otherwise)})"


@renders(ir.Undefined)
def _undefined(node: ir.Undefined) -> str:
    return f"undefined({node.reason})"


@renders(ir.Symbol)
def _symbol(node: ir.Symbol) -> str:
    return f"&{node.name}"


@renders(ir.ReturnAddress)
def _return_address(node: ir.ReturnAddress) -> str:
    return "return_address"


def _register_write(effect: ir.SetReg) -> tuple[str, ir.Expr]:
    """(architectural register written, value) for the lifter's write shapes."""
    value, whole = effect.value, ir.Reg(effect.name)
    if isinstance(value, ir.ZeroExt) and value.operand.width == 32:
        view = _view_name(effect.name, 31, 0)
        if view is not None:
            return view, value.operand
    if isinstance(value, ir.Concat):
        high, low = value.high, value.low
        if high == ir.Extract(63, low.width, whole):  # 8/16-bit merge
            view = _view_name(effect.name, low.width - 1, 0)
            if view is not None:
                return view, low
        if (isinstance(high, ir.Concat) and low == ir.Extract(7, 0, whole)
                and high.high == ir.Extract(63, 16, whole)):  # %ah-style
            view = _view_name(effect.name, 15, 8)
            if view is not None:
                return view, high.low
    return effect.name, value


@renders(ir.SetReg)
def _set_reg(effect: ir.SetReg) -> str:
    name, value = _register_write(effect)
    return f"{name} := {text(value)}"


@renders(ir.SetFlag)
def _set_flag(effect: ir.SetFlag) -> str:
    return f"{effect.name} := {text(effect.value)}"


@renders(ir.Store)
def _store(effect: ir.Store) -> str:
    return f"mem{effect.value.width}[{text(effect.address)}] := {text(effect.value)}"


@renders(ir.Jump)
def _jump(control: ir.Jump) -> str:
    return f"goto {control.target}"


@renders(ir.Branch)
def _branch(control: ir.Branch) -> str:
    return f"if {text(control.condition)} goto {control.target}"


@renders(ir.Call)
def _call(control: ir.Call) -> str:
    return f"call {control.target}"


@renders(ir.Return)
def _return(control: ir.Return) -> str:
    return f"return to {text(control.address)}"


@renders(ir.Trap)
def _trap(control: ir.Trap) -> str:
    return f"trap {control.kind} (vector {control.vector})"


@renders(ir.TdxInstruction)
def _tdx_instruction(control: ir.TdxInstruction) -> str:
    return f"{control.kind} (TDX module)"


def _expansion_note(origin: Origin) -> str:
    """The macro chain an origin came through, as a comment line."""
    if not origin.expansion:
        return "  # not in a macro"
    return "  # in " + " > ".join(f"{frame.name} at {frame.file}:{frame.line}"
                                 for frame in origin.expansion)


def step_text(step: ir.Step, indent: str = "    ") -> str:
    """One line per effect (together a parallel assignment), then the
    control transfer.

    >>> print(step_text(ir.Step((ir.SetReg("rax", ir.Reg("rdi")),), ir.Jump("out"))))
        rax := rdi
        goto out
    """
    lines = [indent + text(effect) for effect in step.effects]
    if step.control is not None:
        lines.append(indent + text(step.control))
    if not lines:
        lines.append(indent + "(no effect)")
    return "\n".join(lines)


def function_text(function: ast.Function) -> str:
    """A function's labels and instructions, each with its source line and
    IR; a comment line says whenever the macro chain changes."""
    lines = [f"function {function.name}  ({function.origin.file}:{function.origin.line})"]
    chain: tuple[Expansion, ...] = ()
    for item in function.items:
        if isinstance(item, ast.Label):
            lines.append(f"  {item.name}:")
            continue
        if item.origin.expansion != chain:
            chain = item.origin.expansion
            lines.append(_expansion_note(item.origin))
        lines.append(f"  {item.origin.file}:{item.origin.line}: {item}")
        lines.append(step_text(lift(item)))
    return "\n".join(lines) + "\n"


def ir_text(program: ast.Program, function_names: list[str]) -> str:
    """The IR of the named functions (all when ``function_names`` is empty)."""
    if function_names:
        known = {function.name for function in program.functions}
        for name in function_names:
            if name not in known:
                raise SourceError(f"no function named {name!r} (defined: {', '.join(sorted(known))})")
        functions = [program.function(name) for name in function_names]
    else:
        functions = list(program.functions)
    header = "# the effects of one instruction are simultaneous: all read the state before it\n"
    return header + "\n".join(function_text(function) for function in functions)
