"""Reported results: the numbers papers published, kept beside the numbers membench reproduces
(RobustBench's idea).

One YAML file per paper, ``<results>/_reported/<citation key>.yaml`` (a folder starting with
``_``, so the results store skips it). A file names the paper and holds its tables; a table
names where its values were read (``source``: a URL, or a repository path at a commit, plus
where in it), the metric, the protocol the paper states (context length, truncation, subset
sizes), its columns (one attack setting each, optionally its own metric) and its rows (a target
and a split each, and the printed value of each column)::

    paper: {key: duan2024mimir, reference: "...", arxiv: "2402.07841"}
    tables:
      - id: "local/mia_unified_mia_v5_results.json"
        source: {repo: iamgroot42/mimir, path: ..., commit: <40 hex>, where: "..."}
        metric: {kind: auc}
        scale: fraction
        columns:
          loss: {header: likelihood_threshold_results.json, attack: {name: LOSS, membench: loss}}
        rows:
          - target: {name: EleutherAI_pythia-1.4b, membench: pythia-1.4b, membench_revision: step143000}
            split: {name: arxiv_ngram_13_<0.8_truncated, membench: mimir/arxiv/ngram_13_0.8}
            values: {loss: "0.5150043738693232"}

Every cell becomes one ``ReportedRow`` (``load_file``, ``load_dir``), validated by pydantic:
a row without a source, a printed value that is not a number, a value outside its metric's
range ([0, 1] for AUC and TPR), a TPR without its FPR, a split or attack that is neither a
membench id nor a declared external id with a note, are refused with the file and the row.
``check_ids`` then resolves every id that claims to be membench's against the registries
(splits, targets and their revisions, scorers and their canonical parameters, blind
baselines); ``validate_dir`` does both and returns one line per problem.

``pair(rows, records)`` is a pure function of reported rows and result records: per row, the
reproduced value with its 95% interval, the difference and whether the reported value lies
inside the interval, or ``reported only`` with the reason. ``pair_with_results`` reads the
records of a results folder first.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import MembenchError
from .naming import evaluation_subset, scorer_label, unit
from .store import iter_records

REPORTED_DIR = "_reported"
NO_MODEL = "none"  # the target id of blind-baseline records (no model access)
SUFFIX = ".yaml"

_KEY = re.compile(r"^[a-z][a-z0-9]*[0-9]{4}[a-z0-9_-]*$")
_ARXIV = re.compile(r"^[0-9]{4}\.[0-9]{4,5}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_SCALE = {"fraction": 1.0, "percent": 100.0}

Scalar = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text(value: str | None, what: str) -> str | None:
    if value is not None and not value.strip():
        raise ValueError(f"{what} is empty: write it out or leave the field out")
    return value


class Paper(_Model):
    """The paper: citation key (``author`` + year + word, lower case, also the file name), full
    reference, and its arXiv id and/or URL."""

    key: str
    reference: str
    arxiv: str | None = None
    url: str | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, v):
        if not _KEY.match(v):
            raise ValueError(f"citation key {v!r} is not of the form author+year+word in lower case "
                             "(e.g. duan2024mimir)")
        return v

    @field_validator("reference")
    @classmethod
    def _reference(cls, v):
        return _text(v, "the reference")

    @field_validator("arxiv")
    @classmethod
    def _arxiv(cls, v):
        if v is not None and not _ARXIV.match(v):
            raise ValueError(f"arXiv id {v!r} is not of the form 2402.07841")
        return v

    @model_validator(mode="after")
    def _findable(self):
        if not self.arxiv and not self.url:
            raise ValueError(f"paper {self.key}: give its arXiv id or a URL where it can be read")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"paper {self.key}: url {self.url!r} is not an http(s) address")
        return self


class Source(_Model):
    """Exactly where a value was read: a page (``url``) or a file of a repository at a commit
    (``repo``, ``path``, ``commit``; a ``url`` may be given too), and ``where`` in it (table and
    row/column, or a key path in a JSON file). A table's ``where`` is completed per cell."""

    url: str | None = None
    repo: str | None = None
    path: str | None = None
    commit: str | None = None
    where: str

    @field_validator("where")
    @classmethod
    def _where(cls, v):
        return _text(v, "source.where (where in the source the value is)")

    @model_validator(mode="after")
    def _openable(self):
        in_repo = [self.repo, self.path, self.commit]
        if any(in_repo) and not all(in_repo):
            raise ValueError("a repository source needs repo, path and commit together")
        if not self.url and not all(in_repo):
            raise ValueError("a source needs a url, or repo + path + commit")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"source url {self.url!r} is not an http(s) address")
        if self.repo and not _REPO.match(self.repo):
            raise ValueError(f"source repo {self.repo!r} is not owner/name")
        if self.commit and not _COMMIT.match(self.commit):
            raise ValueError(f"source commit {self.commit!r} is not a 40-digit hex commit id")
        return self

    @property
    def address(self) -> str:
        """One line: where to open the source."""
        if self.repo:
            return f"https://github.com/{self.repo}/blob/{self.commit}/{self.path}"
        return str(self.url)


