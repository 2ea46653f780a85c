"""A trainable soft prompt in front of the frozen target: the ``fit`` capability's trainer.

The prompt is peft's prompt-tuning embedding (``PromptTuningConfig`` + ``PromptEmbedding``:
``num_virtual_tokens`` vectors of the target's embedding width, initialised from the target's
embeddings of ``init_text``, repeated or cut to length, or from random vocabulary rows when
there is no text). It is prepended to the token embeddings of each sequence; the target's
weights never change (their gradients are switched off for the forward pass, and restored).

``logprobs(sequences)`` returns, for every token of every sequence (the first one included:
it is predicted from the last virtual token), log p(token | prompt, earlier tokens) from the
fp32 log-softmax, and optionally the log-probabilities of given ``next_tokens`` after the whole
sequence. With ``train=True`` the computation graph is kept, and ``step(grads)`` back-propagates
sum_i sum_t grads[i][t] * logprob[i][t] (+ the same for the next tokens) into the prompt and
takes one AdamW step with a linear learning-rate decay. So a scorer's objective is any
differentiable function of those log-probabilities: it sends d objective / d logprob, and
the chain rule gives exactly the gradient of the objective. Only arrays cross the interface,
so a sandboxed scorer can train the same way over its pipe.

Sequences longer than the context minus the prompt keep their first tokens. Every forward
and backward token (virtual ones included) and every step is charged to the access's fit
meter before it runs; forward passes after ``fit`` (scoring) are counted in the access's usage.
"""

from __future__ import annotations

import numpy as np

from ..errors import MembenchError


