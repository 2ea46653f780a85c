"""The in-process ``ModelAccess``: what built-in scorers may do with the target, metered.

One instance is made per scorer with the capabilities that scorer declared; any other call
raises. Every call is counted in ``usage`` (texts and tokens forwarded on the target and on
the reference, tokens back-propagated, tokens generated), which the runner records in the
result. Inside ``fitting(meter)`` (a scorer's ``fit``) every call is also charged to the fit
meter before it runs, and refused when it would pass the run's fit budget (``fit_budget``). The
sandboxed proxy for submitted scorers implements the same interface.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .. import features
from ..api import ModelAccess, undeclared
from ..errors import MembenchError
from .softprompt import SoftPrompt


class InProcessAccess(ModelAccess):
    def __init__(
        self,
        target,
        *,
        granted=("features",),
        reference=None,
        split=None,
        batch_tokens: int = 16384,
        progress: bool = False,
        scorer: str | None = None,
    ):
        self.target = target
        self.scorer = scorer  # named in the error for an undeclared capability
        self.declared = tuple(granted)
        self.granted = set(granted)
        self.reference_target = reference
        self.split = split  # texts of this split are scored on the reference from its cache
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

    def chat_ids(self, messages: list[dict], add_generation_prompt: bool = True) -> list[int]:
        tok = self.target.tokenizer
        if not getattr(tok, "chat_template", None):
            raise MembenchError(f"target {self.target.id} has no chat template",
                                "use a chat (aligned) target, or the scorer's variant for base models")
        ids = tok.apply_chat_template(list(messages), tokenize=True, add_generation_prompt=add_generation_prompt)
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
        if self.split is not None and list(texts) == self.split.samples["text"].tolist():
            counter: dict = {}
            stats = features.get_features(ref, self.split, batch_tokens=self.batch_tokens,
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
        if self.split is not None and list(texts) == self.split.samples["text"].tolist():
            counter: dict = {}
            stats = features.get_features(model_target, self.split, batch_tokens=self.batch_tokens,
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
        from .. import finetune, targets
        from ..suite.store import make_uid

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

    def gradient_norms(self, texts: list[str]) -> np.ndarray:
        """Per text (batch size 1): || d/dtheta mean_t -l_t ||_2 over all parameters; NaN for
        texts with fewer than two tokens."""
        import torch
        from tqdm.auto import tqdm

        self._need("gradients", "gradient_norms")
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
                sq = torch.stack([p.grad.double().square().sum() for p in params if p.grad is not None])
                out[i] = float(sq.sum().sqrt())  # one device sync per text, not one per tensor
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


def _leading_specials(tok) -> int:
    """How many special tokens the tokenizer puts before a text (BOS: 1 for OPT and Llama, 0
    for Pythia), found by where the bare tokens of a probe start in the full ones."""
    full = list(tok("a b", add_special_tokens=True)["input_ids"])
    bare = list(tok("a b", add_special_tokens=False)["input_ids"])
    for i in range(len(full) - len(bare) + 1):
        if full[i:i + len(bare)] == bare:
            return i
    return 0
