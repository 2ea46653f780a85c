"""`membench diagnose SPLIT...`: blind baselines, without the model."""

from __future__ import annotations

from . import emit, table


def register(sub):
    p = sub.add_parser("diagnose", help="blind baselines: is the split separable without the model?")
    p.add_argument("splits", nargs="+", metavar="SPLIT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def handle(args) -> int:
    from .. import diagnostics, suite

    specs = suite.match_splits(args.splits)
    out = {}
    for spec in specs:
        split = suite.ensure(spec.id)
        uids = split.samples["uid"].tolist()
        labels = split.labels().reindex(uids).to_numpy()
        diag = diagnostics.diagnose(split.samples["text"].tolist(), labels)
        diag.pop("scores")
        out[spec.id] = diag
    rows = [
        [sid, f"{d['blind_auc']:.3f}", f"[{d['blind_auc_ci95'][0]:.3f}, {d['blind_auc_ci95'][1]:.3f}]"]
        for sid, d in out.items()
    ]
    emit(args, out, table(rows, ["split", "blind AUC", "95% CI"]))
    return 0
