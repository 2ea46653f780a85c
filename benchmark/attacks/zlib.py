"""Zlib (Carlini et al. 2021): log-likelihood normalized by zlib compressed length.

score(x) = ((1/n) * sum_t l_t) / len(zlib.compress(utf8(x'))), in bytes at the default level,
where x' is the part of x that was scored: the whole text, or, when the context rule cut a
long text (``truncate-head``), the characters its input tokens cover, so that both sides of the
ratio describe the same text. The mean log-likelihood is negative and the length positive, so
higher = member (a text the model finds likelier than its compressibility suggests).
"""

import zlib

import numpy as np

from ..api import Scorer, ScoringInput
from .loss import mean_logprob


def zlib_bytes(text: str) -> int:
    return len(zlib.compress(text.encode("utf-8")))


class Zlib(Scorer):
    name = "zlib"
    title = "Zlib"
    method = "zlib"
    citation = "Carlini et al. 2021, USENIX Security 2021 (arXiv 2012.07805)"
    default_set = "features"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        feats = inputs.features
        lengths = np.array([zlib_bytes(feats.scored_text(i, t)) for i, t in enumerate(inputs.texts)], float)
        return mean_logprob(feats) / lengths
