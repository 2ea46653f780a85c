"""SaMIA (Kaneko et al. 2024, "Sampling-based pseudo-likelihood for membership inference
attacks", arXiv 2404.11262): how much of the true suffix the model's own samples reproduce.

For a text x with W = len(x.split()) words, the prompt is its first c = floor(r W) words
(r = ``prefix_ratio`` = 0.5) joined by single spaces. The target samples K = 10 continuations
(multinomial sampling, temperature 1, top-k 50, top-p 1) until end-of-sequence or ``max_length``
= 1024 tokens in all (prompt included; capped by the target's context). With

    words(s)  = the non-empty items of s.split(" "),
    suffix(s) = words(s)[round(W r):],
    ROUGE-1(cand, ref) = sum_g min(count_cand(g), count_ref(g)) / len(ref)   (recall; 0 if either is empty),

the reference is suffix(x) and the k-th candidate is suffix(prompt + continuation_k) (the
authors decode prompt and continuation together and cut the same number of words), and

    samia(x)      = (1/K) sum_k ROUGE-1(cand_k, ref),
    samia_zlib(x) = (1/K) sum_k ROUGE-1(cand_k, ref) * len(zlib(" ".join(cand_k))),

the zlib variant weighting each sample by the zlib-compressed UTF-8 byte length of its candidate
suffix (the authors' ``--zlib``). Higher = member: a memorized suffix comes back in the samples.

Reference implementation: github.com/nlp-titech/samia (``src/sampling.py``, ``src/eval_samia.py``);
the test transcribes ``get_suffix``, ``rouge_n`` and the zlib product. Differences: (1) the
authors cut round(L r) words where L is the nominal WikiMIA length of the split (32, 64, 128,
256); membench has no nominal length and uses the text's own word count W. (2) Their samples
come from an unseeded global RNG; here they are seeded (``seed``), deterministic for a fixed
seed and independent of the other texts (see ``ModelAccess.sample``), the K samples of a text
drawn in one batched ``generate`` call (theirs: K calls; the same distribution, another random
stream). (3) The decoded prompt is the prompt string itself (a tokenizer round trip can differ on
rare byte sequences). The signal needs a target that regenerates its members' words: on the demo
target (members' tokens average p = 0.03) temperature-1 samples do not come back verbatim. A text of
fewer than two words, or whose reference suffix is empty, is NaN. Cost (recorded in the usage):
K prompts forwarded and up to K * (max_length - prompt tokens) generated tokens per text.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np

from ..api import Scorer, ScoringInput


def words(text: str) -> list[str]:
    return [w for w in text.split(" ") if w != ""]


def rouge_1(candidate: list[str], reference: list[str]) -> float:
    if not candidate or not reference:
        return 0.0
    overlap = Counter(candidate) & Counter(reference)
    return sum(overlap.values()) / len(reference)


def split_text(text: str, prefix_ratio: float) -> tuple[str, int]:
    """(prompt, number of words cut from the suffixes)."""
    all_words = text.split()
    prompt = " ".join(all_words[: int(len(all_words) * prefix_ratio)])
    return prompt, round(len(all_words) * prefix_ratio)


class _SaMIABase(Scorer):
    method = "samia"
    citation = "Kaneko et al. 2024 (arXiv 2404.11262)"
    default_set = "model"
    requires = ("features", "generate")
    weight_by_zlib = False

    def __init__(self, num_samples: int = 10, prefix_ratio: float = 0.5, temperature: float = 1.0, top_k: int = 50,
                 top_p: float = 1.0, max_length: int = 1024, seed: int = 0):
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}")
        if not 0 < prefix_ratio < 1:
            raise ValueError(f"prefix_ratio must be in (0, 1), got {prefix_ratio}")
        if not temperature > 0 or not 0 < top_p <= 1 or top_k < 0 or max_length < 2:
            raise ValueError("temperature > 0, top_p in (0, 1], top_k >= 0 and max_length >= 2 are required")
        self.num_samples, self.prefix_ratio = int(num_samples), float(prefix_ratio)
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        self.max_length, self.seed = int(max_length), int(seed)

    def sample_score(self, candidate: list[str], reference: list[str]) -> float:
        r = rouge_1(candidate, reference)
        return r * len(zlib.compress(" ".join(candidate).encode("utf-8"))) if self.weight_by_zlib else r

    def score(self, inputs: ScoringInput) -> np.ndarray:
        access = inputs.access
        out = np.full(len(inputs.texts), np.nan)
        skipped = 0
        for i, text in enumerate(inputs.texts):
            prompt, cut = split_text(text, self.prefix_ratio)
            reference = words(text)[cut:]
            n_prompt = len(access.tokenize([prompt])[0]) if prompt else 0
            room = self.max_length - n_prompt
            if not prompt or not reference or n_prompt == 0 or room < 1:
                skipped += 1
                continue
            samples = access.sample([prompt], room, num_samples=self.num_samples, temperature=self.temperature,
                                    top_k=self.top_k, top_p=self.top_p, seed=self.seed)[0]
            out[i] = np.mean([self.sample_score(words(prompt + s)[cut:], reference) for s in samples])
        self.details = {"texts_not_scored": skipped, "samples_per_text": self.num_samples}
        return out


class SaMIA(_SaMIABase):
    name = "samia"
    title = "SaMIA"


class SaMIAZlib(_SaMIABase):
    name = "samia_zlib"
    title = "SaMIA*zlib"
    weight_by_zlib = True
