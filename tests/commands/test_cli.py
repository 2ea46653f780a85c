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
    for command in COMMANDS:
        assert command.__name__.rpartition(".")[2].replace("_", "-") in out.stdout  # dcpdd_freq: dcpdd-freq


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
    "args,name,near",
    [
        (["--target", "demo/neox-tiny", "--split", "wikimia/3"], "split 'wikimia/3'", "'wikimia/32'"),
        (["--target", "pythia-16m", "--split", "demo/pydoc"], "target 'pythia-16m'", "'pythia-160m'"),
        (["--target", "demo/neox-tiny", "--split", "demo/pydoc", "--scorer", "min_kk"], "scorer 'min_kk'",
         "'min_k'"),
    ],
)
def test_run_unknown_name_is_one_line_suggesting_the_closest(args, name, near):
    out = _cli("run", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert name in lines[0] and f"did you mean {near}" in lines[0]
    assert "Traceback" not in out.stderr


def test_long_registries_are_not_dumped_short_ones_are_listed(capsys):
    from benchmark.errors import unknown

    long = unknown("split", "nope/1", [f"split/{i}" for i in range(40)])
    assert "valid choices" not in long.message and "membench suite list" in long.hint and "40" in long.hint
    short = unknown("scorer", "nope", ["loss", "zlib"])
    assert str(short).endswith("valid choices: loss, zlib")


def test_json_errors_are_one_json_object_on_stderr(capsys):
    import json

    assert main(["run", "--target", "demo/neox-tiny", "--split", "wikimia/3", "--json"]) == 2
    captured = capsys.readouterr()
    err = json.loads(captured.err)
    assert captured.out == "" and set(err) == {"error", "hint", "exit_code"}
    assert "unknown split 'wikimia/3'" in err["error"] and "membench suite list" in err["hint"]
    assert main(["suite", "show", "nope/1", "--json"]) == 2
    assert json.loads(capsys.readouterr().err)["exit_code"] == 2
    with pytest.raises(SystemExit) as exc:  # argparse's own errors too
        main(["run", "--target", "x", "--split", "y", "--bogus", "--json"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --bogus" in json.loads(capsys.readouterr().err)["error"]
    assert main(["run", "--target", "demo/neox-tiny", "--split", "wikimia/3"]) == 2
    assert capsys.readouterr().err.startswith("membench: error: unknown split")


def _options():
    import argparse

    from benchmark.cli import _FLAGS

    out = []

    def walk(p, prefix):
        for group in p._mutually_exclusive_groups:
            for action in group._group_actions:
                action.in_required_group = group.required
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, prefix + [name])
            elif action.option_strings and not isinstance(action, _FLAGS) and not action.required \
                    and not getattr(action, "in_required_group", False):
                out.append((" ".join(prefix), action))

    walk(build_parser(), [])
    return out


@pytest.mark.parametrize("command, action", _options(), ids=lambda x: x if isinstance(x, str) else x.dest)
def test_every_option_help_shows_its_default(command, action):
    from benchmark.cli import _Formatter

    text = _Formatter("membench")._expand_help(action) if action.help else ""
    assert "default" in text.lower(), f"membench {command} {action.option_strings[0]}: {text!r}"
    if "default" not in (action.help or "").lower() and action.default is not None:
        assert f"(default: {action.default})" in text  # the value itself, filled in by the formatter
