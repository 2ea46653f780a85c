"""SPV-MIA (Fu et al., NeurIPS 2024, "Membership Inference Attacks against Fine-tuned Large
Language Models via Self-prompt Calibration"), and its two ablations as scorers of their own.

Definitions (l_t = log p(token t | prefix) over a text's scored tokens, as every membench
statistic; M is a model):

    p_M(x)  = exp(-L_M(x)) = exp(mean_t l_t),  the per-token likelihood of x under M
    PV_M(x) = (1/m) sum_j p_M(x~_j) - p_M(x)   (probabilistic variation; x~_1..x~_m perturbations of x)

- ``spv_mia``:       score(x) = PV_ref(x) - PV_target(x)
- ``spv_reference``: score(x) = mean_t l_t^target(x) - mean_t l_t^ref(x)   (the plain reference
                     attack, with the self-prompt reference: ablation without PV)
- ``spv_pv``:        score(x) = -PV_target(x) = p_target(x) - mean_j p_target(x~_j)  (PV alone,
                     no reference)

A member sits at a local maximum of the target's likelihood (memorization), so perturbing it
loses more likelihood on the target (PV_target more negative) than on a reference that did not
see it: higher = member for all three.

**Self-prompt reference.** ``n_reference_texts`` prompts of ``prompt_tokens`` tokens (the first
tokens of texts drawn, seeded, from the run's declared pool: ``ScoringInput.pool``, the split's
``pool.parquet``, public texts of the same domain that the scorer checks are disjoint from the
evaluated texts) are continued by the target, sampling (temperature ``temperature``, top-k
``top_k``, seeded) for ``max_new_tokens`` tokens; the prompt and its continuation form one
reference text. A reference model is fine-tuned from the target's base with the target's own
recipe (method, epochs, learning rate, batch and block size, defences, seed) on those texts by
``benchmark.finetune.finetune_like``; it is registered as ``ft/<target>-spvref-<hash>`` (a
target of its own, cached: another scorer or run with the same inputs reuses it).

**Perturbations.** Span masking as in the paper (DetectGPT's T5 mask filling): spans of
``span_length`` words start at seeded positions with at least one untouched word between
spans, until ``mask_rate`` of the words are masked; each span is refilled by the mask-filling
model ``mask_model`` (a T5-style seq2seq model: Hub id or local directory; spans become
``<extra_id_k>`` sentinels, filled by sampling). When that model cannot be loaded (offline with no
local copy, or ``mask_model=none``) the offline seeded fallback refills each span with words
drawn uniformly from the declared pool's vocabulary (as the neighbourhood attack's fallback).
The same perturbed texts are scored on the target and the reference. ``details`` records
which filler was used.

**Choices and known differences from the paper and its code.**
- m = ``n_perturbations`` (default 10) perturbations per text, one-sided; the paper pairs
  symmetric perturbations x+z and x-z (N pairs, approximated by paraphrasing in both
  directions) and reports N up to 100 queries; one-sided sampling is the same estimator in
  expectation without the symmetric variance reduction;
- p(x) = exp(-mean token loss) as the paper defines the probability signal, so PV is a
  difference of per-token likelihoods in (0, 1), not of log-likelihoods;
- span length 2 and mask rate 0.3 (defaults) follow DetectGPT's settings that the paper reuses;
  the fallback filler is not a language model, so its perturbations are rougher than T5's;
- the reference is trained on ``n_reference_texts`` (default 200) generated texts with the
  target's recipe; the paper's reference uses the same fine-tuning setup on about 10,000 texts.
  Prompts are ``prompt_tokens`` (default 8) tokens as in the paper's short prompts;
- texts longer than the context are cut as every membench pass cuts them.

**Cost** (``details.cost``): target forward tokens (the texts' own pass is the cached feature
pass; the perturbations' and the generation's are counted), reference forward tokens,
generated tokens, the reference's training steps and tokens (of the build, also when it was
reused), and wall time of the scorer.
"""

from __future__ import annotations

import logging
import re
import time

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError
from ..hashing import sha256_json
from .lowercase import mean_logprob

log = logging.getLogger(__name__)
_WORD = re.compile(r"\S+")


