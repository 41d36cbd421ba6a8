"""What ``tdxproof parse`` prints: the parsed program, as JSON or as text.

The JSON shape is SPEC section 8's (``functions`` with their instructions and
source locations, the macro expansion chain outermost first) plus an
``extable`` list; it depends only on the program, so the same input gives
the same bytes.
"""
from __future__ import annotations

from grammar import ast
from grammar.source import Expansion


def _expansion(frame: Expansion) -> dict:
    return {"macro": frame.name, "file": frame.file, "line": frame.line, "column": frame.column}


def _instruction(instruction: ast.Instruction) -> dict:
    origin = instruction.origin
    return {
        "mnemonic": instruction.mnemonic,
        "prefixes": list(instruction.prefixes),
        "operands": [str(operand) for operand in instruction.operands],
        "file": origin.file,
        "line": origin.line,
        "column": origin.column,
        "expansion": [_expansion(frame) for frame in origin.expansion],
    }


def program_json(program: ast.Program) -> dict:
    """The ``parse --json`` document."""
    return {
        "functions": [{
            "name": function.name,
            "file": function.origin.file,
            "line": function.origin.line,
            "section": function.section,
            "instructions": [_instruction(instruction) for instruction in function.instructions],
        } for function in program.functions],
        "extable": [{
            "from": entry.from_label,
            "to": entry.to_label,
            "kind": entry.kind,
            "file": entry.origin.file,
            "line": entry.origin.line,
        } for entry in program.extable],
    }


def program_text(program: ast.Program) -> str:
    """A readable listing: each function, its labels and instructions with origins."""
    lines = []
    for function in program.functions:
        lines.append(f"function {function.name} ({function.section}) at {function.origin.render()}")
        for item in function.items:
            if isinstance(item, ast.Label):
                lines.append(f"  {item.name}:")
            else:
                lines.append(f"    {str(item):<40} {item.origin.render()}")
        lines.append("")
    if program.extable:
        lines.append("exception table")
        for entry in program.extable:
            lines.append(f"  {entry.from_label} -> {entry.to_label} ({entry.kind}) "
                         f"at {entry.origin.render()}")
    return "\n".join(lines) + ("\n" if lines and lines[-1] else "")
