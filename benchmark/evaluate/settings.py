"""Which scorer settings a run scores: specs expanded, the default set, ``--compare`` names.

A setting is (scorer name, canonical params): ``min_k:k=0.2`` is plain ``min_k``, a grid
``min_k:k=0.05,0.1`` is two settings, and each setting has one name in result files
(``results.scorer_label``).
"""

from __future__ import annotations

from .. import attacks, results
from ..errors import MembenchError


def scorer_settings(specs) -> list[tuple[str, dict]]:
    """Every (scorer name, canonical params) the specs name, in order, each once: grids
    (``min_k:k=0.05,0.1``) expanded, parameters type-checked against the scorer's signature,
    defaults dropped (``min_k:k=0.2`` is ``min_k``)."""
    out: list[tuple[str, dict]] = []
    for spec in specs:
        for setting in attacks.specs.expand(spec):
            if setting not in out:
                out.append(setting)
    return out


def make_scorers(specs) -> list:
    """(scorer object, canonical params) for every setting the specs name."""
    return [(attacks.specs.build(name, params), params) for name, params in scorer_settings(specs)]


def result_name(scorer, params: dict) -> str:
    """The scorer's name in result files: its name plus canonical non-default parameters."""
    return results.scorer_label(scorer.name, attacks.canonical_params(type(scorer), params))


def default_scorer_set(pool_available: bool, reference: str | None) -> tuple[list[str], list[dict]]:
    """The default scorers (every feature-based one, plus ``reference`` with a reference
    model) and those left out, each with the reason and the fix."""
    names, skipped = [], []
    for name in attacks.FEATURE_SCORERS:
        if pool_available or not attacks.scorers()[name].needs_pool:
            names.append(name)
        else:
            skipped.append({"scorer": name, "reason": "needs a declared non-member pool, and the split "
                            "declares none (no pool.parquet)",
                            "fix": "pass --pool FILE (non-member texts disjoint from the split)"})
    if reference:
        names.append("reference")
    return names, skipped


def default_scorers(pool_available: bool, reference: str | None) -> list[str]:
    return default_scorer_set(pool_available, reference)[0]


def compare_labels(names, settings) -> tuple[list[str], list[tuple[str, dict]]]:
    """Which results of a run ``--compare NAME...`` means, and the settings to add to the run
    for names it does not score yet.

    A name is a result name as printed (``min_k(k=0.1)``), a spec (``min_k:k=0.1``) or a bare
    scorer name; a bare name means the one setting of that scorer in this run (ambiguous when
    the run scores several), else the scorer's default setting (added to the run)."""
    labels = {results.scorer_label(n, p): (n, p) for n, p in settings}
    chosen, extra = [], []
    for name in names:
        spec = name.replace("(", ":", 1).rstrip(")") if "(" in name else name
        (setting, *more) = attacks.specs.expand(spec)
        if more:
            raise MembenchError(f"--compare {name} names several settings", "name one setting per argument")
        label = results.scorer_label(*setting)
        if label not in labels and ":" not in spec:
            same = [lab for lab, (n, _) in labels.items() if n == setting[0]]
            if len(same) > 1:
                raise MembenchError(f"--compare {name} is ambiguous in this run: {', '.join(same)}",
                                    "name the setting as printed, e.g. " + same[0])
            if same:
                label = same[0]
        if label not in labels:
            labels[label] = setting
            extra.append(setting)
        if label in chosen:
            raise MembenchError(f"--compare names {label} twice", "name each scorer once")
        chosen.append(label)
    if len(chosen) < 2:
        raise MembenchError("--compare needs at least two scorers", "e.g. --compare loss min_k zlib")
    return chosen, extra
