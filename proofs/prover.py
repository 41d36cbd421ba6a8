"""The prover: one function, or a whole run of files x configurations x
functions -> verdicts.

For one function under one configuration (:func:`check_function`): its
contract (:func:`proofs.abi_choice.choose_contract`: from the function's
own code or the prototype a kernel tree declares, with ``--abi``/
``--variant`` forcing it; never from the verdicts), the symbolic
executor's paths under the stated assumptions
(:func:`proofs.settings.executor_options`), the obligations decided on
them (:mod:`proofs.obligations`), and each refutation's counterexample,
replayed concretely (:mod:`proofs.counterexample`) from the smallest
model of its violation (:mod:`proofs.canonical`, so that its values do not
depend on what else the process checked): one that does not replay is a
bug of ours and leaves its obligation unknown.  The chosen
contract comes bound to its struct layout and its ABI source, which
every result carries; the choice's notices (an unknown ABI, a forced
contract the code contradicts, a prototype the assembly disagrees with)
go with the result.

A whole run (:func:`check_groups`) forms the file groups (one program
per kernel tree), builds their programs (:mod:`proofs.programs`), judges
the selectors (:mod:`proofs.selectors`) and checks every function in
tasks of a few configurations each, in forked workers
(:mod:`proofs.scheduling`).
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Iterator

from grammar import ast
from grammar.frontend import group_configurations
from grammar.kernel_tree import assumption_texts as tree_assumptions
from grammar.source import SourceError
from model.executor import PathResult, execute_function
from proofs.abi_choice import Choice, choose_contract, describe_layout, remember_choice
from proofs.contracts import Contract
from proofs.counterexample import Replays, build_counterexample, canonical_witness
from proofs.obligations import Obligation, prove
from proofs.outcomes import Status, unconfirmed_reason
from proofs.programs import cached_preprocessed, cached_program, keep_program, preprocess_programs, program_key
from proofs.results import FunctionResult, GroupFailure, ObligationResult, RunResult
from proofs.scheduling import Shipping, run_in_forks
from proofs.selectors import SelectorUse, not_a_c_function
from proofs.settings import Settings, executor_options, row_settings


def function_paths(program: ast.Program, name: str, settings: Settings) -> tuple[Choice, list[PathResult]]:
    """The contract choice of function ``name`` and the executor's paths of
    it under that contract and the run's assumptions (what ``check`` and
    ``summary`` judge)."""
    choice = choose_contract(program, name, settings)
    return choice, execute_function(program, name, executor_options(settings, choice.contract))


def check_function(program: ast.Program, name: str, config: str, settings: Settings) -> FunctionResult:
    """Every selected obligation of function ``name`` (see module doc)."""
    choice, paths = function_paths(program, name, settings)
    contract = choice.contract
    replays = Replays(program, name)
    obligations, texts = prove(contract, settings, paths, name,
                               functools.partial(canonical_witness, replays, contract))
    texts.insert(0, f"firmware: {settings.firmware}")
    result = function_result(replays, config, contract, obligations, texts, settings)
    result.notices += choice.notices
    result.abi_source, result.abi_summary = choice.source, choice.summary
    if contract is not None:
        result.struct = describe_layout(contract.layout)
    return result


def function_result(replays: Replays, config: str, contract: Contract | None,
                    obligations: list[Obligation], texts: list[str], settings: Settings) -> FunctionResult:
    """The result of the decided ``obligations`` of the function of
    ``replays``: each refutation with its counterexample, replayed
    concretely -- one that does not replay is no verdict but unknown
    (:func:`proofs.outcomes.unconfirmed_reason`)."""
    program, name = replays.program, replays.name
    out = []
    for o in obligations:
        cex, status, reason = None, o.status, o.reason
        if o.status == Status.REFUTED:
            model, path, claim, views, placement = o.witness
            cex = build_counterexample(replays, config, contract, o.pid, o.detail, model, path, claim, views,
                                       settings)
            if placement:
                cex["native_placement"] = placement
            if not cex["confirmed"]:
                status, reason = Status.UNKNOWN, unconfirmed_reason(cex.get("replay_problem"))
                cex = None
        out.append(ObligationResult(o.pid, o.detail, status, o.seconds, cex, o.origin, reason))
    return FunctionResult(name, config, contract.era if contract else "-",
                          contract.key if contract else None, program.function(name).origin, out, texts)


# --- a whole run: files x configurations x functions ----------------------------------------

CONFIGS_PER_TASK = 2
"""How many configurations of one function a task checks, one after the other."""


def _task(arguments: tuple) -> list[FunctionResult] | tuple:
    """One function under a few consecutive configurations (the later ones
    reuse what the solver side built for the earlier: about 13% less CPU
    on the fixture trees than a task per configuration).  A bad-input error
    comes back as (message, origin), which pickles whole (the exception
    would lose its origin on the way from the worker)."""
    files, name, runs, settings, facts = arguments
    try:
        return [check_function(cached_program(files, options), name, label, row_settings(settings, options, facts))
                for options, label in runs]
    except SourceError as error:
        return (error.message, error.origin)


def _task_label(task: tuple) -> str:
    return f"{task[1]} [{', '.join(label for _, label in task[2])}]"


def task_step(task: tuple) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """What a task checks, as :class:`proofs.progress.Progress` reads it:
    (its group's files, the function, its configurations' labels)."""
    return task[0], task[1], tuple(label for _, label in task[2])


def _shipping(settings: Settings, groups) -> Shipping:
    """How a task reaches a worker forked before its group's programs were
    built: its message is the function, its configurations and the contract
    choices of its rows (made in this process for the selectors); its
    supply, the group's files, tree facts and programs.  The worker keeps
    the programs and the choices as its own (so that its other tasks of the
    group find them) and runs the task under the run's ``settings``, which it
    inherited."""
    runs_of = {group.files: runs for group, runs in groups}

    def pack(task: tuple) -> tuple[tuple[str, ...], tuple]:
        files, name, runs, _, facts = task
        choices = [choose_contract(cached_program(files, options), name, row_settings(settings, options, facts))
                   for options, _ in runs]
        return files, (name, runs, choices)

    def supply(task: tuple) -> tuple:
        files, facts = task[0], task[4]
        return files, facts, {program_key(files, options): cached_program(files, options)
                              for options, _ in runs_of[files]}

    def unpack(supplied: tuple, message: tuple) -> tuple:
        files, facts, programs = supplied
        name, runs, choices = message
        for (options, _), choice in zip(runs, choices):
            program = keep_program(files, options, programs[program_key(files, options)])
            remember_choice(program, name, row_settings(settings, options, facts), choice)
        return files, name, runs, settings, facts
    return Shipping(pack, supply, unpack)


def _toggled(configs: list[dict[str, bool]]) -> list[str]:
    """The options that differ between ``configs`` (the ``--matrix`` ones).

    >>> _toggled([{"CONFIG_A": True, "CONFIG_B": True}, {"CONFIG_A": True, "CONFIG_B": False}])
    ['CONFIG_B']
    """
    return [name for name in dict.fromkeys(name for config in configs for name in config)
            if len({config.get(name) for config in configs}) > 1]


def _check_toggles(groups, preprocessed: dict[tuple, Any], configs: list[dict[str, bool]]) -> None:
    """A ``--matrix`` option that changes no file's preprocessed text
    (nothing the inputs include tests it) is an error: it would only
    double the rows."""
    for name in _toggled(configs):
        used = False
        for group, runs in groups:
            texts = {}
            for options, _ in runs:
                outcome = preprocessed.get(program_key(group.files, options))
                if outcome is None or any(isinstance(lines, BaseException) for lines in outcome.values()):
                    used = True         # cannot tell: the error shows when the program is built
                    break
                others = tuple(sorted((k, v) for k, v in options.configs.items() if k != name))
                text = tuple((path, tuple(line.text for line in lines)) for path, lines in outcome.items())
                texts.setdefault(others, set()).add(text)
            if used or any(len(variants) > 1 for variants in texts.values()):
                used = True
                break
        if not used:
            raise SourceError(f"--matrix {name}: no input file, nor any header it includes, tests {name} "
                              f"(its text is the same with {name}=y and =n)")


def _nothing_to_check(files: list[str], preprocessed: dict[tuple, Any]) -> SourceError:
    """The error of a run that found no function, saying why."""
    empty = []
    for outcome in preprocessed.values():
        for path, lines in outcome.items():
            if isinstance(lines, BaseException):
                continue
            if not any(line.text.strip() for line in lines) and path not in empty:
                empty.append(path)
    if empty and len(empty) == len(set(files)):
        return SourceError(f"nothing to check: {', '.join(empty)} "
                           f"{'is' if len(empty) == 1 else 'are'} empty after the C preprocessor "
                           f"(only comments, blank lines or preprocessor directives)")
    return SourceError(f"nothing to check: no function is defined in {', '.join(files)} (a function starts "
                       f"at a code label typed @function, as SYM_FUNC_START makes it, and ends at its "
                       f".size, as SYM_FUNC_END makes it; code outside every function is not checked)")


def check_groups(files: Iterable[str], front_end, configs: list[dict[str, bool]], functions: Iterable[str],
                 settings: Settings, jobs: int = 1, progress=None,
                 preprocessing=None, properties_given: bool = False) -> RunResult:
    """Check every selected function of ``files`` under every configuration:
    (result, the front-end options it was loaded with), whatever ``jobs``, in
    input order: file group by file group (:func:`grammar.frontend.group_files`:
    one program per kernel tree, with the tree's own options), then
    function by function, then configuration by configuration.

    A group whose files are bad input (they do not preprocess, parse or
    lift) does not stop the others: it is a :class:`GroupFailure` of the
    run, and the other groups get their verdicts.

    A ``functions`` name is checked in every group that defines it; one
    that no group defines is an error, and so is one that a group defines
    under some configurations only.  The tasks of a group start as soon as
    its programs are built, while the next group's are.  ``preprocessing``
    (a :class:`grammar.frontend.Preprocessing`) may hold preprocessor runs
    started ahead; ``progress`` (a :class:`proofs.progress.Progress`) follows
    the tasks.

    Checking nothing is an error (not "0 proved"), and so is a selector
    that matches nothing (:class:`SelectorUse`; ``properties_given``: the
    user named the properties) or a ``--matrix`` option no file tests --
    each judged on the groups that built (when some failed, a name or a
    selector may belong to them, so only a run with no failure is judged
    for what it lacks).
    """
    files, functions = list(files), list(functions)
    groups = group_configurations(files, front_end, configs)
    preprocessed = preprocess_programs([(group.files, options) for group, runs in groups for options, _ in runs],
                                        preprocessing)
    _check_toggles(groups, preprocessed, configs)
    nothing = _nothing_to_check(files, preprocessed)
    selectors = SelectorUse(settings, properties_given)

    def every_name_of(defined: list[list[str]]) -> list[str]:
        return list(dict.fromkeys(name for names in defined for name in names))

    failures: list[GroupFailure] = []

    def batches() -> Iterator[list[tuple[tuple, int]]]:
        found, every_name = set(), {}
        for group, runs in groups:
            programs = []
            try:
                for options, _ in runs:
                    programs.append(cached_preprocessed(group.files, options, preprocessed))
                    yield []                        # the workers' turn (run_in_forks)
            except SourceError as error:
                failures.append(GroupFailure(group.files, error))
                continue
            defined = [[fn.name for fn in program.c_functions] for program in programs]
            every_name.update(dict.fromkeys(every_name_of(defined)))
            for name in functions:
                code = [fn for program in programs for fn in program.functions if fn.name == name and fn.kind == "code"]
                if code:
                    raise not_a_c_function("--function", code[0])
            here = [name for name in functions if any(name in names for names in defined)]
            found.update(here)
            for (options, label), names in zip(runs, defined):
                for name in here:
                    if name not in names:
                        raise SourceError(f"no function named {name!r} in {', '.join(group.files)} "
                                          f"under {label} (functions: {', '.join(names) or 'none'})")
            batch = []
            for name in here if functions else every_name_of(defined):
                where = [(run, program) for run, names, program in zip(runs, defined, programs) if name in names]
                for (options, _), program in where:
                    selectors.function(program, name, row_settings(settings, options, group.facts))
                yield []
                size = len(where[0][1].function(name).instructions)
                for start in range(0, len(where), CONFIGS_PER_TASK):
                    chunk = tuple(run for run, _ in where[start:start + CONFIGS_PER_TASK])
                    batch.append(((group.files, name, chunk, settings, group.facts), size * len(chunk)))
            yield batch
        if failures:
            return
        missing = [name for name in functions if name not in found]
        if missing:
            raise SourceError(f"--function {missing[0]}: no function named {missing[0]!r} in {', '.join(files)} "
                              f"(functions: {', '.join(every_name) or 'none'})")
        if not every_name:
            raise nothing
        selectors.finish(found if functions else every_name)

    tasks, outcomes = run_in_forks(batches(), _task, max(1, jobs), _task_label, progress,
                                   _shipping(settings, groups), affinity=lambda task: task[1])
    failed = {failure.files for failure in failures}
    for task, outcome in zip(tasks, outcomes):
        if isinstance(outcome, tuple) and task[0] not in failed:
            failures.append(GroupFailure(task[0], SourceError(*outcome)))
            failed.add(task[0])
    order = {group.files: position for position, (group, _) in enumerate(groups)}
    failures.sort(key=lambda failure: order[failure.files])
    checked = [(result, options) for task, outcome in zip(tasks, outcomes) if task[0] not in failed
               for result, (options, _) in zip(outcome, task[2])]
    facts = {group.files: group.facts for group, _ in groups}
    for (result, options), task in zip(checked, (task for task in tasks if task[0] not in failed
                                                 for _ in task[2])):
        if facts.get(task[0]) is not None:      # tree mode: the tree, its configuration and asm-offsets
            result.assumptions.extend(tree_assumptions(facts[task[0]], options.configs, _toggled(configs)))
    return RunResult(checked, failures)

