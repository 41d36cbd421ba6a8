"""The command line explains itself: ``--version``, every option with help
text, each command's ``--help`` with its exit statuses (and the property
catalog, one line per ID, where it takes ``--property``), without loading
Z3; the README names every option and exit status."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from proofs import VERSION
from proofs.catalog import CATALOG, SUMMARY_WIDTH, TEXTS
from proofs.cli import EXIT_ANY, EXIT_STATUSES, build_parser, main

PROPERTY_COMMANDS = {None, "check", "mutate"}
"""The commands whose ``--help`` lists the catalog (``None``: ``tdxproof --help``)."""


def parsers() -> dict[str | None, argparse.ArgumentParser]:
    """The tool's parser (``None``) and each command's, by name."""
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {None: parser, **commands.choices}


def test_every_option_and_command_has_help():
    missing = []
    for name, parser in parsers().items():
        for action in parser._actions:
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name or 'tdxproof'} {'/'.join(action.option_strings) or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"command {choice.dest}" for choice in action._choices_actions if not choice.help]
    assert not missing


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"tdxproof {VERSION}\n"


def help_text(name: str | None, capsys) -> str:
    assert main(([name] if name else []) + ["--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", [None, *EXIT_STATUSES])
def test_help_lists_the_exit_statuses_and_the_catalog(name, capsys):
    text = help_text(name, capsys)
    statuses = text.split("exit status:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    listed = {int(line.split()[0]): line.split(None, 1)[1] for line in statuses}
    assert set(EXIT_ANY) <= set(listed)
    if name:
        assert listed == {**EXIT_STATUSES[name], **EXIT_ANY}
    lines = text.splitlines()
    for pid in CATALOG:
        rows = [line for line in lines if re.match(rf"  {re.escape(pid)} +\S", line)]
        if name in PROPERTY_COMMANDS:
            assert rows == [f"  {pid:<25}{TEXTS[pid].summary}"]
            assert len(rows[0]) <= 100
        else:
            assert rows == []


def test_the_catalog_summaries_are_one_short_line():
    for pid, text in TEXTS.items():
        assert "\n" not in text.summary and len(text.summary) <= SUMMARY_WIDTH, pid
        assert len(pid) < 25 and text.description and text.help


def test_help_loads_neither_z3_nor_the_prover():
    code = ("import sys\nfrom proofs.cli import main\nfor argv in ([], ['check'], ['mutate'], ['equiv']):\n"
            "    main(argv + ['--help'])\n"
            "print(sorted(m for m in sys.modules if m == 'z3' or m.startswith(('proofs.prover', 'model.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "[]"


def test_the_readme_names_every_option_and_exit_status():
    readme = (ROOT / "README.md").read_text()
    for name, parser in parsers().items():
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in readme, f"{name or 'tdxproof'} {option}"
    statuses = {status for table in EXIT_STATUSES.values() for status in table} | set(EXIT_ANY)
    for status in statuses:
        assert re.search(rf"(?<![\w.]){status}(?![\w.]) ", readme.split("Exit status:", 1)[1][:1500]), status
