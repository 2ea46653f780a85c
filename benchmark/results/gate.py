"""The publication gate: ``membench results validate DIR``.

The one step after evaluation that reads labels, and the one place that writes into each record
what pages need, so that the site and the API are readers of JSON alone. For every record of a
results folder it

1. re-keys the folder (``store.migrate``: each file under the name its whole key gives);
2. checks the record (record model, per-sample hash, unique key) and, where the split is
   materialized here with the record's content hash, recomputes every figure from the per-sample
   scores and the split's labels (``recompute``): a record whose figures differ is refused,
   naming the file and the field, and loses any earlier stamp (so no reader shows it);
3. writes the ``display`` block: the scorer's name as readers see it (its class's ``title`` plus
   the setting: the non-default parameters, a dtype other than float32, a context rule other
   than the default, e.g. "Min-K% Prob (k=0.1)", "LOSS (bfloat16)"), the method it belongs to
   (an ablation names its full method, whose definition and citation come along), the
   citation, the exact definition (the class docstring; a submission's description from
   submission.yaml; a blind baseline's description and module docstring) and the BibTeX;
4. on a **public** split only, the ``views`` block: per-class score histograms, AUC by
   text-length bucket and per-class length statistics (``views``); never on a private split,
   where each is a label oracle (``published``);
5. on a **private** split, the ``ladder`` block (``ladder``): the Ladder's decision (shown or
   withheld, per owner and board, in the order the records were made; once made it stays) and
   the figures of the split's public part, and of its secret part once the record's round is
   closed; an owner's best that a withheld record of the same key replaced is put back from the
   history. A private record it cannot decide (its split not materialized here, and no earlier
   decision) gets no block, so no reader publishes it;
6. the ``gate`` stamp: whether the figures were recomputed (or why not), the target's nominal
   size from the registry, the suite version, and the SHA-256 of the record as checked, which
   every reader compares (a record changed after the gate is refused).

A record the gate cannot recompute here (its split not materialized) keeps what an earlier gate
run found for the same content (its views and ``recomputed``), so running the gate on another
machine never takes anything away. The gate also copies a split's diagnostics from
``$MEMBENCH_HOME/diagnostics`` into ``<results>/_diagnostics`` where the folder has none of its
own (same content hash), so readers find them in the results folder alone. Running it twice
changes nothing.

Not imported by anything that reads results (it loads the suite, the scorer registry and the
blind baselines): the commands import it (``membench results validate``), and producers call
``publish`` on the records they wrote.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from .. import attacks, suite
from ..diagnostics.baselines import BASELINES
from ..diagnostics.saved import read_saved
from ..errors import MembenchError
from ..hashing import sha256_file
from ..home import REPO_ROOT, cache_dir, diagnostics_file
from ..targets.context import CONTEXT_RULE
from ..targets.registry import get_target
from .citations import scorer_entry
from .ladder import Ladder, restore
from .naming import base_name, format_value, name_setting
from .published import is_private
from .records import GATE_BLOCKS, problems
from .recompute import Recomputer
from .store import Rejected, ResultsStore, Scan, content_digest, migrate, read_per_sample
from .views import views as make_views

log = logging.getLogger(__name__)

RULE = "gate-v1"
DEFAULT_DTYPE = "float32"
_HEADING = re.compile(r"^(?P<name>[^(:\n]+?)\s*\((?P<cite>[^)]*\d{4}[^)]*)\)")
# the default sets before scorer classes carried ``default_set`` (read with getattr fallbacks)
_LEGACY_SETS = (("FEATURE_SCORERS", "features"), ("MODEL_SCORERS", "model"), ("FIT_SCORERS", "fit"),
                ("GROUP_SCORERS", "groups"), ("SPV_SCORERS", "finetune"))


def _heading(doc: str | None) -> tuple[str | None, str | None]:
    """('ReCaLL', 'Xie et al. 2024') from a docstring that opens 'ReCaLL (Xie et al. 2024): ...'."""
    m = _HEADING.match((doc or "").strip())
    return (m.group("name").strip(), m.group("cite").strip()) if m else (None, None)


def _paragraphs_for(doc: str, name: str, others: list[str]) -> str | None:
    """The paragraphs of a module docstring that start with ``name:`` up to the next paragraph
    that starts with another scorer's name; None when no paragraph starts with ``name:``."""
    out, taking = [], False
    for para in re.split(r"\n\s*\n", doc):
        head = para.lstrip()
        if head.startswith(name + ":"):
            taking = True
        elif any(head.startswith(o + ":") for o in others if o != name):
            taking = False
        elif not out:
            continue
        if taking:
            out.append(para.strip())
    return "\n\n".join(out) or None


