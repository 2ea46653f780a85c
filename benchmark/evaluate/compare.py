"""Paired comparisons of written records: AUC(a) - AUC(b) on the samples both scored.

Labels are read here (the evaluator's side), from the split the records name.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from .. import metrics, results, suite
from ..errors import MembenchError


def compare_records(results_dir: Path, records: list[dict], labels: list[str]) -> dict:
    """Every pair of the named records (result names as written, all of one split and target:
    the records of one run) compared by a paired, class-stratified bootstrap of AUC(a) - AUC(b)
    on the samples both scored, with Holm's correction of the p-values over the pairs.

    Returns ``{"split", "target", "scorers", "correction", "pairs": [{a, b, auc_difference,
    ci95, p_value, p_holm, p_resolution, n_paired, bootstrap}]}``; ``p_resolution`` is one over
    the number of resamples (a p-value of 0 means below it). The intervals are per pair (95%,
    not adjusted)."""
    by_label = {r["scorer"]["name"]: r for r in records}
    missing = [lab for lab in labels if lab not in by_label]
    if missing:
        raise MembenchError(f"no result for {', '.join(missing)} in this run",
                            f"this run scored: {', '.join(by_label)}")
    chosen = [by_label[lab] for lab in labels]
    keys = {(r["split"]["id"], r["split"]["content_hash"], r["target"]["id"], r["target"].get("revision"))
            for r in chosen}
    if len(keys) != 1:
        raise MembenchError("--compare needs results of one split and one target", "compare within one run")
    split = suite.ensure(chosen[0]["split"]["id"])
    uids = split.samples["uid"].tolist()
    labels_arr = split.labels().reindex(uids).to_numpy()
    scores = {lab: results.read_scores(results.record_path(
        results_dir, r["split"]["id"], r["target"]["id"], lab, r["target"].get("revision")), r)
        .reindex(uids).to_numpy(float) for lab, r in zip(labels, chosen)}
    pairs = []
    for a, b in combinations(labels, 2):
        out = metrics.paired_auc_difference(labels_arr, scores[a], scores[b])
        pairs.append({"a": a, "b": b, **out, "p_resolution": 1.0 / out["bootstrap"]["resamples"]})
    for pair, adjusted in zip(pairs, metrics.holm([p["p_value"] for p in pairs])):
        pair["p_holm"] = adjusted
    return {
        "split": split.id,
        "target": chosen[0]["target"]["id"],
        "scorers": list(labels),
        "correction": {"method": metrics.HOLM, "family_size": len(pairs),
                       "note": "Holm's step-down adjustment of the pairs' p-values (family-wise error); "
                       "the 95% intervals are per pair"},
        "pairs": pairs,
    }

