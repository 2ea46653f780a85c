"""The command line: help for every command, one-line errors for unknown names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmark.cli import COMMANDS, build_parser, main


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_help_lists_every_command():
    out = _cli("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def _all_command_paths():
    parser = build_parser()
    paths = []

    def walk(p, prefix):
        for action in p._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for name, child in action.choices.items():
                    paths.append(prefix + [name])
                    walk(child, prefix + [name])

    walk(parser, [])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=" ".join)
def test_each_command_has_help(path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    assert "usage: membench" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,name",
    [
        (["--target", "demo/neox-tiny", "--split", "nope/1"], "split 'nope/1'"),
        (["--target", "pythia-7b", "--split", "demo/pydoc"], "target 'pythia-7b'"),
        (["--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "bogus"], "scorer 'bogus'"),
    ],
)
def test_run_unknown_name_is_one_line_exit_2(args, name):
    out = _cli("run", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert name in lines[0] and "valid choices" in lines[0]
    assert "Traceback" not in out.stderr
