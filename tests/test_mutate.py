"""``tdxproof mutate`` on a five-instruction function whose survivors can be
worked out by hand.

``add_one`` saves RBX, computes ``rax = rdi + 1`` through RBX, zeroes ECX
(dead: RCX is caller-saved and nobody reads it) and restores RBX.  With no
wrapper contract only the generic properties apply, so:

* every mutant that breaks the save/restore of RBX, or the stack, is killed
  (callee-saved, stack-balance);
* mutants that change RAX survive -- no generic property says what RAX
  should be -- and ``equiv`` shows they are *not* equivalent: gaps;
* mutants that only touch the dead ``xorl`` (or move it) survive and are
  proved equivalent;
* deleting ``ret`` falls off the function: refuted by ``no-fallthrough``
  alone (what the caller then gets back is not ``add_one``'s doing, so the
  properties of the return are unknown).

A mutant is named killed by the first property in catalog order that
refutes it (the others are not asked); the table lists every property a
check of all of them refutes, and a test compares the two on every mutant.

On the unified fixture wrappers, deleting the ``RET`` of a guest wrapper or
the ``jmp`` that ends a host wrapper's fault fixup is killed by
``no-fallthrough``.
"""
from __future__ import annotations

import json

import pytest

from grammar.caches import CACHES
from grammar.frontend import FrontEndOptions, expand_to_assembly, load_program
from proofs.cli import main
from proofs.contracts import load_contracts
from proofs.mutate import derive_mutants, first_kill, run_mutants
from proofs.properties import CATALOG
from proofs.prover import check_function
from proofs.settings import Settings, row_configs

SMALL = """\
\t.text
\t.globl add_one
\t.type add_one, @function
add_one:
\tpush\t%rbx
\tmovq\t%rdi, %rbx
\tleaq\t1(%rbx), %rax
\txorl\t%ecx, %ecx
\tpop\t%rbx
\tret
\t.size add_one, .-add_one
"""

KILLED = {
    ("drop-push", "pushq %rbx"): {"callee-saved", "stack-balance"},
    ("swap", "pushq %rbx; movq %rdi, %rbx"): {"callee-saved"},
    ("register", "pushq %rbx"): {"callee-saved"},
    ("register", "movq %rdi, %rbx", "movq %rdi, %rbp"): {"callee-saved"},
    ("drop-pop", "popq %rbx"): {"callee-saved", "stack-balance"},
    ("swap", "popq %rbx; ret"): {"callee-saved", "stack-balance"},
    ("register", "popq %rbx"): {"callee-saved"},
    ("delete", "ret"): {"no-fallthrough"},
}
EQUIVALENT = {("swap", "leaq 0x1(%rbx), %rax; xorl %ecx, %ecx"), ("delete", "xorl %ecx, %ecx"),
              ("swap", "xorl %ecx, %ecx; popq %rbx"), ("register", "xorl %ecx, %ecx")}
GAPS = {("delete", "movq %rdi, %rbx"), ("swap", "movq %rdi, %rbx; leaq 0x1(%rbx), %rax"),
        ("register", "movq %rdi, %rbx", "movq %r8, %rbx"), ("delete", "leaq 0x1(%rbx), %rax"),
        ("register", "leaq 0x1(%rbx), %rax", "leaq 0x1(%rbp), %rax"),
        ("register", "leaq 0x1(%rbx), %rax", "leaq 0x1(%rbx), %rcx"),
        ("displacement", "leaq 0x1(%rbx), %rax")}


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.S"
    path.write_text(SMALL)
    return path


def _key(mutant) -> tuple:
    return (mutant.operator, mutant.before, mutant.after)


def _matches(mutant, table) -> bool:
    return any(_key(mutant)[:len(key)] == key for key in table)


