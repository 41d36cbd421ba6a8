"""Proofs, reports and the command line.

``cli`` is the entry point; it parses arguments and dispatches to the
front end (``grammar``), the model (``model``) and the prover modules here.
"""

TOOL = "tdxproof"
VERSION = "0.1.0"
"""The tool's name and version as every report gives them (and the
package's version: ``pyproject.toml`` reads it from here)."""
