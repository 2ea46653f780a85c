"""`membench calibration`: a split's calibration subsets, and records on their evaluated rest."""

from __future__ import annotations

from pathlib import Path

from .. import results, suite
from ..home import results_dir
from . import emit, table


def register(sub):
    p = sub.add_parser("calibration", help="calibration subsets for trainable scorers, and records on their rest")
    ss = p.add_subparsers(dest="calibration_command", metavar="SUBCOMMAND")
    ls = ss.add_parser(
        "list", help="the calibration subsets a split declares, with their sizes once it is materialized",
        description="Each split has the registry's default calibration subsets (top of splits.yaml), overridden "
        "by its own `calibration:` entry. A subset takes `fraction` of each class, drawn with `seed`, keeping "
        "near-duplicates (same normalized text, or a shared word n-gram) on one side.")
    ls.add_argument("split", metavar="SPLIT")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)
    d = ss.add_parser(
        "derive", help="recompute every record of a split on a subset's evaluated rest (no model run)",
        description="For every whole-split record of SPLIT in the results folder (any target and kind), writes "
        "its record on the evaluated rest of each SUBSET, from its stored per-sample scores, so that a "
        "trainable scorer is shown beside every other scorer on exactly the same texts. `membench run` does "
        "this by itself for the subsets in play; run it after adding records some other way (submissions).")
    d.add_argument("split", metavar="SPLIT")
    d.add_argument("--subset", action="append", default=None, metavar="NAME",
                   help="repeatable (default: every subset some record of the split is already on)")
    d.add_argument("--results-dir", type=Path, default=None, help="default: $MEMBENCH_HOME/results")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=handle_derive)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def handle_list(args) -> int:
    spec = suite.get_split(args.split)
    split = suite.load(spec) if suite.is_materialized(spec.id) else None
    out = []
    for name, sub in suite.calibration.subsets(spec).items():
        entry = {**sub.as_dict()}
        if split is not None:
            chosen = suite.calibration.select(split, name)
            entry.update({"calibration": chosen.counts["calibration"], "rest": chosen.counts["rest"],
                          "n_calibration": len(chosen.calibration), "n_rest": len(chosen.rest),
                          "near_duplicate_components": chosen.counts["components_merged"],
                          "texts_in_them": chosen.counts["texts_in_merged_components"],
                          "calibration_sha256": chosen.calibration_sha256})
        out.append(entry)
    rows = [[e["name"], e["fraction"], e["seed"], e["ngram"],
             e.get("n_calibration", "-"), e.get("n_rest", "-"),
             f"{e['texts_in_them']} in {e['near_duplicate_components']}" if "texts_in_them" in e else "-"]
            for e in out]
    text = table(rows, ["subset", "fraction", "seed", "ngram", "calibrate", "evaluated", "near-duplicate texts"])
    if split is None:
        text += f"\n{spec.id} is not materialized: sizes appear after `membench suite fetch {spec.id}`"
    emit(args, {"split": spec.id, "subsets": out}, text)
    return 0


def handle_derive(args) -> int:
    split = suite.ensure(args.split)
    folder = args.results_dir or results_dir()
    names = args.subset or results.subsets_in(folder, split.id)
    for name in names:
        suite.calibration.subset_spec(split.spec, name)  # an unknown name: one line, before any work
    if not names:
        emit(args, {"split": split.id, "written": {}},
             f"no record of {split.id} in {folder} is on a calibration subset yet: nothing to derive "
             f"(name one with --subset NAME; `membench calibration list {split.id}`)")
        return 0
    written = {}
    for name in names:
        subset = suite.calibration.select(split, name)
        written[name] = [str(p) for p in results.derive_on_rest(folder, split, subset)]
    lines = [f"{name}: {len(paths)} record(s) of {split.id} written on the evaluated rest" for name, paths in written.items()]
    emit(args, {"split": split.id, "written": written}, "\n".join(lines))
    return 0
