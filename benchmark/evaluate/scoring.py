"""Plain scoring: one score per row of the split, and ``Scored``, what every kind of scoring gives.

Three small functions score a handle over the same ``Plan``: ``score_plain`` here (every row),
``fit.score_fit`` (fit on a calibration subset, score its evaluated rest) and
``group_level.score_groups`` (one score per group). Each returns a ``Scored``: the handle's
checked output and which rows or groups it covers, before any label is read; labels come in
only when ``record.build_record`` turns it into a record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import profiling


@dataclass
class Scored:
    handle: object  # the ScorerHandle
    ids: list  # uids of the scored rows, or the group ids (sorted) of a group scorer
    scores: np.ndarray  # one checked float per id
    rows: np.ndarray | None  # the split rows scored (None: one score per group)
    subset: object | None = None  # a trainable scorer's calibration subset (scored on its rest)
    fit: dict | None = None  # the record's ``fit`` block
    groups: object | None = None  # group_level.GroupRows: the rows a group scorer saw
    used: tuple[str, ...] = ()  # the capabilities the run called, as the harness's access counted them


def used_by(access) -> tuple[str, ...]:
    """The capabilities a run called on its ``MeteredModelAccess`` (none without one)."""
    return tuple(access.used) if access is not None else ()


def score_plain(plan, handle, subset=None) -> Scored:
    """Score every row of the plan (``plan.rows``) with ``handle``; with ``subset`` (a
    ``suite.calibration.Subset``), its evaluated rest only (a private split's rule for every
    scorer: no record there covers the rows whose labels a trainable scorer is given)."""
    rows = plan.rows if subset is None else plan.rest_rows(subset)
    access = plan.access_for(handle)
    inputs = plan.inputs_for(handle, access, rows)
    with profiling.phase("scoring", handle.name):
        output = handle.run(inputs)
    scores = handle.checked(output, len(rows), plan.n_scored(handle, rows))
    return Scored(handle, [plan.uids[i] for i in rows], scores, rows, subset=subset, used=used_by(access))
