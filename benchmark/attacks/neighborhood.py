"""Neighbourhood comparison (Mattern et al. 2023, arXiv 2305.18462): is x likelier than texts
next to it? Findings of ACL 2023; reference implementation MIMIR's ``mimir/attacks/neighborhood.py``.

score(x) = mean_j L(n_j) - L(x) = mean_t l_t(x) - (1/m) sum_j mean_t l_t(n_j), where
L = -mean_t l_t is the mean token loss on the target and n_1..n_m are neighbours of x. A member
sits at a sharp likelihood peak, so its neighbours lose more likelihood: higher = member (MIMIR
reports L(x) - mean_j L(n_j) with lower = member: the same ranking). NaN when x or all its
neighbours have no scored token.

Where the neighbours come from (``details.neighbour_source``):

1. **stored**: the split's own neighbours (MIMIR's ``*_neighbors_25_bert_in_place_swap``
   files), when it carries them for every text (``ScoringInput.neighbors``): all of them
   (MIMIR stores 25), or the first ``n_neighbors`` when that is set;
2. **bert** (``generator="bert"``, the default otherwise): MIMIR's BERT one-token swap, which
   made those stored files (``BertModel.generate_neighbors_`` with ``neighbor_strategy:
   deterministic`` and ``original_tokenization_swap: true``), transcribed: the text is tokenized
   by ``mask_model`` (bert-base-uncased, MIMIR's ``bert``; cut to 512 tokens); for every
   position i = 1 .. n-1 the model's embedding layer output is taken, dropout with p = 0.7
   (training mode, seeded) is applied to position i alone, the whole model is run on those
   embeddings, and each of its top-6 tokens c != x_i at position i is scored
   p(c) / (1 - p(x_i)) (p(x_i) = 1 counts as 0.9); the ``n_neighbors`` (default 25)
   best-scored (position, token) pairs each give one neighbour: the text with that token's
   characters replaced in place by the decoded candidate (``##`` removed). As in MIMIR, the
   last position (BERT's ``[SEP]``, with an empty character span) takes part: a swap there
   prepends the candidate to the text.
3. **word-swap** (``generator="word-swap"``, a substitute asked for explicitly: it lands in the
   record's key and display name): neighbour j replaces one seeded word (a maximal run of
   non-space characters, whitespace kept) by a word drawn from the declared pool's vocabulary
   (or, without a pool, the evaluated texts').

``mask_model`` loads as every model does (local folder, local Hub cache, then the Hub); when it
cannot load and the split stores no neighbours, the scorer stops with an error naming the
download and the substitute: never a silent fallback. Generation uses ``seed``; the same inputs
always give the same neighbours.
"""

from __future__ import annotations

import re
from heapq import nlargest

import numpy as np

from ..api import Scorer, ScoringInput
from . import auxiliary
from .loss import mean_logprob

_WORD = re.compile(r"\S+")
GENERATORS = ("bert", "word-swap")
DROPOUT = 0.7  # MIMIR's token_dropout on the swapped position's embedding
TOP_CANDIDATES = 6  # MIMIR's topk per position (the original token, when among them, is skipped)
MAX_TOKENS = 512  # MIMIR's max_tokens: the BERT input is cut there
GENERATED_DEFAULT = 25  # MIMIR's n_perturbations for generated neighbours


def word_swap_neighbours(text: str, m: int, vocab: list[str], seed: int) -> list[str]:
    """m neighbours, each with one seeded word replaced by a different vocabulary word,
    whitespace kept."""
    spans = [(w.start(), w.end()) for w in _WORD.finditer(text)]
    if not spans or not vocab:
        return [text] * m
    rng = np.random.default_rng([seed, len(text), sum(map(ord, text[:256])) % (2**31)])
    out = []
    for _ in range(m):
        start, end = spans[int(rng.integers(len(spans)))]
        choice = vocab[int(rng.integers(len(vocab)))]
        if choice == text[start:end]:
            choice = vocab[(vocab.index(choice) + 1) % len(vocab)]
        out.append(text[:start] + choice + text[end:])
    return out