def test_mutants_in_a_fixed_order(small):
    program = load_program([str(small)], FrontEndOptions())
    assembly = expand_to_assembly([str(small)], FrontEndOptions())
    mutants = derive_mutants(assembly, program.function("add_one"))
    assert [m.operator for m in mutants] == [
        "drop-push", "swap", "register",
        "delete", "swap", "register", "register",
        "delete", "swap", "register", "register", "displacement",
        "delete", "swap", "register",
        "drop-pop", "swap", "register",
        "delete"]
    assert [m.number for m in mutants] == list(range(1, 20))
    assert mutants == derive_mutants(assembly, program.function("add_one"))
    swapped = mutants[1]
    assert swapped.after == "movq %rdi, %rbx; pushq %rbx"
    assert "\tmovq %rdi, %rbx" in swapped.lines[swapped.lines.index("add_one:\t# " + str(small) + ":4") + 1]


def test_known_survivors(small):
    analysis = run_mutants([str(small)], FrontEndOptions(), "add_one", properties=CATALOG, jobs=2, timeout=10)
    by_status = {}
    for result in analysis.results:
        by_status.setdefault(result.status, []).append(result)
    assert "invalid" not in by_status
    killed = {r.mutant.number: r for r in by_status["killed"]}
    assert len(killed) == len(KILLED)
    for key, properties in KILLED.items():
        [result] = [r for r in killed.values() if _key(r.mutant)[:len(key)] == key]
        assert result.killed_by == (min(properties, key=CATALOG.index),), result.mutant.description
    survivors = by_status["survived"]
    equivalent = [r for r in survivors if r.equivalence == "equivalent"]
    assert {_key(r.mutant)[:2] for r in equivalent} == EQUIVALENT
    gaps = [r for r in survivors if r.equivalence == "different"]
    assert len(gaps) == len(GAPS) and all(_matches(r.mutant, GAPS) for r in gaps)
    assert all("rax" in r.reason for r in gaps)
    assert not [r for r in survivors if r.equivalence not in ("equivalent", "different")]
    [fell_off] = [r for r in killed.values() if r.mutant.before == "ret"]
    assert {"callee-saved", "stack-balance"} <= set(fell_off.unknown)
    assert analysis.score == pytest.approx(8 / 15)
    assert set(CACHES.sizes().values()) == {0}       # the analysis left no entries behind


