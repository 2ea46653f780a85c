"""``ScorerHandle``: one scorer as the evaluator runs it, in this process or in the jail.

The evaluator (``pipeline``) never calls a scorer directly: it hands a handle the rows to score
(a ``ScoringInput``; for a trainable scorer also a ``FitTask``: the calibration rows, their
labels and the fit meter) and gets back the raw output, which it checks, pairs with labels
and turns into a record (``record.build_record``). What differs between a built-in and a
submission is all here, behind one interface:

- ``run(inputs, fit)``: fit on ``fit`` (when given), then score ``inputs``;
- ``checked(output, n, n_scored)``: the per-sample output check of this kind of scorer;
- ``scorer_block()``, ``provenance()``, ``record_fields()``: the record's parts the scorer owns
  (its name, version, parameters, code hash, kind; its usage; a submission's metadata);
- ``in_process``: a built-in sees everything the run has (token statistics, the declared pool,
  stored neighbours) whatever it declares; a sandboxed scorer gets only what it declared;
- ``verify_determinism``: the evaluator runs it twice on everything it scores and refuses the
  record unless both runs agree bit for bit (submissions; built-ins are the maintainers' code).

``InProcessHandle`` (built-in scorers, with the ``MeteredModelAccess`` the evaluator gives it)
lives here; the sandboxed handle lives with the jail, in ``benchmark.submissions``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..api import CalibrationLabels, ScoringInput
from ..attacks.fit_budget import FitMeter
from ..errors import MembenchError
from .settings import make_scorers, result_name


@dataclass
class FitTask:
    """What crosses into a scorer's ``fit``: the calibration rows (and nothing else), their
    labels (1 = member), and the meter that charges ``fit``'s model use against the budget."""

    inputs: ScoringInput
    labels: np.ndarray
    meter: FitMeter


def scorer_failure(name: str, phase: str, exc: BaseException) -> MembenchError:
    """A scorer's exception as one line (its first line, cut), naming the scorer and the phase."""
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return MembenchError(f"scorer {name}: {phase} raised {type(exc).__name__}" + (f": {text}" if text else ""),
                         "fix the scorer and run again; nothing of this run was published")


class ScorerHandle(ABC):
    """One scorer of a run (see the module doc)."""

    name: str  # the scorer's name in records
    requires: tuple[str, ...]  # the capabilities it declares
    in_process: bool = False
    needs_pool: bool = False  # refuses to run without a declared pool
    uses_pool: bool = False  # the record names the pool it was given
    default_calibration: str = "cal10"  # a trainable scorer's subset when the run names none
    verify_determinism: bool = False  # run twice on everything it scores; refuse unless the scores agree
    last = None  # the report of its last run, where the handle keeps one (a sandboxed run's)

    @property
    def fits(self) -> bool:
        return "fit" in self.requires

    @property
    def scores_groups(self) -> bool:
        return "groups" in self.requires

    @abstractmethod
    def run(self, inputs: ScoringInput, fit: FitTask | None = None):
        """Fit on ``fit`` when given, then score ``inputs``; the raw output (one score per row,
        or per group for a ``groups`` scorer). A fault of the scorer is one ``MembenchError``."""

    @abstractmethod
    def checked(self, output, n: int, n_scored=None) -> np.ndarray:
        """``output`` as ``n`` floats, or one line saying why it is not acceptable."""

    @abstractmethod
    def scorer_block(self) -> dict:
        """The record's ``scorer`` block."""

    def provenance(self, feature_usage: dict) -> dict:
        """What the handle adds to the record's ``provenance`` (``feature_usage``: the feature
        pass's forward tokens and cached shards, as the record counts them)."""
        return {}

    def record_fields(self) -> dict:
        """Top-level fields the handle adds to its record."""
        return {}

    def operating_point(self) -> dict | None:
        """A fitted decision rule ``{"threshold": t, ...}``, when the scorer has one."""
        return None

    def reference_seen(self, texts: list[str]):
        """The reference model's statistics of exactly ``texts`` when the scorer already had
        them computed (saves the group view a forward pass), else None."""
        return None


class InProcessHandle(ScorerHandle):
    """A built-in scorer, run in this process with the ``MeteredModelAccess`` it is given."""

    in_process = True

    def __init__(self, scorer, params: dict):
        self.scorer = scorer
        self.params = params
        self.name = result_name(scorer, params)
        self.requires = tuple(scorer.requires)
        self.needs_pool = bool(scorer.needs_pool)
        self.uses_pool = bool(scorer.needs_pool) or scorer.name == "neighborhood"
        self.default_calibration = type(scorer).default_calibration
        self.access = None  # the MeteredModelAccess of its last run

    def run(self, inputs: ScoringInput, fit: FitTask | None = None):
        self.access = inputs.access
        self.scorer.details = {}
        if fit is not None:
            labels = CalibrationLabels(fit.labels, scorer=self.scorer.name)
            try:
                with self.access.fitting(fit.meter):
                    self.scorer.fit(fit.inputs, labels)
                fit.meter.check_time()
            except MembenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of the scorer is one line
                raise scorer_failure(self.scorer.name, "fit()", exc) from exc
            finally:
                labels.close()
        try:
            return self.scorer.score(inputs)
        except MembenchError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise scorer_failure(self.scorer.name, "score()", exc) from exc

    def checked(self, output, n: int, n_scored=None) -> np.ndarray:
        """One float per row; NaN and infinities are allowed (excluded from the metrics and
        counted in the record)."""
        scores = np.asarray(output, dtype=float)
        if scores.shape != (n,):
            raise MembenchError(f"scorer {self.scorer.name} returned shape {scores.shape}, expected ({n},)",
                                "return one float per text of the ScoringInput")
        return scores

    def scorer_block(self) -> dict:
        block = {
            "name": self.name,
            "version": self.scorer.version,
            "params": self.scorer.params(),
            "requires": list(self.scorer.requires),
            "code_sha256": type(self.scorer).code_hash(),
            "kind": "attack",
        }
        if getattr(self.scorer, "details", None):
            block["details"] = self.scorer.details
        return block

    def provenance(self, feature_usage: dict) -> dict:
        usage = dict(self.access.usage) if self.access is not None else {}
        return {"usage": {**usage, **feature_usage}}

    def operating_point(self) -> dict | None:
        return self.scorer.operating_point()

    def reference_seen(self, texts: list[str]):
        seen = getattr(self.access, "reference_seen", None)
        return seen(texts) if seen is not None else None


def builtin_handles(settings) -> list[InProcessHandle]:
    """An ``InProcessHandle`` for every (name, params) setting (or spec) of built-in scorers."""
    return [InProcessHandle(scorer, params) for scorer, params in make_scorers(settings)]
