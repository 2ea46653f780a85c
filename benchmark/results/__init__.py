"""Results: the record format, provenance and the results store.

Public face: ``write``, ``read``, ``iter_records``, ``environment``, ``SCHEMA_VERSION``.
"""

from .provenance import environment, git_commit
from .store import SCHEMA_VERSION, iter_records, read, record_path, write

__all__ = ["SCHEMA_VERSION", "environment", "git_commit", "iter_records", "read", "record_path", "write"]