def _source(obj) -> str | None:
    try:
        return Path(inspect.getsourcefile(obj)).resolve().relative_to(REPO_ROOT).as_posix()
    except (TypeError, ValueError, OSError):
        return None


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _text(value) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True)
class ScorerFacts:
    """What the gate says about one scorer class (or blind baseline)."""

    id: str
    title: str
    method: str
    citation: str | None
    definition: str | None
    source: str | None
    bibtex: str | None
    defaults: dict
    default_set: str | None


class Catalog:
    """Display facts of every scorer membench ships, read from the classes themselves (class
    attributes ``title``, ``method``, ``citation``, ``default_set``; the class docstring is the
    definition), with ``citations.yaml`` and the docstrings' headings as fallbacks."""

    def __init__(self):
        self.classes = dict(attacks.scorers())
        legacy = {sid: name for attr, name in _LEGACY_SETS for sid in getattr(attacks, attr, ())}
        facts = {sid: self._class_facts(sid, cls, legacy.get(sid)) for sid, cls in sorted(self.classes.items())}
        facts.update({sid: self._baseline_facts(b) for sid, b in BASELINES.items()})
        self.facts = self._unique_titles(facts)

    def _class_facts(self, sid: str, cls, legacy_set: str | None) -> ScorerFacts:
        entry = scorer_entry(sid)
        module = inspect.getmodule(cls)
        module_doc = inspect.cleandoc(module.__doc__) if module is not None and module.__doc__ else None
        own = cls.__dict__.get("__doc__")
        own = inspect.cleandoc(own) if isinstance(own, str) and own.strip() else None
        head_name, head_cite = _heading(own or module_doc)
        title = _text(getattr(cls, "title", None)) or _text(entry.get("name")) or head_name or sid
        definition = own
        if definition is None and module_doc:
            siblings = [s for s, c in self.classes.items() if inspect.getmodule(c) is module]
            names = [_text(scorer_entry(s).get("name")) or s for s in siblings]
            definition = (_paragraphs_for(module_doc, title, names) if len(siblings) > 1 else None) or module_doc
        method = getattr(cls, "method", None)
        method = method if isinstance(method, str) and method else _text(entry.get("method"))
        defaults = {}
        for key, (_, default) in attacks.specs.parameters(cls).items():
            if default is not inspect.Parameter.empty and _jsonable(default):
                defaults[key] = default
        return ScorerFacts(
            id=sid, title=title, method=method if isinstance(method, str) and method else sid,
            citation=_text(getattr(cls, "citation", None)) or _text(entry.get("cite")) or head_cite,
            definition=definition, source=_source(cls), bibtex=_text(entry.get("bibtex")), defaults=defaults,
            default_set=_text(getattr(cls, "default_set", None)) or legacy_set)

    @staticmethod
    def _baseline_facts(b) -> ScorerFacts:
        entry = scorer_entry(b.name)
        module = inspect.getmodule(b.make)
        doc = inspect.cleandoc(module.__doc__) if module is not None and module.__doc__ else None
        definition = "\n\n".join(p for p in (b.description, doc) if p) or None
        return ScorerFacts(id=b.name, title=_text(entry.get("name")) or b.name, method=b.name,
                           citation=_text(entry.get("cite")), definition=definition, source=_source(b.make),
                           bibtex=_text(entry.get("bibtex")), defaults={}, default_set=None)

    @staticmethod
    def _unique_titles(facts: dict[str, ScorerFacts]) -> dict[str, ScorerFacts]:
        """Two classes never share a title: where they would, every one but the full method
        (else the first by id) is told apart by its id."""
        by_title: dict[str, list[str]] = {}
        for sid, f in sorted(facts.items()):
            by_title.setdefault(f.title, []).append(sid)
        out = dict(facts)
        for title, ids in by_title.items():
            if len(ids) < 2:
                continue
            keep = next((s for s in ids if facts[s].method == s), ids[0])
            for sid in ids:
                if sid != keep:
                    f = facts[sid]
                    out[sid] = ScorerFacts(**{**f.__dict__, "title": f"{title}: {sid}"})
        return out

    # -- one record ----------------------------------------------------------------------------
    def describe(self, record: dict) -> dict:
        """The record's ``display`` block (see the module docstring)."""
        scorer = record["scorer"]
        name, kind = scorer["name"], scorer["kind"]
        sid = name if kind == "submission" else base_name(name)  # a submission's name carries no parameters
        facts = None if kind == "submission" else self.facts.get(sid)
        if kind == "submission":
            facts = self._submission_facts(record, sid)
            parts = []
        elif facts is None:  # a scorer id nothing here describes: its parameters as its name carries them
            facts = ScorerFacts(id=sid, title=_text(scorer_entry(sid).get("name")) or sid, method=sid,
                                citation=_text(scorer_entry(sid).get("cite")), definition=None, source=None,
                                bibtex=_text(scorer_entry(sid).get("bibtex")), defaults={}, default_set=None)
            parts = [name_setting(name)] if name_setting(name) else []
        else:
            parts = self._setting_params(sid, name, scorer.get("params"))
        parts += self._facets(record)
        setting = ", ".join(p for p in parts if p)
        method = self.facts.get(facts.method) if facts.method != facts.id else None
        return {
            "name": facts.title + (f" ({setting})" if setting else ""),
            "title": facts.title,
            "setting": setting,
            "scorer": sid,
            "method": facts.method,
            "method_title": method.title if method else facts.title,
            "citation": facts.citation,
            "definition": facts.definition,
            "definition_source": facts.source,
            "method_citation": method.citation if method else None,
            "method_definition": method.definition if method else None,
            "bibtex": (facts.bibtex or (method.bibtex if method and method.bibtex else None)
                       or self._generated_bibtex(record, facts.title)).strip(),
            "defaults": dict(facts.defaults),
            "default_set": facts.default_set,
        }

    def _setting_params(self, sid: str, name: str, params) -> list[str]:
        """The parameters that differ from the class's defaults, canonical, in sorted order."""
        params = params if isinstance(params, dict) else {}
        cls = self.classes.get(sid)
        try:
            canon = attacks.canonical_params(cls, params) if cls is not None else None
        except (MembenchError, ValueError, TypeError):  # the class no longer accepts a parameter of this record
            canon = None
        if canon is None:
            return [name_setting(name)] if name_setting(name) else []
        return [f"{k}={format_value(v)}" for k, v in sorted(canon.items())]

    @staticmethod
    def _facets(record: dict) -> list[str]:
        """Non-default evaluation settings that change numbers: the dtype and the context rule."""
        target = record.get("target") or {}
        out = []
        if target.get("dtype") not in (None, DEFAULT_DTYPE):
            out.append(str(target["dtype"]))
        if target.get("context_rule") not in (None, CONTEXT_RULE):
            out.append(str(target["context_rule"]))
        return out

    @staticmethod
    def _submission_facts(record: dict, sid: str) -> ScorerFacts:
        sub = record.get("submission") if isinstance(record.get("submission"), dict) else {}
        return ScorerFacts(id=sid, title=_text(sub.get("name")) or sid, method=sid, citation=None,
                           definition=_text(sub.get("description")), source="submission.yaml" if sub else None,
                           bibtex=_text(sub.get("bibtex")), defaults={}, default_set=None)

    @staticmethod
    def _generated_bibtex(record: dict, title: str) -> str:
        sub = record.get("submission") if isinstance(record.get("submission"), dict) else {}
        authors = sub.get("authors")
        if isinstance(authors, list):
            authors = " and ".join(str(a.get("name", a)) if isinstance(a, dict) else str(a) for a in authors)
        key = re.sub(r"[^A-Za-z0-9]+", "_", record["scorer"]["name"]).strip("_") or "scorer"
        lines = [f"@misc{{membench_scorer_{key},",
                 f"  title  = {{{title}: a membership-inference scorer evaluated on membench "
                 f"(version {record['scorer'].get('version')})}},"]
        if authors:
            lines.append(f"  author = {{{authors}}},")
        lines.append(f"  note   = {{code SHA-256 {record['scorer'].get('code_sha256')}}}")
        return "\n".join(lines) + "\n}"


