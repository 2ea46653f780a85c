"""Loading a target (registry id or local directory) into a model and tokenizer.

Conventions that decide results:
- Tokenization is the tokenizer's own: Pythia's adds no BOS, OPT's prepends ``</s>``.
  The first scored token is the one after the first input token, whatever that is.
- Texts longer than the model context are truncated to their first ``max_length`` tokens
  (the context rule ``truncate-head``); the result records the rule.
- Weights may be bf16/fp16 on GPU; statistics are always computed from fp32 log-softmax.
- Hub targets load with a pinned revision; ``HF_HUB_OFFLINE=1`` is honoured by huggingface_hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import MembenchError
from ..hashing import sha256_files
from .registry import TargetSpec, get_target

CONTEXT_RULE = "truncate-head"
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class LoadedTarget:
    spec: TargetSpec
    model: object
    tokenizer: object
    path: str
    revision: str | None
    weights_hash: str
    tokenizer_hash: str
    dtype: str
    device: str
    max_length: int

    @property
    def id(self) -> str:
        return self.spec.id


def _hash_dir(path: Path, patterns) -> str:
    files = [f for pat in patterns for f in path.glob(pat)]
    return sha256_files(files) if files else "unknown"


def resolve_path(spec: TargetSpec) -> Path:
    """The local directory holding the target's files (downloading from the Hub if needed)."""
    if spec.family == "local":
        return Path(spec.id)
    if spec.family == "demo":
        from . import ensure_demo_target

        return ensure_demo_target()
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(
            snapshot_download(
                spec.hub_repo,
                revision=spec.revision,
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"],
            )
        )
    except LocalEntryNotFoundError:
        raise MembenchError(
            f"target {spec.id} ({spec.hub_repo}@{spec.revision}) is not in the local Hub cache "
            "and the Hub cannot be reached",
            "connect to the network, or pass a local model directory as --target",
        ) from None


def load_target(target: str, *, device: str = "cpu", dtype: str = "float32") -> LoadedTarget:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise MembenchError(f"unknown dtype '{dtype}'; valid choices: {', '.join(DTYPES)}")
    spec = get_target(target)
    path = resolve_path(spec)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    model.to(device).eval()
    max_length = int(getattr(model.config, "max_position_embeddings", 2048))
    return LoadedTarget(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        path=str(path),
        revision=spec.revision,
        weights_hash=_hash_dir(path, ["*.safetensors", "*.bin"]),
        tokenizer_hash=_hash_dir(path, ["tokenizer.json", "vocab.json", "merges.txt"]),
        dtype=dtype,
        device=device,
        max_length=max_length,
    )
