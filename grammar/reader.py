"""The GNU-as layer: preprocessed lines -> the statements GNU as would assemble.

This module drives the reading of one file, the way GNU as 2.40 (x86-64,
ELF) does; what each kind of statement means is decided by the modules it
hands them to:

* the text of a line (statements, comments, whitespace):
  :mod:`grammar.scrubber`; text produced by an expansion is split and
  scrubbed again, as GNU as does;
* labels and assigned symbols: :mod:`grammar.symbols`;
* conditionals: :mod:`grammar.conditionals` (inside a branch not taken only
  they are read);
* macro definitions, arguments and substitution: :mod:`grammar.macros`;
* sections and the data they hold: :mod:`grammar.sections`.

What it decides itself:

* **The order** in which a statement is taken: its leading labels
  (``name:``, ``N:``), then a directive, an assignment (``name = expr``,
  ``name == expr``), a macro invocation or else an instruction, parsed by
  :mod:`grammar.parser`; a lone prefix statement (``lock;`` ``rep;``) is
  joined to the next instruction, which GNU as encodes identically.
* **Expansions**: a ``.macro`` body and a ``.rept N``, ``.irp sym,
  values...`` or ``.irpc sym, chars`` body are collected up to the matching
  ``.endm``/``.endr`` (nested ones counted) and run next; ``.exitm`` leaves
  the innermost macro.  Nesting deeper than the ``macro-depth`` limit (GNU
  as's own default, 100) is an error (runaway recursion), as it is in GNU
  as.
* **Limits** (:mod:`grammar.limits`): the count of one repetition, the
  statements of a file and the bytes of their text (the file's own and
  every expansion's), the bytes of one statement: each checked before the
  statements it would make exist, so no input runs away.
* **The other directives**: alignment and symbol directives are kept as
  written; those in :data:`NO_CODE_DIRECTIVES` (and ``.cfi_*``) produce
  nothing in ``.text`` and are dropped; ``.error``/``.err`` and ``.end``
  act; any other directive is an error naming it.

Every statement keeps its :class:`Origin` with the chain of expansions
(outermost first); every error is a :class:`SourceError` at file:line:column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from grammar import conditionals
from grammar.conditionals import Conditionals
from grammar.cpp import SourceLine
from grammar.expressions import parse_expression
from grammar.limits import Limits
from grammar.macros import Macro, MacroTable, repetition_values, substitute
from grammar.parser import REP_PREFIXES, parse_instruction
from grammar.scrubber import LABEL, NAME, OPCODE, opcode_of, split_operands, split_statements
from grammar.sections import ALIGN_DIRECTIVES, DATA_DIRECTIVES, Sections
from grammar.source import Expansion, Origin, SourceError
from grammar.statements import (Assembly, Directive, InstructionStatement, LabelDefinition, RawStatement,
                                Statement)
from grammar.symbols import SymbolTable

SYMBOL_DIRECTIVES = frozenset({".globl", ".global", ".type", ".size", ".weak", ".hidden",
                               ".local", ".protected", ".internal"})
NO_CODE_DIRECTIVES = frozenset({
    ".file", ".ident", ".loc", ".loc_mark_labels", ".addrsig", ".addrsig_sym", ".list",
    ".nolist", ".psize", ".eject", ".title", ".sbttl", ".extern", ".warning", ".print"})
"""Directives that produce no ``.text`` bytes and no symbols we need (dropped);
``.cfi_*`` (call-frame information, only ``.eh_frame`` bytes) is dropped too."""

PREFIXES = REP_PREFIXES | {"lock", "notrack"}
_ASSIGNMENT = re.compile(rf"\s*({NAME})\s*(==?)(?!=)\s*(.*)$", re.S)


@dataclass
class _Frame:
    statements: list[RawStatement]
    kind: str  # "file", "macro" or "repeat"
    conditionals: int  # depth of the conditional stack when the frame began
    position: int = 0


@dataclass
class _Collector:
    """A ``.macro`` or ``.rept``/``.irp``/``.irpc`` body being read."""

    kind: str  # ".macro", ".rept", ".irp", ".irpc"
    operands: str
    origin: Origin
    frame_depth: int
    body: list[RawStatement] = field(default_factory=list)
    depth: int = 1


class _Reader:
    """Reads one preprocessed file into an :class:`Assembly`."""

    def __init__(self, file: str, limits: Limits):
        self.assembly = Assembly(file)
        self.limits = limits
        self.made = 0
        """Statements made so far (the file's own and every expansion's)."""
        self.made_bytes = 0
        self.symbols = SymbolTable(self.assembly.symbols)
        self.conditionals = Conditionals(self.symbols)
        self.macros = MacroTable()
        self.sections = Sections(self.assembly.code_sections)
        self.frames: list[_Frame] = []
        self.collector: _Collector | None = None
        self.pending_prefixes: list[RawStatement] = []
        self.ended = False

    # -- driving ------------------------------------------------------------

    def run(self, lines: Sequence[SourceLine]) -> Assembly:
        statements = []
        for line in lines:
            for column, text in split_statements(line.text):
                origin = line.origin.at_column(column + 1)
                self._statement_size(len(text), origin)
                statements.append(RawStatement(text, origin))
        self._made(len(statements), sum(len(raw.text) for raw in statements), None,
                   statements[-1].origin if statements else None)
        self.frames.append(_Frame(statements, "file", 0))
        while self.frames and not self.ended:
            frame = self.frames[-1]
            if frame.position >= len(frame.statements):
                self._end_frame()
                continue
            raw = frame.statements[frame.position]
            frame.position += 1
            self._statement(raw)
        self._finish()
        return self.assembly

    def _end_frame(self) -> None:
        if self.collector is not None and self.collector.frame_depth == len(self.frames):
            self._unterminated(self.collector)
        frame = self.frames.pop()
        if frame.kind == "macro":
            self.conditionals.end_macro(frame.conditionals)

    def _finish(self) -> None:
        if self.collector is not None:
            self._unterminated(self.collector)
        self.conditionals.end_file()
        self._no_pending_prefix()

    @staticmethod
    def _unterminated(collector: _Collector) -> None:
        closer = ".endm" if collector.kind == ".macro" else ".endr"
        what = collector.kind
        name = re.match(NAME, collector.operands)
        if collector.kind == ".macro" and name:
            what += f" '{name.group(0)}'"
        raise SourceError(f"unterminated {what} (missing {closer})", collector.origin)

    def _statement(self, raw: RawStatement) -> None:
        if self.collector is not None:
            self._collect(raw)
            return
        if not self.conditionals.active:
            self._skipped(raw)
            return
        text, origin = raw.text, raw.origin
        while True:
            label = LABEL.match(text)
            if not label:
                break
            self._define_label(label.group(1), origin.at_column(origin.column + label.start(1)))
            skipped = label.end() + len(text[label.end():]) - len(text[label.end():].lstrip())
            origin = origin.at_column(origin.column + skipped)
            text = text[label.end():].strip()
        if text:
            self._operation(RawStatement(text, origin))

    def _skipped(self, raw: RawStatement) -> None:
        """A statement inside a false conditional: only conditionals count."""
        opcode, operands = opcode_of(raw.text)
        if opcode in conditionals.DIRECTIVES:
            self.conditionals.directive(opcode, operands, raw.origin)

    def _define_label(self, name: str, origin: Origin) -> None:
        self._no_pending_prefix()
        self._emit(LabelDefinition(self.symbols.define_label(name, origin), origin, self.sections.current))

    # -- output ---------------------------------------------------------------

    def _emit(self, statement: Statement) -> None:
        self.assembly.statements.append(statement)

    def _no_pending_prefix(self) -> None:
        if self.pending_prefixes:
            raise SourceError("prefix without an instruction", self.pending_prefixes[-1].origin)

    # -- one operation (labels removed) ------------------------------------------

    def _operation(self, raw: RawStatement) -> None:
        """One statement without labels: directive, assignment, macro or instruction
        (GNU as's order; a lone prefix waits for its instruction)."""
        opcode_match = OPCODE.match(raw.text)
        if opcode_match is None:
            raise SourceError(f"cannot parse statement '{raw.text}'", raw.origin)
        opcode = opcode_match.group(1)
        lowered = opcode.lower()
        handler = _DIRECTIVES.get(lowered)
        if handler is None and lowered.startswith(".cfi_"):
            handler = _Reader._ignore
        if handler is not None and lowered not in conditionals.DIRECTIVES:
            self._no_pending_prefix()
        if handler is not None:
            handler(self, lowered, raw.text[opcode_match.end():].strip(), raw)
            return
        assignment = _ASSIGNMENT.match(raw.text)
        if assignment:
            self._no_pending_prefix()
            self._assign(assignment.group(1), assignment.group(3), raw.origin,
                         ".equiv" if assignment.group(2) == "==" else ".set")
        elif (macro := self.macros.find(lowered)) is not None:
            self._no_pending_prefix()
            self._expand_macro(macro, raw)
        elif lowered.startswith("."):
            raise SourceError(f"unknown directive '{opcode}'", raw.origin)
        else:
            self._instruction(raw)

    def _assign(self, name: str, text: str, origin: Origin, directive: str) -> None:
        text = self.symbols.assign(name, text, origin, directive)
        self._emit(Directive(".set", f"{name}, {text}", origin, self.sections.current))

    def _instruction(self, raw: RawStatement) -> None:
        words = raw.text.split()
        if len(words) == 1 and words[0].lower() in PREFIXES:
            self.pending_prefixes.append(raw)
            return
        text, origin = raw.text, raw.origin
        if self.pending_prefixes:
            text = " ".join([prefix.text for prefix in self.pending_prefixes] + [text])
            origin = self.pending_prefixes[0].origin
            self.pending_prefixes = []
        text = self.symbols.resolve_numeric(text, origin)
        instruction = parse_instruction(text, origin, self.assembly.symbols)
        self._emit(InstructionStatement(instruction, self.sections.current))

    # -- expansions ---------------------------------------------------------------

    def _expand_macro(self, macro: Macro, raw: RawStatement) -> None:
        rewrite = self.macros.expansion(macro, raw, self.limits.statement_bytes)
        frame = Expansion(macro.name, raw.origin.file, raw.origin.line, raw.origin.column)
        self._push(macro.body, [rewrite], raw.origin.expansion + (frame,), "macro")

    def _push(self, body: Sequence[RawStatement], copies: Sequence[Callable[[str, Origin], str | None]],
              chain: tuple[Expansion, ...], kind: str, times: int = 1) -> None:
        """Run the statements of ``body`` next, once per function of
        ``copies`` (each rewrites a statement's text; None: as it is), the
        whole ``times`` over; ``chain[-1]`` is this expansion.  Every limit
        is checked before the statements are made."""
        name = chain[-1].name
        site = Origin(chain[-1].file, chain[-1].line, chain[-1].column, chain[:-1])
        if len(chain) > self.limits.macro_depth:
            recursive = any(frame.name == name for frame in chain[:-1])
            raise self.limits.exceeded(
                "macro_depth", f"macro nesting{f' (macro {name!r} expands itself)' if recursive else ''}",
                site)
        self._made(len(body) * len(copies) * times, 0, name, site, count=False)
        statements, size = [], 0
        for copy in copies:
            for item in body:
                origin = Origin(item.origin.file, item.origin.line, item.origin.column, chain)
                text = copy(item.text, origin)
                text = item.text if text is None else text
                size += len(text)
                self._made(0, size * times, name, site, count=False)
                for column, part in split_statements(text):
                    statements.append(RawStatement(part, origin.at_column(origin.column + column)))
        self._made(len(statements) * times, size * times, name, site)
        self.frames.append(_Frame(statements * times, kind, self.conditionals.depth))

    def _statement_size(self, size: int, origin: Origin) -> None:
        self.limits.check("statement_bytes", size, f"a statement of {size} bytes", origin)

    def _made(self, statements: int, size: int, name: str | None, origin: Origin | None,
              count: bool = True) -> None:
        """Count ``statements`` more statements of ``size`` bytes made by
        expansion ``name`` (None: the file itself) at ``origin``, or only check
        that they fit (``count`` False)."""
        what = f"with this expansion of '{name}'" if name else "as read"
        self.limits.check("statements", self.made + statements,
                          f"the statement count of this file ({self.made + statements} {what})", origin)
        self.limits.check("expanded_bytes", self.made_bytes + size,
                          f"the statement text of this file ({self.made_bytes + size} bytes {what})", origin)
        if count:
            self.made += statements
            self.made_bytes += size

    def _collect(self, raw: RawStatement) -> None:
        collector = self.collector
        opcode, _ = opcode_of(raw.text)
        if collector.kind == ".macro":
            openers, closer = (".macro",), ".endm"
        else:
            openers, closer = (".rept", ".irp", ".irpc"), ".endr"
        if opcode in openers:
            collector.depth += 1
        elif opcode == closer:
            collector.depth -= 1
            if collector.depth == 0:
                self.collector = None
                if collector.kind == ".macro":
                    self.macros.define(collector.operands, collector.body, collector.origin)
                else:
                    self._repeat(collector)
                return
        collector.body.append(raw)

    def _repeat(self, collector: _Collector) -> None:
        operands = collector.operands
        chain = collector.origin.expansion + (Expansion(
            collector.kind, collector.origin.file, collector.origin.line, collector.origin.column),)
        if collector.kind == ".rept":
            count = self.symbols.value(self.symbols.resolve_numeric(operands, collector.origin), collector.origin)
            self.limits.check("rept", count, f".rept count {count}", collector.origin)
            self._push(collector.body, [lambda text, origin: None], chain, "repeat", max(count, 0))
            return
        symbol, values = repetition_values(collector.kind, operands, collector.origin)
        self.limits.check("rept", len(values), f"{collector.kind} with {len(values)} values",
                          collector.origin)
        limit = self.limits.statement_bytes
        self._push(collector.body, [
            lambda text, origin, value=value: substitute(text, {symbol: value}, None, origin, limit)
            for value in values], chain, "repeat")

    # -- directives -------------------------------------------------------------

    def _ignore(self, name: str, operands: str, raw: RawStatement) -> None:
        pass

    def _start_macro(self, name: str, operands: str, raw: RawStatement) -> None:
        if not operands:
            raise SourceError("expected a macro name after .macro", raw.origin)
        self.collector = _Collector(name, operands, raw.origin, len(self.frames))

    def _start_repeat(self, name: str, operands: str, raw: RawStatement) -> None:
        self.collector = _Collector(name, operands, raw.origin, len(self.frames))

    def _stray_end(self, name: str, operands: str, raw: RawStatement) -> None:
        opener = ".macro" if name == ".endm" else ".rept/.irp/.irpc"
        raise SourceError(f"'{name}' without a matching '{opener}'", raw.origin)

    def _exit_macro(self, name: str, operands: str, raw: RawStatement) -> None:
        while self.frames and self.frames[-1].kind != "macro":
            if self.frames[-1].kind == "file":
                raise SourceError("'.exitm' outside a macro", raw.origin)
            self.frames.pop()
        frame = self.frames.pop()
        self.conditionals.exit_macro(frame.conditionals)

    def _purge_macro(self, name: str, operands: str, raw: RawStatement) -> None:
        self.macros.purge(operands)

    def _conditional(self, name: str, operands: str, raw: RawStatement) -> None:
        self.conditionals.directive(name, operands, raw.origin)

    def _set(self, name: str, operands: str, raw: RawStatement) -> None:
        parts = split_operands(operands)
        if len(parts) != 2 or not re.fullmatch(NAME, parts[0]):
            raise SourceError(f"expected '{name} SYMBOL, EXPRESSION'", raw.origin)
        self._assign(parts[0], parts[1], raw.origin, name)

    def _error(self, name: str, operands: str, raw: RawStatement) -> None:
        message = operands.strip()
        if message.startswith('"') and message.endswith('"') and len(message) >= 2:
            message = message[1:-1]
        raise SourceError(f"{name} directive: {message or 'error'}", raw.origin)

    def _end(self, name: str, operands: str, raw: RawStatement) -> None:
        self.ended = True

    def _code_mode(self, name: str, operands: str, raw: RawStatement) -> None:
        accepted = {".code64": ("",), ".att_syntax": ("", "prefix")}[name]
        if operands.strip().lower() not in accepted:
            raise SourceError(f"unsupported '{name} {operands.strip()}'", raw.origin)

    def _simple_section(self, name: str, operands: str, raw: RawStatement) -> None:
        self._emit(self.sections.simple(name, operands, raw.origin))

    def _section(self, name: str, operands: str, raw: RawStatement) -> None:
        self._emit(self.sections.section(name, operands, raw.origin))

    def _pop_section(self, name: str, operands: str, raw: RawStatement) -> None:
        self._emit(self.sections.pop(name, raw.origin))

    def _data(self, name: str, operands: str, raw: RawStatement) -> None:
        text = self.symbols.resolve_numeric(operands, raw.origin)
        for statement in self.sections.data(name, text, raw.origin, self.symbols.value):
            self._emit(statement)

    def _keep(self, name: str, operands: str, raw: RawStatement) -> None:
        text = self.symbols.resolve_numeric(operands.strip(), raw.origin)
        self._emit(Directive(name, text, raw.origin, self.sections.current))

    def _size(self, name: str, operands: str, raw: RawStatement) -> None:
        """``.size SYMBOL, EXPRESSION`` (whether GNU as can compute it is
        :mod:`grammar.program`'s to say, at the end of the file)."""
        parts = split_operands(operands)
        if len(parts) != 2 or not re.fullmatch(rf'{NAME}|"{NAME}"', parts[0]) or not parts[1]:
            raise SourceError(f"expected '.size SYMBOL, EXPRESSION', got '.size {operands}'",
                              raw.origin)
        parse_expression(self.symbols.resolve_numeric(parts[1], raw.origin), raw.origin)
        self._keep(name, operands, raw)


def _handlers() -> dict[str, Callable]:
    table: dict[str, Callable] = {}
    for name in NO_CODE_DIRECTIVES:
        table[name] = _Reader._ignore
    table[".macro"] = _Reader._start_macro
    for name in (".rept", ".irp", ".irpc"):
        table[name] = _Reader._start_repeat
    table[".endm"] = table[".endr"] = _Reader._stray_end
    table[".exitm"] = _Reader._exit_macro
    table[".purgem"] = _Reader._purge_macro
    for name in conditionals.DIRECTIVES:
        table[name] = _Reader._conditional
    for name in (".set", ".equ", ".equiv"):
        table[name] = _Reader._set
    table[".error"] = table[".err"] = _Reader._error
    table[".end"] = _Reader._end
    table[".code64"] = table[".att_syntax"] = _Reader._code_mode
    for name in (".text", ".data", ".bss"):
        table[name] = _Reader._simple_section
    table[".section"] = table[".pushsection"] = _Reader._section
    table[".popsection"] = table[".previous"] = _Reader._pop_section
    for name in DATA_DIRECTIVES:
        table[name] = _Reader._data
    for name in ALIGN_DIRECTIVES | SYMBOL_DIRECTIVES:
        table[name] = _Reader._keep
    table[".size"] = _Reader._size
    return table


_DIRECTIVES = _handlers()


def expand(file: str, lines: Sequence[SourceLine], limits: Limits = Limits()) -> Assembly:
    """Run the GNU-as layer over one preprocessed file."""
    return _Reader(file, limits).run(lines)
