"""The harness's metered ``ModelAccess``: what a scorer may do with the loaded target.

``MeteredModelAccess`` holds the models in this process. A built-in scorer gets it directly; a
submitted scorer reaches it through the sandbox's proxy and the harness's capability server
(``submissions.capability_server``), which answers every call with it. One instance is made per
scorer with the capabilities that scorer declared; any other call raises. Every call is
counted in ``usage`` (texts and tokens forwarded on the target and on the reference, tokens
back-propagated, tokens generated), which the evaluator records in the result, and every
capability called is noted in ``used``. Inside ``fitting(meter)`` (a scorer's ``fit``) every
call is also charged to the fit meter before it runs, and refused when it would pass the run's
fit budget.

It carries no label: of the split it knows only ``SplitTexts`` (id, content hash, uids and
texts, to read the reference's statistics of the split from the feature cache), never the
split itself, its folder or its labels.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import features, finetune, targets
from ..api import ModelAccess, undeclared
from ..attacks.dcpdd import leading_specials as _leading_specials
from ..attacks.gradnorm import GRADIENT_REDUCTIONS
from ..attacks.softprompt import SoftPrompt
from ..errors import MembenchError
from ..suite.store import make_uid


@dataclass(frozen=True)
class SplitTexts:
    """What of a split the model access may know: the split's id and content hash (the
    feature cache's key) and its samples' uids and texts in row order. No labels, no path."""

    id: str
    content_hash: str
    samples: pd.DataFrame  # columns uid and text only

    @classmethod
    def of(cls, split) -> "SplitTexts":
        return cls(split.id, split.content_hash, split.samples[["uid", "text"]].copy())


class MeteredModelAccess(ModelAccess):
    def __init__(
        self,
        target,
        *,
        granted=("features",),
        reference=None,
        split_texts: SplitTexts | None = None,
        batch_tokens: int = 16384,
        progress: bool = False,
        scorer: str | None = None,
    ):
        self.target = target
        self.scorer = scorer  # named in the error for an undeclared capability
        self.declared = tuple(granted)
        self.granted = set(granted)
        self.used: list[str] = []  # capabilities called, in first-call order
        self.reference_target = reference
        self.split_texts = split_texts  # these texts are scored on the reference from its cache
        self.batch_tokens = batch_tokens
        self.progress = progress
        self.usage = {
            "target_forward_texts": 0,
            "target_forward_tokens": 0,
            "reference_forward_tokens": 0,
            "reference_cached_texts": 0,
            "gradient_tokens": 0,
            "generated_tokens": 0,
        }
        self.meter = None  # a fit_budget.FitMeter while the scorer's fit() runs
        self.bars = []  # progress bars of fit's training, closed when fit ends (however it ends)

    @contextmanager
    def fitting(self, meter):
        """Charge every call made inside the block to ``meter`` (a ``fit_budget.FitMeter``)."""
        self.meter = meter
        try:
            yield meter
        finally:
            self.meter = None
            for bar in self.bars:
                bar.close()
            self.bars.clear()

    def charge(self, *, forward_tokens: int = 0, backward_tokens: int = 0, steps: int = 0) -> None:
        """Count a call against the fit budget before it runs (nothing outside ``fit``)."""
        if self.meter is not None:
            self.meter.charge(forward_tokens=forward_tokens, backward_tokens=backward_tokens, steps=steps)

    def _need(self, capability: str, method: str | None = None) -> None:
        if capability not in self.granted:
            raise undeclared(capability, method or capability, self.scorer, self.declared)
        if capability not in self.used:
            self.used.append(capability)

    @property
    def vocab_size(self) -> int:
        """Size of the target tokenizer's vocabulary (for frequency tables; a target handle
        knows it without loading the tokenizer)."""
        return int(getattr(self.target, "vocab_size", 0) or len(self.target.tokenizer))

    @property
    def tokenizer_tag(self) -> str:
        """The target tokenizer's hash (a cache key for derived tables)."""
        return str(self.target.tokenizer_hash)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return features.tokenize(self.target.tokenizer, texts, self.target.max_length)

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True,
                 chat_template: str | None = None) -> list[int]:
        tok = self.target.tokenizer
        if not chat_template and not getattr(tok, "chat_template", None):
            raise MembenchError(f"target {self.target.id} has no chat template",
                                "give one from a file (e.g. mia_tuner_aligned:chat_template=FILE), use a chat "
                                "(aligned) target, or the scorer's variant for base models")
        kwargs = {"chat_template": chat_template} if chat_template else {}
        ids = tok.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=add_generation_prompt,
                                      **kwargs)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding
            ids = ids["input_ids"]
        return [int(i) for i in ids]

    def soft_prompt(self, num_virtual_tokens: int = 50, init_text: str = "", *, learning_rate: float = 5e-4,
                    total_steps: int = 1, seed: int = 0):
        self._need("fit", "soft_prompt")
        if self.meter is None:
            raise MembenchError(f"scorer {self.scorer} asked for a soft prompt outside fit()",
                                "create and train it inside fit(); score() may use the trained handle")
        return SoftPrompt(self, num_virtual_tokens, init_text, learning_rate=learning_rate,
                          total_steps=total_steps, seed=seed)

    def _forward(self, model_target, token_ids, usage_key: str, desc: str):
        self.charge(forward_tokens=sum(len(ids) for ids in token_ids))
        counter: dict = {}
        stats = features.compute(
            model_target.model,
            token_ids,
            pad_id=features.pad_id(model_target.tokenizer),
            device=model_target.device,
            batch_tokens=self.batch_tokens,
            progress=self.progress,
            counter=counter,
            desc=desc,
        )
        self.usage[usage_key] += counter.get("forward_tokens", 0)
        return stats

    def _texts(self, model_target, texts, usage_key: str, desc: str):
        """Statistics of whole texts under the model's context rule (as the feature pass makes them)."""
        counter: dict = {}
        stats = features.text_stats(model_target, texts, batch_tokens=self.batch_tokens, progress=self.progress,
                                    counter=counter, desc=desc, before=lambda n: self.charge(forward_tokens=n))
        self.usage[usage_key] += counter.get("forward_tokens", 0)
        return stats

    def logprobs(self, texts: list[str]):
        self._need("logprobs", "logprobs")
        self.usage["target_forward_texts"] += len(texts)
        return self._texts(self.target, texts, "target_forward_tokens", "logprobs")

    def conditional_logprobs(self, prefix: str, texts: list[str]):
        """Statistics of the tokens each text has scored alone (``logprobs``), now conditioned on
        ``prefix``: the row is the prefix (with the tokenizer's own leading special tokens) then
        the text as tokenized alone less its leading special tokens, and the last ``len(ids) - 1``
        predictions are kept, so both see the same tokens, whatever special tokens the tokenizer
        adds at either end. When prefix and text exceed the context, the prefix is cut from its
        left end (the text itself is never cut further)."""
        self._need("logprobs", "conditional_logprobs")
        tok, max_len = self.target.tokenizer, self.target.max_length
        prefix_ids = list(tok(prefix, add_special_tokens=True)["input_ids"]) if prefix else []
        alone = self.tokenize(texts)
        lead = _leading_specials(tok)
        rows, keep = [], []
        for full in alone:
            full = list(full)
            n_scored = max(len(full) - 1, 0)  # alone, every token after the first is predicted
            body = full[lead:] if prefix_ids else full
            n_scored = min(n_scored, len(body))  # (two or more leading specials: the text's own)
            room = max(max_len - len(body), 0)
            rows.append((prefix_ids[len(prefix_ids) - room:] if room else []) + body)
            keep.append(n_scored)
        self.usage["target_forward_texts"] += len(texts)
        stats = self._forward(self.target, rows, "target_forward_tokens", "conditional logprobs")
        per, n_in = [], []
        for i, k in enumerate(keep):
            s = stats.sample(i)
            per.append({name: v[len(v) - k :] if k else v[:0] for name, v in s.items()})
            n_in.append(k + 1 if k else len(alone[i]))
        return features.TokenStats.from_lists(per, n_in)

    def reference(self, texts: list[str]):
        self._need("reference", "reference")
        if self.reference_target is None:
            raise MembenchError("this scorer needs a reference model", "pass --reference MODEL")
        ref = self.reference_target
        if self.split_texts is not None and list(texts) == self.split_texts.samples["text"].tolist():
            counter: dict = {}
            stats = features.get_features(ref, self.split_texts, batch_tokens=self.batch_tokens,
                                          progress=self.progress, counter=counter)
            self.charge(forward_tokens=counter.get("forward_tokens", 0))
            self.usage["reference_forward_tokens"] += counter.get("forward_tokens", 0)
            self.usage["reference_cached_texts"] += len(texts) if not counter.get("forward_tokens") else 0
            return stats
        stats = self._texts(ref, texts, "reference_forward_tokens", "reference")
        self._last_reference = (list(texts), stats)
        return stats

    def _cached_or_new(self, model_target, texts: list[str], usage_key: str, desc: str):
        """Statistics of ``texts`` on ``model_target``: from its feature cache when the texts are
        this split's (computed and cached there once), else a new pass; charged either way."""
        if self.split_texts is not None and list(texts) == self.split_texts.samples["text"].tolist():
            counter: dict = {}
            stats = features.get_features(model_target, self.split_texts, batch_tokens=self.batch_tokens,
                                          progress=self.progress, counter=counter)
            self.charge(forward_tokens=counter.get("forward_tokens", 0))
            self.usage[usage_key] = self.usage.get(usage_key, 0) + counter.get("forward_tokens", 0)
            return stats
        self.usage.setdefault(usage_key, 0)
        return self._texts(model_target, texts, usage_key, desc)

    def shadow_stats(self, train_texts: list[str], score_texts: list[str], n_shadows: int, *, seed: int = 0):
        """See ``ModelAccess.shadow_stats``. Shadows are built by ``finetune.shadow_models``
        (reused when built before); usage records the shadows' forward tokens and their training
        (steps, tokens, seconds; built or reused)."""
        self._need("reference", "shadow_stats")
        built = finetune.shadow_models(self.target.id, list(train_texts), int(n_shadows), seed=seed,
                                       device=self.target.device, progress=self.progress)
        uids = [make_uid(t) for t in score_texts]
        stats = []
        for k, shadow in enumerate(built):
            model = targets.load_target(shadow["target"], device=self.target.device, dtype=self.target.dtype)
            stats.append(self._cached_or_new(model, list(score_texts), "shadow_forward_tokens", f"shadow {k}"))
            del model
        keep = np.array([[u in shadow["trained"] for u in uids] for shadow in built], dtype=bool)
        counted = getattr(self, "shadow_targets", [])
        new = [s for s in built if s["target"] not in counted]  # each shadow's training counted once per run
        for key, field in (("shadow_training_steps", "steps"), ("shadow_training_tokens", "tokens")):
            self.usage[key] = self.usage.get(key, 0) + int(sum(s[field] or 0 for s in new))
        self.usage["shadow_training_seconds"] = round(self.usage.get("shadow_training_seconds", 0.0)
                                                      + sum(s["seconds"] or 0.0 for s in new), 3)
        self.usage["shadows_built"] = self.usage.get("shadows_built", 0) + sum(not s["reused"] for s in new)
        self.usage["shadows_reused"] = self.usage.get("shadows_reused", 0) + sum(bool(s["reused"]) for s in new)
        self.shadow_targets = counted + [s["target"] for s in new]
        return stats, keep

    def reference_seen(self, texts: list[str]):
        """The reference's statistics of exactly ``texts`` when the last ``reference`` call was on
        them (a second forward pass saved; nothing charged), else None."""
        last = getattr(self, "_last_reference", None)
        return last[1] if last is not None and last[0] == list(texts) else None

    def gradient_norms(self, texts: list[str], reduction: str = "global-l2") -> np.ndarray:
        """Per text (batch size 1), a norm of g = d/dtheta mean_t -l_t: ``global-l2`` ||g||_2 over
        all parameters jointly; ``mean-tensor-linf`` / ``-l2`` / ``-l1`` the mean over parameter
        tensors of each tensor's norm (MIMIR's GradNorm, p = inf by default). NaN for texts with
        fewer than two tokens."""
        import torch
        from tqdm.auto import tqdm

        self._need("gradients", "gradient_norms")
        if reduction not in GRADIENT_REDUCTIONS:
            raise MembenchError(f"unknown gradient norm reduction {reduction!r}",
                                f"choose one of {', '.join(GRADIENT_REDUCTIONS)}")
        model = self.target.model
        out = np.full(len(texts), np.nan)
        params = [p for p in model.parameters()]
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(True)
        try:
            for i, ids in enumerate(tqdm(self.tokenize(texts), desc="gradient norms",
                                         disable=not self.progress, unit="text")):
                if len(ids) < 2:
                    continue
                self.charge(forward_tokens=len(ids), backward_tokens=len(ids))
                x = torch.tensor([ids], device=self.target.device)
                model.zero_grad(set_to_none=True)
                with torch.enable_grad():
                    logits = model(input_ids=x).logits[0, :-1].float()
                    loss = torch.nn.functional.cross_entropy(logits, x[0, 1:])
                    loss.backward()
                grads = [p.grad.detach() for p in params if p.grad is not None]
                if reduction == "global-l2":
                    out[i] = float(torch.stack([g.double().square().sum() for g in grads]).sum().sqrt())
                else:  # one device sync per text, not one per tensor
                    order = {"mean-tensor-linf": float("inf"), "mean-tensor-l2": 2, "mean-tensor-l1": 1}[reduction]
                    out[i] = float(torch.stack([g.norm(order) for g in grads]).mean())
                self.usage["gradient_tokens"] += len(ids)
            model.zero_grad(set_to_none=True)
        finally:
            for p, f in zip(params, flags):
                p.requires_grad_(f)
        return out

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        import torch

        self._need("generate", "generate")
        tok, model = self.target.tokenizer, self.target.model
        outs = []
        for prompt in prompts:
            ids = torch.tensor([self.tokenize([prompt])[0]], device=self.target.device)
            self.charge(forward_tokens=int(ids.shape[1]) + int(max_new_tokens))
            with torch.no_grad():
                gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=max_new_tokens,
                                     pad_token_id=features.pad_id(tok))
            new = gen[0, ids.shape[1] :]
            self.usage["generated_tokens"] += int(new.numel())
            outs.append(tok.decode(new, skip_special_tokens=True))
        return outs

    # Added for the attacks of 2024-2025 (SaMIA, Infilling score, DE-COP): the same capability
    # rules, fit-budget charges and usage counters as the methods above.

    def _rows(self, sequences, method: str) -> list[list[int]]:
        """Token-id rows checked against the target: non-empty, within the context, valid ids."""
        vocab = self.vocab_size
        rows = []
        for i, row in enumerate(sequences):
            row = [int(t) for t in row]
            if not 1 <= len(row) <= self.target.max_length:
                raise MembenchError(f"{method}(): row {i} has {len(row)} tokens; rows hold 1 to "
                                    f"{self.target.max_length} tokens (the context of {self.target.id})",
                                    "cut the row to the context before the call")
            if min(row) < 0 or max(row) >= vocab:
                raise MembenchError(f"{method}(): row {i} holds a token id outside 0..{vocab - 1}",
                                    "pass ids from access.tokenize() or the target's vocabulary")
            rows.append(row)
        return rows

    def token_logprobs(self, sequences: list[list[int]]):
        self._need("logprobs", "token_logprobs")
        rows = self._rows(sequences, "token_logprobs")
        self.usage["target_forward_texts"] += len(rows)
        return self._forward(self.target, rows, "target_forward_tokens", "token logprobs")

    def _logits(self, rows):
        """Per row (batch size 1: no padding, so nothing moves with the batch), the fp32 logits
        of the target at every position, metered as forward tokens."""
        import torch

        self.charge(forward_tokens=sum(len(r) for r in rows))
        self.usage["target_forward_texts"] += len(rows)
        for row in rows:
            x = torch.tensor([row], device=self.target.device)
            with torch.no_grad():
                logits = self.target.model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].float()
            self.usage["target_forward_tokens"] += len(row)
            yield logits

    def argmax_tokens(self, sequences: list[list[int]]) -> list[list[int]]:
        self._need("logprobs", "argmax_tokens")
        rows = self._rows(sequences, "argmax_tokens")
        return [logits[:-1].argmax(-1).tolist() for logits in self._logits(rows)]

    def next_logprobs(self, sequences: list[list[int]], candidates: list[int]) -> np.ndarray:
        import torch

        self._need("logprobs", "next_logprobs")
        rows = self._rows(sequences, "next_logprobs")
        cand = [int(c) for c in candidates]
        if not cand or min(cand) < 0 or max(cand) >= self.vocab_size:
            raise MembenchError(f"next_logprobs(): candidates must be token ids in 0..{self.vocab_size - 1}",
                                "pass at least one id from access.tokenize()")
        out = np.zeros((len(rows), len(cand)), dtype=np.float64)
        for i, logits in enumerate(self._logits(rows)):
            out[i] = torch.log_softmax(logits[-1], dim=-1)[cand].double().cpu().numpy()
        return out

    def sample(self, prompts: list[str], max_new_tokens: int, num_samples: int = 1, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> list[list[str]]:
        """Prompt by prompt: ``model.generate(do_sample=True, ...)`` with ``num_return_sequences``
        under a torch seed derived from (``seed``, the prompt's token ids), the global RNG state
        restored afterwards. New tokens are capped where the context ends. A continuation counts
        its tokens up to and including the first end-of-sequence token; it is decoded without
        special tokens. Metered: the prompt once per sample as forward tokens (generate expands
        it), every new token as a generated token."""
        import torch

        self._need("generate", "sample")
        if int(num_samples) < 1 or int(max_new_tokens) < 1:
            raise MembenchError("sample() needs num_samples >= 1 and max_new_tokens >= 1",
                                "ask for at least one sample of at least one token")
        if not temperature > 0 or not 0 < top_p <= 1 or int(top_k) < 0:
            raise MembenchError(f"sample(): temperature must be > 0, top_p in (0, 1] and top_k >= 0 "
                                f"(got {temperature}, {top_p}, {top_k})", "pass valid sampling settings")
        tok, model, device = self.target.tokenizer, self.target.model, self.target.device
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = set(eos if isinstance(eos, list | tuple) else [eos if eos is not None else tok.eos_token_id]) - {None}
        outs = []
        for prompt in prompts:
            ids = self.tokenize([prompt])[0]
            new = min(int(max_new_tokens), self.target.max_length - len(ids))
            if not ids or new < 1:
                raise MembenchError(f"sample(): a prompt of {len(ids)} tokens leaves no room to generate in the "
                                    f"context of {self.target.max_length}", "shorten the prompt")
            self.charge(forward_tokens=int(num_samples) * (len(ids) + new))
            x = torch.tensor([ids], device=device)
            devices = [device] if str(device).startswith("cuda") else []
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(sample_seed(seed, ids))
                gen = model.generate(x, attention_mask=torch.ones_like(x), do_sample=True,
                                     temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                                     max_new_tokens=new, num_return_sequences=int(num_samples),
                                     pad_token_id=features.pad_id(tok))
            texts = []
            for row in gen[:, len(ids):].tolist():
                n = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
                self.usage["generated_tokens"] += n
                texts.append(tok.decode(row[:n], skip_special_tokens=True))
            self.usage["target_forward_tokens"] += int(num_samples) * len(ids)
            outs.append(texts)
        return outs


def sample_seed(seed: int, ids) -> int:
    """The torch seed of one prompt's samples: from the scorer's seed and the prompt's ids."""
    import hashlib

    digest = hashlib.sha256(f"{int(seed)}:{','.join(map(str, ids))}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1

