"""Shift controls: on a control split both classes share membership status and differ only
in time or source (DESIGN section 4), so a scorer's AUC there is its shift sensitivity, not
membership signal. ``control_fields`` is what the runner adds to each result record.
"""

from __future__ import annotations

NOTE = ("AUC on a label that is time or source, not membership: 0.5 means the scorer is blind "
        "to this shift; any distance from 0.5 is sensitivity to shift")


def control_fields(spec, summary: dict) -> dict:
    """``{"shift_sensitivity": ...}`` for a result on a control split; ``{}`` otherwise."""
    if getattr(spec, "track", None) != "control":
        return {}
    return {
        "shift_sensitivity": {
            "auc": summary["auc"],
            "auc_ci95": summary["auc_ci95"],
            "distance_from_chance": abs(summary["auc"] - 0.5),
            "label": spec.label_meaning,
            "note": NOTE,
        }
    }
