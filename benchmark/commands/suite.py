"""`membench suite ...`: the split registry, materialization, verification and the lock file."""

from __future__ import annotations

import json

from .. import suite
from ..errors import MembenchError
from ..suite import lock as lockfile, split_dir
from . import emit, table


def register(sub):
    p = sub.add_parser("suite", help="list, fetch, verify, show and freeze splits")
    ss = p.add_subparsers(dest="suite_command", metavar="SUBCOMMAND")

    ls = ss.add_parser("list", help="every split with family, track, size and status (not fetched, fetched, "
                       "verified, corrupt)")
    ls.add_argument("patterns", nargs="*", metavar="SPLIT", help="glob patterns (default: all)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)

    fe = ss.add_parser("fetch", help="materialize splits from the Hub or a local copy")
    fe.add_argument("patterns", nargs="+", metavar="SPLIT", help="split ids or glob patterns, e.g. 'wikimia/*'")
    fe.add_argument("--from-dir", metavar="DIR", help="a local copy in the Hub layout or as jsonl/csv/parquet/save_to_disk "
                    "(default: download from the Hub at the pinned revision)")
    fe.add_argument("--force", action="store_true", help="materialize again even if already fetched")
    fe.add_argument("--json", action="store_true")
    fe.set_defaults(func=handle_fetch)

    ad = ss.add_parser(
        "add", help="register your own labelled file as a split (under $MEMBENCH_HOME, not the package)",
        description="Registers a jsonl/json/csv/parquet file or a save_to_disk folder with a text column and "
        "a 0/1 label column (1 = member) as the split NAME, kept under $MEMBENCH_HOME/registry, and "
        "materializes it like a registry split (opaque uids, exact duplicates dropped and counted, manifest, "
        "SHA-256 of every file, content hash). Then `membench diagnose NAME` gives its blind baselines and "
        "`membench run --split NAME` scores it.")
    ad.add_argument("name", metavar="NAME", help="the new split id, e.g. mylab/forum-2024")
    ad.add_argument("--file", required=True, metavar="PATH", help="the labelled file or save_to_disk folder")
    ad.add_argument("--text-field", help="text column (default: text, else input)")
    ad.add_argument("--label-field", help="label column, 1 = member, 0 = non-member (default: label)")
    ad.add_argument("--config", help="the split of a save_to_disk DatasetDict (default: none; needed for a DatasetDict)")
    ad.add_argument("--valid-for", nargs="+", default=[], metavar="TARGET",
                    help="targets (ids or glob patterns such as 'pythia-*') for which the labels are membership "
                    "ground truth (default: none; `membench run` then needs --allow-invalid)")
    ad.add_argument("--track", default="custom", help="leaderboard track the split belongs to")
    ad.add_argument("--description", help="one line about the data (default: names the file)")
    ad.add_argument("--replace", action="store_true", help="replace a split registered under the same name")
    ad.add_argument("--json", action="store_true")
    ad.set_defaults(func=handle_add)

    rm = ss.add_parser("remove", help="forget a split registered with `suite add` and delete its files")
    rm.add_argument("name", metavar="NAME")
    rm.add_argument("--json", action="store_true")
    rm.set_defaults(func=handle_remove)

    ve = ss.add_parser("verify", help="recompute hashes against manifests and the lock file")
    ve.add_argument("patterns", nargs="*", metavar="SPLIT", help="split ids or globs (default: every fetched split)")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(func=handle_verify)

    sh = ss.add_parser("show", help="manifest, counts, fields, sources and label validity of a split")
    sh.add_argument("split", metavar="SPLIT")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=handle_show)

    fr = ss.add_parser("freeze", help="write content hashes of materialized splits into the lock file")
    fr.add_argument("patterns", nargs="*", metavar="SPLIT", help="split ids or globs (default: every fetched split)")
    fr.add_argument("--lock", metavar="FILE", help="lock file to write (default: benchmark/suite/suite.lock)")
    fr.add_argument("--json", action="store_true")
    fr.set_defaults(func=handle_freeze)

    p.set_defaults(func=lambda args: p.print_help() or 2)


def _manifest(spec):
    file = split_dir(spec.id) / "manifest.json"
    try:
        return json.loads(file.read_text()) if file.exists() else None
    except json.JSONDecodeError:
        return None