class TargetRef(_Model):
    """The model as the source names it (``name``, ``revision``: None when the source states
    none), and the membench target it maps to (registry model id and the revision the pairing
    matches), or ``membench: none`` for a blind baseline (no model)."""

    name: str
    revision: str | None = None
    membench: str | None = None
    membench_revision: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _mapped(self):
        if self.membench_revision and not self.membench:
            raise ValueError(f"target {self.name}: membench_revision without a membench target id")
        if self.membench and "@" in self.membench:
            raise ValueError(f"target {self.name}: give the registry model id ({self.membench.split('@')[0]}) "
                             "and the checkpoint as membench_revision")
        return self


class SplitRef(_Model):
    """The data as the source names it, mapped to a suite split id (``membench``), or declared
    ``external`` (an id of our making) with a ``note`` saying what it is."""

    name: str
    membench: str | None = None
    external: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if bool(self.membench) == bool(self.external):
            raise ValueError(f"split {self.name}: give exactly one of membench (a suite split id) or external")
        if self.external and not (self.note or "").strip():
            raise ValueError(f"split {self.name}: an external split needs a note saying what it is")
        return self


class AttackRef(_Model):
    """The attack as the source names it, mapped to a membench scorer id with its setting (the
    scorer's canonical non-default parameters), or declared ``external`` with a note; an external
    attack may name an ``analogue``: a membench scorer that measures the same signal with a
    different definition (compared, and marked as such, never called a reproduction).
    ``reference``: the reference model as the source names it; ``reference_membench``: the
    membench target it maps to (the pairing requires a record made with it)."""

    name: str
    membench: str | None = None
    external: str | None = None
    analogue: str | None = None
    setting: dict[str, Scalar] = Field(default_factory=dict)
    reference: str | None = None
    reference_membench: str | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if bool(self.membench) == bool(self.external):
            raise ValueError(f"attack {self.name}: give exactly one of membench (a scorer id) or external")
        if self.external and not (self.note or "").strip():
            raise ValueError(f"attack {self.name}: an external attack needs a note saying what it is")
        if self.analogue and not self.external:
            raise ValueError(f"attack {self.name}: analogue is for an external attack; a membench one is itself")
        if self.setting and not (self.membench or self.analogue):
            raise ValueError(f"attack {self.name}: a setting is a membench scorer's parameters; "
                             "describe an external attack's setting in its note")
        return self

    @property
    def scorer(self) -> str | None:
        """The membench scorer compared with it (itself, or its analogue)."""
        return self.membench or self.analogue

    @property
    def label(self) -> str | None:
        """The scorer's name in result records (``min_k(k=0.1)``)."""
        return scorer_label(self.scorer, dict(self.setting)) if self.scorer else None

    @property
    def display(self) -> str:
        """How a listing names it: the membench scorer, or the external id and its analogue."""
        if self.membench:
            return self.label
        return f"{self.external} (analogue: {self.label})" if self.analogue else f"{self.external} (external)"


