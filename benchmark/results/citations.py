"""What the leaderboard says about scorers and datasets by hand: ``leaderboard_site/citations.yaml``
(paper names, short citations and BibTeX by scorer id; BibTeX by split family; membench's own
entry). Plain data: the publication gate reads the scorers' part into each record's display
block, the site the datasets' part and membench's entry."""

from __future__ import annotations

from functools import lru_cache

import yaml

from ..home import SITE_ROOT

CITATIONS = SITE_ROOT / "citations.yaml"


@lru_cache(maxsize=1)
def citations() -> dict:
    if not CITATIONS.is_file():
        return {}
    return yaml.safe_load(CITATIONS.read_text(encoding="utf-8")) or {}


def scorer_entry(scorer_id: str) -> dict:
    """The entry of a scorer id (``name``, ``cite``, ``bibtex``); empty when it has none."""
    entry = (citations().get("scorers") or {}).get(scorer_id)
    if isinstance(entry, str):
        return {"bibtex": entry}
    return entry if isinstance(entry, dict) else {}


def dataset_bibtex(family: str) -> str | None:
    entry = (citations().get("datasets") or {}).get(family)
    return entry.strip() if isinstance(entry, str) and entry.strip() else None


def membench_bibtex() -> str:
    return str(citations().get("membench") or "").strip()
