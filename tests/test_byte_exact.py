"""The front end's oracle (SPEC section 9): for every fixture and every
combination of CONFIG_FRAME_POINTER, CONFIG_RETHUNK and CONFIG_X86_KERNEL_IBT,
the front end's expansion re-emitted as plain assembly and assembled with
GNU ``as`` gives the same code-section bytes and the same relocations (of the
code sections and of ``__ex_table``, label names normalised) as ``cc -c`` on
the original source.

Code sections are every executable section (the guest wrappers live in
``.noinstr.text``, as in the kernel), compared by name.  The unified era's C
glue, compiled with ``cc -S -O2``, is held to the same standard: the front
end must take gcc's output (``.cfi_*``, ``.file``, ``.ident`` ...) too.
"""
from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from expectations import (CONFIG_MATRIX, FIXTURES, UNIFIED_GLUE, defines_for, include_dirs_for, reference_defines,
                          translation_units)
from grammar.frontend import FrontEndOptions, expand_to_assembly
from objfile import ElfObject, as_assemble, cc_object, read_elf


def observable(obj: ElfObject) -> dict[str, object]:
    """What must agree: each code section's bytes and relocations, and the
    exception table's relocations and bytes."""
    code = obj.code()
    result: dict[str, object] = {f"bytes of {name}": data for name, data in code.items()}
    for name in [*code, "__ex_table"]:
        result[f"relocations of {name}"] = obj.relocations(name)
    result["bytes of __ex_table"] = next(
        (s.data for s in obj.sections if s.name == "__ex_table"), b"")
    return result


def first_difference(expected: dict[str, object], actual: dict[str, object]) -> str:
    for key in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(key), actual.get(key)
        if want == got:
            continue
        if isinstance(want, bytes) and isinstance(got, bytes):
            at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
            return (f"{key}: first difference at offset {at:#x}: cc -c has "
                    f"{want[at:at + 8].hex(' ')}, the re-emitted text {got[at:at + 8].hex(' ')} "
                    f"(lengths {len(want)} and {len(got)})")
        return f"{key}:\n  cc -c:      {want}\n  re-emitted: {got}"
    return ""


def check(source: Path, reference: ElfObject, options: FrontEndOptions, workdir: Path) -> str:
    """'' when the re-emitted expansion of ``source`` matches ``reference``."""
    text = expand_to_assembly([str(source)], options)
    output = workdir / "reemitted.o"
    as_assemble(text, output)
    difference = first_difference(observable(reference), observable(read_elf(output)))
    return f"{difference}\n(re-emitted text in {output.with_suffix('.s')})" if difference else ""


@pytest.mark.parametrize("path", translation_units())
def test_reemitted_expansion_assembles_to_the_same_object(path, tmp_path):
    include_dirs = include_dirs_for(path)

    def one(index: int) -> str:
        configs = CONFIG_MATRIX[index]
        reference, _ = cc_object(FIXTURES / path, tuple(sorted(configs.items())), include_dirs,
                                 reference_defines(path, configs))
        workdir = tmp_path / str(index)
        workdir.mkdir()
        options = FrontEndOptions(include_dirs=include_dirs, defines=defines_for(path), configs=configs)
        difference = check(FIXTURES / path, reference, options, workdir)
        return f"{configs}: {difference}" if difference else ""

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(one, range(len(CONFIG_MATRIX))) if f]
    assert not failures, "\n".join(failures)


def test_compiled_c_glue_reemits_to_the_same_object(tmp_path):
    assembly = tmp_path / "hcall_glue.s"
    subprocess.run(["cc", "-S", "-O2", "-o", str(assembly), str(FIXTURES / UNIFIED_GLUE)], check=True)
    reference_path = tmp_path / "hcall_glue.o"
    subprocess.run(["cc", "-c", "-o", str(reference_path), str(assembly)], check=True)
    difference = check(assembly, read_elf(reference_path), FrontEndOptions(), tmp_path)
    assert not difference, difference
