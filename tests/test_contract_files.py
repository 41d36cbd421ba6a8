"""Contract files: read completely at load time, or a located error.

The corpus (``tests/bad_inputs/corpus/contracts.toml``) holds the
realistic mistakes one by one; here a fuzz test puts random values (of every
TOML type) at random fields of a real contract and checks that loading it
either fails with a :class:`SourceError` located in that file, or gives a
contract everything downstream can use: its properties, their details, its
assumptions and struct (what a worker would compute).
"""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from grammar.source import SourceError
from model import abi
from proofs.contracts import SHIPPED, load_contracts, struct_forms
from proofs.properties import PROPERTIES, applicable
from toml_writer import VALUES, value_source

UNIFIED = (SHIPPED / "unified.toml").read_text(encoding="utf-8")
LEGACY = (SHIPPED / "legacy.toml").read_text(encoding="utf-8")
FIELDS = ("name", "era", "variant", "instruction", "leaf", "struct", "struct_pointer", "struct_may_be_null",
          "inputs", "input_registers", "input_constants", "input_stack", "outputs", "outputs_when",
          "module_outputs", "returns", "failure_codes", "scrub", "panic_on_failure", "leaf_version")
NAMES = st.sampled_from(("rdi", "rsi", "rcx", "rax", "rsp", "r12", "rcx", "tdx_module_args", "tdx_hypercall_args",
                         "seamcall", "tdcall", "unified", "legacy", "call", "bitmap", "worst-case", "r10", "status",
                         "version", "tdx_hypercall_args_oldest"))
ANY = st.one_of(VALUES, NAMES, st.lists(NAMES, max_size=4),
                st.dictionaries(NAMES, st.one_of(NAMES, st.integers(-1, 2 ** 65)), max_size=3),
                st.sampled_from((0, 1, 0xFFCC, 2 ** 64 - 1, 2 ** 64, -1, True)))


def _use(contract) -> None:
    """What the prover and its workers compute from a contract (bound to each layout it allows)."""
    for layout in struct_forms(contract.struct, contract.form):
        _use_bound(contract.bound(layout, "test"))


def _use_bound(contract) -> None:
    assert contract.struct_size == contract.layout.size
    assert all(contract.offsets[name] + contract.field_size(name) <= contract.struct_size
               for name in contract.needed_fields if name in contract.offsets)
    assert contract.key and contract.assumption()
    for pid in applicable(contract):
        PROPERTIES[pid].details(contract)
    for register in (contract.struct_pointer, *contract.input_registers.values()):
        assert register in abi.ARGUMENT_REGISTERS
    assert all(0 <= value < 2 ** 64 for value in contract.input_constants.values())
    assert all(1 <= number <= 64 for number in contract.input_stack.values())
    assert isinstance(contract.leaf, str) or 0 <= contract.leaf < 2 ** 64


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_field_values_load_completely_or_are_located_errors(tmp_path_factory, data):
    text = data.draw(st.sampled_from((UNIFIED, LEGACY)))
    entries = [m.start() for m in re.finditer(r"^\[\[wrapper\]\]\n", text, re.M)]
    start = data.draw(st.sampled_from(entries))
    body_end = text.find("\n\n", start)
    body = text[start:body_end if body_end > 0 else len(text)]
    field = data.draw(st.sampled_from(FIELDS + ("colour",)))
    value = data.draw(value_source(data.draw(ANY)))
    lines = [line for line in body.split("\n") if not line.startswith(f"{field} =")]
    if data.draw(st.booleans()) or field == "colour":
        lines.append(f"{field} = {value}")
    path = tmp_path_factory.mktemp("contracts") / "c.toml"
    path.write_text("\n".join(lines).replace("[[wrapper]]", "[[wrapper]]\nvariant = \"fuzz\"", 1)
                    if "variant" not in body and field != "variant" else "\n".join(lines), encoding="utf-8")
    try:
        contracts = load_contracts((str(path),))
    except SourceError as error:
        assert error.origin is None or error.origin.file == str(path), error.render()
        assert error.origin is not None or "cannot read" in error.message
        return
    for contract in contracts:
        _use(contract)


def test_the_shipped_contracts_load_with_their_places():
    contracts = load_contracts()
    assert len(contracts) == 20 and len({c.key for c in contracts}) == 20
    first = next(c for c in contracts if c.key == "__seamcall [unified]")
    assert first.origin.file.endswith("unified.toml") and first.origin.line == 10
    assert first.inputs == ("rcx", "rdx", "r8", "r9", "r10", "r11") and first.failure_codes


def test_a_file_named_twice_is_read_once(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[wrapper]]\nname = "f"\nera = "unified"\ninstruction = "tdcall"\nleaf = "rdi"\n'
                    'struct = "tdx_module_args"\nstruct_pointer = "rsi"\n')
    contracts = load_contracts((str(path), str(tmp_path / "." / "c.toml"), str(SHIPPED / "unified.toml")))
    assert [c.key for c in contracts].count("f [unified]") == 1 and len(contracts) == 21


def test_a_user_contract_may_not_shadow_a_shipped_one(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('# mine\n[[wrapper]]\nname = "__tdcall"\nera = "unified"\ninstruction = "tdcall"\n'
                    'leaf = "rdi"\nstruct = "tdx_module_args"\nstruct_pointer = "rsi"\n')
    with pytest.raises(SourceError) as raised:
        load_contracts((str(path),))
    assert raised.value.render().startswith(f"{path}:2:1: error: contract '__tdcall' [unified]: defined twice "
                                            f"(first at {SHIPPED / 'unified.toml'}:")
