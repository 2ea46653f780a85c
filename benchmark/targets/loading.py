"""A target as the harness uses it: a handle whose ids and hashes come without the model, and
whose model and tokenizer load on first use.

Conventions that decide results:
- Tokenization is the tokenizer's own: Pythia's adds no BOS, OPT's prepends ``</s>``.
  The first scored token is the one after the first input token, whatever that is.
- Texts longer than the model context follow the handle's context rule
  (``benchmark.targets.context``: ``truncate-head`` by default, or MIMIR's ``sliding-window``);
  the result records the rule and it is part of the feature-cache key.
- Weights may be bf16/fp16 on GPU; statistics are always computed from fp32 log-softmax.
  Attention is PyTorch's scaled-dot-product kernel (``attn_implementation="sdpa"``) wherever
  the architecture has it. A CUDA target whose weights do not fit the free memory of one device
  is spread over the visible devices (``device_map="auto"``, which needs ``accelerate``).
- Hub targets load with a pinned revision (Pythia checkpoints by ``stepN``); the HF token of
  the environment is used; ``HF_HUB_OFFLINE=1`` is honoured by huggingface_hub; every Hub
  failure is one line suggesting a local model directory.

The warm path: a run whose features are all cached needs the handle's ``id``, ``revision``,
``weights_hash``, ``tokenizer_hash``, ``max_length``, ``vocab_size`` and ``n_parameters`` only.
These come from ``config.json``, memoized file hashes (``fingerprint``: size + mtime, re-read on
change or ``verify=True``), a memo of the Hub snapshot folder, a memo of the tokenizer's size
and safetensors headers (or a memo of the parameter count for ``.bin`` weights), so such
a run imports neither torch nor transformers and reads no weights.
"""

from __future__ import annotations

import json
import logging
import os
from functools import cached_property
from pathlib import Path

