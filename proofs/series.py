"""A patch series checked step by step: ``tdxproof series [--repo DIR] REV_RANGE [PATH...]``.

For each commit of the range that touches the wrapper files (``git
rev-list --reverse RANGE -- PATHS``, oldest first), the parent's and the
commit's trees are read out of git into temporary directories (``git
ls-tree`` and ``git cat-file --batch``: the user's checkout, index and
worktrees are never touched), each step is judged against its parent,
and the run ends with one table.

Decisions:

* **What is read out of git.**  The files of the PATH arguments and every
  file beside them (a wrapper includes its macro file by relative path),
  and what tree mode reads (:mod:`grammar.kernel_tree`): the top-level
  ``Kbuild``/``Makefile``/``.config``/``tdxproof.toml``, ``arch/x86/include``,
  ``include``, the ``Makefile``/``Kbuild`` files under ``arch/x86`` and
  ``arch/x86/kernel/asm-offsets*.c``.  A commit whose tree is a kernel
  source tree is checked in tree mode, else with the shipped shims, as
  ``check`` would (:func:`grammar.frontend.group_files`).
* **Which functions a step touches.**  The ``.S`` files among the paths
  are one program per tree.  A function is *changed* when its
  instructions and labels after macro expansion, its exception-table
  entries or those of a function of the program it names differ from
  the parent's; *added* or *removed* when only one side defines it.  An
  added and a removed function are one function *renamed* when their
  bodies are the same, or when they are the only added and the only
  removed one of the commit.
* **Check**: every changed, added and renamed function is checked as
  ``tdxproof check`` checks it (:func:`proofs.prover.check_groups`: the
  same contracts, properties and replays).
* **Equivalence with the parent** (:mod:`proofs.equiv`), for each changed
  or renamed function.  Each side gets the contract
  :func:`proofs.abi_choice.choose_contract` chooses for it.  When both
  contracts declare the same ABI (or either side has none), the
  *default mapping*: every GPR but RSP the same at entry, the contract's
  struct pointer declared on both sides and its u64 fields compared one
  to one at the end (other memory outside the frame and the struct as
  well).  When the ABIs differ (arguments moved into a struct, another
  name, outputs now written back), the *contract mapping*: each TDX
  instruction input both contracts give is related between the sides
  (``left.rsi == right.args.rcx``: where the old contract takes it and
  where the new one does), the struct pointers are one object, the
  registers neither contract uses as an argument are the same, the
  module reads RAX and the inputs both contracts pass (a leaf used
  through the old wrapper reads no more than it passes) and the output
  fields are compared.  Under both, a module that both contracts say
  changes only RCX, RDX, R8-R11 (``module_outputs = "call"``) is
  modelled so.  The mapping is printed with the verdict.
* **When not equivalent**, the semantic diff of
  :mod:`proofs.semantic_diff`: one line per difference, across all paths,
  each with a counterexample that replays; and how the two functions'
  summaries differ (:func:`proofs.summary.diff_summaries`: what each may
  change, per outcome, under its own contract -- the frame specification
  a reviewer would otherwise work out by hand).  Only then: for an
  equivalent step the summaries say nothing new, and under a contract
  mapping they differ in names only (``out->rcx`` has become
  ``args->rcx``).
* **Verdicts and exit status**: a step's status is the worst of its
  functions' (bad input 2, a refutation or a non-equivalence 1, unknown
  3, else 0), and the run's the worst step's.  A commit whose files are
  bad input (they do not preprocess, parse or lift) is a step with its
  error; the others still run.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

from grammar import ast
from grammar.frontend import FrontEndOptions, config_label, group_files
from grammar.source import SourceError
from model import abi
from proofs.abi_choice import choose_contract
from proofs.contracts import Contract, load_contracts
from proofs.equiv import check_equivalence, prepare
from proofs.equiv_spec import DEFAULT_SAME, EquivSpec, spec_from_data
from proofs.outcomes import Equivalence, Status
from proofs.programs import cached_program
from proofs.prover import check_groups
from proofs.results import FunctionResult
from proofs.semantic_diff import SemanticDiff, semantic_diff
from proofs.settings import Settings, row_settings
from proofs.summary import diff_summaries, summarise_function

DEFAULT_PATHS = ("arch/x86/coco/tdx/tdcall.S", "arch/x86/virt/vmx/tdx/seamcall.S",
                 "arch/x86/virt/vmx/tdx/tdxcall.S")
"""The TDX wrapper files of SPEC section 4 (the guest's, the host's, and the macro file both include)."""
TREE_FILES = ("Kbuild", "Makefile", ".config", "tdxproof.toml", "arch/x86/include/*", "include/*",
              "arch/x86/*Makefile", "arch/x86/*Kbuild", "arch/x86/kernel/asm-offsets*.c")
"""What tree mode reads besides the wrapper files (``fnmatch`` patterns: ``*`` crosses directories)."""
EXIT_GOOD, EXIT_DIFFERENT, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
SEVERITY = (EXIT_GOOD, EXIT_UNKNOWN, EXIT_DIFFERENT, EXIT_BAD_INPUT)
"""Exit statuses from the best to the worst."""


def worst(statuses) -> int:
    """The worst of exit statuses.

    >>> worst([0, 3, 1]), worst([]), worst([1, 2])
    (1, 0, 2)
    """
    return max(statuses, key=SEVERITY.index, default=EXIT_GOOD)


# --- git ---------------------------------------------------------------------------------

def _git(repo: str, *args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", repo, *args], input=data, capture_output=True)
    except FileNotFoundError:
        raise SourceError("tdxproof series needs the git command, which is not installed") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise SourceError(f"git {' '.join(args[:3])}{' ...' if len(args) > 3 else ''} in {repo}: "
                          f"{message[-1] if message else f'exit status {done.returncode}'}")
    return done.stdout


def commits(repo: str, rev_range: str, paths: tuple[str, ...]) -> list[tuple[str, str]]:
    """(hash, subject) of the range's commits that touch ``paths``, oldest first."""
    if rev_range.startswith("-"):
        raise SourceError(f"series: {rev_range!r} is not a revision range (it would reach git as an option)")
    _git(repo, "rev-parse", "--git-dir")
    hashes = _git(repo, "rev-list", "--reverse", rev_range, "--", *paths).decode().split()
    found = []
    for commit in hashes:
        subject = _git(repo, "log", "-1", "--format=%s", commit).decode().strip()
        found.append((commit, subject))
    return found


