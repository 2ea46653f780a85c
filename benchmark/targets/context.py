"""Context rules: what is scored of a text longer than the model's context.

A text of n tokens (the tokenizer's own special tokens included) on a model of context L:

- ``truncate-head`` (the default): the first L tokens are the input; tokens 2..L are scored,
  the rest of the text is not (the sample is flagged *truncated*).
- ``sliding-window`` (MIMIR's rule, ``mimir.models.Model.get_probabilities``): every token
  after the first is scored, in overlapping windows of L tokens with stride s = L // 2:
  window m scores tokens [m s, min((m + 1) s, n)) given the context that starts at token
  max((m + 1) s - L, 0). Windows that share a start are one forward row (a causal model gives
  each token the same context either way), so a text that fits the context is one row,
  exactly as under ``truncate-head``, and a longer one costs about 2 n tokens of forward work.

The rule is part of every feature-cache key and of every result record.
"""

from __future__ import annotations

from ..errors import MembenchError

TRUNCATE_HEAD = "truncate-head"
SLIDING_WINDOW = "sliding-window"
CONTEXT_RULES = {
    TRUNCATE_HEAD: "the first max_length tokens are scored; the rest of a longer text is dropped "
    "(the sample is flagged truncated)",
    SLIDING_WINDOW: "MIMIR's rule: every token is scored, in windows of max_length tokens with "
    "stride max_length // 2 (each token sees at least the previous stride tokens)",
}
CONTEXT_RULE = TRUNCATE_HEAD  # the default


def check_rule(rule: str) -> str:
    if rule not in CONTEXT_RULES:
        raise MembenchError(f"unknown context rule '{rule}'", f"valid choices: {', '.join(CONTEXT_RULES)}")
    return rule


def windows(n_tokens: int, max_length: int, rule: str = CONTEXT_RULE) -> list[tuple[int, int, int]]:
    """The forward rows of one text: ``(start, end, first_scored)`` in token indices of the
    text; the row is tokens [start, end) and scores the tokens at indices first_scored..end-1
    (each predicted from the tokens before it in the row). Every scored index appears once, in
    order."""
    check_rule(rule)
    if max_length < 2:
        raise MembenchError(f"a context of {max_length} tokens scores nothing", "use a model with a context of 2 or more")
    if rule == TRUNCATE_HEAD or n_tokens <= max_length:
        return [(0, min(n_tokens, max_length), 1)]
    stride = max_length // 2
    rows: list[list[int]] = []
    for first in range(0, n_tokens, stride):
        start = max(first + stride - max_length, 0)
        end = min(first + stride, n_tokens)
        if rows and rows[-1][0] == start:  # same context start: extend that row
            rows[-1][1] = end
        else:
            rows.append([start, end, max(first, 1)])
    return [tuple(r) for r in rows]
