"""What the sandbox costs: `python benchmarks/sandbox_overhead.py [--repeats N]`.

Scores the demo split with the text-only example submission, in process and in the sandbox
(bubblewrap with its namespaces, seccomp, a cgroup and a uid of its own, the socket protocol),
and prints the median wall time of each and which pieces of the jail were there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmark.attacks import ScoringInput
from benchmark.home import REPO_ROOT
from benchmark.submissions.jail import missing
from benchmark.submissions.sandbox import isolation_problem, run_scorer

EXAMPLE = REPO_ROOT / "submissions" / "zlib_ratio_blind"


def main(argv=None) -> int:
    from benchmark import suite

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--split", default="demo/pydoc")
    args = p.parse_args(argv)
    split = suite.ensure(args.split)
    uids, texts = split.samples["uid"].tolist(), split.samples["text"].tolist()
    spec = importlib.util.spec_from_file_location("example_scorer", EXAMPLE / "scorer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scorer = module.ZlibRatioBlind()
    inproc, boxed = [], []
    log = Path(tempfile.mkdtemp(prefix="membench-overhead-")) / "log"
    for _ in range(args.repeats):
        t = time.perf_counter()
        scorer.score(ScoringInput(uids=uids, texts=texts))
        inproc.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_scorer(EXAMPLE, uids=uids, texts=texts, declared=(), params={"level": 9}, log_path=log,
                   allow_unsandboxed=True)
        boxed.append(time.perf_counter() - t)
    out = {
        "split": args.split,
        "n_texts": len(texts),
        "isolated": isolation_problem() is None,
        "missing": list(missing()),
        "in_process_s": round(statistics.median(inproc), 4),
        "sandboxed_s": round(statistics.median(boxed), 4),
        "overhead_s": round(statistics.median(boxed) - statistics.median(inproc), 4),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
