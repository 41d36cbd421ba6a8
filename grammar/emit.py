"""Re-emit the GNU-as layer's statements as plain assembly.

The output has no C preprocessor lines, macros, conditionals or repetitions:
one statement per line in the original order, labels with numeric local
labels already renamed to their unique names, instructions re-printed by
:func:`grammar.parser.format_instruction`, data, alignment, section and
symbol directives as written (numeric label references resolved), and
symbol assignments in place so that GNU as sees every value when the
original did.  Each line ends with a comment naming its origin.
"""
from __future__ import annotations

from grammar.parser import format_instruction
from grammar.statements import Assembly, DataStatement, InstructionStatement, LabelDefinition, Statement


def _line(statement: Statement) -> str:
    if isinstance(statement, LabelDefinition):
        return f"{statement.name}:"
    if isinstance(statement, InstructionStatement):
        return "\t" + format_instruction(statement.instruction)
    if isinstance(statement, DataStatement):
        return f"\t{statement.directive} {', '.join(statement.values)}".rstrip()
    return f"\t{statement.name} {statement.operands}".rstrip()


def emit(assembly: Assembly) -> str:
    """Plain assembly text for one file's statements."""
    lines = [f"# {assembly.file}: expanded by tdxproof", "\t.text"]
    for statement in assembly.statements:
        origin = statement.origin
        lines.append(f"{_line(statement)}\t# {origin.file}:{origin.line}")
    return "\n".join(lines) + "\n"
