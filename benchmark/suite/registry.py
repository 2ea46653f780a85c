"""The declarative split registry (splits.yaml) and look-ups into it.

Every entry, shipped or registered under MEMBENCH_HOME, is checked by ``SplitEntry`` (pydantic):
an unknown field is refused, and so is a ``source:`` block that its kind (``sources.Source``)
does not accept; a problem is one line naming the entry, the field and where it is declared.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .. import registered
from ..errors import MembenchError, unknown
from .sources import KINDS, MODELS, Source, SourceKind

REGISTRY_FILE = Path(__file__).with_name("splits.yaml")


class Fields(BaseModel):
    """How the source's rows map to a split: its text and label, and (user-level) its group."""

    model_config = ConfigDict(extra="forbid")

    text: str
    label: str
    member_value: int = 1
    group: str | None = None


class SplitEntry(BaseModel):
    """One entry of the split registry (see the header of splits.yaml)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    family: str
    track: str
    domain: str
    source: Source
    fields: Fields
    valid_targets: list[str] = []
    label_meaning: str
    description: str = ""
    opt_caveat: str | None = None  # MIMIR: why OPT is not a valid target for this Pile component
    private: bool = False  # a secret assignment kept under MEMBENCH_HOME
    calibration: dict[str, dict | None] | None = None  # this split's own calibration subsets
    licence: str | None = None


def checked(entry, where: str) -> SplitEntry:
    """``entry`` validated, or one line naming the entry, the field and the file it is in."""
    name = entry.get("id") if isinstance(entry, dict) else None
    try:
        return SplitEntry.model_validate(entry)
    except ValidationError as exc:
        errors = exc.errors()  # a misspelt field first: it also explains a "missing" one
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        at = ".".join(str(p) for p in error["loc"] if not (isinstance(p, str) and p in KINDS))
        if error["type"] == "extra_forbidden":
            problem, hint = f"unknown field '{at}'", _valid_fields(error["loc"])
        elif error["type"] == "missing":
            problem, hint = f"no field '{at}'", "add it (see the header of benchmark/suite/splits.yaml)"
        elif error["type"] == "union_tag_invalid":
            problem, hint = f"source.kind {error['input'].get('kind')!r} is not a kind of source", \
                f"valid kinds: {', '.join(KINDS)}"
        else:
            problem, hint = f"{at}: {error['msg'].removeprefix('Value error, ')}", "fix the entry"
        raise MembenchError(f"split {name or '(no id)'} in {where}: {problem}", hint) from None


def _valid_fields(loc) -> str:
    """The fields the model that refused field ``loc`` accepts."""
    model = SplitEntry
    for part in loc[:-1]:
        if part in MODELS:  # the source block's kind
            model = MODELS[part]
            continue
        found = [a for a in _members(model.model_fields[part].annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(found) == 1:
            model = found[0]
    return f"valid fields: {', '.join(model.model_fields)}"


def _members(annotation) -> list:
    args = get_args(annotation)
    return [m for a in args for m in _members(a)] if args else [annotation]


@dataclass(frozen=True)
class SplitSpec:
    id: str
    family: str
    track: str
    domain: str
    source: dict
    fields: dict
    valid_targets: tuple[str, ...]
    label_meaning: str
    description: str
    # the ``source`` block as the model of its kind (what the kind does: ``sources.SourceKind``)
    source_model: SourceKind = field(compare=False, repr=False)
    extra: dict = field(default_factory=dict)

    def labels_valid_for(self, target_id: str) -> bool:
        """Whether this split's labels are valid for ``target_id``.

        For a membership split: its labels are membership ground truth for the target. For a
        control (``track == "control"``) the labels are never membership; validity then means
        the control's premise holds for the target (both classes share membership status), so
        an AUC away from 0.5 there measures distribution shift. Checkpoint ids such as
        ``pythia-160m@step99000`` match the patterns of their model.
        """
        return any(fnmatch.fnmatchcase(target_id, pat) for pat in self.valid_targets)

    @property
    def is_control(self) -> bool:
        return self.track == "control"

    @property
    def labels_are_membership(self) -> bool:
        """False for controls: their label is time or source, not membership."""
        return not self.is_control

    @property
    def kind(self) -> str:
        return self.source.get("kind", "")

    def validity(self, target_id: str) -> dict:
        """Label validity of (target, this split), with the reason, for results and `show`."""
        valid = self.labels_valid_for(target_id)
        if self.is_control:
            why = (
                "control: labels are not membership; "
                + ("both classes share membership status for this target, so the AUC measures shift"
                   if valid else "the control's premise is not established for this target")
            )
        elif valid:
            why = "labels are membership ground truth for this target"
        else:
            why = f"labels are not membership ground truth for this target (valid for: {', '.join(self.valid_targets) or 'none'})"
            if target_id.startswith("opt-") and self.extra.get("opt_caveat"):
                why += f"; {self.extra['opt_caveat']}"
        return {
            "valid": valid,
            "labels_are_membership": self.labels_are_membership,
            "label_meaning": self.label_meaning,
            "reason": why,
        }


def _spec(entry: dict, where: str) -> SplitSpec:
    """The spec of a checked entry; its fields as declared (defaults are not written in)."""
    model = checked(entry, where)
    known = {f for f in SplitSpec.__dataclass_fields__}
    extra = {k: v for k, v in entry.items() if k not in known}
    args = {k: v for k, v in entry.items() if k in known}
    args["valid_targets"] = tuple(args.get("valid_targets", ()))
    args.setdefault("description", "")
    return SplitSpec(**args, extra=extra, source_model=model.source)


@lru_cache(maxsize=1)
def document() -> dict:
    """The package's splits.yaml, parsed once per process (its splits and its ``calibration``
    block), with libyaml's C loader when PyYAML has it: the pure-Python one took ~0.2 s."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(REGISTRY_FILE.read_text(), Loader=loader)