def parent_of(repo: str, commit: str) -> str | None:
    """The first parent of ``commit`` (None for a root commit)."""
    parents = _git(repo, "rev-list", "--parents", "-n", "1", commit).decode().split()[1:]
    return parents[0] if parents else None


def _wanted(path: str, paths: tuple[str, ...]) -> bool:
    directories = {os.path.dirname(p) for p in paths}
    return (any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)
            or os.path.dirname(path) in directories
            or any(fnmatch(path, pattern) for pattern in TREE_FILES))


def materialise(repo: str, commit: str, paths: tuple[str, ...], into: str) -> list[str]:
    """The files of ``commit`` that a step reads (module docstring) written
    under ``into``; the wrapper ``.S`` files among them (absolute)."""
    listing = _git(repo, "ls-tree", "-r", "-z", "--full-tree", commit).split(b"\0")
    entries = []
    for line in listing:
        if not line:
            continue
        meta, _, name = line.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = name.decode(errors="surrogateescape")
        if kind == "blob" and _wanted(path, paths):
            entries.append((mode, sha, path))
    output = _git(repo, "cat-file", "--batch", data="".join(f"{sha}\n" for _, sha, _ in entries).encode())
    position = 0
    for mode, sha, path in entries:
        header_end = output.index(b"\n", position)
        size = int(output[position:header_end].split()[2])
        content = output[header_end + 1:header_end + 1 + size]
        position = header_end + 1 + size + 1
        target = Path(into) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            os.symlink(content.decode(errors="surrogateescape"), target)
        else:
            target.write_bytes(content)
    present = [str(Path(into) / p) for p in paths if p.endswith(".S") and (Path(into) / p).is_file()]
    return present


