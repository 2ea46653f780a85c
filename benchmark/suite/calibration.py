"""Calibration subsets: the labelled texts a trainable (``fit``) scorer may learn from.

A calibration subset of a split is named and seeded, and declared in the registry: the
top-level ``calibration:`` block of ``splits.yaml`` is the default set every split has (shipped
or registered), and a split entry may override it with its own ``calibration:`` mapping (a
name mapped to new settings replaces the default of that name; mapped to ``null`` it removes
it). A subset takes ``fraction`` of each class; the rest of the split is the *evaluated rest*,
the only rows a fit scorer is ever scored on.

The subset is disjoint from the rest by uid and by near-duplicates. Two texts are
near-duplicates when they normalize to the same string (NFKC, lower case, every run of
characters other than letters and digits collapsed to one space) or share a word ``ngram``
of that normalized text (13 words by default, MIMIR's overlap unit). The connected components
of that graph are assigned as units, so a text and its near-duplicates always fall on one
side (WikiMIA-24 has near-duplicate rows across classes, and templated rows sharing long
word runs).

Assignment depends on content only, never on row order: each component gets the key
SHA-256(seed, subset name, smallest uid of the component) on a public split, where anyone can
recompute the selection; on a private split HMAC-SHA256 under a secret key drawn once per
split (``home.secret_key(<split>.calibration)``, under MEMBENCH_HOME's secrets), so the order in
which components fill the quotas, which would pin some rest labels, is not recomputable.
Components are taken in key order
and a component joins the subset when it fits within every class's quota
(``round(fraction * n_class)``, at least 1 and at most n_class - 1); components that would
overflow a quota stay in the rest, so a quota may be missed by a few rows when large mixed
components remain. Both sides must hold both classes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import MembenchError, closest
from ..hashing import sha256_json
from ..home import secret_key
from .registry import REGISTRY_FILE, SplitSpec, document

EXCLUDED = "calibration"  # what the evaluated rest excludes (the name records carry)
NEAR_DUPLICATE_RULE = ("same text after NFKC, lower case and collapsing non-alphanumeric runs to one space, "
                       "or a shared word n-gram of that text; connected components assigned as units")


@dataclass(frozen=True)
class SubsetSpec:
    """A declared calibration subset: ``fraction`` of each class, drawn with ``seed``."""

    name: str
    fraction: float
    seed: int
    ngram: int = 13
    description: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "fraction": self.fraction, "seed": self.seed, "ngram": self.ngram,
                "description": self.description}


@dataclass(frozen=True)
class Subset:
    """A calibration subset of one materialized split: which uids calibrate, which are
    evaluated. Holds no label; ``counts`` says how many of each class sit on each side."""

    spec: SubsetSpec
    split_id: str
    content_hash: str
    calibration: tuple[str, ...]  # sorted uids
    rest: tuple[str, ...]  # sorted uids
    counts: dict  # {"calibration": {"members", "nonmembers"}, "rest": {...}, "components": int, ...}
    keyed: bool = False  # drawn with a private split's secret key (not recomputable from the seed)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def calibration_sha256(self) -> str:
        return sha256_json(list(self.calibration))

    @property
    def rest_sha256(self) -> str:
        return sha256_json(list(self.rest))

    def block(self) -> dict:
        """The ``evaluation_subset`` block of a record scored on this subset's rest."""
        return {
            "name": self.name,
            "excluded": EXCLUDED,
            "n": len(self.rest),
            "n_calibration": len(self.calibration),
            "calibration_members": self.counts["calibration"]["members"],
            "calibration_nonmembers": self.counts["calibration"]["nonmembers"],
            "fraction": self.spec.fraction,
            "seed": self.spec.seed,
            "near_duplicates": {"ngram": self.spec.ngram, "rule": NEAR_DUPLICATE_RULE,
                                "components_merged": self.counts["components_merged"]},
            "calibration_sha256": self.calibration_sha256,
            "rest_sha256": self.rest_sha256,
            **({"selection": "keyed by the split's secret (HMAC-SHA256)"} if self.keyed else {}),
        }


def _spec_from(name: str, entry, where: str) -> SubsetSpec:
    if not isinstance(entry, dict):
        raise MembenchError(f"calibration subset {name} in {where} is not a mapping",
                            "write e.g. cal10: {fraction: 0.1, seed: 1}")
    fraction, seed = entry.get("fraction"), entry.get("seed")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < float(fraction) < 1:
        raise MembenchError(f"calibration subset {name} in {where}: fraction must be a number in (0, 1), got {fraction!r}",
                            "e.g. fraction: 0.1")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise MembenchError(f"calibration subset {name} in {where}: seed must be an integer, got {seed!r}", "e.g. seed: 1")
    ngram = entry.get("ngram", 13)
    if not isinstance(ngram, int) or isinstance(ngram, bool) or ngram < 2:
        raise MembenchError(f"calibration subset {name} in {where}: ngram must be an integer >= 2, got {ngram!r}",
                            "e.g. ngram: 13")
    return SubsetSpec(name=str(name), fraction=float(fraction), seed=seed, ngram=ngram,
                      description=str(entry.get("description", "")))


@lru_cache(maxsize=1)
def default_subsets() -> dict[str, SubsetSpec]:
    """The default set of the registry (``calibration:`` at the top of splits.yaml)."""
    block = document().get("calibration") or {}
    return {name: _spec_from(name, entry, REGISTRY_FILE.name) for name, entry in block.items()}


