"""Statements of the GNU-as layer -> the :class:`ast.Program` the model reads.

Decisions:

* **Functions.**  A label defined in a code section starts a function when
  its symbol is typed as a function anywhere in the file (``.type name,
  @function``; also ``%function``, ``STT_FUNC``, ``"function"``), or when it
  is global (``.globl``/``.global``/``.weak``) and no function is open in
  that section (so a global label inside a function, the kernel's
  ``SYM_INNER_LABEL``, stays a label).  A function ends at its ``.size``
  directive, at the next function start in its section, or at the end of the
  file.  Its items are the labels (its own first) and instructions of its
  section in between; statements of other sections (``.pushsection``
  exception-table entries) interleave freely.  A function longer than the
  ``function-instructions`` limit (:mod:`grammar.limits`) is an error.
* **Ends GNU as rejects.**  ``.size NAME, EXPR`` needs an ``EXPR`` that GNU
  as can reduce to a constant at the end of the file: the addresses in it
  must cancel section by section and it may name no undefined symbol
  (outside a difference that cancels).  So ``SYM_FUNC_START(f) ...
  SYM_FUNC_END(g)`` with no ``g`` in the file, a stray ``SYM_FUNC_END(f)``,
  ``.size f, f`` or a size measured from another section are errors at
  the ``.size``, naming the function open there.  What GNU as accepts is
  accepted, even where it looks odd (``SYM_FUNC_END`` of an earlier
  function leaves the open one to run to the next function or the end of
  the file; a size through a symbol assigned a non-constant is not judged).
* **Code units.**  A label typed ``STT_NOTYPE`` (``@notype``) that has a
  ``.size`` -- the kernel's ``SYM_CODE_START`` ... ``SYM_CODE_END``, code
  that does not follow the C calling convention -- starts a unit of kind
  ``"code"``, bounded as a function is.  The executor runs it where a path
  jumps into it (``jmp __thunk_restore``); it is not checked on its own.
  An inner label (``SYM_INNER_LABEL``, typed alike but with no size) stays
  a label.
* **Code outside any function** (an ``int3`` after a function, alignment,
  the replacement code of ``ALTERNATIVE`` in an executable section of its
  own, the fixup code of older trees) is accepted and is in no function:
  real kernel files have it; the executor ends a path that jumps into it
  as unsupported (never proved).  Whether a run checked any function at
  all is the run's to say, not the front end's.
* **Labels.**  ``Program.labels`` maps every label defined in a code section
  to (function, index of its :class:`ast.Label` in the function's items); a
  code label outside every function maps to ``(None, -1)``.
* **Exception table.**  The ``.long`` values of ``__ex_table`` are read in
  threes: ``from - .``, ``to - .`` and the type, a constant (1 default,
  2 fault, as the kernel's ``EX_TYPE_*``; another value keeps its number) or,
  in older trees, ``handler - .`` naming ``ex_handler_fault`` /
  ``ex_handler_default`` (another handler keeps its name).  Anything else in
  ``__ex_table`` is an error.
* **Undefined labels** (GNU as would accept them as external symbols): a
  ``call`` or ``jmp`` to a name that is not local is an external function;
  a reference to an undefined local (``.L...`` or a numeric ``Nf``), a
  conditional jump or a RIP-relative operand naming an undefined symbol, and
  an exception-table label that is not defined, are errors.
* **Alignment** inside a function with an explicit fill other than ``0x90``
  (NOP), or a 2/4-byte fill pattern (``.balignw`` ...), would put
  non-instruction bytes in the function's flow: an error.
* Several input files are separate translation units (as the kernel builds
  them): a local label (``.L...``, numeric labels included) that an earlier
  file also defines is renamed with the suffix ``__N`` (N the file's index)
  by :func:`separate_units`; a global or function name defined in two files
  is an error.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Sequence

from grammar import ast
from grammar.expressions import (Binary, BinaryOp, Number, Symbol, UnaryOp, evaluate, fold,
                                 parse_expression)
from grammar.limits import Limits
from grammar.scrubber import split_operands
from grammar.sections import ALIGN_DIRECTIVES, NOP
from grammar.statements import Assembly, DataStatement, Directive, InstructionStatement, LabelDefinition
from grammar.source import Origin, SourceError
from grammar.symbols import numeric_label_spelling

EXTABLE_SECTION = "__ex_table"
EXTABLE_TYPES = {1: "default", 2: "fault"}
"""The kernel's ``EX_TYPE_DEFAULT`` and ``EX_TYPE_FAULT``."""
EXTABLE_HANDLERS = {"ex_handler_default": "default", "ex_handler_fault": "fault"}
FUNCTION_TYPES = frozenset({"@function", "%function", "stt_func", '"function"', "function"})
CODE_TYPES = frozenset({"@notype", "%notype", "stt_notype", '"notype"', "notype"})
"""The symbol type of the kernel's ``SYM_CODE_END`` (``SYM_T_NONE``): code, not a C function."""
GLOBAL_DIRECTIVES = frozenset({".globl", ".global", ".weak"})


