"""Built-in scorers, one file per attack family, discovered from this folder.

A new attack is one file here: importing this package imports every module of the folder
(``discover``) and registers every ``Scorer`` subclass a module defines with a ``name``
(``registry.register``: a taken name or title is refused). The class attributes say the rest:
``default_set`` places it in a default set, ``requires`` what it needs (see ``benchmark.api``).

Public face: the interface re-exported from ``benchmark.api`` (``Scorer``, ``ScoringInput``,
``ModelAccess``, ``DeniedAccess``, ``CalibrationLabels``, ``CAPABILITIES``, ``take_rows``);
``InProcessAccess`` (the metered model access of built-in scorers); the registry
(``register``, ``get_scorer``, ``scorer_class``, ``scorers``, ``default_set``, ``listing``);
``specs`` (command-line specs, grids and ``canonical_params``, the pydantic check of a
scorer's parameters); the fit budget (``FitBudget``, ``FitMeter``, ``BudgetExceeded``); and
the default sets as views of the registry: ``FEATURE_SCORERS`` (functions of the cached token
statistics, no extra forward pass: `membench run`'s default), ``MODEL_SCORERS`` (more model
access: extra forward passes, a reference model or gradients), ``FIT_SCORERS`` (trainable on a
calibration subset's labels), ``GROUP_SCORERS`` (one score per user) and ``SPV_SCORERS``
(attacks on fine-tuned targets).
"""

from __future__ import annotations

import importlib
import pkgutil

from ..api import CAPABILITIES, CalibrationLabels, DeniedAccess, ModelAccess, Scorer, ScoringInput, take_rows
from . import specs
from .access import InProcessAccess
from .fit_budget import BudgetExceeded, FitBudget, FitMeter
from .registry import default_set, get_scorer, listing, register, scorer_class, scorers
from .specs import canonical_params


def discover() -> list[str]:
    """Import every module of this package's folders (``__path__``) and register the scorers
    they define; returns the names registered. Run once when the package is imported; a
    folder appended to ``__path__`` (a test's temporary attacks folder) is searched too."""
    found = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in list(vars(module).values()):
            if (isinstance(value, type) and issubclass(value, Scorer) and value.__module__ == module.__name__
                    and value.name):
                register(value)
                found.append(value.name)
    return found


discover()

FEATURE_SCORERS = default_set("features")
MODEL_SCORERS = default_set("model")
FIT_SCORERS = default_set("fit")
GROUP_SCORERS = default_set("groups")
SPV_SCORERS = default_set("finetune")

__all__ = [
    "BudgetExceeded",
    "CAPABILITIES",
    "CalibrationLabels",
    "DeniedAccess",
    "FEATURE_SCORERS",
    "FIT_SCORERS",
    "GROUP_SCORERS",
    "MODEL_SCORERS",
    "SPV_SCORERS",
    "FitBudget",
    "FitMeter",
    "InProcessAccess",
    "ModelAccess",
    "Scorer",
    "ScoringInput",
    "canonical_params",
    "default_set",
    "discover",
    "get_scorer",
    "listing",
    "register",
    "scorer_class",
    "scorers",
    "specs",
    "take_rows",
]