def nominal_size(target_id: str) -> str | None:
    """The registry's nominal size ("1m", "160m") of a target, or None (a local folder, an
    unknown id, a model-free record)."""
    if target_id in (None, "", "none"):
        return None
    try:
        return get_target(target_id).params or None
    except MembenchError:
        return None


def suite_version() -> str | None:
    """The suite version from the split registry (its ``version`` key, else v1) and its hash."""
    registry = Path(suite.__file__).with_name("splits.yaml")
    if not registry.is_file():
        return None
    version = "v1"
    try:
        doc = yaml.safe_load(registry.read_text()) or {}
        version = str(doc.get("version") or doc.get("suite_version") or version)
    except yaml.YAMLError:
        pass
    return f"{version} (registry {sha256_file(registry)[:10]})"


class SplitTexts:
    """Labels and word counts of materialized splits, loaded once per split."""

    def __init__(self):
        self._cache: dict[str, tuple] = {}

    def get(self, split_id: str, content_hash: str) -> tuple[pd.Series | None, pd.Series | None]:
        if split_id not in self._cache:
            try:
                if not suite.is_materialized(split_id):
                    raise MembenchError(f"split {split_id} is not materialized here")
                split = suite.load(suite.get_split(split_id))
                words = split.samples.set_index("uid")["text"].map(lambda t: len(str(t).split()))
                self._cache[split_id] = (split.content_hash, split.labels(), words)
            except (MembenchError, OSError, KeyError, ValueError):
                self._cache[split_id] = (None, None, None)
        have, labels, words = self._cache[split_id]
        return (labels, words) if have == content_hash else (None, None)


