"""MIA-Tuner (Fu et al. 2024, AAAI 2025; reference code wjfu99/MIA-Tuner, ``mia_hybrid.py``): a
soft prompt trained on labelled calibration texts through the frozen target, in two variants:
``mia_tuner`` for base models and ``mia_tuner_aligned`` for chat models (each class docstring
holds its exact definition).

Training (both variants): a soft prompt of ``num_virtual_tokens`` vectors (peft prompt
tuning, initialised from the target's embeddings of ``init_text``) is trained with AdamW
(learning rate ``learning_rate``, no weight decay, linear decay to 0, no warm-up) for
``epochs`` epochs over balanced batches of ``batch_size`` members and ``batch_size``
non-members of the calibration subset: each class is shuffled with ``seed``, cut to the
smaller class's size and to ``max_train_samples / 2`` per class, then paired; the pairs are
reshuffled every epoch. Defaults are the reference's: 50 virtual tokens, 50 epochs (its
scripts), batches of 8 + 8, learning rate 5e-4, 160 training texts, temperature 1. Texts are
tokenized by the target's tokenizer and cut to the context left after the prompt.

Training runs inside ``fit`` through the ``fit`` capability (``access.soft_prompt``): the
objective is computed here from the per-token log-probabilities the harness returns, and its
gradient with respect to them is handed back, so every forward and backward token, step and
second is metered and capped by the run's fit budget.
"""

from __future__ import annotations

import math

import numpy as np

from ..api import Scorer, ScoringInput
from ..errors import MembenchError

INIT_TEXT = "Here is the prefix of a training set text, please verbatim generate the subsequent tokens:"
QUESTION = "Please tell me whether the given example is used in the training dataset: \n{text}"


def contrastive_term(losses, members, temperature: float = 1.0):
    """Per text, the reference's contrastive loss C_i (torch): see the module doc."""
    import torch

    n = len(losses)
    dist = (losses.unsqueeze(0) - losses.unsqueeze(1)).abs() / 10
    sim = torch.exp(-dist) / temperature
    eye = torch.eye(n, dtype=torch.bool, device=losses.device)
    sim = sim.masked_fill(eye, float("-inf"))
    same = (members.unsqueeze(0) == members.unsqueeze(1)) & ~eye
    num = torch.logsumexp(sim.masked_fill(~same, float("-inf")), dim=1)
    den = torch.logsumexp(sim, dim=1)
    return den - num


def unaligned_objective(losses, members, temperature: float = 1.0):
    """mean_i C_i + relu(mean L_M - mean L_N) (torch)."""
    import torch

    gap = losses[members].mean() - losses[~members].mean()
    return contrastive_term(losses, members, temperature).mean() + torch.relu(gap)


