"""The ``tdxproof`` command line: argument parsing and dispatch.

Decisions:

* Every bad input or usage error is a :class:`SourceError` (or an argparse
  usage error) rendered as one paragraph on stderr with exit status 2 and no
  traceback: ``FILE:LINE:COL: error: ...`` when it has a place, else
  ``tdxproof: error: ...``.
* Anything else that escapes a command is a bug of ours: an *internal
  error*, exit status :data:`EXIT_INTERNAL` (never 1, which scripts read as
  "refuted"), one line naming the exception and where to report it;
  ``--debug`` prints the traceback too.
* Ctrl-C (SIGINT) ends the command with exit status 130 and one line; the
  worker processes of a ``check`` are killed on the way out.
* A closed output pipe ends the command quietly.
* Each command imports its own stack (the model, Z3, the prover, the
  reports) when it runs, in the functions that run it: this module loads
  only the front end's options and the argument tables, so that ``check``
  starts the C preprocessor before Z3 and the prover load, and ``--help``
  loads neither.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

from grammar.frontend import (FrontEndOptions, Preprocessing, config_matrix, group_configurations, load_program,
                              options_key)
from grammar.limits import LIMIT_NAMES, Limits, limit_option, limits_from, option_name
from grammar.source import SourceError
from proofs.equiv_options import add_short_form_options
from proofs.listing import program_json, program_text
from proofs.outcomes import Equivalence, Status
from proofs.json_layout import json_text

EXIT_PROVED, EXIT_REFUTED, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_INTERNAL = 70
"""A bug of ours (``EX_SOFTWARE`` of sysexits.h)."""
EXIT_INTERRUPTED = 130
"""Ended by SIGINT (128 + the signal's number, as shells report it)."""
EXIT_ANY = {EXIT_BAD_INPUT: "bad input or usage (one paragraph on stderr)",
            EXIT_INTERNAL: "internal error (a bug of tdxproof; --debug prints the traceback)",
            EXIT_INTERRUPTED: "interrupted (Ctrl-C)"}
"""The exit statuses every command may end with."""
EXIT_STATUSES = {
    "check": {EXIT_PROVED: "every obligation proved", EXIT_REFUTED: "at least one obligation refuted",
              EXIT_UNKNOWN: "none refuted, at least one unknown (a solver timeout, a bound reached)"},
    "equiv": {EXIT_PROVED: "equivalent", EXIT_REFUTED: "different (a counterexample)",
              EXIT_UNKNOWN: "unknown (a solver timeout, a bound reached)"},
    "replay": {EXIT_PROVED: "the CPU reproduced the violation", EXIT_REFUTED: "it did not"},
    "mutate": {EXIT_PROVED: "the mutants were run (their verdicts are the report)"},
    "summary": {EXIT_PROVED: "every function summarised",
                EXIT_UNKNOWN: "a summary is incomplete (a solver timeout, a path not modelled)"},
    "series": {EXIT_PROVED: "every step's functions proved and equivalent to the parent's",
               EXIT_REFUTED: "a step refuted an obligation or changed what a caller sees",
               EXIT_UNKNOWN: "nothing refuted or different, something unknown"},
    "parse": {EXIT_PROVED: "parsed"},
    "ir": {EXIT_PROVED: "lifted"},
}
"""What each command's exit statuses mean, besides :data:`EXIT_ANY`."""
FIRMWARE_HELP = ("spec (the default): a SEAMCALL preserves RBP; clobbers-rbp: it may change RBP, "
                 "as old TDX module firmware did")
REPORT_BUGS = "https://github.com/tdxproof/tdxproof/issues"
MAX_SECONDS = 86400.0
"""The longest ``--timeout`` (a day per query: beyond it, say unknown)."""
MAX_JOBS = 1024


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, but a line that starts with a space (a row of a table:
    the exit statuses, the property catalog) is kept as it is; the other
    lines are filled as paragraphs."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        paragraph: list[str] = []
        for line in text.splitlines() + [""]:
            if line.startswith(" ") or not line.strip():
                if paragraph:
                    lines.append(argparse.HelpFormatter._fill_text(self, " ".join(paragraph), width, indent))
                    paragraph.clear()
                lines.append(indent + line if line.strip() else "")
            else:
                paragraph.append(line)
        return "\n".join(lines).rstrip("\n")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one paragraph (its default)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        command = " ".join(self.prog.split()[1:2])     # "" for the top-level parser
        self.exit(EXIT_BAD_INPUT, f"tdxproof: error: {message} (see '{' '.join(['tdxproof', command]).strip()} --help')\n")


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (``nan`` and ``inf`` are not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"expected seconds in (0, {MAX_SECONDS}], got {text!r}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes, got {text!r}") from None
    if not 1 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_JOBS} processes, got {text!r}")
    return value


