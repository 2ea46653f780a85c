"""Targets: the registry of Pythia/OPT checkpoints, loading conventions, the demo target.

Public face: ``get_target``, ``targets``, ``load_target``, ``LoadedTarget``, ``TargetSpec``,
``ensure_demo_target``, ``CONTEXT_RULE``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..home import locked, subdir
from .loading import CONTEXT_RULE, LoadedTarget, load_target
from .random_init import random_init_model
from .registry import DEMO_ARCH, TargetSpec, get_target, targets

DEMO_SPLIT = "demo/pydoc"


def demo_target_dir() -> Path:
    return subdir("targets", "demo", "neox-tiny")


def ensure_demo_target(progress: bool = True) -> Path:
    """The demo target's directory, training it first if it is not there yet."""
    out = demo_target_dir()
    done = lambda: (out / "training.json").exists() and (out / "model.safetensors").exists()  # noqa: E731
    if done():
        return out
    from .. import suite
    from . import demo

    with locked("demo-target"):
        if done():  # another process finished it while we waited
            return out
        split = suite.ensure(DEMO_SPLIT)
        labels = split.labels()
        members = split.samples.loc[split.samples["uid"].map(labels) == 1, "text"].tolist()
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        demo.train(members, tmp, arch=DEMO_ARCH, progress=progress)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


__all__ = [
    "CONTEXT_RULE",
    "LoadedTarget",
    "TargetSpec",
    "ensure_demo_target",
    "get_target",
    "load_target",
    "random_init_model",
    "targets",
]
