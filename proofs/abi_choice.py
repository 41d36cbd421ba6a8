"""The ABI of each function: which contract, which struct layout, and why.

Kernel trees reused wrapper names for other ABIs (``__tdcall`` had the
six-argument legacy ABI before it took ``struct tdx_module_args``) and
changed struct layouts under the same macro names, and one file can mix
eras (a distribution backport keeps the old flags-based
``__tdx_hypercall`` next to the struct-based ``__tdcall_ret``).  So the
contract of a function is chosen per function, from what decides its ABI,
and never from how well the function fares against a contract.

The rules, in order:

1. **Candidates** are the contracts of the function's name (shipped and
   ``--contracts``); ``--abi ERA`` keeps those of ERA, ``--variant
   NAME=VARIANT`` those of VARIANT.  A function with no candidate has no
   contract; if it executes a TDX instruction, a notice says its ABI is
   unknown and how to declare it.  Never the contract of another name.
2. **A prototype decides** (inside a kernel tree: the declaration its C
   callers see, :class:`grammar.declarations.Prototype`): the candidates
   whose arguments are the prototype's (their number, and which one points
   to which struct) remain.  What the assembly does confirms it; where it
   disagrees (it reads an argument the prototype does not declare, or
   writes through another pointer), the disagreement is a *finding*: a
   notice on the result, printed as a ``WARNING:`` line and listed in the
   JSON ``notices``.
3. **Otherwise the code decides**, from its evidence (:mod:`model.evidence`:
   a static pass over the IR, no solver).  A candidate is *contradicted*
   when the code executes no instruction of its kind, uses the entry value
   of an argument register the contract does not pass (moved into another
   register, used as a pointer, tested, returned), reads a stack argument
   the contract does not name, or accesses memory through a pointer
   argument but not through the contract's struct pointer.  Of the
   candidates not contradicted, the one the code *differs* from least is
   chosen: each observation that disagrees counts once (RAX not the leaf
   the contract says, another ECX bitmap, an argument the contract passes
   and the code never looks at, an argument handed on untouched that the
   contract does not pass, no test of the flags argument's bit, no output
   written back or outputs the contract has none of, RAX at return not the
   status or R10, a struct access that is not a field of the layout, no
   version byte in RAX when the layout has one).  A tie is no choice: the
   function gets no contract and a notice names the tied ones (choose with
   ``--variant``).  No candidate left: no contract, and a notice says why
   each was ruled out.
4. **Forced**: with ``--variant``, or ``--abi`` leaving one candidate, the
   user's choice holds even where the code contradicts it (a notice says
   where).  ``--abi`` leaving several lets the code choose among them.
5. **The layout**: the struct's layout from the tree when given, else the
   shipped form of the struct (``model.abi.LAYOUTS``) that the code's
   accesses through the struct pointer agree with best: a register loaded
   from an offset and handed to the TDX instruction, or an output register
   stored at an offset, agrees when the form's field there has that
   register's name; an access that is no field of the form disagrees.
   Ties go to the struct's default (first) form.  The shims' asm-offsets
   agree with this choice (:mod:`grammar.shim_layout`).
6. **The ABI source**, printed with every result: ``declared at
   FILE:LINE`` (a prototype), ``inferred from the file: <what the code
   shows>`` (the code agrees with the chosen contract in every
   observation), ``by name: the only contract of that name`` (the one
   candidate; the observations it differs in follow), or ``forced by
   --variant NAME=VARIANT``/``--abi ERA``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from grammar import ast
from grammar.caches import CACHES
from grammar.declarations import Prototype, StructLayout
from model import abi
from model.evidence import Evidence, gather
from model.executor import DEFAULT_NEVER_RETURNING
from proofs.contracts import Contract, struct_forms
from proofs.settings import Settings


@dataclass(frozen=True)
class Choice:
    """The outcome for one function: its bound contract (or None), why,
    the notices to print with it, and the one-line summary of the report."""

    contract: Contract | None
    source: str
    notices: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class _Fit:
    contract: Contract
    layout: StructLayout
    contradictions: tuple[str, ...]
    differences: tuple[str, ...]


def _upper(registers) -> str:
    return ", ".join(reg.upper() for reg in registers)


def _ordered(registers) -> list[str]:
    return [reg for reg in abi.ARGUMENT_REGISTERS if reg in registers]


# --- layouts ----------------------------------------------------------------------

def _named_facts(contract: Contract, evidence: Evidence) -> list[tuple[int, int, str]]:
    """(offset, size, field name) the code implies through the struct pointer."""
    pointer, facts = contract.struct_pointer, []
    for use in evidence.tdx:
        for register, value in use.registers.items():
            tag = value.tag
            if tag and tag[0] == "load" and tag[1] == pointer and register != "rax":
                facts.append((tag[2], tag[3], register))
        if contract.leaf_version is not None:
            for source in use.rax.sources:
                if source[0] == "field" and source[1] == pointer:
                    facts.append((source[2], 1, contract.leaf_version.field))
    for access in evidence.through(pointer):
        tag = access.value.tag
        if access.kind == "write" and tag and tag[0] == "tdx" and tag[2] != "status":
            facts.append((access.offset, access.size, tag[2]))
    return facts


def _layout_score(layout: StructLayout, facts, accesses) -> tuple[int, int]:
    """(agreements, disagreements) of ``layout`` with the code."""
    agree = disagree = 0
    by_offset = {f.offset: f for f in layout.fields}
    for offset, size, name in facts:
        found = by_offset.get(offset)
        if found is not None and found.name == name and found.size == size:
            agree += 1
        else:
            disagree += 1
    for access in accesses:
        if not any(f.offset <= access.offset and access.offset + access.size <= f.offset + f.size
                   for f in layout.fields):
            disagree += 1
    return agree, disagree


def _layouts(contract: Contract, layouts: Mapping[str, StructLayout] | None) -> tuple[StructLayout, ...]:
    if layouts and contract.struct in layouts:
        return (layouts[contract.struct],)
    forms = [form for form in struct_forms(contract.struct, contract.form)
             if all(form.field(name) is not None for name in contract.needed_fields)]
    return tuple(forms) or struct_forms(contract.struct, contract.form)


def best_layout(contract: Contract, evidence: Evidence,
                layouts: Mapping[str, StructLayout] | None = None) -> tuple[StructLayout, int]:
    """The layout of ``contract``'s struct the code agrees with best (rule 5),
    and how many of the code's accesses disagree with it."""
    facts = _named_facts(contract, evidence)
    accesses = evidence.through(contract.struct_pointer)
    best = None
    for layout in _layouts(contract, layouts):
        agree, disagree = _layout_score(layout, facts, accesses)
        if best is None or agree - disagree > best[1] - best[2]:
            best = (layout, agree, disagree)
    return best[0], best[2]