from .. import profiling
from ..errors import MembenchError
from ..hashing import sha256_json
from ..home import cache_dir
from .context import CONTEXT_RULE, check_rule
from .fingerprint import TOKENIZER_PATTERNS, WEIGHT_PATTERNS, FileHashes
from .registry import TargetSpec, get_target

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class TargetHandle:
    """A registry target or local model directory on a device, in a dtype, under a context rule.

    ``model`` and ``tokenizer`` are loaded on first access (and charged to the profile's
    ``loading`` phase); everything else is answered without them.
    """

    def __init__(self, spec: TargetSpec, path: Path, *, device: str = "cpu", dtype: str = "float32",
                 context_rule: str = CONTEXT_RULE, verify: bool = False, compile: bool = False):
        if dtype not in DTYPES:
            raise MembenchError(f"unknown dtype '{dtype}'; valid choices: {', '.join(DTYPES)}")
        self.spec = spec
        self.path = str(path)
        self.device = device
        self.dtype = dtype
        self.context_rule = check_rule(context_rule)
        self.verify = verify
        self.compile = compile
        self.device_map: dict | None = None  # set when the model was spread over devices

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def revision(self) -> str | None:
        return self.spec.revision

    @cached_property
    def _hashes(self) -> FileHashes:
        return FileHashes(self.path, verify=self.verify)

    @cached_property
    def weights_hash(self) -> str:
        with profiling.phase("loading", self.id):
            return self._hashes.folder_hash(WEIGHT_PATTERNS)

    @cached_property
    def tokenizer_hash(self) -> str:
        with profiling.phase("loading", self.id):
            return self._hashes.folder_hash(TOKENIZER_PATTERNS)

    @cached_property
    def config(self) -> dict:
        try:
            return json.loads(Path(self.path, "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise MembenchError(f"target {self.id}: cannot read {Path(self.path, 'config.json')} ({exc})",
                                "pass a model directory saved with save_pretrained") from None

    @cached_property
    def max_length(self) -> int:
        for key in ("max_position_embeddings", "n_positions"):
            if isinstance(self.config.get(key), int):
                return int(self.config[key])
        return 2048

    @cached_property
    def vocab_size(self) -> int:
        """The tokenizer's size (``len(tokenizer)``), memoized by the tokenizer's hash."""
        return _memoized("tokenizer-facts", self.tokenizer_hash, "vocab_size", lambda: len(self.tokenizer))

    @cached_property
    def n_parameters(self) -> int:
        """Parameters of the model, shared tensors once (what ``model.parameters()`` counts):
        from the loaded model when it is in memory, else from safetensors headers (which hold a
        tied tensor once), else from a memo kept by the weights' hash, else by loading it."""
        if self.loaded:
            return _count(self.model)
        if any(Path(self.path).glob("*.safetensors")):
            return param_count(Path(self.path))
        return _memoized("model-facts", self.weights_hash, "n_parameters", lambda: _count(self.model))

    @property
    def loaded(self) -> bool:
        """Whether the model's weights are in memory."""
        return "model" in self.__dict__

    @cached_property
    def tokenizer(self):
        with profiling.phase("loading", self.id):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(self.path)

    @cached_property
    def model(self):
        with profiling.phase("loading", self.id):
            return self._load_model()

    def _load_model(self):
        import torch
        from transformers import AutoModelForCausalLM

        kwargs = {"dtype": getattr(torch, self.dtype)}
        spread = self.device.startswith("cuda") and not fits_on_device(self.weights_bytes(), free_device_bytes(self.device))
        if spread:
            kwargs.update(device_map="auto", max_memory=device_budgets())
        try:
            model = _from_pretrained(AutoModelForCausalLM, self.path, kwargs)
        except ImportError as exc:
            if spread and "accelerate" in str(exc):
                raise MembenchError(f"target {self.id} does not fit on one device and spreading it needs accelerate",
                                    "pip install accelerate (or use a larger device or --dtype bfloat16)") from None
            raise
        if spread:
            self.device_map = dict(getattr(model, "hf_device_map", {}) or {})
        else:
            model.to(self.device)
        model.eval()
        if self.compile:
            trunk = getattr(model, "base_model", model)
            trunk.compile(dynamic=True)
        return model

    def weights_bytes(self) -> int:
        """Bytes of the weights in this handle's dtype (from safetensors headers; else file sizes)."""
        return param_count(Path(self.path)) * _BYTES[self.dtype]

    def input_device(self) -> str:
        """Where input ids go: the device of the first layer when the model is spread."""
        if self.device_map:
            first = next(iter(self.device_map.values()))
            return f"cuda:{first}" if isinstance(first, int) else str(first)
        return self.device


def _from_pretrained(cls, path, kwargs):
    """``cls.from_pretrained`` with SDPA attention where the architecture has it."""
    try:
        return cls.from_pretrained(path, attn_implementation="sdpa", **kwargs)
    except ValueError as exc:
        if "sdpa" not in str(exc).lower() and "scaled_dot_product" not in str(exc).lower():
            raise
        log.info("%s has no SDPA attention; using its default", path)
        return cls.from_pretrained(path, **kwargs)


def _memoized(folder: str, key: str, field: str, compute) -> int:
    """An integer fact kept in ``MEMBENCH_HOME/<folder>/<key>.json`` (``compute()`` when absent;
    never kept under the key "unknown")."""
    memo = None if key == "unknown" else cache_dir(folder) / f"{key}.json"
    if memo is not None and memo.exists():
        try:
            return int(json.loads(memo.read_text())[field])
        except (OSError, ValueError, KeyError):
            pass
    value = int(compute())
    if memo is not None:
        _atomic_json(memo, {field: value})
    return value


def _count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj))
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("could not write %s (%s)", path, exc)


def param_count(folder: Path) -> int:
    """Parameters stored in a model folder: exact from safetensors headers (no torch needed);
    from ``.bin`` file sizes assuming fp16 otherwise."""
    import struct

    total = 0
    safetensors = sorted(folder.glob("*.safetensors"))
    for path in safetensors:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry.get("shape", []):
                    count *= int(dim)
                total += count
    if not safetensors:
        total = sum(p.stat().st_size for p in folder.glob("*.bin")) // 2
    return total


# --- devices --------------------------------------------------------------------------------

FIT_MARGIN = 1.25  # weights x this must fit: room for activations and the statistics chunks


def fits_on_device(weight_bytes: int, free_bytes: int | None) -> bool:
    return free_bytes is None or weight_bytes * FIT_MARGIN <= free_bytes