@dataclass
class _Open:
    order: int
    name: str
    origin: Origin
    section: str
    items: list = field(default_factory=list)


def _symbol_declarations(assembly: Assembly) -> tuple[dict[str, str], set[str]]:
    """(the kind of each name typed as a function or as code, names
    declared global) in one file."""
    typed: dict[str, str] = {}
    globals_: set[str] = set()
    for statement in assembly.statements:
        if not isinstance(statement, Directive):
            continue
        operands = split_operands(statement.operands)
        if statement.name == ".type" and len(operands) == 1 and " " in operands[0]:
            operands = operands[0].split(None, 1)
        if statement.name == ".type" and len(operands) == 2:
            if operands[1].lower() in FUNCTION_TYPES:
                typed[operands[0]] = "function"
            elif operands[1].lower() in CODE_TYPES:
                typed.setdefault(operands[0], "code")
        elif statement.name in GLOBAL_DIRECTIVES:
            globals_.update(operand for operand in operands if operand)
    # Code is a unit only with a size (SYM_CODE_END); an inner label
    # (SYM_INNER_LABEL) is typed alike but has none.
    sized = {split_operands(s.operands)[0].strip('"') for s in assembly.statements
             if isinstance(s, Directive) and s.name == ".size"}
    return {name: kind for name, kind in typed.items() if kind == "function" or name in sized}, globals_


def _alignment_fill(statement: Directive, symbols: dict[str, int]) -> int | None:
    operands = split_operands(statement.operands)
    if len(operands) < 2 or not operands[1]:
        return None
    return evaluate(parse_expression(operands[1], statement.origin), symbols,
                    statement.origin) & 0xFF


_Terms = dict[str, int]
"""A ``.size`` expression as GNU as sees it at the end of the file: the
coefficient of each section's base address (``"section .text"``) and of
each undefined symbol (``"undefined g"``) in it; None when we cannot tell
(a symbol assigned something that is not absolute now, a product of
addresses)."""


def _size_terms(expr, section: str, assembly: Assembly, label_sections: dict[str, str],
                assigned: set[str]) -> _Terms | None:
    def leaf(node) -> _Terms | None:
        if isinstance(node, Number):
            return {}
        if node.name == ".":
            return {f"section {section}": 1}
        if node.name in label_sections:
            return {f"section {label_sections[node.name]}": 1}
        if node.name in assembly.symbols:
            return {}
        return None if node.name in assigned else {f"undefined {node.name}": 1}

    def unary(op: UnaryOp, operand: _Terms | None) -> _Terms | None:
        if operand is not None and op in (UnaryOp.NEGATE, UnaryOp.PLUS):
            return {key: -value if op is UnaryOp.NEGATE else value for key, value in operand.items()}
        return _beyond_sums(operand)

    def binary(op: BinaryOp, left: _Terms | None, right: _Terms | None) -> _Terms | None:
        if left is None or right is None:
            return None
        if op in (BinaryOp.ADD, BinaryOp.SUBTRACT):
            sign = 1 if op is BinaryOp.ADD else -1
            terms = dict(left)
            for key, value in right.items():
                terms[key] = terms.get(key, 0) + sign * value
            return {key: value for key, value in terms.items() if value}
        return _beyond_sums(left) if left else _beyond_sums(right)

    return fold(expr, leaf, unary, binary)