class _MIATuner(Scorer):
    requires = ("features", "fit")
    default_calibration = "cal80"

    def __init__(self, num_virtual_tokens: int = 50, epochs: int = 50, batch_size: int = 8,
                 learning_rate: float = 5e-4, max_train_samples: int = 160, temperature: float = 1.0,
                 init_text: str = INIT_TEXT, seed: int = 42):
        if num_virtual_tokens < 1 or epochs < 1 or batch_size < 1 or max_train_samples < 0:
            raise ValueError("num_virtual_tokens, epochs and batch_size must be at least 1, max_train_samples "
                             "at least 0 (0: no cap)")
        if not learning_rate > 0 or not temperature > 0:
            raise ValueError("learning_rate and temperature must be positive")
        self.num_virtual_tokens = int(num_virtual_tokens)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.max_train_samples = int(max_train_samples)
        self.temperature = float(temperature)
        self.init_text = str(init_text)
        self.seed = int(seed)
        self.prompt = None

    def _pairs(self, labels) -> tuple[list[int], list[int]]:
        """Balanced, seeded member and non-member indices (the reference's data preparation)."""
        labels = np.asarray(labels)
        rng = np.random.default_rng(self.seed)
        members = rng.permutation(np.flatnonzero(labels == 1)).tolist()
        nonmembers = rng.permutation(np.flatnonzero(labels == 0)).tolist()
        k = min(len(members), len(nonmembers))
        if self.max_train_samples:
            k = min(k, self.max_train_samples // 2)
        if k < 1:
            raise MembenchError(f"scorer {self.name} needs at least one member and one non-member to train on",
                                "use a larger calibration subset")
        return members[:k], nonmembers[:k]

    def _sequences(self, inputs: ScoringInput) -> list[list[int]]:
        raise NotImplementedError

    def _batch_objective(self, lps, nexts, members):
        raise NotImplementedError

    def _score_rows(self, lps, nexts) -> np.ndarray:
        raise NotImplementedError

    def _next_tokens(self, access):
        return None

    def fit(self, calibration: ScoringInput, labels) -> None:
        import torch

        members, nonmembers = self._pairs(np.asarray(labels))
        seqs = self._sequences(calibration)
        batches_per_epoch = math.ceil(len(members) / self.batch_size)
        self.prompt = calibration.access.soft_prompt(
            self.num_virtual_tokens, self.init_text, learning_rate=self.learning_rate,
            total_steps=self.epochs * batches_per_epoch, seed=self.seed)
        nxt = self._next_tokens(calibration.access)
        rng = np.random.default_rng(self.seed + 1)
        history, by_epoch = [], []
        for _ in range(self.epochs):
            order = rng.permutation(len(members))
            for b in range(batches_per_epoch):
                pick = order[b * self.batch_size : (b + 1) * self.batch_size]
                rows = [members[i] for i in pick] + [nonmembers[i] for i in pick]
                is_member = torch.tensor([True] * len(pick) + [False] * len(pick))
                values, next_values = self.prompt.logprobs([seqs[i] for i in rows], nxt, train=True)
                lps = [torch.tensor(v, requires_grad=True) for v in values]
                nexts = None if next_values is None else torch.tensor(next_values, requires_grad=True)
                objective = self._batch_objective(lps, nexts, is_member)
                objective.backward()
                self.prompt.step([t.grad.numpy() for t in lps], None if nexts is None else nexts.grad.numpy())
                history.append(float(objective.detach()))
            by_epoch.append(float(np.mean(history[-batches_per_epoch:])))
        self.details = {"train_texts_per_class": len(members), "steps": len(history),
                        "objective_by_epoch": [round(v, 6) for v in by_epoch]}

    def score(self, inputs: ScoringInput) -> np.ndarray:
        if self.prompt is None:
            raise MembenchError(f"scorer {self.name} was not fitted", "the harness calls fit() before score()")
        seqs = self._sequences(inputs)
        out = np.full(len(seqs), np.nan)
        keep = [i for i, s in enumerate(seqs) if len(s)]
        if keep:
            values, next_values = self.prompt.logprobs([seqs[i] for i in keep], self._next_tokens(inputs.access))
            out[keep] = self._score_rows(values, next_values)
        return out


class MIATuner(_MIATuner):
    """MIA-Tuner for base (unaligned) models.

    Per text x, the loss under the soft prompt is L(x) = -(1/n) sum_{t=1..n}
    log p(x_t | prompt, x_<t) over all n tokens of x (the first token is predicted from the
    prompt). For a batch of member losses L_M and non-member losses L_N (all 2B values L_i) the
    objective is

        mean_i C_i + relu(mean(L_M) - mean(L_N)),
        C_i = -log( sum_{j != i, same class} e^{s_ij} / sum_{j != i} e^{s_ij} ),
        s_ij = exp(-|L_i - L_j| / 10) / temperature,

    the reference's contrastive (NT-Xent-like) term pulling same-class losses together plus the
    member/non-member loss gap (members must end with the lower loss), both with weight 1.
    score(x) = -L(x) under the trained prompt (higher = member).

    Trained on the calibration subset as the module docstring says (peft prompt tuning through
    the frozen target, AdamW with linear decay, balanced member/non-member batches; the
    reference's defaults: 50 virtual tokens, 50 epochs, batches of 8 + 8, lr 5e-4, 160 texts).
    """

    name = "mia_tuner"
    title = "MIA-Tuner"
    method = "mia_tuner"
    citation = "Fu et al. 2024, AAAI 2025 (arXiv 2408.08661)"
    default_set = "fit"

    def _sequences(self, inputs):
        return inputs.access.tokenize(inputs.texts)

    def _batch_objective(self, lps, nexts, members):
        import torch

        losses = torch.stack([-lp.mean() for lp in lps])
        return unaligned_objective(losses, members, self.temperature)

    def _score_rows(self, lps, nexts):
        return np.asarray([float(np.mean(v)) for v in lps])


class MIATunerAligned(_MIATuner):
    """MIA-Tuner for aligned (chat) models; refused for a target without a chat template.

    Each text becomes a conversation: the user asks "Please tell me whether the given example is
    used in the training dataset: \\n{text}" and the target's chat template adds its generation
    prompt. With P the prompt's tokens, p_Y = p("Yes" | soft prompt, P) and p_N = p("No" | soft
    prompt, P) for the first token of the assistant's answer "Yes" / "No" under the template,
    the objective on a batch is the sum (weights 1, 1, 1) of

    - llm: the mean over the two classes of the mean over texts of
      (sum_{t in P} w * (-log p(P_t | prompt, P_<t)) - log p(answer)) / (|P| + 1), with
      w = ``prompt_loss_weight`` (0.01) and answer "Yes" for members, "No" for non-members (the
      template's tokens after the answer token, fixed by the template, are left out);
    - clf: the cross-entropy of the two-way softmax over (log p_N, log p_Y) against Yes for
      members and No for non-members;
    - err: -mean over the pairs of log(1 - p_N(member)) + log(1 - p_Y(non-member)).

    score(x) = p_Y / (p_Y + p_N) at the generation prompt (higher = member).

    Trained on the calibration subset as the module docstring says (peft prompt tuning through
    the frozen target, AdamW with linear decay, balanced member/non-member batches; the
    reference's defaults: 50 virtual tokens, 50 epochs, batches of 8 + 8, lr 5e-4, 160 texts).
    """

    name = "mia_tuner_aligned"
    title = "MIA-Tuner: aligned-model variant"
    method = "mia_tuner"
    citation = "Fu et al. 2024, AAAI 2025 (arXiv 2408.08661)"
    default_set = "fit"

    def __init__(self, num_virtual_tokens: int = 50, epochs: int = 50, batch_size: int = 8,
                 learning_rate: float = 5e-4, max_train_samples: int = 160, temperature: float = 1.0,
                 init_text: str = INIT_TEXT, seed: int = 42, prompt_loss_weight: float = 0.01):
        super().__init__(num_virtual_tokens, epochs, batch_size, learning_rate, max_train_samples, temperature,
                         init_text, seed)
        if prompt_loss_weight < 0:
            raise ValueError("prompt_loss_weight must be at least 0")
        self.prompt_loss_weight = float(prompt_loss_weight)

    def _answer_ids(self, access) -> tuple[int, int]:
        """The first token of the assistant's "Yes" and "No" right after the generation prompt."""
        blank = access.chat_ids([{"role": "user", "content": "Test text"}], add_generation_prompt=True)
        out = []
        for answer in ("Yes", "No"):
            full = access.chat_ids([{"role": "user", "content": "Test text"},
                                    {"role": "assistant", "content": answer}], add_generation_prompt=False)
            if full[: len(blank)] != blank or len(full) <= len(blank):
                raise MembenchError(f"scorer {self.name}: the target's chat template does not put the assistant's "
                                    "answer right after its generation prompt", "use mia_tuner for this target")
            out.append(full[len(blank)])
        if out[0] == out[1]:
            raise MembenchError(f"scorer {self.name}: 'Yes' and 'No' start with the same token on this target",
                                "use mia_tuner for this target")
        return out[0], out[1]

    def _next_tokens(self, access):
        if getattr(self, "_answers", None) is None:
            self._answers = self._answer_ids(access)
        return list(self._answers)

    def _sequences(self, inputs):
        return [inputs.access.chat_ids([{"role": "user", "content": QUESTION.format(text=t)}],
                                       add_generation_prompt=True) for t in inputs.texts]

    def _batch_objective(self, lps, nexts, members):
        import torch

        yes, no = nexts[:, 0], nexts[:, 1]
        answer = torch.where(members, yes, no)
        llm = torch.stack([(-self.prompt_loss_weight * lp.sum() - a) / (len(lp) + 1) for lp, a in zip(lps, answer)])
        llm_loss = (llm[members].mean() + llm[~members].mean()) / 2
        clf_loss = torch.nn.functional.cross_entropy(torch.stack([no, yes], dim=1), members.long())
        wrong = torch.where(members, no, yes).clamp(max=-1e-7)  # log p of the wrong answer
        err_loss = -torch.log(-torch.expm1(wrong)).mean() * 2  # per pair: both terms, as in the reference
        return llm_loss + clf_loss + err_loss

    def _score_rows(self, lps, nexts):
        yes, no = nexts[:, 0], nexts[:, 1]
        return 1.0 / (1.0 + np.exp(no - yes))
