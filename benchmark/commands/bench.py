"""`membench bench`: forward-pass throughput, the harness against a per-sample loop, and where
a real run's time goes.

Throughput (the default), in one process, same model, texts, device and dtype:

1. **harness**: the feature pass (tokenize once, sort by length, batch under a token budget
   that adapts to the free memory on a GPU, one forward pass, fp32 statistics) followed by every
   feature-based scorer (LOSS, zlib, Min-K%, Min-K%++, DC-PDD) computed from the statistics;
2. **per-sample loop**: what a plain script does: for each text alone (batch size 1), a
   forward pass, the fp32 log-softmax, and the same five scores from it.

It reports tokens/s for both, the speed-up, the largest score difference between them (they
must agree), the time to re-score from statistics in hand, peak memory, and on a GPU the model
FLOP utilization (``features.throughput``: 2 x parameters x tokens / time / the device's dense
bf16 peak, named per device model; ``--peak-tflops`` for another device). ``--random-init``
builds any registry architecture with seeded random weights (nothing downloaded) and scores
random token texts.

``--profile`` times real `membench run` processes instead: a cold run (the feature-cache
entries of the target and its reference on the split removed first, so both forward passes
run), the same run warm, a warm single-scorer run and `membench --help`, each phase (start-up,
loading, tokenization, forward, statistics, scoring, metrics, writing) per model.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time
import zlib as _zlib

import numpy as np

from .. import attacks, features, suite, targets
from ..attacks import dcpdd
from ..errors import MembenchError
from ..features import cache, key_parts
from ..features.throughput import device_peak, matmul_parameters, mfu
from ..profiling import run_profiled, time_process
from ..results import environment
from ..runner import default_pool, default_reference, load_pool
from ..targets import check_device
from . import emit, table


def register(sub):
    p = sub.add_parser("bench", help="measure feature-pass throughput, the harness speed-up, or (--profile) a run's phases")
    p.add_argument("--target", default="demo/neox-tiny", help="registry target or local model directory (default: %(default)s)")
    p.add_argument("--split", default="demo/pydoc",
                   help="split whose texts are scored (ignored with --random-init; default: %(default)s)")
    p.add_argument("--random-init", action="store_true",
                   help="random weights for the target's registry architecture; random token texts")
    p.add_argument("--n-texts", type=int, default=None, help="texts to score (default: the whole split, or 64)")
    p.add_argument("--tokens", type=int, default=256, help="with --random-init: longest text, in tokens (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: %(default)s)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="weight dtype; statistics are fp32 either way (default: %(default)s)")
    p.add_argument("--batch-tokens", type=int, default=16384,
                   help="starting token budget per batch; on a GPU it grows to the free memory (default: %(default)s)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model's trunk first (default: off)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="device peak for MFU, TFLOP/s (default: the dense bf16 peak of known GPUs)")
    p.add_argument("--skip-loop", action="store_true", help="measure the harness only")
    p.add_argument("--profile", action="store_true",
                   help="time the phases of real cold and warm `membench run` processes (recomputes the "
                   "split's features for the target and its reference)")
    p.add_argument("--reference", default=None,
                   help="with --profile: reference model of the profiled run (default: the target's default, "
                   "e.g. demo/neox-tiny-ref for the demo)")
    p.add_argument("--repeat", type=int, default=3,
                   help="with --profile: warm runs and `membench --help` runs to take the median of (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    p.set_defaults(func=handle)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _peak(device: str, override: float | None) -> tuple[str | None, float | None]:
    if override:
        return "given by --peak-tflops", override * 1e12
    if not str(device).startswith("cuda"):
        return None, None
    import torch

    found = device_peak(torch.cuda.get_device_name(torch.device(device)))
    return found if found else (None, None)


def feature_scores(stats, texts, freq) -> dict[str, np.ndarray]:
    """The five feature-based scores through the registered scorers (the harness path)."""
    inputs = attacks.ScoringInput(uids=[str(i) for i in range(len(texts))], texts=texts, features=stats)
    out = {name: attacks.get_scorer(name).score(inputs) for name in ("loss", "zlib", "min_k", "min_k_plus_plus")}
    out["dc_pdd"] = dcpdd.dcpdd_scores(stats, freq, attacks.get_scorer("dc_pdd").a)
    return out


def per_sample_loop(model, token_ids, texts, freq, device, k=0.2, a=0.01, progress=False) -> dict[str, np.ndarray]:
    """The baseline: one text at a time, batch size 1, every score from its own forward pass."""
    import torch
    from tqdm.auto import tqdm

    names = ("loss", "zlib", "min_k", "min_k_plus_plus", "dc_pdd")
    out = {n: np.full(len(texts), np.nan) for n in names}
    for i, (ids, text) in enumerate(tqdm(list(zip(token_ids, texts)), desc="per-sample loop", unit="text",
                                         disable=not progress)):
        if len(ids) < 2:
            continue
        x = torch.tensor([ids], device=device)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), -1)
            lp = logp.gather(-1, x[0, 1:, None])[:, 0]
            p = logp.exp()
            mu = (p * logp).sum(-1)
            sd = (p * (logp - mu[:, None]).square()).sum(-1).sqrt()
        lp, mu, sd = lp.double().cpu().numpy(), mu.double().cpu().numpy(), sd.double().cpu().numpy()
        n = max(int(np.floor(k * len(lp))), 1)
        z = np.divide(lp - mu, sd, out=np.zeros_like(lp), where=sd > 0)
        out["loss"][i] = lp.mean()
        out["zlib"][i] = lp.mean() / len(_zlib.compress(text.encode("utf-8")))
        out["min_k"][i] = np.sort(lp)[:n].mean()
        out["min_k_plus_plus"][i] = np.sort(z)[:n].mean()
        seen, terms = set(), []
        for t, tok in enumerate(ids[1:]):
            if tok not in seen:
                seen.add(tok)
                terms.append(min(np.exp(lp[t]) * -np.log(freq[tok]), a))
        out["dc_pdd"][i] = float(np.mean(terms))
    return out


def _inputs(args):
    """(model, tokenizer or None, token ids, texts, pool token ids, description)."""
    if args.random_init:
        model = targets.random_init_model(args.target, dtype=args.dtype, device=args.device)
        if args.compile:
            getattr(model, "base_model", model).compile(dynamic=True)
        n = args.n_texts or 64
        rng = np.random.default_rng(0)
        vocab = int(model.config.vocab_size)
        lengths = rng.integers(max(2, args.tokens // 2), args.tokens + 1, size=n)
        token_ids = [rng.integers(0, vocab, size=int(m)).tolist() for m in lengths]
        texts = [" ".join(map(str, ids)) for ids in token_ids]
        pool_ids = [rng.integers(0, vocab, size=args.tokens).tolist() for _ in range(8)]
        return model, None, token_ids, texts, pool_ids, f"{args.target} (random weights), {n} random-token texts"
    target = targets.load_target(args.target, device=args.device, dtype=args.dtype, compile=args.compile)
    split = suite.ensure(args.split)
    texts = split.samples["text"].tolist()[: args.n_texts]
    token_ids = features.tokenize(target.tokenizer, texts, target.max_length)
    pool_path = default_pool(split)
    pool = load_pool(pool_path) if pool_path else []
    pool_ids = features.tokenize(target.tokenizer, pool, target.max_length)
    return target.model, target.tokenizer, token_ids, texts, pool_ids, f"{args.target} on {args.split}, {len(texts)} texts"


def _peak_memory(device: str) -> dict:
    """Peak memory of this process: the GPU's allocator peak on CUDA, the resident set on CPU."""
    if str(device).startswith("cuda"):
        import torch

        return {"peak_gpu_bytes": int(torch.cuda.max_memory_allocated(torch.device(device)))}
    return {"peak_host_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024}


def measure(args) -> dict:
    import torch

    torch.manual_seed(0)
    progress = not args.json
    model, tokenizer, token_ids, texts, pool_ids, what = _inputs(args)
    vocab = max(int(model.config.vocab_size), max((max(t) for t in token_ids if t), default=0) + 1)
    counts = np.zeros(vocab, np.int64)
    for ids in pool_ids:
        np.add.at(counts, np.asarray(ids, np.int64), 1)
    freq = dcpdd.smoothed_frequency(counts)
    pad = features.pad_id(tokenizer) if tokenizer is not None else 0
    n_tokens = sum(len(t) for t in token_ids)
    budget = features.TokenBudget(args.batch_tokens, features.batching.probe_for(args.device))
    # warm-up (allocator, kernels, compilation) on a few texts, untimed; it also probes the budget
    features.compute(model, token_ids[:2], pad_id=pad, device=args.device, budget=budget)
    if str(args.device).startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(args.device))
    _sync(args.device)
    t0 = time.perf_counter()
    counter: dict = {}
    stats = features.compute(model, token_ids, pad_id=pad, device=args.device, budget=budget, counter=counter,
                             progress=progress, desc="harness")
    _sync(args.device)
    t_forward = time.perf_counter() - t0
    harness_scores = feature_scores(stats, texts, freq)
    t_harness = time.perf_counter() - t0
    t1 = time.perf_counter()
    feature_scores(stats, texts, freq)  # re-scoring from statistics already computed (a warm cache)
    t_rescore = time.perf_counter() - t1
    device_model, peak = _peak(args.device, args.peak_tflops)
    params = matmul_parameters(model)
    out = {
        "what": what,
        "device": environment(args.device).get("device"),
        "dtype": args.dtype,
        "batch_tokens": args.batch_tokens,
        "budget_tokens_final": budget.tokens,
        "budget_history": budget.history,
        "compiled": bool(args.compile),
        "texts": len(texts),
        "tokens": n_tokens,
        "harness": {
            "seconds": round(t_harness, 3),
            "forward_seconds": round(t_forward, 3),
            "tokens_per_s": round(n_tokens / t_harness, 1),
            "forward_tokens_per_s": round(n_tokens / t_forward, 1),
            "forward_batches": counter.get("forward_passes", 0),
            "padded_tokens": counter.get("forward_tokens", 0),
            "rescore_seconds": round(t_rescore, 4),
            "mfu": None if (m := mfu(params, n_tokens, t_forward, peak)) is None else round(m, 4),
            **_peak_memory(args.device),
        },
        "matmul_parameters": params,
        "flops_per_token": 2.0 * params,
        "peak_device_model": device_model,
        "peak_flops": peak,
        "scorers": sorted(harness_scores),
        "torch_threads": torch.get_num_threads(),
    }
    if not args.skip_loop:
        _sync(args.device)
        t2 = time.perf_counter()
        loop_scores = per_sample_loop(model, token_ids, texts, freq, args.device, progress=progress)
        _sync(args.device)
        t_loop = time.perf_counter() - t2
        diff = max(float(np.nanmax(np.abs(harness_scores[k] - loop_scores[k]))) for k in harness_scores)
        out["per_sample_loop"] = {"seconds": round(t_loop, 3), "tokens_per_s": round(n_tokens / t_loop, 1)}
        out["speedup"] = round(t_loop / t_harness, 2)
        out["max_abs_score_difference"] = diff
    return out