@dataclass
class GateReport(Scan):
    """The gate's run: ``Scan``'s accepted and refused files and what was recomputed, plus the
    files it re-keyed (``moved``), rewrote (``stamped``) and the diagnostics it copied."""

    moved: list[tuple[Path, Path]] = field(default_factory=list)
    stamped: list[Path] = field(default_factory=list)
    diagnostics: list[Path] = field(default_factory=list)
    withheld: list[Path] = field(default_factory=list)  # private-split records the Ladder does not show
    undecided: list[Path] = field(default_factory=list)  # private-split records it cannot decide here


def _write_json(path: Path, record: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


class Gate:
    """One gate run over one results folder (see the module docstring)."""

    def __init__(self, results_dir: Path, *, recompute: bool = True):
        self.root = Path(results_dir)
        self.recomputer = Recomputer(cache_dir("recomputed")) if recompute else None
        self.texts = SplitTexts()
        self.suite_version = suite_version()

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog()

    def check(self, path: Path, record: dict) -> tuple[Rejected | None, str | None]:
        """(a refusal, or None; why the figures were not recomputed, None when they were)."""
        if self.recomputer is None:
            return None, "not recomputed (--no-recompute)"
        per_sample = path.parent / record["per_sample"]["file"]
        outcome = self.recomputer.check(path, record, per_sample, record["per_sample"]["sha256"])
        if outcome.status == "mismatch":
            return Rejected(path, outcome.field or "<record>", outcome.message), None
        return None, None if outcome.status == "ok" else outcome.message

    def stamped(self, path: Path, record: dict, recomputed: bool, reason: str | None,
                ladder: dict | None = None) -> dict:
        """``record`` with the gate's blocks written afresh (``ladder``: the Ladder's decision on a
        private-split record; None leaves it undecided, so never published)."""
        old = record.get("gate") if isinstance(record.get("gate"), dict) else {}
        same = old.get("content_sha256") == content_digest(record)
        out = {k: v for k, v in record.items() if k not in GATE_BLOCKS}
        out["display"] = self.catalog.describe(record)
        views = self._views(path, record)
        if views is None and same and isinstance(record.get("views"), dict):
            views = record["views"]  # found by an earlier gate run on this very content
        if views is not None and not is_private(record):
            out["views"] = views
        if ladder is not None and is_private(record):
            out["ladder"] = ladder
        if not recomputed and same and old.get("recomputed") is True:
            recomputed, reason = True, None  # an earlier gate run recomputed this very content
        out["gate"] = {"rule": RULE, "recomputed": recomputed, "reason": None if recomputed else reason,
                       "nominal_size": nominal_size(record["target"]["id"]), "suite_version": self.suite_version,
                       "content_sha256": content_digest(out)}
        errors = problems(out)
        if errors:  # the gate's own blocks break the model: a bug here, never the record's fault
            raise MembenchError(f"the publication gate wrote an invalid record for {path}: {errors[0]}")
        return out

    def _views(self, path: Path, record: dict) -> dict | None:
        if is_private(record) or record.get("kind") == "group":
            return None
        labels, words = self.texts.get(record["split"]["id"], record["split"]["content_hash"])
        if labels is None:
            return None
        return make_views(read_per_sample(path, record)["score"], labels, words)

    def copy_diagnostics(self, records: list[tuple[Path, dict]]) -> list[Path]:
        """Each split's diagnostics from MEMBENCH_HOME into the results folder, where it has none."""
        copied = []
        for split_id, content_hash in sorted({(r["split"]["id"], r["split"]["content_hash"]) for _, r in records}):
            target = diagnostics_file(split_id, self.root)
            if target.is_file():
                continue
            data = read_saved(split_id, None, content_hash)
            subject = (data or {}).get("subject") if isinstance((data or {}).get("subject"), dict) else {}
            if not data or "error" in data or subject.get("content_hash") != content_hash:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_json(target, data)
            copied.append(target)
        return copied

    def run(self, only=None, *, write: bool = True, _restored: bool = False) -> GateReport:
        """Check every record (``only``: just these files) and, with ``write``, re-key, stamp and copy."""
        report = GateReport()
        if write and only is None:
            report.moved = migrate(self.root)
        scan = ResultsStore(self.root).scan()
        report.rejected = list(scan.rejected)
        wanted = None if only is None else {Path(p).resolve() for p in only}
        checked = []
        for path, record in scan.records:
            if wanted is not None and path.resolve() not in wanted:
                continue
            problem, reason = self.check(path, record)
            if problem is not None:
                report.rejected.append(problem)
                if write and any(k in record for k in GATE_BLOCKS):  # no reader may show it any longer
                    _write_json(path, {k: v for k, v in record.items() if k not in GATE_BLOCKS})
                    report.stamped.append(path)
                continue
            checked.append((path, record, reason))
        refused = {r.path for r in report.rejected}
        decisions = Ladder(self.root, [(p, r) for p, r in scan.records if p not in refused]).decide()
        if write and decisions.restore and not _restored:  # an owner's best back in the folder: decide again
            restore(self.root, decisions.restore)
            again = self.run(only, write=write, _restored=True)
            again.moved = report.moved + again.moved
            return again
        for path, record, reason in checked:
            report.records.append((path, record))
            if reason is None:
                report.recomputed.append(path)
            else:
                report.not_recomputed.append((path, reason))
            self._note_ladder(report, path, record, decisions.blocks)
            if write:
                out = self.stamped(path, record, reason is None, reason, decisions.blocks.get(path))
                if out != record:
                    _write_json(path, out)
                    report.stamped.append(path)
                    record.clear()
                    record.update(out)
        if write:  # the Ladder's blocks of records not checked this run (an owner's former best, ...)
            done = {p for p, _, _ in checked}
            for path, record in scan.records:
                block = decisions.blocks.get(path)
                if path in done or path in refused or path not in decisions.blocks or record.get("ladder") == block:
                    continue
                stamp = record.get("gate")
                if isinstance(stamp, dict) and stamp.get("content_sha256") == content_digest(record):
                    out = {k: v for k, v in record.items() if k != "ladder"}
                    if block is not None:
                        out["ladder"] = block
                    _write_json(path, out)
                    report.stamped.append(path)
            report.diagnostics = self.copy_diagnostics(report.records)
        return report

    @staticmethod
    def _note_ladder(report: GateReport, path: Path, record: dict, blocks: dict) -> None:
        if not is_private(record):
            return
        block = blocks.get(path)
        if block is None:
            report.undecided.append(path)
        elif not block["shown"]:
            report.withheld.append(path)


def publish(results_dir: Path, only=None, *, recompute: bool = True) -> GateReport:
    """Run the gate over ``results_dir`` (``only``: just these record files, e.g. the ones a run
    just wrote), writing what pages need into every record it accepts."""
    return Gate(results_dir, recompute=recompute).run(only)


def validate_dir(results_dir: Path, *, recompute: bool = True) -> Scan:
    """Check every record under ``results_dir`` (model, per-sample hash, unique keys and, where the
    split is materialized here, every figure against the per-sample scores and the split's
    labels) without writing anything."""
    return Gate(results_dir, recompute=recompute).run(write=False)