def subsets(spec: SplitSpec) -> dict[str, SubsetSpec]:
    """The calibration subsets a split has: the default set, overridden by its entry."""
    out = dict(default_subsets())
    override = spec.extra.get("calibration") or {}
    if not isinstance(override, dict):
        raise MembenchError(f"split {spec.id}: `calibration` must map subset names to settings",
                            "write e.g. calibration: {cal10: {fraction: 0.1, seed: 1}}")
    for name, entry in override.items():
        if entry is None:
            out.pop(name, None)
        else:
            out[name] = _spec_from(name, {**(out[name].as_dict() if name in out else {}), **entry}, f"split {spec.id}")
    return out


def subset_spec(spec: SplitSpec, name: str) -> SubsetSpec:
    """One declared subset of a split; an unknown name is one line with the valid ones."""
    table = subsets(spec)
    if name not in table:
        near = closest(name, table)
        raise MembenchError(
            f"unknown calibration subset '{name}' of split {spec.id}"
            + (f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else "")
            + f"; declared: {', '.join(sorted(table)) or '(none)'}",
            f"`membench calibration list {spec.id}` shows them; declare others under `calibration:` in the registry")
    return table[name]


_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """The text two near-duplicates share: NFKC, lower case, non-alphanumeric runs -> one space."""
    return _NON_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def near_duplicate_components(uids, texts, ngram: int = 13) -> list[list[str]]:
    """Connected components (lists of uids, each sorted; components sorted by first uid) of the
    graph linking texts that normalize to the same string or share a word ``ngram``."""
    parent = {u: u for u in uids}

    def find(u):
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    first: dict[str, str] = {}
    for uid, text in zip(uids, texts):
        norm = normalize(text)
        words = norm.split()
        keys = ["=" + norm] + [" ".join(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
        for key in keys:
            other = first.setdefault(key, uid)
            if other != uid:
                a, b = find(uid), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for uid in uids:
        groups.setdefault(find(uid), []).append(uid)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _quota(fraction: float, n: int) -> int:
    return int(min(max(round(fraction * n), 1), max(n - 1, 0)))


def _component_key(spec: SubsetSpec, secret: bytes | None):
    """The order components fill the quotas in: seeded (public), or keyed by ``secret``."""
    if secret is None:
        return lambda g: sha256_json(["membench-calibration-v1", spec.seed, spec.name, g[0]])
    return lambda g: hmac.new(secret, json.dumps([spec.seed, spec.name, g[0]]).encode(), hashlib.sha256).hexdigest()


def assign(uids, texts, labels, spec: SubsetSpec, *, group_near_duplicates: bool = True,
           secret: bytes | None = None) -> tuple[list[str], list[str], dict]:
    """(calibration uids, rest uids, counts) for one subset; see the module doc for the rule.
    ``group_near_duplicates=False`` treats every text as its own component (for tests that show
    why grouping is needed); ``secret``: a private split's key (None: the public, seeded order)."""
    uids = [str(u) for u in uids]
    label_of = dict(zip(uids, (int(v) for v in labels)))
    if len(label_of) != len(uids):
        raise MembenchError("calibration subsets need unique uids", "materialize the split again")
    comps = (near_duplicate_components(uids, texts, spec.ngram) if group_near_duplicates
             else [[u] for u in sorted(uids)])
    n_class = {c: sum(1 for v in label_of.values() if v == c) for c in (0, 1)}
    quota = {c: _quota(spec.fraction, n_class[c]) for c in (0, 1)}
    taken = {0: 0, 1: 0}
    calibration: list[str] = []
    keyed = sorted(comps, key=_component_key(spec, secret))
    for comp in keyed:
        need = {c: sum(1 for u in comp if label_of[u] == c) for c in (0, 1)}
        if all(taken[c] + need[c] <= quota[c] for c in (0, 1)):
            calibration += comp
            for c in (0, 1):
                taken[c] += need[c]
    chosen = set(calibration)
    rest = sorted(u for u in uids if u not in chosen)
    counts = {
        "calibration": {"members": taken[1], "nonmembers": taken[0]},
        "rest": {"members": n_class[1] - taken[1], "nonmembers": n_class[0] - taken[0]},
        "quota": {"members": quota[1], "nonmembers": quota[0]},
        "components": len(comps),
        "components_merged": sum(1 for g in comps if len(g) > 1),
        "texts_in_merged_components": sum(len(g) for g in comps if len(g) > 1),
    }
    return sorted(calibration), rest, counts


def selection_secret(split_spec: SplitSpec) -> bytes | None:
    """The key a private split's subsets are drawn with (None on a public split)."""
    return secret_key(f"{split_spec.id}.calibration") if split_spec.extra.get("private") else None


def select(split, name: str) -> Subset:
    """The subset ``name`` of a materialized split (labels are read here, by the harness)."""
    spec = subset_spec(split.spec, name)
    uids = split.samples["uid"].astype(str).tolist()
    labels = split.labels().reindex(uids).to_numpy()
    secret = selection_secret(split.spec)
    calibration, rest, counts = assign(uids, split.samples["text"].tolist(), labels, spec, secret=secret)
    for side in ("calibration", "rest"):
        if min(counts[side]["members"], counts[side]["nonmembers"]) < 1:
            raise MembenchError(
                f"calibration subset {name} of split {split.id} leaves the {side} without "
                f"{'members' if counts[side]['members'] < 1 else 'non-members'} "
                f"({counts['calibration']} calibrate, {counts['rest']} evaluated)",
                "choose a subset with another fraction, or a larger split")
    return Subset(spec=spec, split_id=split.id, content_hash=split.content_hash, calibration=tuple(calibration),
                  rest=tuple(rest), counts=counts, keyed=secret is not None)


def positions(uids, chosen) -> np.ndarray:
    """Row indices (into ``uids``) of the ``chosen`` uids, in row order."""
    chosen = set(chosen)
    return np.asarray([i for i, u in enumerate(uids) if u in chosen], dtype=np.int64)
