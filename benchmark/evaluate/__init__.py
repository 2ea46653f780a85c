"""The evaluator: one stage that runs scorers and builds records, for every caller alike.

A caller (`membench run`, a grid job, the demo, the submission path) builds one frozen
``RunSpec`` (``RunSpec.build`` checks names and resolves defaults) and calls ``run(spec)``, or
``run(spec, handles)`` with its own ``ScorerHandle``s (a submission's sandboxed handle); it gets
a ``RunReport`` (the records written, the default scorers skipped, the feature pass's usage).
Built-in scorers run in this process (``InProcessHandle``) with a ``MeteredModelAccess``, which
holds the models and no label. Fit, group and plain scoring are three functions over the same
loaded ``Plan`` (``score_fit``, ``score_groups``, ``score_plain``); ``build_record`` is the one
place labels meet scores (and where a record's declared capabilities are checked against what
its run used); ``score`` dispatches one scoring, ``same_scores`` is the determinism check a
submission's records pass (a second run on everything it scores). Also here: ``compare_records`` (paired bootstrap of two records of a
run), ``run_blind`` (the blind baselines), the scorer settings of a run (``scorer_settings``,
``default_scorer_set``, ``compare_labels``, ``result_name``) and the generated-data experiment
(``finetune_and_compare``).
"""

from .compare import compare_records
from .fit import fit_plan, score_fit
from .generated import finetune_and_compare, pii_items
from .group_level import score_groups
from .handles import FitTask, InProcessHandle, ScorerHandle, builtin_handles
from .model_access import MeteredModelAccess, SplitTexts
from .pipeline import PRIVATE_SUBSET, NotDeterministic, RunReport, rest_subset, run, run_blind, same_scores, score
from .plan import Plan, best_blind_auc, check_validity, load
from .record import build_record, metrics_block
from .scoring import Scored, score_plain
from .settings import compare_labels, default_scorer_set, default_scorers, make_scorers, result_name, scorer_settings
from .spec import RunSpec, default_pool, default_reference, load_pool

__all__ = [
    "FitTask",
    "InProcessHandle",
    "MeteredModelAccess",
    "NotDeterministic",
    "PRIVATE_SUBSET",
    "Plan",
    "RunReport",
    "RunSpec",
    "Scored",
    "ScorerHandle",
    "SplitTexts",
    "best_blind_auc",
    "build_record",
    "builtin_handles",
    "check_validity",
    "compare_labels",
    "compare_records",
    "default_pool",
    "default_reference",
    "default_scorer_set",
    "default_scorers",
    "finetune_and_compare",
    "fit_plan",
    "load",
    "load_pool",
    "make_scorers",
    "metrics_block",
    "pii_items",
    "rest_subset",
    "result_name",
    "run",
    "run_blind",
    "same_scores",
    "score",
    "score_fit",
    "score_groups",
    "score_plain",
    "scorer_settings",
]
