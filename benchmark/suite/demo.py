"""The demo split: real English text every Python install carries, randomly assigned.

Text comes from ``pydoc_data.topics`` (the language reference topics that ``help()`` shows).
Each topic's words are cut into consecutive passages whose lengths are drawn uniformly from
32 to 256 words; passages are shuffled with a fixed seed and assigned 40% members, 40%
non-members and 20% to a reference pool (non-member text outside the split, for reference
models and prefixes). Random assignment means members and non-members come from one
distribution, so a blind classifier should sit at chance.

The text depends on the Python version (pydoc_data changes between releases), so the
manifest records the version it was cut from.

A private split (``seed: secret`` in the registry) draws its seed at random the first time it
is built and keeps it in ``home.secret_file`` (mode 0600, under MEMBENCH_HOME): the manifest
records only that the seed is secret.
"""

from __future__ import annotations

import re

import numpy as np

from ..home import secret_file

MIN_WORDS, MAX_WORDS = 32, 256
_RULE = re.compile(r"^\s*[*=\-~^]{3,}\s*$")


def _topic_words(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not _RULE.match(ln)]
    return " ".join(lines).split()


def passages(seed: int) -> list[str]:
    """All passages, in a deterministic order, before assignment."""
    from pydoc_data import topics

    rng = np.random.default_rng(seed)
    out: list[str] = []
    for name in sorted(topics.topics):
        words = _topic_words(topics.topics[name])
        start = 0
        while True:
            length = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
            chunk = words[start : start + length]
            if len(chunk) < MIN_WORDS:
                break
            out.append(" ".join(chunk))
            start += length
    return out


def build(seed: int) -> dict[str, list[str]]:
    """Members, non-members and the reference pool for the demo split."""
    texts = list(dict.fromkeys(passages(seed)))  # drop exact repeats, keep order
    order = np.random.default_rng(seed + 1).permutation(len(texts))
    n_class = int(0.4 * len(texts))
    pick = lambda idx: [texts[i] for i in idx]  # noqa: E731
    return {
        "members": pick(order[:n_class]),
        "nonmembers": pick(order[n_class : 2 * n_class]),
        "pool": pick(order[2 * n_class :]),
    }


def secret_seed(split_id: str) -> int:
    """The secret seed of a private split, drawn (and kept) on first use."""
    import os
    import secrets

    path = secret_file(f"{split_id}.seed")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return int(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{secrets.randbits(62)}\n")
    return int(path.read_text().strip())
