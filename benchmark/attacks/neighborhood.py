"""Neighbourhood comparison (Mattern et al. 2023): is x likelier than texts next to it?

score(x) = mean_j L(n_j) - L(x) = mean_t l_t(x) - (1/m) sum_j mean_t l_t(n_j), where
L = -mean_t l_t is the mean token loss on the target and n_1..n_m are neighbours of x: x with
a few words replaced. A member sits at a sharp likelihood peak, so its neighbours lose more
likelihood: higher = member. NaN when x or all its neighbours have no scored token.

Where the neighbours come from, in order (recorded in the result as ``neighbour_source``):

1. **stored**: the split's own neighbours (MIMIR's ``*_neighbors_25_bert_in_place_swap``
   files), when it carries them (``ScoringInput.neighbors``); the first ``n_neighbors`` are used;
2. **mlm**: generated with a masked language model (``mask_model``: a Hub id or a local
   directory, default ``roberta-base`` as in MIMIR): for each neighbour, a seeded random
   ``fraction`` of the words (at least one) is masked at once and each masked token is
   replaced by the model's most likely token other than the original (in-place swap);
3. **word-swap** (the offline fallback, used when the masked model cannot be loaded, e.g.
   with no network and no local copy, or with ``mask_model="none"``): the same seeded word
   positions are replaced by words drawn uniformly from the vocabulary of the declared
   non-member pool (or, without a pool, of the evaluated texts themselves).

Generation uses ``seed``; the same inputs always give the same neighbours.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from ..api import Scorer, ScoringInput
from .loss import mean_logprob

log = logging.getLogger(__name__)
_WORD = re.compile(r"\S+")


def _positions(n_words: int, fraction: float, rng) -> np.ndarray:
    k = max(1, int(round(fraction * n_words)))
    return np.sort(rng.choice(n_words, size=min(k, n_words), replace=False))


def word_swap_neighbours(text: str, m: int, fraction: float, vocab: list[str], seed: int) -> list[str]:
    words = text.split()
    if not words:
        return [text] * m
    rng = np.random.default_rng([seed, len(words), sum(map(ord, text[:64]))])
    out = []
    for _ in range(m):
        new = list(words)
        for pos in _positions(len(words), fraction, rng):
            choice = vocab[int(rng.integers(len(vocab)))]
            new[pos] = choice if choice != words[pos] else vocab[(vocab.index(choice) + 1) % len(vocab)]
        out.append(" ".join(new))
    return out


class MaskFiller:
    """In-place swap with a masked language model (one forward per neighbour)."""

    def __init__(self, name: str, device: str = "cpu"):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        try:  # a local directory or the local Hub cache first: no network round-trip
            self.tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
            model = AutoModelForMaskedLM.from_pretrained(name, local_files_only=True)
        except OSError:
            self.tok = AutoTokenizer.from_pretrained(name)
            model = AutoModelForMaskedLM.from_pretrained(name)
        self.model = model.to(device).eval()
        self.device = device
        if self.tok.mask_token_id is None:
            raise ValueError(f"{name} has no mask token")

    def neighbours(self, text: str, m: int, fraction: float, seed: int) -> list[str]:
        import torch

        enc = self.tok(text, truncation=True, max_length=getattr(self.tok, "model_max_length", 512)
                       if getattr(self.tok, "model_max_length", 512) < 100000 else 512)
        ids = list(enc["input_ids"])
        special = set(self.tok.all_special_ids)
        candidates = [i for i, t in enumerate(ids) if t not in special]
        if not candidates:
            return [text] * m
        rng = np.random.default_rng([seed, len(ids)] + ids[:16])
        out = []
        for _ in range(m):
            pos = [candidates[j] for j in _positions(len(candidates), fraction, rng)]
            masked = torch.tensor([ids], device=self.device)
            masked[0, pos] = self.tok.mask_token_id
            with torch.no_grad():
                logits = self.model(input_ids=masked).logits[0]
            new = list(ids)
            for p in pos:
                row = logits[p].clone()
                row[ids[p]] = -float("inf")
                for s in special:
                    if s < len(row):
                        row[s] = -float("inf")
                new[p] = int(row.argmax())
            out.append(self.tok.decode(new, skip_special_tokens=True))
        return out


class Neighborhood(Scorer):
    name = "neighborhood"
    title = "Neighbourhood comparison"
    method = "neighborhood"
    citation = "Mattern et al. 2023, Findings of ACL 2023 (arXiv 2305.18462)"
    default_set = "model"
    requires = ("features", "logprobs")

    def __init__(self, n_neighbors: int = 10, fraction: float = 0.1, mask_model: str = "roberta-base",
                 seed: int = 0):
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1, got {n_neighbors}")
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.n_neighbors = int(n_neighbors)
        self.fraction = float(fraction)
        self.mask_model = mask_model
        self.seed = int(seed)

    def neighbours(self, inputs: ScoringInput) -> tuple[list[list[str]], str]:
        stored = inputs.neighbors or {}
        if stored and all(stored.get(u) for u in inputs.uids):
            return [list(stored[u])[: self.n_neighbors] for u in inputs.uids], "stored"
        filler = None
        if self.mask_model and self.mask_model != "none":
            try:
                filler = MaskFiller(self.mask_model)
            except Exception as exc:  # noqa: BLE001 (offline, missing, or not a masked LM)
                log.warning("masked model %s unavailable (%s); using the offline word-swap fallback",
                            self.mask_model, str(exc).splitlines()[0][:120])
        if filler is not None:
            return [filler.neighbours(t, self.n_neighbors, self.fraction, self.seed)
                    for t in inputs.texts], f"mlm:{self.mask_model}"
        source = inputs.pool or inputs.texts
        vocab = sorted({w for t in source for w in _WORD.findall(t)})
        return [word_swap_neighbours(t, self.n_neighbors, self.fraction, vocab, self.seed)
                for t in inputs.texts], "word-swap"

    def score(self, inputs: ScoringInput) -> np.ndarray:
        groups, source = self.neighbours(inputs)
        self.details = {"neighbour_source": source}
        flat = [n for g in groups for n in g]
        lp = mean_logprob(inputs.access.logprobs(flat))
        own = mean_logprob(inputs.features)
        out = np.full(len(groups), np.nan)
        at = 0
        for i, g in enumerate(groups):
            vals = lp[at : at + len(g)]
            at += len(g)
            if len(vals) and np.isfinite(vals).any():
                out[i] = own[i] - float(np.nanmean(vals))
        return out
