"""lark's tables of grammar/att.lark kept across runs (lark's own ``cache=``
option, in the user's cache directory): a second process builds nothing
and parses exactly as a fresh build does; a damaged file or an unwritable
place falls back to building, silently."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = dict(parser="lalr", start=["statement", "expression"], propagate_positions=True,
               maybe_placeholders=False)
SAMPLES = [("statement", "movq %rax, 8(%rsi)"), ("statement", "lock; addl $1, (%rax,%rbx,4)"),
           ("statement", "jmp *%rax"), ("expression", "1 + 2 * (3 << 4)"),
           ("statement", "leaq foo(%rip), %rdi"), ("expression", "((1)")]

PARSES = f"""
import sys
import lark
import lark.lark
if sys.argv[1] == "no-build":      # building the grammar (rather than loading it) fails
    def refuse(*arguments, **options):
        raise SystemExit("the parser was built")
    lark.lark.load_grammar = refuse
if sys.argv[1] == "fresh":         # lark's own build, no tables file
    from grammar.expressions import GRAMMAR_PATH
    PARSER = lark.Lark(GRAMMAR_PATH.read_text(), **{OPTIONS!r})
else:
    from grammar.expressions import PARSER
out = []
for start, text in {SAMPLES!r}:
    try:
        tree = PARSER.parse(text, start=start)
    except lark.exceptions.UnexpectedInput as error:
        out.append(("error", type(error).__name__, getattr(error, "column", None)))
        continue
    out.append((str(tree), [(t.meta.column, t.meta.end_column) for t in tree.iter_subtrees()]))
print(repr(out))
"""


def _fresh_build(tmp_path: Path) -> str:
    run = _parse_in_a_process(tmp_path / "fresh", "fresh")
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def _parse_in_a_process(cache_home: Path, mode: str = "may-build") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PARSES, mode], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(cache_home)})


def test_a_second_process_builds_nothing_and_parses_the_same(tmp_path):
    first = _parse_in_a_process(tmp_path)
    assert first.returncode == 0, first.stderr
    [tables] = (tmp_path / "tdxproof").iterdir()
    second = _parse_in_a_process(tmp_path, "no-build")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == first.stdout.strip() == _fresh_build(tmp_path)
    assert [path.name for path in (tmp_path / "tdxproof").iterdir()] == [tables.name]


def test_a_damaged_file_is_rebuilt_silently_and_replaced(tmp_path):
    assert _parse_in_a_process(tmp_path).returncode == 0
    [tables] = (tmp_path / "tdxproof").iterdir()
    good = tables.read_bytes()
    header = good.split(b"\n", 1)[0] + b"\n"
    for damaged in (good[:len(good) // 2], header + b"not a pickle", b"", b"wrong digest\n" + good[len(header):]):
        tables.write_bytes(damaged)
        assert _parse_in_a_process(tmp_path, "no-build").returncode != 0      # not loaded: built again ...
        tables.write_bytes(damaged)
        again = _parse_in_a_process(tmp_path)
        assert again.returncode == 0 and again.stdout.strip() == _fresh_build(tmp_path) and not again.stderr
        assert _parse_in_a_process(tmp_path, "no-build").returncode == 0      # ... and the file replaced


def test_an_unwritable_place_is_no_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")                  # tdxproof/ cannot be made under a file
    run = _parse_in_a_process(blocker)
    assert run.returncode == 0 and run.stdout.strip() == _fresh_build(tmp_path) and not run.stderr