def _text(r: dict) -> str:
    h = r["harness"]
    rows = [["harness (batched, one pass, all 5 scores)", h["seconds"], h["tokens_per_s"],
             "" if h["mfu"] is None else f"{100 * h['mfu']:.1f}%"]]
    if "per_sample_loop" in r:
        loop = r["per_sample_loop"]
        rows.append(["per-sample loop (batch size 1)", loop["seconds"], loop["tokens_per_s"], ""])
    text = (f"{r['what']}; {r['tokens']} tokens; {r['device']}, {r['dtype']}, {r['torch_threads']} threads\n"
            + table(rows, ["method", "seconds", "tokens/s", "MFU"]))
    if "speedup" in r:
        text += (f"\nspeed-up of the harness: {r['speedup']}x "
                 f"(largest score difference {r['max_abs_score_difference']:.2e})")
    text += f"\nre-scoring all 5 feature scorers from cached statistics: {h['rescore_seconds']} s"
    memory = h.get("peak_gpu_bytes") or h.get("peak_host_bytes")
    text += f"\npeak {'GPU' if 'peak_gpu_bytes' in h else 'host'} memory: {memory / 2**30:.2f} GiB"
    text += f"; token budget {r['batch_tokens']} -> {r['budget_tokens_final']} per batch"
    if h["mfu"] is None:
        text += "\nMFU: reported on GPUs of known peak (or pass --peak-tflops)"
    else:
        text += (f"\nMFU = 2 x {r['matmul_parameters']:,} parameters x tokens / time / "
                 f"{r['peak_flops'] / 1e12:.0f} TFLOP/s ({r['peak_device_model']})")
    return text