def fetch_route(spec, pins: dict) -> str:
    """How a split that is not materialized here can be: from the Hub at its pinned revision (or
    a local copy with --from-dir), built offline, or only after the parents it names."""
    missing = suite.missing_parents(spec)
    if missing:
        return f"needs {', '.join(missing)}"
    return spec.source_model.route(spec, pins)


def handle_list(args) -> int:
    specs = suite.match_splits(args.patterns) if args.patterns else list(suite.splits().values())
    pins = lockfile.read_lock().get("splits", {})
    rows = []
    for spec in specs:
        manifest = _manifest(spec)
        status = suite.status(spec)
        rows.append(
            {
                "id": spec.id,
                "family": spec.family,
                "track": spec.track,
                "domain": spec.domain,
                "size": manifest["counts"]["total"] if manifest else None,
                "status": status,
                "fetch": fetch_route(spec, pins) if status == "not fetched" else None,
            }
        )
    text = table(
        [[r["id"], r["family"], r["track"], r["size"] if r["size"] is not None else "-", r["status"], r["fetch"] or "-"]
         for r in rows],
        ["split", "family", "track", "size", "status", "to materialize"],
    )
    emit(args, rows, text)
    return 0


def handle_fetch(args) -> int:
    from tqdm import tqdm

    specs = suite.match_splits(args.patterns)
    rows = []
    bar = tqdm(specs, desc="fetch", unit="split", disable=args.json or len(specs) < 2)
    failed = 0
    for spec in bar:
        bar.set_postfix_str(spec.id)
        was = suite.is_materialized(spec.id)
        missing = suite.missing_parents(spec) if not was or args.force else []
        if missing and len(specs) > 1:  # a glob builds what it can; say what each skipped control needs
            rows.append({"id": spec.id, "action": "skipped",
                         "needs": missing,
                         "reason": f"needs {' and '.join(missing)}, not materialized here; fetch "
                                   f"{'them' if len(missing) > 1 else 'it'} first: membench suite fetch "
                                   f"{' '.join(missing)} (offline: --from-dir DIR)"})
            continue
        try:
            split = suite.fetch(spec.id, args.from_dir, force=args.force)
        except MembenchError as exc:
            if len(specs) == 1:
                raise
            failed += 1  # one bad split does not stop a glob; each failure is reported
            rows.append({"id": spec.id, "action": "failed", "error": str(exc)})
            continue
        m = split.manifest
        rows.append(
            {
                "id": spec.id,
                "action": "kept (already fetched)" if was and not args.force else "materialized",
                "counts": m["counts"],
                "duplicates_dropped": m.get("duplicates_dropped", 0),
                "neighbors": split.has_neighbors,
                "content_hash": m["content_hash"],
                "path": str(split.path),
            }
        )
    ok = [r for r in rows if r["action"] not in ("failed", "skipped")]
    text = table(
        [
            [r["id"], r["action"], r["counts"]["members"], r["counts"]["nonmembers"], r["duplicates_dropped"],
             "yes" if r["neighbors"] else "-", r["content_hash"][:12]]
            for r in ok
        ],
        ["split", "action", "members", "non-members", "dups dropped", "neighbours", "content hash"],
    ) if ok else "nothing materialized"
    text += "".join(f"\nskipped {r['id']}: {r['reason']}" for r in rows if r["action"] == "skipped")
    text += "".join(f"\nfailed {r['id']}: {r['error']}" for r in rows if r["action"] == "failed")
    emit(args, rows, text)
    return 2 if failed else 0


def handle_add(args) -> int:
    split = suite.add_local_split(args.name, args.file, text_field=args.text_field, label_field=args.label_field,
                                  valid_for=args.valid_for, config=args.config, track=args.track,
                                  description=args.description, replace=args.replace)
    m, spec = split.manifest, split.spec
    info = {"id": split.id, "path": str(split.path), "counts": m["counts"],
            "counts_before_dedup": m["counts_before_dedup"], "duplicates_dropped": m["duplicates_dropped"],
            "content_hash": m["content_hash"], "fields": spec.fields, "valid_targets": list(spec.valid_targets),
            "track": spec.track}
    c = m["counts"]
    valid = ", ".join(spec.valid_targets) or "no target declared (pass --valid-for, or run with --allow-invalid)"
    lines = [
        f"registered split {split.id}: {c['members']} members, {c['nonmembers']} non-members "
        f"({m['duplicates_dropped']} exact duplicates dropped)",
        f"text '{spec.fields['text']}', label '{spec.fields['label']}' (1 = member); labels valid for: {valid}",
        f"content hash {m['content_hash'][:16]}; files in {split.path}",
        f"next: membench diagnose {split.id}    (blind baselines: is it separable without the model?)",
        f"      membench run --target TARGET --split {split.id}",
    ]
    emit(args, info, "\n".join(lines))
    return 0


