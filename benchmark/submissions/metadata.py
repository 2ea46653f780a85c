"""``submission.yaml``: the metadata every submitted scorer carries, and its schema.

Example::

    name: min_k_30                 # lowercase id: letters, digits, _ . -
    version: "1"
    authors: ["A. Researcher <a@example.org>"]
    description: Min-K% Prob with k = 0.3.
    threat_model: gray-box; per-token log-probabilities of the target on the text
    capabilities: [features]       # subset of features, reference, logprobs, generate, gradients, fit, groups
    reference_models: []           # target ids, when `reference` is declared
    outside_data: []               # any data used beyond the suite (name and licence)
    params: {k: 0.3}               # passed to the scorer's constructor
    # class: MinK30                # only when scorer.py defines more than one Scorer
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from ..attacks.base import CAPABILITIES
from ..errors import MembenchError

# Capabilities that need a track this harness does not serve yet (labelled calibration data
# with a training budget; user-level groups). Declaring them is refused at validation.
NOT_SERVED = {
    "fit": "needs a labelled calibration split and a training budget, which no track offers yet",
    "groups": "needs a user-level track, which the suite does not hold yet",
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "membench submission.yaml",
    "type": "object",
    "required": ["name", "version", "authors", "description", "threat_model", "capabilities"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
        "version": {"type": ["string", "integer"]},
        "authors": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "description": {"type": "string", "minLength": 1},
        "threat_model": {"type": "string", "minLength": 1},
        "capabilities": {
            "type": "array",
            "items": {"enum": list(CAPABILITIES)},
            "uniqueItems": True,
        },
        "reference_models": {"type": "array", "items": {"type": "string"}},
        "outside_data": {"type": "array", "items": {"type": "string"}},
        "params": {"type": "object"},
        "class": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "license": {"type": "string"},
        "url": {"type": "string"},
    },
}

EXAMPLE_HINT = "see submissions/README.md for the fields and a complete example"


@dataclass
class Submission:
    """A submission folder and its parsed metadata."""

    path: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(self.meta["capabilities"])

    @property
    def params(self) -> dict:
        return dict(self.meta.get("params") or {})

    @property
    def class_name(self) -> str | None:
        return self.meta.get("class")


def load(path) -> Submission:
    """Read and check ``submission.yaml`` in folder ``path`` (a ``MembenchError`` if bad)."""
    path = Path(path)
    if not path.is_dir():
        raise MembenchError(f"submission folder {path} does not exist", "pass a folder holding scorer.py and submission.yaml")
    meta_file = path / "submission.yaml"
    if not meta_file.is_file():
        raise MembenchError(f"{path} has no submission.yaml", EXAMPLE_HINT)
    if not (path / "scorer.py").is_file():
        raise MembenchError(f"{path} has no scorer.py", EXAMPLE_HINT)
    try:
        meta = yaml.safe_load(meta_file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MembenchError(f"{meta_file} is not valid YAML{where}: {getattr(exc, 'problem', exc)}", EXAMPLE_HINT) from None
    except UnicodeDecodeError:
        raise MembenchError(f"{meta_file} is not UTF-8 text", EXAMPLE_HINT) from None
    if not isinstance(meta, dict):
        raise MembenchError(f"{meta_file} must be a mapping of fields, not {type(meta).__name__}", EXAMPLE_HINT)
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(meta), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "(top level)"
        raise MembenchError(f"{meta_file}: {where}: {err.message}", EXAMPLE_HINT)
    for cap in meta["capabilities"]:
        if cap in NOT_SERVED:
            raise MembenchError(f"{meta_file}: capability '{cap}' {NOT_SERVED[cap]}", "declare only capabilities the harness serves")
    if "reference" in meta["capabilities"] and not meta.get("reference_models"):
        raise MembenchError(f"{meta_file}: capability 'reference' needs reference_models (a target id)", EXAMPLE_HINT)
    return Submission(path=path, meta=meta)
