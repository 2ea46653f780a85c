"""`membench bench`: forward-pass throughput, and the harness against a per-sample loop.

Two measurements in one run, same model, same texts, same device and dtype:

1. **harness**: the feature engine (tokenize once, sort by length, batch under a token
   budget, one forward pass, fp32 statistics) followed by every feature-based scorer
   (LOSS, zlib, Min-K%, Min-K%++, DC-PDD) computed from the statistics;
2. **per-sample loop**: what a plain script does: for each text alone (batch size 1), a
   forward pass, the fp32 log-softmax, and the same five scores from it.

It reports tokens/s for both, the speed-up, the largest score difference between them (they
must agree), the time to re-score from a warm feature cache, and on a GPU the model FLOP
utilization: forward FLOPs per token = 2 N + 2 n_layer n_ctx d_model (Kaplan et al. 2020,
N = non-embedding parameters plus the output projection) divided by the device's dense peak
(``--peak-tflops``, or a table of known GPUs). ``--random-init`` builds any registry
architecture with seeded random weights (nothing downloaded) and scores random token texts.
"""

from __future__ import annotations

import time
import zlib as _zlib

import numpy as np

from . import emit, table

# Dense bf16/fp16 tensor-core peaks (TFLOP/s), without sparsity.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0,
               "V100": 125.0, "T4": 65.0}


