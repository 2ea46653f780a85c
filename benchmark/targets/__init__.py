"""Targets: the registry of Pythia/OPT checkpoints, loading conventions, the demo target.

Public face: ``get_target``, ``targets``, ``load_target`` (a ``TargetHandle``: ids and hashes
now, model and tokenizer on first use), ``TargetSpec``, ``ensure_demo_target``, ``CONTEXT_RULE``
(the default) and ``CONTEXT_RULES``, ``context_windows``, ``check_device``, ``register_target``
(a target kept under MEMBENCH_HOME).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..home import locked, targets_dir
from .context import CONTEXT_RULE, CONTEXT_RULES, check_rule
from .context import windows as context_windows
from .loading import LoadedTarget, TargetHandle, check_device, load_target
from .random_init import random_init_model
from .registry import DEMO_ARCH, TargetSpec, get_target, register_target, targets

DEMO_SPLIT = "demo/pydoc"
DEMO_REFERENCE = "demo/neox-tiny-ref"


def demo_target_dir(target_id: str = "demo/neox-tiny") -> Path:
    return targets_dir(target_id)


# A demo target is trained on the members of its split (the reference: on the pool); every
# demo tokenizer on the split's pool, which is neither member nor non-member, so that the
# tokenizer alone tells nothing about membership (a target and its reference share it).
DEMO_TARGET_SPLITS = {"demo/neox-tiny-private": "demo/pydoc-private"}
DEMO_TOKENIZER_FROM = "the demo split's reference pool (pool.parquet): neither member nor non-member"


def _demo_training_texts(target_id: str) -> tuple[list[str], str, list[str]]:
    """(training texts, what they are, the tokenizer's texts) of a demo target."""
    import pandas as pd

    from .. import suite

    split = suite.ensure(DEMO_TARGET_SPLITS.get(target_id, DEMO_SPLIT))
    pool = pd.read_parquet(split.path / "pool.parquet")["text"].tolist()
    if target_id == DEMO_REFERENCE:  # the reference never sees a member
        return pool, "the demo split's non-member pool (pool.parquet)", pool
    labels = split.labels()
    members = split.samples.loc[split.samples["uid"].map(labels) == 1, "text"].tolist()
    return members, f"members of {split.id}", pool


def _built(out: Path) -> bool:
    """A finished demo target whose tokenizer was trained by the current rule (one trained
    on its members, as before, is trained again)."""
    import json

    info = out / "training.json"
    if not (info.exists() and (out / "model.safetensors").exists()):
        return False
    try:
        return json.loads(info.read_text()).get("tokenizer_trained_on") == DEMO_TOKENIZER_FROM
    except ValueError:
        return False


def ensure_demo_target(progress: bool = True, target_id: str = "demo/neox-tiny") -> Path:
    """A demo target's directory, training it first if it is not there yet."""
    out = demo_target_dir(target_id)
    if _built(out):
        return out
    import json

    from . import demo

    with locked(f"target-{target_id}"):
        if _built(out):  # another process finished it while we waited
            return out
        texts, what, tokenizer_texts = _demo_training_texts(target_id)
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        demo.train(texts, tmp, arch=DEMO_ARCH, tokenizer_texts=tokenizer_texts, tokenizer_from=DEMO_TOKENIZER_FROM,
                   progress=progress)
        info = json.loads((tmp / "training.json").read_text())
        (tmp / "training.json").write_text(json.dumps({**info, "trained_on": what}, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


__all__ = [
    "CONTEXT_RULE",
    "CONTEXT_RULES",
    "LoadedTarget",
    "TargetHandle",
    "check_device",
    "check_rule",
    "context_windows",
    "TargetSpec",
    "DEMO_REFERENCE",
    "DEMO_TOKENIZER_FROM",
    "ensure_demo_target",
    "get_target",
    "load_target",
    "random_init_model",
    "register_target",
    "targets",
]
