"""The columns of every table on the site and the fields of their downloads.

Each page shows only the columns that vary on it (a split page has no split column, a scorer
page no scorer column), which keeps tables within the page width.
"""

from __future__ import annotations

from .tables import col

SCORER = col("scorer_label", "scorer", link="scorer")
TARGET = col("target", "target", link="target")
SPLIT = col("split", "split", link="split")
AUC = col("auc_text", "AUC", sort="auc", num=True, help="rounded to the precision its 95% interval supports")
CI = col("ci_text", "95% CI", sort="auc_lo", num=True, help="stratified bootstrap")
AUC_CI = col("auc_ci_text", "AUC [95% CI]", sort="auc", num=True,
             help="AUC and its stratified-bootstrap 95% interval, rounded to the precision the interval supports")
TPR10 = col("tpr10_text", "TPR@10%", sort="tpr10", num=True, help="largest TPR among ROC points with FPR <= 10%")
TPR1 = col("tpr1_text", "TPR@1%", sort="tpr1", num=True, help="largest TPR among ROC points with FPR <= 1%")
TPR01 = col("tpr01_text", "TPR@0.1%", sort="tpr01", num=True, help="largest TPR among ROC points with FPR <= 0.1%")
VS_BLIND = col("vs_blind_text", "vs blind", sort="excess", num=True, badge="vs_blind",
               help="AUC minus the split's best blind-baseline AUC; 'above' when the whole 95% interval clears it. "
               "Not applicable to model-free scorers and on control splits")
RANK = col("rank_text", "rank", sort="rank", num=True,
           help="rank group: scorers whose 95% intervals overlap the group leader's share a group "
           "(not applicable to model-free scorers and on control splits)")
N = col("n_text", "members / non", sort="n_total", num=True)
SCORES = col("scores_text", "scores", help="per-sample scores (uid, score) as parquet")
EVALUATED_ON = col("evaluated_on", "evaluated on",
                   help="the whole split, or the evaluated rest of a calibration subset: trainable scorers learn "
                   "from the subset, and every other scorer is recomputed on the same rest")

TRACK_COLUMNS = [SCORER, TARGET, SPLIT, AUC_CI, TPR1, TPR01, VS_BLIND, RANK, N, SCORES]
SPLIT_COLUMNS = [SCORER, TARGET, AUC_CI, TPR10, TPR1, TPR01, VS_BLIND, RANK, N, SCORES]
SCORER_COLUMNS = [col("setting_text", "setting"), TARGET, SPLIT, AUC_CI, TPR1, TPR01, VS_BLIND, RANK, N, SCORES]
TARGET_COLUMNS = [SCORER, SPLIT, AUC_CI, TPR1, TPR01, VS_BLIND, RANK, N, SCORES]

RESULT_FIELDS = {
    "scorer": "scorer", "scorer_name": "scorer_label", "setting": "setting_text", "scorer_id": "scorer_id",
    "method": "method", "scorer_version": "scorer_version",
    "kind": "kind", "model_free": "model_free", "target": "target", "split": "split", "track": "track",
    "private_split": "private", "auc": "auc", "auc_ci95_lo": "auc_lo", "auc_ci95_hi": "auc_hi",
    "tpr_at_10pct_fpr": "tpr10", "tpr_at_1pct_fpr": "tpr1", "tpr_at_0.1pct_fpr": "tpr01",
    "evaluated_on": "evaluated_on", "rank_group": "rank", "auc_minus_blind": "excess", "vs_blind": "vs_blind", "n_members": "n_members",
    "n_nonmembers": "n_nonmembers", "unit": "unit", "label_valid": "label_valid", "code_sha256": "code_sha256",
    "per_sample_scores": "scores_href",
}

MEAN_COLUMNS = [
    SCORER, TARGET,
    col("mean_auc_text", "mean AUC", sort="mean_auc", num=True),
    col("n_splits", "splits", num=True, help="number of splits behind the mean"),
    col("mean_tpr1_text", "mean TPR@1%", sort="mean_tpr1", num=True, help="over splits where it is resolvable"),
    col("mean_excess_text", "mean AUC − blind", sort="mean_excess", num=True,
        help="not applicable to model-free scorers and on control splits"),
]
MEAN_FIELDS = {
    "scorer": "scorer", "scorer_name": "scorer_label", "kind": "kind", "target": "target", "mean_auc": "mean_auc",
    "n_splits": "n_splits", "mean_tpr_at_1pct_fpr": "mean_tpr1", "n_splits_tpr_resolvable": "n_tpr1",
    "mean_auc_minus_blind": "mean_excess",
}

BUCKET_COLUMNS = [
    SPLIT, TARGET, col("words", "words"),
    col("auc_text", "AUC", sort="auc", num=True), col("ci_text", "95% CI", sort="auc_lo", num=True),
    col("n_text", "members / non", sort="n_total", num=True),
]
BUCKET_FIELDS = {"split": "split", "target": "target", "words": "words", "auc": "auc", "auc_ci95_lo": "auc_lo",
                 "auc_ci95_hi": "auc_hi", "n_members": "n_members", "n_nonmembers": "n_nonmembers"}


def with_subsets(columns: list, rows) -> list:
    """``columns`` with an "evaluated on" column after the split (or the first) column when some
    row is on the evaluated rest of a calibration subset."""
    if not any(r.get("subset") for r in rows):
        return columns
    at = columns.index(SPLIT) + 1 if SPLIT in columns else 1
    return columns[:at] + [EVALUATED_ON] + columns[at:]


def matrix_columns(targets: list[str]):
    return [SCORER] + [col(f"t{i}_text", t, sort=f"t{i}", num=True) for i, t in enumerate(targets)]


def matrix_fields(targets: list[str]) -> dict:
    return {"scorer": "scorer", "scorer_name": "scorer_label", "kind": "kind",
            **{f"{t} mean AUC": f"t{i}" for i, t in enumerate(targets)},
            **{f"{t} splits": f"t{i}_n" for i, t in enumerate(targets)}}