# --- fitting one contract -------------------------------------------------------------

def _contradictions(contract: Contract, evidence: Evidence) -> list[str]:
    found = []
    kinds = {use.kind for use in evidence.tdx}
    if contract.instruction not in kinds:
        callees = sorted(evidence.calls - set(DEFAULT_NEVER_RETURNING))
        found.append(f"it executes no {contract.instruction.upper()}"
                     + (f" (only {_upper(sorted(kinds))})" if kinds else
                        f" (it calls {', '.join(callees)}, which no input file defines: check the file that "
                        f"does together with it)" if callees else ""))
    extra = _ordered(set(evidence.used) - set(contract.arguments))
    if extra:
        found.append(f"it uses {_upper(extra)}, which the contract does not pass ("
                     + "; ".join(f"{reg.upper()}: {', '.join(sorted(evidence.used[reg]))}" for reg in extra) + ")")
    stack = sorted(set(evidence.stack_arguments) - set(contract.input_stack.values()))
    if stack:
        found.append(f"it reads stack argument{'s' if len(stack) > 1 else ''} {', '.join(map(str, stack))}, "
                     f"which the contract does not pass")
    pointers = evidence.pointers()
    if pointers and contract.struct_pointer not in pointers:
        found.append(f"it accesses memory through {_upper(_ordered(pointers))}, not through "
                     f"{contract.struct_pointer.upper()}, the contract's struct pointer")
    return found


