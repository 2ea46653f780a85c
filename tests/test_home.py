"""One home (issue 27): which MEMBENCH_HOME a command uses, builds that say what and where,
interrupted builds that leave nothing looking built, and tests that never touch the user's home."""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import home, progress, targets
from benchmark.cli import main
from benchmark.targets import demo as demo_training

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout (a folder with .git) with a subfolder to run in, a user home of its own, and
    no MEMBENCH_HOME."""
    root = tmp_path / "checkout"
    (root / ".git").mkdir(parents=True)
    (root / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(root / "a" / "b")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("MEMBENCH_HOME", raising=False)
    return root


def test_home_is_env_then_the_checkouts_membench_then_the_default(checkout, tmp_path, monkeypatch):
    root, why = home.resolve_home()
    assert root == tmp_path / "user" / ".cache" / "membench" and "default" in why  # no .membench yet
    assert not root.exists()  # deciding creates nothing
    (checkout / ".membench").mkdir()
    root, why = home.resolve_home()
    assert root == checkout / ".membench" and str(checkout) in why  # found by walking up
    monkeypatch.setenv("MEMBENCH_HOME", str(tmp_path / "mine"))
    assert home.resolve_home() == (tmp_path / "mine", "$MEMBENCH_HOME")


def test_a_worktree_checkout_counts_and_outside_any_checkout_the_default(tmp_path, monkeypatch):
    wt = tmp_path / "wt"
    (wt / ".membench").mkdir(parents=True)
    (wt / ".git").write_text("gitdir: /somewhere/else\n")  # a git worktree has a .git file
    monkeypatch.chdir(wt)
    monkeypatch.delenv("MEMBENCH_HOME", raising=False)
    assert home.resolve_home()[0] == wt / ".membench"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    if home.checkout_root() is None:  # (tmp_path is in no checkout on any sane machine)
        assert home.resolve_home()[0] == tmp_path / "user" / ".cache" / "membench"


def test_the_cli_pins_the_home_for_every_process_it_starts(checkout, capsys, monkeypatch):
    (checkout / ".membench").mkdir()
    monkeypatch.delenv(home.PINNED_ENV, raising=False)
    assert main(["targets", "list"]) == 0
    assert os.environ["MEMBENCH_HOME"] == str(checkout / ".membench")  # grid workers inherit it
    out = capsys.readouterr().out
    assert str(checkout / ".membench") in out and "not built" in out  # the list says where it looked
    assert "the .membench of the checkout" in out  # and why: the rule, not just the variable it set
    child = subprocess.run([sys.executable, "-c", "from benchmark import home; print(home.home_source())"],
                           capture_output=True, text=True, timeout=120, cwd="/")
    assert child.stdout.strip().startswith("the .membench of the checkout"), child.stderr


def test_building_renames_into_place_only_when_complete(tmp_path):
    final = home.targets_dir("mine/model")
    assert not final.exists() and final.parent.is_dir()  # the folder appears only when built
    with pytest.raises(RuntimeError):
        with home.building(final) as work:
            (work / "weights").write_text("half")
            raise RuntimeError("killed midway")
    assert not final.exists() and list(home.staging_dir().iterdir()) == []
    with home.building(final) as work:
        (work / "weights").write_text("v1")
    assert (final / "weights").read_text() == "v1"
    with home.building(final) as work:  # a rebuild replaces the whole folder
        (work / "other").write_text("v2")
    assert sorted(p.name for p in final.iterdir()) == ["other"]
    dead = home.staging_dir() / f"{socket.gethostname()}__999999999__deadbeef__model"  # a SIGKILLed build's
    dead.mkdir()
    elsewhere = home.staging_dir() / "another-host__999999999__deadbeef__model"  # a cluster node's, maybe live
    elsewhere.mkdir()
    assert home.sweep_staging() == 1 and not dead.exists() and elsewhere.exists()


def _tiny_arch(monkeypatch):
    """The demo build as it is, on a much smaller model for two epochs (seconds, not minutes)."""
    monkeypatch.setattr(targets, "DEMO_ARCH", dict(model_type="gpt_neox", hidden_size=16, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=32,
                                                   max_position_embeddings=64, rotary_pct=0.25))
    monkeypatch.setattr(demo_training, "train", functools.partial(demo_training.train, epochs=2))


def test_an_interrupted_demo_build_is_reported_unbuilt_and_rebuilt_next_time(monkeypatch, capsys):
    _tiny_arch(monkeypatch)
    seen = []

    def interrupt(desc, done, total):
        seen.append(done)
        if done == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of training

    monkeypatch.setattr(progress, "HOOKS", [interrupt])
    with pytest.raises(KeyboardInterrupt):
        targets.ensure_demo_target(progress=True)
    err = capsys.readouterr().err
    assert f"building demo target demo/neox-tiny" in err and str(home.home()) in err  # what, and where
    assert not targets.demo_target_built() and not targets.demo_target_dir().exists()
    assert list(home.staging_dir().iterdir()) == []  # nothing half-built left anywhere
    assert main(["targets", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["demo/neox-tiny"]["status"] == "not built"

    steps = []
    monkeypatch.setattr(progress, "HOOKS", [lambda desc, done, total: steps.append((done, total))])
    out = targets.ensure_demo_target(progress=False)
    assert steps[0][0] == 1 and steps[-1][0] == steps[-1][1]  # trained from the start, to the end
    assert targets.demo_target_built() and (out / "model.safetensors").exists()
    assert progress.last_timing("target demo/neox-tiny") is not None  # the next plan can say how long
    assert main(["targets", "list", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["demo/neox-tiny"]["status"] == "built"


def test_each_test_has_a_home_of_its_own(membench_home, tmp_path_factory):
    current = Path(os.environ["MEMBENCH_HOME"])
    assert current == membench_home == home.home()
    assert current.is_relative_to(tmp_path_factory.getbasetemp())
    assert current != home.default_home() and not current.is_relative_to(REPO)


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def test_the_tests_pass_after_suite_add_in_the_users_home_and_leave_it_untouched(tmp_path):
    """The issue's "must be shown": a researcher registers a split in their home (here a
    temporary user home, named both by HOME and by an exported MEMBENCH_HOME), then runs the
    tests; they pass (a leaked registry entry would fail test_registry_declares_the_whole_suite
    and the `suite add mylab/forum` test) and the home is byte-for-byte as it was."""
    user = tmp_path / "user"
    user_home = user / ".cache" / "membench"
    data = tmp_path / "mine.jsonl"
    rows = [{"text": f"member passage number {i} " * 4, "label": 1} for i in range(10)]
    rows += [{"text": f"other passage number {i} " * 4, "label": 0} for i in range(10)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MEMBENCH_HOME", "PYTEST_CURRENT_TEST")}
    env["HOME"] = str(user)
    added = subprocess.run([sys.executable, "-m", "benchmark", "suite", "add", "mylab/forum", "--file", str(data)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert added.returncode == 0, added.stderr
    assert (user_home / "registry" / "splits").is_dir()  # bare command outside a checkout: ~/.cache/membench
    before = _tree(user)
    env["MEMBENCH_HOME"] = str(user_home)  # even a user who exports it
    sample = ["tests/suite/test_suite.py::test_registry_declares_the_whole_suite",
              "tests/suite/test_suite.py::test_controls_say_their_labels_are_not_membership",
              "tests/suite/test_suite_add.py", "tests/test_registered.py"]
    ran = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *sample],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert _tree(user) == before