class Metric(_Model):
    """``auc``, or ``tpr_at_fpr`` with the false-positive rate (a fraction: 0.01 for 1%)."""

    kind: Literal["auc", "tpr_at_fpr"]
    fpr: float | None = None

    @model_validator(mode="after")
    def _fpr(self):
        if self.kind == "tpr_at_fpr" and (self.fpr is None or not 0 < self.fpr < 1):
            raise ValueError("tpr_at_fpr needs fpr, a fraction in (0, 1) (0.01 for 1%)")
        if self.kind == "auc" and self.fpr is not None:
            raise ValueError("auc takes no fpr")
        return self

    @property
    def label(self) -> str:
        return "AUC" if self.kind == "auc" else f"TPR@{self.fpr * 100:g}%FPR"


class Protocol(_Model):
    """What the source states about how it measured, where membench may differ."""

    context_length: int | None = None
    truncation: str | None = None
    subset_size: str | None = None
    evaluation: str | None = None
    dtype: str | None = None
    notes: tuple[str, ...] = ()

    def merged(self, other: "Protocol | None") -> "Protocol":
        if other is None:
            return self
        mine = self.model_dump()
        mine.update({k: v for k, v in other.model_dump().items() if v not in (None, ())})
        mine["notes"] = tuple(self.notes) + tuple(other.notes)
        return Protocol(**mine)


class Column(_Model):
    header: str  # as printed
    attack: AttackRef
    metric: Metric | None = None
    where: str | None = None  # the column's place in the source (default: "column <header>")


class TableRow(_Model):
    target: TargetRef | None = None
    split: SplitRef | None = None
    where: str | None = None  # the row's place in the source, added to the table's where
    source: Source | None = None  # a row read elsewhere than the table
    protocol: Protocol | None = None
    values: dict[str, Scalar]

    @field_validator("values")
    @classmethod
    def _values(cls, v):
        if not v:
            raise ValueError("a row needs at least one value")
        return v


class Table(_Model):
    id: str
    title: str
    source: Source | None = None
    metric: Metric | None = None
    scale: Literal["fraction", "percent"]
    target: TargetRef | None = None
    split: SplitRef | None = None
    subset: str | None = None  # membench calibration subset whose evaluated rest the paper's numbers match
    protocol: Protocol = Protocol()
    columns: dict[str, Column]
    rows: list[TableRow]


class ReportedFile(_Model):
    paper: Paper
    tables: list[Table]


class ReportedRow(_Model):
    """One published number, with everything needed to compare it (a table cell, flattened)."""

    paper: Paper
    table: str
    table_title: str
    column: str
    target: TargetRef
    split: SplitRef
    attack: AttackRef
    metric: Metric
    printed: str
    scale: Literal["fraction", "percent"]
    subset: str | None = None
    protocol: Protocol = Protocol()
    source: Source

    @field_validator("printed", mode="before")
    @classmethod
    def _printed(cls, v):
        if isinstance(v, bool):
            raise ValueError(f"value {v!r} is not a number")
        return repr(v) if isinstance(v, float) else str(v)

    @model_validator(mode="after")
    def _range(self):
        number = _number(self.printed, self.scale)
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"value {self.printed} ({self.scale}) is {number:g} as a fraction, outside "
                             f"[0, 1], the range of {self.metric.label}")
        return self

    @property
    def value(self) -> float:
        """The printed value as a fraction."""
        return _number(self.printed, self.scale)

    @property
    def id(self) -> str:
        return " | ".join((self.paper.key, self.table, self.target.name, self.split.name, self.column))

    @property
    def reproducible(self) -> bool:
        """Whether membench can make this number: a suite split, a membench (or no-model) target,
        a membench scorer (or an analogue)."""
        return bool(self.split.membench and self.target.membench and self.attack.scorer
                    and (self.attack.reference is None or self.attack.reference_membench))

    def as_dict(self) -> dict:
        return {"id": self.id, "paper": self.paper.key, "table": self.table, "column": self.column,
                "target": self.target.model_dump(exclude_none=True),
                "split": self.split.model_dump(exclude_none=True),
                "attack": self.attack.model_dump(exclude_none=True, exclude_defaults=True),
                "metric": self.metric.model_dump(exclude_none=True), "printed": self.printed,
                "scale": self.scale, "value": self.value, "subset": self.subset,
                "protocol": self.protocol.model_dump(exclude_none=True, exclude_defaults=True),
                "source": {**self.source.model_dump(exclude_none=True), "address": self.source.address},
                "reproducible": self.reproducible}


