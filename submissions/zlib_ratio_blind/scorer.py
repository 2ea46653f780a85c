"""A text-only scorer: no model access at all (a blind baseline written as a submission).

score(x) = -(zlib-compressed bytes / UTF-8 bytes) of x: texts that compress well (repetitive,
boilerplate) score higher. On a split with no distribution shift it should sit near AUC 0.5;
anything far from that is shift between members and non-members, not membership.
"""

import zlib

import numpy as np

from benchmark.api import Scorer


class ZlibRatioBlind(Scorer):
    name = "zlib_ratio_blind"
    requires = ()

    def __init__(self, level=9):
        self.level = level

    def score(self, inputs):
        out = []
        for text in inputs.texts:
            raw = text.encode("utf-8")
            out.append(-len(zlib.compress(raw, self.level)) / max(len(raw), 1))
        return np.asarray(out, dtype=np.float64)
