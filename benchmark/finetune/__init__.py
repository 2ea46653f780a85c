"""The fine-tuned track: recipes (``recipes.yaml``), the trainer, the targets and splits they make.

Public face:

- ``recipes(file=None)``, ``get_recipe(id, file=None)``, ``Recipe``: the registry (plus a
  researcher's own recipe file in the same format);
- ``finetune(id, ...)``: train a recipe's target (resumable), register ``ft/<id>`` and
  ``finetune/<id>``; for a ``generated`` recipe also compare base and fine-tuned model on the
  base's pretraining split (records with a ``generated_data`` block);
- ``finetune_like(target_id, texts, new_id)``: fine-tune the base of a fine-tuned target with
  that target's recipe on other texts (e.g. SPV-MIA's self-prompt reference), one call;
- ``read_manifest(target_id)``: what a fine-tuned target was trained on, exactly.

Nothing here imports torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from .build import finetune_like, read_manifest
from .recipe import Recipe, derive, get_recipe, recipes


def finetune(recipe_id: str, *, recipes_file: str | Path | None = None, device: str = "cpu", replace: bool = False,
             progress: bool = True, results_dir: Path | None = None) -> dict:
    """Build recipe ``recipe_id`` (its base first, when that is a recipe too) and return a
    summary; a ``generated`` recipe's summary has ``report``, the before/after comparison
    written into ``results_dir`` (default ``$MEMBENCH_HOME/results``)."""
    from .build import build

    table = recipes(recipes_file)
    recipe = get_recipe(recipe_id, recipes_file)
    out = build(recipe, table, device=device, replace=replace, progress=progress)
    if recipe.kind == "generated":
        from ..home import results_dir as default_results
        from . import report

        out["report"] = report.compare(recipe, table, results_dir=Path(results_dir or default_results()),
                                       device=device, progress=progress)
    return out


__all__ = ["Recipe", "derive", "finetune", "finetune_like", "get_recipe", "read_manifest", "recipes"]