def _config_option(text: str) -> tuple[str, bool]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("CONFIG_") or value not in ("y", "n"):
        raise argparse.ArgumentTypeError(f"expected CONFIG_NAME=y or CONFIG_NAME=n, got {text!r}")
    return name, value == "y"


def _epilog(command: str | None, properties: bool) -> str:
    """The end of a command's ``--help`` (``None``: the tool's): its exit
    statuses, and the property catalog when it takes ``--property``."""
    if command is None:
        statuses = {EXIT_PROVED: "proved (equivalent; replay: reproduced)", EXIT_REFUTED: "refuted (different)",
                    EXIT_UNKNOWN: "unknown", **EXIT_ANY}
    else:
        statuses = {**EXIT_STATUSES[command], **EXIT_ANY}
    lines = ["exit status:"] + [f"  {status:<4}{meaning}" for status, meaning in sorted(statuses.items())]
    if properties:
        from proofs.catalog import GROUPS, TEXTS
        lines += ["", "properties (--property ID), by column of check's summary table:"]
        for group in GROUPS:
            lines.append(f" {group.name}: {group.title}")
            lines += [f"  {pid:<25}{TEXTS[pid].summary}" for pid in group.properties]
    return "\n".join(lines)


def _add_front_end_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="kernel .S files")
    parser.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
                        help="include directory (searched before the shipped shims)")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                        help="define a preprocessor macro, as cc -D does")
    parser.add_argument("-U", dest="undefines", action="append", default=[], metavar="NAME",
                        help="undefine a preprocessor macro, as cc -U does")
    parser.add_argument("--config", dest="configs", action="append", default=[], type=_config_option,
                        metavar="CONFIG_X=y|n", help="set a kernel config option")
    parser.add_argument("--cpp", default=None, help="C preprocessor command (default: cc -E)")
    parser.add_argument("--no-shims", action="store_true",
                        help="do not add the shipped kernel shim headers (use -I with a kernel tree)")
    parser.add_argument("--kernel-tree", metavar="DIR", default=None,
                        help="read the FILEs inside this kernel source tree (or make O= build directory): "
                             "its headers, configuration, asm-offsets and declarations, as Kbuild does "
                             "(FILEs that lie in a kernel tree are read so without it)")
    parser.add_argument("--kernel-build", metavar="DIR", default=None,
                        help="the tree's build directory (make O=DIR): its .config and generated headers")
    parser.add_argument("--limit", dest="limits", action="append", default=[], type=limit_option,
                        metavar="NAME=N", help="raise (or lower) one limit (repeatable): "
                        + ", ".join(f"{option_name(name)} (default {getattr(Limits(), name)})"
                                    for name in LIMIT_NAMES))


def _front_end_options(args: argparse.Namespace):
    return FrontEndOptions(
        include_dirs=tuple(args.include_dirs), defines=tuple(args.defines),
        undefines=tuple(args.undefines), configs=dict(args.configs), cpp=args.cpp,
        use_shims=not args.no_shims, limits=limits_from(args.limits),
        kernel_tree=args.kernel_tree, kernel_build=args.kernel_build)


def _cmd_parse(args: argparse.Namespace) -> int:
    program = load_program(args.files, _front_end_options(args))
    if args.json:
        print(json_text(program_json(program)))
    else:
        print(program_text(program), end="")
    return EXIT_PROVED


def _cmd_ir(args: argparse.Namespace) -> int:
    from model.printer import ir_text
    program = load_program(args.files, _front_end_options(args))
    print(ir_text(program, args.function), end="")
    return EXIT_PROVED


def _variant_option(text: str) -> tuple[str, str]:
    name, sep, variant = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected FUNCTION=VARIANT, got {text!r}")
    return name, variant


def _check_properties(properties: list[str], catalog: tuple[str, ...]) -> None:
    """``--property`` as check and mutate take it: IDs of the ``catalog``."""
    unknown = [pid for pid in properties if pid not in catalog]
    if unknown:
        raise SourceError(f"--property {unknown[0]}: unknown property (known: {', '.join(catalog)})")


def _matrix_options(names: list[str], fixed: dict[str, bool]) -> list[str]:
    """The ``--matrix`` options, each a CONFIG_ name given once and not also fixed by ``--config``."""
    for position, name in enumerate(names):
        if not name.startswith("CONFIG_") or not name[7:].replace("_", "").isalnum():
            raise SourceError(f"--matrix {name}: expected a kernel option name CONFIG_...")
        if name in names[:position]:
            raise SourceError(f"--matrix {name} is given twice")
        if name in fixed:
            raise SourceError(f"--matrix {name} and --config {name}={'y' if fixed[name] else 'n'}: "
                              f"an option is either fixed or toggled")
    return names


