"""The demo target: a tiny GPT-NeoX trained locally on the demo members only.

Membership is therefore known exactly: members are the training set, non-members never were.
The tokenizer (byte-level BPE, no BOS, like Pythia's) is trained on other text than the
model: ``tokenizer_texts``, for the demo targets and the demo recipes' base the split's
reference pool, texts of the same source that are neither members nor non-members. A
tokenizer fitted on the members alone would itself separate them (their own words become
merges, so members take fewer tokens per character: AUC about 0.6 from the tokenizer alone on
``demo/pydoc``), a signal no model is needed for (``diagnostics.tokenizer``). Training is
deterministic under the seed on one machine and is saved as an ordinary transformers model
directory (``config.json``, ``model.safetensors``, tokenizer files) plus ``training.json``
(which records what the tokenizer was trained on).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..progress import bar as progress_bar

VOCAB_SIZE = 2048
EOS = "<|endoftext|>"


def train_tokenizer(texts: list[str], out_dir: Path, vocab_size: int = VOCAB_SIZE):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    fast.save_pretrained(out_dir)
    return fast


def _batches(lengths: np.ndarray, batch_size: int, rng) -> list[np.ndarray]:
    """Length-bucketed batches in random order (less padding, still shuffled)."""
    order = np.argsort(lengths + rng.random(len(lengths)) * 8, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(chunks)
    return chunks


def train(
    members: list[str],
    out_dir: Path,
    *,
    arch: dict,
    tokenizer_texts: list[str] | None = None,
    tokenizer_from: str = "the training texts",
    epochs: int = 16,
    batch_size: int = 16,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training demo target",
) -> Path:
    """Train a tokenizer on ``tokenizer_texts`` (default: ``members``; ``tokenizer_from`` says
    what they are, for ``training.json``) and the model on ``members``; write a model
    directory to ``out_dir``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokenizer = train_tokenizer(members if tokenizer_texts is None else tokenizer_texts, out_dir)
    arch = dict(arch)
    model_type = arch.pop("model_type")
    max_len = arch["max_position_embeddings"]
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        **arch,
    )
    model = AutoModelForCausalLM.from_config(config)
    ids = [tokenizer(t)["input_ids"][:max_len] for t in members]
    lengths = np.array([len(x) for x in ids])
    steps = epochs * int(np.ceil(len(ids) / batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    started = time.time()
    losses = []
    bar = progress_bar(steps, desc, enabled=progress)
    for _ in range(epochs):
        for batch in _batches(lengths, batch_size, rng):
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : lengths[i]] = torch.tensor(ids[i])
                mask[row, : lengths[i]] = 1
            labels = input_ids.masked_fill(mask == 0, -100)
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    model.save_pretrained(out_dir)
    info = {
        "trained_on": "members of the demo split",
        "tokenizer_trained_on": tokenizer_from,
        "tokenizer_n_texts": len(members if tokenizer_texts is None else tokenizer_texts),
        "n_texts": len(ids),
        "n_tokens": int(lengths.sum()),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "final_loss": float(np.mean(losses[-10:])),
        "seconds": round(time.time() - started, 1),
        "steps": len(losses),
        "loss_curve": [round(x, 4) for x in losses],
    }
    (out_dir / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    return out_dir
