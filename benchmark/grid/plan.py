"""Expanding a grid into jobs, and deciding from the results store which jobs are finished.

A grid is targets x splits; one job is one (target, split) pair with all its scorers (one
forward pass serves every feature-based scorer). Patterns are globs: over registry target
ids (``pythia-*``, ``pythia-160m@step*`` for checkpoints) and local model folders, and over
split ids. A pair outside the split's label validity is skipped and listed, exactly as
``membench run`` refuses it, unless ``allow_invalid``; so is a split that cannot be loaded
(not fetched), with the reason.

A job is *finished* when every requested scorer's record is in the results store, valid (the
schema, the per-sample file and its hash) and made for this job: the same key (split, target,
revision, scorer), the same split content hash, dtype, context rule and scorer code. Nothing else is kept
about a grid, so a restarted grid (or a different grid over the same pairs) skips exactly
what is already there.
"""

from __future__ import annotations

import fnmatch
import glob
from dataclasses import dataclass, field
from pathlib import Path

from .. import grouping, results, runner, suite, targets
from ..errors import MembenchError, unknown

_GLOB = set("*?[")


def _is_glob(pattern: str) -> bool:
    return bool(_GLOB & set(pattern))


@dataclass(frozen=True)
class Job:
    """One (target, split) pair and the scorers to run on it."""

    target: str  # the target's id as records carry it
    split: str
    scorers: tuple[str, ...]  # scorer specs (``name`` or ``name:key=value``)
    result_names: tuple[str, ...]  # the scorers' names in result records
    code_hashes: tuple[str, ...]
    revision: str | None
    content_hash: str
    units: tuple = ()  # per result name: "group" for a group-level record (keyed and named apart), else None

    @property
    def key(self) -> str:
        return f"{self.target} | {self.split}"

    def as_dict(self) -> dict:
        return {"target": self.target, "split": self.split, "scorers": list(self.result_names)}


@dataclass
class Plan:
    """The jobs of a grid and the (target, split) pairs left out, each with its reason."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"target", "split", "reason"}


def match_targets(patterns) -> list:
    """Target specs matching any pattern, in registry order then pattern order.

    A pattern without glob characters is looked up as ``membench run`` does (registry id,
    checkpoint ``model@stepN``, registered target or local model folder). A glob matches
    registry ids; ``model-glob@revision-glob`` matches Pythia checkpoints; a glob that names
    folders holding a ``config.json`` matches those local models.
    """
    chosen, seen = [], set()

    def add(spec):
        if spec.id not in seen:
            seen.add(spec.id)
            chosen.append(spec)

    table = targets.targets()
    for pattern in patterns:
        if not _is_glob(pattern):
            add(targets.get_target(pattern))
            continue
        hits = []
        base, at, rev = pattern.partition("@")
        for tid, spec in table.items():
            if not fnmatch.fnmatchcase(tid, base):
                continue
            if not at:
                hits.append(spec)
            else:
                hits.extend(spec.at_revision(r) for r in spec.checkpoints if fnmatch.fnmatchcase(r, rev))
        for folder in sorted(glob.glob(pattern)):
            if Path(folder, "config.json").is_file():
                hits.append(targets.get_target(folder))
        if not hits:
            raise unknown("target", pattern, list(table) + ["<a local model directory>"])
        for spec in hits:
            add(spec)
    return chosen


def _result_names(scorer_specs) -> tuple[tuple[str, ...], tuple[str, ...], tuple]:
    """The scorers' names in records, their code hashes and their record units."""
    made = runner.make_scorers(scorer_specs)
    names = tuple(runner.result_name(s, p) for s, p in made)
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise MembenchError(f"scorer {sorted(dupes)[0]} is requested twice", "name each scorer once")
    units = tuple("group" if grouping.needs_groups(s) else None for s, _ in made)
    return names, tuple(type(s).code_hash() for s, _ in made), units


def valid_pairs(target_patterns, split_patterns, *, allow_invalid: bool = False) -> tuple[list, list[dict]]:
    """The (split spec, target spec) pairs of a grid, split-major, whose labels are valid for the
    target (all of them with ``allow_invalid``), and the pairs left out with the reason. Needs
    no data: what ``plan_grid`` loads and what ``--plan`` estimates start from here."""
    if not target_patterns:
        raise MembenchError("the grid names no target", "pass --targets PATTERN [PATTERN ...]")
    if not split_patterns:
        raise MembenchError("the grid names no split", "pass --splits PATTERN [PATTERN ...]")
    tspecs = match_targets(target_patterns)
    pairs, skipped = [], []
    for sspec in suite.match_splits(split_patterns):
        for tspec in tspecs:
            if not allow_invalid and not sspec.labels_valid_for(tspec.id):
                skipped.append({"target": tspec.id, "split": sspec.id, "reason": sspec.validity(tspec.id)["reason"]})
            else:
                pairs.append((sspec, tspec))
    return pairs, skipped


def plan_grid(target_patterns, split_patterns, scorer_specs=None, *, allow_invalid: bool = False,
         reference: str | None = None) -> Plan:
    """Expand patterns into jobs (one per valid pair) and the pairs skipped, with reasons.

    ``scorer_specs`` None: per job, the scorers ``membench run`` would choose by default
    (the feature-based set; those needing a pool only where the split declares one;
    ``reference`` when a reference model is given).
    """
    pairs, skipped = valid_pairs(target_patterns, split_patterns, allow_invalid=allow_invalid)
    if scorer_specs:
        fixed = (tuple(scorer_specs), *_result_names(scorer_specs))
    out = Plan(skipped=skipped)
    loaded: dict[str, object] = {}
    for sspec, tspec in pairs:  # one job per valid pair whose split can be loaded here
        if sspec.id not in loaded:
            try:
                loaded[sspec.id] = suite.ensure(sspec.id)
            except MembenchError as exc:
                loaded[sspec.id] = exc
        split = loaded[sspec.id]
        if isinstance(split, MembenchError):
            out.skipped.append({"target": tspec.id, "split": sspec.id, "reason": str(split)})
            continue
        if scorer_specs:
            specs, names, hashes, units = fixed
        else:  # as `membench run` chooses them for this split
            specs = tuple(runner.default_scorers(runner.default_pool(split) is not None, reference))
            names, hashes, units = _result_names(specs)
        out.jobs.append(Job(target=tspec.id, split=sspec.id, scorers=specs, result_names=names,
                            code_hashes=hashes, revision=tspec.revision,
                            content_hash=split.content_hash, units=units))
    return out


def finished_records(job: Job, results_dir: Path, dtype: str,
                     context_rule: str = targets.CONTEXT_RULE) -> dict[str, dict] | None:
    """The job's records (by scorer name) when every one is present, valid and made for this
    job (dtype and context rule included); None when any is missing, invalid or stale."""
    store = results.ResultsStore(results_dir)
    found = {}
    for name, code_hash, unit in zip(job.result_names, job.code_hashes, job.units or (None,) * len(job.result_names)):
        path = results.record_path(results_dir, job.split, job.target, name, job.revision, unit=unit)
        if not path.is_file():
            return None
        try:
            record = results.read(path)
        except MembenchError:
            return None
        if store.check(path, record) is not None:
            return None
        if (results.coarse_key(record) != results.make_key(job.split, job.target, job.revision, name, unit=unit)
                or record["split"].get("content_hash") != job.content_hash
                or record["target"].get("dtype") != dtype
                or record["target"].get("context_rule", targets.CONTEXT_RULE) != context_rule
                or record["scorer"].get("code_sha256") != code_hash):
            return None
        found[name] = record
    return found
