"""``CalibrationLabels``: the labels a trainable scorer may read, inside ``fit`` only."""

from __future__ import annotations

import numpy as np

from .capabilities import labels_outside_fit


class CalibrationLabels:
    """The labels of a calibration subset (1 = member), aligned with the ``uids`` of the
    ``ScoringInput`` passed to ``fit``, and readable only while ``fit`` runs.

    Use it as an array inside ``fit`` (``np.asarray(labels)``, ``labels[i]``, ``len(labels)``,
    iteration); once ``fit`` returns the harness closes it, and any later read is refused with
    one line (copy what you need inside ``fit``). It never holds a label of the evaluated rest:
    the harness builds it from the calibration rows alone."""

    def __init__(self, values, scorer: str | None = None):
        arr = np.asarray(values, dtype=np.int64).copy()
        if arr.ndim != 1 or not np.isin(arr, (0, 1)).all():
            raise ValueError("calibration labels are 0/1 values, one per calibration sample")
        arr.setflags(write=False)
        self._values = arr
        self._scorer = scorer
        self._open = True

    def close(self) -> None:
        self._open = False

    def _get(self) -> np.ndarray:
        if not self._open:
            raise labels_outside_fit(f"scorer {self._scorer}" if self._scorer else "the scorer")
        return self._values

    def __array__(self, dtype=None, copy=None):
        values = self._get()
        return values.astype(dtype) if dtype is not None else values.copy()

    def __len__(self) -> int:
        return len(self._get())

    def __getitem__(self, index):
        return self._get()[index]

    def __iter__(self):
        return iter(self._get().tolist())

    def tolist(self) -> list[int]:
        return self._get().tolist()

    def __repr__(self) -> str:
        return f"CalibrationLabels(n={len(self._values)}, {'open' if self._open else 'closed'})"
