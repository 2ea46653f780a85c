"""Targets: the registry of Pythia/OPT checkpoints, loading conventions, the demo target.

Public face: ``get_target``, ``targets``, ``load_target`` (a ``TargetHandle``: ids and hashes
now, model and tokenizer on first use), ``TargetSpec``, ``ensure_demo_target``, ``CONTEXT_RULE``
(the default) and ``CONTEXT_RULES``, ``context_windows``, ``check_device``, ``register_target``
(a target kept under MEMBENCH_HOME).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..home import announce, building, locked, targets_dir
from ..progress import duration, last_timing, record_timing
from . import demo
from .context import CONTEXT_RULE, CONTEXT_RULES, check_rule
from .context import windows as context_windows
from .loading import LoadedTarget, TargetHandle, check_device, check_dtype, load_target
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
    info = out / "training.json"
    if not (info.exists() and (out / "model.safetensors").exists()):
        return False
    try:
        return json.loads(info.read_text()).get("tokenizer_trained_on") == DEMO_TOKENIZER_FROM
    except ValueError:
        return False


def demo_target_built(target_id: str = "demo/neox-tiny") -> bool:
    """Whether a demo target is completely built in this home (its folder appears only when
    its build completes: ``home.building``), its tokenizer by the current rule."""
    return _built(demo_target_dir(target_id))


def build_status(spec: TargetSpec) -> str:
    """Whether a target's weights are here: "built" (in this home), "not built" (membench builds
    it on first use), "missing" (a registered folder that is gone), or "on the Hub"."""
    if spec.family == "demo":
        return "built" if demo_target_built(spec.id) else "not built"
    if spec.local_path:
        return "built" if Path(spec.local_path).is_dir() else "missing"
    return "on the Hub" if spec.hub_repo else "-"


def ensure_demo_target(progress: bool = True, target_id: str = "demo/neox-tiny") -> Path:
    """A demo target's directory, training it first if it is not there yet (or if its tokenizer
    was trained by the former rule, on its members). Training says what and in which home
    (``home.announce``), and writes into a staging folder renamed into place at the end
    (``home.building``): an interrupted training leaves no target folder."""
    out = demo_target_dir(target_id)
    if demo_target_built(target_id):
        return out
    with locked(f"target-{target_id}"):
        if demo_target_built(target_id):  # another process finished it while we waited
            return out
        texts, what, tokenizer_texts = _demo_training_texts(target_id)
        last = last_timing(f"target {target_id}")
        expect = f"{duration(last)} last time in this home" if last is not None else "several minutes on a CPU"
        announce(f"demo target {target_id} (a tiny GPT-NeoX trained on {len(texts)} texts, {what}; once, "
                 f"{expect})", quiet=not progress)
        started = time.monotonic()
        with building(out) as work:
            demo.train(texts, work, arch=DEMO_ARCH, tokenizer_texts=tokenizer_texts,
                       tokenizer_from=DEMO_TOKENIZER_FROM, progress=progress, desc=f"training {target_id}")
            info = json.loads((work / "training.json").read_text())
            (work / "training.json").write_text(json.dumps({**info, "trained_on": what}, indent=2) + "\n")
        record_timing(f"target {target_id}", time.monotonic() - started)
    return out


__all__ = [
    "CONTEXT_RULE",
    "CONTEXT_RULES",
    "LoadedTarget",
    "TargetHandle",
    "check_device",
    "check_dtype",
    "check_rule",
    "context_windows",
    "TargetSpec",
    "DEMO_REFERENCE",
    "DEMO_TOKENIZER_FROM",
    "build_status",
    "demo_target_built",
    "ensure_demo_target",
    "get_target",
    "load_target",
    "random_init_model",
    "register_target",
    "targets",
]
