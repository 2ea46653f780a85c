"""``Scorer``: the class every scorer subclasses, built-in attack or submission.

A scorer turns what the harness measured about each text into one float per sample (or per
group, with ``groups``), higher = more likely member. It never sees labels outside ``fit``.
Parameters go in the constructor (scikit-learn style); ``score`` works on plain arrays.

Class attributes (what the registry, the records and the site read):

- ``name``: registry id (``spv_pv``); a command line names a setting ``name:key=value``;
- ``title``: the display name a reader sees, unique per class, telling an ablation from its
  method ("SPV-MIA: probabilistic variation only");
- ``method``: id of the method the class belongs to (its own name for a full method; the full
  method's name for an ablation or variant);
- ``citation``: short citation with a checkable id ("Fu et al. 2024 (arXiv 2311.06062)");
- ``default_set``: which default set it joins (``DEFAULT_SETS``), or None;
- ``requires`` (capabilities), ``needs_pool``, ``version``, ``default_calibration``.

The class docstring is the scorer's exact definition.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import ClassVar

import numpy as np

from .calibration_labels import CalibrationLabels
from .scoring_input import ScoringInput

# The default sets a built-in scorer may join, in the order `membench run --help` lists them:
# features (cached statistics only: `membench run`'s default), model (more model access: extra
# forward passes, a reference model, gradients), fit (trainable on a calibration subset), groups
# (one score per user), finetune (attacks on fine-tuned targets).
DEFAULT_SETS = ("features", "model", "fit", "groups", "finetune")


class Scorer:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    method: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    default_set: ClassVar[str | None] = None
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("features",)
    needs_pool: ClassVar[bool] = False  # True: refuses to run without ScoringInput.pool
    # With ``fit`` in ``requires``: the calibration subset used when the run names none.
    default_calibration: ClassVar[str] = "cal10"
    # Filled by ``score`` with facts worth recording (e.g. where neighbours came from).
    details: dict

    def params(self) -> dict:
        """Constructor parameters, for provenance and result keys."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    def fit(self, calibration: ScoringInput, labels: CalibrationLabels) -> None:
        """With ``fit`` in ``requires``: learn from a calibration subset before ``score``.

        ``calibration`` holds the calibration rows only (uids, texts, features, the metered
        access); ``labels`` their labels (1 = member), readable while ``fit`` runs. ``score`` is
        then called on the evaluated rest alone. Model use inside ``fit`` counts against the
        run's fit budget."""
        raise NotImplementedError

    def operating_point(self) -> dict | None:
        """A fitted decision rule, when the scorer has one: ``{"threshold": t, ...}`` meaning
        "member when score >= t", plus what it reports about its choice on the calibration
        subset (e.g. ``target_fpr``, ``calibration: {tpr, fpr}``). The harness records it with
        the TPR and FPR it reaches on the evaluated rest. None (default): no operating point."""
        return None

    def score(self, inputs: ScoringInput) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def code_hash(cls) -> str:
        """SHA-256 of the file that defines the class (part of a record's provenance)."""
        with open(inspect.getsourcefile(cls), "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    def per_sample(self, inputs: ScoringInput, fn) -> np.ndarray:
        """Apply ``fn(stats_of_sample, text)`` to each sample; NaN where nothing was scored."""
        feats = inputs.features
        out = np.full(len(inputs.uids), np.nan, dtype=np.float64)
        for i, text in enumerate(inputs.texts):
            s = feats.sample(i)
            if len(s["logprob"]):
                out[i] = fn(s, text)
        return out
