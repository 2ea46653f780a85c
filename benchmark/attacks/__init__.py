"""Built-in scorers, one file per attack family; all registered by name.

Public face: ``Scorer``, ``ScoringInput``, ``ModelAccess``, ``InProcessAccess``,
``register``, ``get_scorer``, ``scorer_class``, ``scorers``, ``specs`` (command-line scorer
specs and grids: ``specs.expand``), ``DeniedAccess``, ``FEATURE_SCORERS`` (the default set: functions
of the cached token statistics, no extra forward pass) and ``MODEL_SCORERS`` (those that need
more model access: extra forward passes, a reference model or gradients), ``FIT_SCORERS``
(trainable: they learn from a calibration subset's labels in ``fit`` and are scored on the
evaluated rest), ``CalibrationLabels``, ``take_rows``, ``FitBudget``, ``FitMeter``,
``BudgetExceeded`` (the metered, capped budget of ``fit``: ``budget``), ``GROUP_SCORERS`` (the
``groups`` capability: one score per user; ``groups.group_scores`` checks such output),
``REFERENCE_SCORERS`` (attacks of the fine-tuned literature with reference models: LiRA and RMIA
with shadow fine-tunes, ``ModelAccess.shadow_stats``, and EZ-MIA with the base as reference).
"""

from . import (  # noqa: F401
    calibrated,
    groups,
    con_recall,
    dcpdd,
    ezmia,
    gradnorm,
    loss,
    lira,
    lowercase,
    mia_tuner,
    mink,
    neighborhood,
    recall,
    reference,
    rmia,
    specs,
    spv,
    userinference,
    zlib,
)
from .access import InProcessAccess
from .base import (
    CAPABILITIES,
    CalibrationLabels,
    DeniedAccess,
    ModelAccess,
    Scorer,
    ScoringInput,
    get_scorer,
    register,
    scorer_class,
    scorers,
    take_rows,
)
from .budget import BudgetExceeded, FitBudget, FitMeter

FEATURE_SCORERS = ("loss", "zlib", "min_k", "min_k_plus_plus", "dc_pdd")
MODEL_SCORERS = ("lowercase", "reference", "neighborhood", "gradnorm", "recall")
FIT_SCORERS = ("mia_tuner", "mia_tuner_aligned", "con_recall", "calibrated")
GROUP_SCORERS = ("user_inference",)
SPV_SCORERS = ("spv_mia", "spv_reference", "spv_pv")  # SPV-MIA and its two ablations (fine-tuned targets)
REFERENCE_SCORERS = ("lira", "rmia", "ez_mia")  # fine-tuned targets: shadow fine-tunes (LiRA, RMIA), the base (EZ-MIA)

__all__ = [
    "BudgetExceeded",
    "CAPABILITIES",
    "CalibrationLabels",
    "DeniedAccess",
    "FEATURE_SCORERS",
    "FIT_SCORERS",
    "GROUP_SCORERS",
    "SPV_SCORERS",
    "FitBudget",
    "FitMeter",
    "MODEL_SCORERS",
    "REFERENCE_SCORERS",
    "InProcessAccess",
    "ModelAccess",
    "Scorer",
    "ScoringInput",
    "get_scorer",
    "register",
    "scorer_class",
    "scorers",
    "specs",
    "take_rows",
]
