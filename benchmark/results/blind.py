"""The blind AUC a scorer is compared with, read from a split's saved diagnostics JSON.

A split's diagnostics (``membench diagnose``) hold the best blind-baseline AUC at two units:
``blind_auc`` over texts (folds drawn over groups where membership was assigned per group) and
``blind_auc_group`` over groups (a group's texts' mean out-of-fold score), None on a split
without groups. A text scorer is compared with the first, a group scorer (user inference) with
the second; where the split has a tokenizer baseline for the scorer's target (keyed by the
tokenizer's SHA-256), the larger of the two counts. ``unit_note`` in the JSON says which is which.

Plain dict reading, no scikit-learn: the runner, the publication gate and the site (a pure
reader) all choose through ``blind_reference``. ``benchmark.diagnostics.best_blind_auc`` is
``best_blind_auc`` here.
"""

from __future__ import annotations

UNITS = {"sample": "blind_auc", "group": "blind_auc_group"}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(value) -> list[float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) is not None for v in value):
        return [float(v) for v in value]
    return None


def blind_reference(saved: dict | None, unit: str = "sample",
                    tokenizer: str | None = None) -> tuple[float | None, list[float] | None, str | None]:
    """(AUC, its 95% interval, the baseline's name) of the best blind baseline at ``unit``
    (``sample`` for text scorers, ``group`` for group scorers) in a split's saved diagnostics;
    ``(None, None, None)`` when there is none at that unit (no diagnostics, an unreadable file,
    a split without groups for ``group``). ``tokenizer``: a target's tokenizer hash; its
    tokenizer baseline counts where the split has one. The text-level interval is the one the
    verdict reads (whole groups resampled where the split has groups)."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if not isinstance(saved, dict) or "error" in saved:
        return None, None, None
    key = UNITS[unit]
    name = saved.get("blind_best" if unit == "sample" else "blind_best_group")
    found = [(_number(saved.get(key)), _interval(saved.get(key + "_ci95")), name if isinstance(name, str) else None)]
    entry = (saved.get("tokenizer_baselines") or {}).get(tokenizer) if tokenizer else None
    if isinstance(entry, dict):
        if unit == "sample":
            ci = _interval(entry.get("auc_ci95_groups_resampled")) or _interval(entry.get("auc_ci95"))
            found.append((_number(entry.get("auc")), ci, str(entry.get("name") or "blind_tokenizer")))
        else:
            group = entry.get("group") if isinstance(entry.get("group"), dict) else {}
            found.append((_number(group.get("auc")), _interval(group.get("auc_ci95")),
                          str(entry.get("name") or "blind_tokenizer")))
    found = [f for f in found if f[0] is not None]
    return max(found, key=lambda f: f[0]) if found else (None, None, None)


def best_blind_auc(saved: dict | None, unit: str = "sample", tokenizer: str | None = None) -> float | None:
    """The best blind AUC a scorer of ``unit`` is compared with (``blind_reference``'s AUC).

    ``unit="sample"``: ``blind_auc``, over texts: for text scorers. ``unit="group"``:
    ``blind_auc_group``, over groups: for group scorers; None on a split without groups, or
    diagnosed before groups were. ``tokenizer``: a target's tokenizer hash; when the split has
    a tokenizer baseline for it (``membench diagnose SPLIT --target T``), the larger of the two.
    """
    return blind_reference(saved, unit, tokenizer)[0]