class BertSwap:
    """MIMIR's BERT one-token-swap neighbour generator (deterministic strategy, in-place swap)."""

    def __init__(self, name: str, scorer: str = "neighborhood", device: str = "cpu"):
        from transformers import AutoModelForMaskedLM

        self.tok, self.model = auxiliary.load(AutoModelForMaskedLM, name, role="neighbour model", scorer=scorer,
                                              substitute="generator=word-swap", device=device)
        self.device = device
        if not getattr(self.tok, "is_fast", False):
            raise auxiliary.unavailable("neighbour model", name, scorer, "generator=word-swap",
                                        "its tokenizer gives no character offsets (a fast tokenizer is needed)")
        base = getattr(self.model, self.model.base_model_prefix, None)
        if base is None or not hasattr(base, "embeddings"):
            raise auxiliary.unavailable("neighbour model", name, scorer, "generator=word-swap",
                                        "not a BERT-style masked language model with an embeddings module")
        self.embeddings = base.embeddings

    def candidates(self, text: str, generator) -> tuple[dict, list]:
        """{(position, token): score} over every position 1..n-1, and the offsets."""
        import torch

        enc = self.tok(text, truncation=True, max_length=MAX_TOKENS, return_offsets_mapping=True,
                       return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        offsets = enc["offset_mapping"][0].tolist()
        n = ids.shape[1]
        replacements: dict = {}
        positions = list(range(1, n))
        vocab = int(self.model.config.vocab_size)
        rows = max(1, min(len(positions), (256 * 2**20) // max(n * vocab * 4, 1)))  # ~256 MB of logits per batch
        with torch.no_grad():
            embeds = self.embeddings(input_ids=ids)
            for b in range(0, len(positions), rows):
                pick = positions[b : b + rows]
                batch = embeds.repeat(len(pick), 1, 1)
                for r, pos in enumerate(pick):
                    keep = (torch.rand(batch.shape[-1], generator=generator) >= DROPOUT).to(batch.dtype)
                    batch[r, pos] = batch[r, pos] * keep.to(self.device) / (1 - DROPOUT)
                probs = torch.softmax(self.model(inputs_embeds=batch).logits.float(), dim=-1)
                for r, pos in enumerate(pick):
                    original = int(ids[0, pos])
                    p_orig = float(probs[r, pos, original])
                    top_p, top_c = torch.topk(probs[r, pos], TOP_CANDIDATES)
                    for cand, prob in zip(top_c.tolist(), top_p.tolist()):
                        if cand != original:
                            replacements[(pos, cand)] = prob / (1 - (0.9 if p_orig == 1 else p_orig))
        return replacements, offsets

    def neighbours(self, text: str, m: int, seed: int) -> list[str]:
        import torch

        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + (len(text) + sum(map(ord, text[:256]))) % 2**31)
        replacements, offsets = self.candidates(text, generator)
        out = []
        for pos, cand in nlargest(m, replacements, key=replacements.get):
            start, end = offsets[pos]
            fill = self.tok.decode([cand]).replace("##", "")
            out.append(text[:start] + fill + text[end:])
        return out or [text]


class Neighborhood(Scorer):
    name = "neighborhood"
    title = "Neighbourhood comparison"
    method = "neighborhood"
    citation = "Mattern et al. 2023, Findings of ACL 2023 (arXiv 2305.18462)"
    default_set = "model"
    requires = ("features", "logprobs")

    def __init__(self, n_neighbors: int | None = None, generator: str = "bert",
                 mask_model: str = "bert-base-uncased", seed: int = 0):
        if n_neighbors is not None and n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1, got {n_neighbors}")
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
        self.n_neighbors = None if n_neighbors is None else int(n_neighbors)
        self.generator = generator
        self.mask_model = mask_model
        self.seed = int(seed)

    @classmethod
    def method_details(cls, details: dict, params: dict) -> dict[str, str]:
        source = details.get("neighbour_source")
        if not source:
            return {}
        counts = details.get("n_neighbors")
        per = (f"{'-'.join(str(c) for c in counts)} per text" if isinstance(counts, list) and counts
               else f"{params.get('n_neighbors') or 'unrecorded number'} per text")
        if source == "stored":
            text = f"the split's stored neighbours (MIMIR's BERT in-place swaps): {details.get('rule', 'stored')}, {per}"
        elif str(source).startswith("bert:"):
            text = (f"generated by MIMIR's BERT one-token swap with {source.split(':', 1)[1]} "
                    f"({details.get('generator', 'in place')}), {per}")
        elif source == "word-swap" and "vocabulary" in details:
            text = (f"a substitute asked for by name: one random word of the {details['vocabulary']} swapped per "
                    f"neighbour, not BERT; {per}")
        else:  # a record of an earlier version
            text = f"{source} (not MIMIR's BERT swap); {per}"
        return {"neighbour source": text}

    def neighbours(self, inputs: ScoringInput) -> tuple[list[list[str]], dict]:
        stored = inputs.neighbors or {}
        if stored and all(stored.get(u) for u in inputs.uids):
            groups = [list(stored[u])[: self.n_neighbors] for u in inputs.uids]
            return groups, {"neighbour_source": "stored",
                            "n_neighbors": sorted({len(g) for g in groups}),
                            "rule": "all stored neighbours" if self.n_neighbors is None
                            else f"the first {self.n_neighbors} stored neighbours"}
        m = self.n_neighbors or GENERATED_DEFAULT
        if self.generator == "word-swap":
            source = inputs.pool or inputs.texts
            vocab = sorted({w for t in source for w in _WORD.findall(t)})
            return ([word_swap_neighbours(t, m, vocab, self.seed) for t in inputs.texts],
                    {"neighbour_source": "word-swap", "n_neighbors": [m],
                     "vocabulary": "declared pool" if inputs.pool else "evaluated texts",
                     "note": "substitute asked for explicitly: one random word swapped per neighbour"})
        device = getattr(getattr(inputs.access, "target", None), "device", "cpu")
        swap = BertSwap(self.mask_model, self.name, device=device)
        return ([swap.neighbours(t, m, self.seed) for t in inputs.texts],
                {"neighbour_source": f"bert:{self.mask_model}", "n_neighbors": [m],
                 "generator": f"MIMIR's one-token swap (dropout {DROPOUT}, top-{TOP_CANDIDATES}, deterministic, "
                              "in place)"})

    def score(self, inputs: ScoringInput) -> np.ndarray:
        groups, self.details = self.neighbours(inputs)
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
