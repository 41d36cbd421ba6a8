"""Every fixture is a real kernel-like source: it assembles with ``cc -c`` and
the shims under each combination of CONFIG_FRAME_POINTER, CONFIG_RETHUNK and
CONFIG_X86_KERNEL_IBT, defines the functions the expectations table names,
and its exception-table entries point at SEAMCALL instructions.
"""
from __future__ import annotations

import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from expectations import (CATALOG, CONFIG_MATRIX, EXPECTATIONS, rows, FIXTURES, UNIFIED_GLUE, include_dirs_for,
                          reference_defines, translation_units)
from objfile import ElfObject, cc_object, read_elf

SEAMCALL, TDCALL = bytes.fromhex("660f01cf"), bytes.fromhex("660f01cc")
EXTABLE_ENTRY = 12
# The trees and broken variants that must have no exception-table entry.
NO_EXTABLE = {"legacy-oldest/arch/x86/virt/vmx/tdx/seamcall.S", "broken/missing_extable.S"}
TOLERATED_WARNING = '"TDVMCALL_EXPOSE_REGS_MASK" redefined'


def assemble_matrix(path: str) -> list[tuple[dict[str, bool], ElfObject, str]]:
    def one(configs):
        return (configs, *cc_object(FIXTURES / path, tuple(sorted(configs.items())),
                                    include_dirs_for(path), reference_defines(path, configs)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, CONFIG_MATRIX))


def extable_entries(obj: ElfObject) -> list[tuple[tuple, tuple, int]]:
    """(from, to, type) of each entry: from/to as (section, offset)."""
    table = next((s.data for s in obj.sections if s.name == "__ex_table"), b"")
    relocations = {offset: (target, addend)
                   for offset, kind, target, addend in obj.relocations("__ex_table")}
    entries = []
    for base in range(0, len(table), EXTABLE_ENTRY):
        kind, = struct.unpack_from("<I", table, base + 8)
        # Each word is `.long (label) - .`: a PC32 relocation to section + offset.
        entries.append((relocations[base], relocations[base + 4], kind))
    return entries


def test_the_tree_is_all_there():
    units = translation_units()
    assert len(units) >= 15
    for row in EXPECTATIONS:
        for path in row.paths:
            assert (FIXTURES / path).is_file(), path


@pytest.mark.parametrize("path", translation_units())
def test_fixture_assembles_under_every_configuration(path):
    functions = {row.function for row in EXPECTATIONS if row.paths[0] == path}
    for configs, obj, stderr in assemble_matrix(path):
        warnings = [line for line in stderr.splitlines() if "warning" in line.lower()]
        assert all(TOLERATED_WARNING in line for line in warnings), stderr
        code = b"".join(obj.code().values())
        assert SEAMCALL in code or TDCALL in code
        defined = obj.functions()
        for name in functions:
            assert name in defined and defined[name].size > 0, (name, configs)
        if configs["CONFIG_X86_KERNEL_IBT"]:
            assert all(obj.code()[defined[name].section][defined[name].value:].startswith(
                bytes.fromhex("f30f1efa")) for name in functions)
        entries = extable_entries(obj)
        uses_seamcall = SEAMCALL in code
        assert (len(entries) > 0) == (uses_seamcall and path not in NO_EXTABLE), entries
        for (section, where), (fix_section, _), kind in entries:
            # A fault entry (type 2) on each SEAMCALL; the fixup in the same section.
            assert kind == 2 and fix_section == section
            assert obj.code()[section][where:where + 4] == SEAMCALL


def test_hypercall_glue_compiles_and_calls_the_wrapper(tmp_path):
    assembly = tmp_path / "hcall_glue.s"
    subprocess.run(["cc", "-S", "-O2", "-o", str(assembly), str(FIXTURES / UNIFIED_GLUE)], check=True)
    obj_path = tmp_path / "hcall_glue.o"
    subprocess.run(["cc", "-c", "-o", str(obj_path), str(assembly)], check=True)
    obj = read_elf(obj_path)
    targets = {target for section in obj.code() for _, _, target, _ in obj.relocations(section)}
    assert {"__tdcall_saved_ret", "__tdx_hypercall_failed"} <= targets
    assert "__tdx_hypercall" in obj.functions()


def test_each_broken_fixture_names_the_properties_the_table_expects_to_refute_it():
    for path in sorted((FIXTURES / "broken").glob("*.S")):
        claim = re.search(r"Must be refuted by: (.*)", path.read_text())
        assert claim, f"{path.name}: no 'Must be refuted by:' line"
        named = {prop for prop in CATALOG if re.search(rf"(?<![\w-]){prop}(?![\w-])", claim.group(1))}
        refuted = {row.property for row in rows(expected="refuted", tree="broken")
                   if row.paths == (f"broken/{path.name}",)}
        assert named and named == refuted, (path.name, named, refuted)
