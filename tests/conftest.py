"""Shared fixtures. Tests make their own data and tiny models; nothing needs the network.

MEMBENCH_HOME defaults to the repository's .membench (the same place `make demo` uses), so the
demo target is trained once and reused by later runs. Tests that write go to tmp_path.

A test that needs a trained demo target is marked ``@pytest.mark.slow`` (by default it needs
``demo/neox-tiny``; ``@pytest.mark.slow(needs=(...))`` names others). Once the tests are
collected, and before the first one runs, the demo targets that the selected slow tests need are
built with the build `make demo` uses (``targets.ensure_demo_target``; a target already built is
reused), outside any per-test timeout. `make test-fast` (``-m "not slow"``) selects none of
them and builds nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("MEMBENCH_HOME", str(REPO / ".membench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_TARGET = "demo/neox-tiny"


def demo_targets_needed(items) -> list[str]:
    """The demo targets the ``slow`` tests among ``items`` need, in the order first needed."""
    needed: list[str] = []
    for item in items:
        for mark in item.iter_markers("slow"):
            for target in mark.kwargs.get("needs", (DEMO_TARGET,)):
                if target not in needed:
                    needed.append(target)
    return needed


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    needed = demo_targets_needed(session.items)
    if not needed:
        return
    from benchmark import targets

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for target_id in needed:
        if reporter is not None:
            reporter.write_line(f"demo target {target_id} for the slow tests: built once in "
                                f"{os.environ['MEMBENCH_HOME']} (reused when present)")
        targets.ensure_demo_target(progress=False, target_id=target_id)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_neox():
    """A random-weight GPT-NeoX (Pythia architecture) small enough for unit tests."""
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    config = GPTNeoXConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        rotary_pct=0.25,
    )
    return GPTNeoXForCausalLM(config).eval()


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory):
    """The demo job's result files (the demo target is trained once, then cached)."""
    from benchmark import attacks, targets
    from benchmark.runner import run, run_blind

    out = tmp_path_factory.mktemp("demo-results")
    targets.ensure_demo_target(progress=False)
    run("demo/neox-tiny", targets.DEMO_SPLIT, attacks.FEATURE_SCORERS, results_dir=out, progress=False)
    run_blind(targets.DEMO_SPLIT, results_dir=out)
    return out