def span_starts(n_words: int, span_length: int, mask_rate: float, rng) -> list[int]:
    """Seeded, non-overlapping span starts (one free word between spans) covering about
    ``mask_rate`` of ``n_words`` words; at least one span when the text has a word."""
    if n_words == 0:
        return []
    span = max(1, min(span_length, n_words))
    want = max(1, int(round(mask_rate * n_words / span)))
    order = rng.permutation(max(n_words - span + 1, 1))
    taken = np.zeros(n_words + 1, bool)
    starts = []
    for s in order:
        lo, hi = max(s - 1, 0), min(s + span + 1, n_words)
        if taken[lo:hi].any():
            continue
        taken[s : s + span] = True
        starts.append(int(s))
        if len(starts) == want:
            break
    return sorted(starts)


def fallback_perturbations(text: str, m: int, span_length: int, mask_rate: float, vocab: list[str],
                           seed: int) -> list[str]:
    """m perturbations of ``text``: each masked span refilled with words drawn from ``vocab``."""
    words = text.split()
    if not words or not vocab:
        return [text] * m
    rng = np.random.default_rng([seed, len(words), sum(map(ord, text[:64]))])
    out = []
    for _ in range(m):
        new = list(words)
        for s in span_starts(len(words), span_length, mask_rate, rng):
            for k in range(s, min(s + span_length, len(words))):
                new[k] = vocab[int(rng.integers(len(vocab)))]
        out.append(" ".join(new))
    return out


class SpanFiller:
    """T5-style span filling: spans replaced by sentinels, the model samples their fills."""

    def __init__(self, name: str, device: str = "cpu"):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(name, local_files_only=True).to(device).eval()
        self.device = device
        if "<extra_id_0>" not in self.tok.get_vocab():
            raise ValueError(f"{name} has no <extra_id_k> sentinel tokens (not a T5-style mask filler)")

    def perturb(self, text: str, m: int, span_length: int, mask_rate: float, seed: int) -> list[str] | None:
        import torch

        words = text.split()
        rng = np.random.default_rng([seed, len(words), sum(map(ord, text[:64]))])
        out = []
        for j in range(m):
            starts = span_starts(len(words), span_length, mask_rate, rng)
            masked, k, skip = [], 0, set()
            for s in starts:
                skip.update(range(s, s + span_length))
            for i, w in enumerate(words):
                if i in starts:
                    masked.append(f"<extra_id_{k}>")
                    k += 1
                elif i not in skip:
                    masked.append(w)
            enc = self.tok(" ".join(masked), return_tensors="pt", truncation=True, max_length=512).to(self.device)
            torch.manual_seed(seed * 1000003 + j)
            with torch.no_grad():
                gen = self.model.generate(**enc, do_sample=True, top_p=1.0, max_new_tokens=8 * span_length * k + 8)
            decoded = self.tok.decode(gen[0], skip_special_tokens=False)
            fills = [f.strip() for f in re.split(r"<extra_id_\d+>", decoded.replace("<pad>", "").replace("</s>", ""))[1:]]
            if len(fills) < k:
                return None  # the model did not fill every span: the caller falls back
            text_out = " ".join(masked)
            for i in range(k):
                text_out = text_out.replace(f"<extra_id_{i}>", fills[i], 1)
            out.append(text_out)
        return out


def likelihood(stats) -> np.ndarray:
    """p(x) = exp(mean token log-probability) per text (NaN where nothing was scored)."""
    return np.exp(mean_logprob(stats))


def _forward(model_target, texts: list[str], batch_tokens: int):
    from .. import features

    counter: dict = {}
    ids = features.tokenize(model_target.tokenizer, texts, model_target.max_length)
    stats = features.compute(model_target.model, ids, pad_id=features.pad_id(model_target.tokenizer),
                             device=model_target.device, batch_tokens=batch_tokens, counter=counter,
                             desc="spv forward")
    return stats, int(counter.get("forward_tokens", 0))


