"""Proofs, reports and the command line.

``cli`` is the entry point; it parses arguments and dispatches to the
front end (``grammar``), the model (``model``) and the prover modules here.
"""
