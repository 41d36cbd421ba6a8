"""Assemble with the system tools and read the resulting ELF objects.

The fixture suites compare what GNU as produced, so they need the bytes of
each code section, the symbol table and the relocations.  Reading ELF64
directly (a few struct layouts) keeps that to one ``cc``/``as`` process per
object instead of a ``readelf``/``objcopy`` round trip per question.

Relocations are normalised so that two objects built from differently
spelled but equivalent sources compare equal: a relocation against a local
symbol (a label, however the front end renamed it) becomes one against the
label's section with the label's offset folded into the addend, which is
what GNU as itself does for ``.L`` labels.
"""
from __future__ import annotations

import functools
import os
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from grammar.frontend import SHIM_DIR as SHIMS

SHF_EXECINSTR = 0x4
SHT_SYMTAB, SHT_RELA, SHT_NOBITS = 2, 4, 8
STB_LOCAL = 0
STT_SECTION = 3

RELOCATION_TYPES = {1: "R_X86_64_64", 2: "R_X86_64_PC32", 4: "R_X86_64_PLT32",
                    9: "R_X86_64_GOTPCREL", 10: "R_X86_64_32", 11: "R_X86_64_32S",
                    41: "R_X86_64_GOTPCRELX", 42: "R_X86_64_REX_GOTPCRELX"}


@dataclass(frozen=True)
class Section:
    name: str
    type: int
    flags: int
    data: bytes
    link: int
    info: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    bind: int
    type: int
    section: str | None


@dataclass(frozen=True)
class ElfObject:
    sections: tuple[Section, ...]
    symbols: tuple[Symbol, ...]

    def code(self) -> dict[str, bytes]:
        """Executable section name -> its bytes."""
        return {s.name: s.data for s in self.sections
                if s.flags & SHF_EXECINSTR and s.type != SHT_NOBITS}

    def relocations(self, section: str) -> list[tuple[int, str, str, int]]:
        """(offset, type, target, addend) of ``section``'s relocations, local
        symbols folded into their section (see the module docstring)."""
        result = []
        for rela in self.sections:
            if rela.type != SHT_RELA or self.sections[rela.info].name != section:
                continue
            for offset, info, addend in struct.iter_unpack("<QQq", rela.data):
                symbol = self.symbols[info >> 32]
                kind = RELOCATION_TYPES.get(info & 0xFFFFFFFF, str(info & 0xFFFFFFFF))
                if symbol.bind == STB_LOCAL and symbol.section is not None:
                    target = symbol.section
                    addend += 0 if symbol.type == STT_SECTION else symbol.value
                else:
                    target = symbol.name
                result.append((offset, kind, target, addend))
        return sorted(result)

    def functions(self) -> dict[str, Symbol]:
        """Function symbols by name."""
        return {s.name: s for s in self.symbols if s.type == 2}


def read_elf(path: Path) -> ElfObject:
    """The sections and symbols of an ELF64 little-endian relocatable object."""
    blob = path.read_bytes()
    assert blob[:6] == b"\x7fELF\x02\x01", f"{path}: not an ELF64 little-endian object"
    shoff, = struct.unpack_from("<Q", blob, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", blob, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    name_table = blob[names[4]:names[4] + names[5]]

    def string(table: bytes, offset: int) -> str:
        return table[offset:table.index(b"\0", offset)].decode()

    sections = tuple(
        Section(string(name_table, h[0]), h[1], h[2],
                b"" if h[1] == SHT_NOBITS else blob[h[4]:h[4] + h[5]], h[6], h[7])
        for h in headers)
    symbols: tuple[Symbol, ...] = ()
    for section in sections:
        if section.type != SHT_SYMTAB:
            continue
        strings = sections[section.link].data
        listed = []
        for name, info, _, shndx, value, size in struct.iter_unpack("<IBBHQQ", section.data):
            home = sections[shndx].name if 0 < shndx < len(sections) else None
            # A section symbol is nameless in the string table: name it after its section.
            spelled = home if info & 0xF == STT_SECTION else string(strings, name)
            listed.append(Symbol(spelled or "", value, size, info >> 4, info & 0xF, home))
        symbols = tuple(listed)
    return ElfObject(sections, symbols)


def config_flags(configs: Mapping[str, bool]) -> list[str]:
    """``-DCONFIG_X=1`` / ``-UCONFIG_X``, as the front end passes them."""
    return [f"-D{name}=1" if on else f"-U{name}" for name, on in sorted(configs.items())]


def cc_assemble(source: Path, output: Path, configs: Mapping[str, bool],
                include_dirs: Sequence[str] = (), defines: Sequence[str] = ()) -> str:
    """``cc -c`` a kernel ``.S`` file with the shims last, as Kbuild would;
    returns the diagnostics (warnings) it printed."""
    command = ["cc", "-c", "-x", "assembler-with-cpp", "-D__ASSEMBLY__",
               *(f"-I{d}" for d in include_dirs), *(f"-D{d}" for d in defines), *config_flags(configs),
               f"-I{SHIMS}",
               str(source), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return result.stderr


def as_assemble(text: str, output: Path) -> None:
    """GNU ``as`` on plain assembly text."""
    source = output.with_suffix(".s")
    source.write_text(text)
    result = subprocess.run(["as", "--64", str(source), "-o", str(output)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"as {source}\n{result.stderr}"


_OBJECTS = tempfile.TemporaryDirectory(prefix="tdxproof-objects-")


@functools.lru_cache(maxsize=None)
def cc_object(source: Path, configs: tuple[tuple[str, bool], ...],
              include_dirs: tuple[str, ...] = (), defines: tuple[str, ...] = ()) -> tuple[ElfObject, str]:
    """:func:`cc_assemble` once per session for each (file, configuration),
    so the suites that all need the reference objects share them."""
    handle, name = tempfile.mkstemp(suffix=".o", dir=_OBJECTS.name)
    os.close(handle)
    output = Path(name)
    stderr = cc_assemble(source, output, dict(configs), include_dirs, defines)
    return read_elf(output), stderr
