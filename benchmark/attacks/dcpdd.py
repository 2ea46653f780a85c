"""DC-PDD (Zhang et al. 2024, arXiv 2409.14781): "Pretraining data detection for LLMs: a
divergence-based calibration method", EMNLP 2024. Reference code: github.com/zhang-wei-chao/DC-PDD
(``src/com_det_sco.py``, ``src/com_fre_dis.py``) and MIMIR's ``mimir/attacks/dc_pdd.py``.

For the scored tokens x_t of x, keep only the first occurrence of each token id (FOS(x)), and
with p_t = exp(l_t) the target's probability of x_t and f(v) the token's frequency in a
reference corpus with add-one smoothing, f(v) = (c(v) + 1) / (sum_u c(u) + |V|):

    alpha_t = p_t * log(1 / f(x_t)),        score(x) = (1/|FOS(x)|) sum_{t in FOS(x)} min(alpha_t, a)

with the upper bound a = 0.01 by default (the authors' released setting). A member makes the
target confident on tokens that are rare in general text: higher = member (the reference
reports -score with lower = member: the same ranking).

**Frequency table** (``frequency``): ``table`` (default) is the table counted from a large
declared corpus for the target's tokenizer by ``membench dcpdd-freq build`` (see
``attacks.frequency``: the size rule, what is recorded); without one the scorer stops, naming
the command. ``pool`` counts the run's declared non-member pool instead (a small corpus: a
substitute asked for by name, which lands in the record's key and display name; the record
says how many tokens per vocabulary entry it had).

**First token** (``first_token``, default true, as MIMIR scores it): every token of the text is
scored after a start token. For a tokenizer that puts a special token before every text (OPT's
and Llama's BOS) that is the cached feature pass itself. For one that does not (Pythia's), the
text is scored again with the tokenizer's EOS token prepended (MIMIR's rule: one extra forward
pass, metered as ``target_forward_tokens``; texts longer than the context minus one keep their
first tokens). ``first_token=false`` scores the cached features only (the first token
unscored, as the authors' released code does).

Remaining differences: MIMIR also scores OPT's BOS itself (it prepends EOS before it); membench
starts at the text's first token. The reference counts C4 with ``max_tok`` 1,024 tokens per
text; a membench table records its own corpus.
"""

from __future__ import annotations

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from ..hashing import sha256_json
from ..home import cache_dir
from . import frequency as tables
from .pool import checked_pool

FREQUENCIES = ("table", "pool")


def token_counts(access, corpus: list[str], vocab_size: int, cache_tag: str | None = None) -> np.ndarray:
    """Token counts of ``corpus`` under the target tokenizer (cached when ``cache_tag``)."""
    path = None
    if cache_tag is not None:
        path = cache_dir("freq") / f"{sha256_json([cache_tag, vocab_size, corpus])}.npy"
        if path.exists():
            counts = np.load(path)
            if counts.shape == (vocab_size,):
                return counts
    counts = np.zeros(vocab_size, np.int64)
    for ids in access.tokenize(corpus):
        ids = np.asarray(ids, np.int64)
        np.add.at(counts, ids[ids < vocab_size], 1)
    if path is not None:
        np.save(path, counts)
    return counts


def smoothed_frequency(counts: np.ndarray) -> np.ndarray:
    return (counts + 1.0) / (counts.sum() + len(counts))


