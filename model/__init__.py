"""The model: what a parsed program *does*.

``abi`` (ABI facts as data) -> ``ir`` (immutable, width-checked nodes) ->
``lift`` (AT&T instruction -> IR) -> ``concrete`` / ``symbolic`` (the two
interpreters of the same IR) -> ``tdx`` and ``extable`` (SEAMCALL/TDCALL and
the kernel exception table) -> ``executor`` (paths of a function).
``native`` runs code on the real CPU for co-simulation and replay.
"""
