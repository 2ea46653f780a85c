"""Reference model (Carlini et al. 2021; Mireshghallah et al. 2022): likelihood calibrated by
a second model that did not see the members.

score(x) = mean_t l_t^target(x) - mean_t l_t^ref(x), each mean over the scored tokens of x
under that model's own tokenizer. The reference absorbs how predictable the text is in
general; what remains is what the target learned about x in particular: higher = member.
The reference is any registry target or local model directory (``--reference``); its
features are computed and cached exactly like the target's. NaN when either side has no
scored token.
"""

import numpy as np

from .base import Scorer, ScoringInput, register
from .lowercase import mean_logprob


@register
class Reference(Scorer):
    name = "reference"
    requires = ("features", "reference")

    def score(self, inputs: ScoringInput) -> np.ndarray:
        ref = inputs.access.reference(inputs.texts)
        return mean_logprob(inputs.features) - mean_logprob(ref)
