"""The fine-tuning loop: LoRA (peft) or full, with the defences as knobs, resumable.

- Data: every training text is tokenized with the model's own tokenizer (its special tokens,
  as the feature pass does) and cut to its first ``block_size`` tokens; one text is one
  example. ``TrainingData`` (the data loader) yields batches in a seeded order that depends
  only on (seed, epoch), so a resumed run continues the same sequence.
- Loss: per example, the mean next-token loss over its tokens; per batch, the mean over
  examples (so per-example and batch clipping share one objective).
- Clipping: ``batch`` clips the norm of the batch's mean gradient; ``per_example`` clips each
  example's gradient to ``max_norm`` before averaging (DP-SGD's clipping, without noise).
- Early stopping: every ``eval_every`` steps the mean loss on the held-out validation texts;
  training stops after ``patience`` evaluations without an improvement of ``min_delta``. The
  weights at the stop are kept.
- Optimizer AdamW over the trainable weights, linear warm-up then linear decay to zero.
- Checkpoints every ``checkpoint_every`` steps (trainable weights, optimizer, scheduler, the
  torch RNG state, curves, counters, early-stopping state), written atomically; a run started
  again with the same inputs resumes from the last one and ends with the same weights (seeded
  everything, same data order).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHECKPOINT = "checkpoint.pt"
TRAINER_VERSION = 1


class TrainingData:
    """Batches of training examples over ``epochs``, in a seeded order (the data loader).

    Step ``s`` is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``; an epoch's
    order is a permutation drawn from ``(seed, epoch)``. ``batches(start)`` yields
    ``(step, uids, token_ids)`` from ``start`` on.
    """

    def __init__(self, uids: list[str], token_ids: list[list[int]], *, batch_size: int, epochs: int, seed: int):
        self.uids = list(uids)
        self.token_ids = token_ids
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = seed
        self.steps_per_epoch = math.ceil(len(self.uids) / batch_size)
        self.total_steps = epochs * self.steps_per_epoch

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 3, epoch]).permutation(len(self.uids))

    def indices(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.steps_per_epoch)
        return [int(i) for i in self._order(epoch)[k * self.batch_size : (k + 1) * self.batch_size]]

    def batches(self, start: int = 0):
        for step in range(start, self.total_steps):
            idx = self.indices(step)
            yield step, [self.uids[i] for i in idx], [self.token_ids[i] for i in idx]

    def uids_through(self, steps: int) -> list[str]:
        """Every uid the first ``steps`` steps train on (sorted)."""
        if steps >= self.steps_per_epoch:
            return sorted(self.uids)
        return sorted({self.uids[i] for s in range(steps) for i in self.indices(s)})


def pad(token_ids: list[list[int]], pad_id: int):
    import torch

    width = max(len(t) for t in token_ids)
    ids = torch.full((len(token_ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), width), dtype=torch.long)
    for row, toks in enumerate(token_ids):
        ids[row, : len(toks)] = torch.tensor(toks, dtype=torch.long)
        mask[row, : len(toks)] = 1
    return ids, mask


def example_losses(model, ids, mask):
    """Mean next-token loss of each row over its own tokens (fp32)."""
    import torch.nn.functional as F

    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    targets = ids[:, 1:]
    keep = mask[:, 1:].float()
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    nll = nll.view(targets.shape) * keep
    return nll.sum(1) / keep.sum(1).clamp(min=1.0)


def accumulate_gradients(model, params: list, token_ids: list[list[int]], *, pad_id: int, clip: dict | None,
                         device: str = "cpu") -> float:
    """Set ``.grad`` of ``params`` to the (clipped) gradient of the batch loss; return the loss.

    ``clip`` None: the plain gradient of the mean of per-example losses. ``{"mode": "batch"}``:
    that gradient, its total norm clipped to ``max_norm``. ``{"mode": "per_example"}``: each
    example's gradient clipped to ``max_norm`` on its own, then averaged.
    """
    import torch

    for p in params:
        p.grad = None
    if clip is None or clip["mode"] == "batch":
        ids, mask = pad(token_ids, pad_id)
        loss = example_losses(model, ids.to(device), mask.to(device)).mean()
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip["max_norm"])
        return float(loss.detach())
    total = [torch.zeros_like(p) for p in params]
    losses = []
    for toks in token_ids:
        ids = torch.tensor([toks], dtype=torch.long, device=device)
        loss = example_losses(model, ids, torch.ones_like(ids))[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip["max_norm"])
        for acc, p in zip(total, params):
            if p.grad is not None:
                acc += p.grad
            p.grad = None
        losses.append(float(loss.detach()))
    for acc, p in zip(total, params):
        p.grad = acc / len(token_ids)
    return float(np.mean(losses))


def held_out_loss(model, token_ids: list[list[int]], *, pad_id: int, batch_size: int, device: str) -> float:
    import torch

    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(token_ids), batch_size):
            ids, mask = pad(token_ids[i : i + batch_size], pad_id)
            out.extend(example_losses(model, ids.to(device), mask.to(device)).tolist())
    model.train(was_training)
    return float(np.mean(out))


def prepare_model(model, method: dict):
    """Wrap ``model`` for ``method`` (LoRA via peft, or every weight trainable); returns
    (model, trainable parameters by name, resolved target modules or None)."""
    if method["kind"] == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=method["r"], lora_alpha=method["alpha"], lora_dropout=method["dropout"],
                            target_modules=method["target_modules"], bias="none", task_type="CAUSAL_LM")
        with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, config)
        modules = sorted(model.peft_config["default"].target_modules)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
        modules = None
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    return model, named, modules


def linear_schedule(optimizer, total_steps: int, warmup_ratio: float):
    import torch

    warmup = int(round(warmup_ratio * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TrainResult:
    steps: int
    planned_steps: int
    epochs: float
    tokens: int
    seconds: float
    loss_curve: list  # [step, mean training loss of the batch]
    eval_curve: list  # [step, held-out loss]
    stopped_early: bool
    trained_uids: list[str]
    resumed_from: int | None
    target_modules: list[str] | None
    trainable_params: int
    total_params: int
    extra: dict = field(default_factory=dict)


def _rng_state(device: str) -> dict:
    import torch

    state = {"cpu": torch.get_rng_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, state: dict) -> None:
    import torch

    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, key: str) -> dict | None:
    import torch

    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged checkpoint is discarded, never trusted
        return None
    return state if state.get("key") == key else None


def train(
    model,
    tokenizer,
    uids: list[str],
    texts: list[str],
    *,
    method: dict,
    train_cfg: dict,
    defences: dict,
    seed: int,
    work_dir: Path,
    key: str,
    validation: list[str] = (),
    device: str = "cpu",
    progress: bool = True,
    desc: str = "fine-tuning",
):
    """Fine-tune ``model`` on ``texts`` (ids ``uids``); checkpoints go to ``work_dir``, and a
    checkpoint whose ``key`` matches is resumed. Returns (trained model, ``TrainResult``)."""
    import torch
    from tqdm.auto import tqdm

    from ..features import pad_id as pad_id_of
    from ..features import tokenize

    torch.manual_seed(seed)
    max_len = int(getattr(model.config, "max_position_embeddings", 2048))
    block = min(train_cfg["block_size"], max_len)
    pad_id = pad_id_of(tokenizer)
    full = tokenize(tokenizer, texts, 1 << 30)
    truncated = sum(len(t) > block for t in full)
    data = TrainingData(uids, [t[:block] for t in full], batch_size=train_cfg["batch_size"],
                        epochs=train_cfg["epochs"], seed=seed)
    val_ids = tokenize(tokenizer, list(validation), block) if validation else []
    model.to(device)
    model, named, modules = prepare_model(model, method)
    params = list(named.values())
    model.train()
    optimizer = torch.optim.AdamW(params, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])
    scheduler = linear_schedule(optimizer, data.total_steps, train_cfg["warmup_ratio"])
    ckpt_path = Path(work_dir) / CHECKPOINT
    full_key = f"{key}:trainer-v{TRAINER_VERSION}"
    state = _load_checkpoint(ckpt_path, full_key)
    loss_curve, eval_curve = [], []
    tokens, seconds, start = 0, 0.0, 0
    stop = {"best": None, "bad": 0, "stopped": False}
    if state is not None:
        with torch.no_grad():
            for name, tensor in state["trainable"].items():
                named[name].copy_(tensor.to(named[name].device))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        loss_curve, eval_curve = [list(x) for x in state["loss_curve"]], [list(x) for x in state["eval_curve"]]
        tokens, seconds, start = int(state["tokens"]), float(state["seconds"]), int(state["step"])
        stop = dict(state["stop"])
    resumed_from = start if state is not None else None
    clip = defences.get("clip")
    early = defences.get("early_stopping")
    every = train_cfg["checkpoint_every"]
    began = time.perf_counter()
    bar = tqdm(total=data.total_steps, initial=start, desc=desc, disable=not progress, unit="step")
    step = start
    for step, _batch_uids, batch_ids in data.batches(start):
        if stop["stopped"]:
            break
        loss = accumulate_gradients(model, params, batch_ids, pad_id=pad_id, clip=clip, device=device)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += sum(len(t) for t in batch_ids)
        loss_curve.append([step + 1, round(loss, 6)])
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        done = step + 1
        if early and done % early["eval_every"] == 0:
            value = held_out_loss(model, val_ids, pad_id=pad_id, batch_size=train_cfg["batch_size"], device=device)
            eval_curve.append([done, round(value, 6)])
            if stop["best"] is None or value < stop["best"] - early["min_delta"]:
                stop["best"], stop["bad"] = value, 0
            else:
                stop["bad"] += 1
                if stop["bad"] >= early["patience"]:
                    stop["stopped"] = True
        if done % every == 0 or stop["stopped"]:
            _save_checkpoint(ckpt_path, {
                "key": full_key, "step": done, "trainable": {n: p.detach().cpu().clone() for n, p in named.items()},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(device),
                "loss_curve": loss_curve, "eval_curve": eval_curve, "tokens": tokens,
                "seconds": seconds + time.perf_counter() - began, "stop": stop,
            })
        if stop["stopped"]:
            break
    bar.close()
    steps = len(loss_curve)
    result = TrainResult(
        steps=steps,
        planned_steps=data.total_steps,
        epochs=round(steps / data.steps_per_epoch, 4),
        tokens=tokens,
        seconds=round(seconds + time.perf_counter() - began, 3),
        loss_curve=loss_curve,
        eval_curve=eval_curve,
        stopped_early=bool(stop["stopped"]),
        trained_uids=data.uids_through(steps),
        resumed_from=resumed_from,
        target_modules=modules,
        trainable_params=int(sum(p.numel() for p in params)),
        total_params=int(sum(p.numel() for p in model.parameters())),
        extra={"block_size": block, "truncated_texts": int(truncated),
               "steps_per_epoch": data.steps_per_epoch},
    )
    model.eval()
    return model, result


def save(model, tokenizer, method: dict, out_dir: Path) -> None:
    """Write a plain transformers model folder: for LoRA the adapter under ``adapter/`` and
    the weights with the adapter merged at the top (so every command loads it as is)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if method["kind"] == "lora":
        model.save_pretrained(out_dir / "adapter")
        model = model.merge_and_unload()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
