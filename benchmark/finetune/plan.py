"""What ``membench finetune RECIPE`` will do, before it does it: the dependency chain.

A recipe whose base is another recipe (``base: ft/<id>``) builds that base first, and a base
that is a demo target trains the demo target first; a reader should know this before a long
training starts under another name. ``chain`` lists the steps, base first; each step says
whether it is built in this home (then reused when its inputs are unchanged) or will be
trained, and how long it took the last time it ran in this home (``progress.last_timing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import targets
from ..errors import MembenchError
from ..progress import duration, last_timing
from .recipe import Recipe


@dataclass
class Step:
    target: str  # the target this step builds
    what: str  # in words
    built: bool  # already built in this home (a recipe's target: registered from this recipe)
    last_seconds: float | None  # how long it took the last time here

    def line(self, number: int, total: int) -> str:
        state = "built here (reused if its inputs are unchanged)" if self.built else "to train"
        took = (f"took {duration(self.last_seconds)} last time here" if self.last_seconds is not None
                else duration(None))
        return f"  {number}/{total} {self.target}: {self.what} - {state}; {took}"


def _recipe_step(recipe: Recipe) -> Step:
    spec = targets.targets().get(recipe.target_id)
    built = (spec is not None and spec.extra.get("recipe", {}).get("sha256") == recipe.sha256
             and bool(spec.local_path) and Path(spec.local_path).is_dir())
    return Step(recipe.target_id, f"{recipe.kind} recipe {recipe.id}", built, last_timing(f"target {recipe.target_id}"))


def chain(recipe: Recipe, table: dict[str, Recipe]) -> list[Step]:
    """The steps ``build(recipe)`` takes, the first one first (the recipe itself last)."""
    steps: list[Step] = []
    seen: set[str] = set()
    current: Recipe | None = recipe
    while current is not None:
        if current.id in seen:
            raise MembenchError(f"recipe {recipe.id}: its bases form a loop through {current.id}",
                                "make one of them start from a registry target")
        seen.add(current.id)
        steps.insert(0, _recipe_step(current))
        base = current.base or ""
        nxt = table.get(base[3:]) if base.startswith("ft/") else None
        if nxt is None and base and current.kind != "pretrain":
            spec = targets.targets().get(base)  # a registry id only: a model folder is not looked into here
            if spec is not None and spec.family == "demo":
                steps.insert(0, Step(spec.id, "the demo target, trained by membench", targets.demo_target_built(spec.id),
                                     last_timing(f"target {spec.id}")))
        current = nxt
    return steps


def chain_text(recipe: Recipe, table: dict[str, Recipe]) -> str:
    steps = chain(recipe, table)
    lines = [f"finetune {recipe.id}: {len(steps)} step(s), in this order"]
    lines += [step.line(i, len(steps)) for i, step in enumerate(steps, 1)]
    return "\n".join(lines)