# --- one tree: its program and functions ----------------------------------------------------

@dataclass
class Tree:
    """One side of a step: its wrapper files, front-end options (tree mode
    or shims), kernel-tree facts, program, and each function's body key."""

    files: tuple[str, ...]
    options: FrontEndOptions
    facts: object
    program: ast.Program | None
    bodies: dict[str, tuple]


def _body(program: ast.Program, function: ast.Function) -> tuple:
    """What a caller of ``function`` depends on in the program: its
    expanded items, its exception-table entries, and those of every
    function of the program it names."""
    names = {fn.name: fn for fn in program.functions}
    named = {str(operand) for item in function.instructions for operand in item.operands} & set(names)
    parts = []
    for fn in [function] + [names[n] for n in sorted(named) if n != function.name]:
        labels = {item.name for item in fn.items if isinstance(item, ast.Label)}
        items = tuple(f"{item.name}:" if isinstance(item, ast.Label) else str(item) for item in fn.items)
        parts.append((fn.name if fn is not function else "", items,
                      tuple(sorted((e.from_label, e.to_label, e.kind) for e in program.extable
                                   if e.from_label in labels))))
    return tuple(parts)


def load_tree(files: list[str], configs: dict[str, bool]) -> Tree:
    """The program of a side's wrapper files (none: an empty tree)."""
    if not files:
        return Tree((), FrontEndOptions(), None, None, {})
    group = group_files(files, FrontEndOptions(configs=configs))[0]
    program = cached_program(group.files, group.options)
    bodies = {fn.name: _body(program, fn) for fn in program.c_functions}
    return Tree(group.files, group.options, group.facts, program, bodies)


def pair_functions(before: Tree, after: Tree) -> list[tuple[str | None, str | None, str]]:
    """(name before, name after, change) of every function the step touches
    (module docstring): ``changed``, ``renamed``, ``added``, ``removed``."""
    changed = [(n, n, "changed") for n in after.bodies if n in before.bodies and after.bodies[n] != before.bodies[n]]
    added = [n for n in after.bodies if n not in before.bodies]
    removed = [n for n in before.bodies if n not in after.bodies]
    renamed = []
    for new in list(added):
        same = [old for old in removed if before.bodies[old] == after.bodies[new]]
        if same:
            renamed.append((same[0], new, "renamed"))
            added.remove(new)
            removed.remove(same[0])
    if len(added) == 1 and len(removed) == 1:
        renamed.append((removed.pop(), added.pop(), "renamed"))
    return changed + renamed + [(None, n, "added") for n in added] + [(n, None, "removed") for n in removed]


# --- the mapping of two contracts ---------------------------------------------------------------

def _struct_name(contract: Contract) -> str:
    return "out" if contract.struct == "tdx_module_output" else "args"


def _sources(contract: Contract) -> dict[str, tuple[str, object]]:
    """Instruction input register -> where the contract takes it from:
    ("register", REG), ("field", FIELD), ("constant", N), ("stack", N)."""
    sources: dict[str, tuple[str, object]] = {
        "rax": ("constant" if isinstance(contract.leaf, int) else "register", contract.leaf)}
    sources.update({reg: ("field", reg) for reg in contract.inputs})
    sources.update({reg: ("register", arg) for reg, arg in contract.input_registers.items()})
    sources.update({reg: ("constant", value) for reg, value in contract.input_constants.items()})
    sources.update({reg: ("stack", n) for reg, n in contract.input_stack.items()})
    return sources


def _arguments(contract: Contract) -> set[str]:
    used = {arg for kind, arg in _sources(contract).values() if kind == "register"}
    used.add(contract.struct_pointer)
    if contract.outputs_when is not None:
        used.add(contract.outputs_when.register)
    return used


