"""Zlib (Carlini et al. 2021): log-likelihood normalized by zlib compressed length.

score(x) = ((1/n) * sum_t l_t) / len(zlib.compress(utf8(x))), in bytes at the default level.
The mean log-likelihood is negative and the length positive, so higher = member (a text the
model finds likelier than its compressibility suggests).
"""

import zlib

import numpy as np

from .base import Scorer, ScoringInput, register


def zlib_bytes(text: str) -> int:
    return len(zlib.compress(text.encode("utf-8")))


@register
class Zlib(Scorer):
    name = "zlib"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        return self.per_sample(
            inputs, lambda s, text: float(np.mean(s["logprob"], dtype=np.float64)) / zlib_bytes(text)
        )