def _returns(evidence: Evidence, what: str) -> bool:
    """Whether RAX at some return depends on the TDX instruction's ``what``
    (``status``, ``r10``): the returns of several paths are joined."""
    return any(any(source[0] == "tdx" and source[2] == what for source in value.sources)
               for value in evidence.returns)


def _stores_outputs(contract: Contract, evidence: Evidence) -> bool:
    return any(access.kind == "write" and access.value.tag and access.value.tag[0] == "tdx"
               for access in evidence.through(contract.struct_pointer))


def _differences(contract: Contract, evidence: Evidence, layout: StructLayout, disagreeing: int) -> list[str]:
    found = []
    uses = [use for use in evidence.tdx if use.kind == contract.instruction]
    rax = [use.rax for use in uses]
    if isinstance(contract.leaf, str):
        if rax and not any(("reg", contract.leaf) in value.sources for value in rax):
            found.append(f"RAX is not the leaf from {contract.leaf.upper()}")
    elif rax and not any(value.constant == contract.leaf for value in rax):
        found.append(f"RAX is not leaf {contract.leaf}")
    bitmap = contract.input_constants.get("rcx")
    seen = {use.registers["rcx"].constant for use in uses} - {None}
    if bitmap is not None and seen and bitmap not in seen:
        found.append(f"ECX is {', '.join(f'{value:#x}' for value in sorted(seen))}, not {bitmap:#x}")
    handed = _ordered(evidence.passed - set(contract.arguments))
    if handed:
        found.append(f"it hands {_upper(handed)} to the {contract.instruction.upper()} untouched, which the "
                     f"contract does not pass")
    unused = _ordered(set(contract.arguments) - evidence.arguments)
    if unused:
        found.append(f"it never uses {_upper(unused)}")
    stack = sorted(set(contract.input_stack.values()) - set(evidence.stack_arguments))
    if stack:
        found.append(f"it never reads stack argument{'s' if len(stack) > 1 else ''} {', '.join(map(str, stack))}")
    when = contract.outputs_when
    if when is not None and not any(reg == when.register and mask & when.mask for reg, mask in evidence.masks):
        found.append(f"it never tests {when.register.upper()} for {when.mask:#x}")
    stores = _stores_outputs(contract, evidence)
    if contract.outputs and not stores:
        found.append(f"it stores no output through {contract.struct_pointer.upper()}")
    elif not contract.outputs and stores:
        found.append(f"it stores outputs through {contract.struct_pointer.upper()}, the contract has none")
    if contract.returns == "r10" and not _returns(evidence, "r10"):
        found.append("RAX at return is not the TDVMCALL's R10")
    if contract.returns == "status" and not _returns(evidence, "status"):
        found.append(f"RAX at return is not the {contract.instruction.upper()} status")
    version = contract.leaf_version and layout.field(contract.leaf_version.field)
    if version and rax and not any(("field", contract.struct_pointer, version.offset) in value.sources
                                   for value in rax):
        found.append(f"RAX does not hold the {version.name} byte")
    if disagreeing:
        found.append(f"{disagreeing} of its accesses through {contract.struct_pointer.upper()} "
                     f"disagree with struct {layout.name}")
    return found


def _fit(contract: Contract, evidence: Evidence, layouts) -> _Fit:
    layout, disagreeing = best_layout(contract, evidence, layouts)
    return _Fit(contract, layout, tuple(_contradictions(contract, evidence)),
                tuple(_differences(contract, evidence, layout, disagreeing)))


# --- what the code shows, in words ------------------------------------------------------

def _roles(contract: Contract) -> str:
    roles = {}
    if isinstance(contract.leaf, str):
        roles[contract.leaf] = "leaf"
    for target, register in contract.input_registers.items():
        roles[register] = f"->{target.upper()}"
    roles[contract.struct_pointer] = "struct"
    if contract.outputs_when is not None:
        roles[contract.outputs_when.register] = "flags"
    count = len(roles) + len(contract.input_stack)
    parts = [f"{reg.upper()}{'' if roles[reg].startswith('->') else ' '}{roles[reg]}" for reg in _ordered(roles)]
    if contract.input_stack:
        pairs = sorted(contract.input_stack.items(), key=lambda item: item[1])
        parts.append("stack " + ", ".join(f"{number}->{reg.upper()}" for reg, number in pairs))
    return f"{count} argument{'s' if count != 1 else ''} ({', '.join(parts)})"