def _beyond_sums(terms: _Terms | None) -> _Terms | None:
    """The terms of an operator other than + and - applied to ``terms``:
    constant stays constant, an undefined symbol stays (GNU as rejects it),
    addresses alone make it unknown (GNU as may resolve ``2*(.-f)``)."""
    if terms is None:
        return None
    undefined = {key: value for key, value in terms.items() if key.startswith("undefined ")}
    return undefined or ({} if not terms else None)


def _check_size(statement: Directive, assembly: Assembly, label_sections: dict[str, str],
                assigned: set[str], open_function: str | None) -> None:
    """A ``.size`` that GNU as rejects (its expression is not a constant at
    the end of the file) is an error; one that GNU as may accept is not."""
    name, text = split_operands(statement.operands)
    terms = _size_terms(parse_expression(text, statement.origin), statement.section, assembly,
                        label_sections, assigned)
    if not terms:
        return
    undefined = [key.split(" ", 1)[1] for key in terms if key.startswith("undefined ")]
    if undefined:
        why = f"'{undefined[0]}' is not defined in this file"
    else:
        sections = [key.split(" ", 1)[1] for key in terms]
        why = (f"it mixes the addresses of sections {', '.join(sections)}" if len(sections) > 1
               else f"it is an address in section {sections[0]}, not a difference of two")
    if open_function is not None and open_function != name.strip('"'):
        why += f" (the function open here is '{open_function}')"
    raise SourceError(f".size expression for '{name.strip(chr(34))}' does not evaluate to a "
                      f"constant, as GNU as requires: {why}", statement.origin)


def _functions(assembly: Assembly, limits: Limits
               ) -> tuple[list[ast.Function], dict[str, tuple[str | None, int]]]:
    typed, globals_ = _symbol_declarations(assembly)
    open_by_section: dict[str, _Open] = {}
    done: list[tuple[int, ast.Function]] = []
    labels: dict[str, tuple[str | None, int]] = {}
    label_sections = {s.name: s.section for s in assembly.statements if isinstance(s, LabelDefinition)}
    assigned = {split_operands(s.operands)[0] for s in assembly.statements
                if isinstance(s, Directive) and s.name == ".set"}
    instructions: dict[str, int] = {}

    def close(section: str) -> None:
        current = open_by_section.pop(section, None)
        if current is not None:
            done.append((current.order, ast.Function(
                current.name, current.origin, current.section, tuple(current.items),
                typed.get(current.name, "function"))))

    for order, statement in enumerate(assembly.statements):
        if isinstance(statement, Directive) and statement.name == ".size":
            name = split_operands(statement.operands)[0].strip('"')
            current = open_by_section.get(statement.section)
            _check_size(statement, assembly, label_sections, assigned,
                        current.name if current else None)
            for open_section, candidate in list(open_by_section.items()):
                if candidate.name == name:
                    close(open_section)
            continue
        section = statement.section
        if section not in assembly.code_sections:
            continue
        current = open_by_section.get(section)
        if isinstance(statement, LabelDefinition):
            name = statement.name
            if name in typed or (name in globals_ and current is None):
                close(section)
                current = open_by_section[section] = _Open(order, name, statement.origin, section)
            if current is None:
                labels[name] = (None, -1)
            else:
                labels[name] = (current.name, len(current.items))
                current.items.append(ast.Label(name, statement.origin))
        elif isinstance(statement, InstructionStatement):
            if current is not None:
                current.items.append(statement.instruction)
                instructions[current.name] = instructions.get(current.name, 0) + 1
                limits.check("function_instructions", instructions[current.name],
                             f"function '{current.name}'", statement.origin)
        elif isinstance(statement, Directive):
            if (statement.name in ALIGN_DIRECTIVES and current is not None and (
                    statement.name[-1] in "wl" or _alignment_fill(statement, assembly.symbols)
                    not in (None, NOP))):
                raise SourceError("alignment inside a function pads with bytes that are not "
                                  "NOPs: the padding would be executed", statement.origin)
    for section in list(open_by_section):
        close(section)
    return [function for _, function in sorted(done, key=lambda pair: pair[0])], labels


