"""The ``groups`` capability: one score per group (user), higher = the group's data was trained on.

A scorer that declares ``groups`` receives, in ``ScoringInput.groups``, the opaque group id of
every row (aligned with ``uids``; the ``group`` column of the split's ``samples.parquet``, or of
``attacker.parquet`` when the split has attacker-held samples) and returns one finite score per
group, either

- an array (or list) of floats aligned with ``inputs.group_ids`` (the distinct groups of the
  rows, sorted), or
- a mapping ``{group id: score}`` holding every group of ``inputs.group_ids`` exactly once.

``group_scores`` is the one check of that output (built-in scorers and sandboxed submissions
alike): a score per sample instead of per group, a group missing, a group that is not among
the rows, a non-finite score or a wrong shape is one line naming the problem and the fix, and
the run publishes nothing. Unlike sample-level scores, NaN is never excluded here: a user the
scorer cannot score is a failure of the scorer, not a text too short to score.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import MembenchError

FIX = ("return one finite float per group: an array aligned with inputs.group_ids (sorted distinct groups) "
       "or a dict {group id: score}")


def _bad(scorer: str, problem: str) -> MembenchError:
    return MembenchError(f"scorer {scorer}: {problem}", FIX)


def group_scores(output, group_ids: list[str], n_rows: int, scorer: str) -> np.ndarray:
    """The scores of ``output`` as a float array aligned with ``group_ids``; raises
    ``MembenchError`` (one line) for every kind of wrong group-level output."""
    want = list(group_ids)
    if isinstance(output, Mapping):
        keys = [str(k) for k in output]
        if len(set(keys)) != len(keys):
            raise _bad(scorer, "returned a group twice (its keys repeat after conversion to text)")
        extra = sorted(set(keys) - set(want))
        missing = sorted(set(want) - set(keys))
        if extra:
            raise _bad(scorer, f"returned {len(extra)} group(s) that are not among its inputs' groups "
                               f"(e.g. {extra[0][:40]!r})")
        if missing:
            raise _bad(scorer, f"returned no score for {len(missing)} of {len(want)} group(s) "
                               f"(e.g. {missing[0][:40]!r})")
        as_text = {str(k): v for k, v in output.items()}
        values = [as_text[g] for g in want]
    else:
        values = output
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise _bad(scorer, f"returned {type(output).__name__} values that are not numbers") from None
    if arr.ndim != 1:
        raise _bad(scorer, f"returned an array of shape {arr.shape}, expected ({len(want)},)")
    if len(arr) != len(want):
        if len(arr) == n_rows and n_rows != len(want):
            raise _bad(scorer, f"returned {len(arr)} scores, one per sample; a groups scorer returns one per group "
                               f"({len(want)} groups)")
        if len(arr) < len(want):
            raise _bad(scorer, f"returned {len(arr)} scores for {len(want)} groups: "
                               f"{len(want) - len(arr)} group(s) missing")
        raise _bad(scorer, f"returned {len(arr)} scores for {len(want)} groups: "
                           f"{len(arr) - len(want)} extra")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise _bad(scorer, f"returned {int(bad.sum())} non-finite group score(s) (NaN or infinite), "
                           f"e.g. for group {want[int(np.flatnonzero(bad)[0])][:40]!r}")
    return arr