def _check_writable(option: str, path: str, directory: bool) -> None:
    """``path`` can be written as a file (or made as a ``directory``)."""
    if os.path.exists(path) and os.path.isdir(path) != directory:
        raise SourceError(f"{option} {path}: {'not a directory' if directory else 'is a directory'}")
    if os.path.exists(path):
        target = path
    elif directory:
        target = os.path.abspath(path)
        while not os.path.exists(target):
            target = os.path.dirname(target)
    else:
        target = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(target):
            raise SourceError(f"{option} {path}: no directory {target}")
    if not os.access(target, os.W_OK):
        raise SourceError(f"{option} {path}: {target} is not writable")


def _check_outputs(inputs: list[str], outputs: list[tuple[str, str | None]]) -> None:
    """No output (``(option, path)``) may overwrite an input or another
    output, and each must be writable where it is asked for: checked
    before a long run, not after it."""

    def same(a: str, b: str) -> bool:
        try:
            return os.path.samefile(a, b)
        except OSError:
            return os.path.realpath(a) == os.path.realpath(b)
    given = [(option, path) for option, path in outputs if path and path != "-"]
    for position, (option, path) in enumerate(given):
        for source in inputs:
            if same(path, source):
                raise SourceError(f"{option} {path}: that is an input file; it would be overwritten")
        for other_option, other in given[position + 1:]:
            if same(path, other):
                raise SourceError(f"{option} {path} and {other_option} {other} name the same file")
        _check_writable(option, path, directory=option == "--cex-dir")


def _available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cmd_check(args: argparse.Namespace) -> int:
    """A ``check``: its reports, and the SARIF log also when bad input
    stops it (the error is then in the log, and raised on)."""
    front_end = _front_end_options(args)
    if args.timings and not args.json:
        raise SourceError("--timings: only the JSON report has timings (add --json)")
    _check_outputs(args.files + list(args.contracts), [("--json", args.json), ("--sarif", args.sarif),
                                                      ("--cex-dir", args.cex_dir)])
    groups: list = []
    try:
        toggled = _matrix_options(args.matrix, dict(args.configs))
        front_end.limits.check("configurations", 2 ** len(toggled),
                               f"--matrix of {len(toggled)} options ({2 ** len(toggled)} configurations)", None)
        configs = config_matrix({}, toggled)
        groups = group_configurations(args.files, front_end, configs)
        run = _check_run(args, front_end, configs, groups)
        status = _check_reports(args, run)
    except SourceError as error:
        if args.sarif:
            _write_sarif(args.sarif, None, error, EXIT_BAD_INPUT, groups)
        raise
    if args.sarif:
        _write_sarif(args.sarif, run, None, status, groups)
    return status


def _check_run(args: argparse.Namespace, front_end: FrontEndOptions, configs: list[dict[str, bool]], groups):
    """The verdicts of a ``check`` (:class:`proofs.results.RunResult`), its
    findings triaged (:mod:`proofs.triage`)."""
    # The C preprocessor runs go on while the prover, the model, Z3 and the
    # front end's readers (lark's parsers, otherwise loaded by the first
    # program built: 0.07 s of the start-up) are imported.
    preprocessing = Preprocessing([(group.files, options) for group, runs in groups for options, _ in runs])
    try:
        import grammar.program  # noqa: F401
        import grammar.reader  # noqa: F401
        from proofs.properties import CATALOG
        from proofs.progress import Progress
        from proofs.prover import check_groups, task_step
        from proofs.triage import read_baseline, read_suppressions, triage
        suppressions = read_suppressions([group.root for group, _ in groups])
        baseline = read_baseline(args.baseline) if args.baseline else None
        if args.jobs is None:
            args.jobs = _available_cpus()
        _check_properties(args.property, CATALOG)
        settings = _settings(args, front_end, tuple(args.property) or CATALOG)
        progress = None if args.quiet else Progress.on_terminal(
            sys.stderr, [(group.root, group.files) for group, _ in groups], task_step)
        run = check_groups(args.files, front_end, configs, args.function, settings, args.jobs, progress,
                           preprocessing, properties_given=bool(args.property))
    finally:
        preprocessing.close()
    for warning in triage([result for result, _ in run.checked], baseline, suppressions):
        print(f"WARNING: {warning}", file=sys.stderr)
    return run


