"""`membench targets ...`: the target registry, and building a target (random or real weights)."""

from __future__ import annotations

import time

from .. import suite
from ..errors import MembenchError
from ..targets import get_target, load_target, random_init_model, targets
from . import emit, table


def register(sub):
    p = sub.add_parser("targets", help="list, show and build registry targets")
    ss = p.add_subparsers(dest="targets_command", metavar="SUBCOMMAND")

    ls = ss.add_parser("list", help="registry targets with Hub ids, revisions and architecture shapes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=handle_list)

    sh = ss.add_parser("show", help="one target: Hub id, revision, checkpoints, shape, valid splits")
    sh.add_argument("target", metavar="TARGET", help="registry id (pythia-160m, pythia-160m@step99000) or a model directory")
    sh.add_argument("--revision", help="a Pythia checkpoint (stepN) or a commit hash (default: the registry's "
                    "pinned revision)")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=handle_show)

    bu = ss.add_parser("build", help="build a target and report its parameters and shapes")
    bu.add_argument("target", metavar="TARGET")
    bu.add_argument("--revision", help="a Pythia checkpoint (stepN) or a commit hash (default: the registry's "
                    "pinned revision)")
    bu.add_argument("--random-init", action="store_true", help="the registry architecture with seeded random weights (offline)")
    bu.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    bu.add_argument("--device", default="cpu", help="cpu, cuda, or meta (shapes and counts without allocating memory)")
    bu.add_argument("--seed", type=int, default=0)
    bu.add_argument("--json", action="store_true")
    bu.set_defaults(func=handle_build)

    p.set_defaults(func=lambda args: p.print_help() or 2)


def _shape(arch: dict) -> str:
    if not arch:
        return "-"
    return f"L{arch.get('num_hidden_layers')} d{arch.get('hidden_size')} h{arch.get('num_attention_heads')}"


def _row(t) -> dict:
    return {
        "id": t.id,
        "family": t.family,
        "params": t.params,
        "hub_repo": t.hub_repo,
        "revision": t.revision,
        "checkpoints": len(t.checkpoints),
        "arch": t.arch,
        "description": t.description,
    }


def handle_list(args) -> int:
    rows = [_row(t) for t in targets().values()]
    text = table(
        [
            [r["id"], r["family"], r["params"], r["hub_repo"] or "(built locally)", r["revision"] or "-",
             f"{r['checkpoints']} (id@stepN)" if r["checkpoints"] else "-", _shape(r["arch"])]
            for r in rows
        ],
        ["target", "family", "size", "hub repo", "revision", "checkpoints", "shape"],
    )
    emit(args, rows, text)
    return 0


def handle_show(args) -> int:
    t = get_target(args.target, revision=args.revision)
    valid = [s.id for s in suite.splits().values() if s.labels_are_membership and s.labels_valid_for(t.id)]
    controls = [s.id for s in suite.splits().values() if s.is_control and s.labels_valid_for(t.id)]
    info = {
        **_row(t),
        "checkpoints": list(t.checkpoints),
        "membership_splits": valid,
        "control_splits": controls,
    }
    steps = t.checkpoints
    lines = [
        f"target       {t.id}",
        f"family       {t.family}   size {t.params or '-'}",
        f"hub repo     {t.hub_repo or '(local or built by membench)'}",
        f"revision     {t.revision or '-'}",
        f"checkpoints  {f'{len(steps)}: {steps[0]} ... {steps[-1]}  (use {t.model_id}@stepN)' if steps else '-'}",
        f"shape        {t.arch or '(read from the directory)'}",
        f"valid splits {len(valid)} membership splits, {len(controls)} controls (see --json)",
        f"about        {t.description or '-'}",
    ]
    emit(args, info, "\n".join(lines))
    return 0


def handle_build(args) -> int:
    spec = get_target(args.target, revision=args.revision)
    started = time.perf_counter()
    if args.random_init:
        model = random_init_model(spec.id, dtype=args.dtype, device=args.device, seed=args.seed)
        weights = f"random (seed {args.seed})"
    else:
        if args.device == "meta":
            raise MembenchError("--device meta needs --random-init", "drop --device meta, or add --random-init")
        model = load_target(spec.id, device=args.device, dtype=args.dtype).model
        weights = f"{spec.hub_repo or spec.id}@{spec.revision or 'local'}"
    seconds = time.perf_counter() - started
    info = describe_model(model)
    info.update(target=spec.id, weights=weights, dtype=args.dtype, device=args.device, build_seconds=round(seconds, 3))
    lines = [
        f"target      {spec.id}  ({weights})",
        f"type        {info['model_type']}  {info['class']}",
        f"parameters  {info['parameters']:,}  ({info['parameters'] / 1e6:.1f}M; {info['non_embedding_parameters']:,} outside embeddings)",
        f"shape       layers {info['layers']}, hidden {info['hidden_size']}, heads {info['heads']}, "
        f"vocab {info['vocab_size']}, context {info['context']}",
        f"memory      {info['bytes'] / 2**20:,.1f} MiB as {args.dtype} on {args.device}",
        f"built in    {seconds:.2f} s",
        "tensors:",
    ]
    lines += [f"  {name:60} {tuple(shape)}" for name, shape in info["first_layer_shapes"].items()]
    emit(args, info, "\n".join(lines))
    return 0


def describe_model(model) -> dict:
    """Parameter counts and shapes of a model (works on the meta device too)."""
    cfg = model.config
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    embed = sum(p.numel() for n, p in params.items() if "embed" in n)
    first = {n: list(p.shape) for n, p in params.items() if ".0." in n or ("layers" not in n and ".h." not in n)}
    return {
        "model_type": cfg.model_type,
        "class": type(model).__name__,
        "parameters": int(total),
        "embedding_parameters": int(embed),
        "non_embedding_parameters": int(total - embed),
        "bytes": int(sum(p.numel() * p.element_size() for p in params.values())),
        "layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "heads": cfg.num_attention_heads,
        "vocab_size": cfg.vocab_size,
        "context": getattr(cfg, "max_position_embeddings", None),
        "first_layer_shapes": first,
    }