def _number(printed: str, scale: str) -> float:
    text = printed.strip()
    if text.endswith("%"):
        if scale != "percent":
            raise ValueError(f"value {printed!r} has a % sign but the table's scale is {scale}")
        text = text[:-1]
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"value {printed!r} is not a number (leave out a cell the source does not fill)") from None
    if not math.isfinite(number):
        raise ValueError(f"value {printed!r} is not a finite number")
    return number / _SCALE[scale]


def _where(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


def _cell(paper: Paper, table: Table, row: TableRow, column_id: str, printed) -> dict:
    column = table.columns.get(column_id)
    if column is None:
        raise ValueError(f"value for column {column_id!r}, which the table does not declare "
                         f"(its columns: {', '.join(table.columns)})")
    source = row.source or table.source
    if source is not None:
        source = source.model_copy(update={"where": _where(source.where, row.where, column.where or f"column {column.header}")})
    cell = {"paper": paper, "table": table.id, "table_title": table.title, "column": column_id,
            "target": row.target or table.target, "split": row.split or table.split, "attack": column.attack,
            "metric": column.metric or table.metric, "printed": printed, "scale": table.scale,
            "subset": table.subset, "protocol": table.protocol.merged(row.protocol), "source": source}
    return {k: v for k, v in cell.items() if v is not None}  # a missing field is reported as missing


def _flatten(doc: ReportedFile) -> tuple[list[ReportedRow], list[str]]:
    rows, problems = [], []
    for t in doc.tables:
        for i, row in enumerate(t.rows, 1):
            for column_id, printed in row.values.items():
                where = f"table {t.id!r}, row {i}, column {column_id!r}"
                try:
                    rows.append(ReportedRow(**_cell(doc.paper, t, row, column_id, printed)))
                except ValidationError as exc:
                    problems += [f"{where}: {_message(e)}" for e in exc.errors()]
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
    return rows, problems


def _message(error: dict) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int))
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        msg = "missing (every row needs it: give it on the table or on the row)"
    return f"{loc}: {msg}" if loc else msg


