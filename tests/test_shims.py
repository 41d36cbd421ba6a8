"""The shipped shim headers (grammar/shims) against model/abi.py and the kernel
conventions of SPEC section 4, with the real preprocessor and assembler as
the oracle: every constant is assembled into a data word by ``cc -c`` and
read back from the object file, and the code macros are assembled and their
bytes inspected.
"""
from __future__ import annotations

import errno
import struct
import subprocess
from pathlib import Path

import pytest

from grammar.frontend import SHIM_DIR as SHIMS
from grammar.program import EXTABLE_TYPES
from model import abi

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLDEST_INCLUDE = FIXTURES / "legacy-oldest" / "arch" / "x86" / "include"

ALL_HEADERS = sorted(str(path.relative_to(SHIMS)) for path in SHIMS.rglob("*.h"))


def assemble(tmp_path: Path, source: str, *options: str, name: str = "probe") -> tuple[Path, str]:
    """``cc -c`` a preprocessed-assembly probe; returns the object and stderr."""
    probe = tmp_path / f"{name}.S"
    probe.write_text(source)
    obj = tmp_path / f"{name}.o"
    result = subprocess.run(["cc", "-c", "-x", "assembler-with-cpp", "-D__ASSEMBLY__", *options,
                             f"-I{SHIMS}", str(probe), "-o", str(obj)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return obj, result.stderr


def section_bytes(obj: Path, section: str) -> bytes:
    out = obj.with_suffix(f".{section.strip('.')}.bin")
    subprocess.run(["objcopy", "-O", "binary", "-j", section, str(obj), str(out)], check=True)
    return out.read_bytes()


def assembled_values(tmp_path: Path, names: list[str], *options: str,
                     headers: list[str] = ALL_HEADERS, prelude: str = "") -> dict[str, int]:
    """The 64-bit value GNU as gives each macro name after the shims are included."""
    lines = [f"#include <{header}>" for header in headers] + [prelude, ".data"]
    lines += [f".quad {name}" for name in names]
    obj, _ = assemble(tmp_path, "\n".join(lines) + "\n", *options)
    data = section_bytes(obj, ".data")
    return dict(zip(names, struct.unpack(f"<{len(names)}Q", data)))


ABI_CONSTANTS = {
    "TDX_ERROR": abi.TDX_ERROR,
    "TDX_SW_ERROR": abi.TDX_SW_ERROR,
    "TDX_SEAMCALL_VMFAILINVALID": abi.TDX_SEAMCALL_VMFAILINVALID,
    "TDX_SEAMCALL_UD": abi.TDX_SEAMCALL_UD,
    "TDX_SEAMCALL_GP": abi.TDX_SEAMCALL_GP,
    "TDG_VP_VMCALL": abi.TDG_VP_VMCALL,
    "TDVMCALL_EXPOSE_REGS_MASK": abi.TDVMCALL_EXPOSE_REGS_MASK,
    "TDX_HCALL_HAS_OUTPUT": abi.TDX_HCALL_HAS_OUTPUT,
    "TDX_HCALL_ISSUE_STI": abi.TDX_HCALL_ISSUE_STI,
    "TDX_FEATURES0_NO_RBP_MOD": abi.TDX_FEATURES0_NO_RBP_MOD,
    "TDX_MODULE_version": abi.TDX_MODULE_VERSION_OFFSET,
    **{f"TDX_MODULE_{reg}": offset for reg, offset in abi.TDX_MODULE_ARGS.items()},
    **{f"TDX_HYPERCALL_{reg}": offset for reg, offset in abi.TDX_HYPERCALL_ARGS.items()},
}


def test_every_abi_number_in_the_shims_matches_model_abi(tmp_path):
    assert assembled_values(tmp_path, list(ABI_CONSTANTS)) == ABI_CONSTANTS


def test_module_output_offsets_are_a_prefix_of_module_args():
    # struct tdx_module_output shares the TDX_MODULE_<reg> names.
    assert all(abi.TDX_MODULE_ARGS[reg] == off for reg, off in abi.TDX_MODULE_OUTPUT.items())


def test_trap_numbers_in_fault_statuses(tmp_path):
    values = assembled_values(tmp_path, ["TDX_SEAMCALL_UD", "TDX_SEAMCALL_GP", "TDX_SW_ERROR"])
    assert values["TDX_SEAMCALL_UD"] & 0xFFFFFFFF == abi.TRAP_UD
    assert values["TDX_SEAMCALL_GP"] & 0xFFFFFFFF == abi.TRAP_GP


def test_exception_types_are_what_the_front_end_reads(tmp_path):
    values = assembled_values(tmp_path, ["EX_TYPE_DEFAULT", "EX_TYPE_FAULT"])
    assert EXTABLE_TYPES[values["EX_TYPE_DEFAULT"]] == "default"
    assert EXTABLE_TYPES[values["EX_TYPE_FAULT"]] == "fault"


def test_errno_values_are_linux_ones(tmp_path):
    names = ["EPERM", "EIO", "ENOMEM", "EFAULT", "EBUSY", "ENODEV", "EINVAL", "ENOSPC", "EOPNOTSUPP"]
    values = assembled_values(tmp_path, names, headers=["linux/errno.h"])
    assert values == {name: getattr(errno, name) for name in names}


def test_bit_is_usable_in_assembly_up_to_bit_63(tmp_path):
    values = assembled_values(tmp_path, ["BIT(0)", "BIT(18)", "BIT(63)", "BIT_ULL(63)",
                                         "(BIT(2) | BIT(3) | BIT(15))"], headers=["linux/bits.h"])
    assert list(values.values()) == [1, 1 << 18, 1 << 63, 1 << 63, 0x800C]


def test_c_sees_the_same_status_values(tmp_path):
    names = ["TDX_ERROR", "TDX_SW_ERROR", "TDX_SEAMCALL_VMFAILINVALID", "TDX_SEAMCALL_UD",
             "TDX_SEAMCALL_GP", "TDVMCALL_EXPOSE_REGS_MASK", "TDX_FEATURES0_NO_RBP_MOD"]
    source = tmp_path / "probe.c"
    source.write_text("#include <asm/tdx.h>\nconst unsigned long long values[] = {"
                      + ", ".join(names) + "};\n")
    obj = tmp_path / "probe_c.o"
    subprocess.run(["cc", "-c", "-Wall", "-Werror", f"-I{SHIMS}", str(source), "-o", str(obj)],
                   check=True)
    data = section_bytes(obj, ".rodata")
    assert struct.unpack(f"<{len(names)}Q", data) == tuple(ABI_CONSTANTS[n] for n in names)


def test_a_file_may_redefine_the_exposure_mask(tmp_path):
    prelude = "#define TDVMCALL_EXPOSE_REGS_MASK (BIT(10) | BIT(11) | BIT(12) | BIT(13) | BIT(14) | BIT(15))"
    values = assembled_values(tmp_path, ["TDVMCALL_EXPOSE_REGS_MASK"], prelude=prelude)
    assert values["TDVMCALL_EXPOSE_REGS_MASK"] == abi.TDVMCALL_EXPOSE_REGS_MASK_OLDEST


def test_every_header_is_include_guarded(tmp_path):
    # The assembler macros (FRAME_BEGIN, UNWIND_HINT_*, REACHABLE ...) would
    # be defined twice, an error, without the guards.
    includes = "".join(f"#include <{header}>\n" for header in ALL_HEADERS * 2)
    for options in ((), ("-DCONFIG_FRAME_POINTER=1",)):
        assemble(tmp_path, includes + ".text\nnop\n", *options)
    for header in ALL_HEADERS:
        text = (SHIMS / header).read_text()
        guard = text.split("#ifndef ", 1)[1].split()[0]
        assert f"#define {guard}\n" in text and text.rstrip().endswith("*/"), header


def test_the_oldest_tree_offsets_match_model_abi(tmp_path):
    names = {**{f"TDX_HYPERCALL_{reg}": off for reg, off in abi.TDX_HYPERCALL_ARGS_OLDEST.items()},
             **{f"TDX_MODULE_{reg}": off for reg, off in abi.TDX_MODULE_OUTPUT.items()}}
    values = assembled_values(tmp_path, list(names), f"-I{OLDEST_INCLUDE}",
                              headers=["asm/asm-offsets.h"])
    assert values == names


FUNCTION = """\
#include <linux/linkage.h>
#include <linux/cfi_types.h>
#include <asm/frame.h>
#include <asm/asm.h>
#include <linux/export.h>
#include <asm/unwind_hints.h>
.text
nop
SYM_FUNC_START(probe_fn)
	FRAME_BEGIN
	UNWIND_HINT_REGS base=%rsp offset=8
	REACHABLE
1:	movq FRAME_OFFSET(%rsp), %rax
	FRAME_END
	RET
2:	jmp 1b
	_ASM_EXTABLE_FAULT(1b, 2b)
	_ASM_EXTABLE(1b, 2b)
SYM_FUNC_END(probe_fn)
EXPORT_SYMBOL_GPL(probe_fn)
SYM_TYPED_FUNC_START(typed_fn)
	RET
SYM_FUNC_END(typed_fn)
"""


def symbol_table(obj: Path) -> dict[str, tuple[int, int, str, str]]:
    """name -> (value, size, type, bind) from ``readelf -s``."""
    table = {}
    for line in subprocess.run(["readelf", "-sW", str(obj)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 8 and fields[0][:-1].isdigit():
            table[fields[7]] = (int(fields[1], 16), int(fields[2], 0), fields[3], fields[4])
    return table


@pytest.mark.parametrize("frame_pointer", [False, True])
@pytest.mark.parametrize("rethunk", [False, True])
@pytest.mark.parametrize("ibt", [False, True])
def test_code_macros_follow_the_configuration(tmp_path, frame_pointer, rethunk, ibt):
    options = [f"-DCONFIG_{name}=1" for name, on in
               (("FRAME_POINTER", frame_pointer), ("RETHUNK", rethunk), ("X86_KERNEL_IBT", ibt)) if on]
    obj, _ = assemble(tmp_path, FUNCTION, *options)
    text = section_bytes(obj, ".text")
    symbols = symbol_table(obj)
    start, size, kind, bind = symbols["probe_fn"]
    assert (start % 16, kind, bind) == (0, "FUNC", "GLOBAL")
    code = text[start:start + size]
    endbr = bytes.fromhex("f30f1efa") if ibt else b""
    prologue, epilogue = (bytes.fromhex("554889e5"), b"\x5d") if frame_pointer else (b"", b"")
    # movq FRAME_OFFSET(%rsp), %rax: no displacement byte when it is 0
    load = bytes.fromhex("488b442408" if frame_pointer else "488b0424")
    ret = bytes.fromhex("e900000000") if rethunk else b"\xc3\xcc"
    back = -(len(load) + len(epilogue) + len(ret) + 2) & 0xFF
    assert code == endbr + prologue + load + epilogue + ret + bytes([0xEB, back])
    assert symbols["typed_fn"][2:] == ("FUNC", "GLOBAL")
    extable = section_bytes(obj, "__ex_table")
    assert len(extable) == 24
    assert struct.unpack("<I", extable[8:12])[0] == 2 and struct.unpack("<I", extable[20:24])[0] == 1
    relocations = subprocess.run(["readelf", "-rW", str(obj)], capture_output=True, text=True,
                                 check=True).stdout
    assert relocations.count("R_X86_64_PC32") == 4
    assert ("__x86_return_thunk" in relocations) == rethunk
    assert "probe_fn + 0" in relocations  # the export record points at the function