def shown(contract: Contract, evidence: Evidence, layout: StructLayout) -> str:
    """What the code shows that matches ``contract``, in words."""
    parts = [_roles(contract)]
    if not isinstance(contract.leaf, str):
        parts.append(f"leaf {contract.leaf} in RAX")
    if contract.leaf_version and layout.field(contract.leaf_version.field):
        parts.append(f"RAX = leaf | {contract.leaf_version.field} << {contract.leaf_version.shift}")
    bitmap = contract.input_constants.get("rcx")
    if bitmap is not None:
        parts.append(f"ECX = {bitmap:#x}")
    tested = sorted({mask for reg, mask in evidence.masks
                     if contract.outputs_when and reg == contract.outputs_when.register})
    if tested:
        parts.append(f"{contract.outputs_when.register.upper()} tested for {', '.join(f'{m:#x}' for m in tested)}")
    if _stores_outputs(contract, evidence):
        parts.append(f"outputs stored through {contract.struct_pointer.upper()}")
    if contract.returns == "r10" and _returns(evidence, "r10"):
        parts.append("RAX <- R10")
    failed = sorted(evidence.calls & {"__tdx_hypercall_failed"})
    if failed and contract.panic_on_failure:
        parts.append(f"calls {failed[0]}")
    if evidence.followed:
        parts.append(f"through {', '.join(sorted(evidence.followed))}")
    return ", ".join(parts)


def describe_layout(layout: StructLayout) -> str:
    """``struct NAME (SIZE bytes, SOURCE)``, for the report; the fields are
    named where they tell the struct's forms apart.

    >>> describe_layout(abi.LAYOUTS["tdx_hypercall_args_oldest"])
    'struct tdx_hypercall_args (48 bytes, r10..r15, shipped facts (SPEC section 5))'
    >>> describe_layout(abi.LAYOUTS["tdx_module_args_version"])
    'struct tdx_module_args (112 bytes, version byte at 104, shipped facts (SPEC section 5))'
    """
    words = ""
    if any(f.size != 8 for f in layout.fields):
        words = ", " + ", ".join(f"{f.name} byte at {f.offset}" for f in layout.fields if f.size != 8)
    elif len({tuple(f for f in form.fields if f.size == 8) for form in abi.layouts_of(layout.name)}) > 1:
        words = f", {layout.fields[0].name}..{layout.fields[-1].name}"
    return f"struct {layout.name} ({layout.size} bytes{words}, {layout.source})"


def _declare_hint(name: str, evidence: Evidence) -> str:
    """An example ``--contracts`` entry for ``name``, from its evidence."""
    kinds = sorted({use.kind for use in evidence.tdx})
    instruction = kinds[0] if kinds else "INSTRUCTION"
    rax = evidence.tdx[0].rax if evidence.tdx else None
    leaf = f'"{rax.base}"' if rax is not None and rax.base in abi.ARGUMENT_REGISTERS else \
        str(rax.constant) if rax is not None and rax.constant is not None else '"REGISTER"'
    pointers = _ordered(evidence.pointers())
    struct = pointer = None
    if pointers:
        pointer, best = pointers[0], None
        for layout in abi.LAYOUTS.values():
            probe = Contract(name, "legacy", instruction, "rdi", layout.name, pointer, layout=layout)
            agree, disagree = _layout_score(layout, _named_facts(probe, evidence), evidence.through(pointer))
            if best is None or agree - disagree > best:
                best, struct = agree - disagree, layout.name
    era = "unified" if struct == "tdx_module_args" else "legacy"
    return (f'[[wrapper]] name = "{name}", era = "{era}", instruction = "{instruction}", leaf = {leaf}, '
            f'struct = "{struct or "STRUCT"}", struct_pointer = "{pointer or "REGISTER"}", ...')