def _settings(args: argparse.Namespace, front_end: FrontEndOptions, properties: tuple[str, ...]):
    """The :class:`proofs.settings.Settings` of a ``check`` or ``summary``."""
    from model.abi import EXTENDED_STATE_RESETS
    from proofs.contracts import load_contracts
    from proofs.settings import Settings
    resets = {kind: list(leaves) for kind, leaves in EXTENDED_STATE_RESETS.items()}
    for kind, leaf in (pair for given in args.resets_extended for pair in given):
        if leaf not in resets[kind]:
            resets[kind].append(leaf)
    return Settings(properties=properties, era=args.abi, firmware=args.firmware, timeout=args.timeout,
                    proof_seconds=front_end.limits.proof_seconds, contracts=load_contracts(tuple(args.contracts)),
                    variants=dict(args.variant), tdcall_may_fault=args.tdcall_may_fault,
                    resets_extended={kind: tuple(leaves) for kind, leaves in resets.items()})


def _cmd_summary(args: argparse.Namespace) -> int:
    """A ``summary``: its text or JSON report; exit 3 when one is incomplete."""
    front_end = _front_end_options(args)
    _check_outputs(args.files + list(args.contracts), [("--json", args.json)])
    toggled = _matrix_options(args.matrix, dict(args.configs))
    front_end.limits.check("configurations", 2 ** len(toggled),
                           f"--matrix of {len(toggled)} options ({2 ** len(toggled)} configurations)", None)
    from proofs.properties import CATALOG
    from proofs.summary import exit_status, summarise, summary_json, summary_text
    summaries = summarise(args.files, front_end, config_matrix({}, toggled), args.function,
                          _settings(args, front_end, CATALOG))
    _print_report(args.json, summary_json(summaries), summary_text(summaries))
    return exit_status(summaries)


def _print_report(json_path: str | None, data, text: str) -> None:
    """``--json [PATH]`` as equiv, summary and series take it: JSON to stdout
    instead of the ``text`` report (``-``), or to PATH as well."""
    if json_path == "-":
        print(json_text(data))
    else:
        if json_path:
            _write_json(json_path, data)
        print(text, end="")


def _resets_option(text: str) -> list[tuple[str, int]]:
    """``[KIND:]LEAF[,...]``: SEAMCALL (or ``tdcall:``) leaf numbers, bits 15..0 of RAX.

    >>> _resets_option("0x40,tdcall:5")
    [('seamcall', 64), ('tdcall', 5)]
    """
    leaves = []
    for item in text.split(","):
        kind, _, number = item.strip().rpartition(":")
        kind = kind or "seamcall"
        try:
            leaf = int(number, 0)
        except ValueError:
            leaf = -1
        if kind not in ("seamcall", "tdcall") or not 0 <= leaf <= 0xFFFF:
            raise argparse.ArgumentTypeError(f"expected [seamcall:|tdcall:]LEAF with LEAF a leaf number 0 to "
                                             f"0xffff (RAX bits 15..0), got {item!r}")
        leaves.append((kind, leaf))
    return leaves


def _add_model_options(parser: argparse.ArgumentParser, what: str) -> None:
    """The options of what ``check`` and ``summary`` assume of the code and the TDX module."""
    parser.add_argument("--function", action="append", default=[], metavar="NAME",
                        help=f"{what} only this function (repeatable; default: every function)")
    parser.add_argument("--abi", choices=("unified", "legacy"), default=None,
                        help="force the contract era (default: each function's from its own code)")
    parser.add_argument("--matrix", action="append", default=[], metavar="CONFIG_X",
                        help=f"{what} with CONFIG_X=y and with CONFIG_X=n (repeatable: every combination)")
    parser.add_argument("--firmware", choices=("spec", "clobbers-rbp"), default="spec", help=FIRMWARE_HELP)
    parser.add_argument("--tdcall-may-fault", action="store_true",
                        help="TDCALL may also raise #UD/#GP (default: it completes)")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="per solver query")
    parser.add_argument("--contracts", action="append", default=[], metavar="FILE",
                        help="extra wrapper contracts (TOML, same schema as the shipped ones)")
    parser.add_argument("--variant", action="append", default=[], type=_variant_option,
                        metavar="FUNCTION=VARIANT", help="force one of several same-name contracts")
    parser.add_argument("--resets-extended", action="append", default=[], type=_resets_option,
                        metavar="LEAF[,LEAF...]",
                        help="SEAMCALL leaves (tdcall:LEAF for TDCALL ones) whose completion may reset the "
                             "AVX/AVX2/AVX-512 state to INIT, as the live-migration SEAMCALLs may: their callers "
                             "must save the FPU state (extended-state); none is shipped (see README)")