class SoftPrompt:
    def __init__(self, access, num_virtual_tokens: int, init_text: str = "", *, learning_rate: float,
                 total_steps: int, seed: int):
        import torch
        from peft import PromptTuningConfig, PromptTuningInit, TaskType
        from peft.tuners.prompt_tuning import PromptEmbedding
        from transformers import get_linear_schedule_with_warmup

        target = access.target
        n = int(num_virtual_tokens)
        if not 1 <= n < target.max_length - 1:
            raise MembenchError(f"a soft prompt needs 1 to {target.max_length - 2} virtual tokens, got {n}",
                                "choose a shorter prompt")
        if not learning_rate > 0 or int(total_steps) < 1:
            raise MembenchError("a soft prompt needs a positive learning rate and at least one step",
                                f"got learning_rate={learning_rate}, total_steps={total_steps}")
        self.access = access
        self.n = n
        self.model = target.model
        self.device = target.device
        self.max_tokens = target.max_length - n
        self.pad_id = _pad_id(target.tokenizer)
        words = self.model.get_input_embeddings()
        config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=n,
            token_dim=words.embedding_dim,
            num_transformer_submodules=1,
            prompt_tuning_init=PromptTuningInit.TEXT if init_text else PromptTuningInit.SAMPLE_VOCAB,
            prompt_tuning_init_text=init_text or None,
            tokenizer_name_or_path=str(target.path) if init_text else None,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.encoder = PromptEmbedding(config, words).to(self.device).float()
        self.encoder.train()
        self.optimizer = torch.optim.AdamW(self.encoder.parameters(), lr=float(learning_rate), weight_decay=0.0)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, num_warmup_steps=0,
                                                         num_training_steps=int(total_steps))
        self._pending = None  # (per-row token log-probs, next-token log-probs, tokens) of the last train pass
        self.steps = 0
        from tqdm.auto import tqdm

        self.bar = tqdm(total=int(total_steps), desc=f"fit {access.scorer or 'soft prompt'}", unit="step",
                        disable=not access.progress, leave=False)
        getattr(access, "bars", []).append(self.bar)

    def _cut(self, sequences) -> list[list[int]]:
        rows = [[int(t) for t in seq][: self.max_tokens] for seq in sequences]
        if any(len(r) == 0 for r in rows):
            raise MembenchError("soft prompt: every sequence needs at least one token", "drop empty texts first")
        return rows

    def _batches(self, lengths) -> list[list[int]]:
        from ..features import plan_batches

        return plan_batches([n + self.n for n in lengths], self.access.batch_tokens)

    def logprobs(self, sequences, next_tokens=None, *, train: bool = False):
        """(per-token log p of each sequence, [rows x len(next_tokens)] log p of each next token
        after the whole sequence, or None)."""
        import torch

        rows = self._cut(sequences)
        tokens = sum(len(r) + self.n for r in rows)
        if train:
            if self.access.meter is None:
                raise MembenchError("soft prompt training outside fit()", "train inside fit(); score() may only evaluate")
            self.access.charge(forward_tokens=tokens)
        else:
            self.access.charge(forward_tokens=tokens)
            self.access.usage["soft_prompt_forward_tokens"] = self.access.usage.get("soft_prompt_forward_tokens", 0) + tokens
        nxt = None if next_tokens is None else torch.tensor([int(t) for t in next_tokens], device=self.device)
        per_row: list = [None] * len(rows)
        next_row: list = [None] * len(rows)
        params = list(self.model.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            with torch.set_grad_enabled(train):
                for batch in self._batches([len(r) for r in rows]):
                    lps, nexts = self._forward([rows[i] for i in batch], nxt)
                    for j, i in enumerate(batch):
                        per_row[i] = lps[j]
                        next_row[i] = None if nexts is None else nexts[j]
        finally:
            for p, f in zip(params, flags):
                p.requires_grad_(f)
        if train:
            self._pending = (per_row, next_row, tokens)
        values = [t.detach().double().cpu().numpy() for t in per_row]
        next_values = None if nxt is None else torch.stack(next_row).detach().double().cpu().numpy()
        return values, next_values

    def _forward(self, rows, nxt):
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=self.device)
            mask[i, : len(r)] = 1
        embeds = self.model.get_input_embeddings()(ids)
        prompt = self.encoder(torch.arange(self.n, device=self.device)).to(embeds.dtype)
        inputs = torch.cat([prompt.unsqueeze(0).expand(len(rows), -1, -1), embeds], dim=1)
        attention = torch.cat([torch.ones((len(rows), self.n), dtype=torch.long, device=self.device), mask], dim=1)
        kwargs = {}
        if _accepts_position_ids(self.model):
            kwargs["position_ids"] = (attention.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(inputs_embeds=inputs, attention_mask=attention, **kwargs).logits
        lps, nexts = [], []
        for i, r in enumerate(rows):
            # position n - 1 + j predicts token j; position n - 1 + len(r) predicts the next token
            logp = torch.log_softmax(logits[i, self.n - 1 : self.n + len(r)].float(), dim=-1)
            lps.append(logp[: len(r)].gather(-1, ids[i, : len(r)].unsqueeze(-1)).squeeze(-1))
            if nxt is not None:
                nexts.append(logp[len(r)].index_select(0, nxt))
        return lps, (nexts if nxt is not None else None)

    def step(self, grads, next_grads=None) -> None:
        """Back-propagate d objective / d log p of the last ``train=True`` pass (one array per
        sequence, and [rows x next tokens] for the next tokens) and take one optimizer step.
        The objective is minimized."""
        import torch

        if self.access.meter is None:
            raise MembenchError("soft prompt training outside fit()", "train inside fit(); score() may only evaluate")
        if self._pending is None:
            raise MembenchError("soft prompt: step() needs a logprobs(..., train=True) call first",
                                "compute the objective on a training pass, then step with its gradient")
        per_row, next_row, tokens = self._pending
        if len(grads) != len(per_row) or any(len(g) != len(t) for g, t in zip(grads, per_row)):
            raise MembenchError("soft prompt: step() got gradients of another shape than the last training pass",
                                "pass one gradient per log-probability of logprobs(..., train=True)")
        self.access.charge(backward_tokens=tokens, steps=1)
        self._pending = None
        total = sum((t * torch.as_tensor(np.asarray(g, dtype=np.float32), device=t.device)).sum()
                    for t, g in zip(per_row, grads))
        if next_grads is not None:
            if next_row[0] is None:
                raise MembenchError("soft prompt: next-token gradients given, but the training pass had no next tokens",
                                    "pass next_tokens to logprobs(..., train=True)")
            stacked = torch.stack(next_row)
            total = total + (stacked * torch.as_tensor(np.asarray(next_grads, dtype=np.float32),
                                                       device=stacked.device)).sum()
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.steps += 1
        self.bar.update(1)
        if self.steps >= self.bar.total:
            self.bar.close()

    def state(self) -> dict:
        return {"num_virtual_tokens": self.n, "steps": self.steps}


def _pad_id(tokenizer) -> int:
    from ..features import pad_id

    return pad_id(tokenizer)


def _accepts_position_ids(model) -> bool:
    import inspect

    try:
        return "position_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
