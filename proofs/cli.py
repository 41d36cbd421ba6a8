"""The ``tdxproof`` command line: argument parsing and dispatch.

Decisions: every bad input or usage error is a :class:`SourceError` (or an
argparse usage error) rendered as one paragraph on stderr with exit status 2
and no traceback.  Subcommands not built yet say so and exit 2 rather than
pretending to succeed.
"""
from __future__ import annotations

import argparse
import json
import sys

from grammar.source import SourceError

EXIT_PROVED, EXIT_REFUTED, EXIT_BAD_INPUT, EXIT_UNKNOWN = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one paragraph (its default)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"tdxproof: error: {message} (see 'tdxproof {self.prog.split()[-1]} --help')\n")


def _config_option(text: str) -> tuple[str, bool]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("CONFIG_") or value not in ("y", "n"):
        raise argparse.ArgumentTypeError(f"expected CONFIG_NAME=y or CONFIG_NAME=n, got {text!r}")
    return name, value == "y"


def _add_front_end_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="kernel .S files")
    parser.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR",
                        help="include directory (searched before the shipped shims)")
    parser.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]")
    parser.add_argument("-U", dest="undefines", action="append", default=[], metavar="NAME")
    parser.add_argument("--config", dest="configs", action="append", default=[], type=_config_option,
                        metavar="CONFIG_X=y|n", help="set a kernel config option")
    parser.add_argument("--cpp", default=None, help="C preprocessor command (default: cc -E)")
    parser.add_argument("--no-shims", action="store_true",
                        help="do not add the shipped kernel shim headers (use -I with a kernel tree)")


def _front_end_options(args: argparse.Namespace):
    from grammar.frontend import FrontEndOptions
    return FrontEndOptions(
        include_dirs=tuple(args.include_dirs), defines=tuple(args.defines),
        undefines=tuple(args.undefines), configs=dict(args.configs), cpp=args.cpp,
        use_shims=not args.no_shims)


def _cmd_parse(args: argparse.Namespace) -> int:
    from grammar.frontend import load_program
    from proofs.listing import program_json, program_text
    program = load_program(args.files, _front_end_options(args))
    if args.json:
        print(json.dumps(program_json(program), indent=2, sort_keys=False))
    else:
        print(program_text(program), end="")
    return EXIT_PROVED


def _cmd_ir(args: argparse.Namespace) -> int:
    from grammar.frontend import load_program
    from model.printer import ir_text
    program = load_program(args.files, _front_end_options(args))
    print(ir_text(program, args.function), end="")
    return EXIT_PROVED


def _not_built(name: str):
    def run(args: argparse.Namespace) -> int:
        raise SourceError(f"'tdxproof {name}' is not implemented yet")
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tdxproof", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    parse = commands.add_parser("parse", help="functions and instructions with source locations")
    _add_front_end_options(parse)
    parse.add_argument("--json", action="store_true", help="machine-readable output")
    parse.set_defaults(run=_cmd_parse)

    ir = commands.add_parser("ir", help="the IR of each function, readable")
    _add_front_end_options(ir)
    ir.add_argument("--function", action="append", default=[], metavar="NAME")
    ir.set_defaults(run=_cmd_ir)

    for name in ("check", "equiv", "replay", "mutate"):
        sub = commands.add_parser(name, help=f"{name} (not implemented yet)")
        sub.add_argument("rest", nargs=argparse.REMAINDER)
        sub.set_defaults(run=_not_built(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SourceError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