def _check_reports(args: argparse.Namespace, run) -> int:
    """The text or JSON report and the counterexample files of ``run``; its exit status."""
    from proofs.properties import CATALOG
    from proofs.report import json_report, text_report
    if run.failures and not run.checked:
        for failure in run.failures:
            print(render_error(failure.error), file=sys.stderr)
        return EXIT_BAD_INPUT
    checked = run.checked
    results = [result for result, _ in checked]
    shared = [text for text in (results[0].assumptions if results else [])
              if all(text in r.assumptions for r in results)]
    if args.cex_dir:
        _write_counterexamples(args.cex_dir, checked)
    if args.json == "-":
        print(json_text(json_report(results, shared, run.failures, args.timings)))
    else:
        if args.json:
            _write_json(args.json, json_report(results, shared, run.failures, args.timings))
        print(text_report(results, failures=run.failures, selected=tuple(args.property) or CATALOG,
                          columns=args.columns, quiet=args.quiet, verbose=args.verbose, trace=args.trace), end="")
    for failure in run.failures:
        print(render_error(failure.error), file=sys.stderr)
    if run.failures:
        return EXIT_BAD_INPUT
    statuses = {o.status for r in results for o in r.obligations if o.counts}
    if Status.REFUTED in statuses:
        return EXIT_REFUTED
    return EXIT_UNKNOWN if Status.UNKNOWN in statuses else EXIT_PROVED


def _write_sarif(path: str, run, error: SourceError | None, status: int, groups) -> None:
    """The SARIF log of a ``check`` (:func:`proofs.sarif.sarif_log`): of
    ``run``, or of the ``error`` that stopped it."""
    from proofs.sarif import sarif_log, uri_roots
    results = [result for result, _ in run.checked] if run else []
    meaning = {**EXIT_STATUSES["check"], **EXIT_ANY}[status]
    _write_json(path, sarif_log(results, run.failures if run else [], error, status, meaning,
                                uri_roots(group for group, _ in groups), os.getcwd()))


def _write_json(path: str, data) -> None:
    """``data`` as JSON in ``path``, atomically: a temporary file in the
    same directory renamed over ``path``, so that a failed write leaves
    no partial file (and the old one, if any, whole).  A ``path`` that
    exists and is not a regular file (``/dev/null``, a pipe) is written
    to as it is: renaming over it would replace the device."""
    text = json_text(data) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(21, "Is a directory")
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(text)
            return
        handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        raise SourceError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _write_counterexamples(directory: str, checked) -> None:
    """One JSON file per counterexample (:func:`proofs.cex_file.check_file`),
    named after its function, configuration, property and detail (``-2``,
    ``-3``... when two file groups have a function of the same name)."""
    from proofs.cex_file import check_file, source_digests
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SourceError(f"cannot create {directory}: {error.strerror}") from None
    written: dict[str, int] = {}
    digests: dict[tuple, dict[str, str]] = {}
    for result, options in checked:
        for o in result.obligations:
            if o.counterexample:
                stem = "-".join(part for part in (result.function, result.config, o.property, o.detail) if part)
                stem = re.sub(r"[^A-Za-z0-9_.=-]+", "_", stem)
                written[stem] = written.get(stem, 0) + 1
                name = stem + (f"-{written[stem]}" if written[stem] > 1 else "")
                files = tuple(o.counterexample["files"])
                key = (files, options_key(options))
                if key not in digests:
                    digests[key] = source_digests(files, options)
                _write_json(str(Path(directory) / (name + ".json")),
                            check_file(o.counterexample, options, digests[key]))