def handle(args) -> int:
    check_device(args.device)
    if args.random_init and args.dtype != "float32" and not args.device.startswith("cuda"):
        raise MembenchError("half-precision benchmarks need a GPU", "use --dtype float32 on CPU")
    if args.profile:
        if args.random_init:
            raise MembenchError("--profile times real runs of a target on a split", "drop --random-init")
        r = profile(args)
        emit(args, r, profile_text(r))
        return 0
    r = measure(args)
    emit(args, r, _text(r))
    return 0


# --- --profile: where a real run's time goes -------------------------------------------------

def _clear_features(handles, split) -> list[str]:
    """Remove the feature-cache entries of these targets on ``split`` (a cold run recomputes them)."""
    removed = []
    for handle in handles:
        key = cache.cache_key(key_parts(handle, split))
        shutil.rmtree(cache.entry_dir(key), ignore_errors=True)
        removed.append(key[:12])
    return removed


def _summary(run: dict) -> dict:
    """A profiled process: wall time, phases (start-up and what no phase claimed included),
    and the share of the wall time spent outside the forward passes."""
    wall = run["process_s"]
    rows = [{"phase": "start-up", "model": None, "seconds": run["startup_s"]}] + run["phases"]
    claimed = sum(r["seconds"] for r in rows)
    rows.append({"phase": "other", "model": None, "seconds": round(max(wall - claimed, 0.0), 4)})
    forward = sum(r["seconds"] for r in rows if r["phase"] == "forward")
    return {"wall_s": wall, "forward_s": round(forward, 4),
            "non_forward_share": round(1 - forward / wall, 4) if wall else None,
            "phases": rows, "imported": run.get("imported", {})}