def _abi(contract: Contract) -> tuple:
    """What a caller of the contract's function relies on (not its name)."""
    layout = contract.layout.offsets() if contract.layout is not None else None
    return (contract.instruction, _sources(contract), contract.struct_pointer, contract.struct_may_be_null,
            contract.outputs, contract.outputs_when, contract.module_outputs, contract.returns, layout)


def _struct_data(contract: Contract) -> dict | None:
    key = abi.layout_key(contract.layout) if contract.layout is not None else None
    if key is None:
        return None
    return {"register": contract.struct_pointer, "layout": key, "nullable": contract.struct_may_be_null}


def _u64_fields(contract: Contract) -> list[str]:
    return [f.name for f in contract.layout.fields if f.size == 8] if contract.layout is not None else []


def _term(side: str, struct: str | None, source: tuple[str, object]) -> str | None:
    kind, value = source
    if kind == "register":
        return f"{side}.{value}"
    if kind == "field" and struct is not None:
        return f"{side}.{struct}.{value}"
    if kind == "constant":
        return str(value)
    return None


def mapping_data(left: Contract | None, right: Contract | None) -> tuple[dict, str]:
    """The spec tables (relation, structs, observe, module) of a step's
    pair and the name of its mapping: the default one when the contracts
    declare the same ABI (or either is missing), else the contract
    mapping (module docstring)."""
    module: dict = {}
    if left is not None and right is not None and left.module_outputs == right.module_outputs == "call" \
            and left.instruction == right.instruction:
        module["outputs"] = {left.instruction: list(abi.MODULE_CALL_OUTPUTS)}
    structs = {"left": {}, "right": {}}
    for side, contract in (("left", left), ("right", right)):
        data = _struct_data(contract) if contract is not None else None
        if data is not None:
            structs[side][_struct_name(contract)] = data
    default = left is None or right is None or _abi(left) == _abi(right)
    observe: dict = {"equal": [], "memory": "outside-frame"}
    if default:
        relation = {"same": list(DEFAULT_SAME)}
        if structs["left"] and structs["right"]:
            name = next(iter(structs["right"]))
            observe = {"memory": "outside-frame-and-structs",
                       "equal": [f"left.{name}.{f} == right.{name}.{f}" for f in _u64_fields(right)]}
        label = "default mapping (same ABI: every GPR but RSP the same at entry"
        if left is not None and right is not None and left.key != right.key:
            label += f"; {left.key} -> {right.key}"
        elif left is None or right is None:
            label += "; no contract on the " + ("left" if left is None else "right")
        label += ")"
        return {"structs": structs, "relation": relation, "observe": observe, "module": module}, label
    left_struct = next(iter(structs["left"]), None)
    right_struct = next(iter(structs["right"]), None)
    left_sources, right_sources = _sources(left), _sources(right)
    equal = []
    for reg in left_sources:
        if reg not in right_sources:
            continue
        a, b = _term("left", left_struct, left_sources[reg]), _term("right", right_struct, right_sources[reg])
        if left_sources[reg][0] == right_sources[reg][0] == "stack" and left_sources[reg] == right_sources[reg]:
            continue        # the same stack argument: the same caller's memory
        if a is not None and b is not None and not (a.isdigit() and b.isdigit()):
            equal.append(f"{a} == {b}" if not a.isdigit() else f"{b} == {a}")
    if left_struct and right_struct:
        equal.append(f"left.{left_struct} == right.{right_struct}")
        outputs = [f for f in dict.fromkeys(left.outputs + right.outputs)
                   if f in _u64_fields(left) and f in _u64_fields(right)]
        observe = {"memory": "outside-frame-and-structs",
                   "equal": [f"left.{left_struct}.{f} == right.{right_struct}.{f}" for f in outputs]}
    same = [reg for reg in DEFAULT_SAME if reg not in _arguments(left) | _arguments(right)]
    if left.instruction == right.instruction:
        module["reads"] = {left.instruction: ["rax"] + [reg for reg in left_sources
                                                        if reg != "rax" and reg in right_sources]}
    label = f"contract mapping ({left.key} -> {right.key})"
    return {"structs": structs, "relation": {"same": same, "equal": equal}, "observe": observe,
            "module": module}, label