def _command(text: str) -> str:
    """A command line as ``--cpp`` takes it: words the shell would split
    (no shell runs it), at least one.

    >>> _command("clang -E")
    'clang -E'
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a command, got {text!r} ({error})") from None
    if not words:
        raise argparse.ArgumentTypeError(f"expected a command, got {text!r}")
    return text


def _cmd_replay(args: argparse.Namespace) -> int:
    from proofs.replay import replay_file
    verdict = replay_file(args.counterexample, args.cpp)
    print(verdict.text, end="")
    return EXIT_PROVED if verdict.reproduced else EXIT_REFUTED


def _cmd_mutate(args: argparse.Namespace) -> int:
    from proofs.mutate import mutation_report, run_mutants
    from proofs.properties import CATALOG
    _check_properties(args.property, CATALOG)
    analysis = run_mutants(args.files, _front_end_options(args), args.function,
                           properties=tuple(args.property) or CATALOG, era=args.abi, firmware=args.firmware,
                           timeout=args.timeout, jobs=args.jobs or _available_cpus(),
                           equivalence=not args.no_equiv,
                           properties_given=bool(args.property))
    if args.json:
        print(json_text(analysis.json()))
    else:
        print(mutation_report(analysis), end="")
    return EXIT_PROVED


def _equiv_spec(args: argparse.Namespace):
    """The spec of an ``equiv`` command: a spec file, or the short form's
    two sides and mapping options."""
    from proofs.equiv_spec import load_spec, short_form_options_given, short_form_spec
    if len(args.spec) == 2:
        return short_form_spec(*args.spec, args)
    if len(args.spec) > 2:
        raise SourceError(f"tdxproof equiv takes SPEC.toml or two sides LEFT.S:FUNC RIGHT.S:FUNC, "
                          f"not {len(args.spec)} arguments (files of one side go comma-separated: "
                          f"a.S,b.c:FUNC)")
    given = short_form_options_given(args)
    if given:
        raise SourceError(f"tdxproof equiv: {', '.join(given)}: these options belong to the short form "
                          f"(LEFT.S:FUNC RIGHT.S:FUNC); with a spec file, say it in {args.spec[0]}")
    if ":" in args.spec[0] and not args.spec[0].endswith(".toml"):
        raise SourceError(f"tdxproof equiv: {args.spec[0]!r} looks like one side of the short form; "
                          f"it needs two, LEFT.S:FUNC RIGHT.S:FUNC")
    return load_spec(args.spec[0])


def _cmd_equiv(args: argparse.Namespace) -> int:
    from proofs.equiv import check_equivalence, counterexample_name, json_result, text_result
    inputs = args.spec if len(args.spec) != 2 else [
        path for side in args.spec for path in side.rpartition(":")[0].split(",")]
    _check_outputs(inputs, [("--json", args.json)])
    result = check_equivalence(_equiv_spec(args), dict(args.configs), args.firmware, args.timeout)
    if args.cex_dir and result.counterexample:
        try:
            Path(args.cex_dir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SourceError(f"cannot create {args.cex_dir}: {error.strerror}") from None
        _write_json(str(Path(args.cex_dir) / counterexample_name(result)), result.counterexample)
    _print_report(args.json, json_result(result), text_result(result))
    return {Equivalence.DIFFERENT: EXIT_REFUTED, Equivalence.UNKNOWN: EXIT_UNKNOWN}.get(result.verdict, EXIT_PROVED)


def _series_progress(position: int, total: int, commit: str, subject: str) -> None:
    sys.stderr.write(f"\r\x1b[K[{position + 1}/{total}] {commit} {subject[:60]}")
    if position + 1 == total:
        sys.stderr.write("\r\x1b[K")
    sys.stderr.flush()


def _cmd_series(args: argparse.Namespace) -> int:
    from proofs.series import DEFAULT_PATHS, SeriesOptions, json_report, run_series, text_report, worst
    _check_outputs([], [("--json", args.json)])
    if args.timings and not args.json:
        raise SourceError("--timings: only the JSON report has timings (add --json)")
    paths = tuple(args.paths) or DEFAULT_PATHS
    for path in paths:
        if path.startswith("-") or os.path.isabs(path) or ".." in Path(path).parts:
            raise SourceError(f"series: PATH {path!r} must be relative to the repository's root, inside it")
    options = SeriesOptions(configs=dict(args.configs), timeout=args.timeout, jobs=args.jobs or _available_cpus())
    progress = _series_progress if sys.stderr.isatty() else None
    steps = run_series(args.repo, args.range, paths, options, progress)
    if not steps:
        raise SourceError(f"series: no commit of {args.range} touches {', '.join(paths)} in {args.repo}")
    _print_report(args.json, json_report(steps, args.repo, args.range, paths, args.timings), text_report(steps))
    for step in steps:
        if step.error is not None:
            print(f"{step.commit[:12]}: {step.in_repo(render_error(step.error))}", file=sys.stderr)
    return worst(step.status for step in steps)


def build_parser() -> argparse.ArgumentParser:
    from proofs import VERSION
    parser = _Parser(prog="tdxproof", epilog=_epilog(None, True),
                     description="Prove that the Linux kernel's Intel TDX calling-convention wrappers keep "
                                 "their ABI, or print a counterexample.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}",
                        help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on an internal error, print the Python traceback too")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     help="the command ('tdxproof COMMAND --help' for its options)")
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an internal error, print the Python traceback too")

    parse = commands.add_parser(
        "parse", parents=[debug], help="functions and instructions with source locations",
        epilog=_epilog("parse", False))
    _add_front_end_options(parse)
    parse.add_argument("--json", action="store_true", help="machine-readable output")
    parse.set_defaults(run=_cmd_parse)

    ir = commands.add_parser(
        "ir", parents=[debug], help="the IR of each function, readable", epilog=_epilog("ir", False))
    _add_front_end_options(ir)
    ir.add_argument("--function", action="append", default=[], metavar="NAME",
                    help="print only this function (repeatable; default: every function)")
    ir.set_defaults(run=_cmd_ir)

    check = commands.add_parser(
        "check", parents=[debug], help="prove the property catalog, or print counterexamples",
        epilog=_epilog("check", True))
    _add_front_end_options(check)
    _add_model_options(check, "check")
    check.add_argument("--property", action="append", default=[], metavar="ID",
                       help="check only this property (repeatable; default: the whole catalog)")
    check.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                       help="tasks checked at once (default: the CPUs this process may use)")
    check.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                       help="JSON report to PATH (or to stdout instead of the text report)")
    check.add_argument("--timings", action="store_true",
                       help="with --json: add each obligation's solver seconds, in a \"timings\" list of their "
                            "own (the rest of the report is the same bytes whatever the run)")
    check.add_argument("--sarif", default=None, metavar="PATH",
                       help="SARIF 2.1.0 log to PATH (also when the run fails with exit status 2)")
    check.add_argument("--baseline", default=None, metavar="REPORT",
                       help="a previous run's JSON report: its findings are accepted (listed, not detailed, "
                            "not counted in the exit status); exit 0 when no finding is new")
    check.add_argument("--cex-dir", default=None, metavar="DIR", help="write each counterexample as JSON")
    check.add_argument("-v", "--verbose", action="store_true",
                       help="list each refuted obligation of a finding with its values, check site and culprit")
    check.add_argument("--trace", action="store_true",
                       help="print each counterexample's whole trace, not only the steps that matter")
    check.add_argument("--columns", choices=("groups", "properties"), default="groups",
                       help="the summary table's columns: a group of properties each (the default; it fits "
                            "100 columns), or a property each (wider)")
    check.add_argument("--quiet", action="store_true",
                       help="print the findings only (no table, ABI lines, warnings or assumptions) and no "
                            "progress; the exit status is the same")
    check.set_defaults(run=_cmd_check)

    summary = commands.add_parser(
        "summary", parents=[debug], help="what each function may change, per outcome (its frame specification)",
        description="For each function and each way it ends (completion, VMfailInvalid, #UD, #GP, panic...), "
                    "the registers, flags, struct fields, memory and extended state it may change and what "
                    "each then holds (an entry value, a TDX-module output, a constant, or 'depends'), "
                    "computed by the solver from the paths check judges, under the same assumptions.",
        epilog=_epilog("summary", False))
    _add_front_end_options(summary)
    _add_model_options(summary, "summarise")
    summary.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                         help="JSON report to PATH (or to stdout instead of the text report)")
    summary.set_defaults(run=_cmd_summary)

    replay = commands.add_parser(
        "replay", parents=[debug], help="run a counterexample natively, show what the CPU did",
        epilog=_epilog("replay", False))
    replay.add_argument("counterexample", metavar="CEX.json", help="a file written by check --cex-dir or equiv")
    replay.add_argument("--cpp", default=None, type=_command,
                        help="C preprocessor command (default: cc -E; never the one the file records)")
    replay.set_defaults(run=_cmd_replay)

    mutate = commands.add_parser(
        "mutate", parents=[debug], help="which mutants of a function the properties catch",
        epilog=_epilog("mutate", True))
    _add_front_end_options(mutate)
    mutate.add_argument("--function", required=True, metavar="NAME", help="the function to mutate")
    mutate.add_argument("--property", action="append", default=[], metavar="ID",
                        help="check only this property (repeatable; default: the whole catalog)")
    mutate.add_argument("--abi", choices=("unified", "legacy"), default=None,
                        help="force the contract era (default: the function's from its own code)")
    mutate.add_argument("--firmware", choices=("spec", "clobbers-rbp"), default="spec", help=FIRMWARE_HELP)
    mutate.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="per solver query")
    mutate.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                        help="mutants checked at once (default: the CPUs this process may use)")
    mutate.add_argument("--no-equiv", action="store_true",
                        help="do not try to prove surviving mutants equivalent to the original")
    mutate.add_argument("--json", action="store_true", help="machine-readable output")
    mutate.set_defaults(run=_cmd_mutate)

    equiv = commands.add_parser(
        "equiv", parents=[debug], help="prove two implementations look the same to a caller, or print a counterexample",
        usage="%(prog)s SPEC.toml [options]\n       %(prog)s LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC [options]",
        description="Compare two functions as a caller sees them: give a spec file, or the short form "
                    "LEFT.S[,MORE]:FUNC RIGHT.S[,MORE]:FUNC (paths relative to the current directory) with "
                    "the mapping options below, each the spec-file key it names.  With no --same and no "
                    "--relate, the short form assumes both functions are called alike: every GPR but RSP "
                    "holds the same value on both sides at entry.",
        epilog=_epilog("equiv", False))
    equiv.add_argument("spec", nargs="+", metavar="SPEC.toml | LEFT RIGHT",
                       help="a spec file (the two sides, the relation, the observables), or two sides "
                            "FILE[,FILE...]:FUNCTION")
    equiv.add_argument("--config", dest="configs", action="append", default=[], type=_config_option,
                       metavar="CONFIG_X=y|n", help="set a kernel config option on both sides")
    equiv.add_argument("--firmware", choices=("spec", "clobbers-rbp"), default=None,
                       help="firmware mode (default: the spec's, else spec)")
    equiv.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="per solver query")
    equiv.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                       help="JSON result to PATH (or to stdout instead of the text report)")
    equiv.add_argument("--cex-dir", default=None, metavar="DIR", help="write the counterexample as JSON")
    add_short_form_options(equiv)
    equiv.set_defaults(run=_cmd_equiv)

    series = commands.add_parser(
        "series", parents=[debug], help="check a patch series step by step: each commit against its parent",
        description="Walk the commits of REV_RANGE that touch the wrapper files, oldest first; for each, "
                    "check every wrapper function it adds or changes, prove each changed (or renamed) one "
                    "equivalent to the parent's under the mapping their contracts imply, and give a "
                    "semantic diff, one line per difference, where it is not.  Nothing in the checkout "
                    "changes: the trees are read with git into temporary directories.",
        epilog=_epilog("series", False))
    series.add_argument("range", metavar="REV_RANGE", help="the commits, as git rev-list takes them (A..B)")
    series.add_argument("paths", nargs="*", metavar="PATH",
                        help="the wrapper files, relative to the repository's root (default: "
                             "arch/x86/coco/tdx/tdcall.S, arch/x86/virt/vmx/tdx/seamcall.S, "
                             "arch/x86/virt/vmx/tdx/tdxcall.S)")
    series.add_argument("--repo", default=".", metavar="DIR", help="the git repository (default: the current directory)")
    series.add_argument("--config", dest="configs", action="append", default=[], type=_config_option,
                        metavar="CONFIG_X=y|n", help="set a kernel config option in every step")
    series.add_argument("--timeout", type=_seconds, default=10.0, metavar="S", help="per solver query")
    series.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                        help="functions checked at once (default: the CPUs this process may use)")
    series.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="JSON report to PATH (or to stdout instead of the text report)")
    series.add_argument("--timings", action="store_true",
                        help="with --json: add each step's seconds, in a \"timings\" list of their own (without "
                             "it the JSON report is the same bytes for the same repository and range)")
    series.set_defaults(run=_cmd_series)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status.  As the ``tdxproof`` command itself
    (``argv`` is None) the process ends here, its output flushed, without the
    interpreter's teardown: freeing every object and Z3 term of a ``check``
    one by one takes longer (~80 ms) than many a whole function check."""
    status = _run(argv)
    if argv is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        os._exit(status)
    return status


