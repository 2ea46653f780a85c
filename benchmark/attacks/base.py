"""The scorer interface and the registry of built-in scorers.

A scorer turns what the harness measured about each text into one float per sample,
higher = more likely member. It never sees labels. Parameters go in the constructor
(scikit-learn style); ``score`` works on plain arrays.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import unknown
from ..hashing import sha256_file

CAPABILITIES = ("features", "reference", "logprobs", "generate", "gradients", "fit", "groups")


class ModelAccess:
    """Capabilities beyond ``features``, granted by the harness and metered.

    A scorer never receives the raw model. It receives an object with this interface, on
    which only the capabilities it declared in ``requires`` work; every call is counted in
    ``usage`` (forward tokens, generated tokens, gradient tokens) and recorded in the result.
    Implementations: in-process for built-in attacks (``benchmark.attacks.InProcessAccess``),
    a proxy over a pipe for sandboxed submissions. An implementation may also offer
    ``vocab_size`` and ``tokenizer_tag`` (the target tokenizer's size and hash); DC-PDD uses
    them when present and falls back to the largest token id seen otherwise.
    """

    usage: dict

    def logprobs(self, texts: list[str]):
        """``logprobs``: per-token statistics of new texts on the target (a TokenStats)."""
        raise NotImplementedError

    def reference(self, texts: list[str]):
        """``reference``: per-token statistics of texts on the declared reference model."""
        raise NotImplementedError

    def gradient_norms(self, texts: list[str]):
        """``gradients``: per text, the L2 norm of the gradient of the mean token loss with
        respect to the target's parameters (a float array)."""
        raise NotImplementedError

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        """``generate``: greedy continuations from the target."""
        raise NotImplementedError

    # Added for ReCaLL and DC-PDD (same metering; same capability rules):

    def conditional_logprobs(self, prefix: str, texts: list[str]):
        """``logprobs``: per-token statistics of each text's scored tokens (the same tokens as
        ``logprobs(texts)`` scores) when the text follows ``prefix`` in the context. The prefix
        is cut from its left when prefix + text exceeds the context (a TokenStats)."""
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Always granted: the target tokenizer's ids for each text (special tokens included,
        cut to the context), e.g. to count token frequencies in a declared corpus."""
        raise NotImplementedError


@dataclass
class ScoringInput:
    """What a scorer may see: opaque ids, texts, the cached token statistics and, for the
    capabilities it declared, a ``ModelAccess``. Never labels."""

    uids: list[str]
    texts: list[str]
    features: object | None = None  # benchmark.features.TokenStats
    access: ModelAccess | None = None
    # A declared pool of non-member texts disjoint from ``texts`` (ReCaLL prefixes, DC-PDD's
    # frequency corpus, neighbour vocabularies); None when the run declares none.
    pool: list[str] | None = None
    # Stored neighbours per uid (e.g. MIMIR's), when the split carries them.
    neighbors: dict[str, list[str]] | None = None


class Scorer:
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    requires: ClassVar[tuple[str, ...]] = ("features",)
    needs_pool: ClassVar[bool] = False  # True: refuses to run without ScoringInput.pool
    # Filled by ``score`` with facts worth recording (e.g. where neighbours came from).
    details: dict

    def params(self) -> dict:
        """Constructor parameters, for provenance and result keys."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def code_hash(cls) -> str:
        return sha256_file(inspect.getsourcefile(cls))

    def per_sample(self, inputs: ScoringInput, fn) -> np.ndarray:
        """Apply ``fn(stats_of_sample, text)`` to each sample; NaN where nothing was scored."""
        feats = inputs.features
        out = np.full(len(inputs.uids), np.nan, dtype=np.float64)
        for i, text in enumerate(inputs.texts):
            s = feats.sample(i)
            if len(s["logprob"]):
                out[i] = fn(s, text)
        return out


_SCORERS: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator adding a scorer to the registry; a duplicate name is refused."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _SCORERS:
        raise ValueError(f"duplicate scorer name {cls.name!r}")
    _SCORERS[cls.name] = cls
    return cls


def scorers() -> dict[str, type[Scorer]]:
    return dict(_SCORERS)


def get_scorer(name: str, **params) -> Scorer:
    if name not in _SCORERS:
        raise unknown("scorer", name, _SCORERS)
    return _SCORERS[name](**params)
