"""Shared fixtures. Tests make their own data and tiny models; nothing needs the network.

Hermetic: every test runs in a MEMBENCH_HOME of its own, a fresh temporary folder (the autouse
fixture ``membench_home``), so no test reads or writes the user's home (``~/.cache/membench``)
or the checkout's ``.membench``, and a split the user registered with `membench suite add` is
invisible to the tests. A module- or session-scoped fixture that sets MEMBENCH_HOME itself
keeps its own for its tests. Outside any test (collection, session fixtures) MEMBENCH_HOME is a
temporary session home, removed at the end.

A test that needs a trained demo target is marked ``@pytest.mark.slow`` (by default it needs
``demo/neox-tiny``; ``@pytest.mark.slow(needs=(...))`` names others). Once the tests are
collected, and before the first one runs, the demo targets that the selected slow tests need are
built once, with the build `make demo` uses (``targets.ensure_demo_target``), into a shared
build folder kept between sessions in pytest's cache (``.pytest_cache/d/membench-demo-build``;
a target already built there is reused), outside any per-test timeout. Each slow test's home
(and the session home) then gets a copy of that build (the weights hard-linked: nothing writes
a weights file in place), so a test may change its home freely. `make test-fast`
(``-m "not slow"``) selects none of them and builds nothing; the session home still gets a copy
of a build an earlier session left in the cache. A test not marked slow that trains a demo
target anyway is listed at the end of the run (mark it slow).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _sweep_stale_sessions() -> None:
    """Session folders of test runs that were killed before they could remove their own."""
    for folder in Path(tempfile.gettempdir()).glob("membench-tests-*-*"):
        try:
            pid = int(folder.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


_sweep_stale_sessions()
SESSION_ROOT = Path(tempfile.mkdtemp(prefix=f"membench-tests-{os.getpid()}-"))
SESSION_HOME = SESSION_ROOT / "home"  # MEMBENCH_HOME between tests: never the user's
os.environ["MEMBENCH_HOME"] = str(SESSION_HOME)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_TARGET = "demo/neox-tiny"
_DEMO_BUILD: list[Path] = []  # the shared demo build, once made (pytest_collection_finish)
_NOT_COPIED = ("locks", "staging", "scratch")


def demo_targets_needed(items) -> list[str]:
    """The demo targets the ``slow`` tests among ``items`` need, in the order first needed."""
    needed: list[str] = []
    for item in items:
        for mark in item.iter_markers("slow"):
            for target in mark.kwargs.get("needs", (DEMO_TARGET,)):
                if target not in needed:
                    needed.append(target)
    return needed


def copy_build(build: Path, home: Path) -> None:
    """A copy of the shared demo build in ``home`` (weights hard-linked, everything else copied)."""
    for root, dirs, files in os.walk(build):
        rel = Path(root).relative_to(build)
        if rel.parts and rel.parts[0] in _NOT_COPIED:
            dirs[:] = []
            continue
        (home / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(root) / name, home / rel / name
            if dst.exists():
                continue
            if name.endswith(".safetensors"):
                try:
                    os.link(src, dst)
                    continue
                except OSError:
                    pass
            shutil.copy2(src, dst)


def _build_folder(config) -> Path:
    cache = getattr(config, "cache", None)
    return cache.mkdir("membench-demo-build") if cache is not None else SESSION_ROOT / "demo-build"


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    needed = demo_targets_needed(session.items)
    build = _build_folder(session.config)
    if not needed:
        if (build / "targets").is_dir():  # built by an earlier session: module and session fixtures use it
            copy_build(build, SESSION_HOME)
        return
    from benchmark import targets

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    before = os.environ["MEMBENCH_HOME"]
    os.environ["MEMBENCH_HOME"] = str(build)
    try:
        for target_id in needed:
            if reporter is not None:
                reporter.write_line(f"demo target {target_id} for the slow tests: built once in {build} "
                                    f"(reused when present), copied into each slow test's own home")
            targets.ensure_demo_target(progress=False, target_id=target_id)
    finally:
        os.environ["MEMBENCH_HOME"] = before
    _DEMO_BUILD.append(Path(build))
    copy_build(Path(build), SESSION_HOME)  # for session- and module-scoped fixtures


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_ROOT, ignore_errors=True)


_UNMARKED_TRAINING: list[str] = []  # tests not marked slow that trained a demo target


def pytest_terminal_summary(terminalreporter):
    if _UNMARKED_TRAINING:
        terminalreporter.write_sep("-", "tests that trained a demo target without @pytest.mark.slow")
        for line in dict.fromkeys(_UNMARKED_TRAINING):
            terminalreporter.write_line(f"{line}: mark it slow, so the target is built once, before the tests")


@pytest.fixture(autouse=True)
def membench_home(request, monkeypatch, tmp_path_factory):
    """This test's own MEMBENCH_HOME: a fresh temporary folder (with a copy of the demo build
    for a ``slow`` test); left as it is when a wider-scoped fixture already chose one."""
    current = os.environ.get("MEMBENCH_HOME")
    if current != str(SESSION_HOME):
        yield Path(current)
        return
    home = tmp_path_factory.mktemp("membench-home")
    slow = request.node.get_closest_marker("slow") is not None
    if _DEMO_BUILD and slow:
        copy_build(_DEMO_BUILD[0], home)
    monkeypatch.setenv("MEMBENCH_HOME", str(home))
    if not slow:  # a test that trains a demo target should say so (listed at the end)
        from benchmark import progress

        def unmarked(desc, done, total, test=request.node.nodeid):
            if done == 1 and desc.startswith("training demo/"):
                _UNMARKED_TRAINING.append(test)

        monkeypatch.setattr(progress, "HOOKS", [*progress.HOOKS, unmarked])
    yield home


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
    from benchmark.evaluate import RunSpec, run, run_blind

    out = tmp_path_factory.mktemp("demo-results")
    targets.ensure_demo_target(progress=False)
    run(RunSpec.build("demo/neox-tiny", targets.DEMO_SPLIT, attacks.FEATURE_SCORERS, results_dir=out, progress=False))
    run_blind(targets.DEMO_SPLIT, results_dir=out)
    return out
