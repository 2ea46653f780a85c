"""Built-in scorers, one file per attack family; all registered by name.

Public face: ``Scorer``, ``ScoringInput``, ``ModelAccess``, ``InProcessAccess``,
``register``, ``get_scorer``, ``scorer_class``, ``scorers``, ``specs`` (command-line scorer
specs and grids: ``specs.expand``), ``DeniedAccess``, ``FEATURE_SCORERS`` (the default set: functions
of the cached token statistics, no extra forward pass) and ``MODEL_SCORERS`` (those that need
more model access: extra forward passes, a reference model or gradients).
"""

from . import dcpdd, gradnorm, loss, lowercase, mink, neighborhood, recall, reference, specs, zlib  # noqa: F401
from .access import InProcessAccess
from .base import (
    CAPABILITIES,
    DeniedAccess,
    ModelAccess,
    Scorer,
    ScoringInput,
    get_scorer,
    register,
    scorer_class,
    scorers,
)

FEATURE_SCORERS = ("loss", "zlib", "min_k", "min_k_plus_plus", "dc_pdd")
MODEL_SCORERS = ("lowercase", "reference", "neighborhood", "gradnorm", "recall")

__all__ = [
    "CAPABILITIES",
    "DeniedAccess",
    "FEATURE_SCORERS",
    "MODEL_SCORERS",
    "InProcessAccess",
    "ModelAccess",
    "Scorer",
    "ScoringInput",
    "get_scorer",
    "register",
    "scorer_class",
    "scorers",
    "specs",
]
