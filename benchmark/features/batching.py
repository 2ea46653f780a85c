"""The token budget of a forward batch (rows x longest row), adapted to the device's memory.

Texts are sorted longest first and cut into batches of at most ``tokens`` padded tokens. On a
device that can report its memory (a ``MemoryProbe``: CUDA through ``torch.cuda``), the budget
starts at the requested value and then follows what the device actually has:

- **probe**: each batch's peak memory above what was allocated before it, divided by its padded
  tokens, estimates the bytes one token costs (activations, attention, statistics chunks);
- **grow**: the next budget is what ``HEADROOM`` of the available memory holds at that cost,
  at most ``GROWTH`` times the current budget per step and never above a budget that ran out
  of memory before (nor ``ceiling``);
- **halve**: a batch that runs out of memory halves the budget (and caps the rows at half the
  failed batch); that budget becomes the ceiling.

Without a probe (CPU) the budget stays where it was set, except for halving. Scores do not
depend on the budget: statistics are computed row by row (``forward.batch_stats``).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

HEADROOM = 0.85  # of the available memory a batch may use
GROWTH = 4.0  # at most this factor per step
MIN_TOKENS = 64


class MemoryProbe:
    """What a device says about its memory, in bytes (see ``CudaProbe``)."""

    def allocated(self) -> int:
        raise NotImplementedError

    def reset_peak(self) -> None:
        raise NotImplementedError

    def peak(self) -> int:
        raise NotImplementedError

    def available(self) -> int:
        """Bytes a new allocation could still get (free on the device plus cached by the allocator)."""
        raise NotImplementedError


class CudaProbe(MemoryProbe):
    def __init__(self, device: str):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def allocated(self) -> int:
        return int(self.torch.cuda.memory_allocated(self.device))

    def reset_peak(self) -> None:
        self.torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int:
        return int(self.torch.cuda.max_memory_allocated(self.device))

    def available(self) -> int:
        free, _ = self.torch.cuda.mem_get_info(self.device)
        cached = self.torch.cuda.memory_reserved(self.device) - self.torch.cuda.memory_allocated(self.device)
        return int(free + cached)


def probe_for(device: str) -> MemoryProbe | None:
    return CudaProbe(device) if str(device).startswith("cuda") else None


class TokenBudget:
    def __init__(self, tokens: int, probe: MemoryProbe | None = None, *, ceiling: int | None = None,
                 max_rows: int | None = None):
        self.tokens = max(int(tokens), 1)
        self.probe = probe
        self.ceiling = ceiling
        self.max_rows = max_rows
        self.history: list[dict] = []  # one entry per change: for logs and `membench bench`
        self._base = 0

    def before_batch(self) -> None:
        if self.probe is not None:
            self._base = self.probe.allocated()
            self.probe.reset_peak()

    def after_batch(self, padded_tokens: int) -> None:
        """Grow (or shrink) the budget from what the last batch cost."""
        if self.probe is None or padded_tokens <= 0:
            return
        per_token = max(self.probe.peak() - self._base, 1) / padded_tokens
        fit = int(HEADROOM * self.probe.available() / per_token)
        new = min(fit, int(self.tokens * GROWTH))
        if self.ceiling is not None:
            new = min(new, self.ceiling)
        new = max(new, MIN_TOKENS)
        if new != self.tokens:
            self.history.append({"event": "grow" if new > self.tokens else "shrink", "from": self.tokens, "to": new,
                                 "bytes_per_token": round(per_token)})
            log.info("token budget %d -> %d (%.0f bytes per token measured)", self.tokens, new, per_token)
            self.tokens = new

    def halve(self, failed_rows: int, failed_tokens: int) -> None:
        """After an out-of-memory error on a batch of ``failed_rows`` rows / ``failed_tokens`` tokens."""
        new = max(min(self.tokens, failed_tokens) // 2, 1)
        self.history.append({"event": "halve", "from": self.tokens, "to": new})
        self.tokens = new
        self.ceiling = new if self.ceiling is None else min(self.ceiling, new)
        self.max_rows = max(1, failed_rows // 2) if self.max_rows is None else min(self.max_rows, max(1, failed_rows // 2))
