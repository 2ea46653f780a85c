"""GradNorm (Wang et al. 2024, "Detecting training data of LLMs via gradient norms"):
training points sit near a minimum of the loss, so the gradient there is small.

score(x) = -|| grad_theta L(x) ||_2, with L(x) = -(1/n) sum_t l_t the mean token loss of x
(batch size 1, fp32 loss) and the norm taken over all target parameters jointly. The minus
sign makes higher = member. Needs ``gradients``; NaN for texts with fewer than two tokens.
"""

import numpy as np

from ..api import Scorer, ScoringInput


class GradNorm(Scorer):
    name = "gradnorm"
    title = "GradNorm"
    method = "gradnorm"
    citation = "Wang et al. 2024, Pandora's White-Box (arXiv 2402.17012)"
    default_set = "model"
    requires = ("gradients",)

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return -np.asarray(inputs.access.gradient_norms(inputs.texts), dtype=float)