def parse(text: str, name: str = "<text>") -> tuple[list[ReportedRow], list[str]]:
    """The rows of one reported file's text, and its problems (one line each, naming the row)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [], [f"{name}: not valid YAML ({str(exc).splitlines()[0]})"]
    try:
        doc = ReportedFile.model_validate(data)
    except ValidationError as exc:
        return [], [f"{name}: {_message(e)}" for e in exc.errors()]
    rows, problems = _flatten(doc)
    stem = Path(name).name.removesuffix(SUFFIX)
    if name != "<text>" and stem != doc.paper.key:
        problems.append(f"{name}: the file is named {stem}{SUFFIX} but holds paper {doc.paper.key}: "
                        f"name it {doc.paper.key}{SUFFIX}")
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.id] = seen.get(r.id, 0) + 1
    problems += [f"{name}: row {rid!r} is given {n} times" for rid, n in seen.items() if n > 1]
    return rows, [p if p.startswith(name) else f"{name}: {p}" for p in problems]


def load_file(path: Path) -> tuple[list[ReportedRow], list[str]]:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), str(path))


def reported_dir(results_dir: Path) -> Path:
    return Path(results_dir) / REPORTED_DIR


def load_dir(results_dir: Path, paper: str | None = None) -> tuple[list[ReportedRow], list[str]]:
    """Every reported row under ``<results_dir>/_reported`` (or only paper ``paper``'s), and the
    problems found in the files."""
    folder = reported_dir(results_dir)
    files = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    if paper is not None:
        files = [f for f in files if f.name == f"{paper}{SUFFIX}"]
        if not files:
            known = sorted(f.name.removesuffix(SUFFIX) for f in sorted(folder.glob(f"*{SUFFIX}")))
            raise MembenchError(f"no reported results for paper {paper} in {folder}",
                                f"papers there: {', '.join(known) or 'none'}")
    rows, problems = [], []
    for f in files:
        r, p = load_file(f)
        rows += r
        problems += p
    return rows, problems


def check_ids(rows: Iterable[ReportedRow]) -> list[str]:
    """Every id that claims to be membench's, resolved against the registries: the split (suite),
    the target and its revision (target registry; ``none`` for a blind baseline), the scorer or
    blind baseline and its setting (canonical non-default parameters), the reference model."""
    # Deferred: the registries pull in pandas, scikit-learn and the attack modules, and the
    # site reads this module (load and pair) without them.
    from .. import attacks, suite, targets
    from ..diagnostics.baselines import BASELINES

    split_ids = set(suite.splits())
    scorers = attacks.scorers()
    checked: dict[tuple, str | None] = {}
    failing: dict[tuple, list[ReportedRow]] = {}  # each problem once, with the rows it concerns

    def once(key: tuple, check) -> None:
        if key not in checked:
            try:
                checked[key] = check()
            except MembenchError as exc:
                checked[key] = f"{exc}"
        if checked[key]:
            failing.setdefault(key, []).append(row)

    def target(tid: str, revision: str | None, what: str) -> str | None:
        if tid == NO_MODEL:
            return None if revision is None else f"{what} {NO_MODEL} (no model) takes no revision"
        spec = targets.get_target(tid)
        if revision is not None and revision != spec.revision:
            spec.at_revision(revision)  # raises for a revision the model does not publish
        return None

    def scorer(name: str, setting: dict) -> str | None:
        if name in BASELINES:
            return None if not setting else f"blind baseline {name} takes no setting"
        if name not in scorers:
            return (f"attack {name} is not a membench scorer or blind baseline "
                    f"(known: {', '.join(sorted(scorers) + sorted(BASELINES))})")
        canonical = attacks.canonical_params(scorers[name], setting)
        if canonical != setting:
            return (f"setting {setting} of {name} is not canonical: write {canonical} (values equal to "
                    "the default are left out)")
        return None

    for row in rows:
        if row.split.membench:
            once(("split", row.split.membench), lambda: None if row.split.membench in split_ids else
                 f"split {row.split.membench} is not in the suite registry (declare it external with a note, "
                 "or fix the id: `membench suite list`)")
        if row.target.membench:
            once(("target", row.target.membench, row.target.membench_revision),
                 lambda: target(row.target.membench, row.target.membench_revision, "target"))
        if row.attack.scorer:
            once(("scorer", row.attack.scorer, tuple(sorted(row.attack.setting.items()))),
                 lambda: scorer(row.attack.scorer, dict(row.attack.setting)))
        if row.attack.reference_membench:
            once(("target", row.attack.reference_membench, None),
                 lambda: target(row.attack.reference_membench, None, "reference"))
        if row.target.membench and not row.target.membench_revision and row.target.membench != NO_MODEL:
            once(("revision", row.target.membench),
                 lambda: f"target {row.target.membench} has no membench_revision: give the revision the "
                 f"pairing matches ({targets.get_target(row.target.membench).revision} is its default)")
    problems = []
    for key, concerned in failing.items():
        more = f" (and {len(concerned) - 1} more row(s))" if len(concerned) > 1 else ""
        problems.append(f"{concerned[0].paper.key}: {concerned[0].id}{more}: {checked[key]}")
    return problems


def validate_dir(results_dir: Path) -> tuple[list[ReportedRow], list[str]]:
    """Load and check every reported file under ``results_dir``: (rows, problems). For
    ``membench results validate``: a results folder is valid only if this has no problems."""
    rows, problems = load_dir(results_dir)
    return rows, problems + check_ids(rows)


# --------------------------------------------------------------------------------------------
# Reported beside reproduced


def _base(target_id: str) -> str:
    return str(target_id).split("@", 1)[0]


def _record_value(record: dict, metric: Metric) -> tuple[float | None, list | None, str | None]:
    """(value, 95% interval, why not) of ``metric`` in a record."""
    m = record.get("metrics") or {}
    if metric.kind == "auc":
        return m.get("auc"), m.get("auc_ci95"), None
    budgets = m.get("tpr_at_fpr") or {}
    for key, block in budgets.items():
        try:
            same = math.isclose(float(key), metric.fpr, rel_tol=1e-9)
        except ValueError:
            continue
        if same:
            if not block.get("resolvable", True) or block.get("value") is None:
                return None, None, f"the record's TPR at FPR {metric.fpr:g} is unresolvable (too few non-members)"
            return block["value"], block.get("ci95"), None
    return None, None, (f"the record has TPR at FPR {', '.join(sorted(budgets)) or 'no budget'} only, "
                        f"not at {metric.fpr:g}")


def pair(rows: Iterable[ReportedRow], records: Iterable[dict]) -> list[dict]:
    """Each reported row beside the reproduced record of the same split, target model and
    revision, scorer setting (and reference model, and calibration subset) and metric.

    Returns one dict per row: ``id``, ``paper``, ``table``, ``column``, ``target``, ``split`` and
    ``attack`` (as the source names them), ``scorer`` (the membench label compared), ``metric``,
    ``reported`` (fraction), ``printed``, ``source`` (address) and ``where`` (in it),
    ``status`` (``reproduced`` or ``reported only``), ``comparison`` (``exact`` for a membench
    scorer, ``analogue`` for an external attack's analogue), and, when reproduced,
    ``reproduced``, ``ci95``, ``difference`` (reproduced - reported), ``within_interval``
    (whether the reported value lies in the reproduced 95% interval; None without an interval)
    and ``record`` (its key); ``reason`` says why a row is reported only. Pure: no file is read.
    """
    index: dict[tuple, list[dict]] = {}
    for rec in records:
        if unit(rec) is not None:
            continue  # group-level records are compared with group-level rows only (none yet)
        tgt = rec.get("target") or {}
        key = (rec["split"]["id"], _base(tgt.get("id", "")), tgt.get("revision"), rec["scorer"]["name"],
               evaluation_subset(rec))
        index.setdefault(key, []).append(rec)
    out = []
    for row in rows:
        entry = {"id": row.id, "paper": row.paper.key, "table": row.table, "column": row.column,
                 "target": row.target.name, "split": row.split.name, "attack": row.attack.name,
                 "scorer": row.attack.label, "metric": row.metric.label, "reported": row.value, "printed": row.printed,
                 "source": row.source.address, "where": row.source.where,
                 "comparison": "exact" if row.attack.membench else "analogue",
                 "status": "reported only", "reproduced": None, "ci95": None, "difference": None,
                 "within_interval": None, "record": None, "reason": None}
        out.append(entry)
        if not row.reproducible:
            entry["reason"] = _not_reproducible(row)
            continue
        revision = None if row.target.membench == NO_MODEL else row.target.membench_revision
        key = (row.split.membench, row.target.membench, revision, row.attack.label, row.subset)
        found = index.get(key, [])
        if row.attack.reference_membench:
            found = [r for r in found if ((r.get("provenance") or {}).get("reference") or {}).get("id")
                     == row.attack.reference_membench]
        if not found:
            entry["reason"] = (f"no record of {row.attack.label} on {row.split.membench} x "
                               f"{row.target.membench}{'@' + revision if revision else ''}"
                               + (f" (reference {row.attack.reference_membench})" if row.attack.reference_membench else "")
                               + (f" on the rest of {row.subset}" if row.subset else "") + " in this results folder")
            continue
        record = max(found, key=lambda r: str((r.get("provenance") or {}).get("created_at", "")))
        value, ci, why = _record_value(record, row.metric)
        if value is None:
            entry["reason"] = why
            continue
        entry.update(status="reproduced", reproduced=value, difference=value - row.value,
                     record=list(key), ci95=list(ci) if ci else None,
                     within_interval=(ci[0] <= row.value <= ci[1]) if ci else None)
    return out


def _not_reproducible(row: ReportedRow) -> str:
    if not row.split.membench:
        return f"split {row.split.name} is not in the suite ({row.split.external})"
    if not row.target.membench:
        return f"target {row.target.name} is not a membench target"
    if not row.attack.scorer:
        return f"attack {row.attack.name} has no membench scorer ({row.attack.external})"
    return f"reference model {row.attack.reference} is not a membench target"


def pair_with_results(rows: Iterable[ReportedRow], results_dir: Path) -> list[dict]:
    """``pair`` against every record under ``results_dir``."""
    return pair(rows, (record for _, record in iter_records(results_dir)))
