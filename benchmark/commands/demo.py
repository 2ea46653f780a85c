"""`membench demo`: the whole job on the embedded demo, offline.

Builds the demo split and trains the demo target (both reused when present), runs the blind
baselines (the split's diagnostics), then scores every built-in feature-based attack from one
forward pass (each record with its excess over the best blind baseline), writes result files,
runs the publication gate over the results folder and builds the site. The attacks that need more than the cached statistics
(``attacks.MODEL_SCORERS``) run with ``membench run --scorer NAME``.
"""

from __future__ import annotations

from pathlib import Path

from .. import attacks, site, targets
from ..results import gate
from ..evaluate import RunSpec, run, run_blind
from . import table
from .run import summary_rows


def register(sub):
    p = sub.add_parser("demo", help="build the demo suite and target, evaluate, build the site")
    p.add_argument("--results-dir", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    p.add_argument("--out", type=Path, default=None, help="site output (default: leaderboard_site/build)")
    p.set_defaults(func=handle)


def handle(args) -> int:
    split_id, target_id = targets.DEMO_SPLIT, "demo/neox-tiny"
    spec = RunSpec.build(target_id, split_id, attacks.FEATURE_SCORERS, results_dir=args.results_dir)
    results_dir = spec.results_dir
    print(f"[1/4] demo target (trained on the members of {split_id}; reused when present)")
    path = targets.ensure_demo_target()
    print(f"      {path}")
    # Diagnostics first, so that every attack record carries its excess over the best blind
    # baseline (the evaluator reads <results>/_diagnostics/<split>.json).
    print("[2/4] diagnostics: blind baselines (no model access, out-of-fold); best one shown")
    blind = run_blind(split_id, results_dir=results_dir)
    print(f"[3/4] scoring {split_id} on {target_id}: {', '.join(attacks.FEATURE_SCORERS)}")
    records = run(spec).records
    print(table(summary_rows([blind] + records), ["scorer", "AUC", "95% CI", "TPR@1%FPR", "n"]))
    print("      TPR@1%FPR: largest TPR among ROC points with FPR <= 1%")
    print("[4/4] publication gate (recomputes every record from its scores and the labels), then the site")
    gate.publish(results_dir)
    index = site.build(results_dir, args.out or site.DEFAULT_OUT)
    print(f"leaderboard written: {index}")
    print(f"more attacks on the same target: membench run --target {target_id} --split {split_id} "
          + " ".join(f"--scorer {name}" for name in attacks.MODEL_SCORERS))
    return 0