def free_device_bytes(device: str) -> int | None:
    if not device.startswith("cuda"):
        return None
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def device_budgets() -> dict:
    """``max_memory`` for ``device_map="auto"``: 85% of each visible GPU's memory, leaving room for
    activations."""
    import torch

    return {i: int(torch.cuda.get_device_properties(i).total_memory * 0.85) for i in range(torch.cuda.device_count())}


def check_device(device: str) -> None:
    """One line, before any heavy work, for a device this machine does not have."""
    if device == "cpu" or device == "meta":
        return
    if not device.startswith("cuda"):
        raise MembenchError(f"unknown device '{device}'", "use cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise MembenchError(f"device {device} was requested but this machine has no CUDA GPU "
                            f"(torch {torch.__version__}{'' if torch.version.cuda else ', a CPU-only build'})",
                            "pass --device cpu")
    index = device.partition(":")[2]
    if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
        raise MembenchError(f"device {device} does not exist ({torch.cuda.device_count()} GPU(s) visible)",
                            f"pass --device cuda:0 ... cuda:{torch.cuda.device_count() - 1}")


def check_dtype(device: str, dtype: str) -> None:
    """float16 on a CPU is refused (issue 27), not silently run: CPU kernels for half precision
    are missing or emulated (many times slower than float32), and quietly running float32 instead
    would put a dtype in the record's key that the numbers were not computed in. bfloat16 has
    CPU kernels and is allowed."""
    if dtype == "float16" and not str(device).startswith("cuda"):
        raise MembenchError(f"--dtype float16 on {device}: half precision needs a GPU (CPU kernels are missing "
                            "or emulated, and the result would not be an fp16 result)",
                            "pass --dtype float32 (or bfloat16) on a CPU, or --device cuda with float16")


# --- resolving a target to a local folder ---------------------------------------------------

def _snapshot_memo(spec: TargetSpec) -> Path:
    return cache_dir("snapshots") / f"{sha256_json([spec.hub_repo, spec.revision])[:32]}.json"


def local_copy(spec: TargetSpec) -> Path | None:
    """The folder already holding a Hub or registered target's config and weights, else None
    (nothing is downloaded; demo targets: ``targets.demo_target_dir``)."""
    if spec.family == "local" or spec.local_path:
        path = Path(spec.local_path or spec.id)
    else:
        try:
            path = Path(json.loads(_snapshot_memo(spec).read_text())["path"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if (path / "config.json").is_file() and any(path.glob(p) for p in WEIGHT_PATTERNS):
        return path
    return None


def resolve_path(spec: TargetSpec, *, verify: bool = False) -> Path:
    """The local directory holding the target's files (downloading from the Hub if needed)."""
    if spec.family == "local":
        return Path(spec.local_path or spec.id)
    if spec.local_path:  # registered under MEMBENCH_HOME (fine-tuned, a user's own)
        return Path(spec.local_path)
    if spec.family == "demo":
        from . import ensure_demo_target

        return ensure_demo_target(target_id=spec.id)
    memo = _snapshot_memo(spec)
    if not verify:
        path = local_copy(spec)
        if path is not None:
            return path
    path = _download(spec)
    _atomic_json(memo, {"repo": spec.hub_repo, "revision": spec.revision, "path": str(path)})
    return path


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


def load_target(target: str, *, device: str = "cpu", dtype: str = "float32", context_rule: str = CONTEXT_RULE,
                verify: bool = False, compile: bool = False) -> TargetHandle:
    """A handle on a registry target (``pythia-160m``, or a checkpoint ``pythia-160m@step99000``)
    or a local model directory. The folder is resolved now (a Hub target is downloaded once);
    the model and tokenizer load when first used. ``verify`` re-hashes every file."""
    if dtype not in DTYPES:
        raise MembenchError(f"unknown dtype '{dtype}'; valid choices: {', '.join(DTYPES)}")
    check_dtype(device, dtype)
    check_rule(context_rule)
    spec = get_target(target)
    with profiling.phase("loading", spec.id):
        path = resolve_path(spec, verify=verify)
    return TargetHandle(spec, path, device=device, dtype=dtype, context_rule=context_rule, verify=verify,
                        compile=compile)


LoadedTarget = TargetHandle  # the name earlier code used
