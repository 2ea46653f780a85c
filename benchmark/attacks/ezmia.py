"""EZ-MIA, the Error Zone score (Ilić, Stanojević and Cvejoski 2026, "Powerful Training-Free
Membership Inference Against Autoregressive Language Models", arXiv 2601.12104; code
JetBrains-Research/ez-mia, ``error_zone_pos_neg_sum_ratio``).

Two forward passes per text: the target and a reference model (by default the fine-tuned
target's base, the paper's pretrained reference; ``--reference`` swaps it). Over the text's
scored tokens t (every token after the first input token, as all membench statistics):

    E        = { t : argmax_v p_target(v | x_<t) != x_t }, less the first scored position
               (the reference code's ``ignore_bos``: its mask drops the first prediction)
    d_t      = log p_target(x_t | x_<t) - log p_ref(x_t | x_<t)          for t in E
    score(x) = sum_{t in E, d_t > 0} d_t / sum_{t in E, d_t < 0} |d_t|

and, as the reference code, score(x) = 0 when E has fewer than two tokens (``min_tokens=2``)
or no d_t is negative (its guard against dividing by zero); the reference adds 1e-12 to the
denominator. Higher = member: where the fine-tuned model still errs, fine-tuning on x raised the
probability of x's true tokens above the reference's (memorization at error positions).

Both passes are the scorer's own (one target pass with the top-1 token per position, which the
feature cache does not hold, and one reference pass), on the same token ids, so the reference
must tokenize the texts exactly as the target does (refused otherwise); texts are cut to the model context as
every membench pass cuts them (the first ``max_length`` tokens). The reference code pads texts to
128 tokens and truncates there; here each text is scored whole up to the context. ``details``
records the mean error-zone size and the cost (forward tokens on both models, wall time).
In-process only (it reads the models through the in-process access).
"""

from __future__ import annotations

import time

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError


def ez_score(target_lp: np.ndarray, ref_lp: np.ndarray, target_top1_hit: np.ndarray, *, ignore_first: bool = True,
             min_tokens: int = 2) -> tuple[float, int]:
    """(EZ score, error-zone size) of one text from per-token arrays over its scored tokens:
    the target's and the reference's log-probability of the actual token, and whether the
    actual token is the target's top-1 prediction."""
    target_lp = np.asarray(target_lp, dtype=np.float64)
    ref_lp = np.asarray(ref_lp, dtype=np.float64)
    zone = ~np.asarray(target_top1_hit, dtype=bool)
    if ignore_first and zone.size:
        zone = zone.copy()
        zone[0] = False
    size = int(zone.sum())
    if size < min_tokens:
        return 0.0, size
    d = (target_lp - ref_lp)[zone]
    positive, negative = d[d > 0].sum(), np.abs(d[d < 0]).sum()
    if negative == 0:
        return 0.0, size
    value = float(positive / (negative + 1e-12))
    return (value if np.isfinite(value) and value >= 0 else 0.0), size


def token_pass(model, token_ids: list[list[int]], *, pad_id: int, device: str, batch_rows: int = 16):
    """Per text: (log p of each actual token after the first, whether it is the model's top-1),
    fp32 log-softmax, right-padded batches (padding never changes a row's values)."""
    import torch

    out = []
    order = sorted(range(len(token_ids)), key=lambda i: -len(token_ids[i]))
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    model.eval()
    for lo in range(0, len(order), batch_rows):
        rows = order[lo : lo + batch_rows]
        width = max(len(token_ids[i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, : len(token_ids[i])] = torch.tensor(token_ids[i], dtype=torch.long)
            mask[r, : len(token_ids[i])] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for r, i in enumerate(rows):
            n = len(token_ids[i])
            if n < 2:
                results[i] = (np.zeros(0), np.zeros(0, bool))
                continue
            logp = torch.log_softmax(logits[r, : n - 1].float(), dim=-1)
            target = ids[r, 1:n].to(logp.device)
            lp = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            hit = logp.argmax(-1) == target
            results[i] = (lp.cpu().numpy().astype(np.float64), hit.cpu().numpy())
    for i in range(len(token_ids)):
        out.append(results[i])
    return out


class EZMIA(Scorer):
    name = "ez_mia"
    title = "EZ-MIA"
    method = "ez_mia"
    citation = "Ilić et al. 2026 (arXiv 2601.12104)"
    default_set = "finetune"  # two passes and the base as reference: cheap on any fine-tuned target
    version = "1"
    requires = ("features", "reference")

    def __init__(self, min_tokens: int = 2):
        if min_tokens < 1:
            raise ValueError(f"min_tokens must be >= 1, got {min_tokens}")
        self.min_tokens = int(min_tokens)
        self.details = {}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        from .. import features

        started = time.perf_counter()
        access = inputs.access
        target, ref = getattr(access, "target", None), getattr(access, "reference_target", None)
        if target is None:
            raise MembenchError(f"scorer {self.name} runs in-process only (two passes of its own)",
                                "run it with `membench run`")
        if ref is None:
            raise MembenchError(f"scorer {self.name} needs a reference model", "pass --reference MODEL")
        ids = features.tokenize(target.tokenizer, list(inputs.texts), target.max_length)
        if ref.tokenizer_hash != target.tokenizer_hash and \
                features.tokenize(ref.tokenizer, list(inputs.texts), target.max_length) != ids:
            raise MembenchError(f"scorer {self.name} compares the two models token by token, but the reference "
                                f"{ref.id} tokenizes the texts otherwise than {target.id}",
                                "use a reference with the target's tokenizer (a fine-tuned target's base)")
        n_tokens = sum(len(t) for t in ids)
        access.charge(forward_tokens=2 * n_tokens)
        pad = features.pad_id(target.tokenizer)
        on_target = token_pass(target.model, ids, pad_id=pad, device=target.device)
        on_ref = token_pass(ref.model, ids, pad_id=pad, device=ref.device)
        access.usage["target_forward_tokens"] += n_tokens
        access.usage["target_forward_texts"] += len(ids)
        access.usage["reference_forward_tokens"] += n_tokens
        out = np.full(len(ids), np.nan)
        sizes = []
        for i, ((t_lp, t_hit), (r_lp, _)) in enumerate(zip(on_target, on_ref)):
            if len(t_lp):
                out[i], size = ez_score(t_lp, r_lp, t_hit, min_tokens=self.min_tokens)
                sizes.append(size)
        self.details = {
            "reference": ref.id,
            "mean_error_zone_tokens": round(float(np.mean(sizes)), 3) if sizes else None,
            "texts_scored_zero": int((out == 0).sum()),
            "cost": {"target_forward_tokens": n_tokens, "reference_forward_tokens": n_tokens,
                     "wall_seconds": round(time.perf_counter() - started, 3)},
        }
        return out