def register(sub):
    p = sub.add_parser("bench", help="measure feature-pass throughput and the harness speed-up")
    p.add_argument("--target", default="demo/neox-tiny", help="registry target or local model directory")
    p.add_argument("--split", default="demo/pydoc", help="split whose texts are scored (ignored with --random-init)")
    p.add_argument("--random-init", action="store_true",
                   help="random weights for the target's registry architecture; random token texts")
    p.add_argument("--n-texts", type=int, default=None, help="texts to score (default: the whole split, or 64)")
    p.add_argument("--tokens", type=int, default=256, help="with --random-init: longest text, in tokens")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--batch-tokens", type=int, default=16384)
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    p.add_argument("--skip-loop", action="store_true", help="measure the harness only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=handle)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _flops_per_token(model, n_ctx: int) -> float:
    cfg = model.config
    d = int(getattr(cfg, "hidden_size", 0))
    layers = int(getattr(cfg, "num_hidden_layers", 0))
    emb = model.get_input_embeddings().weight.numel()
    n = sum(p.numel() for p in model.parameters()) - emb
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr():
        n += emb  # tied: the output projection is still a matmul per token
    return 2.0 * n + 2.0 * layers * n_ctx * d


def _peak(device: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if not str(device).startswith("cuda"):
        return None
    import torch

    name = torch.cuda.get_device_name(torch.device(device))
    for key, tflops in PEAK_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def feature_scores(stats, texts, freq) -> dict[str, np.ndarray]:
    """The five feature-based scores through the registered scorers (the harness path)."""
    from .. import attacks
    from ..attacks import dcpdd

    inputs = attacks.ScoringInput(uids=[str(i) for i in range(len(texts))], texts=texts, features=stats)
    out = {name: attacks.get_scorer(name).score(inputs) for name in ("loss", "zlib", "min_k", "min_k_plus_plus")}
    scorer = attacks.get_scorer("dc_pdd")
    out["dc_pdd"] = scorer.per_sample(inputs, lambda s, _: dcpdd.dcpdd_score(s["logprob"], s["token_id"], freq, scorer.a))
    return out


def per_sample_loop(model, token_ids, texts, freq, device, k=0.2, a=0.01) -> dict[str, np.ndarray]:
    """The baseline: one text at a time, batch size 1, every score from its own forward pass."""
    import torch

    names = ("loss", "zlib", "min_k", "min_k_plus_plus", "dc_pdd")
    out = {n: np.full(len(texts), np.nan) for n in names}
    for i, (ids, text) in enumerate(zip(token_ids, texts)):
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
    from .. import features, suite, targets
    from ..runner import default_pool, load_pool

    if args.random_init:
        model = targets.random_init_model(args.target, dtype=args.dtype, device=args.device)
        n = args.n_texts or 64
        rng = np.random.default_rng(0)
        vocab = int(model.config.vocab_size)
        lengths = rng.integers(max(2, args.tokens // 2), args.tokens + 1, size=n)
        token_ids = [rng.integers(0, vocab, size=int(m)).tolist() for m in lengths]
        texts = [" ".join(map(str, ids)) for ids in token_ids]
        pool_ids = [rng.integers(0, vocab, size=args.tokens).tolist() for _ in range(8)]
        return model, None, token_ids, texts, pool_ids, f"{args.target} (random weights), {n} random-token texts"
    target = targets.load_target(args.target, device=args.device, dtype=args.dtype)
    split = suite.ensure(args.split)
    texts = split.samples["text"].tolist()[: args.n_texts]
    token_ids = features.tokenize(target.tokenizer, texts, target.max_length)
    pool_path = default_pool(split)
    pool = load_pool(pool_path) if pool_path else []
    pool_ids = features.tokenize(target.tokenizer, pool, target.max_length)
    return target.model, target.tokenizer, token_ids, texts, pool_ids, f"{args.target} on {args.split}, {len(texts)} texts"


def measure(args) -> dict:
    import torch

    from .. import features
    from ..attacks import dcpdd
    from ..results import environment

    torch.manual_seed(0)
    model, tokenizer, token_ids, texts, pool_ids, what = _inputs(args)
    vocab = max(int(model.config.vocab_size), max((max(t) for t in token_ids if t), default=0) + 1)
    counts = np.zeros(vocab, np.int64)
    for ids in pool_ids:
        np.add.at(counts, np.asarray(ids, np.int64), 1)
    freq = dcpdd.smoothed_frequency(counts)
    pad = features.pad_id(tokenizer) if tokenizer is not None else 0
    n_tokens = sum(len(t) for t in token_ids)
    # warm-up (allocator, kernels) on a few texts, untimed
    features.compute(model, token_ids[:2], pad_id=pad, device=args.device, batch_tokens=args.batch_tokens)
    _sync(args.device)
    t0 = time.perf_counter()
    counter: dict = {}
    stats = features.compute(model, token_ids, pad_id=pad, device=args.device,
                             batch_tokens=args.batch_tokens, counter=counter)
    _sync(args.device)
    t_forward = time.perf_counter() - t0
    harness_scores = feature_scores(stats, texts, freq)
    t_harness = time.perf_counter() - t0
    t1 = time.perf_counter()
    feature_scores(stats, texts, freq)  # re-scoring from statistics already computed (a warm cache)
    t_rescore = time.perf_counter() - t1
    max_len = max(len(t) for t in token_ids)
    fpt = _flops_per_token(model, max_len)
    peak = _peak(args.device, args.peak_tflops)
    out = {
        "what": what,
        "device": environment(args.device).get("device"),
        "dtype": args.dtype,
        "batch_tokens": args.batch_tokens,
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
            "mfu": round(fpt * n_tokens / t_forward / peak, 4) if peak else None,
        },
        "flops_per_token": fpt,
        "peak_flops": peak,
        "scorers": sorted(harness_scores),
        "torch_threads": torch.get_num_threads(),
    }
    if not args.skip_loop:
        _sync(args.device)
        t2 = time.perf_counter()
        loop_scores = per_sample_loop(model, token_ids, texts, freq, args.device)
        _sync(args.device)
        t_loop = time.perf_counter() - t2
        diff = max(float(np.nanmax(np.abs(harness_scores[k] - loop_scores[k]))) for k in harness_scores)
        out["per_sample_loop"] = {"seconds": round(t_loop, 3), "tokens_per_s": round(n_tokens / t_loop, 1)}
        out["speedup"] = round(t_loop / t_harness, 2)
        out["max_abs_score_difference"] = diff
    return out


def handle(args) -> int:
    from ..errors import MembenchError
    from .run import check_device

    check_device(args.device)
    if args.random_init and args.dtype != "float32" and not args.device.startswith("cuda"):
        raise MembenchError("half-precision benchmarks need a GPU", "use --dtype float32 on CPU")
    r = measure(args)
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
    if h["mfu"] is None:
        text += "\nMFU: reported on GPUs only (or pass --peak-tflops)"
    emit(args, r, text)
    return 0