def _run(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:          # a usage error or --help: argparse has printed it
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted()
    try:
        return args.run(args)
    except SourceError as error:
        print(render_error(error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        # The reader went away (`tdxproof parse ... | head`): not an error of
        # ours.  Point stdout at /dev/null so the final flush does not raise
        # again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PROVED
    except Exception as error:  # noqa: BLE001 -- the one place a bug of ours is turned into an exit status
        if args.debug:
            traceback.print_exc()
            if getattr(error, "child_traceback", None):
                print(f"in the worker process:\n{error.child_traceback}", end="", file=sys.stderr)
        summary = " ".join(str(error).split())[:300]
        print(f"tdxproof: internal error: {type(error).__name__}{': ' + summary if summary else ''} "
              f"(a bug of tdxproof; please report it at {REPORT_BUGS} with the output of --debug)",
              file=sys.stderr)
        return EXIT_INTERNAL


def render_error(error: SourceError) -> str:
    """A bad-input error as the command prints it: located like a compiler's
    diagnostic, or prefixed with the tool's name when it has no place.

    >>> render_error(SourceError("no input files"))
    'tdxproof: error: no input files'
    """
    text = error.render()
    return text if error.origin is not None else f"tdxproof: {text}"


def _interrupted() -> int:
    print("tdxproof: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