def test_cli_report_and_errors(small, capsys):
    assert main(["mutate", str(small), "--function", "add_one", "--property", "callee-saved",
                 "--no-equiv", "--json", "--jobs", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mutants"] == 19 and report["equivalent"] == 0
    assert {r["status"] for r in report["results"]} == {"killed", "survived"}
    assert all(r["equivalence"] == "not checked" for r in report["results"] if r["status"] == "survived")
    assert report["killed"] == sum(1 for props in KILLED.values() if "callee-saved" in props)
    assert main(["mutate", str(small), "--function", "absent"]) == 2
    assert "no function named 'absent'" in capsys.readouterr().err
    assert main(["mutate", str(small), "--function", "add_one", "--property", "nope"]) == 2
    assert "unknown property" in capsys.readouterr().err


BRANCHY = """\
\t.text
\t.globl pick
pick:
\tcmpq\t$3, %rdi
\tjb\t1f
\tmovl\t$5, %eax
\tret
1:\tmovq\t8(%rsi), %rax
\tret
"""


def test_jumps_immediates_displacements_and_as(tmp_path):
    """Every operator's text is what it says, and GNU as accepts every mutant."""
    import subprocess
    path = tmp_path / "pick.S"
    path.write_text(BRANCHY)
    options = FrontEndOptions()
    mutants = derive_mutants(expand_to_assembly([str(path)], options),
                             load_program([str(path)], options).function("pick"))
    changes = {(m.operator, m.before, m.after) for m in mutants}
    assert ("immediate", "cmpq $0x3, %rdi", "cmpq $0x4, %rdi") in changes
    assert ("register", "cmpq $0x3, %rdi", "cmpq $0x3, %r8") in changes
    assert any(m.operator == "drop-jump" and m.before.startswith("jb ") for m in mutants)
    [inverted] = [m for m in mutants if m.operator == "invert-jump"]
    assert inverted.before.startswith("jb ") and inverted.after.startswith("jae ")
    assert inverted.after.split()[1] == inverted.before.split()[1]
    assert ("displacement", "movq 0x8(%rsi), %rax", "movq 0x10(%rsi), %rax") in changes
    assert ("register", "movl $0x5, %eax", "movl $0x5, %ecx") in changes
    for mutant in mutants:
        source = tmp_path / f"m{mutant.number}.s"
        source.write_text("\n".join(mutant.lines) + "\n")
        done = subprocess.run(["as", "--64", "-o", str(tmp_path / "m.o"), str(source)],
                              capture_output=True, text=True)
        assert done.returncode == 0, (mutant.description, done.stderr)


@pytest.mark.parametrize("source, function", [(SMALL, "add_one"), (BRANCHY, "pick")], ids=["add_one", "pick"])
def test_the_killer_is_the_first_property_a_full_check_refutes(tmp_path, source, function):
    """On every mutant, :func:`first_kill` agrees with a check of every
    property at once: no kill where that check refutes nothing, else its
    first refuted property in catalog order; the unknowns are those the
    full check leaves unknown among the properties before the killer."""
    path = tmp_path / "input.S"
    path.write_text(source)
    options = FrontEndOptions()
    mutants = derive_mutants(expand_to_assembly([str(path)], options),
                             load_program([str(path)], options).function(function))
    settings = Settings(properties=CATALOG, contracts=load_contracts(), configs=row_configs(options))
    kills = 0
    for mutant in mutants:
        mutated = tmp_path / f"mutant{mutant.number}.s"
        mutated.write_text("\n".join(mutant.lines) + "\n")
        program = load_program([str(mutated)], FrontEndOptions(use_shims=False))
        full = check_function(program, function, "default", settings).obligations
        refuted = [pid for pid in CATALOG if any(o.property == pid and o.status == "refuted" for o in full)]
        killed, unknown = first_kill(program, function, settings)
        assert killed == tuple(refuted[:1]), mutant.description
        asked = CATALOG[:CATALOG.index(killed[0])] if killed else CATALOG
        assert unknown == tuple(pid for pid in asked
                                if any(o.property == pid and o.status == "unknown" for o in full))
        kills += bool(killed)
    assert 0 < kills < len(mutants)


UNIFIED = "tests/fixtures/unified/arch/x86"


def test_a_ret_is_deleted_with_its_speculation_padding(tmp_path):
    path = tmp_path / "padded.S"
    path.write_text("\t.text\n\t.globl f\nf:\n\tmovl $1, %eax\n\tret\n\tint3\n\t.size f, .-f\n")
    options = FrontEndOptions()
    mutants = derive_mutants(expand_to_assembly([str(path)], options),
                             load_program([str(path)], options).function("f"))
    [deleted] = [m for m in mutants if m.operator == "delete" and m.before.startswith("ret")]
    assert deleted.before == "ret; int3"
    assert not [line for line in deleted.lines if line.strip().startswith(("ret", "int3"))]
    assert [m.description for m in mutants if "int3" in m.before] == [
        "delete: ret; int3", "swap: ret; int3 -> int3; ret", "delete: int3"]


@pytest.mark.parametrize("path, function, dropped", [
    (f"{UNIFIED}/coco/tdx/tdcall.S", "__tdcall", "ret; int3"),
    (f"{UNIFIED}/virt/vmx/tdx/seamcall.S", "__seamcall", "jmp .Lseamcall_out"),
])
def test_deleting_the_way_out_of_a_real_wrapper_is_killed_by_no_fallthrough(path, function, dropped):
    analysis = run_mutants([path], FrontEndOptions(), function, properties=("no-fallthrough",), jobs=2,
                           equivalence=False)
    killed = [r for r in analysis.results if r.status == "killed"]
    assert len(killed) == 1 and killed[0].mutant.before.startswith(dropped)   # (.Lseamcall_out<N>)
    assert killed[0].mutant.operator == "delete" and killed[0].killed_by == ("no-fallthrough",)