def _label_of(text: str, origin: Origin) -> str | None:
    """``sym - .`` -> ``sym``; anything else -> None."""
    expr = parse_expression(text, origin)
    if (isinstance(expr, Binary) and expr.op is BinaryOp.SUBTRACT
            and isinstance(expr.left, Symbol) and isinstance(expr.right, Symbol)
            and expr.right.name == "."):
        return expr.left.name
    return None


def _extable(assembly: Assembly) -> list[ast.ExtableEntry]:
    values: list[tuple[str, Origin]] = []
    for statement in assembly.statements:
        if statement.section != EXTABLE_SECTION:
            continue
        if isinstance(statement, DataStatement):
            if statement.directive not in (".long", ".int", ".4byte"):
                raise SourceError(f"unsupported '{statement.directive}' in {EXTABLE_SECTION} "
                                  "(entries are three .long values)", statement.origin)
            values.extend((value, statement.origin) for value in statement.values)
        elif isinstance(statement, (LabelDefinition, InstructionStatement)):
            raise SourceError(f"unexpected {type(statement).__name__} in {EXTABLE_SECTION}",
                              statement.origin)
        elif statement.name not in (".align", ".balign", ".p2align", ".pushsection",
                                    ".section", ".popsection", ".previous"):
            raise SourceError(f"unsupported '{statement.name}' in {EXTABLE_SECTION}",
                              statement.origin)
    if len(values) % 3:
        raise SourceError(f"{EXTABLE_SECTION} holds {len(values)} .long values, not whole "
                          "entries of three (from - ., to - ., type)", values[-1][1])
    entries = []
    for index in range(0, len(values), 3):
        (source, origin), (target, _), (kind, _) = values[index:index + 3]
        from_label, to_label = _label_of(source, origin), _label_of(target, origin)
        if from_label is None or to_label is None:
            raise SourceError(f"{EXTABLE_SECTION} entry '{source}', '{target}' is not of the "
                              "form 'label - .'", origin)
        handler = _label_of(kind, origin)
        if handler is not None:
            kind_name = EXTABLE_HANDLERS.get(handler, handler)
        else:
            number = evaluate(parse_expression(kind, origin), assembly.symbols, origin)
            kind_name = EXTABLE_TYPES.get(number, str(number))
        entries.append(ast.ExtableEntry(from_label, to_label, kind_name, origin))
    return entries


def _undefined(name: str, origin: Origin, why: str) -> SourceError:
    spelled = numeric_label_spelling(name)
    return SourceError(f"undefined label '{spelled or name}'{why}", origin)


