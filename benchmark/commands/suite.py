"""`membench suite ...`: the split registry, materialization, verification and the lock file."""

from __future__ import annotations

import json

from ..errors import MembenchError
from . import emit, table


def register(sub):
    p = sub.add_parser("suite", help="list, fetch, verify, show and freeze splits")
    ss = p.add_subparsers(dest="suite_command", metavar="SUBCOMMAND")

    ls = ss.add_parser("list", help="every split with family, track, size and status")
    ls.add_argument("patterns", nargs="*", metavar="SPLIT", help="glob patterns (default: all)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)

    fe = ss.add_parser("fetch", help="materialize splits from the Hub or a local copy")
    fe.add_argument("patterns", nargs="+", metavar="SPLIT", help="split ids or glob patterns, e.g. 'wikimia/*'")
    fe.add_argument("--from-dir", metavar="DIR", help="a local copy in the Hub layout or as jsonl/csv/parquet/save_to_disk")
    fe.add_argument("--force", action="store_true", help="materialize again even if already fetched")
    fe.add_argument("--json", action="store_true")
    fe.set_defaults(func=handle_fetch)

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
    from ..suite import split_dir

    file = split_dir(spec.id) / "manifest.json"
    try:
        return json.loads(file.read_text()) if file.exists() else None
    except json.JSONDecodeError:
        return None


def handle_list(args) -> int:
    from .. import suite

    specs = suite.match_splits(args.patterns) if args.patterns else list(suite.splits().values())
    rows = []
    for spec in specs:
        manifest = _manifest(spec)
        rows.append(
            {
                "id": spec.id,
                "family": spec.family,
                "track": spec.track,
                "domain": spec.domain,
                "size": manifest["counts"]["total"] if manifest else None,
                "status": suite.status(spec),
            }
        )
    text = table(
        [[r["id"], r["family"], r["track"], r["size"] if r["size"] is not None else "-", r["status"]] for r in rows],
        ["split", "family", "track", "size", "status"],
    )
    emit(args, rows, text)
    return 0


def handle_fetch(args) -> int:
    from tqdm import tqdm

    from .. import suite

    specs = suite.match_splits(args.patterns)
    rows = []
    bar = tqdm(specs, desc="fetch", unit="split", disable=args.json or len(specs) < 2)
    failed = 0
    for spec in bar:
        bar.set_postfix_str(spec.id)
        was = suite.is_materialized(spec.id)
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
    ok = [r for r in rows if r["action"] != "failed"]
    text = table(
        [
            [r["id"], r["action"], r["counts"]["members"], r["counts"]["nonmembers"], r["duplicates_dropped"],
             "yes" if r["neighbors"] else "-", r["content_hash"][:12]]
            for r in ok
        ],
        ["split", "action", "members", "non-members", "dups dropped", "neighbours", "content hash"],
    )
    text += "".join(f"\nfailed {r['id']}: {r['error']}" for r in rows if r["action"] == "failed")
    emit(args, rows, text)
    return 2 if failed else 0


def handle_verify(args) -> int:
    from .. import suite

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
    from .. import suite
    from ..suite import lock as lockfile

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
    from .. import suite

    specs = suite.match_splits(args.patterns) if args.patterns else None
    out = suite.freeze(specs, args.lock)
    lines = [f"froze {sid}  {e['content_hash'][:16]}" for sid, e in out["frozen"].items()]
    lines += [f"skipped {sid}: {why}" for sid, why in out["skipped"].items() if specs is not None or why != "not materialized"]
    lines.append(f"{len(out['frozen'])} split(s) written to {out['lock']}")
    emit(args, out, "\n".join(lines))
    return 0