def mapping_lines(spec: EquivSpec) -> list[str]:
    """The mapping as the report prints it."""
    lines = []
    same = [e.left.register for e in spec.relation if e.key.startswith("relation.same")]
    if same:
        lines.append("same at entry: " + ", ".join(reg.upper() for reg in same))
    lines += [e.text for e in spec.relation if not e.key.startswith("relation.same")]
    for kind, registers in spec.module_reads.items():
        lines.append(f"the module ({kind}) reads only {', '.join(r.upper() for r in registers)}")
    for kind, registers in spec.module_outputs.items():
        lines.append(f"the module ({kind}) changes only RAX and {', '.join(r.upper() for r in registers)}")
    if spec.observed_equal:
        lines.append("compared at the end: " + ", ".join(e.text for e in spec.observed_equal))
    return lines


# --- a step ------------------------------------------------------------------------------------

@dataclass
class FunctionStep:
    """What a step did to one function and what was found."""

    name: str
    before: str | None
    change: str
    check: FunctionResult | None = None
    equivalence: Equivalence | None = None
    mapping: str = ""
    mapping_lines: list[str] = field(default_factory=list)
    diff: SemanticDiff | None = None
    reasons: list[str] = field(default_factory=list)
    counterexample: dict | None = None
    summary_diff: list[str] = field(default_factory=list)
    """How what the function may change differs from the parent's (not equivalent only)."""

    @property
    def status(self) -> int:
        statuses = []
        if self.check is not None:
            found = {o.status for o in self.check.obligations if o.counts}
            statuses.append(EXIT_DIFFERENT if Status.REFUTED in found else
                            EXIT_UNKNOWN if Status.UNKNOWN in found else EXIT_GOOD)
        statuses.append({Equivalence.DIFFERENT: EXIT_DIFFERENT, Equivalence.UNKNOWN: EXIT_UNKNOWN}.get(
            self.equivalence, EXIT_GOOD))
        return worst(statuses)

    def check_verdict(self) -> str:
        if self.check is None:
            return "-"
        refuted = [f"{o.property}{' ' + o.detail if o.detail else ''}" for o in self.check.obligations
                   if o.status == Status.REFUTED]
        unknown = [o for o in self.check.obligations if o.status == Status.UNKNOWN]
        if refuted:
            return "REFUTED " + ", ".join(refuted)
        if unknown:
            return f"UNKNOWN ({len(unknown)})"
        return f"proved ({self.check.count(Status.PROVED)})"


@dataclass
class Step:
    commit: str
    subject: str
    functions: list[FunctionStep]
    seconds: float = 0.0
    error: SourceError | None = None
    trees: dict[str, str] = field(default_factory=dict)
    """Each temporary tree's directory (with its trailing separator) and
    what reports print in its place: ``REV:`` (the revision it was read
    from, abbreviated), so that a source path reads ``REV:path/in/repo``."""

    def in_repo(self, text: str) -> str:
        """``text`` with the temporary trees' paths as ``REV:path`` (the trees are gone by then).

        >>> Step("c0ffee", "s", [], trees={"/tmp/x/after/": "c0ffee:"}).in_repo("/tmp/x/after/a.S:3: error")
        'c0ffee:a.S:3: error'
        """
        for directory, revision in self.trees.items():
            text = text.replace(directory, revision)
        return text

    @property
    def status(self) -> int:
        return EXIT_BAD_INPUT if self.error is not None else worst(f.status for f in self.functions)


@dataclass(frozen=True)
class SeriesOptions:
    """What the user chose: the configuration, the solver's timeout per
    query and the processes of the checks."""

    configs: dict = field(default_factory=dict)
    timeout: float = 10.0
    jobs: int = 1
    settings: Settings = field(default_factory=lambda: Settings(contracts=load_contracts(())))
    """The check's settings (the shipped contracts by default)."""


