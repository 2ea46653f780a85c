"""The fine-tuning loop: LoRA (peft) or full, with the defences as knobs, resumable.

- Data: every training text is tokenized with the model's own tokenizer (its special tokens,
  as the feature pass does) and cut to its first ``block_size`` tokens; one text is one
  example. ``TrainingData`` (the data loader) yields batches in a seeded order that depends
  only on (seed, epoch), so a resumed run continues the same sequence. ``train.steps`` fixes
  the number of optimizer steps instead of ``epochs`` (the loader runs on into further
  epochs). Under DP-SGD the batches are Poisson-sampled instead (every text joins step s's
  batch independently with probability q = batch_size / texts, drawn from (seed, step)), the
  sampling the privacy accountant assumes.
- Loss: per example, the mean next-token loss over its tokens; per batch, the mean over
  examples (so per-example and batch clipping share one objective).
- Optimizer: AdamW (default) or SGD (``train.optimizer``; momentum ``train.momentum``) over the
  trainable weights, linear warm-up then linear decay to zero.
- Clipping: ``batch`` clips the norm of the batch's mean gradient; ``per_example`` clips each
  example's gradient to ``max_norm`` before averaging (DP-SGD's clipping, without noise).
  Under AdamW, clipping rescales gradients that Adam's per-coordinate normalization largely
  undoes; under SGD it shortens the step. Either way the trainer records what the clipping
  did (``clipping``): how many examples (or batches) had a norm above the bound, and the
  quantiles of the norms before clipping.
- DP-SGD (``defences.dp``, Abadi et al. 2016, through Opacus): per-example gradients
  (``opacus.GradSampleModule``), each clipped to ``max_grad_norm``, summed, Gaussian noise of
  standard deviation ``noise_multiplier * max_grad_norm`` added, divided by the expected batch
  size (``opacus.optimizers.DPOptimizer``), then the recipe's optimizer step (SGD: DP-SGD;
  AdamW: DP-Adam, the same guarantee by post-processing). The noise multiplier is solved
  (``opacus.accountants.utils.get_noise_multiplier``) so that the planned steps at sampling
  rate q spend exactly the stated (epsilon, delta) under the chosen accountant; the epsilon
  the accountant reports for the steps actually taken is recorded (``dp.epsilon_spent``). The
  guarantee is per example (one text); a user with k trained texts is protected at the
  group-privacy level (k epsilon, k e^((k-1) epsilon) delta), which the build records. The
  noise comes from torch's seeded generator, not a cryptographically secure one (Opacus's
  ``secure_mode`` off): fine for measuring, not for a deployment claim.
- Early stopping: every ``eval_every`` steps the mean loss on the held-out validation texts;
  training stops after ``patience`` evaluations without an improvement of ``min_delta``. The
  weights at the stop are kept.
- Checkpoints every ``checkpoint_every`` steps (trainable weights, optimizer, scheduler, the
  torch RNG state, curves, counters, clipping record, early-stopping state), written
  atomically; a run started again with the same inputs resumes from the last one and ends
  with the same weights (seeded everything, same data order).
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
TRAINER_VERSION = 2
NORM_QUANTILES = (0.1, 0.5, 0.9)
# RDP orders: Opacus's defaults (1.1 ... 63) and on to 1,024, so that few steps at a large epsilon
# (whose optimal order is past 63) get the tight bound instead of a looser one
RDP_ALPHAS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 1025, 8)))


class TrainingData:
    """Batches of training examples over ``epochs`` (or exactly ``steps``), in a seeded order
    (the data loader).

    Step ``s`` is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``; an epoch's
    order is a permutation drawn from ``(seed, epoch)``. With ``poisson`` (DP-SGD), step ``s``'s
    batch is every example drawn with probability ``sample_rate`` = batch_size / examples from
    ``(seed, step)`` instead (its size varies; it may be empty). ``batches(start)`` yields
    ``(step, uids, token_ids)`` from ``start`` on.
    """

    def __init__(self, uids: list[str], token_ids: list[list[int]], *, batch_size: int, epochs: int, seed: int,
                 steps: int | None = None, poisson: bool = False):
        self.uids = list(uids)
        self.token_ids = token_ids
        self.batch_size = batch_size
        self.seed = seed
        self.poisson = poisson
        self.sample_rate = min(1.0, batch_size / max(len(self.uids), 1))
        self.steps_per_epoch = math.ceil(len(self.uids) / batch_size)
        self.total_steps = steps if steps is not None else epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 3, epoch]).permutation(len(self.uids))

    def indices(self, step: int) -> list[int]:
        if self.poisson:
            drawn = np.random.default_rng([self.seed, 7, step]).random(len(self.uids)) < self.sample_rate
            return [int(i) for i in np.flatnonzero(drawn)]
        epoch, k = divmod(step, self.steps_per_epoch)
        return [int(i) for i in self._order(epoch)[k * self.batch_size : (k + 1) * self.batch_size]]

    def batches(self, start: int = 0):
        for step in range(start, self.total_steps):
            idx = self.indices(step)
            yield step, [self.uids[i] for i in idx], [self.token_ids[i] for i in idx]

    def uids_through(self, steps: int) -> list[str]:
        """Every uid the first ``steps`` steps train on (sorted)."""
        if steps >= self.steps_per_epoch and not self.poisson:
            return sorted(self.uids)
        return sorted({self.uids[i] for s in range(steps) for i in self.indices(s)})


class ClipMeter:
    """What clipping did: per example (``per_example``, DP-SGD) or per batch (``batch``), how
    many gradient norms exceeded the bound, and the norms' quantiles before clipping."""

    def __init__(self, mode: str, max_norm: float, state: dict | None = None):
        self.mode, self.max_norm = mode, float(max_norm)
        self.norms: list[float] = list(state["norms"]) if state else []

    def add(self, norms) -> None:
        self.norms.extend(float(n) for n in norms)

    def state(self) -> dict:
        return {"norms": list(self.norms)}

    def summary(self) -> dict:
        arr = np.asarray(self.norms, dtype=np.float64)
        unit = "batch" if self.mode == "batch" else "example"
        clipped = int((arr > self.max_norm).sum())
        return {
            "mode": self.mode, "max_norm": self.max_norm, "unit": unit,
            f"{unit}s_seen": int(arr.size), f"{unit}s_clipped": clipped,
            "fraction_clipped": round(clipped / arr.size, 6) if arr.size else None,
            "norm_quantiles": ({str(q): round(float(np.quantile(arr, q)), 6) for q in NORM_QUANTILES}
                               if arr.size else None),
            "definition": f"fraction of {unit} gradients whose L2 norm (before clipping) exceeded max_norm",
        }


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
                         device: str = "cpu") -> tuple[float, list[float]]:
    """Set ``.grad`` of ``params`` to the (clipped) gradient of the batch loss; return the loss
    and the gradient norms before clipping (one per example for ``per_example``, one for the
    batch for ``batch``, none without clipping).

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
        norms = []
        if clip is not None:
            norms = [float(torch.nn.utils.clip_grad_norm_(params, clip["max_norm"]))]
        return float(loss.detach()), norms
    total = [torch.zeros_like(p) for p in params]
    losses, norms = [], []
    for toks in token_ids:
        ids = torch.tensor([toks], dtype=torch.long, device=device)
        loss = example_losses(model, ids, torch.ones_like(ids))[0]
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, clip["max_norm"])))
        for acc, p in zip(total, params):
            if p.grad is not None:
                acc += p.grad
            p.grad = None
        losses.append(float(loss.detach()))
    for acc, p in zip(total, params):
        p.grad = acc / len(token_ids)
    return float(np.mean(losses)), norms


class DPSGD:
    """DP-SGD through Opacus around ``model``: per-example gradients, clipping, noise, and the
    accountant. ``step(token_ids)`` runs one noisy step of ``optimizer`` on a (Poisson) batch and
    returns (loss, per-example norms before clipping); ``epsilon(steps)`` is what the
    accountant reports for that many steps."""

    def __init__(self, model, optimizer, dp: dict, *, sample_rate: float, planned_steps: int, expected_batch: int):
        from opacus import GradSampleModule
        from opacus.accountants.utils import get_noise_multiplier
        from opacus.optimizers import DPOptimizer

        self.dp, self.sample_rate, self.planned_steps = dp, float(sample_rate), int(planned_steps)
        self.noise_multiplier = float(get_noise_multiplier(
            target_epsilon=dp["epsilon"], target_delta=dp["delta"], sample_rate=self.sample_rate,
            steps=self.planned_steps, accountant=dp["accountant"], epsilon_tolerance=0.01, **self._alphas()))
        self.module = GradSampleModule(model, batch_first=True, loss_reduction="mean")
        self.optimizer = DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                                     max_grad_norm=dp["max_grad_norm"], expected_batch_size=expected_batch,
                                     loss_reduction="mean")
        self.params = [p for p in self.module.parameters() if p.requires_grad]

    def _alphas(self) -> dict:
        return {"alphas": list(RDP_ALPHAS)} if self.dp["accountant"] == "rdp" else {}

    def step(self, token_ids: list[list[int]], *, pad_id: int, device: str) -> tuple[float, list[float]]:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        if not token_ids:  # an empty Poisson batch: the step is noise alone, as the accountant counts it
            for p in self.params:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
            self.optimizer.step()
            return float("nan"), []
        ids, mask = pad(token_ids, pad_id)
        loss = example_losses(self.module, ids.to(device), mask.to(device)).mean()
        with warnings.catch_warnings():  # token ids need no gradient: torch's note on Opacus's hooks says so
            warnings.filterwarnings("ignore", message="Full backward hook is firing", category=UserWarning)
            loss.backward()
        with torch.no_grad():  # the norms DPOptimizer clips by (the same formula as its own)
            per_param = [p.grad_sample.reshape(len(p.grad_sample), -1).norm(2, dim=-1) for p in self.params]
            norms = torch.stack(per_param, dim=1).norm(2, dim=1).tolist()
        self.optimizer.step()
        return float(loss.detach()), norms

    def epsilon(self, steps: int) -> float:
        from opacus.accountants import create_accountant

        accountant = create_accountant(self.dp["accountant"])
        if steps:
            accountant.history = [(self.noise_multiplier, self.sample_rate, int(steps))]
        return float(accountant.get_epsilon(delta=self.dp["delta"], **self._alphas())) if steps else 0.0

    def unwrap(self):
        self.module._close()
        return self.module._module

    def summary(self, steps: int, n_examples: int) -> dict:
        return {"epsilon": self.dp["epsilon"], "delta": self.dp["delta"], "max_grad_norm": self.dp["max_grad_norm"],
                "accountant": self.dp["accountant"], "noise_multiplier": round(self.noise_multiplier, 6),
                "sample_rate": round(self.sample_rate, 6), "sampling": "poisson", "planned_steps": self.planned_steps,
                "steps": int(steps), "epsilon_spent": round(self.epsilon(steps), 4), "unit": "example",
                "trained_examples": int(n_examples), "library": f"opacus {_version('opacus')}",
                "secure_rng": False}


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


def mean_loss(model, tokenizer, texts: list[str], *, block_size: int, batch_size: int = 8,
              device: str = "cpu") -> float | None:
    """The training objective on ``texts``: the mean over texts of each text's mean next-token
    loss over its first ``block_size`` tokens (the tokenizer's special tokens included, as in
    training); None for no texts. The utility measure of a fine-tuned target (held-out loss)."""
    from ..features import pad_id as pad_id_of
    from ..features import tokenize

    ids = [t for t in tokenize(tokenizer, list(texts), block_size) if len(t) > 1] if len(texts) else []
    if not ids:
        return None
    model.to(device)
    return held_out_loss(model, ids, pad_id=pad_id_of(tokenizer), batch_size=batch_size, device=device)


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


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def make_optimizer(params, train_cfg: dict):
    """The recipe's optimizer over ``params``: AdamW, or SGD with ``momentum``."""
    import torch

    if train_cfg.get("optimizer", "adamw") == "sgd":
        return torch.optim.SGD(params, lr=train_cfg["lr"], momentum=train_cfg.get("momentum") or 0.0,
                               weight_decay=train_cfg["weight_decay"])
    return torch.optim.AdamW(params, lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"])


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
    checkpoint whose ``key`` matches is resumed. ``train_cfg["steps"]`` (an int) fixes the
    number of optimizer steps. Returns (trained model, ``TrainResult``); ``extra`` holds the
    clipping record (``clipping``) and, under DP-SGD, the privacy record (``dp``)."""
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
    dp_cfg = defences.get("dp")
    steps = train_cfg.get("steps")
    if steps is not None and not isinstance(steps, int):
        raise ValueError(f"train.steps must be resolved to a number before training, got {steps!r}")
    data = TrainingData(uids, [t[:block] for t in full], batch_size=train_cfg["batch_size"],
                        epochs=train_cfg["epochs"], seed=seed, steps=steps, poisson=dp_cfg is not None)
    val_ids = tokenize(tokenizer, list(validation), block) if validation else []
    model.to(device)
    model, named, modules = prepare_model(model, method)
    params = list(named.values())
    model.train()
    optimizer = make_optimizer(params, train_cfg)
    scheduler = linear_schedule(optimizer, data.total_steps, train_cfg["warmup_ratio"])
    dp = None
    if dp_cfg is not None:
        dp = DPSGD(model, optimizer, dp_cfg, sample_rate=data.sample_rate, planned_steps=data.total_steps,
                   expected_batch=train_cfg["batch_size"])
    ckpt_path = Path(work_dir) / CHECKPOINT
    full_key = f"{key}:trainer-v{TRAINER_VERSION}"
    state = _load_checkpoint(ckpt_path, full_key)
    loss_curve, eval_curve = [], []
    tokens, seconds, start = 0, 0.0, 0
    stop = {"best": None, "bad": 0, "stopped": False}
    clip = defences.get("clip")
    meter = None
    if clip is not None:
        meter = ClipMeter(clip["mode"], clip["max_norm"])
    elif dp_cfg is not None:
        meter = ClipMeter("per_example", dp_cfg["max_grad_norm"])
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
        if meter is not None:
            meter = ClipMeter(meter.mode, meter.max_norm, state.get("clipping"))
    resumed_from = start if state is not None else None
    early = defences.get("early_stopping")
    every = train_cfg["checkpoint_every"]
    began = time.perf_counter()
    bar = tqdm(total=data.total_steps, initial=start, desc=desc, disable=not progress, unit="step")
    step = start
    for step, _batch_uids, batch_ids in data.batches(start):
        if stop["stopped"]:
            break
        if dp is not None:
            loss, norms = dp.step(batch_ids, pad_id=pad_id, device=device)
        else:
            loss, norms = accumulate_gradients(model, params, batch_ids, pad_id=pad_id, clip=clip, device=device)
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if meter is not None:
            meter.add(norms)
        tokens += sum(len(t) for t in batch_ids)
        loss_curve.append([step + 1, round(loss, 6) if np.isfinite(loss) else None])
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
                "clipping": meter.state() if meter is not None else None,
            })
        if stop["stopped"]:
            break
    bar.close()
    steps_done = len(loss_curve)
    extra = {"block_size": block, "truncated_texts": int(truncated), "steps_per_epoch": data.steps_per_epoch,
             "optimizer": train_cfg.get("optimizer", "adamw"), "clipping": meter.summary() if meter else None,
             "dp": dp.summary(steps_done, len(data.uids)) if dp is not None else None}
    if dp is not None:
        model = dp.unwrap()
    result = TrainResult(
        steps=steps_done,
        planned_steps=data.total_steps,
        epochs=round(steps_done / data.steps_per_epoch, 4),
        tokens=tokens,
        seconds=round(seconds + time.perf_counter() - began, 3),
        loss_curve=loss_curve,
        eval_curve=eval_curve,
        stopped_early=bool(stop["stopped"]),
        trained_uids=data.uids_through(steps_done),
        resumed_from=resumed_from,
        target_modules=modules,
        trainable_params=int(sum(p.numel() for p in params)),
        total_params=int(sum(p.numel() for p in model.parameters())),
        extra=extra,
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
