"""The verdict: does a split measure membership, judged by its best blind baseline?

Rule (applied to the best blind baseline's out-of-fold AUC, ``blind_auc``, and its 95%
stratified-bootstrap interval):

- **shifted**: blind AUC >= 0.75. A classifier that never sees the model separates the
  classes better than most published attacks do on deduplicated Pile data (MIMIR: AUC
  0.5-0.7), so any attack AUC on this split is dominated by distribution shift.
- **mild shift**: 0.60 <= blind AUC < 0.75 and the interval's lower bound is above 0.5. The
  shift is real (not chance) and of the size of typical attack effects: attack numbers must
  be read as excess over the blind AUC, never on their own.
- **clean**: everything else: blind AUC below 0.60, or an interval that reaches 0.5 (the
  split is too small to show a shift at all).

Why judge by the best baseline, and why low AUCs count as clean: every baseline learns its
orientation on the training folds, so a real shift in either direction shows up as AUC
above 0.5 in at least one of them. An AUC well below 0.5 is not a reversed shift but the
anti-learning effect of cross-validation on null data (holding a sample out leaves its
training folds slightly tilted towards the other class, and the classifier learns that
tilt), so it is evidence of no usable shift. Taking the maximum over five baselines is
optimistic on null data by a few hundredths; 0.60 leaves room for that on splits of a few
hundred samples. ``|AUC - 0.5|`` would misread anti-learning as shift.

On a split whose membership is assigned per group (users), the folds are drawn over groups
and the rule is applied at both units: ``verdict`` (``verdict_unit: text``) to the best
text-level AUC with an interval that resamples whole groups (a group's texts are not
independent), ``verdict_group`` to the best group-level AUC (a group's mean out-of-fold
score) with its interval over groups. Text scorers are read against the first, group scorers
against the second.
"""

from __future__ import annotations

SHIFTED_AT = 0.75
MILD_AT = 0.60
CHANCE = 0.5

RULE = (
    f"by the best blind baseline's out-of-fold AUC: shifted if >= {SHIFTED_AT}; mild shift if "
    f">= {MILD_AT} with a 95% interval above {CHANCE}; clean otherwise (AUC below 0.5 is "
    "cross-validation anti-learning on null data, not a shift); where membership is per group, "
    "folds never split a group, the text-level interval resamples whole groups, and the same "
    "rule gives the group-level verdict over groups"
)

VERDICTS = ("clean", "mild shift", "shifted")


def verdict(blind_auc: float, ci95) -> str:
    if blind_auc >= SHIFTED_AT:
        return "shifted"
    if blind_auc >= MILD_AT and ci95[0] > CHANCE:
        return "mild shift"
    return "clean"


# What each verdict implies for a reader of attack numbers, and what to do next (printed by
# `membench diagnose` and `membench run`; issue 27).
MEANING = {
    "clean": ("no blind baseline separates members from non-members beyond chance, so an attack's AUC "
              "above 0.5 can be read as membership signal",
              "score attacks on it: membench run --target TARGET {where}"),
    "mild shift": ("the classes differ in a way a model-free classifier detects; part of any attack's AUC "
                   "is that shift, not membership",
                   "read attacks as their excess over the blind AUC (the `excess` column and field); to remove "
                   "the shift, rebuild the split from one distribution (e.g. deduplicated, length-matched)"),
    "shifted": ("a classifier that never sees the model separates the classes; an attack's AUC here mostly "
                "measures this distribution shift, not membership",
                "do not rank attacks on it: compare excess over the blind AUC only, or use a clean split of the "
                "same domain (`membench suite list`; `membench cards` explains each split's shift)"),
}


def explain(name: str, where: str = "--split SPLIT") -> tuple[str, str]:
    """(what the verdict implies, what to do next) for verdict ``name``; ``where``: how a command
    names the data (``--split ID`` or ``--file PATH``)."""
    implies, nxt = MEANING[name]
    return implies, nxt.format(where=where)
