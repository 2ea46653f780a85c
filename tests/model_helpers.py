"""A local model folder for a test: a random tiny GPT-NeoX and a BPE tokenizer trained on texts."""

from __future__ import annotations

from pathlib import Path


def tiny_neox_folder(out: Path, texts: list[str], *, context: int = 128, seed: int = 0) -> Path:
    """Save a random tiny GPT-NeoX (hidden 32, 2 layers, ``context`` positions) with a fast BPE
    tokenizer trained on ``texts`` (so it reports offsets) into ``out``."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from benchmark.targets.demo import train_tokenizer

    tok = train_tokenizer(texts, out)
    torch.manual_seed(seed)
    GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=context, rotary_pct=0.25)
                       ).eval().save_pretrained(out)
    return out