def _unknown(name: str, evidence: Evidence, why: str, forcing: str) -> str:
    return (f"{name}: ABI unknown ({why}): only the contract-free properties are checked; declare it with "
            f"--contracts FILE holding an entry such as {_declare_hint(name, evidence)} (schema in "
            f"proofs/contracts.py){forcing}")


# --- the choice ---------------------------------------------------------------------------

def _prototype_shape(prototype: Prototype) -> tuple[tuple[str, ...], int, dict[str, str]]:
    """(argument registers, stack arguments, register -> struct it points to)."""
    registers = abi.ARGUMENT_REGISTERS[:len(prototype.parameters)]
    pointers = {register: parameter.points_to for register, parameter in zip(registers, prototype.parameters)
                if parameter.points_to}
    return registers, max(0, len(prototype.parameters) - len(abi.ARGUMENT_REGISTERS)), pointers


def _declared(fits: list[_Fit], prototype: Prototype) -> list[_Fit]:
    registers, stack, pointers = _prototype_shape(prototype)
    return [fit for fit in fits
            if set(fit.contract.arguments) <= set(registers) and len(fit.contract.input_stack) <= stack
            and pointers.get(fit.contract.struct_pointer) == fit.contract.struct]


def _findings(prototype: Prototype, evidence: Evidence) -> list[str]:
    """Where the assembly disagrees with the prototype (rule 2)."""
    registers, stack, pointers = _prototype_shape(prototype)
    found = []
    extra = _ordered(set(evidence.used) - set(registers))
    if extra:
        found.append(f"the assembly uses {_upper(extra)} but the prototype declares "
                     f"{len(prototype.parameters)} parameter{'s' if len(prototype.parameters) != 1 else ''}")
    if len(evidence.stack_arguments) > stack:
        found.append(f"the assembly reads {len(evidence.stack_arguments)} stack argument(s), the prototype "
                     f"passes {stack}")
    written = _ordered({access.base for access in evidence.accesses if access.kind == "write"})
    stray = [reg for reg in written if reg not in pointers]
    if stray:
        declared = _upper(_ordered(pointers)) or "none"
        found.append(f"the assembly writes through {_upper(stray)}, the prototype's pointers are {declared}")
    return found


def _summary(name: str, contract: Contract | None, source: str) -> str:
    if contract is None:
        return f"{name}: no contract ({source})"
    return f"{name}: contract {contract.key}, {source}; {describe_layout(contract.layout)}"


