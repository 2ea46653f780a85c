"""GradNorm (Wang et al. 2024, arXiv 2402.17012): training points sit near a minimum of the loss,
so the gradient there is small. The paper is "Pandora's White-Box: Precise Training Data
Detection and Extraction in Large Language Models", the one MIMIR's ``mimir/attacks/gradnorm.py``
cites for gradient-norm attacks on LLM pretraining data; that file is the reference
implementation.

With L(x) = -(1/n) sum_t l_t the mean token loss of x (batch size 1, fp32 loss) and g_P its
gradient with respect to the target's parameter tensor P (every tensor that receives one):

- ``reduction="mean-tensor-linf"`` (default, MIMIR's): score(x) = -(1/|P|) sum_P max |g_P|,
  the mean over parameter tensors of each tensor's L-infinity norm (MIMIR's ``p = inf``;
  ``mean-tensor-l2`` and ``mean-tensor-l1`` are its ``p = 2`` and ``p = 1``);
- ``reduction="global-l2"``: score(x) = -||g||_2 over all parameters jointly (the norm
  membench published before MIMIR's was adopted).

The minus sign makes higher = member. Needs ``gradients``; NaN for texts with fewer than two
tokens. Difference from MIMIR: its gradient is taken in the model's dtype with its own loss
code (the same mean token loss of tokens 2..n); membench computes the loss from fp32 logits.
"""

import numpy as np

from ..api import Scorer, ScoringInput

# How ``ModelAccess.gradient_norms`` reduces the per-parameter gradients to one number.
GRADIENT_REDUCTIONS = ("global-l2", "mean-tensor-linf", "mean-tensor-l2", "mean-tensor-l1")


class GradNorm(Scorer):
    name = "gradnorm"
    title = "GradNorm"
    method = "gradnorm"
    citation = "Wang et al. 2024, Pandora's White-Box (arXiv 2402.17012)"
    default_set = "model"
    requires = ("gradients",)

    def __init__(self, reduction: str = "mean-tensor-linf"):
        if reduction not in GRADIENT_REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(GRADIENT_REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction

    @classmethod
    def method_details(cls, details: dict, params: dict) -> dict[str, str]:
        reduction = details.get("reduction") or params.get("reduction") or "global-l2"  # earlier records: global
        return {"gradient norm": "mean over parameter tensors of each tensor's L-inf norm (MIMIR's)"
                if reduction == "mean-tensor-linf" else f"{reduction} (not MIMIR's mean of per-tensor L-inf norms)"}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        self.details = {"reduction": self.reduction}
        return -np.asarray(inputs.access.gradient_norms(inputs.texts, reduction=self.reduction), dtype=float)
