"""The sample generator's import path (`from orchestration.generate import generate`).

The implementation lives in the `orchestration.generator` package.
"""

from orchestration.generator import FAULTS, generate

__all__ = ["FAULTS", "generate"]
