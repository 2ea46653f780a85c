"""Reference model (Carlini et al. 2021; Mireshghallah et al. 2022): likelihood calibrated by
a second model that did not see the members.

score(x) = mean_t l_t^target(x') - mean_t l_t^ref(x'), each mean over the scored tokens of x'
under that model's own tokenizer, where x' is the same text on both sides: all of x when both
models scored all of it, else the part both scored (the first c characters, c the smaller of
the two covered lengths; each side keeps its tokens that end within those c characters, so
the two spans agree up to the token boundary nearest c). The reference absorbs how predictable
the text is in general; what remains is what the target learned about x in particular:
higher = member. The reference is any registry target or local model directory
(``--reference``); its features are computed and cached exactly like the target's. NaN when
either side has no scored token. ``details.common_span_texts`` counts the texts cut to a
common span.
"""

import numpy as np

from ..api import Scorer, ScoringInput
from .loss import mean_logprob, sample_index


def covered_chars(stats, texts) -> np.ndarray | None:
    """Per text, the characters its scored tokens cover; None without character offsets."""
    if stats.text_chars is None or stats.char_end is None:
        return None
    full = np.array([len(t) for t in texts], np.int64)
    return np.where(stats.text_chars >= 0, stats.text_chars, full)


class Reference(Scorer):
    name = "reference"
    title = "Reference model"
    method = "reference"
    citation = "Carlini et al. 2021, USENIX Security 2021 (arXiv 2012.07805)"
    default_set = "model"
    requires = ("features", "reference")

    def score(self, inputs: ScoringInput) -> np.ndarray:
        target, ref = inputs.features, inputs.access.reference(inputs.texts)
        a, b = covered_chars(target, inputs.texts), covered_chars(ref, inputs.texts)
        if a is None or b is None:
            self.details = {"common_span_texts": 0}
            return mean_logprob(target) - mean_logprob(ref)
        limit = np.minimum(a, b)
        self.details = {"common_span_texts": int((a != b).sum())}
        keep_t = target.char_end <= limit[sample_index(target)]
        keep_r = ref.char_end <= limit[sample_index(ref)]
        return mean_logprob(target, keep_t) - mean_logprob(ref, keep_r)
