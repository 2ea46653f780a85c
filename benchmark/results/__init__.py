"""Results: the record format (a published JSON Schema), provenance and the results store.

Public face: ``write`` (``write_record``: also the record as written), ``read``, ``read_scores``, ``iter_records``, ``record_path``,
``scores_path``, ``record_key``, ``scorer_label`` (the one place names and keys are decided:
``naming``), ``environment``, ``SCHEMA_VERSION``, ``SCHEMA_FILE``, ``schema``,
``schema_errors``, ``ResultsStore``, ``Scan``, ``Rejected``, ``validate_dir``,
``recompute_record`` (figures from per-sample scores and labels, by record kind:
``RECOMPUTERS``), ``public_view`` and ``round_metric`` (what the site and the API show:
metrics at the precision their intervals support), ``derive_on_rest`` / ``subsets_in`` /
``rest_blind_auc`` (records on the evaluated rest of a calibration subset, derived from
whole-split records: ``subsets``), ``reported`` (the numbers papers published, validated and
paired with reproduced records: ``reported.load_dir``, ``reported.validate_dir``,
``reported.pair``).
"""

from . import reported
from .naming import base_name, make_key, record_key, record_path, scorer_label, scores_path
from .provenance import environment, git_commit
from .recompute import RECOMPUTERS
from .recompute import recompute as recompute_record
from .published import public_view, roc_on_grid, round_metric
from .schema import SCHEMA_FILE, schema, schema_errors
from .subsets import derive as derive_on_rest
from .subsets import rest_blind_auc, subsets_in
from .store import (
    SCHEMA_VERSION,
    Rejected,
    ResultsStore,
    Scan,
    iter_records,
    read,
    read_scores,
    validate_dir,
    write,
    write_record,
)

__all__ = [
    "RECOMPUTERS",
    "Rejected",
    "ResultsStore",
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "Scan",
    "base_name",
    "derive_on_rest",
    "environment",
    "git_commit",
    "iter_records",
    "public_view",
    "read",
    "read_scores",
    "recompute_record",
    "reported",
    "make_key",
    "record_key",
    "record_path",
    "rest_blind_auc",
    "roc_on_grid",
    "round_metric",
    "schema",
    "schema_errors",
    "scorer_label",
    "scores_path",
    "subsets_in",
    "validate_dir",
    "write",
    "write_record",
]