def handle_remove(args) -> int:
    removed = suite.remove_split(args.name)
    emit(args, {"id": args.name, "removed": removed},
         "\n".join(f"removed {p}" for p in removed) or f"{args.name}: nothing to remove")
    return 0


def handle_verify(args) -> int:
    specs = suite.match_splits(args.patterns) if args.patterns else None
    reports = suite.verify(specs)
    failed = [r for r in reports if r["status"] != "ok"]
    lines = []
    for r in reports:
        if r["status"] == "ok":
            lines.append(f"ok        {r['id']}{'  (matches suite.lock)' if r['locked'] else ''}")
        else:
            lines.append(f"{r['status'].upper():9} {r['id']}")
            lines += [f"          {p}" for p in r["problems"]]
    if not reports:
        lines.append("no split is materialized; run `membench suite fetch SPLIT` first")
    lines.append(f"{len(reports) - len(failed)} ok, {len(failed)} failed")
    emit(args, {"ok": not failed, "splits": reports}, "\n".join(lines))
    return 1 if failed else 0


def handle_show(args) -> int:
    spec = suite.get_split(args.split)
    manifest = _manifest(spec)
    entry = lockfile.read_lock().get("splits", {}).get(spec.id)
    info = {
        "id": spec.id,
        "family": spec.family,
        "track": spec.track,
        "domain": spec.domain,
        "status": suite.status(spec),
        "source": spec.source,
        "fields": spec.fields,
        "label_meaning": spec.label_meaning,
        "labels_are_membership": spec.labels_are_membership,
        "valid_targets": list(spec.valid_targets),
        **({"opt_caveat": spec.extra["opt_caveat"]} if "opt_caveat" in spec.extra else {}),
        "description": spec.description,
        "lock": entry,
        "manifest": manifest,
    }
    lines = [
        f"split        {spec.id}",
        f"family       {spec.family}   track {spec.track}   domain {spec.domain}",
        f"status       {info['status']}",
        f"source       {json.dumps(spec.source)}",
        f"fields       {json.dumps(spec.fields)}",
        f"labels       {spec.label_meaning}",
        f"membership   {'yes' if spec.labels_are_membership else 'NO (control: label is time/source, a run measures shift)'}",
        f"valid for    {', '.join(spec.valid_targets) or 'none'}",
    ]
    if "opt_caveat" in spec.extra:
        lines.append(f"OPT          {spec.extra['opt_caveat']}")
    lines.append(f"locked       {entry['content_hash'] if entry else 'no entry in suite.lock'}")
    if manifest:
        c, b = manifest["counts"], manifest["counts_before_dedup"]
        lines += [
            f"counts       {c['total']} ({c['members']} label 1 / {c['nonmembers']} label 0)",
            f"before dedup {b['total']} ({b['members']} / {b['nonmembers']}); {manifest.get('duplicates_dropped', 0)} exact duplicates dropped",
            f"columns      {', '.join(manifest.get('fields', ['uid', 'text']))}",
            f"fetched from {json.dumps({k: v for k, v in manifest['source'].items() if k != 'files'})}",
            f"content hash {manifest['content_hash']}",
        ]
        lines += [f"  file       {name}  {digest[:16]}" for name, digest in manifest["files"].items()]
    else:
        lines.append(f"not fetched: run `membench suite fetch {spec.id}` (or pass --from-dir)")
    lines.append(f"about        {spec.description}")
    emit(args, info, "\n".join(lines))
    return 0


def handle_freeze(args) -> int:
    specs = suite.match_splits(args.patterns) if args.patterns else None
    out = suite.freeze(specs, args.lock)
    lines = [f"froze {sid}  {e['content_hash'][:16]}" for sid, e in out["frozen"].items()]
    lines += [f"skipped {sid}: {why}" for sid, why in out["skipped"].items() if specs is not None or why != "not materialized"]
    lines.append(f"{len(out['frozen'])} split(s) written to {out['lock']}")
    emit(args, out, "\n".join(lines))
    return 0