def run_step(repo: str, commit: str, subject: str, paths: tuple[str, ...], options: SeriesOptions) -> Step:
    """One commit against its parent (module docstring)."""
    started = time.monotonic()
    step = Step(commit, subject, [])
    with tempfile.TemporaryDirectory(prefix="tdxproof-series-") as scratch:
        parent = parent_of(repo, commit)
        try:
            trees = {}
            for side, revision in (("before", parent), ("after", commit)):
                into = os.path.join(scratch, side)
                os.mkdir(into)
                if revision:
                    step.trees[into + os.sep] = f"{revision[:12]}:"
                files = materialise(repo, revision, paths, into) if revision else []
                trees[side] = load_tree(files, options.configs)
            _judge(step, trees["before"], trees["after"], options)
        except SourceError as error:
            step.error = error
    step.seconds = time.monotonic() - started
    return step


def _judge(step: Step, before: Tree, after: Tree, options: SeriesOptions) -> None:
    step.functions = [FunctionStep(new or old, old if old != new else None, change)
                      for old, new, change in pair_functions(before, after)]
    checked = [f.name for f in step.functions if f.change != "removed"]
    if checked:
        run = check_groups(list(after.files), FrontEndOptions(configs=options.configs), [{}], checked,
                           options.settings, options.jobs)
        if run.failures:
            raise run.failures[0].error
        results = {result.function: result for result, _ in run.checked}
        for function in step.functions:
            function.check = results.get(function.name)
    for function in step.functions:
        if function.change in ("changed", "renamed"):
            _compare(function, before, after, options)


def _settings(tree: Tree, settings: Settings) -> Settings:
    return row_settings(settings, tree.options, tree.facts)


def _contract(tree: Tree, name: str, settings: Settings) -> Contract | None:
    return choose_contract(tree.program, name, _settings(tree, settings)).contract


def _compare(function: FunctionStep, before: Tree, after: Tree, options: SeriesOptions) -> None:
    old = function.before or function.name
    left, right = _contract(before, old, options.settings), _contract(after, function.name, options.settings)
    tables, function.mapping = mapping_data(left, right)
    structs = tables.pop("structs")
    data = {"left": {"files": list(before.files), "function": old, "structs": structs["left"]},
            "right": {"files": list(after.files), "function": function.name, "structs": structs["right"]}}
    spec = spec_from_data({**data, **tables}, f"series step {function.name}", Path("/"))
    spec = dataclasses.replace(spec, left=dataclasses.replace(spec.left, front_end=before.options),
                               right=dataclasses.replace(spec.right, front_end=after.options))
    function.mapping_lines = mapping_lines(spec)
    result = check_equivalence(spec, timeout=options.timeout)
    function.equivalence, function.reasons = result.verdict, list(result.reasons)
    if result.verdict is Equivalence.DIFFERENT:
        function.counterexample = result.counterexample
        function.diff = semantic_diff(prepare(spec, timeout=options.timeout))
        label = config_label(options.configs)
        function.summary_diff = diff_summaries(
            summarise_function(before.program, old, label, _settings(before, options.settings)),
            summarise_function(after.program, function.name, label, _settings(after, options.settings)))


def run_series(repo: str, rev_range: str, paths: tuple[str, ...], options: SeriesOptions,
               progress: Callable[[int, int, str, str], None] | None = None) -> list[Step]:
    """Every step of the range (module docstring)."""
    found = commits(repo, rev_range, paths)
    steps = []
    for position, (commit, subject) in enumerate(found):
        if progress:
            progress(position, len(found), commit[:12], subject)
        steps.append(run_step(repo, commit, subject, paths, options))
    return steps


# --- reports ---------------------------------------------------------------------------------

def _equivalence_word(function: FunctionStep) -> str:
    if function.equivalence is None:
        return {"added": "new", "removed": "removed"}.get(function.change, "-")
    return function.equivalence.upper()


def _summary(function: FunctionStep) -> str:
    """The table's diff column: the first line and how many more."""
    if function.diff is None:
        return "; ".join(function.reasons[:1])
    lines = function.diff.lines()
    if not lines:
        return "; ".join(function.diff.unknown[:1])
    return lines[0] + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


