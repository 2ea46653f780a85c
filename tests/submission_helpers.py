"""Submissions written for a test: a folder, or an upload zip, of ``scorer.py`` and ``submission.yaml``."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from pathlib import Path

YAML = """\
name: {name}
version: "1"
authors: ["{author}"]
description: {name}
threat_model: {threat_model}
capabilities: {caps}
reference_models: {refs}
license: MIT
"""

# A scorer class whose ``score`` body follows (indented under it); ``n`` is the number of texts.
HEAD = """\
import ctypes, errno, json, os, signal, socket, struct, sys, threading, time
import numpy as np
from benchmark.api import Scorer

class S(Scorer):
    name = "{name}"
    requires = {requires}

    def score(self, inputs):
        n = len(inputs.texts)
"""


def submission_yaml(name: str, caps=(), refs=(), author: str = "mallory", threat_model: str = "hostile test") -> str:
    return YAML.format(name=name, author=author, caps=json.dumps(list(caps)), refs=json.dumps(list(refs)),
                       threat_model=threat_model)


def submission_zip(name: str, body: str, caps=(), refs=(), author: str = "mallory", yaml: str | None = None,
                   extra: dict | None = None, threat_model: str = "hostile test") -> bytes:
    """An upload: ``<name>/scorer.py`` (``HEAD`` and ``body``), ``<name>/submission.yaml`` (``yaml`` or one
    declaring ``caps`` and ``refs``) and ``extra`` files, zipped."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        code = HEAD.format(name=name, requires=tuple(caps)) + textwrap.indent(textwrap.dedent(body), " " * 8)
        zf.writestr(f"{name}/scorer.py", code)
        zf.writestr(f"{name}/submission.yaml",
                    yaml if yaml is not None else submission_yaml(name, caps, refs, author, threat_model))
        for path, data in (extra or {}).items():
            zf.writestr(f"{name}/{path}", data)
    return buf.getvalue()


def write_submission(root: Path, name: str, scorer: str, yaml: str) -> Path:
    folder = Path(root) / name
    folder.mkdir()
    (folder / "scorer.py").write_text(scorer)
    (folder / "submission.yaml").write_text(yaml)
    return folder


MINIMAL_YAML = 'name: {name}\nversion: "1"\nauthors: [t]\ndescription: d\nthreat_model: none\ncapabilities: []\n'
TEXT_SCORER = """\
import random
import numpy as np
from benchmark.api import Scorer

class T(Scorer):
    name = "{name}"
    requires = ()

    def score(self, inputs):
        return np.array([{expr} for t in inputs.texts], dtype=float)
"""


def text_scorer_submission(root: Path, name: str, expr: str = "len(t)", class_name: str | None = None) -> Path:
    """A folder submission named ``name`` scoring each text ``t`` by ``expr`` (no model access);
    ``class_name``: the scorer class's ``name`` when it should differ from the submission's."""
    return write_submission(root, name, TEXT_SCORER.format(name=class_name or name, expr=expr),
                            MINIMAL_YAML.format(name=name))


def run_spec(split: str, target: str, results_dir: Path | None = None, **options):
    """The ``RunSpec`` a submission is validated or evaluated with (no built-in scorer)."""
    from benchmark.evaluate import RunSpec

    return RunSpec.build(target, split, scorers=(), results_dir=results_dir, progress=False, **options)
