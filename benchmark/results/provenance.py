"""Provenance: where a number came from (code, libraries, machine)."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata

from .. import __version__
from ..home import REPO_ROOT


@lru_cache(maxsize=1)
def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = out.stdout.strip()
        if out.returncode != 0 or not commit:
            return "unknown"
        dirty = subprocess.run(
            # Generated outputs (published results, data cards, the site) do not make the code
            # dirty: regenerating them must not mark their own provenance.
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no", "--",
             ".", ":(exclude)leaderboard_site", ":(exclude)data_cards"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: str | None = None) -> dict:
    """Harness version and commit, library versions, Python and the device."""
    env = {
        "membench_version": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": {
            name: _version(name)
            for name in ("torch", "transformers", "tokenizers", "numpy", "scikit-learn", "pandas")
        },
    }
    if device is not None:
        env["device"] = device_name(device)
    return env


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({platform.processor() or platform.machine()})"
