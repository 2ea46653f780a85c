"""Shared by the fine-tuned track's tests: a MEMBENCH_HOME of a test module's own, and a tiny
random-weight base with a tokenizer trained on the test text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.finetune import pools


def module_home(name: str):
    """A module-scoped fixture: a fresh MEMBENCH_HOME for the module's tests, so registered
    fine-tuned targets and splits never reach the shared one."""

    @pytest.fixture(scope="module")
    def home(tmp_path_factory):
        root = tmp_path_factory.mktemp(name)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MEMBENCH_HOME", str(root))
            yield root

    return home


def make_base(folder: Path, model_type: str, texts: list[str]) -> Path:
    """A tiny random-weight causal LM with a tokenizer trained on ``texts``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from benchmark.targets.demo import train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts, folder)
    ids = dict(vocab_size=len(tok), bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
               pad_token_id=tok.eos_token_id)
    if model_type == "gpt_neox":
        config = AutoConfig.for_model("gpt_neox", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=128, rotary_pct=0.25, **ids)
    else:
        config = AutoConfig.for_model("opt", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
                                      max_position_embeddings=128, word_embed_proj_dim=64, **ids)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


def write_recipes(path: Path, entries: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"recipes": entries}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def docs(home):
    """Standard-library docstrings with their module as user (the builtin pool's text)."""
    table = pools.stdlib_docstrings()
    return table[table["text"].str.split().str.len() <= 60].reset_index(drop=True)


@pytest.fixture(scope="module")
def pool_file(home, docs):
    path = home / "pool.parquet"
    docs.to_parquet(path, index=False)
    return path


def recipe(rid, base, pool_file, **over) -> dict:
    entry = {"id": rid, "base": str(base), "pool": {"file": str(pool_file), "text": "text", "user": "user"},
             "sizes": {"members": 48, "nonmembers": 48, "reference_pool": 16}, "seed": 1,
             "train": {"epochs": 10, "lr": 3e-3, "batch_size": 8, "block_size": 64}}
    entry.update(over)
    return entry
