"""Results: the record format (a published JSON Schema), provenance and the results store.

Public face: ``write``, ``read``, ``iter_records``, ``record_path``, ``environment``,
``SCHEMA_VERSION``, ``SCHEMA_FILE``, ``schema``, ``schema_errors``, ``ResultsStore``,
``Scan``, ``Rejected``, ``validate_dir``, ``record_key``, ``public_view`` and ``round_metric``
(what the site and the API show: metrics at the precision their intervals support).
"""

from .provenance import environment, git_commit
from .published import public_view, round_metric
from .schema import SCHEMA_FILE, schema, schema_errors
from .store import (
    SCHEMA_VERSION,
    Rejected,
    ResultsStore,
    Scan,
    iter_records,
    read,
    record_key,
    record_path,
    validate_dir,
    write,
)

__all__ = [
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "Rejected",
    "ResultsStore",
    "Scan",
    "environment",
    "git_commit",
    "iter_records",
    "public_view",
    "read",
    "record_key",
    "record_path",
    "round_metric",
    "schema",
    "schema_errors",
    "validate_dir",
    "write",
]
