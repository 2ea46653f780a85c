"""The training budget of ``fit``: caps given per run, and the meter that enforces them.

Everything a scorer does with the model inside ``fit`` goes through its ``ModelAccess`` and is
metered there (``access.fitting(meter)``): forward tokens (every token a forward pass reads,
virtual prompt tokens included), backward tokens (tokens whose activations are
back-propagated), training steps (optimizer updates) and wall time since ``fit`` began. A call
that would take any count past its cap is refused before it runs, with one line naming the
count, the cap and the option that raises it; the wall time is checked at every call and
when ``fit`` returns. The caps apply to each fit scorer of a run separately.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields

from ..errors import MembenchError

OPTION = "--fit-budget"


@dataclass(frozen=True)
class FitBudget:
    """Caps on one scorer's ``fit`` (defaults: generous for the demo and for the MIA-Tuner
    protocol on WikiMIA-24 with a 7B target on one GPU; lower them to keep CI runs short)."""

    steps: int = 2000
    forward_tokens: int = 50_000_000
    backward_tokens: int = 25_000_000
    seconds: float = 4 * 3600.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def parse(cls, text: str | None) -> FitBudget:
        """``steps=200,forward_tokens=2e6,seconds=600`` (any subset; the rest default)."""
        if not text:
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values: dict = {}
        for item in text.split(","):
            if not item.strip():
                continue
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or key not in known:
                raise MembenchError(f"{OPTION}: '{item.strip()}' is not one of {', '.join(f'{k}=N' for k in known)}",
                                    f"e.g. {OPTION} steps=500,forward_tokens=5e6,seconds=900")
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not number > 0 or number == float("inf"):
                raise MembenchError(f"{OPTION}: {key} must be a positive number, got {value.strip()!r}",
                                    f"e.g. {OPTION} {key}=1000")
            values[key] = number if key == "seconds" else int(number)
        return cls(**values)


class BudgetExceeded(MembenchError):
    """A fit went past one of its caps: nothing of the run is published."""


class FitMeter:
    """Counts one ``fit``'s use of the model against a ``FitBudget``."""

    COUNTS = ("steps", "forward_tokens", "backward_tokens")

    def __init__(self, budget: FitBudget, scorer: str, clock=time.monotonic):
        self.budget = budget
        self.scorer = scorer
        self.clock = clock
        self.started = clock()
        self.counts = {k: 0 for k in self.COUNTS}

    @property
    def seconds(self) -> float:
        return self.clock() - self.started

    def _exceeded(self, what: str, value, cap) -> BudgetExceeded:
        shown = f"{value:,.1f} s" if what == "seconds" else f"{value:,}"
        cap_shown = f"{cap:,.0f} s" if what == "seconds" else f"{cap:,}"
        return BudgetExceeded(
            f"scorer {self.scorer} exceeded its fit budget: {what.replace('_', ' ')} would reach {shown}, "
            f"over the cap of {cap_shown}; nothing was published",
            f"raise it with {OPTION} {what}=N, or train less (fewer epochs, shorter prompts, a smaller subset)",
        )

    def check_time(self) -> None:
        if self.seconds > self.budget.seconds:
            raise self._exceeded("seconds", self.seconds, self.budget.seconds)

    def charge(self, *, forward_tokens: int = 0, backward_tokens: int = 0, steps: int = 0) -> None:
        """Count a call before it runs; refuse it when any count would pass its cap."""
        self.check_time()
        ask = {"steps": steps, "forward_tokens": forward_tokens, "backward_tokens": backward_tokens}
        for what, amount in ask.items():
            cap = getattr(self.budget, what)
            if self.counts[what] + amount > cap:
                raise self._exceeded(what, self.counts[what] + amount, cap)
        for what, amount in ask.items():
            self.counts[what] += int(amount)

    def usage(self) -> dict:
        return {"training_steps": self.counts["steps"], "forward_tokens": self.counts["forward_tokens"],
                "backward_tokens": self.counts["backward_tokens"], "wall_seconds": round(self.seconds, 3)}
