"""Built-in scorers, one file per attack family; all registered by name.

Public face: ``Scorer``, ``ScoringInput``, ``register``, ``get_scorer``, ``scorers``,
``FEATURE_SCORERS`` (the default set: functions of the cached token statistics).
"""

from . import loss, mink, zlib  # noqa: F401  (registration)
from .base import CAPABILITIES, Scorer, ScoringInput, get_scorer, register, scorers

FEATURE_SCORERS = ("loss", "zlib", "min_k", "min_k_plus_plus")

__all__ = [
    "CAPABILITIES",
    "FEATURE_SCORERS",
    "Scorer",
    "ScoringInput",
    "get_scorer",
    "register",
    "scorers",
]
