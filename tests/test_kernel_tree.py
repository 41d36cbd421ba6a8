"""Tree mode: a kernel tree's own headers, configuration, asm-offsets and
declarations (grammar/kernel_tree.py), on the fixture trees of
``tests/fixtures/trees`` -- one per era, unbuilt, built in place
(``legacy-built``) and built out of tree (``unified-build``, made with
``make O=``: its ``source`` link names ``unified``)."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from cli_runner import run_in_process
from expectations import FP_OFF, FP_ON, ALL_ON, rows
from grammar import kernel_tree
from grammar.frontend import FrontEndOptions, _command, group_files
from grammar.source import SourceError

TREES = Path(__file__).parent / "fixtures" / "trees"
GUEST = "arch/x86/coco/tdx/tdcall.S"
HOST = "arch/x86/virt/vmx/tdx/seamcall.S"


def _files(tree: str | Path) -> list[str]:
    return [str(Path(tree) / GUEST), str(Path(tree) / HOST)]


def _group(tree: str | Path, **options):
    groups = group_files(_files(tree), FrontEndOptions(**options))
    assert len(groups) == 1
    return groups[0]


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(TREES / name, target, symlinks=True)
    return target


# --- recognising a tree ---------------------------------------------------------------

def test_files_in_a_kernel_tree_are_in_tree_mode_and_other_fixtures_are_not():
    group = _group(TREES / "unified")
    assert group.options.kernel_tree == str((TREES / "unified").resolve()) and not group.options.use_shims
    assert group.facts is not None and group.facts.root == group.options.kernel_tree
    plain = group_files([str(TREES.parent / "unified" / GUEST)], FrontEndOptions())[0]
    assert plain.options.kernel_tree is None and plain.facts is None and plain.options.use_shims


def test_an_out_of_tree_build_is_found_from_its_source_link_either_way():
    for options in ({"kernel_build": str(TREES / "unified-build")}, {"kernel_tree": str(TREES / "unified-build")}):
        group = _group(TREES / "unified", **options)
        assert group.options.kernel_tree == str((TREES / "unified").resolve())
        assert group.options.kernel_build == str((TREES / "unified-build").resolve())
        assert group.facts.build == group.options.kernel_build


# --- preprocessing as Kbuild does --------------------------------------------------------

def _after(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, word in enumerate(command) if word == flag] + \
        [word[len(flag):] for word in command if word.startswith(flag) and word != flag]


def test_the_preprocessor_command_is_kbuilds_without_shims():
    group = _group(TREES / "unified")
    command = _command(group.files[0], group.options)
    assert "-nostdinc" in command and "-D__KERNEL__" in command and "-D__ASSEMBLY__" in command
    assert not any("shims" in word for word in command)
    tree = TREES / "unified"
    dirs = [os.path.abspath(d) for d in _after(command, "-I")]
    private = kernel_tree.search(kernel_tree.KernelTree(str(tree.resolve()), str(tree.resolve())),
                                 group.options.configs).private
    expected = [tree / "arch/x86/include", Path(private, "arch-generated"), Path(private, "include"),
                tree / "include", tree / "arch/x86/include/uapi", Path(private, "arch-generated-uapi"),
                tree / "include/uapi"]
    assert dirs == [os.path.abspath(d) for d in expected]
    assert [os.path.abspath(f) for f in _after(command, "-include")] == [os.path.abspath(tree / "include/linux/kconfig.h")]
    # What the unbuilt tree lacks is generated as Kbuild would: the asm-generic wrappers, autoconf.h.
    assert Path(private, "arch-generated-uapi/asm/errno.h").read_text() == "#include <asm-generic/errno.h>\n"
    assert Path(private, "arch-generated/asm/export.h").is_file()
    assert "#define CONFIG_" not in Path(private, "include/generated/autoconf.h").read_text()


def test_a_build_directory_brings_its_generated_headers():
    group = _group(TREES / "unified", kernel_build=str(TREES / "unified-build"))
    dirs = [os.path.abspath(d) for d in _after(_command(group.files[0], group.options), "-I")]
    build = TREES / "unified-build"
    assert dirs.index(os.path.abspath(build / "arch/x86/include/generated")) == 1
    assert os.path.abspath(build / "include") in dirs and os.path.abspath(TREES / "unified/include") in dirs
    assert not any(d.endswith("arch-generated") or d.endswith("arch-generated-uapi") for d in dirs)


def test_a_header_the_tree_lacks_is_the_preprocessors_error_naming_it(tmp_path):
    tree = _copy("unified", tmp_path)
    (tree / "arch/x86/include/asm/frame.h").unlink()     # the shims have one: they must not be used
    status, _, stderr = run_in_process(["check", str(tree / GUEST), "--jobs", "1"], 60)
    assert status == 2
    line = _line_of(tree / GUEST, "#include <asm/frame.h>")
    assert stderr == (f"{tree / GUEST}:{line}:10: error: C preprocessor: asm/frame.h: "
                      f"No such file or directory\n"), stderr


# --- configuration ---------------------------------------------------------------------

def test_configuration_values_say_where_they_came_from(tmp_path):
    config = _group(TREES / "legacy-built").facts.config
    assert config["CONFIG_FRAME_POINTER"].enabled and config["CONFIG_FRAME_POINTER"].source.endswith("legacy-built/.config")
    assert not config["CONFIG_RETHUNK"].enabled and config["CONFIG_RETHUNK"].source.startswith("from ")
    overridden = _group(TREES / "legacy-built", configs={"CONFIG_FRAME_POINTER": False}).facts.config
    assert overridden["CONFIG_FRAME_POINTER"] == kernel_tree.ConfigValue(False, "--config")
    # An unconfigured tree: the options that build the checked files are on, and say which Makefile line.
    built = _group(TREES / "legacy").facts.config
    assert built["CONFIG_INTEL_TDX_GUEST"].enabled
    assert re.fullmatch(r"builds .*arch/x86/coco/tdx/tdcall.S: .*arch/x86/coco/Makefile:2",
                        built["CONFIG_INTEL_TDX_GUEST"].source)
    assert built["CONFIG_FRAME_POINTER"].source.startswith("the tree has no configuration")
    # Without .config, include/generated/autoconf.h (CONFIG_X_MODULE is m).
    tree = _copy("legacy-built", tmp_path)
    (tree / ".config").unlink()
    origin, values = kernel_tree.read_config(kernel_tree.KernelTree(str(tree), str(tree)))
    assert origin.endswith("include/generated/autoconf.h") and values["CONFIG_KVM_GUEST"][0] == "m"
    assert values["CONFIG_FRAME_POINTER"][0] == "y" and "CONFIG_RETHUNK" not in values


def test_the_report_lists_each_value_with_its_source(capsys):
    status, out, _ = run_in_process(["check", *(_files(TREES / "legacy-built")), "--matrix", "CONFIG_RETHUNK",
                                     "--function", "__tdx_module_call", "--json", "-", "--jobs", "1"], 120)
    assert status == 0
    report = json.loads(out)
    texts = report["assumptions"]
    assert any(re.fullmatch(r"CONFIG_FRAME_POINTER=y, .*\(from .*legacy-built/\.config\)", t) for t in texts)
    assert any(t.startswith("kernel tree ") and "legacy-built" in t for t in texts)
    assert any(t.startswith("asm-offsets TDX_MODULE_rcx=0, ") for t in texts)
    by_config = {r["config"]: r["assumptions"] for r in report["results"]}
    assert set(by_config) == {"CONFIG_RETHUNK=y", "CONFIG_RETHUNK=n"}
    assert "CONFIG_RETHUNK=y (--matrix)" in by_config["CONFIG_RETHUNK=y"]
    assert "CONFIG_RETHUNK=n (--matrix)" in by_config["CONFIG_RETHUNK=n"]
    assert not any("CONFIG_RETHUNK=n" in t and ".config" in t for t in texts)   # --matrix wins over .config


# --- asm-offsets -------------------------------------------------------------------------

def _tree(name: str, build: str | None = None) -> kernel_tree.KernelTree:
    source = str((TREES / name).resolve())
    return kernel_tree.KernelTree(source, str((TREES / build).resolve()) if build else source)


def test_asm_offsets_of_a_built_tree_come_from_its_generated_file():
    offsets = kernel_tree.asm_offsets(_tree("unified", "unified-build"))
    assert offsets["TDX_MODULE_version"].value == 104 and "PTREGS_SIZE" not in offsets
    assert offsets["TDX_MODULE_rcx"].source.endswith("unified-build/include/generated/asm-offsets.h")


@pytest.mark.parametrize("source, build", [("unified", "unified-build"), ("legacy", "legacy-built")])
def test_derived_asm_offsets_agree_with_the_built_trees_generated_file(source, build):
    derived = kernel_tree.asm_offsets(_tree(source))
    generated = kernel_tree.asm_offsets(_tree(build if build == "legacy-built" else source, build))
    assert {k: v.value for k, v in derived.items()} == {k: v.value for k, v in generated.items()}
    assert all(v.source.startswith("OFFSET() in ") for v in derived.values())


def _definitions(tree: str) -> list[kernel_tree.Definition]:
    headers = kernel_tree.tdx_headers(str(TREES / tree))
    names = ["tdx_module_args", "tdx_module_output", "tdx_hypercall_args"]
    return [d for header in headers for d in kernel_tree._definitions(header, names).values()]


@pytest.mark.parametrize("tree", ["unified", "legacy", "v5.19"])
def test_the_compiler_and_the_struct_reader_lay_every_fixture_struct_out_alike(tree):
    search = kernel_tree.search(_tree(tree), ())
    definitions = _definitions(tree)
    assert definitions
    for definition in definitions:
        by_cc = kernel_tree._compiler_layouts(_tree(tree), {definition.name: definition}, search, None,
                                              kernel_tree.Limits(), {"CONFIG_INTEL_TDX_GUEST": True})
        by_reader = kernel_tree.read_layout(definition, "read")
        assert not isinstance(by_cc, str), by_cc
        assert (by_cc[definition.name].fields, by_cc[definition.name].size) == (by_reader.fields, by_reader.size)


def test_the_reader_lays_out_the_version_byte_with_tail_padding():
    layout = kernel_tree.struct_layouts(_tree("unified"), ["tdx_module_args"], kernel_tree.search(_tree("unified"), ()),
                                        (), None, kernel_tree.Limits())["tdx_module_args"]
    assert layout.field("version") == kernel_tree.StructField("version", 104, 1) and layout.size == 112
    assert layout.origin.file.endswith("unified/arch/x86/include/asm/shared/tdx.h")


def test_a_header_that_relies_on_its_includers_for_errno_is_laid_out_by_the_compiler():
    # v5.19's asm/tdx.h returns -ENODEV without including linux/errno.h, as
    # real headers of that era do: every C file has included it before.
    facts = _group(TREES / "v5.19").facts
    assert facts.structs["tdx_module_output"].source == "laid out by cc"
    assert facts.structs["tdx_module_output"].offsets()["r11"] == 40


def test_when_the_compiler_cannot_compile_the_header_the_reader_says_so(tmp_path):
    tree = _copy("v5.19", tmp_path)
    header = tree / "arch/x86/include/asm/tdx.h"
    header.write_text(header.read_text().replace("-ENODEV", "-ENOSUCHERRNO"))
    facts = _group(tree).facts
    output = facts.structs["tdx_module_output"]
    assert output.source.startswith("laid out by tdxproof's struct reader (the C compiler could not compile")
    assert "ENOSUCHERRNO" in output.source and output.offsets()["r11"] == 40
    assert facts.structs["tdx_hypercall_args"].source == "laid out by cc"


@pytest.mark.parametrize("body, message", [
    ("struct inner { u64 a; } in;", "a nested struct or union"),
    ("u64 a : 3;", "a bit-field"),
    ("struct pt_regs regs;", "has type 'struct pt_regs', which tdxproof's struct reader does not lay out"),
    ("u64 a[N];", "has an array length that is not a number"),
])
def test_a_struct_the_reader_cannot_lay_out_is_an_error_naming_it(tmp_path, body, message):
    header = tmp_path / "s.h"
    header.write_text(f"struct tdx_module_args {{\n\tu64 rcx;\n\t{body}\n}};\n")
    definition = kernel_tree._definitions(str(header), ["tdx_module_args"])["tdx_module_args"]
    with pytest.raises(SourceError) as caught:
        kernel_tree.read_layout(definition, "read")
    assert message in caught.value.message and caught.value.origin.line == 3


# --- prototypes --------------------------------------------------------------------------

def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_prototypes_with_their_file_and_line():
    unified = _group(TREES / "unified").facts.prototypes
    header = TREES / "unified/arch/x86/include/asm/shared/tdx.h"
    tdcall = unified["__tdcall"]
    assert tdcall.text() == "u64 __tdcall(u64 fn, struct tdx_module_args *args)"
    assert tdcall.origin.file.endswith("trees/unified/arch/x86/include/asm/shared/tdx.h")
    assert tdcall.origin.line == _line_of(header, "u64 __tdcall(")
    assert tdcall.source == f"declared at {tdcall.origin.file}:{tdcall.origin.line}"
    assert unified["__seamcall_saved_ret"].parameters[1].points_to == "tdx_module_args"
    assert "tdx_hypercall_leaf" not in unified          # a definition, not a declaration
    legacy = _group(TREES / "legacy").facts.prototypes
    module_call = legacy["__tdx_module_call"]
    assert [p.name for p in module_call.parameters] == ["fn", "rcx", "rdx", "r8", "r9", "out"]
    assert module_call.parameters[-1].points_to == "tdx_module_output"
    assert module_call.origin.line == _line_of(TREES / "legacy/arch/x86/include/asm/tdx.h", "u64 __tdx_module_call(")
    assert legacy["__tdx_hypercall_failed"].text() == "void __tdx_hypercall_failed(void)"
    assert legacy["__tdx_hypercall"].parameters[1] == kernel_tree.Parameter("unsigned long", "flags")
    structs = _group(TREES / "legacy").facts.structs
    assert structs["tdx_hypercall_args"].offsets()["rdx"] == 88 and structs["tdx_module_output"].size == 48


# --- push-button check: the verdicts of the shim-based fixtures ----------------------------

CASES = [
    # tree, --kernel-build, --config options, the shim fixture tree, its row configuration
    ("unified", None, {"CONFIG_FRAME_POINTER": True}, "unified", FP_ON),
    ("unified", None, {"CONFIG_FRAME_POINTER": False}, "unified", FP_OFF),
    ("unified", "unified-build", {}, "unified", ALL_ON),
    ("legacy", None, {"CONFIG_FRAME_POINTER": False}, "legacy", FP_OFF),
    ("legacy-built", None, {}, "legacy", FP_ON),
    ("v5.19", None, {"CONFIG_FRAME_POINTER": True}, "legacy-oldest", FP_ON),
    ("v5.19", None, {"CONFIG_FRAME_POINTER": False}, "legacy-oldest", FP_OFF),
]


@pytest.mark.parametrize("tree, build, configs, fixture, row_config", CASES,
                         ids=[f"{c[0]}{'+' + c[1] if c[1] else ''}-{c[4] is FP_ON and 'fp' or ''}" for c in CASES])
def test_push_button_check_in_tree_mode_gives_the_table_verdicts(tree, build, configs, fixture, row_config):
    argv = ["check", *_files(TREES / tree), "--json", "-", "--jobs", "2"]
    argv += [f"--config={name}={'y' if on else 'n'}" for name, on in configs.items()]
    argv += ["--kernel-build", str(TREES / build)] if build else []
    status, out, err = run_in_process(argv, 300)
    assert status in (0, 1), err
    results = {r["function"]: r for r in json.loads(out)["results"]}
    checked = 0
    for row in rows(tree=fixture, firmware="spec"):
        if len(row.paths) != 1 or row.configs != row_config or Path(row.paths[0]).name not in ("tdcall.S", "seamcall.S"):
            continue
        obligations = [o for o in results[row.function]["obligations"] if o["property"] == row.property
                       and (row.detail is None or o["detail"] == row.detail)]
        statuses = {o["status"] for o in obligations}
        verdict = "refuted" if "refuted" in statuses else "unknown" if "unknown" in statuses else \
            "proved" if statuses else "n/a"
        assert verdict == row.expected, (row.id, statuses)
        checked += 1
    assert checked >= 20


def test_a_counterexample_of_tree_mode_replays(tmp_path):
    status, _, _ = run_in_process(["check", str(TREES / "v5.19" / HOST), "--property", "fault-handled",
                                   "--cex-dir", str(tmp_path), "--jobs", "1"], 120)
    assert status == 1
    [cex] = list(tmp_path.glob("*.json"))
    recorded = json.loads(cex.read_text())["front_end"]
    assert recorded["kernel_tree"] == str((TREES / "v5.19").resolve()) and recorded["use_shims"] is False
    assert any(name.endswith("include/generated/asm-offsets.h") for name in json.loads(cex.read_text())["digests"])
    status, out, err = run_in_process(["replay", str(cex)], 120)
    assert status == 0 and "REPRODUCED" in out, err