def _check_references(assembly: Assembly, extable: list[ast.ExtableEntry]) -> None:
    defined = {s.name for s in assembly.statements if isinstance(s, LabelDefinition)}
    defined |= set(assembly.symbols)
    for statement in assembly.statements:
        if not isinstance(statement, InstructionStatement):
            continue
        instruction = statement.instruction
        for operand in instruction.operands:
            if isinstance(operand, ast.Target) and operand.label not in defined:
                local = operand.label.startswith(".L")
                if local or instruction.base not in ("call", "jmp"):
                    raise _undefined(operand.label, instruction.origin,
                                     "" if local else f" (only call/jmp may name an external "
                                     f"symbol, not '{instruction.mnemonic}')")
            if (isinstance(operand, ast.Memory) and operand.symbol is not None
                    and operand.symbol.startswith(".L") and operand.symbol not in defined):
                raise _undefined(operand.symbol, instruction.origin, "")
    for entry in extable:
        for label in (entry.from_label, entry.to_label):
            if label not in defined:
                raise _undefined(label, entry.origin, f" in {EXTABLE_SECTION} entry")


def build_program(files: Sequence[str], assemblies: Sequence[Assembly],
                  limits: Limits = Limits()) -> ast.Program:
    """One :class:`ast.Program` from the files' assemblies."""
    functions: list[ast.Function] = []
    extable: list[ast.ExtableEntry] = []
    labels: dict[str, tuple[str | None, int]] = {}
    symbols: dict[str, int] = {}
    globals_: set[str] = set()
    for assembly in assemblies:
        file_functions, file_labels = _functions(assembly, limits)
        file_extable = _extable(assembly)
        _check_references(assembly, file_extable)
        for name in file_labels:
            if name in labels:
                origin = next(s.origin for s in assembly.statements
                              if isinstance(s, LabelDefinition) and s.name == name)
                raise SourceError(f"label '{name}' is defined in more than one input file",
                                  origin)
        functions += file_functions
        extable += file_extable
        labels.update(file_labels)
        symbols.update(assembly.symbols)
        globals_ |= _symbol_declarations(assembly)[1]
    return ast.Program(files=tuple(files), functions=tuple(functions), extable=tuple(extable),
                       labels=labels, symbols=symbols, globals=frozenset(globals_))


def _rename_operand(operand: ast.Operand, renames: dict[str, str]) -> ast.Operand:
    if isinstance(operand, ast.Target) and operand.label in renames:
        return ast.Target(renames[operand.label])
    if isinstance(operand, ast.Memory) and operand.symbol in renames:
        return replace(operand, symbol=renames[operand.symbol])
    if isinstance(operand, ast.Indirect):
        return ast.Indirect(_rename_operand(operand.operand, renames))
    return operand


def _rename(assembly: Assembly, renames: dict[str, str]) -> Assembly:
    pattern = re.compile(r"(?<![\w.$])(" + "|".join(map(re.escape, renames)) + r")(?![\w.$])")

    def text(value: str) -> str:
        return pattern.sub(lambda match: renames[match.group(1)], value)

    statements = []
    for statement in assembly.statements:
        if isinstance(statement, LabelDefinition):
            statement = replace(statement, name=renames.get(statement.name, statement.name))
        elif isinstance(statement, InstructionStatement):
            instruction = statement.instruction
            operands = tuple(_rename_operand(operand, renames) for operand in instruction.operands)
            statement = replace(statement, instruction=replace(instruction, operands=operands))
        elif isinstance(statement, DataStatement):
            statement = replace(statement, values=tuple(text(value) for value in statement.values))
        else:
            statement = replace(statement, operands=text(statement.operands))
        statements.append(statement)
    return Assembly(assembly.file, statements, dict(assembly.symbols), set(assembly.code_sections))


def separate_units(assemblies: Sequence[Assembly]) -> list[Assembly]:
    """Rename the local labels a later file shares with an earlier one."""
    taken: set[str] = set()
    result = []
    for index, assembly in enumerate(assemblies):
        defined = {s.name for s in assembly.statements if isinstance(s, LabelDefinition)}
        renames = {name: f"{name}__{index}" for name in sorted(defined & taken)
                   if name.startswith(".L")}
        result.append(_rename(assembly, renames) if renames else assembly)
        taken |= {renames.get(name, name) for name in defined}
    return result