def profile(args) -> dict:
    """Cold and warm `membench run` of the target on the split (with its reference), a warm
    single-scorer run and `membench --help`, each in a fresh process."""
    spec = targets.get_target(args.target)
    reference = args.reference or default_reference(spec.id)
    split = suite.ensure(args.split)
    if spec.family == "demo":
        targets.ensure_demo_target(progress=not args.json, target_id=spec.id)
        if reference:
            targets.ensure_demo_target(progress=not args.json, target_id=targets.get_target(reference).id)
    handles = [targets.load_target(name, device=args.device, dtype=args.dtype) for name in filter(None, [args.target, reference])]
    repeat = max(1, args.repeat)
    with tempfile.TemporaryDirectory(prefix="membench-bench-") as results:
        base = ["run", "--target", args.target, "--split", args.split, "--results-dir", results, "--device", args.device,
                "--dtype", args.dtype, "--batch-tokens", str(args.batch_tokens), "--json"]
        full = base + (["--reference", reference] if reference else [])
        _clear_features(handles, split)
        cold = run_profiled(full)
        warm = _median_run(full, repeat)
        single = _median_run(base + ["--scorer", "loss"], repeat)
    help_s = statistics.median(time_process(["--help"]) for _ in range(repeat))
    n = len(split.samples)
    scoring = {}
    for row in warm["phases"]:
        if row["phase"] == "scoring":
            scoring[row["model"]] = round(row["seconds"] * 2000 / n, 4)
    return {
        "what": f"membench run --target {args.target} --split {args.split}" + (f" --reference {reference}" if reference else ""),
        "texts": n,
        "device": args.device,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cold": _summary(cold),
        "warm": _summary(warm),
        "warm_single_scorer": _summary(single),
        "help_s": round(help_s, 4),
        "warm_single_over_help": round(single["process_s"] / help_s, 2),
        "scorer_seconds_per_2000_texts": scoring,
        "repeat": repeat,
    }


def _median_run(argv, repeat: int) -> dict:
    """The profiled run of ``repeat`` fresh processes whose wall time is the median."""
    return sorted((run_profiled(argv) for _ in range(repeat)), key=lambda r: r["process_s"])[repeat // 2]


def profile_text(r: dict) -> str:
    runs = [("cold", r["cold"]), ("warm", r["warm"])]
    keys = []
    for _, run in runs:
        for row in run["phases"]:
            if (row["phase"], row["model"]) not in keys:
                keys.append((row["phase"], row["model"]))

    def seconds(run, key):
        return sum(x["seconds"] for x in run["phases"] if (x["phase"], x["model"]) == key)

    rows = [[key[0], key[1] or ""] + [cell for _, run in runs
                                      for cell in (f"{seconds(run, key):.3f}", f"{100 * seconds(run, key) / run['wall_s']:.1f}%")]
            for key in keys]
    rows.append(["total (process wall)", ""] + [cell for _, run in runs for cell in (f"{run['wall_s']:.3f}", "100%")])
    single = r["warm_single_scorer"]
    modules = ", ".join(m for m, on in single["imported"].items() if on) or "none of the watched ones"
    per_2000 = ", ".join(f"{k} {v:.3f} s" for k, v in sorted(r["scorer_seconds_per_2000_texts"].items()))
    shares = ", ".join(f"{name} {100 * run['non_forward_share']:.1f}%" for name, run in runs)
    lines = [
        f"{r['what']} ({r['texts']} texts, {r['device']}); load average {r['load_average']}",
        table(rows, ["phase", "model"] + [f"{name} {unit}" for name, _ in runs for unit in ("s", "%")]),
        f"outside the forward passes: {shares}",
        f"warm single-scorer run (loss): {single['wall_s']:.3f} s = {r['warm_single_over_help']}x `membench --help` "
        f"({r['help_s']:.3f} s; medians of {r['repeat']}); it imported {modules}",
        f"scorer time per 2,000 texts (warm run): {per_2000}",
    ]
    return "\n".join(lines)