def choose(program: ast.Program, name: str, contracts: tuple[Contract, ...], era: str | None = None,
           variant: str | None = None, prototype: Prototype | None = None,
           layouts: Mapping[str, StructLayout] | None = None) -> Choice:
    """The contract of function ``name`` of ``program`` and why (the rules
    of the module doc); ``era``/``variant``: ``--abi``/``--variant``;
    ``prototype``/``layouts``: what a kernel tree declares."""
    evidence = gather(program, name)
    named = [c for c in contracts if c.name == name]
    candidates = [c for c in named if (era is None or c.era == era) and (variant is None or c.variant == variant)]
    forcing = (f", or force one of its contracts ({', '.join(c.key for c in named)}) with --abi or "
               f"--variant {name}=VARIANT") if named else ""
    if not candidates:
        if not evidence.tdx:
            return Choice(None, "", (), "")
        why = "no contract of that name" if not named else "no contract of that name in the chosen era"
        return Choice(None, "ABI unknown", (_unknown(name, evidence, why, forcing),),
                      _summary(name, None, f"ABI unknown: {why}"))
    fits = [_fit(c, evidence, layouts) for c in candidates]
    notices: list[str] = []
    forced = variant is not None or (era is not None and len(fits) == 1)
    if prototype is not None:
        declared = _declared(fits, prototype)
        notices += [f"{name}: {prototype.source} disagrees with the assembly: {finding}"
                    for finding in _findings(prototype, evidence)]
        if not declared:
            why = f"no contract of that name has the shape {prototype.source} gives"
            return Choice(None, "ABI unknown", tuple(notices) + (_unknown(name, evidence, why, forcing),),
                          _summary(name, None, f"ABI unknown: {why}"))
        fits = declared
    viable = fits if forced or prototype is not None else [fit for fit in fits if not fit.contradictions]
    if not viable:
        reasons: dict[str, list[str]] = {}
        for fit in fits:
            reasons.setdefault(fit.contradictions[0], []).append(fit.contract.key)
        why = "no contract of that name fits its code: " + "; ".join(
            f"{', '.join(keys)}: {reason}" for reason, keys in reasons.items())
        return Choice(None, "ABI unknown", tuple(notices) + (_unknown(name, evidence, why, forcing),),
                      _summary(name, None, "ABI unknown: no contract of that name fits its code"))
    least = min(len(fit.differences) + len(fit.contradictions) for fit in viable)
    best = [fit for fit in viable if len(fit.differences) + len(fit.contradictions) == least]
    if len(best) > 1:
        tied = ", ".join(fit.contract.key for fit in best)
        why = f"{tied} fit the code equally"
        return Choice(None, "ABI ambiguous",
                      tuple(notices) + (f"{name}: ABI ambiguous: {tied} fit its code equally; only the "
                                        f"contract-free properties are checked; choose one with --variant "
                                        f"{name}=VARIANT",), _summary(name, None, f"ABI ambiguous: {why}"))
    fit = best[0]
    code = shown(fit.contract, evidence, fit.layout)
    if prototype is not None:
        source = prototype.source
    elif variant is not None:
        source = f"forced by --variant {name}={variant}"
    elif forced:
        source = f"forced by --abi {era}"
    elif not fit.differences:
        source = f"inferred from the file: {code}"
    elif len(fits) == 1:
        source = f"by name: the only contract of that name (the file differs: {'; '.join(fit.differences)})"
    else:
        source = f"inferred from the file: {code} (the closest fit; it differs: {'; '.join(fit.differences)})"
    if forced and prototype is None and fit.contradictions:
        notices.append(f"{name}: {fit.contract.key} is {source}, but the code contradicts it: "
                       f"{'; '.join(fit.contradictions)}")
    if not evidence.complete:
        notices.append(f"{name}: the static pass over its code gave up on a part of it (a loop, or an "
                       f"instruction it cannot lift): the ABI choice saw only the rest")
    contract = fit.contract.bound(fit.layout, source)
    return Choice(contract, source, tuple(notices), _summary(name, contract, source))


def choose_contract(program: ast.Program, name: str, settings: Settings) -> Choice:
    """The contract of ``name`` (:func:`choose`) under the run's ``--abi``,
    ``--variant``, contracts and kernel tree (:class:`proofs.settings.Settings`)."""
    inputs, key = _choice_key(program, name, settings)
    kept = _CHOICES.get(key)
    if kept is None or any(old is not given for old, given in zip(kept[0], inputs)):
        kept = _CHOICES[key] = (inputs, choose(program, name, settings.contracts, settings.era,
                                               settings.variants.get(name), *inputs[2:]))
    return kept[1]


def remember_choice(program: ast.Program, name: str, settings: Settings, choice: Choice) -> None:
    """Keep ``choice`` as :func:`choose_contract`'s of these inputs: one made
    in another process (of the same program and settings, pickled:
    :mod:`proofs.scheduling` ships a task with its choices)."""
    inputs, key = _choice_key(program, name, settings)
    _CHOICES[key] = (inputs, choice)


def _choice_key(program: ast.Program, name: str, settings: Settings) -> tuple[tuple, tuple]:
    """What a choice is made of, and its key in :data:`_CHOICES`."""
    facts = settings.declarations
    inputs = (program, settings.contracts, facts.prototypes.get(name) if facts is not None else None,
              facts.structs if facts is not None else None)
    return inputs, (*(id(given) for given in inputs), name, settings.era, settings.variants.get(name))


_CHOICES = CACHES.cache("contract choices", 4_096)
"""(program, contracts, prototype, layouts by identity; name, era,
variant) -> the :class:`Choice`, with the inputs it was made of (kept, so
that an identity is not reused while cached): the run's selectors choose
every row's contract in the parent, and the worker checking the row, a
fork of it, finds the choice made."""
