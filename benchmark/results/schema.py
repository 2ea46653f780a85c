"""The published JSON Schema of a result record, and validation against it.

The schema lives beside this module (``result.schema.json``) and is copied into the built
site at ``schema/result.schema.json``. Errors name the field as a dotted path, e.g.
``metrics.auc_ci95.1``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_FILE = Path(__file__).with_name("result.schema.json")


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text())


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    # The schema file itself is checked against the metaschema by the tests
    # (tests/test_results_store.py), not by every run (0.05-0.09 s of a warm run).
    return Draft202012Validator(schema(), format_checker=FormatChecker())


def field_path(error) -> str:
    """The dotted path of the field an error is about ('<record>' for the top level)."""
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required":
        # jsonschema reports a missing key at its parent; name the key itself.
        missing = error.message.split("'")[1] if "'" in error.message else ""
        parts.append(missing)
    return ".".join(p for p in parts if p) or "<record>"


def schema_errors(record) -> list[tuple[str, str]]:
    """(field, message) for every way ``record`` breaks the schema; empty when it is valid."""
    errors = sorted(_validator().iter_errors(record), key=lambda e: [str(p) for p in e.absolute_path])
    out = []
    for err in errors:
        message = err.message
        if len(message) > 160:
            message = message[:157] + "..."
        out.append((field_path(err), message))
    return out
