"""Blind-baseline benchmark: every baseline's out-of-fold AUC and wall time, per split or file.

    python benchmarks/diagnostics_bench.py demo/pydoc 'wikimia*/*' [--file F ...] [--json]
    python benchmarks/diagnostics_bench.py --make-mixed 2000 OUT.jsonl   # the 2,000-text split

Each source is deduplicated and put into folds exactly as `membench diagnose` does. Timed:
each baseline alone, one process (``out_of_fold_scores`` over the shared folds; wall and CPU
time: CPU time is what a quiet machine's wall time would be for this one process); the five
together as ``diagnose`` runs them (every (baseline, fold) fit a task for worker processes,
where the code has them); and the whole diagnosis (``diagnose``: baselines, bootstrap
intervals, duplicates, lengths, 13-gram overlap). AUCs are printed in full (``repr``), so two
versions of the code can be compared for exact equality: ``MEMBENCH_SOURCE=DIR`` runs the
membench package found in DIR instead of this checkout's. Splits must be materialized
(`membench suite fetch ...`). The load average is printed before and after.

``--make-mixed N OUT`` writes N distinct WikiMIA-24 texts (all four lengths pooled, exact
duplicates dropped, then a seeded sample of N/2 members and N/2 non-members) to OUT as jsonl
(``text``, ``label``): the 2,000-text split of the diagnostics timing. ``--make-pydoc N OUT``
writes N passages of the demo's text (``pydoc_data.topics``; windows of 32-256 words at seeded
random starts, so passages may overlap) with labels assigned at random, half each: real text
and no shift, as in the demo split but larger.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("MEMBENCH_SOURCE", str(Path(__file__).resolve().parent.parent)))


def make_mixed(n: int, out: Path, seed: int = 0) -> dict:
    import numpy as np

    from benchmark import suite

    rows: dict[str, int] = {}
    for length in (32, 64, 128, 256):
        split = suite.ensure(f"wikimia24/{length}")
        labels = split.labels()
        for uid, text in zip(split.samples["uid"], split.samples["text"]):
            rows.setdefault(text, int(labels[uid]))
    texts = sorted(rows)  # content order, so the sample does not depend on the fetch order
    labels = np.array([rows[t] for t in texts])
    rng = np.random.default_rng(seed)
    pick = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), n // 2, replace=False)
                                   for c in (1, 0)]))
    with open(out, "w") as fh:
        for i in pick:
            fh.write(json.dumps({"text": texts[i], "label": int(labels[i])}) + "\n")
    return {"pool": len(texts), "written": len(pick), "path": str(out)}


def make_pydoc(n: int, out: Path, seed: int = 0) -> dict:
    import numpy as np
    from pydoc_data import topics

    from benchmark.suite.demo import MAX_WORDS, MIN_WORDS, _topic_words

    words = [w for name in sorted(topics.topics) for w in _topic_words(topics.topics[name])]
    rng = np.random.default_rng(seed)
    texts: dict[str, None] = {}
    while len(texts) < n:
        length = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
        start = int(rng.integers(0, len(words) - length))
        texts[" ".join(words[start:start + length])] = None
    labels = rng.permutation(np.arange(n) % 2)
    with open(out, "w") as fh:
        for text, label in zip(texts, labels):
            fh.write(json.dumps({"text": text, "label": int(label)}) + "\n")
    return {"words": len(words), "written": n, "path": str(out)}


def sources(args):
    from benchmark import diagnostics, suite

    for spec in suite.match_splits(args.splits) if args.splits else []:
        split = suite.ensure(spec.id)
        labels = split.labels().reindex(split.samples["uid"]).to_numpy()
        yield spec.id, split.samples["text"].tolist(), labels
    for path in args.file or []:
        texts, labels, _ = diagnostics.load_labelled(path)
        yield str(path), texts, labels


def measure(name, texts, labels, repeat_whole: bool, jobs=None):
    import numpy as np

    from benchmark import diagnostics
    from benchmark.diagnostics import BASELINES, out_of_fold_scores
    from benchmark.diagnostics.crossval import folds
    from benchmark.diagnostics.report import dedup
    from benchmark.metrics import auc

    labels = np.asarray(labels).astype(int)
    keep, _ = dedup(texts, labels)
    t_kept, y_kept = [texts[i] for i in keep], labels[keep]
    shared = folds(t_kept, y_kept)
    row = {"source": name, "texts": len(t_kept), "baselines": {}}
    for base in BASELINES:
        t0, c0 = time.perf_counter(), time.process_time()
        scores = out_of_fold_scores(t_kept, y_kept, BASELINES[base].make, folds_=shared)
        row["baselines"][base] = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                                  "auc": float(auc(y_kept, scores))}
    row["baselines_seconds"] = sum(b["seconds"] for b in row["baselines"].values())
    row["baselines_cpu_seconds"] = sum(b["cpu_seconds"] for b in row["baselines"].values())
    from benchmark.diagnostics import crossval

    if hasattr(crossval, "out_of_fold_table"):  # the five together, folds in worker processes
        jobs = jobs or crossval.default_jobs(t_kept)
        t0 = time.perf_counter()
        crossval.out_of_fold_table(t_kept, y_kept, {b: BASELINES[b].make for b in BASELINES}, shared, n_jobs=jobs)
        row["baselines_together_seconds"], row["jobs"] = time.perf_counter() - t0, jobs
    if repeat_whole:
        t0 = time.perf_counter()
        diag = diagnostics.diagnose(texts, labels, **({"n_jobs": jobs} if jobs else {}))
        row["whole_seconds"] = time.perf_counter() - t0
        mismatch = [b for b in BASELINES if diag["baselines"][b]["auc"] != row["baselines"][b]["auc"]]
        if mismatch:
            raise AssertionError(f"{name}: diagnose and the per-baseline run disagree on {mismatch}")
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("splits", nargs="*", help="materialized split ids or globs")
    p.add_argument("--file", action="append", type=Path, help="a labelled file (as `diagnose --file`)")
    p.add_argument("--no-whole", action="store_true", help="time the baselines only")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes for 'together' and the whole diagnosis (default: diagnose's choice)")
    p.add_argument("--make-mixed", nargs=2, metavar=("N", "OUT"))
    p.add_argument("--make-pydoc", nargs=2, metavar=("N", "OUT"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.make_mixed:
        print(json.dumps(make_mixed(int(args.make_mixed[0]), Path(args.make_mixed[1]))))
        return 0
    if args.make_pydoc:
        print(json.dumps(make_pydoc(int(args.make_pydoc[0]), Path(args.make_pydoc[1]))))
        return 0
    import benchmark

    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
           "code": str(Path(benchmark.__file__).parent), "load_before": os.getloadavg(), "rows": []}
    for name, texts, labels in sources(args):
        row = measure(name, texts, labels, not args.no_whole, args.jobs)
        out["rows"].append(row)
        if not args.json:
            times = "  ".join(f"{b} {v['seconds']:.2f}s" for b, v in row["baselines"].items())
            whole = f"  whole {row['whole_seconds']:.2f}s" if "whole_seconds" in row else ""
            if "baselines_together_seconds" in row:
                whole += f"  together ({row['jobs']} jobs) {row['baselines_together_seconds']:.2f}s"
            print(f"{name} ({row['texts']} texts): baselines {row['baselines_seconds']:.2f}s "
                  f"(cpu {row['baselines_cpu_seconds']:.2f}s){whole}  [{times}]")
            print("  AUC " + "  ".join(f"{b} {v['auc']!r}" for b, v in row["baselines"].items()), flush=True)
    out["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"load average before {out['load_before']}, after {out['load_after']}; code {out['code']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