class _SPV(Scorer):
    """The three scorers' shared machinery (see the module docstring)."""

    needs_pool = True
    uses_reference = True
    uses_pv = True

    def __init__(self, n_perturbations: int = 10, span_length: int = 2, mask_rate: float = 0.3,
                 mask_model: str = "t5-base", n_reference_texts: int = 200, prompt_tokens: int = 8,
                 max_new_tokens: int = 64, temperature: float = 1.0, top_k: int = 50, seed: int = 0):
        if n_perturbations < 1 or span_length < 1 or not 0 < mask_rate <= 1:
            raise ValueError("n_perturbations and span_length must be at least 1, mask_rate in (0, 1]")
        if n_reference_texts < 2 or prompt_tokens < 1 or max_new_tokens < 1:
            raise ValueError("n_reference_texts must be at least 2, prompt_tokens and max_new_tokens at least 1")
        self.n_perturbations, self.span_length, self.mask_rate = int(n_perturbations), int(span_length), float(mask_rate)
        self.mask_model = mask_model
        self.n_reference_texts, self.prompt_tokens, self.max_new_tokens = (int(n_reference_texts), int(prompt_tokens),
                                                                            int(max_new_tokens))
        self.temperature, self.top_k, self.seed = float(temperature), int(top_k), int(seed)
        self.details = {}

    # -- the self-prompt reference -----------------------------------------------------------
    def self_prompt_texts(self, access, pool: list[str]) -> list[str]:
        """Prompts from the pool, continued by the target (sampled, seeded)."""
        import torch

        from .. import features

        target = access.target
        tok, model = target.tokenizer, target.model
        rng = np.random.default_rng(self.seed)
        chosen = rng.choice(len(pool), size=min(self.n_reference_texts, len(pool)), replace=False)
        prompts = [ids[: self.prompt_tokens] for ids in features.tokenize(tok, [pool[i] for i in sorted(chosen)],
                                                                         target.max_length)]
        out, generated = [], 0
        torch.manual_seed(self.seed)
        for ids in prompts:
            x = torch.tensor([ids], device=target.device)
            with torch.no_grad():
                gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=True,
                                     temperature=self.temperature, top_k=self.top_k,
                                     max_new_tokens=min(self.max_new_tokens, max(target.max_length - len(ids), 1)),
                                     pad_token_id=features.pad_id(tok))
            new = int(gen.shape[1] - x.shape[1])
            generated += new
            access.usage["target_forward_tokens"] += int(x.shape[1]) + new
            out.append(tok.decode(gen[0], skip_special_tokens=True))
        access.usage["generated_tokens"] += generated
        return out

    def reference_target(self, access, pool: list[str]):
        """The self-prompt reference, built (or reused) with the target's recipe."""
        from .. import finetune, targets

        target = access.target
        key = sha256_json([target.weights_hash, self.n_reference_texts, self.prompt_tokens, self.max_new_tokens,
                           self.temperature, self.top_k, self.seed, sha256_json(sorted(pool))])[:10]
        new_id = f"{target.id.split('/', 1)[-1]}-spvref-{key}"
        built = targets.targets().get(f"ft/{new_id}")  # the id carries every input: reuse it as it is
        texts = None
        if built is None:
            texts = self.self_prompt_texts(access, pool)
            summary = finetune.finetune_like(target.id, texts, new_id, device=target.device, progress=False)
        else:
            summary = {"target": built.id}
        ref = targets.load_target(summary["target"], device=target.device, dtype=target.dtype)
        spec = targets.targets()[summary["target"]]
        training = spec.extra.get("training", {})
        self.details["reference"] = {
            "target": summary["target"], "weights_sha256": ref.weights_hash, "reused": bool(texts is None),
            "n_texts": self.n_reference_texts, "prompt_tokens": self.prompt_tokens,
            "max_new_tokens": self.max_new_tokens, "training_steps": training.get("steps"),
            "training_tokens": training.get("tokens"), "training_seconds": training.get("wall_seconds"),
            "recipe": f"the recipe of {target.id} (finetune_like)",
        }
        return ref

    # -- perturbations ------------------------------------------------------------------------
    def perturbations(self, texts: list[str], pool: list[str]) -> tuple[list[list[str]], str]:
        filler = None
        if self.mask_model and self.mask_model != "none":
            try:
                filler = SpanFiller(self.mask_model)
            except Exception as exc:  # noqa: BLE001 (offline, missing, or not a T5-style model)
                log.warning("mask-filling model %s unavailable (%s); using the offline seeded fallback",
                            self.mask_model, str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
        vocab = sorted({w for t in pool for w in _WORD.findall(t)})
        out, used_model = [], 0
        for text in texts:
            got = filler.perturb(text, self.n_perturbations, self.span_length, self.mask_rate, self.seed) \
                if filler is not None else None
            if got is None:
                got = fallback_perturbations(text, self.n_perturbations, self.span_length, self.mask_rate, vocab,
                                             self.seed)
            else:
                used_model += 1
            out.append(got)
        source = f"t5-span-fill:{self.mask_model}" if used_model == len(texts) and texts else (
            "seeded-word-fallback" if not used_model else f"mixed ({used_model} texts by {self.mask_model})")
        return out, source

    @staticmethod
    def variation(own: np.ndarray, perturbed: np.ndarray, m: int) -> np.ndarray:
        """PV per text: mean over its m perturbations of p(x~), minus p(x)."""
        per = perturbed.reshape(len(own), m)
        with np.errstate(all="ignore"):
            return np.nanmean(per, axis=1) - own

    def score(self, inputs: ScoringInput) -> np.ndarray:
        started = time.perf_counter()
        access = inputs.access
        pool = [t for t in (inputs.pool or []) if t.strip()]
        overlap = set(pool) & set(inputs.texts)
        if overlap:
            raise MembenchError(f"scorer {self.name}: the declared pool shares {len(overlap)} text(s) with the "
                                "evaluated texts", "declare a pool disjoint from the split (--pool FILE)")
        if len(pool) < 2:
            raise MembenchError(f"scorer {self.name} needs a declared pool of at least two texts",
                                "pass --pool FILE (public texts of the same domain, disjoint from the split)")
        if not hasattr(access, "target"):
            raise MembenchError(f"scorer {self.name} runs in-process only (it fine-tunes a reference model)",
                                "run it with `membench run`")
        self.details = {}
        batch = getattr(access, "batch_tokens", 16384)
        ref = self.reference_target(access, pool) if self.uses_reference else None
        ref_tokens = 0
        out = None
        if not self.uses_pv:  # plain reference attack with the self-prompt reference
            ref_stats, ref_tokens = _forward(ref, list(inputs.texts), batch)
            out = mean_logprob(inputs.features) - mean_logprob(ref_stats)
        else:
            groups, source = self.perturbations(list(inputs.texts), pool)
            flat = [t for g in groups for t in g]
            stats, n = _forward(access.target, flat, batch)
            access.usage["target_forward_tokens"] += n
            access.usage["target_forward_texts"] += len(flat)
            pv_target = self.variation(likelihood(inputs.features), likelihood(stats), self.n_perturbations)
            self.details["perturbations"] = {"source": source, "m": self.n_perturbations,
                                             "span_length": self.span_length, "mask_rate": self.mask_rate}
            if ref is None:
                out = -pv_target
            else:
                own_ref, n1 = _forward(ref, list(inputs.texts), batch)
                pert_ref, n2 = _forward(ref, flat, batch)
                ref_tokens = n1 + n2
                out = self.variation(likelihood(own_ref), likelihood(pert_ref), self.n_perturbations) - pv_target
        access.usage["reference_forward_tokens"] += ref_tokens
        reference = self.details.get("reference", {})
        self.details["cost"] = {
            "target_forward_tokens": int(access.usage["target_forward_tokens"]),
            "reference_forward_tokens": int(access.usage["reference_forward_tokens"]),
            "generated_tokens": int(access.usage["generated_tokens"]),
            "reference_training_steps": reference.get("training_steps"),
            "reference_training_tokens": reference.get("training_tokens"),
            "reference_reused": reference.get("reused"),
            "wall_seconds": round(time.perf_counter() - started, 3),
            "note": "the texts' own target pass is the cached feature pass (provenance.usage); generated tokens and "
                    "reference training are zero/unchanged when the reference was reused",
        }
        return out


class SPVMIA(_SPV):
    name = "spv_mia"
    title = "SPV-MIA"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "logprobs", "generate")


class SPVReference(_SPV):
    name = "spv_reference"
    title = "SPV-MIA: self-prompt reference only"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "generate")
    uses_pv = False


class SPVProbabilisticVariation(_SPV):
    name = "spv_pv"
    title = "SPV-MIA: probabilistic variation only"
    method = "spv_mia"
    citation = "Fu et al. 2024, NeurIPS 2024 (arXiv 2311.06062)"
    default_set = "finetune"
    requires = ("features", "logprobs")
    uses_reference = False
