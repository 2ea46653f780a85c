"""Reproduction presets: the grid a reported table was made with, declared in presets.yaml and
validated here (pydantic), and its plan: jobs and estimated cost (``estimate``).

``presets()`` reads the file once; ``get_preset(name)`` one preset (an unknown name is one
error line listing the known ones); ``check(preset)`` resolves its targets, splits, scorers,
reference and context rule against the registries and its ``reproduces`` tables against the
reported registry; ``plan(preset)`` gives the jobs and their cost without loading any data
that is not on this machine.
"""

from __future__ import annotations

import fnmatch
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import MembenchError, unknown
from ..home import PUBLISHED_RESULTS
from ..results import reported
from ..targets import CONTEXT_RULE, CONTEXT_RULES, get_target
from . import estimate as cost
from .plan import _result_names, valid_pairs

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Size(_Model):
    texts: int = Field(gt=0)
    words: float = Field(gt=0)
    basis: str


class TableRef(_Model):
    paper: str
    table: str


class Preset(_Model):
    name: str
    description: str
    reproduces: tuple[TableRef, ...] = Field(min_length=1)
    targets: tuple[str, ...] = Field(min_length=1)
    splits: tuple[str, ...] = Field(min_length=1)
    scorers: tuple[str, ...] = Field(min_length=1)
    reference: str | None = None
    context_rule: str = CONTEXT_RULE
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_tokens: int = Field(default=16384, gt=0)
    differences: tuple[str, ...] = ()
    sizes: dict[str, Size] = Field(default_factory=dict)

    @field_validator("context_rule")
    @classmethod
    def _rule(cls, v):
        if v not in CONTEXT_RULES:
            raise ValueError(f"unknown context rule {v!r} (valid: {', '.join(CONTEXT_RULES)})")
        return v

    def size(self, split_id: str) -> dict | None:
        """The declared size of a split (the first matching key, globs allowed), or None."""
        for pattern, size in self.sizes.items():
            if fnmatch.fnmatchcase(split_id, pattern):
                return size.model_dump()
        return None


class Figure(_Model):
    """A `membench bench` throughput figure recorded in BENCHMARKS.md."""

    device: str
    kind: Literal["cpu", "gpu"]
    target: str
    dtype: str
    tokens_per_s: float = Field(gt=0)
    measured: str
    conditions: str
    section: str

    def describe(self) -> str:
        return (f"{self.target} {self.dtype} at {self.tokens_per_s:g} tokens/s on {self.device}, {self.conditions}, "
                f"{self.measured} (BENCHMARKS.md: {self.section})")


class Assumptions(_Model):
    tokens_per_word: float = Field(gt=0)
    basis: str


class PresetsFile(_Model):
    assumptions: Assumptions
    throughput: tuple[Figure, ...] = ()
    presets: dict[str, dict]


@lru_cache(maxsize=1)
def document() -> tuple[Assumptions, tuple[Figure, ...], dict[str, Preset]]:
    """presets.yaml, validated: (assumptions, throughput figures, presets by name)."""
    try:
        doc = PresetsFile.model_validate(yaml.safe_load(PRESETS_FILE.read_text()))
        presets = {name: Preset(name=name, **body) for name, body in doc.presets.items()}
    except ValidationError as exc:
        e = exc.errors()[0]
        raise MembenchError(f"{PRESETS_FILE}: {'.'.join(map(str, e['loc']))}: {e['msg']}",
                            "fix the preset file (its fields are described at its top)") from None
    return doc.assumptions, doc.throughput, presets


def presets() -> dict[str, Preset]:
    return document()[2]


def get_preset(name: str) -> Preset:
    table = presets()
    if name not in table:
        raise unknown("preset", name, table)
    return table[name]


def check(preset: Preset, results_dir: Path = PUBLISHED_RESULTS) -> list[str]:
    """Problems of a preset (one line each): ids that do not resolve, scorer specs that do not
    build, reported tables that are not in the reported registry."""
    problems = []
    for what, call in (("targets", lambda: valid_pairs(preset.targets, preset.splits)),
                       ("scorers", lambda: _result_names(list(preset.scorers))),
                       ("reference", lambda: preset.reference and get_target(preset.reference))):
        try:
            call()
        except MembenchError as exc:
            problems.append(f"preset {preset.name}: {what}: {exc}")
    rows, _ = reported.load_dir(results_dir)
    tables = {(r.paper.key, r.table) for r in rows}
    for ref in preset.reproduces:
        if (ref.paper, ref.table) not in tables:
            problems.append(f"preset {preset.name}: reproduces {ref.paper} table {ref.table!r}, which is not in "
                            f"{reported.reported_dir(results_dir)}")
    return problems


def plan(preset: Preset, *, tokens_per_word: float | None = None, sustained_tflops: float | None = None,
         allow_invalid: bool = False) -> cost.Estimate:
    """The preset's jobs (valid (target, split) pairs) and their estimated cost."""
    assumptions, figures, _ = document()
    pairs, skipped = valid_pairs(preset.targets, preset.splits, allow_invalid=allow_invalid)
    _result_names(list(preset.scorers))  # a scorer spec that does not build is an error now, not on the cluster
    return cost.estimate(pairs, skipped, preset.scorers, reference=preset.reference,
                         context_rule=preset.context_rule, sizes=preset.size,
                         tokens_per_word=tokens_per_word or assumptions.tokens_per_word, figures=figures,
                         sustained_flops=sustained_tflops * 1e12 if sustained_tflops else None)
