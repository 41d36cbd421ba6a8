"""The front end's entry points: ``.S`` files -> :class:`ast.Program` or plain assembly.

Each input file is a translation unit of its own, as in the kernel build:
preprocessed by :mod:`grammar.cpp`, read by the GNU-as layer of
:mod:`grammar.reader`, then assembled into one program by
:mod:`grammar.program` (or re-emitted by :mod:`grammar.emit`).
``--config CONFIG_X=y`` means ``-DCONFIG_X=1`` and ``=n`` means
``-UCONFIG_X``; the shipped shim headers (``grammar/shims``) are searched after
every user ``-I`` directory unless ``use_shims`` is off.

Files of several kernel trees can be checked in one run: each file belongs
to a group (:func:`group_files`) rooted at the nearest ancestor directory
that holds ``arch/x86`` (a kernel tree), else at the file's own directory;
the files of a group form one program, as the kernel links them, and the
groups are separate programs.  A group root may hold a ``tdxproof.toml``
(:func:`tree_options`) with the options that tree needs (its own
``include_dirs``, ``defines``).

A group whose root is a real kernel source tree (:mod:`grammar.kernel_tree`),
or all the files when ``kernel_tree``/``kernel_build`` name one, is in
*tree mode*: preprocessed as Kbuild does (the tree's include path and
``-include`` files, ``-nostdinc``, no shims), under the tree's
configuration and the options Kbuild needs to build its files (added to
the group's ``configs``, below the command line's), and the group carries
the tree's :class:`grammar.declarations.TreeFacts`.

Importing this module does not import the GNU-as layer (nor lark): a
``check`` starts its preprocessor runs (:class:`Preprocessing`) first and
imports the rest of the tool while they run.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from typing import TYPE_CHECKING

from grammar import kernel_tree, shim_layout
from grammar.cpp import MacroListing, Runs, SourceLine, preprocess, preprocessor_command
from grammar.declarations import TreeFacts
from grammar.limits import Limits
from grammar.located_toml import read_toml
from grammar.source import SourceError

if TYPE_CHECKING:
    from grammar import ast
    from grammar.statements import Assembly

SHIM_DIR = Path(__file__).with_name("shims")
"""The shipped shim headers: preprocessor input, so they live with the front end."""


@dataclass(frozen=True)
class FrontEndOptions:
    """How to preprocess: ``-I``/``-D``/``-U`` as given, ``configs`` maps
    ``CONFIG_*`` names to on/off, ``cpp`` replaces ``cc -E``, ``use_shims``
    adds ``grammar/shims`` as the last include directory; ``limits`` bound
    every stage (:mod:`grammar.limits`).  ``kernel_tree`` (a source tree
    or an ``O=`` build directory) and ``kernel_build`` (a build directory)
    put the files in tree mode (:mod:`grammar.kernel_tree`; the shims are
    then not used, whatever ``use_shims``)."""

    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    undefines: tuple[str, ...] = ()
    configs: Mapping[str, bool] = field(default_factory=dict)
    cpp: str | None = None
    use_shims: bool = True
    limits: Limits = Limits()
    kernel_tree: str | None = None
    kernel_build: str | None = None


TREE_CONFIG = "tdxproof.toml"
"""The per-tree configuration file, read from the root of each file group."""

TREE_CONFIG_KEYS = ("include_dirs", "defines", "suppress")
"""Its keys; ``suppress`` is read by :mod:`proofs.triage`, not by the front end."""


@dataclass(frozen=True)
class FileGroup:
    """Input files that form one program: those of one kernel tree.

    ``root`` is the tree's root directory (absolute), ``options`` the
    command line's with the root's :data:`TREE_CONFIG` applied (and, in
    tree mode, the tree and the options that build its files); ``facts``
    what the tree declares (tree mode only; ``None`` also when the tree is
    bad input: the group's preprocessor runs raise that error)."""

    root: str
    files: tuple[str, ...]
    options: FrontEndOptions
    facts: TreeFacts | None = None


def group_root(path: str) -> str:
    """The root of ``path``'s group: the nearest ancestor directory that
    holds ``arch/x86`` (a kernel tree), else the file's own directory.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tree:
    ...     (Path(tree) / "arch/x86/coco/tdx").mkdir(parents=True)
    ...     group_root(f"{tree}/arch/x86/coco/tdx/tdcall.S") == tree, group_root(f"{tree}/a.S") == tree
    (True, True)
    >>> group_root("/nonexistent/dir/a.S")
    '/nonexistent/dir'
    """
    directory = Path(os.path.abspath(path)).parent
    for ancestor in (directory, *directory.parents):
        if (ancestor / "arch" / "x86").is_dir():
            return str(ancestor)
    return str(directory)


def config_label(configs: Mapping[str, bool]) -> str:
    """The row label of a configuration.

    >>> config_label({"CONFIG_FRAME_POINTER": True, "CONFIG_RETHUNK": False})
    'CONFIG_FRAME_POINTER=y,CONFIG_RETHUNK=n'
    >>> config_label({})
    'default'
    """
    return ",".join(f"{name}={'y' if value else 'n'}" for name, value in configs.items()) or "default"


def config_enabled(options: FrontEndOptions, name: str, default: bool = False) -> bool:
    """Whether kernel option ``name`` is on under ``options``: defined for
    the C preprocessor (what ``#ifdef CONFIG_X`` in a header tests), as
    :func:`grammar.cpp.preprocessor_command` passes them -- every ``-D``,
    then every ``-U``, then the ``configs`` (``=y`` defines, ``=n``
    undefines), the last word winning; ``default`` when none names it (a
    kernel tree's own configuration, for instance).

    >>> config_enabled(FrontEndOptions(configs={"CONFIG_A": True}), "CONFIG_A")
    True
    >>> config_enabled(FrontEndOptions(defines=("CONFIG_A=1",), undefines=("CONFIG_A",)), "CONFIG_A")
    False
    >>> config_enabled(FrontEndOptions(defines=("CONFIG_A(x)=x",), configs={"CONFIG_B": False}), "CONFIG_A")
    True
    """
    if name in options.configs:
        return options.configs[name]
    if name in options.undefines:
        return False
    defined = (re.match(r"[A-Za-z_]\w*", define) for define in options.defines)   # NAME, NAME=V, NAME(x)=V
    return any(match is not None and match[0] == name for match in defined) or default


def config_matrix(fixed: Mapping[str, bool], toggled: Sequence[str]) -> list[dict[str, bool]]:
    """Every combination of the ``toggled`` options (y before n) on top of ``fixed``.

    >>> [config_label(c) for c in config_matrix({"CONFIG_A": True}, ["CONFIG_B"])]
    ['CONFIG_A=y,CONFIG_B=y', 'CONFIG_A=y,CONFIG_B=n']
    """
    combinations = [dict(fixed)]
    for name in toggled:
        combinations = [dict(c, **{name: value}) for c in combinations for value in (True, False)]
    return combinations


def group_configurations(paths: Sequence[str], options: FrontEndOptions, configs: Sequence[Mapping[str, bool]]
                         ) -> list[tuple[FileGroup, list[tuple[FrontEndOptions, str]]]]:
    """Each file group of ``paths`` (:func:`group_files`) with its options
    under each configuration of ``configs``, and that configuration's label."""
    return [(group, [(replace(group.options, configs={**group.options.configs, **configs_here}),
                      config_label(configs_here)) for configs_here in configs])
            for group in group_files(paths, options)]


def group_files(paths: Sequence[str], options: FrontEndOptions) -> list[FileGroup]:
    """``paths`` by group root (see :func:`group_root`): the groups in the
    order of their first file, each group's files in input order.  When
    ``options`` name a kernel tree, every file is of that tree's group."""
    if not paths:
        raise SourceError("no input files")
    named = kernel_tree.locate(options.kernel_tree, options.kernel_build)
    by_root: dict[str, list[str]] = {}
    for path in paths:
        by_root.setdefault(named.source if named else group_root(path), []).append(path)
    groups = []
    for root, files in by_root.items():
        tree = named or (kernel_tree.KernelTree(root, root) if kernel_tree.is_source_tree(root) else None)
        here = tree_options(root, options)
        groups.append(_tree_group(root, tuple(files), here, tree) if tree else FileGroup(root, tuple(files), here))
    return groups


def _tree_group(root: str, files: tuple[str, ...], options: FrontEndOptions,
                tree: kernel_tree.KernelTree) -> FileGroup:
    """A group in tree mode: its options and the tree's facts.  An error of
    the tree leaves the facts out; the group's preprocessor runs raise it."""
    options = replace(options, kernel_tree=tree.source, use_shims=False,
                      kernel_build=tree.build if tree.build != tree.source else None)
    try:
        built = kernel_tree.tree_configs(tree, files, options.configs)
        options = replace(options, configs={**{name: value.enabled for name, value in built.items()},
                                            **options.configs})
        facts = kernel_tree.tree_facts(tree, files, options.configs, lambda path: _command(path, options),
                                       options.cpp, options.limits)
        facts = replace(facts, config={**facts.config, **built})
    except SourceError:
        facts = None
    return FileGroup(root, files, options, facts)


def tree_options(root: str, options: FrontEndOptions) -> FrontEndOptions:
    """``options`` with the :data:`TREE_CONFIG` of ``root`` applied, if there is one.

    The file may set ``include_dirs`` (a list of directories relative to
    it, searched before the command line's ``-I`` and the shims) and
    ``defines`` (a list of ``NAME`` or ``NAME=VALUE``, before the command
    line's ``-D``, which therefore wins); its ``[[suppress]]`` tables are
    the proofs' (:mod:`proofs.triage`).  Any other key is an error at the
    line and column of the key or value (:mod:`grammar.located_toml`).
    """
    path = os.path.join(root, TREE_CONFIG)
    if not os.path.lexists(path):
        return options
    config = read_toml(path, "tree configuration").root().table((), TREE_CONFIG_KEYS)
    lists = {key: config.optional(key, lambda value: value.strings("a list of non-empty strings", nonempty=True), ())
             for key in ("include_dirs", "defines")}
    include_dirs = []
    for item in config.optional("include_dirs", lambda value: value.list(), []):
        directory = os.path.normpath(os.path.join(root, item.value))
        if not os.path.isdir(directory):
            raise item.error(f"include directory '{item.value}' is not a directory ({directory})")
        include_dirs.append(directory)
    for item in config.optional("defines", lambda value: value.list(), []):
        if not re.fullmatch(r"[A-Za-z_]\w*(=.*)?", item.value):
            raise item.error(f"bad define {item.value!r} (expected NAME or NAME=VALUE)")
    return replace(options, include_dirs=tuple(include_dirs) + tuple(options.include_dirs),
                   defines=lists["defines"] + tuple(options.defines))


def _search(options: FrontEndOptions) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(include directories, ``-include`` files, shim directory) of ``options``."""
    tree = kernel_tree.locate(options.kernel_tree, options.kernel_build)
    if tree is None:
        return options.include_dirs, (), str(SHIM_DIR) if options.use_shims else None
    search = kernel_tree.search(tree, options.configs, options.cpp, options.limits)
    return options.include_dirs + search.include_dirs, search.include_files, None


def _tree_mode(options: FrontEndOptions) -> bool:
    return options.kernel_tree is not None or options.kernel_build is not None


def _command(path: str, options: FrontEndOptions) -> list[str]:
    """The preprocessor command of ``path`` under ``options``."""
    include_dirs, include_files, shims = _search(options)
    return preprocessor_command(path, include_dirs, options.defines, options.undefines, options.configs,
                                options.cpp, shims, include_files, nostdinc=shims is None and _tree_mode(options))


def preprocessed(path: str, options: FrontEndOptions, runs: Runs | None = None,
                 read: list[str] | None = None) -> list[SourceLine]:
    """One file through the C preprocessor (one of ``runs``, if given;
    ``read`` collects the files it read: :func:`grammar.cpp.map_lines`),
    with the shims' struct layout the file uses (:mod:`grammar.shim_layout`)."""
    return _preprocessed(path, options, runs, read)[0]


def layout_defines(path: str, options: FrontEndOptions) -> tuple[str, ...]:
    """The defines :func:`preprocessed` adds to select the shims' struct
    layout ``path`` uses (what ``cc -c`` of the file needs to see the
    asm-offsets the tool checks)."""
    return _preprocessed(path, options, None, None)[1]


def _preprocessed(path: str, options: FrontEndOptions, runs: Runs | None, read: list[str] | None
                  ) -> tuple[list[SourceLine], tuple[str, ...]]:
    include_dirs, include_files, shims = _search(options)
    nostdinc = shims is None and _tree_mode(options)

    def run(defines: tuple[str, ...], seen: list[str], listing: MacroListing | None = None) -> list[SourceLine]:
        return preprocess(path, include_dirs, defines, options.undefines, options.configs, options.cpp, shims,
                          options.limits, runs, seen, include_files, nostdinc=nostdinc, listing=listing)
    seen: list[str] = []
    listing = MacroListing() if shim_layout.may_ask(shims, options.defines, options.undefines) else None
    lines = run(options.defines, seen, listing)
    command = preprocessor_command(path, include_dirs, options.defines, options.undefines, options.configs,
                                   options.cpp, shims, include_files, nostdinc=nostdinc)
    chosen = shim_layout.selection(command, seen, shims, options.defines, options.undefines, options.limits, runs,
                                   listing)
    if chosen:
        seen = []
        lines = run(options.defines + chosen, seen)
    if read is not None:
        read.extend(name for name in seen if name not in read)
    return lines, chosen


def assemble(path: str, options: FrontEndOptions) -> Assembly:
    """One file through the C preprocessor and the GNU-as layer."""
    from grammar.reader import expand
    return expand(path, preprocessed(path, options), options.limits)


def _assemble_all(paths: Sequence[str], options: FrontEndOptions,
                  lines: Callable[[str], list[SourceLine]] | None = None) -> list[Assembly]:
    from grammar.reader import expand
    from grammar.program import separate_units
    if not paths:
        raise SourceError("no input files")
    lines = lines or (lambda path: preprocessed(path, options))
    return separate_units([expand(path, lines(path), options.limits) for path in paths])


def load_program(paths: Sequence[str], options: FrontEndOptions = FrontEndOptions()) -> ast.Program:
    """The parsed program of ``paths`` (functions, labels, exception table)."""
    from grammar.program import build_program
    return build_program(paths, _assemble_all(paths, options), options.limits)


PREPROCESSOR_RUNS = 4
"""How many C preprocessor processes a :class:`Preprocessing` keeps running at once."""

Preprocessed = Mapping[str, "list[SourceLine] | BaseException"]
"""A program's files through the C preprocessor: each file's lines, or the
error its run raised (kept to be raised where :func:`load_program` would)."""


def options_key(options: FrontEndOptions) -> tuple:
    """``options`` as a dictionary key (its ``configs`` mapping sorted).

    >>> options_key(FrontEndOptions()) == options_key(FrontEndOptions(configs={}))
    True
    >>> len(options_key(FrontEndOptions())) == len(fields(FrontEndOptions))
    True
    """
    return (options.include_dirs, options.defines, options.undefines,
            tuple(sorted(options.configs.items())), options.cpp, options.use_shims, options.limits,
            options.kernel_tree, options.kernel_build)


class Preprocessing:
    """The C preprocessor runs of several programs' files, started at once.

    Each run is a process that mostly waits on its own, so they run several
    at a time (at most :data:`PREPROCESSOR_RUNS`, from threads) while the
    caller does other work.  :meth:`results` (once) waits for all of them:
    no run and no thread is left when it returns (the caller may fork).
    Each run is a process group of its own (see :func:`grammar.cpp.run_preprocessor`),
    which a Ctrl-C at the terminal does not reach: :meth:`close` kills it.
    """

    def __init__(self, requests: Sequence[tuple[Sequence[str], FrontEndOptions]]):
        self._threads = ThreadPoolExecutor(PREPROCESSOR_RUNS)
        self._runs = Runs()
        self._started: dict[tuple, dict] = {}
        self._start(requests)

    def _start(self, requests: Sequence[tuple[Sequence[str], FrontEndOptions]]) -> None:
        for paths, options in requests:
            started = self._started.setdefault((tuple(paths), options_key(options)), {})
            for path in paths:
                if path not in started:
                    started[path] = self._threads.submit(preprocessed, path, options, self._runs)

    def results(self, requests: Sequence[tuple[Sequence[str], FrontEndOptions]]) -> list[Preprocessed]:
        """The outcomes of ``requests`` (started before or, if not, now)."""
        self._start(requests)
        self._threads.shutdown(wait=True)
        return [{path: future.exception() or future.result()
                 for path, future in self._started[(tuple(paths), options_key(options))].items()}
                for paths, options in requests]

    def close(self) -> None:
        """Kill the runs under way and cancel those not started (after an
        error or an interrupt: :meth:`results` waits for every run)."""
        self._runs.stop()
        self._threads.shutdown(wait=True, cancel_futures=True)


def load_preprocessed(paths: Sequence[str], options: FrontEndOptions, files: Preprocessed) -> ast.Program:
    """:func:`load_program` on files already preprocessed (:class:`Preprocessing`):
    the same program, or the same first error."""
    from grammar.program import build_program

    def lines(path: str) -> list[SourceLine]:
        outcome = files[path]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return build_program(paths, _assemble_all(paths, options, lines), options.limits)


def expand_to_assembly(paths: Sequence[str],
                       options: FrontEndOptions = FrontEndOptions()) -> str:
    """The whole expansion as plain assembly that GNU as assembles to the same
    ``.text`` bytes and ``__ex_table`` relocations as the original.

    The program is built too, so that input the model would reject is rejected
    here as well.
    """
    from grammar.emit import emit
    from grammar.program import build_program
    assemblies = _assemble_all(paths, options)
    build_program(paths, assemblies, options.limits)
    return "".join(emit(assembly) for assembly in assemblies)
