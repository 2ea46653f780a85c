"""The fine-tuned track: recipes (``recipes.yaml``), the trainer, the targets and splits they make.

Public face:

- ``recipes(file=None)``, ``get_recipe(id, file=None)``, ``Recipe``: the registry (plus a
  researcher's own recipe file in the same format);
- ``finetune(id, ...)``: train a recipe's target (resumable), register ``ft/<id>`` and
  ``finetune/<id>``. For a ``generated`` recipe, ``benchmark.evaluate.finetune_and_compare``
  also compares base and fine-tuned model on the base's pretraining split (records with a
  ``generated_data`` block): it runs attacks, so it stands in the evaluator and is not part of
  this face, which attacks may use (SPV-MIA's reference is ``finetune_like``);
- ``finetune_like(target_id, texts, new_id)``: fine-tune the base of a fine-tuned target with
  that target's recipe on other texts (e.g. SPV-MIA's self-prompt reference), one call;
- ``shadow_models(target_id, texts, n)``: n shadow fine-tunes with the target's recipe, each on
  its half of ``texts`` (every text in exactly half of them), cached like any built target (the
  reference attacks LiRA and RMIA, through ``ModelAccess.shadow_stats``);
- ``read_manifest(target_id)``: what a fine-tuned target was trained on, exactly.

Nothing here imports torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from .build import finetune_like, read_manifest, shadow_models
from .recipe import Recipe, derive, get_recipe, recipes


def finetune(recipe_id: str, *, recipes_file: str | Path | None = None, device: str = "cpu", replace: bool = False,
             progress: bool = True) -> dict:
    """Build recipe ``recipe_id`` (its base first, when that is a recipe too) and return a
    summary."""
    from .build import build

    return build(get_recipe(recipe_id, recipes_file), recipes(recipes_file), device=device, replace=replace,
                 progress=progress)


__all__ = ["Recipe", "derive", "finetune", "finetune_like", "get_recipe", "read_manifest", "recipes", "shadow_models"]
