"""The harness side of a sandboxed scorer's capabilities: the model stays here, metered.

``CapabilityServer.serve(method, kwargs)`` answers one request from ``ProxyAccess`` (in the
sandbox) with the same in-process ``ModelAccess`` the built-in attacks use
(``benchmark.attacks.InProcessAccess``: it meters every call in ``usage`` and refuses
capabilities that were not granted). Here we add what a hostile caller needs on top: argument
checks, per-call and per-run budgets, and conversion to plain arrays for the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MembenchError
from . import protocol

# wire method -> capability that must be declared (None: granted with any model access)
METHODS = {
    "logprobs": "logprobs",
    "conditional_logprobs": "logprobs",
    "reference": "reference",
    "gradient_norms": "gradients",
    "generate": "generate",
    "tokenize": None,
}


@dataclass(frozen=True)
class Budget:
    max_texts_per_call: int = 4096
    max_texts_per_run: int = 1_000_000
    max_chars_per_text: int = 100_000
    max_new_tokens: int = 256


class CapabilityServer:
    def __init__(self, access, budget: Budget = Budget()):
        self.access = access  # a ModelAccess (InProcessAccess), granted the declared capabilities
        self.budget = budget
        self.texts_served = 0
        self.calls: dict[str, int] = {}

    @property
    def usage(self) -> dict:
        return {**self.access.usage, "texts_served": self.texts_served, "calls": dict(self.calls)}

    def _texts(self, kwargs, key="texts") -> list[str]:
        texts = kwargs.get(key)
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise MembenchError(f"'{key}' must be a list of strings")
        if len(texts) > self.budget.max_texts_per_call:
            raise MembenchError(f"at most {self.budget.max_texts_per_call} texts per call")
        if any(len(t) > self.budget.max_chars_per_text for t in texts):
            raise MembenchError(f"texts are limited to {self.budget.max_chars_per_text} characters")
        if self.texts_served + len(texts) > self.budget.max_texts_per_run:
            raise MembenchError(f"the run's budget of {self.budget.max_texts_per_run} texts is spent")
        self.texts_served += len(texts)
        return texts

    def serve(self, method: str, kwargs: dict) -> tuple[dict, dict]:
        if method not in METHODS:
            raise MembenchError(f"unknown capability method '{method}'")
        self.calls[method] = self.calls.get(method, 0) + 1
        a = self.access
        if method == "logprobs":
            return {}, protocol.stats_to_arrays(a.logprobs(self._texts(kwargs)))
        if method == "conditional_logprobs":
            prefix = kwargs.get("prefix")
            if not isinstance(prefix, str):
                raise MembenchError("'prefix' must be a string")
            return {}, protocol.stats_to_arrays(a.conditional_logprobs(prefix, self._texts(kwargs)))
        if method == "reference":
            return {}, protocol.stats_to_arrays(a.reference(self._texts(kwargs)))
        if method == "gradient_norms":
            return {}, {"norms": np.asarray(a.gradient_norms(self._texts(kwargs)), dtype=np.float64)}
        if method == "generate":
            n = kwargs.get("max_new_tokens")
            if not isinstance(n, int) or not 1 <= n <= self.budget.max_new_tokens:
                raise MembenchError(f"max_new_tokens must be an integer in 1..{self.budget.max_new_tokens}")
            return {"texts": a.generate(self._texts(kwargs, "prompts"), n)}, {}
        ids = a.tokenize(self._texts(kwargs))  # tokenize
        return {"ids": [list(map(int, row)) for row in ids]}, {}
