"""A tiny grid made offline, for the grid's tests and its benchmark (benchmarks/grid.py). Never published.

Two tiny targets, a GPT-NeoX (Pythia architecture) and an OPT, with seeded random weights and
a small byte-level BPE tokenizer trained on the texts, saved with ``save_pretrained`` and
registered under MEMBENCH_HOME (``targets.register_target``); and splits of real English
text (the demo's ``pydoc_data`` passages), randomly assigned to members and non-members,
registered (``suite.register_split``) and materialized like any split. Split ``tiny/a`` and
``tiny/b`` are valid for both targets; ``tiny/neox-only`` for the GPT-NeoX alone, so a grid
over ``tiny/*`` has one invalid pair to skip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGETS = ("tiny/neox", "tiny/opt")
SPLITS = ("tiny/a", "tiny/b")
NEOX_ONLY = "tiny/neox-only"

_ARCH = {
    "tiny/neox": dict(model_type="gpt_neox", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=256, rotary_pct=0.25),
    "tiny/opt": dict(model_type="opt", hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     ffn_dim=64, max_position_embeddings=256, word_embed_proj_dim=32),
}


@dataclass(frozen=True)
class TinyGrid:
    targets: tuple[str, ...]
    splits: tuple[str, ...]
    neox_only: str


def _save_target(target_id: str, texts: list[str], seed: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from benchmark import targets
    from benchmark.home import targets_dir
    from benchmark.targets.demo import train_tokenizer

    out = targets_dir(target_id)
    tokenizer = train_tokenizer(texts, out)
    arch = dict(_ARCH[target_id])
    config = AutoConfig.for_model(arch.pop("model_type"), vocab_size=len(tokenizer),
                                  bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.eos_token_id, **arch)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(out)
    targets.register_target({"id": target_id, "path": str(out), "family": "tiny",
                             "description": "random-weight test model (tests/tiny_grid.py)"}, replace=True)


def _save_split(split_id: str, members: list[str], nonmembers: list[str], valid: list[str]) -> None:
    from benchmark import suite
    from benchmark.suite.store import materialize

    spec = suite.register_split({
        "id": split_id, "family": "tiny", "track": "tiny", "domain": "python-docs",
        "source": {"kind": "written", "made_by": "tests/tiny_grid.py"},
        "fields": {"text": "text", "label": "label"}, "valid_targets": valid,
        "label_meaning": "1 = member by random assignment (the random-weight targets saw nothing)",
        "description": "tiny test split for the grid",
    }, replace=True)
    materialize(spec, members, nonmembers, source=dict(spec.source))


def build_tiny_grid(n_per_class: int = 16, seed: int = 0) -> TinyGrid:
    """Make and register the tiny targets and splits under the current MEMBENCH_HOME."""
    from benchmark.suite import demo

    texts = list(dict.fromkeys(demo.passages(seed)))
    order = np.random.default_rng(seed).permutation(len(texts))
    chosen = [texts[i] for i in order[: 6 * n_per_class]]
    parts = [chosen[i * n_per_class:(i + 1) * n_per_class] for i in range(6)]
    for i, split_id in enumerate((*SPLITS, NEOX_ONLY)):
        valid = ["tiny/neox"] if split_id == NEOX_ONLY else ["tiny/*"]
        _save_split(split_id, parts[2 * i], parts[2 * i + 1], valid)
    for k, target_id in enumerate(TARGETS):
        _save_target(target_id, chosen, seed + k)
    return TinyGrid(TARGETS, SPLITS, NEOX_ONLY)
