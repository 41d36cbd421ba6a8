"""Work a ``check`` shares between rows, and the solver's scopes.

The lifted step of an instruction and the contract choice of a function
are made once and found again (by every row, and by a worker forked after
the parent made them) without changing what they are; a counterexample's
entry bytes are read off the model's value of the whole memory array and
agree with evaluating each byte; queries asked in one solver scope see
the scope's constraints and none of each other's; a group of refuted
obligations whose first witness already violates all of them shares it
without a query.
"""
from __future__ import annotations

from pathlib import Path

import z3

from grammar.frontend import FrontEndOptions, load_program
from grammar.parser import parse_instruction
from grammar.source import Origin
from model import lift
from model.executor import Solver
from model.outcomes import Verdict
from proofs.abi_choice import choose, choose_contract
from proofs.contracts import load_contracts
from proofs.counterexample import _byte_reader
from proofs.obligations import Obligation, _jointly_violated
from proofs.settings import Settings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TDCALL = FIXTURES / "unified" / "arch" / "x86" / "coco" / "tdx" / "tdcall.S"


def test_a_lifted_step_is_made_once_and_is_what_lifting_makes():
    instruction = parse_instruction("addq $3, 8(%rdi)", Origin("a.S", 1), {})
    first = lift.lift(instruction)
    assert lift.lift(instruction) is first
    assert lift.lift(parse_instruction("addq $3, 8(%rdi)", Origin("a.S", 1), {})) is first
    assert first == lift._lift(instruction)
    other = lift.lift(parse_instruction("addq $3, 8(%rdi)", Origin("a.S", 2), {}))
    assert other is not first and other == lift._lift(parse_instruction("addq $3, 8(%rdi)", Origin("a.S", 2), {}))


def test_a_contract_choice_is_found_again_for_the_same_inputs_only():
    settings = Settings(contracts=load_contracts())
    program = load_program([str(TDCALL)], FrontEndOptions())
    name = program.c_functions[0].name
    chosen = choose_contract(program, name, settings)
    assert chosen == choose(program, name, settings.contracts)
    assert choose_contract(program, name, Settings(contracts=settings.contracts)) is chosen
    again = load_program([str(TDCALL)], FrontEndOptions())            # an equal program, another object
    assert choose_contract(again, name, settings) is not chosen
    assert choose_contract(again, name, settings) == chosen
    assert choose_contract(program, name, Settings()).contract is None   # no contracts: none chosen


def _model(*constraints) -> z3.ModelRef:
    solver = z3.Solver()
    solver.add(*constraints)
    assert solver.check() == z3.sat
    return solver.model()


def test_entry_bytes_read_off_the_array_agree_with_each_byte_evaluated():
    memory = z3.Array("entry_memory", z3.BitVecSort(64), z3.BitVecSort(8))
    pointer = z3.BitVec("p", 64)
    model = _model(z3.Select(memory, pointer) == 0x5a, z3.Select(memory, pointer + 1) == 0xa5,
                   z3.Select(memory, 0x1002) == 7, z3.Select(memory, 0x2000) != 0, pointer == 0x1000)
    read = _byte_reader(model, memory)
    for address in (0x1000, 0x1001, 0x1002, 0x2000, 0xfff, 2**64 - 1):
        evaluated = model.eval(z3.Select(memory, z3.BitVecVal(address, 64)), model_completion=True).as_long()
        assert read(address) == evaluated
    assert (read(0x1000), read(0x1001), read(0x1002)) == (0x5a, 0xa5, 7)


def test_an_array_value_of_another_shape_is_evaluated_byte_by_byte():
    memory = z3.Array("entry_memory", z3.BitVecSort(64), z3.BitVecSort(8))
    address = z3.BitVec("a", 64)
    shifted = z3.Lambda([address], z3.Select(memory, address + 1))    # not stores over a constant array
    model = _model(z3.Select(memory, 9) == 3)
    assert _byte_reader(model, shifted)(8) == 3


def test_queries_in_a_scope_see_its_constraints_and_not_each_others():
    x = z3.BitVec("x", 8)
    solver = Solver(10.0, (z3.UGT(x, 5),))
    with solver.scope((z3.ULT(x, 9),)) as ask:
        assert ask(x == 3)[0] is Verdict.UNSAT                      # the precondition holds in the scope
        assert ask(x == 9)[0] is Verdict.UNSAT                      # and so does the scope's constraint
        answer, model = ask(x == 7)
        assert answer is Verdict.SAT and model.eval(x).as_long() == 7
        answer, model = ask()                                       # x == 7 was the last query's only
        assert answer is Verdict.SAT and 5 < model.eval(x).as_long() < 9
    assert solver.check((x == 200,))[0] is Verdict.SAT               # the scope is gone


def test_a_group_shares_its_first_witness_when_it_violates_every_member():
    x = z3.BitVec("x", 8)
    violated = {"above": z3.UGT(x, 5), "below": z3.ULT(x, 10)}
    members = [Obligation("p", detail) for detail in violated]

    def violation(group):
        return z3.And([violated[o.detail] for o in group])

    solver = Solver(10.0)
    with solver.scope(()) as query:
        asked = []

        def ask(*more):
            asked.append(more)
            return query(*more)

        for obligation in members:
            obligation.witness = (_model(x == 7), None, None, (), "")
        group, model = _jointly_violated(members, violation, ask)
        assert group == members and model is members[0].witness[0] and asked == []
        members[0].witness = (_model(x == 12), None, None, (), "")   # violates "above" only
        group, model = _jointly_violated(members, violation, ask)
        assert group == members and len(asked) == 1
        assert 5 < model.eval(x).as_long() < 10