@lru_cache(maxsize=1)
def shipped() -> dict[str, SplitSpec]:
    """The splits declared in the package's splits.yaml."""
    out: dict[str, SplitSpec] = {}
    for entry in document()["splits"]:
        if entry["id"] in out:
            raise ValueError(f"duplicate split id {entry['id']!r} in {REGISTRY_FILE}")
        out[entry["id"]] = _spec(entry, str(REGISTRY_FILE))
    return out


def splits() -> dict[str, SplitSpec]:
    """Every split: the shipped registry, then the splits registered under MEMBENCH_HOME
    (``benchmark.registered``), which may not reuse a shipped id."""
    out = dict(shipped())
    for entry in registered.entries("splits"):
        if entry["id"] in out:
            raise MembenchError(
                f"registered split {entry['id']} reuses an id of the shipped registry",
                f"delete {registered.entry_file('splits', entry['id'])} and register it under another id",
            )
        out[entry["id"]] = _spec(entry, str(registered.entry_file("splits", entry["id"])))
    return out


def register_split(entry: dict, *, replace: bool = False) -> SplitSpec:
    """Register a split under MEMBENCH_HOME (checked like a shipped entry first)."""
    if entry.get("id") in shipped():
        raise MembenchError(f"split id {entry.get('id')} belongs to the shipped registry", "choose another id")
    spec = _spec(entry, "the entry to register")
    registered.add("splits", entry, replace=replace)
    return spec


def get_split(split_id: str) -> SplitSpec:
    table = splits()
    if split_id not in table:
        raise unknown("split", split_id, table)
    return table[split_id]


def match_splits(patterns) -> list[SplitSpec]:
    """Splits whose ids match any of the glob patterns, in registry order."""
    table = splits()
    chosen = []
    for pat in patterns:
        hits = [s for s in table.values() if fnmatch.fnmatchcase(s.id, pat)]
        if not hits:
            raise unknown("split", pat, table)
        chosen.extend(h for h in hits if h not in chosen)
    return chosen
