"""`membench diagnose`: blind baselines, duplicates, lengths, 13-gram overlap and a verdict,
without the model, for registered splits or any local file; grouped where membership is per
group; with ``--target``, the tokenizer baseline of each target's tokenizer."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics.verdict import explain
from . import emit, table


def register(sub):
    p = sub.add_parser(
        "diagnose",
        help="blind baselines and a verdict: is the split separable without the model?",
        description="Blind baselines (no model access, out-of-fold), duplicates, lengths, "
        "13-gram overlap and a verdict (clean / mild shift / shifted). For a split, also writes "
        "one blind-baseline result per baseline and the diagnostics JSON "
        "(<results-dir>/_diagnostics/ and $MEMBENCH_HOME/diagnostics/, read by `membench cards`).",
    )
    p.add_argument("splits", nargs="*", metavar="SPLIT", help="split ids or glob patterns")
    p.add_argument("--file", type=Path, help="a jsonl/json/csv/parquet file, a save_to_disk folder, "
                   "or a folder with member/ and nonmember/ folders of .txt files")
    p.add_argument("--config", help="the config (split) of a save_to_disk DatasetDict, e.g. WikiMIA_length32")
    p.add_argument("--text-field", help="text column (default: text, else input)")
    p.add_argument("--label-field", help="label column, 1 = member (default: label)")
    p.add_argument("--group-field", help="with --file: the column of the group membership was assigned by "
                   "(user, author, book, repository): folds never split a group, and figures are given per text "
                   "and per group (a split's own group column is used without this)")
    p.add_argument("--target", action="append", default=[], metavar="TARGET",
                   help="also the tokenizer baseline of this target's tokenizer (no model is loaded), saved in "
                   "the diagnostics JSON under tokenizer_baselines, keyed by tokenizer hash; repeat for several")
    p.add_argument("--save-as", metavar="SPLIT",
                   help="with --file: store the figures as the diagnostics of this registered split "
                   "(for its data card), recording the file they came from")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where split diagnoses write result records (default: $MEMBENCH_HOME/results)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes for the baselines' folds (default: every core for splits "
                   "large enough to gain from it, else 1); the figures do not depend on it")
    p.add_argument("--json", action="store_true", help="print the diagnostics as JSON (one object "
                   "with a top-level blind_auc; several splits: an object keyed by split id)")
    p.set_defaults(func=handle)


def _fmt_ci(ci) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _group_cell(b: dict) -> str:
    g = b.get("group") or {}
    return f"{g['auc']:.3f} {_fmt_ci(g['auc_ci95'])}" if g.get("auc") is not None else "–"


def render(name: str, d: dict, where: str | None = None) -> str:
    grouped = bool(d.get("cross_validation", {}).get("grouped"))
    rows = []
    shown = [(base, b, b["description"]) for base, b in d["baselines"].items()]
    shown += [(b.get("name", "blind_tokenizer"), b, f"tokenizer {sha[:12]} of {', '.join(b.get('targets') or ['?'])}")
              for sha, b in (d.get("tokenizer_baselines") or {}).items()]
    for base, b, what in shown:
        t = b["tpr_at_1pct_fpr"]
        rows.append([base, f"{b['auc']:.3f}", _fmt_ci(b.get("auc_ci95_groups_resampled") or b["auc_ci95"]),
                     *([_group_cell(b)] if grouped else []),
                     f"{t['value']:.3f}" if t["resolvable"] else "unresolvable", what])
    c, dup, ln, ov = d["counts"], d["duplicates"], d["lengths"], d["ngram_overlap"]
    head = ["baseline", "AUC (texts)", "95% CI", *(["AUC (groups)"] if grouped else []), "TPR@1%FPR", "model"]
    lines = [
        f"{name}: {c['analyzed_members']} members / {c['analyzed_nonmembers']} non-members analyzed "
        f"({c['dropped_rows']} duplicate or conflicting rows dropped)"
        + (f"; {c['analyzed_groups']} groups, folds drawn over groups" if grouped else ""),
        table(rows, head),
        f"blind AUC (texts) {d['blind_auc']:.3f} {_fmt_ci(d['blind_auc_ci95'])} ({d['blind_best']})  "
        f"verdict: {d['verdict'].upper()}",
        *([f"blind AUC (groups) {d['blind_auc_group']:.3f} {_fmt_ci(d['blind_auc_group_ci95'])} "
           f"({d['blind_best_group']})  verdict over groups: {d['verdict_group'].upper()}"]
          if d.get("blind_auc_group") is not None else []),
        *([f"units: {d['unit_note']}"] if grouped else []),
        f"duplicates: {dup['exact_duplicate_rows']} exact rows, {dup['near_duplicate_pairs']} near pairs "
        f"({dup['near_duplicate_pairs_across_classes']} across classes)",
        f"words, median: members {ln['members']['words']['median']:.0f}, non-members "
        f"{ln['nonmembers']['words']['median']:.0f} (longest {ln['longest_words']}; word-count AUC "
        f"{ln['word_count_auc']:.3f})",
        f"13-gram overlap: {ov['nonmembers_sharing_share']:.1%} of non-members share a 13-gram with a member",
        f"verdict rule: {d['verdict_rule']}",
    ]
    implies, nxt = explain(d["verdict"], where or f"--split {name}")  # what the verdict means for attack numbers, what next
    lines += [f"what it means: {implies}", f"next: {nxt}"]
    return "\n".join(lines)


def target_tokenizers(target_ids) -> list:
    """The tokenizer of each target (loaded alone, no model), one entry per tokenizer hash."""
    from .. import diagnostics, targets

    by_hash: dict = {}
    for target_id in target_ids:
        handle = targets.load_target(target_id)
        sha = handle.tokenizer_hash
        if sha in by_hash:
            by_hash[sha] = (by_hash[sha][0], by_hash[sha][1] + (handle.id,))
        else:
            by_hash[sha] = (handle.tokenizer, (handle.id,))
    return [diagnostics.TargetTokenizer(sha, tok, ids) for sha, (tok, ids) in by_hash.items()]


def handle(args) -> int:
    from .. import diagnostics, suite
    from ..errors import MembenchError
    from ..home import results_dir as default_results_dir

    if bool(args.splits) == bool(args.file):
        raise MembenchError("give split ids or --file PATH (one of the two)",
                            "e.g. `membench diagnose demo/pydoc` or `membench diagnose --file data.jsonl`")
    if args.jobs is not None and args.jobs < 1:
        raise MembenchError(f"--jobs must be at least 1 (got {args.jobs})", "e.g. --jobs 2, or leave it out")
    if args.save_as and not args.file:
        raise MembenchError("--save-as goes with --file", "a split's own diagnosis is saved already")
    if args.group_field and not args.file:
        raise MembenchError("--group-field goes with --file",
                            "a split's groups come from its own group column (registry fields.group)")
    if args.file:
        if args.save_as:
            suite.get_split(args.save_as)  # a typo fails before the work
        texts, labels, info = diagnostics.load_labelled(
            args.file, text_field=args.text_field, label_field=args.label_field, config=args.config,
            group_field=args.group_field)
        groups = info.pop("groups", None)
        diag = diagnostics.diagnose(texts, labels, groups=groups, tokenizers=target_tokenizers(args.target),
                                    subject=info, where=str(args.file), progress=not args.json, n_jobs=args.jobs)
        if args.save_as:
            diag["subject"]["saved_as_split"] = args.save_as
            diagnostics.save(diag, args.save_as)
        out = diagnostics.public(diag)
        emit(args, out, render(str(args.file), out, where=f"--file {args.file}"))
        return 0
    results_dir = args.results_dir or default_results_dir()
    specs = suite.match_splits(args.splits)
    tokenizers = target_tokenizers(args.target)
    out = {}
    for spec in specs:
        diagnostics.write_blind_results(spec.id, results_dir, tokenizers=tokenizers, progress=not args.json,
                                        n_jobs=args.jobs)
        out[spec.id] = diagnostics.load_saved(spec.id)
    payload = next(iter(out.values())) if len(out) == 1 else out
    emit(args, payload, "\n\n".join(render(k, v) for k, v in out.items()))
    return 0
