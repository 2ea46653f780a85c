"""Results: the record models, keys and file names, the store, and what may be published.

Public face (all label-free, so the site and the API read results through it): ``Record`` and
``problems`` (the pydantic record models: ``records``), ``SCHEMA_FILE``, ``schema``,
``schema_errors``, ``write_schema`` (the JSON Schema generated from them); ``record_key``,
``key_parts``, ``coarse_key``, ``make_key``, ``scorer_label``, ``base_name``, ``path_for``,
``scores_path`` (keys and file names: ``naming``); ``write``, ``write_record``,
``store_record``, ``read``, ``read_scores``, ``read_per_sample``, ``iter_records``, ``find``,
``record_path``, ``migrate``, ``content_digest``, ``ResultsStore``, ``Scan``, ``Rejected``,
``Replaced`` (the store, with the history of replaced records: ``store``); ``disclose``,
``disclose_diagnostics``, ``public_view``, ``round_metric``, ``roc_on_grid`` (what may leave
about a record: ``published``, the one place that decides it for private splits);
``environment``, ``git_commit`` (provenance); ``derive_on_rest``, ``rest_blind_auc``,
``subsets_in`` (records on the evaluated rest of a calibration subset: ``subsets``).

The publication gate (``benchmark.results.gate``: ``publish``, ``validate_dir``) reads labels,
the scorer registry and the blind baselines, so it is not part of this face: the commands and
the producers that publish import it. ``reported``: the numbers papers published, validated and
paired with reproduced records (``reported.load_dir``, ``reported.validate_dir``, ``reported.pair``).
"""

from . import reported
from .naming import base_name, coarse_key, key_parts, make_key, path_for, record_key, scorer_label, scores_path
from .provenance import environment, git_commit
from .published import disclose, disclose_diagnostics, public_view, roc_on_grid, round_metric
from .records import SCHEMA_VERSION, Record, problems
from .schema import SCHEMA_FILE, schema, schema_errors, write_schema
from .store import (
    Rejected,
    Replaced,
    ResultsStore,
    Scan,
    content_digest,
    find,
    iter_records,
    migrate,
    read,
    read_per_sample,
    read_scores,
    record_path,
    store_record,
    write,
    write_record,
)
from .subsets import derive as derive_on_rest
from .subsets import rest_blind_auc, subsets_in

__all__ = [
    "Record", "Rejected", "Replaced", "ResultsStore", "SCHEMA_FILE", "SCHEMA_VERSION", "Scan", "base_name",
    "coarse_key", "content_digest", "derive_on_rest", "disclose", "disclose_diagnostics", "environment", "find",
    "git_commit", "iter_records", "key_parts", "make_key", "migrate", "path_for", "problems", "public_view", "read",
    "read_per_sample", "read_scores", "record_key", "record_path", "reported", "rest_blind_auc", "roc_on_grid", "round_metric",
    "schema", "schema_errors", "scorer_label", "scores_path", "store_record", "subsets_in", "write",
    "write_record", "write_schema",
]
