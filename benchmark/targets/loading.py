"""Loading a target (registry id or local directory) into a model and tokenizer.

Conventions that decide results:
- Tokenization is the tokenizer's own: Pythia's adds no BOS, OPT's prepends ``</s>``.
  The first scored token is the one after the first input token, whatever that is.
- Texts longer than the model context are truncated to their first ``max_length`` tokens
  (the context rule ``truncate-head``); the result records the rule.
- Weights may be bf16/fp16 on GPU; statistics are always computed from fp32 log-softmax.
- Hub targets load with a pinned revision (Pythia checkpoints by ``stepN``); the HF token of
  the environment is used; ``HF_HUB_OFFLINE=1`` is honoured by huggingface_hub; every Hub
  failure is one line suggesting a local model directory.
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
    n_parameters: int = 0  # counted from the loaded model (shared tensors once)

    @property
    def id(self) -> str:
        return self.spec.id


def _hash_dir(path: Path, patterns) -> str:
    files = [f for pat in patterns for f in path.glob(pat)]
    return sha256_files(files) if files else "unknown"


def resolve_path(spec: TargetSpec) -> Path:
    """The local directory holding the target's files (downloading from the Hub if needed)."""
    if spec.family == "local":
        return Path(spec.local_path or spec.id)
    if spec.local_path:  # registered under MEMBENCH_HOME (fine-tuned, a user's own)
        return Path(spec.local_path)
    if spec.family == "demo":
        from . import ensure_demo_target

        return ensure_demo_target(target_id=spec.id)
    return _download(spec)


_WEIGHTLESS = ["*.json", "*.txt", "*.model"]


def _download(spec: TargetSpec) -> Path:
    """Snapshot of the target's repo at its pinned revision: config, tokenizer and weights
    (safetensors when the revision has them, else PyTorch ``.bin``; old Pythia checkpoint
    branches carry only ``.bin``). Uses the HF token of the environment when there is one."""
    from huggingface_hub import snapshot_download

    def get(patterns):
        return Path(snapshot_download(spec.hub_repo, revision=spec.revision, allow_patterns=patterns))

    try:
        path = get(_WEIGHTLESS + ["*.safetensors"])
        if not any(path.glob("*.safetensors")):
            path = get(_WEIGHTLESS + ["*.bin"])
    except Exception as exc:  # noqa: BLE001 - translated into one line
        raise _hub_error(spec, exc) from None
    return path


def _hub_error(spec: TargetSpec, exc: Exception) -> MembenchError:
    from huggingface_hub import errors as e

    where = f"{spec.hub_repo}@{spec.revision}"
    local = "or pass a local model directory as the target"
    if isinstance(exc, e.GatedRepoError):
        return MembenchError(f"access to {where} was denied (gated)", f"accept its terms on the Hub and set HF_TOKEN, {local}")
    if isinstance(exc, e.RevisionNotFoundError):
        return MembenchError(f"revision {spec.revision} does not exist in {spec.hub_repo}", "pick an existing revision")
    if isinstance(exc, e.RepositoryNotFoundError):
        return MembenchError(f"model {spec.hub_repo} was not found on the Hub (or your token cannot see it)", local)
    if isinstance(exc, (e.LocalEntryNotFoundError, OSError)):
        return MembenchError(
            f"target {spec.id} ({where}) is not in the local Hub cache and the Hub cannot be reached",
            f"connect to the network (unset HF_HUB_OFFLINE), {local}",
        )
    return MembenchError(f"downloading {where} failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}", local)


def load_target(target: str, *, device: str = "cpu", dtype: str = "float32") -> LoadedTarget:
    """Load a registry target (``pythia-160m``, or a checkpoint ``pythia-160m@step99000``) or a
    local model directory."""
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
        n_parameters=sum(p.numel() for p in model.parameters()),
    )
