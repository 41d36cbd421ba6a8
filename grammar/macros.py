"""The GNU-as layer: preprocessed lines -> the statements GNU as would assemble.

This module decides, the way GNU as 2.40 (x86-64, ELF) does:

* **Statements and comments.**  A line holds statements separated by ``;``;
  ``#`` starts a comment anywhere outside a string or a character constant
  (``'c``), ``/`` only where a statement begins.  Every statement is read
  through :func:`scrub`, GNU as's whitespace rule: in the operand field a
  run of blanks survives (as one space) only between two "symbol
  characters" (names, digits and x86's ``*%-([{}``), or after a string or
  before a quote; so ``M 2 +1`` passes one argument ``2+1`` and ``M 2 -1``
  two; the scrubber also turns a character constant ``'c`` into its decimal
  value, so ``M 'a' 'b`` passes ``9798``.  Text produced by an expansion is
  read (and scrubbed) again, as GNU as does.
* **Labels**: ``name:`` and numeric ``N:`` at the start of a statement.  The
  k-th definition of ``N`` is named ``.Lnum.N.k`` (a local name GNU as accepts
  and never emits to the symbol table), ``Nb`` is the latest definition so
  far and ``Nf`` the next one; references are rewritten in the text before
  anything parses it.  A label defined twice is an error.
* **Macros** (``.macro``/``.endm``, ``.exitm``, ``.purgem``): names are
  case-insensitive; parameters take ``:req``, ``:vararg`` and ``=default``;
  arguments are split exactly as GNU as's ``get_any_string`` does (blank or
  comma separated, a leading ``"string"`` loses its quotes, ``key=value``
  arguments, a positional argument after a keyword one is an error); in the
  body ``\\param``, ``\\()`` and ``\\@`` (GNU as's count of macro expansions
  so far, which ``.irp``/``.rept`` do not advance and do not substitute) are
  replaced.  Nesting deeper than the ``macro-depth`` limit (GNU as's own
  default, 100) is an error (runaway recursion), as it is in GNU as.  A
  macro's expansion must close the conditionals it opens (GNU as: "end of
  macro inside conditional").
* **Conditionals** ``.if .ifeq .ifne .ifge .ifgt .ifle .iflt .ifdef .ifndef
  .ifnotdef .ifb .ifnb .ifc .ifnc .elseif .else .endif``; expressions are
  parsed and evaluated by :mod:`grammar.expressions` with the absolute
  symbols known at that point; ``.ifdef`` is true for a label or an assigned
  symbol already defined.
* **Repetition** ``.rept N``, ``.irp sym, values...``, ``.irpc sym, chars``
  up to the matching ``.endr``.
* **Limits** (:mod:`grammar.limits`): the count of one repetition, the
  statements of a file and the bytes of their text (the file's own and
  every expansion's), the bytes of one statement: each checked before the
  statements it would make exist, so no input runs away.
* **Symbols** ``.set``/``.equ``/``name = expr`` (redefinable), ``.equiv``
  (not redefinable): a value that is absolute now is recorded for later
  expressions; one that is not (it involves a label or ``.``) is re-emitted
  for GNU as to compute and has no value for us.
* **Sections** ``.text``/``.data``/``.bss`` (subsection 0 only),
  ``.section``, ``.pushsection``, ``.popsection``, ``.previous``.  A section
  holds code when its flags contain ``x``, or, without flags, when GNU as
  would make it executable by name (``.text``, ``.text.*``, ``.init``,
  ``.fini``).
* **Data** (:data:`DATA_DIRECTIVES`) is kept for re-emission; in a code
  section only ``.byte`` runs spelling TDCALL (``66 0f 01 cc``) or SEAMCALL
  (``66 0f 01 cf``) are accepted and become instructions, and NOP padding
  (``.nops N``, ``.skip N, 0x90``, ``.fill N, 1, 0x90``) is kept like
  alignment; any other data in code is an error.  Alignment and symbol
  directives are kept as written; the directives in
  :data:`NO_CODE_DIRECTIVES` produce nothing in ``.text`` and are dropped.
  Any other directive is an error naming it.
* Everything else is an instruction, parsed by :mod:`grammar.parser`; a lone
  prefix statement (``lock;`` ``rep;``) is joined to the next instruction,
  which GNU as encodes identically.

Every statement keeps its :class:`Origin` with the chain of expansions
(outermost first); every error is a :class:`SourceError` at file:line:column.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from grammar import ast
from grammar.cpp import SourceLine
from grammar.expressions import character_value, evaluate, parse_expression, symbols_of
from grammar.limits import Limits
from grammar.parser import REP_PREFIXES, parse_instruction
from grammar.source import Expansion, Origin, SourceError

TDX_ENCODINGS: dict[tuple[int, ...], str] = {
    (0x66, 0x0F, 0x01, 0xCC): "tdcall",
    (0x66, 0x0F, 0x01, 0xCF): "seamcall",
}
"""Raw byte spellings of the TDX instructions that kernel files emit as data."""

DATA_DIRECTIVES = frozenset({
    ".byte", ".word", ".short", ".value", ".hword", ".2byte", ".long", ".int", ".4byte",
    ".quad", ".8byte", ".ascii", ".asciz", ".string", ".skip", ".space", ".zero",
    ".fill", ".uleb128", ".sleb128", ".nops"})
"""Directives that emit bytes; kept as written for re-emission."""

ALIGN_DIRECTIVES = frozenset({".align", ".balign", ".p2align", ".balignw", ".balignl",
                              ".p2alignw", ".p2alignl"})
SYMBOL_DIRECTIVES = frozenset({".globl", ".global", ".type", ".size", ".weak", ".hidden",
                               ".local", ".protected", ".internal"})
NO_CODE_DIRECTIVES = frozenset({
    ".file", ".ident", ".loc", ".loc_mark_labels", ".addrsig", ".addrsig_sym", ".list",
    ".nolist", ".psize", ".eject", ".title", ".sbttl", ".extern", ".warning", ".print"})
"""Directives that produce no ``.text`` bytes and no symbols we need (dropped);
``.cfi_*`` (call-frame information, only ``.eh_frame`` bytes) is dropped too."""

NOP = 0x90
PREFIXES = REP_PREFIXES | {"lock", "notrack"}
_CODE_SECTION_NAMES = re.compile(r"^(\.text(\..*)?|\.init|\.fini)$")

_NAME_START = r"[A-Za-z_.$]"
_NAME = r"[A-Za-z_.$][\w.$]*"
_LABEL = re.compile(rf"\s*({_NAME}|\d+)\s*:(?!:)")
_OPCODE = re.compile(rf"\s*({_NAME})")
_ASSIGNMENT = re.compile(rf"\s*({_NAME})\s*(==?)(?!=)\s*(.*)$", re.S)
_SYMBOL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$")
_SCRUB_KEEPS = _SYMBOL_CHARS | set("*%-([{}")
_SEPARATORS = set(" \t,\";()<>")


# ---------------------------------------------------------------------------
# Text helpers: statements, comments, GNU as's whitespace scrubbing


def _skip_quoted(text: str, index: int) -> int:
    """Index just past the string or character constant starting at ``index``.

    A character constant is ``'c``, ``'\\c`` or either with a closing ``'``.

    >>> _skip_quoted("'a'+1", 0), _skip_quoted("'a+1", 0), _skip_quoted('"a;b" c', 0)
    (3, 2, 5)
    """
    if text[index] == "'":
        end = min(index + (3 if text[index + 1:index + 2] == "\\" else 2), len(text))
        return end + 1 if text[end:end + 1] == "'" else end
    index += 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    return index


def split_statements(text: str) -> list[tuple[int, str]]:
    """A line -> its statements as (0-based column, text), comment removed.

    >>> split_statements('  push %rax; mov $1, %eax # note; not a statement')
    [(2, 'push %rax'), (13, 'mov $1, %eax')]
    >>> split_statements(".ascii \\"a;#b\\" ; .byte ';")
    [(0, '.ascii "a;#b"'), (16, ".byte ';")]
    >>> split_statements("  / a comment; too"), split_statements("nop; / comment")
    ([], [(0, 'nop')])
    """
    statements, start, index = [], 0, 0
    while index < len(text):
        char = text[index]
        if char == "/" and not text[start:index].strip():
            char = "#"  # '/' opening a statement starts a line comment
        if char in "\"'":
            index = _skip_quoted(text, index)
            continue
        if char in ";#":
            statements.append((start, text[start:index]))
            if char == "#":
                start = index = len(text)
                break
            start = index + 1
        index += 1
    if start < len(text):
        statements.append((start, text[start:]))
    result = []
    for column, statement in statements:
        stripped = statement.strip()
        if stripped:
            result.append((column + len(statement) - len(statement.lstrip()), stripped))
    return result


def scrub(text: str) -> str:
    """GNU as's whitespace rule for one statement (opcode + operands); its
    scrubber also turns character constants into decimal numbers.

    >>> scrub("M  2 +1"), scrub("M 2 -1"), scrub("M (x) 1"), scrub("M a ,  b")
    ('M 2+1', 'M 2 -1', 'M (x)1', 'M a,b')
    >>> scrub('.ascii  "a   b"'), scrub("M 2 'a"), scrub("M 'a' 'b")
    ('.ascii "a   b"', 'M 2 97', 'M 9798')
    """
    text = text.strip()
    match = re.match(r"\S+", text)
    if match is None:
        return ""
    out = [match.group(0)]
    index = match.end()
    if index < len(text):
        out.append(" ")
    pending = keeps = False  # a blank is waiting; the last output keeps it
    while index < len(text):
        char = text[index]
        if char in " \t":
            pending = True
            index += 1
            continue
        if pending and keeps and (char in _SCRUB_KEEPS or char in "\"'"):
            out.append(" ")
        pending = False
        if char == '"':
            end = _skip_quoted(text, index)
            out.append(text[index:end])
            keeps = True
        elif char == "'" and index + 1 < len(text):
            end = _skip_quoted(text, index)
            out.append(str(character_value(text[index:end])))
            keeps = False
        else:
            end = index + 1
            out.append(char)
            keeps = char in _SCRUB_KEEPS
        index = end
    return "".join(out).rstrip()


def split_operands(text: str) -> list[str]:
    """Comma-separated operands (commas inside strings and parentheses kept).

    >>> split_operands('1, (2, 3), "a,b"')
    ['1', '(2, 3)', '"a,b"']
    >>> split_operands("")
    []
    """
    parts, depth, start, index = [], 0, 0, 0
    while index < len(text):
        char = text[index]
        if char in "\"'":
            index = _skip_quoted(text, index)
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
        index += 1
    last = text[start:].strip()
    if parts or last:
        parts.append(last)
    return parts


_NUMERIC_REF = re.compile(r"(?:(?<=[^\w.$]\$)|(?<=^\$)|(?<![\w.$]))(\d+)([fb])(?![\w.$])")


def numeric_label_name(number: str, instance: int) -> str:
    """The unique name of the ``instance``-th definition of local label ``number``.

    >>> numeric_label_name("01", 3)
    '.Lnum.1.3'
    """
    return f".Lnum.{int(number)}.{instance}"


def numeric_label_spelling(name: str) -> str | None:
    """The ``Nf`` reference a never-defined unique name came from, if any.

    >>> numeric_label_spelling(".Lnum.1.3"), numeric_label_spelling(".Lnum.2.1__1")
    ('1f', '2f')
    >>> numeric_label_spelling(".Lout") is None
    True
    """
    match = re.fullmatch(r"\.Lnum\.(\d+)\.\d+(__\d+)?", name)
    return f"{match.group(1)}f" if match else None


# ---------------------------------------------------------------------------
# The statements this layer produces


@dataclass(frozen=True)
class LabelDefinition:
    name: str
    origin: Origin
    section: str


@dataclass(frozen=True)
class InstructionStatement:
    instruction: ast.Instruction
    section: str

    @property
    def origin(self) -> Origin:
        return self.instruction.origin


@dataclass(frozen=True)
class DataStatement:
    """``.long a - ., b`` -> directive ``.long``, values ``("a - .", "b")``."""

    directive: str
    values: tuple[str, ...]
    origin: Origin
    section: str


@dataclass(frozen=True)
class Directive:
    """A directive re-emitted as written (numeric label references resolved):
    section switches, alignment, symbol directives, assignments."""

    name: str
    operands: str
    origin: Origin
    section: str


Statement = Union[LabelDefinition, InstructionStatement, DataStatement, Directive]


@dataclass
class Assembly:
    """One input file after the GNU-as layer: statements in source order."""

    file: str
    statements: list[Statement] = field(default_factory=list)
    symbols: dict[str, int] = field(default_factory=dict)
    """Absolute values of assigned symbols (the last assignment wins)."""
    code_sections: set[str] = field(default_factory=set)


# ---------------------------------------------------------------------------
# Reading state


@dataclass(frozen=True)
class _Raw:
    """A statement as read: text (comment removed, numeric refs unresolved)."""

    text: str
    origin: Origin


@dataclass
class _Macro:
    name: str
    formals: list[tuple[str, str, str]]  # (name, kind: "" | "req" | "vararg", default)
    body: list[_Raw]
    origin: Origin


@dataclass
class _Frame:
    statements: list[_Raw]
    kind: str  # "file", "macro" or "repeat"
    conditionals: int  # depth of the conditional stack when the frame began
    position: int = 0


@dataclass
class _Conditional:
    origin: Origin
    parent_active: bool
    active: bool
    taken: bool
    seen_else: bool = False


@dataclass
class _Collector:
    """A ``.macro`` or ``.rept``/``.irp``/``.irpc`` body being read."""

    kind: str  # ".macro", ".rept", ".irp", ".irpc"
    operands: str
    origin: Origin
    frame_depth: int
    body: list[_Raw] = field(default_factory=list)
    depth: int = 1


def _after_labels(text: str) -> int:
    """Index of the first character after the statement's leading labels."""
    index = 0
    while label := _LABEL.match(text, index):
        index = label.end()
    return index


def _opcode_of(text: str) -> tuple[str | None, str]:
    """(lower-cased first word after any labels, the rest) of a statement."""
    match = _OPCODE.match(text, _after_labels(text))
    if match is None:
        return None, ""
    return match.group(1).lower(), text[match.end():].strip()


_CONDITIONAL_OPENERS = frozenset({
    ".if", ".ifeq", ".ifne", ".ifge", ".ifgt", ".ifle", ".iflt", ".ifdef", ".ifndef",
    ".ifnotdef", ".ifb", ".ifnb", ".ifc", ".ifnc"})


class _Reader:
    """Reads one preprocessed file into an :class:`Assembly`."""

    def __init__(self, file: str, limits: Limits):
        self.assembly = Assembly(file)
        self.limits = limits
        self.made = 0
        """Statements made so far (the file's own and every expansion's)."""
        self.made_bytes = 0
        self.macros: dict[str, _Macro] = {}
        self.frames: list[_Frame] = []
        self.conditionals: list[_Conditional] = []
        self.collector: _Collector | None = None
        self.macro_count = 0
        self.numeric_labels: dict[str, int] = {}
        self.labels: set[str] = set()
        self.relative_symbols: set[str] = set()
        self.section = ".text"
        self.previous_section = ".text"
        self.section_stack: list[tuple[str, str]] = []
        self.assembly.code_sections.add(".text")
        self.known_sections: set[str] = {".text"}
        self.pending_prefixes: list[_Raw] = []
        self.ended = False

    # -- driving ------------------------------------------------------------

    def run(self, lines: Sequence[SourceLine]) -> Assembly:
        statements = []
        for line in lines:
            for column, text in split_statements(line.text):
                origin = line.origin.at_column(column + 1)
                self._statement_size(len(text), origin)
                statements.append(_Raw(text, origin))
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
        if frame.kind == "macro" and len(self.conditionals) > frame.conditionals:
            raise SourceError("end of macro inside conditional (missing .endif)",
                              self.conditionals[frame.conditionals].origin)

    def _finish(self) -> None:
        if self.collector is not None:
            self._unterminated(self.collector)
        if self.conditionals:
            raise SourceError("unterminated conditional (missing .endif)",
                              self.conditionals[-1].origin)
        if self.pending_prefixes:
            raise SourceError("prefix without an instruction", self.pending_prefixes[-1].origin)

    @staticmethod
    def _unterminated(collector: _Collector) -> None:
        closer = ".endm" if collector.kind == ".macro" else ".endr"
        what = collector.kind
        name = re.match(_NAME, collector.operands)
        if collector.kind == ".macro" and name:
            what += f" '{name.group(0)}'"
        raise SourceError(f"unterminated {what} (missing {closer})", collector.origin)

    @property
    def active(self) -> bool:
        return not self.conditionals or self.conditionals[-1].active

    def _statement(self, raw: _Raw) -> None:
        if self.collector is not None:
            self._collect(raw)
            return
        if not self.active:
            self._skipped(raw)
            return
        text, origin = raw.text, raw.origin
        while True:
            label = _LABEL.match(text)
            if not label:
                break
            self._define_label(label.group(1), origin.at_column(origin.column + label.start(1)))
            skipped = label.end() + len(text[label.end():]) - len(text[label.end():].lstrip())
            origin = origin.at_column(origin.column + skipped)
            text = text[label.end():].strip()
        if text:
            self._operation(_Raw(text, origin))

    def _skipped(self, raw: _Raw) -> None:
        """A statement inside a false conditional: only conditionals count."""
        opcode, operands = _opcode_of(raw.text)
        if opcode in _CONDITIONAL_OPENERS or opcode in (".elseif", ".else", ".endif"):
            self._conditional(opcode, operands, raw)

    # -- labels and symbols ------------------------------------------------------

    def _define_label(self, name: str, origin: Origin) -> None:
        self._no_pending_prefix()
        if name.isdigit():
            count = self.numeric_labels.get(str(int(name)), 0) + 1
            self.numeric_labels[str(int(name))] = count
            name = numeric_label_name(name, count)
        elif self._defined(name):
            raise SourceError(f"symbol '{name}' is already defined", origin)
        self.labels.add(name)
        self._emit(LabelDefinition(name, origin, self.section))

    def resolve_numeric(self, text: str, origin: Origin) -> str:
        """Rewrite ``Nf``/``Nb`` references to unique label names (not in strings)."""
        def replace(match: re.Match) -> str:
            number, direction = str(int(match.group(1))), match.group(2)
            count = self.numeric_labels.get(number, 0)
            if direction == "b":
                if count == 0:
                    raise SourceError(f"undefined label '{match.group(0)}' (no earlier "
                                      f"'{number}:')",
                                      origin.at_column(origin.column + match.start()))
                return numeric_label_name(number, count)
            return numeric_label_name(number, count + 1)

        out, index, start = [], 0, 0
        while index < len(text):
            if text[index] == '"':
                out.append(_NUMERIC_REF.sub(replace, text[start:index]))
                end = _skip_quoted(text, index)
                out.append(text[index:end])
                start = index = end
                continue
            index += 1
        out.append(_NUMERIC_REF.sub(replace, text[start:]))
        return "".join(out)

    def _value(self, text: str, origin: Origin) -> int:
        return evaluate(parse_expression(text, origin), self.assembly.symbols, origin)

    def _assign(self, name: str, text: str, origin: Origin, directive: str) -> None:
        if name in self.labels:
            raise SourceError(f"symbol '{name}' is already defined as a label", origin)
        if directive == ".equiv" and self._defined(name):
            raise SourceError(f"symbol '{name}' is already defined (.equiv)", origin)
        text = self.resolve_numeric(text, origin)
        expr = parse_expression(text, origin)
        if symbols_of(expr) - set(self.assembly.symbols):
            # Not absolute now (it involves a label or '.'): GNU as computes it;
            # it has no value for our expressions.
            self.assembly.symbols.pop(name, None)
            self.relative_symbols.add(name)
        else:
            self.assembly.symbols[name] = evaluate(expr, self.assembly.symbols, origin)
            self.relative_symbols.discard(name)
        self._emit(Directive(".set", f"{name}, {text}", origin, self.section))

    def _defined(self, name: str) -> bool:
        return (name in self.labels or name in self.assembly.symbols
                or name in self.relative_symbols)

    # -- output ---------------------------------------------------------------

    def _emit(self, statement: Statement) -> None:
        self.assembly.statements.append(statement)

    def _no_pending_prefix(self) -> None:
        if self.pending_prefixes:
            raise SourceError("prefix without an instruction", self.pending_prefixes[-1].origin)

    # -- one operation (labels removed) ------------------------------------------

    def _operation(self, raw: _Raw) -> None:
        """One statement without labels: directive, assignment, macro or instruction
        (GNU as's order; a lone prefix waits for its instruction)."""
        opcode_match = _OPCODE.match(raw.text)
        if opcode_match is None:
            raise SourceError(f"cannot parse statement '{raw.text}'", raw.origin)
        opcode = opcode_match.group(1)
        lowered = opcode.lower()
        handler = _DIRECTIVES.get(lowered)
        if handler is None and lowered.startswith(".cfi_"):
            handler = _Reader._ignore
        if handler is not None and lowered not in _CONDITIONAL_OPENERS | {
                ".elseif", ".else", ".endif"}:
            self._no_pending_prefix()
        if handler is not None:
            handler(self, lowered, raw.text[opcode_match.end():].strip(), raw)
            return
        assignment = _ASSIGNMENT.match(raw.text)
        if assignment:
            self._no_pending_prefix()
            self._assign(assignment.group(1), assignment.group(3), raw.origin,
                         ".equiv" if assignment.group(2) == "==" else ".set")
        elif lowered in self.macros:
            self._no_pending_prefix()
            self._expand_macro(self.macros[lowered], raw)
        elif lowered.startswith("."):
            raise SourceError(f"unknown directive '{opcode}'", raw.origin)
        else:
            self._instruction(raw)

    def _instruction(self, raw: _Raw) -> None:
        words = raw.text.split()
        if len(words) == 1 and words[0].lower() in PREFIXES:
            self.pending_prefixes.append(raw)
            return
        text, origin = raw.text, raw.origin
        if self.pending_prefixes:
            text = " ".join([prefix.text for prefix in self.pending_prefixes] + [text])
            origin = self.pending_prefixes[0].origin
            self.pending_prefixes = []
        text = self.resolve_numeric(text, origin)
        instruction = parse_instruction(text, origin, self.assembly.symbols)
        self._emit(InstructionStatement(instruction, self.section))

    # -- macros -------------------------------------------------------------------

    def _expand_macro(self, macro: _Macro, raw: _Raw) -> None:
        scrubbed = scrub(raw.text)
        arguments = scrubbed[_OPCODE.match(scrubbed).end():]
        values = _bind_arguments(macro, arguments, raw.origin)
        number = self.macro_count
        self.macro_count += 1
        frame = Expansion(macro.name, raw.origin.file, raw.origin.line, raw.origin.column)
        limit = self.limits.statement_bytes
        self._push(macro.body, [lambda text, origin: substitute(text, values, number, origin, limit)],
                   raw.origin.expansion + (frame,), "macro")

    def _push(self, body: Sequence[_Raw], copies: Sequence[Callable[[str, Origin], str | None]],
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
                    statements.append(_Raw(part, origin.at_column(origin.column + column)))
        self._made(len(statements) * times, size * times, name, site)
        self.frames.append(_Frame(statements * times, kind, len(self.conditionals)))

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

    def _collect(self, raw: _Raw) -> None:
        collector = self.collector
        opcode, _ = _opcode_of(raw.text)
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
                    self._define_macro(collector)
                else:
                    self._repeat(collector)
                return
        collector.body.append(raw)

    def _define_macro(self, collector: _Collector) -> None:
        text = scrub(".macro " + collector.operands)[len(".macro "):]
        match = re.match(rf"({_NAME})\s*,?\s*", text)
        if match is None:
            raise SourceError("expected a macro name after .macro", collector.origin)
        name = match.group(1)
        if name.lower() in self.macros:
            raise SourceError(f"macro '{name}' was already defined", collector.origin)
        formals = _parse_formals(text[match.end():], name, collector.origin)
        self.macros[name.lower()] = _Macro(name, formals, collector.body, collector.origin)

    def _repeat(self, collector: _Collector) -> None:
        operands = collector.operands
        chain = collector.origin.expansion + (Expansion(
            collector.kind, collector.origin.file, collector.origin.line, collector.origin.column),)
        if collector.kind == ".rept":
            count = self._value(self.resolve_numeric(operands, collector.origin), collector.origin)
            self.limits.check("rept", count, f".rept count {count}", collector.origin)
            self._push(collector.body, [lambda text, origin: None], chain, "repeat", max(count, 0))
            return
        scrubbed = scrub(".irp " + operands)[len(".irp "):]
        match = re.match(rf"({_NAME})\s*,?", scrubbed)
        if match is None:
            raise SourceError(f"expected a symbol name after {collector.kind}", collector.origin)
        symbol, rest = match.group(1), scrubbed[match.end():]
        if collector.kind == ".irp":
            values = _irp_values(rest) or [""]
        else:
            _, string = _get_any_string(rest, 0)
            values = list(string) or [""]
        self.limits.check("rept", len(values), f"{collector.kind} with {len(values)} values",
                          collector.origin)
        limit = self.limits.statement_bytes
        self._push(collector.body, [
            lambda text, origin, value=value: substitute(text, {symbol: value}, None, origin, limit)
            for value in values], chain, "repeat")

    # -- directives -------------------------------------------------------------

    def _ignore(self, name: str, operands: str, raw: _Raw) -> None:
        pass

    def _start_macro(self, name: str, operands: str, raw: _Raw) -> None:
        if not operands:
            raise SourceError("expected a macro name after .macro", raw.origin)
        self.collector = _Collector(name, operands, raw.origin, len(self.frames))

    def _start_repeat(self, name: str, operands: str, raw: _Raw) -> None:
        self.collector = _Collector(name, operands, raw.origin, len(self.frames))

    def _stray_end(self, name: str, operands: str, raw: _Raw) -> None:
        opener = ".macro" if name == ".endm" else ".rept/.irp/.irpc"
        raise SourceError(f"'{name}' without a matching '{opener}'", raw.origin)

    def _exit_macro(self, name: str, operands: str, raw: _Raw) -> None:
        while self.frames and self.frames[-1].kind != "macro":
            if self.frames[-1].kind == "file":
                raise SourceError("'.exitm' outside a macro", raw.origin)
            self.frames.pop()
        frame = self.frames.pop()
        del self.conditionals[frame.conditionals:]

    def _purge_macro(self, name: str, operands: str, raw: _Raw) -> None:
        for macro in split_operands(scrub(".purgem " + operands)[len(".purgem "):]):
            self.macros.pop(macro.lower(), None)

    def _conditional(self, name: str, operands: str, raw: _Raw) -> None:
        if name in _CONDITIONAL_OPENERS:
            parent = self.active
            value = parent and self._condition(name, operands, raw)
            self.conditionals.append(_Conditional(raw.origin, parent, value, value))
            return
        if not self.conditionals:
            raise SourceError(f"'{name}' without a matching '.if'", raw.origin)
        top = self.conditionals[-1]
        if name == ".endif":
            self.conditionals.pop()
            return
        if top.seen_else:
            raise SourceError(f"'{name}' after '.else'", raw.origin)
        if name == ".else":
            top.seen_else = True
            top.active = top.parent_active and not top.taken
        else:  # .elseif
            top.active = (top.parent_active and not top.taken
                          and self._condition(".if", operands, raw))
        top.taken = top.taken or top.active

    def _condition(self, name: str, operands: str, raw: _Raw) -> bool:
        origin = raw.origin
        if name in (".ifdef", ".ifndef", ".ifnotdef"):
            symbol = operands.strip()
            if not re.fullmatch(_NAME, symbol):
                raise SourceError(f"expected a symbol name after {name}", origin)
            return self._defined(symbol) == (name == ".ifdef")
        if name in (".ifb", ".ifnb"):
            return (scrub(". " + operands)[2:] == "") == (name == ".ifb")
        if name in (".ifc", ".ifnc"):
            left, right = _ifc_strings(scrub(". " + operands)[2:], origin)
            return (left == right) == (name == ".ifc")
        if not operands:
            raise SourceError(f"expected an expression after {name}", origin)
        value = self._value(self.resolve_numeric(operands, origin), origin)
        return {".if": value != 0, ".ifne": value != 0, ".ifeq": value == 0,
                ".ifge": value >= 0, ".ifgt": value > 0, ".ifle": value <= 0,
                ".iflt": value < 0}[name]

    def _set(self, name: str, operands: str, raw: _Raw) -> None:
        parts = split_operands(operands)
        if len(parts) != 2 or not re.fullmatch(_NAME, parts[0]):
            raise SourceError(f"expected '{name} SYMBOL, EXPRESSION'", raw.origin)
        self._assign(parts[0], parts[1], raw.origin, name)

    def _error(self, name: str, operands: str, raw: _Raw) -> None:
        message = operands.strip()
        if message.startswith('"') and message.endswith('"') and len(message) >= 2:
            message = message[1:-1]
        raise SourceError(f"{name} directive: {message or 'error'}", raw.origin)

    def _end(self, name: str, operands: str, raw: _Raw) -> None:
        self.ended = True

    def _code_mode(self, name: str, operands: str, raw: _Raw) -> None:
        accepted = {".code64": ("",), ".att_syntax": ("", "prefix")}[name]
        if operands.strip().lower() not in accepted:
            raise SourceError(f"unsupported '{name} {operands.strip()}'", raw.origin)

    # sections

    def _switch(self, section: str, flags: str | None) -> None:
        """Make ``section`` current; its kind is fixed at its first mention."""
        if section not in self.known_sections:
            self.known_sections.add(section)
            if ("x" in flags) if flags is not None else _CODE_SECTION_NAMES.match(section):
                self.assembly.code_sections.add(section)
        self.previous_section, self.section = self.section, section

    def _simple_section(self, name: str, operands: str, raw: _Raw) -> None:
        if operands.strip() not in ("", "0"):
            raise SourceError(f"subsections are not supported ('{name} {operands.strip()}')",
                              raw.origin)
        self._switch(name, None)
        self._emit(Directive(name, "", raw.origin, self.section))

    def _section(self, name: str, operands: str, raw: _Raw) -> None:
        parts = split_operands(operands)
        if not parts or not parts[0]:
            raise SourceError(f"expected a section name after {name}", raw.origin)
        section = parts[0].strip('"')
        flags = None
        if len(parts) > 1:
            if not (parts[1].startswith('"') and parts[1].endswith('"')):
                if name == ".pushsection" and len(parts) == 2 and parts[1] in ("", "0"):
                    parts = parts[:1]
                else:
                    raise SourceError(f"unsupported section flags '{parts[1]}'", raw.origin)
            else:
                flags = parts[1][1:-1]
        if name == ".pushsection":
            self.section_stack.append((self.section, self.previous_section))
        self._switch(section, flags)
        self._emit(Directive(name, operands.strip(), raw.origin, self.section))

    def _pop_section(self, name: str, operands: str, raw: _Raw) -> None:
        if name == ".popsection":
            if not self.section_stack:
                raise SourceError(".popsection without a matching .pushsection", raw.origin)
            self.section, self.previous_section = self.section_stack.pop()
        else:
            self.section, self.previous_section = self.previous_section, self.section
        self._emit(Directive(name, "", raw.origin, self.section))

    # data, alignment, symbols

    def _data(self, name: str, operands: str, raw: _Raw) -> None:
        text = self.resolve_numeric(operands, raw.origin)
        values = tuple(split_operands(text))
        if self.section in self.assembly.code_sections:
            if name == ".byte":
                self._tdx_bytes(values, raw)
            elif self._nop_padding(name, values, raw.origin):
                self._emit(Directive(name, text.strip(), raw.origin, self.section))
            else:
                raise SourceError(f"data ('{name}') in code section '{self.section}' is not "
                                  "an instruction we can model", raw.origin)
            return
        self._emit(DataStatement(name, values, raw.origin, self.section))

    def _nop_padding(self, name: str, values: tuple[str, ...], origin: Origin) -> bool:
        """``.nops N``, ``.skip N, 0x90`` or ``.fill N, 1, 0x90``: NOP bytes.

        The length may involve labels (the kernel's ALTERNATIVE pads the
        original instruction to the replacement's length); GNU as computes it.
        """
        if name == ".nops":
            return True
        if name == ".fill":  # .fill repeat, size, value
            return (len(values) == 3 and self._value(values[1], origin) == 1
                    and self._value(values[2], origin) & 0xFF == NOP)
        return (name in (".skip", ".space") and len(values) == 2
                and self._value(values[1], origin) & 0xFF == NOP)

    def _tdx_bytes(self, values: tuple[str, ...], raw: _Raw) -> None:
        data = tuple(self._value(value, raw.origin) & 0xFF for value in values)
        position = 0
        while position < len(data):
            for encoding, mnemonic in TDX_ENCODINGS.items():
                if data[position:position + len(encoding)] == encoding:
                    instruction = parse_instruction(mnemonic, raw.origin, {})
                    self._emit(InstructionStatement(instruction, self.section))
                    position += len(encoding)
                    break
            else:
                spelled = " ".join(f"{byte:02x}" for byte in data)
                raise SourceError(f"raw bytes in code section '{self.section}' ({spelled}) are "
                                  "not a known instruction encoding (only TDCALL 66 0f 01 cc "
                                  "and SEAMCALL 66 0f 01 cf are decoded)", raw.origin)

    def _keep(self, name: str, operands: str, raw: _Raw) -> None:
        text = self.resolve_numeric(operands.strip(), raw.origin)
        self._emit(Directive(name, text, raw.origin, self.section))

    def _size(self, name: str, operands: str, raw: _Raw) -> None:
        """``.size SYMBOL, EXPRESSION`` (whether GNU as can compute it is
        :mod:`grammar.program`'s to say, at the end of the file)."""
        parts = split_operands(operands)
        if len(parts) != 2 or not re.fullmatch(rf'{_NAME}|"{_NAME}"', parts[0]) or not parts[1]:
            raise SourceError(f"expected '.size SYMBOL, EXPRESSION', got '.size {operands}'",
                              raw.origin)
        parse_expression(self.resolve_numeric(parts[1], raw.origin), raw.origin)
        self._keep(name, operands, raw)


def _ifc_strings(text: str, origin: Origin) -> tuple[str, str]:
    """The two operands of ``.ifc`` (GNU as: ``'quoted''s'`` or bare text)."""
    def one(index: int) -> tuple[str, int]:
        while index < len(text) and text[index] in " \t":
            index += 1
        if index < len(text) and text[index] == "'":
            out, index = [], index + 1
            while index < len(text):
                if text[index] == "'":
                    if index + 1 < len(text) and text[index + 1] == "'":
                        out.append("'")
                        index += 2
                        continue
                    return "".join(out), index + 1
                out.append(text[index])
                index += 1
            raise SourceError("unterminated quoted string in .ifc", origin)
        end = text.find(",", index)
        end = len(text) if end < 0 else end
        return text[index:end].rstrip(), end

    left, index = one(0)
    while index < len(text) and text[index] in " \t":
        index += 1
    if index >= len(text) or text[index] != ",":
        raise SourceError(".ifc needs two comma-separated operands", origin)
    right, index = one(index + 1)
    return left, right


# ---------------------------------------------------------------------------
# GNU as's macro argument and parameter syntax (macro.c), reproduced


def _skip_white(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t":
        index += 1
    return index


def _skip_comma(text: str, index: int) -> int:
    index = _skip_white(text, index)
    if index < len(text) and text[index] == ",":
        index = _skip_white(text, index + 1)
    return index


def _get_any_string(text: str, index: int) -> tuple[int, str]:
    """One macro argument starting at ``index`` -> (next index, argument).

    >>> _get_any_string('"a b" c', 0), _get_any_string("(a b),c", 0), _get_any_string("x y", 0)
    ((5, 'a b'), (5, '(a b)'), (1, 'x'))
    """
    index = _skip_white(text, index)
    out: list[str] = []
    if index < len(text) and text[index] == '"':
        while index < len(text) and text[index] == '"':
            index += 1
            escaped = False
            while index < len(text):
                escaped = (not escaped) if text[index - 1] == "\\" else False
                if not escaped and text[index] == '"':
                    index += 1
                    if index >= len(text) or text[index] != '"':
                        break
                out.append(text[index])
                index += 1
        return index, "".join(out)
    brackets: list[str] = []
    while index < len(text) and (brackets or text[index] not in " \t") and text[index] != ",":
        char = text[index]
        if char in "\"'":
            out.append(char)
            index += 1
            while index < len(text) and text[index] != char:
                out.append(text[index])
                index += 1
            if index >= len(text):
                return index, "".join(out)
        elif char in "([":
            brackets.append(char)
        elif char == ")" and brackets and brackets[-1] == "(":
            brackets.pop()
        elif char == "]" and brackets and brackets[-1] == "[":
            brackets.pop()
        out.append(char)
        index += 1
    return index, "".join(out)


def _irp_values(text: str) -> list[str]:
    values, index = [], _skip_white(text, 0)
    while index < len(text):
        index, value = _get_any_string(text, index)
        values.append(value)
        index = _skip_comma(text, index)
    return values


def _parse_formals(text: str, macro: str, origin: Origin) -> list[tuple[str, str, str]]:
    """``a, b:req c=1 d:vararg`` -> [(name, kind, default)], as GNU as's do_formals."""
    formals: list[tuple[str, str, str]] = []
    index = _skip_white(text, 0)
    while index < len(text):
        match = re.compile(_NAME).match(text, index)
        if match is None:
            raise SourceError(f"bad parameter list for macro '{macro}' near "
                              f"'{text[index:]}'", origin)
        name, index = match.group(0), _skip_white(text, match.end())
        kind, default = "", ""
        if index < len(text) and text[index] == ":":
            qualifier = re.compile(r"\s*(\w*)").match(text, index + 1)
            kind, index = qualifier.group(1), _skip_white(text, qualifier.end())
            if kind not in ("req", "vararg"):
                raise SourceError(f"'{kind}' is not a valid parameter qualifier for '{name}' "
                                  f"in macro '{macro}'", origin)
        if index < len(text) and text[index] == "=":
            index, default = _get_any_string(text, index + 1)
            index = _skip_white(text, index)
            if kind == "req":
                default = ""
        if any(formal[0] == name for formal in formals):
            raise SourceError(f"a parameter named '{name}' already exists for macro "
                              f"'{macro}'", origin)
        formals.append((name, kind, default))
        if kind == "vararg":
            break
        before = index
        index = _skip_comma(text, index)
        if index != before and index >= len(text):
            break
    if index < len(text):
        raise SourceError(f"junk after the parameters of macro '{macro}': '{text[index:]}'",
                          origin)
    return formals


def _bind_arguments(macro: _Macro, text: str, origin: Origin) -> dict[str, str]:
    """Invocation text -> parameter values, as GNU as's macro_expand."""
    names = [formal[0] for formal in macro.formals]
    actual: dict[str, str] = {name: "" for name in names}
    position, keyword_seen = 0, False
    index = _skip_white(text, 0)
    while index < len(text):
        scan = index
        while scan < len(text) and text[scan] not in _SEPARATORS and text[scan] != "=":
            scan += 1
        if scan < len(text) and text[scan] == "=":
            keyword_seen = True
            key = text[index:scan]
            if key not in actual:
                raise SourceError(f"parameter named '{key}' does not exist for macro "
                                  f"'{macro.name}'", origin)
            index, actual[key] = _get_any_string(text, scan + 1)
        else:
            if keyword_seen:
                raise SourceError(f"can't mix positional and keyword arguments (macro "
                                  f"'{macro.name}')", origin)
            if position >= len(names):
                raise SourceError(f"too many positional arguments for macro '{macro.name}'",
                                  origin)
            name, kind, _ = macro.formals[position]
            if kind == "vararg":
                actual[name], index = text[index:], len(text)
            else:
                index, actual[name] = _get_any_string(text, index)
            position += 1
        index = _skip_comma(text, index)
    values = {}
    for name, kind, default in macro.formals:
        if kind == "req" and not actual[name]:
            raise SourceError(f"missing value for required parameter '{name}' of macro "
                              f"'{macro.name}'", origin)
        values[name] = actual[name] or default
    return values


def substitute(text: str, values: dict[str, str], number: int | None, origin: Origin,
               limit: int | None = None) -> str:
    """Macro body text with ``\\param``, ``\\()`` and ``\\@`` replaced; a
    result longer than ``limit`` is the ``statement-bytes`` limit error.

    >>> o = Origin("a.S", 1)
    >>> substitute(r".Lout\\@: mov \\reg\\()d, \\x", {"reg": "%r8"}, 4, o)
    '.Lout4: mov %r8d, \\\\x'
    >>> substitute(r"\\a\\a\\a", {"a": "xyz"}, None, o, 8)
    Traceback (most recent call last):
    grammar.source.SourceError: a statement of more than 8 bytes exceeds the limit of 8 bytes (raise it with --limit statement-bytes=N)
    """
    out, index, size = [], 0, 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            piece, index = char, index + 1
        elif text[index + 1:index + 2] == "(":
            end = text.find(")", index + 1)
            if end < 0:
                raise SourceError("missing ')' after '\\('", origin)
            piece, index = text[index + 2:end], end + 1
        elif text[index + 1:index + 2] == "@" and number is not None:
            piece, index = str(number), index + 2
        else:
            match = re.compile(r"[\w.$]*").match(text, index + 1)
            name = match.group(0)
            piece, index = values[name] if name in values else "\\" + name, match.end()
        out.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            raise Limits(statement_bytes=limit).exceeded(
                "statement_bytes", f"a statement of more than {limit} bytes", origin)
    return "".join(out)


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
    for name in _CONDITIONAL_OPENERS | {".elseif", ".else", ".endif"}:
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