def dcpdd_scores(stats, freq: np.ndarray, a: float) -> np.ndarray:
    """Every text's score at once: the first occurrence of each (text, token id) pair over the
    flat token array, then per-text means of the clipped alphas; NaN where nothing was scored."""
    n = len(stats)
    sample = np.repeat(np.arange(n, dtype=np.int64), stats.n_scored())
    ids = stats.token_ids.astype(np.int64)
    _, first = np.unique(sample * (int(ids.max(initial=0)) + 1) + ids, return_index=True)
    alpha = np.exp(stats.values["logprob"][first].astype(np.float64)) * -np.log(freq[ids[first]])
    sums = np.bincount(sample[first], weights=np.minimum(alpha, a), minlength=n)
    counts = np.bincount(sample[first], minlength=n)
    out = np.full(n, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def leading_specials(tok) -> int:
    """How many special tokens the tokenizer puts before a text (BOS: 1 for OPT and Llama, 0 for
    Pythia), found by where the bare tokens of a probe start in the full ones."""
    full = list(tok("a b", add_special_tokens=True)["input_ids"])
    bare = list(tok("a b", add_special_tokens=False)["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return i
    return 0


def with_start_token(access, texts: list[str]):
    """The texts' token statistics with every token scored after a start token (the cached
    features when the tokenizer adds one; otherwise a pass with EOS prepended) and a note."""
    from .. import features

    target = access.target
    tok = target.tokenizer
    if leading_specials(tok):
        return None, "the tokenizer's own leading special token (the cached feature pass)"
    start = tok.eos_token_id if tok.eos_token_id is not None else tok.bos_token_id
    if start is None:
        raise MembenchError(f"the tokenizer of {target.id} has neither an EOS nor a BOS token to score the first "
                            "token after", "pass --scorer dc_pdd:first_token=false")
    rows = [[int(start)] + ids[: target.max_length - 1] for ids in tok(list(texts), add_special_tokens=True)["input_ids"]]
    counter: dict = {}
    stats = features.compute(target.model, rows, pad_id=features.pad_id(tok), device=target.device,
                             batch_tokens=getattr(access, "batch_tokens", 16384), counter=counter,
                             desc="dc_pdd start-token pass")
    access.usage["target_forward_texts"] = access.usage.get("target_forward_texts", 0) + len(rows)
    access.usage["target_forward_tokens"] = access.usage.get("target_forward_tokens", 0) + int(
        counter.get("forward_tokens", 0))
    return stats, f"EOS ({tok.convert_ids_to_tokens(int(start))}) prepended, as MIMIR does: one extra forward pass"


class DCPDD(Scorer):
    name = "dc_pdd"
    title = "DC-PDD"
    method = "dc_pdd"
    citation = "Zhang et al. 2024, EMNLP 2024 (arXiv 2409.14781)"
    default_set = "model"
    requires = ("features", "logprobs")
    needs_pool = False  # only with frequency=pool (set per instance)

    def __init__(self, a: float = 0.01, frequency: str = "table", first_token: bool = True):
        if a <= 0:
            raise ValueError(f"a must be positive, got {a}")
        if frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
        self.a = float(a)
        self.frequency = frequency
        self.first_token = bool(first_token)
        self.needs_pool = frequency == "pool"

    @classmethod
    def method_details(cls, details: dict, params: dict) -> dict[str, str]:
        out = {}
        freq = details.get("frequency")
        if isinstance(freq, dict) and freq.get("source") == "table":
            corpus = freq.get("corpus") or {}
            rule = freq.get("size_rule") or {}
            out["frequency corpus"] = (
                f"{corpus.get('name')}: {corpus.get('n_tokens', 0):,} tokens of {corpus.get('n_texts', 0):,} texts, "
                f"counted with the tokenizer of {freq.get('tokenizer_of')} ({rule.get('tokens_per_entry')} tokens per "
                "vocabulary entry" + ("; forced below the size rule" if freq.get("forced") else "") + ")")
        elif isinstance(freq, dict):
            rule = freq.get("size_rule") or {}
            out["frequency corpus"] = (f"the run's declared pool, asked for by name: {freq.get('n_tokens', 0):,} tokens "
                                       f"of {freq.get('n_texts')} texts ({rule.get('tokens_per_entry')} tokens per "
                                       "vocabulary entry), not a large reference corpus")
        elif "corpus_texts" in details:  # a record of an earlier version: the pool, silently
            out["frequency corpus"] = (f"the run's pool: {details.get('corpus_tokens', 0):,} tokens of "
                                       f"{details['corpus_texts']} texts, not a large reference corpus")
        if details.get("first_token"):
            out["first token"] = str(details["first_token"])
        elif out:
            out["first token"] = "not scored"
        return out

    def frequencies(self, inputs: ScoringInput, vocab: int) -> tuple[np.ndarray, dict]:
        access = inputs.access
        if self.frequency == "pool":
            corpus = checked_pool(inputs, self.name)
            counts = token_counts(access, corpus, vocab, getattr(access, "tokenizer_tag", None))
            verdict = tables.size_rule(int(counts.sum()), vocab)
            return counts, {"source": "pool (the run's declared pool, asked for by name)", "n_texts": len(corpus),
                            "n_tokens": int(counts.sum()), "size_rule": verdict}
        target = getattr(access, "target", None)
        if target is None:
            raise MembenchError(f"scorer {self.name} runs in-process only with frequency=table", "run it with `membench run`")
        counts, meta = tables.load(access.tokenizer_tag, vocab, who=self.name, target_id=target.id)
        return counts, {"source": "table", **{k: meta[k] for k in ("corpus", "size_rule", "forced", "tokenizer_of")}}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        feats = inputs.features
        access = inputs.access
        if feats is None or feats.token_ids is None:
            raise MembenchError(
                "dc_pdd needs the scored token ids in the features, and these features have none",
                "recompute features with feature set tokenstats-v3 or later (membench run does)",
            )
        target = getattr(access, "target", None)
        if target is not None:
            vocab = tables.table_size(target)
        else:
            vocab = max(int(feats.token_ids.max()) + 1 if len(feats.token_ids) else 1,
                        int(getattr(access, "vocab_size", 0) or 0))
        counts, source = self.frequencies(inputs, vocab)
        stats, how = feats, "not scored (the cached features: the first token has no prediction)"
        if self.first_token:
            if target is None:
                raise MembenchError(f"scorer {self.name} scores the first token in-process only",
                                    "run it with `membench run`, or pass dc_pdd:first_token=false")
            prepended, how = with_start_token(access, list(inputs.texts))
            stats = prepended if prepended is not None else feats
        self.details = {"frequency": source, "first_token": how}
        return dcpdd_scores(stats, smoothed_frequency(counts), self.a)
