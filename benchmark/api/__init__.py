"""The scorer interface: what a scorer is, what it is given, what it may ask for.

A submitted scorer writes ``from benchmark.api import Scorer``; built-in attacks
(``benchmark.attacks``) subclass the same class. This package is the one part of membench a
sandboxed submission sees: the jail binds this folder as it is (with ``benchmark/errors.py``,
the error type it raises), so it imports the standard library and numpy only, never torch,
pandas or another part of the harness (a test checks).

Public face: ``Scorer`` (and ``DEFAULT_SETS``), ``ScoringInput``, ``take_rows``,
``ModelAccess``, ``DeniedAccess``, ``CalibrationLabels``, ``CAPABILITIES`` (with
``METHOD_CAPABILITY``, ``FREE_METHODS``, ``undeclared``, ``labels_outside_fit``),
``TokenStats`` (with ``STATS``) and ``group_scores`` (the one check of a ``groups`` scorer's
output).
"""

from .calibration_labels import CalibrationLabels
from .capabilities import CAPABILITIES, FREE_METHODS, METHOD_CAPABILITY, labels_outside_fit, undeclared
from .group_scores import group_scores
from .model_access import DeniedAccess, ModelAccess
from .scorer import DEFAULT_SETS, Scorer
from .scoring_input import ScoringInput, take_rows
from .token_stats import STATS, TokenStats

__all__ = [
    "CAPABILITIES",
    "DEFAULT_SETS",
    "FREE_METHODS",
    "METHOD_CAPABILITY",
    "STATS",
    "CalibrationLabels",
    "DeniedAccess",
    "ModelAccess",
    "Scorer",
    "ScoringInput",
    "TokenStats",
    "group_scores",
    "labels_outside_fit",
    "take_rows",
    "undeclared",
]
