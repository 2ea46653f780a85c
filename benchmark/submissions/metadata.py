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
    license: MIT
    params: {k: 0.3}               # passed to the scorer's constructor
    # class: MinK30                # only when scorer.py defines more than one Scorer

The file is read as data, never as a program: at most ``MAX_BYTES``, YAML without anchors or
aliases (no alias bombs) and with only JSON's types (strings, numbers, true/false/null, lists,
mappings with string keys; no dates, binary, sets or tags), finite numbers, nesting at most
``MAX_DEPTH`` deep. The schema reaches into ``params`` (identifier keys, bounded values), and
every text field is one line of bounded length. Names of built-in attacks and blind
baselines are reserved (``reserved_name``; who holds every other name: ``owners``), and
``reference_models`` are target registry ids, never folders (``guards.model_spec``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from ..api import CAPABILITIES
from ..errors import MembenchError
from . import guards, owners, safe_text
from .owners import ReservedName  # noqa: F401  (re-exported: the API answers it with 403)

# Capabilities this harness does not serve (declaring one is refused at validation): none now.
# ``fit`` is served (the scorer fits, in the jail, on a calibration subset and is scored on the
# evaluated rest) and so is ``groups`` (one score per user of a user-level split); see evaluation.py.
NOT_SERVED: dict[str, str] = {}

MAX_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_NODES = 5000
NAME_PATTERN = "^[a-z0-9][a-z0-9_.-]{0,63}$"
_CONTROL = "[\\x00-\\x1f\\x7f]"  # control characters: none in a one-line field
_CONTROL_BUT_NEWLINE = "[\\x00-\\x08\\x0b-\\x1f\\x7f]"  # a multi-line field keeps newlines and tabs


def _text(max_len: int, multiline: bool = False) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_len,
            "not": {"pattern": _CONTROL_BUT_NEWLINE if multiline else _CONTROL}}


_PARAM_VALUE = {
    "anyOf": [
        {"type": ["number", "boolean", "null"]},
        {"type": "string", "maxLength": 1000},
        {"type": "array", "maxItems": 1000, "items": {"$ref": "#/$defs/param"}},
        {"type": "object", "maxProperties": 100, "propertyNames": {"maxLength": 100},
         "additionalProperties": {"$ref": "#/$defs/param"}},
    ]
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "membench submission.yaml",
    "type": "object",
    "required": ["name", "version", "authors", "description", "threat_model", "capabilities"],
    "additionalProperties": False,
    "$defs": {"param": _PARAM_VALUE},
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "version": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 10**9},
                              {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Za-z0-9._+-]+$"}]},
        "authors": {"type": "array", "minItems": 1, "maxItems": 50, "items": _text(200)},
        "description": _text(4000, multiline=True),
        "threat_model": _text(500),
        "capabilities": {"type": "array", "items": {"enum": list(CAPABILITIES)}, "uniqueItems": True},
        "reference_models": {"type": "array", "maxItems": 4, "items": _text(200)},
        "outside_data": {"type": "array", "maxItems": 50, "items": _text(500)},
        "params": {"type": "object", "maxProperties": 50,
                   "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                   "additionalProperties": {"$ref": "#/$defs/param"}},
        "class": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
        "license": _text(100),
        "url": {"type": "string", "maxLength": 500, "pattern": "^https?://[^\\s\\x00-\\x1f\\x7f]+$"},
    },
}

EXAMPLE_HINT = "see submissions/README.md for the fields and a complete example"


def reserved_name(name: str) -> str | None:
    """Why ``name`` cannot be anyone's submission (None when it may be): built-in attack and
    blind baseline names, names starting with ``blind``, reserved words. Who holds the other
    names (the maintainers' published ones, submitters') is the owner table's (``owners``)."""
    return owners.builtin_reason(name)


