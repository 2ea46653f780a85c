"""The published JSON Schema of a result record, generated from the record models.

``result.schema.json`` lives beside this module and is copied into the built site at
``schema/result.schema.json``. It is generated from ``records.Record`` (``membench results
schema --write``); a test checks that the committed file is current. Validation itself is by
the models (``records.problems``); errors name the field as a dotted path, e.g.
``metrics.auc_ci95.1``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .records import json_schema, problems

SCHEMA_FILE = Path(__file__).with_name("result.schema.json")


def render() -> str:
    """The schema file's text as the models define it now."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema() -> bool:
    """Rewrite ``result.schema.json`` from the models; True when it changed."""
    text = render()
    if SCHEMA_FILE.is_file() and SCHEMA_FILE.read_text(encoding="utf-8") == text:
        return False
    SCHEMA_FILE.write_text(text, encoding="utf-8")
    schema.cache_clear()
    return True


@lru_cache(maxsize=1)
def schema() -> dict:
    """The published schema (the committed file)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_errors(record) -> list[tuple[str, str]]:
    """(field, message) for every way ``record`` breaks the record model; empty when it is valid."""
    return problems(record)