def _label(function: FunctionStep) -> str:
    if function.change == "renamed":
        return f"{function.name} (renamed from {function.before})"
    return function.name if function.change == "changed" else f"{function.name} ({function.change})"


def text_report(steps: list[Step]) -> str:
    """Each step's functions with their verdicts, mappings and diff lines, then one table."""
    lines = []
    for step in steps:
        start = len(lines)
        lines.append(f"{step.commit[:12]} {step.subject}  ({step.seconds:.1f} s)")
        if step.error is not None:
            lines.append(f"  NOT CHECKED: {step.error.render()}")
        if not step.functions and step.error is None:
            lines.append("  no wrapper function changed")
        for function in step.functions:
            lines.append(f"  {_label(function)}: check {function.check_verdict()}; "
                         f"equivalence {_equivalence_word(function)}")
            if function.mapping:
                lines.append(f"    under the {function.mapping}:")
                lines += [f"      {text}" for text in function.mapping_lines]
            if function.diff is not None:
                for difference, text in zip(function.diff.differences, function.diff.lines()):
                    lines.append(f"    - {text}")
                for reason in function.diff.unknown:
                    lines.append(f"    ? {reason}")
            if function.summary_diff:
                lines.append("    what it may change (summary), against the parent's:")
                lines += [f"      {text}" for text in function.summary_diff]
            for reason in function.reasons:
                lines.append(f"    UNKNOWN: {reason}")
        lines[start:] = [step.in_repo(line) for line in lines[start:]]
        lines.append("")
    rows = [("commit", "subject", "function", "check", "equivalence", "diff")]
    for step in steps:
        first = (step.commit[:12], step.subject)
        if step.error is not None:
            rows.append((*first, "-", "NOT CHECKED", "-", step.in_repo(step.error.message.splitlines()[0])[:80]))
        elif not step.functions:
            rows.append((*first, "-", "-", "-", "no wrapper function changed"))
        for position, function in enumerate(step.functions):
            rows.append((*(first if position == 0 else ("", "")), _label(function), function.check_verdict(),
                         _equivalence_word(function), step.in_repo(_summary(function))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for position, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
        if position == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * len(row[-1]))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _in_repo(value, step: Step):
    """A JSON-ready ``value`` with :meth:`Step.in_repo` applied to every string in it."""
    if isinstance(value, str):
        return step.in_repo(value)
    if isinstance(value, dict):
        return {_in_repo(key, step): _in_repo(item, step) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_repo(item, step) for item in value]
    return value


def json_report(steps: list[Step], repo: str, rev_range: str, paths: tuple[str, ...], timings: bool = False
                ) -> dict:
    """The JSON form of a run: the same bytes for the same repository and
    range (source paths as ``REV:path``, :meth:`Step.in_repo`);
    ``timings``: with each step's seconds, in a ``timings`` list apart."""
    from proofs import TOOL, VERSION
    from proofs.report import json_report as check_json
    out = []
    for step in steps:
        functions = []
        for function in step.functions:
            functions.append({
                "function": function.name, "before": function.before, "change": function.change,
                "check": (check_json([function.check], function.check.assumptions)["results"][0]
                          if function.check is not None else None),
                "check_verdict": function.check_verdict(),
                "equivalence": function.equivalence, "mapping": function.mapping,
                "mapping_lines": function.mapping_lines,
                "diff": function.diff.json() if function.diff is not None else None,
                "summary_diff": function.summary_diff,
                "unknown": function.reasons, "counterexample": function.counterexample,
                "exit_status": function.status})
        out.append(_in_repo({"commit": step.commit, "subject": step.subject,
                             "error": step.error.render() if step.error is not None else None,
                             "functions": functions, "exit_status": step.status}, step))
    report = {"tool": TOOL, "version": VERSION, "repo": repo, "range": rev_range, "paths": list(paths),
              "steps": out, "exit_status": worst(step.status for step in steps)}
    if timings:
        report["timings"] = [{"commit": step.commit, "seconds": round(step.seconds, 3)} for step in steps]
    return report
