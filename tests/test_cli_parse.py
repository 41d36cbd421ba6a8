"""``tdxproof parse``: the SPEC section 8 JSON shape, determinism, text form."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from proofs.cli import main

SOURCE = r"""
#define EXPOSE 0xFFCC
.macro HCALL ret:req
	movl $EXPOSE, %ecx
	.byte 0x66, 0x0f, 0x01, 0xcc
1:	test %rax, %rax
	jnz 2f
.if \ret
	movq %r10, (%rdi)
.endif
	ret
2:	call __tdx_hypercall_failed
	.pushsection __ex_table, "a"
	.long 1b - ., 2b - ., 2
	.popsection
.endm
	.text
	.globl __hcall
	.type __hcall, @function
__hcall:
	HCALL 0
	.size __hcall, .-__hcall
	.globl __hcall_ret
__hcall_ret:
	PUSH %rbx; HCALL 1
"""


def write_source(tmp_path: Path) -> Path:
    path = tmp_path / "hcall.S"
    path.write_text(SOURCE)
    return path


def parse_json(path: Path, capsys) -> dict:
    assert main(["parse", "--no-shims", "--json", str(path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_shape(tmp_path, capsys):
    path = write_source(tmp_path)
    document = parse_json(path, capsys)
    assert [function["name"] for function in document["functions"]] == ["__hcall", "__hcall_ret"]
    hcall = document["functions"][0]
    assert (Path(hcall["file"]).name, hcall["line"]) == ("hcall.S", 20)
    first = hcall["instructions"][0]
    assert first["mnemonic"] == "movl" and first["operands"] == ["$0xffcc", "%ecx"]
    assert (first["line"], Path(first["file"]).name) == (4, "hcall.S")
    assert [(frame["macro"], frame["line"]) for frame in first["expansion"]] == [("HCALL", 21)]
    assert [i["mnemonic"] for i in hcall["instructions"]] == \
        ["movl", "tdcall", "test", "jnz", "ret", "call"]
    ret_variant = document["functions"][1]
    assert ret_variant["instructions"][0]["mnemonic"] == "push"
    assert ret_variant["instructions"][0]["expansion"] == []
    assert "movq" in [i["mnemonic"] for i in ret_variant["instructions"]]
    assert [(e["from"], e["to"], e["kind"]) for e in document["extable"]] == \
        [(".Lnum.1.1", ".Lnum.2.1", "fault"), (".Lnum.1.2", ".Lnum.2.2", "fault")]


def test_json_is_deterministic_across_processes(tmp_path, capsys):
    path = write_source(tmp_path)
    outputs = set()
    for seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-m", "proofs.cli", "parse", "--no-shims", "--json",
                              str(path)], capture_output=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        assert run.returncode == 0, run.stderr
        outputs.add(run.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == parse_json(path, capsys)


def test_text_form(tmp_path, capsys):
    path = write_source(tmp_path)
    assert main(["parse", "--no-shims", str(path)]) == 0
    text = capsys.readouterr().out
    assert "function __hcall (.text) at " in text
    assert "tdcall" in text and "(in expansion of HCALL at " in text
    assert "exception table" in text and ".Lnum.1.1 -> .Lnum.2.1 (fault)" in text


def test_config_and_define_options(tmp_path, capsys):
    path = tmp_path / "cfg.S"
    path.write_text(".globl f\nf:\n#ifdef CONFIG_FRAME_POINTER\n push %rbp\n#endif\n"
                    " movl $VALUE, %eax\n ret\n")
    for config, expected in (("y", ["push", "movl", "ret"]), ("n", ["movl", "ret"])):
        assert main(["parse", "--no-shims", "--json", "-D", "VALUE=7",
                     "--config", f"CONFIG_FRAME_POINTER={config}", str(path)]) == 0
        document = json.loads(capsys.readouterr().out)
        assert [i["mnemonic"] for i in document["functions"][0]["instructions"]] == expected


def test_a_closed_output_pipe_is_not_a_traceback(tmp_path):
    source = tmp_path / "long.S"       # output far beyond a pipe's buffer
    source.write_text(".text\n.globl f\nf:\n" + "\tnop\n" * 5000 + "\tret\n")
    reader = subprocess.Popen([sys.executable, "-m", "proofs.cli", "parse", "--no-shims", "--json",
                               str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.readline()
    reader.stdout.close()          # like `| head -1`
    stderr = reader.stderr.read().decode()
    assert reader.wait() == 0 and "Traceback" not in stderr, stderr
