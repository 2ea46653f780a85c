"""The harness side of a sandboxed scorer's capabilities: the model stays here, metered.

``CapabilityServer.serve(method, kwargs, deadline)`` answers one call from the sandbox's
``ProxyAccess`` with the same in-process ``ModelAccess`` the built-in attacks use
(``benchmark.evaluate.MeteredModelAccess``, granted the declared capabilities). What a hostile
caller needs on top is here and in ``wire.METHODS`` (the one table of methods, their
capability, argument types and caps): argument checks, a per-run budget of texts, service in
pieces with the run's deadline checked between pieces (a long call is cut at the deadline,
not served to its end), ``generate`` metered for the prompt tokens it forwards as well as the
tokens it generates, and conversion to plain arrays for the wire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..features import TokenStats
from . import wire


class Refused(Exception):
    """A call the harness will not serve; the message goes back to the scorer."""


class CallTimeout(Exception):
    """The run's deadline passed while a call was being served."""


@dataclass(frozen=True)
class Budget:
    max_texts_per_run: int = 1_000_000


def _concat_stats(parts):
    if len(parts) == 1:
        return parts[0]
    shift = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
    offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + s for p, s in zip(parts, shift)])
    values = {k: np.concatenate([p.values[k] for p in parts]) for k in parts[0].values}
    ids = None
    if all(p.token_ids is not None for p in parts):
        ids = np.concatenate([p.token_ids for p in parts])
    return TokenStats(offsets=offsets.astype(np.int64), n_input_tokens=np.concatenate([p.n_input_tokens for p in parts]),
                      values=values, token_ids=ids)


class CapabilityServer:
    def __init__(self, access, budget: Budget = Budget()):
        self.access = access  # a MeteredModelAccess, granted the declared capabilities
        self.budget = budget
        self.texts_served = 0
        self.prompt_tokens = 0
        self.calls: dict[str, int] = {}

    @property
    def usage(self) -> dict:
        usage = dict(self.access.usage)
        if self.prompt_tokens:  # generate forwards its prompts: metered as forward tokens
            usage["target_forward_tokens"] = usage.get("target_forward_tokens", 0) + self.prompt_tokens
        return {**usage, "texts_served": self.texts_served, "calls": dict(self.calls)}

    def serve(self, method: str, kwargs: dict, deadline: float) -> tuple[dict, dict]:
        """(reply fields, reply arrays); raises ``Refused`` (bad arguments, budget spent) or
        ``CallTimeout``."""
        spec = wire.METHODS[method]
        try:
            args = wire.check_call(method, kwargs)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        items = args[spec.chunk] if spec.chunk else []
        if self.texts_served + len(items) > self.budget.max_texts_per_run:
            raise Refused(f"the run's budget of {self.budget.max_texts_per_run} texts is spent")
        self.calls[method] = self.calls.get(method, 0) + 1
        fn = getattr(self.access, method)
        pieces = []
        step = spec.piece
        for lo in range(0, max(len(items), 1), step):
            if time.monotonic() >= deadline:
                raise CallTimeout(f"the run's deadline passed while serving {method}()")
            piece = dict(args, **({spec.chunk: items[lo : lo + step]} if spec.chunk else {}))
            if method == "generate":
                self.prompt_tokens += sum(len(ids) for ids in self.access.tokenize(piece["prompts"]))
            pieces.append(fn(*(piece[name] for name, _ in spec.args)))
            self.texts_served += len(piece.get(spec.chunk, ()))
        if spec.reply == "stats":
            return {}, wire.stats_to_arrays(_concat_stats(pieces))
        if spec.reply == "floats":
            return {}, {"values": np.concatenate([np.asarray(p, np.float64) for p in pieces])}
        if spec.reply == "strings":
            return {"values": [str(t) for p in pieces for t in p]}, {}
        if spec.reply == "string_lists":  # sample: the samples of each prompt
            return {"values": [[str(t) for t in row] for p in pieces for row in p]}, {}
        return {"values": [[int(i) for i in row] for p in pieces for row in p]}, {}