class _Loader(yaml.SafeLoader):
    """YAML restricted to JSON: no anchors/aliases, no tags, only JSON's scalar types."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.YAMLError("anchors and aliases (& and *) are not allowed in submission.yaml")
        self._nodes = getattr(self, "_nodes", 0) + 1
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._nodes > MAX_NODES:
                raise yaml.YAMLError(f"submission.yaml holds more than {MAX_NODES} values")
            if self._depth > MAX_DEPTH + 1:
                raise yaml.YAMLError(f"submission.yaml nests deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse(loader, node):
    raise yaml.YAMLError(f"values of type {safe_text.one_line(node.tag, 60)} are not allowed in submission.yaml "
                         "(only strings, numbers, true/false/null, lists and mappings)")


# Types: JSON's only. Constructors for anything else (timestamps, binary, sets, ordered maps,
# any explicit tag) refuse; implicit resolution knows no dates, sexagesimal or octal numbers
# and no merge keys.
_Loader.yaml_constructors = {
    tag: yaml.SafeLoader.yaml_constructors[tag]
    for tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                "tag:yaml.org,2002:float", "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq",
                "tag:yaml.org,2002:map")
}
_Loader.add_constructor(None, _refuse)
_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|false)$", list("tf")),
    ("tag:yaml.org,2002:null", r"^(?:null|~|)$", ["n", "~", ""]),
    ("tag:yaml.org,2002:int", r"^-?(?:0|[1-9][0-9]*)$", list("-0123456789")),
    ("tag:yaml.org,2002:float", r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?$", list("-0123456789")),
):
    _Loader.add_implicit_resolver(_tag, re.compile(_regexp), _first)


def parse(text: str, where: str = "submission.yaml") -> dict:
    """The mapping in ``text``; ``MembenchError`` for anything that is not plain JSON data."""
    try:
        meta = yaml.load(text, Loader=_Loader)  # noqa: S506  (the loader above allows JSON data only)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MembenchError(f"{where} is not valid YAML{at}: {safe_text.one_line(problem, 200)}", EXAMPLE_HINT) from None
    except (ValueError, RecursionError):  # e.g. an integer of more digits than Python converts
        raise MembenchError(f"{where} holds a number too long to read", "use ordinary numbers") from None
    _check_json(meta, where)
    if not isinstance(meta, dict):
        raise MembenchError(f"{where} must be a mapping of fields, not {type(meta).__name__}", EXAMPLE_HINT)
    return meta


def _check_json(value, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise MembenchError(f"{where} holds a non-finite number", "use finite numbers only")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise MembenchError(f"{where}: mapping keys must be strings (got {safe_text.name(k, 40)})", EXAMPLE_HINT)
            _check_json(v, where)
    elif isinstance(value, list):
        for v in value:
            _check_json(v, where)


def read_text(path: Path) -> str:
    """A file of the submission, at most ``MAX_BYTES``, never through a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise MembenchError(f"{safe_text.name(str(path), 160)} cannot be read ({exc.strerror})",
                            "submission.yaml must be a regular file, not a link") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise MembenchError(f"{path.name} is larger than {MAX_BYTES >> 10} KiB", "keep the metadata short")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MembenchError(f"{path.name} is not UTF-8 text", EXAMPLE_HINT) from None


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


def check(meta: dict, where: str = "submission.yaml") -> dict:
    """Schema, served capabilities, reference models and the name; returns ``meta``."""
    errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(meta), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        at = "/".join(safe_text.one_line(p, 40) for p in err.path) or "(top level)"
        message = ("must not hold control characters (a one-line field: no newline, tab or escape)"
                   if err.validator == "not" else safe_text.one_line(err.message, 200))
        raise MembenchError(f"{where}: {at}: {message}", EXAMPLE_HINT)
    for cap in meta["capabilities"]:
        if cap in NOT_SERVED:
            raise MembenchError(f"{where}: capability '{cap}' {NOT_SERVED[cap]}", "declare only capabilities the harness serves")
    if "reference" in meta["capabilities"] and not meta.get("reference_models"):
        raise MembenchError(f"{where}: capability 'reference' needs reference_models (a target id)", EXAMPLE_HINT)
    for i, ref in enumerate(meta.get("reference_models") or ()):  # registry ids only, never a path
        guards.model_spec(ref, f"{where}: reference_models/{i}")
    why = reserved_name(meta["name"])
    if why:
        raise ReservedName(f"{where}: name {why}", "choose another name in submission.yaml")
    return meta


def load(path) -> Submission:
    """Read and check ``submission.yaml`` in folder ``path`` (a ``MembenchError`` if bad)."""
    path = Path(path)
    if not path.is_dir():
        raise MembenchError(f"submission folder {safe_text.name(str(path), 160)} does not exist",
                            "pass a folder holding scorer.py and submission.yaml")
    meta_file = path / "submission.yaml"
    if not meta_file.is_file() and not meta_file.is_symlink():
        raise MembenchError(f"{path} has no submission.yaml", EXAMPLE_HINT)
    if not (path / "scorer.py").is_file():
        raise MembenchError(f"{path} has no scorer.py", EXAMPLE_HINT)
    where = f"{path.name}/submission.yaml"
    meta = check(parse(read_text(meta_file), where), where)
    return Submission(path=path, meta=meta)


def check_class_name(sub: "Submission", loaded: dict) -> None:
    """The scorer class's ``name`` (as the sandboxed child reported it on loading) must be the
    submission's ``name`` in submission.yaml: records, keys and the site go by the submission's
    name, so a class that calls itself something else is refused (issue 27)."""
    got = str(loaded.get("name") or "")
    if got != sub.name:
        cls = safe_text.name(loaded.get("class") or "the scorer class", 100)
        shown = safe_text.name(got, 100) if got else "nothing (no name attribute)"
        raise MembenchError(f"submission.yaml names the submission {sub.name!r} but {cls}.name is {shown}",
                            f"set name = {sub.name!r} in the scorer class, or rename the submission in submission.yaml")


def check_job(folder: Path, target: str, budget: "guards.ModelBudget | None") -> None:
    """Before a job runs: the submission's metadata read (never executed), then its target and
    reference models checked. A text-only submission needs no built target."""
    sub = load(folder)
    if sub.capabilities:
        guards.check_models(target, sub.meta.get("reference_models") or (), budget)
